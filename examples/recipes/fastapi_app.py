"""FastAPI (Starlette underneath), asyncio: an ``async def`` endpoint stores a signup
(the app's own table) and delays its welcome email in one transaction of
``db.session_async()``; the app and the workers share the database URL.

    cd examples/recipes
    export QUEUEJOB_DATABASE_URL=sqlite:///jobs.db        # or postgresql://...
    uvicorn fastapi_app:app                               # the web app
    queuejob worker --module fastapi_app                  # a worker (same URL)

    curl -X POST localhost:8000/signups -H 'content-type: application/json' \\
         -d '{"email": "ann@example.com"}'                # {"signup": "<id>", "job": "<uuid>"}
    curl localhost:8000/jobs/<uuid>                       # {"state": "done", ...}

The signup and its job are committed together at the end of the ``async with`` block,
or neither is: an exception inside it (here, a refused email domain, checked after both
writes) rolls both back. The event loop never waits for the database: on PostgreSQL the
statements run on psycopg's asyncio connections, on SQLite on queuejob's own threads.
"""

import os
import uuid as uuid_module
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import queuejob
from queuejob import NoSuchJobError, job

#: email domains whose signups are refused (after the writes: both are rolled back)
REFUSED_DOMAINS = ("example.invalid",)


def mark(db: queuejob.Database) -> str:
    """The driver's placeholder: ``?`` on SQLite, ``%s`` on PostgreSQL."""
    return "?" if db.dialect == "sqlite" else "%s"


@job(default_channel="root.mail", retry_pattern={1: 60, 5: 600})
def send_welcome(session, model_name, signup_id):
    """Send the welcome email of a signup (committed with the job: it is there)."""
    p = mark(session.db)
    (email,) = session.execute(f"SELECT email FROM signups WHERE id = {p}",
                               (signup_id,)).fetchone()
    return f"welcome sent to {email}"


class Signup(BaseModel):
    email: str


def create_app(url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # one Database per process: its pools serve every request
        db = queuejob.open(url or os.environ.get("QUEUEJOB_DATABASE_URL", "sqlite:///jobs.db"))
        app.state.db = db
        try:
            async with db.session_async() as session:
                await session.execute("CREATE TABLE IF NOT EXISTS signups "
                                      "(id TEXT PRIMARY KEY, email TEXT NOT NULL)")
            yield
        finally:
            await db.close_async()  # this event loop's asyncio pool (PostgreSQL)
            db.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/signups", status_code=202)
    async def signup(body: Signup, request: Request) -> dict:
        db = request.app.state.db
        p = mark(db)
        signup_id = str(uuid_module.uuid4())
        # one transaction: committed when the block ends, rolled back on an exception
        async with db.session_async() as session:
            await session.execute(f"INSERT INTO signups (id, email) VALUES ({p}, {p})",
                                  (signup_id, body.email))
            uuid = await send_welcome.delay_async(session, "signup", signup_id, priority=5)
            if body.email.endswith(REFUSED_DOMAINS):
                # refused after both writes: neither the signup nor its job is stored
                raise HTTPException(status_code=422, detail=f"{body.email}: domain refused")
        return {"signup": signup_id, "job": uuid}

    @app.get("/jobs/{uuid}")
    async def job_state(uuid: str, request: Request) -> dict:
        db = request.app.state.db
        try:
            # the job's row, read without blocking the loop
            row = await queuejob.operations.load_job_async(db, uuid)
        except NoSuchJobError:
            raise HTTPException(status_code=404, detail="no such job") from None
        return {"state": row["state"], "result": row["result"]}

    return app


app = create_app()
