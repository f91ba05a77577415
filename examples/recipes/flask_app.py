"""Flask: an order and the job that invoices it, written in one transaction.

    cd examples/recipes
    export QUEUEJOB_DATABASE_URL=sqlite:///shop.db        # or postgresql://...
    flask --app flask_app run                             # the web app
    queuejob worker --module flask_app                    # a worker (same URL)

``session.execute`` runs the app's own SQL in the session's transaction: the order
and its job are both stored, or neither (a refused order rolls both back). The job
reads the order back through its own session.
"""

import os
import uuid as uuid_module

from flask import Flask, abort, current_app, jsonify, request

import queuejob
from queuejob import DatabaseJobStorage, NoSuchJobError, job


def mark(db: queuejob.Database) -> str:
    """The driver's placeholder: ``?`` on SQLite, ``%s`` on PostgreSQL."""
    return "?" if db.dialect == "sqlite" else "%s"


@job(default_channel="root.invoices")
def send_invoice(session, model_name, order_id):
    """Send an order's invoice."""
    p = mark(session.db)
    customer, total = session.execute(
        f"SELECT customer, total FROM orders WHERE id = {p}", (order_id,)).fetchone()
    return f"invoice of {total} sent to {customer}"


def create_app(url: str | None = None) -> Flask:
    app = Flask(__name__)
    db = queuejob.open(url or os.environ.get("QUEUEJOB_DATABASE_URL", "sqlite:///shop.db"))
    app.extensions["queuejob"] = db
    with db.session() as session:
        session.execute("CREATE TABLE IF NOT EXISTS orders "
                        "(id TEXT PRIMARY KEY, customer TEXT NOT NULL, total INTEGER NOT NULL)")

    @app.post("/orders")
    def create_order():
        data = request.get_json()
        order_id = str(uuid_module.uuid4())
        db = current_app.extensions["queuejob"]
        p = mark(db)
        try:
            with db.session() as session:  # one transaction, committed at the end
                session.execute(f"INSERT INTO orders (id, customer, total) VALUES ({p}, {p}, {p})",
                                (order_id, data["customer"], data["total"]))
                uuid = send_invoice.delay(session, "order", order_id)
                if data["total"] <= 0:
                    raise ValueError("an order must cost something")  # rolls both back
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(order=order_id, job=uuid), 201

    @app.get("/jobs/<uuid>")
    def job_state(uuid):
        with current_app.extensions["queuejob"].session() as session:
            try:
                found = DatabaseJobStorage(session).load(uuid)
            except NoSuchJobError:
                abort(404)
        return jsonify(state=str(found.state), result=found.result)

    return app
