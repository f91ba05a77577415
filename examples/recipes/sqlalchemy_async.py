"""SQLAlchemy's asyncio ORM on PostgreSQL: an ORM row and its job in one transaction of
an ``AsyncSession``.

    python examples/recipes/sqlalchemy_async.py postgresql://user@host/dbname

``db.session_async(connection=orm_session)`` writes the job on the psycopg
``AsyncConnection`` under the ``AsyncSession`` (SQLAlchemy's ``postgresql+psycopg://``
dialect), in the transaction the session has open, and never commits nor rolls back:
``orm_session.begin()`` does, for the payment and its job together. SQLAlchemy Core's
``AsyncConnection`` (``async with engine.begin() as conn``) is taken the same way.
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import queuejob
from queuejob import job


class Base(DeclarativeBase):
    pass


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    amount: Mapped[int]


@job(default_channel="root.payments")
def send_receipt(session, model_name, payment_id):
    """Send a payment's receipt."""
    return f"receipt of payment {payment_id} sent"


def engine_for(url: str) -> AsyncEngine:
    """SQLAlchemy's asyncio engine on psycopg 3, for a queuejob postgresql:// URL."""
    return create_async_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


async def create_payment(sessions: async_sessionmaker, db: queuejob.Database, amount: int,
                         refuse: bool = False) -> tuple[int, str]:
    """Store a payment and delay its receipt in one transaction; ``refuse`` rolls both
    back. The payment's id and the job's uuid."""
    async with sessions() as orm_session, orm_session.begin():  # commits at the end
        payment = Payment(amount=amount)
        orm_session.add(payment)
        await orm_session.flush()  # the INSERT, in the transaction: the payment has its id
        async with db.session_async(connection=orm_session) as session:
            uuid = await send_receipt.delay_async(session, "payment", payment.id)
        if refuse:
            raise ValueError(f"payment {payment.id} refused")  # rolls both back
    return payment.id, uuid


async def record(url: str, db: queuejob.Database) -> str:
    """The table, a kept payment and a refused one; the kept payment's job."""
    engine = engine_for(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        _, kept = await create_payment(sessions, db, 100)
        try:
            await create_payment(sessions, db, 0, refuse=True)
        except ValueError as exc:
            print(f"rolled back: {exc}")
        return kept
    finally:
        await engine.dispose()
        await db.close_async()


async def report(url: str, db: queuejob.Database, kept: str) -> None:
    engine = engine_for(url)
    try:
        status = await db.wait_async(kept, timeout=30)
        print(f"{status.state}: {status.result}")
        async with async_sessionmaker(engine)() as orm_session:
            amounts = (await orm_session.scalars(select(Payment.amount))).all()
        print(f"payments: {amounts}")
    finally:
        await engine.dispose()
        await db.close_async()


def main(url: str) -> None:
    db = queuejob.open(url)
    try:
        kept = asyncio.run(record(url, db))
        queuejob.Worker(db, modules=[__name__]).run(burst=True)
        asyncio.run(report(url, db, kept))
    finally:
        db.close()


if __name__ == "__main__":
    main(sys.argv[1])
