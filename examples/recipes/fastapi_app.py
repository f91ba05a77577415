"""FastAPI (Starlette underneath): enqueue from an endpoint; the app and the workers
share the database URL.

    cd examples/recipes
    export QUEUEJOB_DATABASE_URL=sqlite:///jobs.db        # or postgresql://...
    uvicorn fastapi_app:app                               # the web app
    queuejob worker --module fastapi_app                  # a worker (same URL)

    curl -X POST localhost:8000/signups -H 'content-type: application/json' \\
         -d '{"email": "ann@example.com"}'                # {"job": "<uuid>"}
    curl localhost:8000/jobs/<uuid>                       # {"state": "done", ...}
"""

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

import queuejob
from queuejob import DatabaseJobStorage, NoSuchJobError, job


@job(default_channel="root.mail", retry_pattern={1: 60, 5: 600})
def send_welcome(session, model_name, email):
    """Send the welcome email."""
    return f"welcome sent to {email}"


class Signup(BaseModel):
    email: str


def create_app(url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # one Database per process: its pool serves every request
        app.state.db = queuejob.open(url or os.environ.get("QUEUEJOB_DATABASE_URL",
                                                           "sqlite:///jobs.db"))
        try:
            yield
        finally:
            app.state.db.close()

    app = FastAPI(lifespan=lifespan)

    # plain ``def`` endpoints: FastAPI runs them in its thread pool, so the database
    # calls do not block the event loop
    @app.post("/signups", status_code=202)
    def signup(body: Signup, request: Request) -> dict:
        with request.app.state.db.session() as session:  # commits when the block ends
            uuid = send_welcome.delay(session, "user", body.email, priority=5)
        return {"job": uuid}

    @app.get("/jobs/{uuid}")
    def job_state(uuid: str, request: Request) -> dict:
        with request.app.state.db.session() as session:
            try:
                found = DatabaseJobStorage(session).load(uuid)
            except NoSuchJobError:
                raise HTTPException(status_code=404, detail="no such job") from None
        return {"state": str(found.state), "result": found.result}

    return app


app = create_app()
