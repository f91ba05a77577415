"""SQLAlchemy on PostgreSQL: enqueue in your own transaction, through the psycopg
connection under SQLAlchemy's.

    python examples/recipes/sqlalchemy_transaction.py postgresql://user@host/dbname

``db.session(connection=...)`` writes the job in the transaction SQLAlchemy has open
on that connection and never commits nor rolls back: ``engine.begin()`` does, for the
invoice and its job together. With an ORM ``Session``, pass
``orm_session.connection().connection.driver_connection``.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

import queuejob
from queuejob import job

metadata = sa.MetaData()
invoices = sa.Table("invoices", metadata,
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("total", sa.Integer, nullable=False))


@job(default_channel="root.invoices")
def send_invoice(session, model_name, invoice_id):
    """Send an invoice."""
    return f"invoice {invoice_id} sent"


def engine_for(url: str) -> sa.Engine:
    """SQLAlchemy's engine on psycopg 3, for a queuejob postgresql:// URL."""
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def create_invoice(engine: sa.Engine, db: queuejob.Database, invoice_id: int, total: int,
                   refuse: bool = False) -> str:
    """Insert an invoice and delay its job in one transaction; ``refuse`` rolls back."""
    with engine.begin() as sa_conn:  # commits at the end, rolls back on an exception
        sa_conn.execute(invoices.insert().values(id=invoice_id, total=total))
        with db.session(connection=sa_conn.connection.driver_connection) as session:
            uuid = send_invoice.delay(session, "invoice", invoice_id)
        if refuse:
            raise ValueError(f"invoice {invoice_id} refused")
    return uuid


def main(url: str) -> None:
    db = queuejob.open(url)
    engine = engine_for(url)
    try:
        metadata.create_all(engine)
        kept = create_invoice(engine, db, 1, 100)
        try:
            create_invoice(engine, db, 2, 0, refuse=True)
        except ValueError as exc:
            print(f"rolled back: {exc}")
        queuejob.Worker(db, modules=[__name__]).run(burst=True)
        print(f"{db.wait(kept, timeout=30).state}: {db.wait(kept).result}")
        with engine.connect() as sa_conn:
            print(f"invoices: {sa_conn.execute(sa.select(invoices.c.id)).scalars().all()}")
    finally:
        engine.dispose()
        db.close()


if __name__ == "__main__":
    main(sys.argv[1])
