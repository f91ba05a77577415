"""The asyncio recipes of docs/integrations.md (examples/recipes/) run: FastAPI's
``async def`` endpoints through httpx's ASGI transport, and SQLAlchemy's
``AsyncSession`` on PostgreSQL; what one transaction writes is kept or dropped whole."""

from __future__ import annotations

import asyncio
import importlib
import uuid as uuid_module
from typing import Any

import httpx2 as httpx
import pytest

import queuejob
from tests.helpers import job_rows
from tests.test_recipes import RECIPES, run


@pytest.fixture
def recipe(monkeypatch):
    """Import a recipe module by name, as ``queuejob worker --module NAME`` run in
    examples/recipes would."""
    monkeypatch.syspath_prepend(str(RECIPES))
    return importlib.import_module


def app_rows(db: queuejob.Database, sql: str) -> list[tuple[Any, ...]]:
    """The application's rows, read on a connection of their own (what others see)."""
    with db.session() as session:
        return [tuple(row) for row in session.execute(sql).fetchall()]


def run_worker(db_url: str, module: str) -> None:
    """A worker of the same database URL, in another Database as in another process,
    until nothing is left to run."""
    with queuejob.open(db_url) as worker_db:
        queuejob.Worker(worker_db, modules=[module]).run(burst=True)


# -- FastAPI ------------------------------------------------------------------------------------
def test_fastapi_stores_the_signup_and_its_job_in_one_async_transaction(db_url, recipe):
    app = recipe("fastapi_app").create_app(db_url)

    async def scenario() -> None:
        # httpx's ASGI transport does not run the lifespan: the test does, as a server would
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            with queuejob.open(db_url) as db:
                # refused after both writes: the rollback drops the signup and its job
                refused = await client.post("/signups", json={"email": "bob@example.invalid"})
                assert refused.status_code == 422, refused.text
                assert refused.json() == {"detail": "bob@example.invalid: domain refused"}
                assert app_rows(db, "SELECT id, email FROM signups") == []
                assert job_rows(db) == []
                assert (await client.post("/signups", json={})).status_code == 422

                created = await client.post("/signups", json={"email": "ann@example.com"})
                assert created.status_code == 202, created.text
                body = created.json()
                assert app_rows(db, "SELECT id, email FROM signups") == [
                    (body["signup"], "ann@example.com")]
                [row] = job_rows(db)
                assert row["uuid"] == body["job"] and row["state"] == "pending"
                assert row["channel"] == "root.mail" and row["priority"] == 5
                assert (await client.get(f"/jobs/{body['job']}")).json() == {
                    "state": "pending", "result": None}

                # the worker blocks: off the loop, as if it were another process
                await asyncio.to_thread(run_worker, db_url, "fastapi_app")
                assert (await client.get(f"/jobs/{body['job']}")).json() == {
                    "state": "done", "result": "welcome sent to ann@example.com"}
                assert (await client.get(f"/jobs/{uuid_module.uuid4()}")).status_code == 404
                assert (await client.get("/jobs/not-a-uuid")).status_code == 404
                assert len(job_rows(db)) == 1

    asyncio.run(scenario())


# -- SQLAlchemy's AsyncSession ------------------------------------------------------------------
@pytest.fixture
def pg_url(pg_server):
    return pg_server.create_database("recipe_sqlalchemy_async")


def test_sqlalchemy_async_session_keeps_or_drops_the_row_and_its_job_together(pg_url, recipe):
    module = recipe("sqlalchemy_async")
    db = queuejob.open(pg_url)

    async def enqueue() -> str:
        from sqlalchemy.ext.asyncio import async_sessionmaker
        engine = module.engine_for(pg_url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(module.Base.metadata.create_all)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            kept_id, kept = await module.create_payment(sessions, db, 100)
            with pytest.raises(ValueError, match="refused"):
                await module.create_payment(sessions, db, 0, refuse=True)
            # SQLAlchemy Core's AsyncConnection is taken as well: rolled back here
            with pytest.raises(RuntimeError, match="roll back"):
                async with engine.begin() as conn:
                    await conn.execute(module.Payment.__table__.insert().values(amount=7))
                    async with db.session_async(connection=conn) as session:
                        await module.send_receipt.delay_async(session, "payment", -1)
                    raise RuntimeError("roll back")
            assert kept_id == 1
            return kept
        finally:
            await engine.dispose()
            await db.close_async()

    try:
        kept = asyncio.run(enqueue())
        [row] = job_rows(db)
        assert row["uuid"] == kept and row["state"] == "pending"
        assert row["channel"] == "root.payments"
        assert app_rows(db, "SELECT id, amount FROM payments") == [(1, 100)]
        queuejob.Worker(db, modules=["sqlalchemy_async"]).run(burst=True)
        assert db.wait(kept, timeout=30).result == "receipt of payment 1 sent"
        assert len(job_rows(db)) == 1
    finally:
        db.close()


def test_the_sqlalchemy_async_recipe_runs_as_a_script(pg_server):
    url = pg_server.create_database("recipe_sqlalchemy_async_script")
    process = run(str(RECIPES / "sqlalchemy_async.py"), url)
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines() == [
        "rolled back: payment 2 refused", "done: receipt of payment 1 sent", "payments: [100]"]
