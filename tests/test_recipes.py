"""The recipes of docs/integrations.md (examples/recipes/) run: FastAPI and Flask with their
test clients, a plain script, SQLAlchemy enqueueing in its own transaction on PostgreSQL."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid as uuid_module
from pathlib import Path

import pytest

import queuejob
from tests.helpers import job_rows

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "examples" / "recipes"


@pytest.fixture
def recipe(monkeypatch):
    """Import a recipe module by name, as ``queuejob worker --module NAME`` run in
    examples/recipes would."""
    monkeypatch.syspath_prepend(str(RECIPES))
    return importlib.import_module


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)


def test_the_plain_script_runs_its_jobs(db_url):
    process = run(str(RECIPES / "plain_script.py"), db_url)
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == [
        f"done: photo-{n}.jpg resized to 800px" for n in range(3)]


def test_the_plain_script_runs_without_arguments():
    process = run(str(RECIPES / "plain_script.py"))
    assert process.returncode == 0, process.stderr
    assert process.stdout.count("done: ") == 3


def test_fastapi_enqueues_from_an_endpoint(db_url, recipe):
    from fastapi.testclient import TestClient
    module = recipe("fastapi_app")
    app = module.create_app(db_url)
    with TestClient(app) as client:
        response = client.post("/signups", json={"email": "ann@example.com"})
        assert response.status_code == 202
        job_uuid = response.json()["job"]
        assert client.get(f"/jobs/{job_uuid}").json() == {"state": "pending", "result": None}
        # a worker of the same database URL, in another Database as in another process
        with queuejob.open(db_url) as worker_db:
            queuejob.Worker(worker_db, modules=["fastapi_app"]).run(burst=True)
        assert client.get(f"/jobs/{job_uuid}").json() == {
            "state": "done", "result": "welcome sent to ann@example.com"}
        assert client.get(f"/jobs/{uuid_module.uuid4()}").status_code == 404
        assert client.post("/signups", json={}).status_code == 422
    with queuejob.open(db_url) as db:
        [row] = job_rows(db, limit=10)
    assert row["channel"] == "root.mail" and row["priority"] == 5


def test_flask_stores_the_order_and_its_job_in_one_transaction(db_url, recipe):
    module = recipe("flask_app")
    app = module.create_app(db_url)
    db = app.extensions["queuejob"]
    try:
        client = app.test_client()
        refused = client.post("/orders", json={"customer": "bob", "total": 0})
        assert refused.status_code == 400
        assert queuejob.operations.stats(db) == {}  # neither the order nor its job
        with db.session() as session:
            assert session.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
        created = client.post("/orders", json={"customer": "ann", "total": 42})
        assert created.status_code == 201
        job_uuid = created.get_json()["job"]
        assert client.get(f"/jobs/{job_uuid}").get_json()["state"] == "pending"
        queuejob.Worker(db, modules=["flask_app"]).run(burst=True)
        assert client.get(f"/jobs/{job_uuid}").get_json() == {
            "state": "done", "result": "invoice of 42 sent to ann"}
        assert client.get(f"/jobs/{uuid_module.uuid4()}").status_code == 404
    finally:
        db.close()


@pytest.fixture
def pg_url(pg_server):
    return pg_server.create_database("recipe_sqlalchemy")


def test_sqlalchemy_enqueues_in_its_own_transaction_on_postgresql(pg_url, recipe):
    module = recipe("sqlalchemy_transaction")
    db = queuejob.open(pg_url)
    engine = module.engine_for(pg_url)
    try:
        module.metadata.create_all(engine)
        kept = module.create_invoice(engine, db, 1, 100)
        with pytest.raises(ValueError, match="refused"):
            module.create_invoice(engine, db, 2, 0, refuse=True)
        [row] = job_rows(db, limit=10)
        assert row["uuid"] == kept and row["state"] == "pending"
        with engine.connect() as sa_conn:
            ids = sa_conn.execute(module.invoices.select()).all()
        assert [tuple(one) for one in ids] == [(1, 100)]
        queuejob.Worker(db, modules=["sqlalchemy_transaction"]).run(burst=True)
        assert db.wait(kept, timeout=30).result == "invoice 1 sent"
    finally:
        engine.dispose()
        db.close()


def test_the_sqlalchemy_recipe_runs_as_a_script(pg_server):
    url = pg_server.create_database("recipe_sqlalchemy_script")
    process = run(str(RECIPES / "sqlalchemy_transaction.py"), url)
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == [
        "rolled back: invoice 2 refused", "done: invoice 1 sent", "invoices: [1]"]
