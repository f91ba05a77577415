"""queuejob itself, on SQLite and on PostgreSQL, as measured by ``bench.harness``.

Client: ``noop.delay(session, None)`` in its own ``db.session()`` (one transaction per
job); bulk: ``noop.delay_many(session, calls)`` in one session per batch.
``queuejob-postgresql-async`` uses the asyncio client instead (``db.session_async()``,
``delay_async``, ``delay_many_async``), as Procrastinate's and PGQueuer's clients are
async; its workers are those of ``queuejob-postgresql``. The jobs are
``bench.jobs.noop`` and ``bench.jobs.latency``. Worker: ``queuejob worker --module
bench.jobs --channels root:64`` with its other defaults: root's capacity is the number
of jobs a worker runs at once (each claim takes up to that many), and 64 is the
documented best setting for no-op jobs.

Finished jobs for the growth workload are written with one SQL statement (a recursive
CTE on SQLite, ``generate_series`` on PostgreSQL), as ``done`` rows finished just now,
so that the retention of the worker keeps them.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from typing import Any

import psycopg

import queuejob
from bench import config, jobs
from bench.harness import System
from bench.pgutil import ensure_database, pg_settings

BEST_CHANNELS = "root:64"
#: bench.crash: what a user runs, with every other option at its default
DEFAULT_CHANNELS = "root:8"
#: states of a job still to run (queued, claimed, running, waiting for another)
UNFINISHED = ("pending", "enqueued", "started", "wait_dependencies")


def bulk_calls(count: int, channels: list[str] | None = None) -> list[Any]:
    """The calls of one ``delay_many``: no-op jobs, spread over ``channels`` if given."""
    if channels:
        return [{"args": (None,), "channel": channels[i % len(channels)]}
                for i in range(count)]
    return [(None,)] * count


class Queuejob(System):
    packages = ("queuejob", "psycopg", "psycopg-binary")
    setting = BEST_CHANNELS
    worker_setting = ("1 process, --channels {setting} (root's capacity = job threads; "
                      "root:64 is the documented best setting for no-op jobs)")
    bulk_api = "delay_many"
    extra_workloads = ("growth", "channels", "memory")
    url = ""

    def setup(self) -> None:
        self.db = queuejob.open(self.url)

    def teardown(self) -> None:
        self.db.close()

    def enqueue(self) -> None:
        with self.db.session() as session:
            jobs.noop.delay(session, None)

    def enqueue_bulk(self, count: int, channels: list[str] | None = None) -> None:
        with self.db.session() as session:
            jobs.noop.delay_many(session, bulk_calls(count, channels))

    def enqueue_latency(self, enqueued_at: float) -> None:
        with self.db.session() as session:
            jobs.latency.delay(session, None, enqueued_at)

    def worker_command(self, channels: str | None = None) -> list[str]:
        return [sys.executable, "-m", "queuejob", "worker", "--db", self.url,
                "--module", "bench.jobs", "--channels", channels or self.setting]

    def default_worker_command(self) -> list[str]:
        return [sys.executable, "-m", "queuejob", "worker", "--db", self.url,
                "--module", "bench.jobs", "--channels", DEFAULT_CHANNELS]

    def enqueue_record(self, job_id: int, seconds: float) -> None:
        with self.db.session() as session:
            jobs.record.delay(session, None, job_id, seconds)

    def unfinished(self) -> int:
        return sum(count for state, count in self.stats().items() if state in UNFINISHED)

    def insert_finished(self, count: int) -> None:
        raise NotImplementedError


class QueuejobSQLite(Queuejob):
    name = "queuejob-sqlite"
    backend = "sqlite"
    notes = ("SQLite file with queuejob's defaults: WAL, synchronous=NORMAL (survives any "
             "crash of a process), BEGIN IMMEDIATE; workers woken through PRAGMA data_version")
    synchronous = ""

    def __init__(self) -> None:
        self.path = config.workdir() / f"{self.name}.db"
        self.url = f"sqlite:///{self.path}" + (
            f"?synchronous={self.synchronous}" if self.synchronous else "")

    def reset(self) -> None:
        self.db.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        self.db = queuejob.open(self.url)

    def insert_finished(self, count: int) -> None:
        if not count:
            return
        now = time.time()
        with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
            conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: random uuids, 7 indexes
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("""
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?),
                     r(h) AS (SELECT lower(hex(randomblob(16))) FROM n)
                INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs,
                                       description, channel, priority, max_retries, retry,
                                       attempt, date_created, date_enqueued, date_started,
                                       date_done)
                SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3)
                       || '-a' || substr(h, 18, 3) || '-' || substr(h, 21, 12),
                       'done', 'bench.jobs.noop', NULL, '[]', '{}', 'Function noop', 'root',
                       10, 5, 1, 1, ?, ?, ?, ?
                FROM r""", (count, now, now, now, now))
            conn.execute("COMMIT")

    def info(self) -> dict[str, Any]:
        conn = self.db.connector.connect()
        try:
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            conn.close()
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {"journal_mode": journal, "synchronous": names.get(sync, sync),
                "sqlite": sqlite3.sqlite_version}

    def stats(self) -> dict[str, int]:
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            return dict(conn.execute("SELECT state, count(*) FROM queue_job GROUP BY state"))


class QueuejobSQLiteFull(QueuejobSQLite):
    """queuejob on SQLite with synchronous=FULL, Huey's setting: a commit survives a
    power loss too (one fsync per commit)."""

    name = "queuejob-sqlite-full"
    extra_workloads = ()
    synchronous = "full"
    notes = ("SQLite file, WAL, synchronous=FULL (like SqliteHuey: survives a power loss), "
             "BEGIN IMMEDIATE")


class QueuejobPostgres(Queuejob):
    name = "queuejob-postgresql"
    backend = "postgresql"
    notes = "psycopg 3; workers woken by LISTEN/NOTIFY; ANALYZE after each prefill"

    database = "bench_queuejob"

    def __init__(self) -> None:
        self.url = config.pg_url(self.database)

    def setup(self) -> None:
        ensure_database(self.url)
        super().setup()

    def sql(self, *statements: str, params: Any = None) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement, params)

    def reset(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = [row[0] for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename LIKE 'queue\\_%' ORDER BY 1")]
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
            conn.execute("CHECKPOINT")

    def after_prefill(self) -> None:
        self.sql("ANALYZE queue_job")

    def insert_finished(self, count: int) -> None:
        if not count:
            return
        self.sql("""
            INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs,
                                   description, channel, priority, max_retries, retry,
                                   attempt, date_created, date_enqueued, date_started,
                                   date_done)
            SELECT gen_random_uuid(), 'done', 'bench.jobs.noop', NULL, '[]', '{}',
                   'Function noop', 'root', 10, 5, 1, 1, now(), now(), now(), now()
            FROM generate_series(1, %(count)s)""", params={"count": count})
        # what autovacuum does on a live table, then a clean WAL state for the drain
        self.sql("VACUUM ANALYZE queue_job", "CHECKPOINT")

    def info(self) -> dict[str, Any]:
        return pg_settings(self.url)

    def stats(self) -> dict[str, int]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return dict(conn.execute(
                "SELECT state, count(*) FROM queue_job GROUP BY state").fetchall())


class Root8:
    """A variant with root:8, the capacity a user picks for real jobs: processing only."""

    setting = DEFAULT_CHANNELS
    worker_setting = "1 process, --channels {setting} (a capacity users pick for real jobs)"
    workloads = ("process",)
    extra_workloads = ()


class QueuejobSQLiteRoot8(Root8, QueuejobSQLite):
    name = "queuejob-sqlite-root8"


class QueuejobPostgresRoot8(Root8, QueuejobPostgres):
    name = "queuejob-postgresql-root8"


class AsyncClient:
    """The asyncio client in place of the synchronous one, the same worker: ``await
    noop.delay_async(session, None)`` in its own ``db.session_async()`` (one transaction
    per job, as Procrastinate's ``defer_async`` and PGQueuer's ``enqueue`` per call);
    bulk: ``delay_many_async`` in one session per batch. Processing is left out: its
    workers are those of the synchronous system."""

    bulk_api = "delay_many_async"
    workloads = ("enqueue", "bulk", "latency")
    extra_workloads = ()
    db: queuejob.Database

    async def teardown(self) -> None:
        await self.db.close_async()  # the event loop's pool, before the rest
        super().teardown()  # type: ignore[misc]

    async def enqueue(self) -> None:
        async with self.db.session_async() as session:
            await jobs.noop.delay_async(session, None)

    async def enqueue_bulk(self, count: int, channels: list[str] | None = None) -> None:
        async with self.db.session_async() as session:
            await jobs.noop.delay_many_async(session, bulk_calls(count, channels))

    async def enqueue_latency(self, enqueued_at: float) -> None:
        async with self.db.session_async() as session:
            await jobs.latency.delay_async(session, None, enqueued_at)


class QueuejobPostgresAsync(AsyncClient, QueuejobPostgres):
    name = "queuejob-postgresql-async"
    notes = ("asyncio client (session_async: a pooled psycopg AsyncConnection); workers "
             "as queuejob-postgresql")
