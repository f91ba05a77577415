"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server.

``QUEUEJOB_TEST_BACKENDS=sqlite`` (or ``postgresql``) narrows the run locally;
CI runs both.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

import queuejob
from tests.pgbouncer import PgBouncer
from tests.pgserver import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = [name for name in os.environ.get("QUEUEJOB_TEST_BACKENDS",
                                            "sqlite,postgresql").split(",") if name]
#: the database the tests reach through PgBouncer (its own: db_url's is left alone)
POOLED_DB = "queuejob_pooled"


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    try:
        server.create_database("queuejob_test")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pgbouncer(pg_server):
    """A real PgBouncer in front of pg_server: POOLED_DB in transaction pooling mode with
    PgBouncer's default settings, and POOLED_DB + "_session" in session pooling mode."""
    pg_server.create_database(POOLED_DB)
    bouncer = PgBouncer(pg_server, dbnames=(POOLED_DB,)).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def pooled_direct_url(pg_server, pgbouncer) -> str:
    """A fresh, empty POOLED_DB, its direct URL (the server's own port)."""
    from tests.helpers import wait_until
    url = pg_server.url(POOLED_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        ended = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (POOLED_DB,))]
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                     (ended,))
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    # PgBouncer drops the server connections that were ended: none is handed out dead
    wait_until(lambda: not {row["remote_pid"] for row in pgbouncer.show("SERVERS")} & set(ended),
               timeout=10, message="PgBouncer to drop the ended server connections")
    return url


@pytest.fixture
def pooled_db_url(pgbouncer, pooled_direct_url) -> str:
    """The same fresh database through PgBouncer's transaction pool."""
    return pgbouncer.url(POOLED_DB)


@pytest.fixture
def pooled_db(pooled_db_url):
    """A client through PgBouncer's transaction pool (it migrates the database)."""
    database = queuejob.open(pooled_db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


#: how the tests of a module marked through_pgbouncer reach PostgreSQL: directly, then
#: through PgBouncer's transaction pool (LISTEN going direct, as deployment.md says)
ROUTES = ("direct", "pgbouncer")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("through_pgbouncer") \
            and "db_url" in metafunc.fixturenames and "postgresql" in BACKENDS:
        metafunc.parametrize("route", ROUTES, indirect=True)


def pytest_collection_modifyitems(config, items):
    """SQLite has one route: its second one is deselected (not run twice)."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        (dropped if params.get("route") == "pgbouncer" and params.get("backend") != "postgresql"
         else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def route(request) -> str:
    return getattr(request, "param", "direct")


@pytest.fixture
def db_url(backend, route, request, tmp_path, monkeypatch) -> str:
    """A fresh, empty database of the backend under test (through PgBouncer on the
    "pgbouncer" route, its workers and waits listening directly)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/jobs.db"
    if route == "pgbouncer":
        monkeypatch.setenv("QUEUEJOB_LISTEN_URL", request.getfixturevalue("pooled_direct_url"))
        return request.getfixturevalue("pooled_db_url")
    server = request.getfixturevalue("pg_server")
    url = server.url("queuejob_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = 'queuejob_test' AND pid <> pg_backend_pid()")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


@pytest.fixture
def db(db_url):
    database = queuejob.open(db_url)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def job_env(tmp_path, monkeypatch):
    """Environment for worker subprocesses: tests.jobs importable, logs in tmp_path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def pytest_report_header(config):
    return f"queuejob backends under test: {', '.join(BACKENDS)}; python {sys.version.split()[0]}"


@pytest.fixture
def invoke(monkeypatch):
    """Run a queuejob command in-process (a wide plain console, no database URL of the
    caller's); asserts its exit code and returns click's Result."""
    from click.testing import CliRunner
    from rich.console import Console

    from queuejob.cli import output
    from queuejob.cli.app import cli
    from queuejob.cli.common import ENV_DB
    monkeypatch.setattr(output, "console", Console(highlight=False, width=250))
    monkeypatch.delenv(ENV_DB, raising=False)
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, exit_code: int = 0) -> Any:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == exit_code, (
            f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}")
        return result
    return run
