"""Procrastinate (PostgreSQL, asyncio).

Client: the async API, ``App.open_async`` then ``Task.defer_async``; bulk:
``Task.batch_defer_async`` (one statement per batch). The jobs are ``async def``, run on
the worker's event loop. Worker: ``procrastinate worker --concurrency 10``: the
documented knob for running several asynchronous jobs at once in one worker (the
default is 1); LISTEN/NOTIFY on (the default), finished jobs kept (the default).

``bench.crash`` runs its defaults: ``procrastinate worker`` (concurrency 1).
"""

from __future__ import annotations

import sys

import procrastinate

from bench import config, counter
from bench.system import System

DATABASE = "bench_procrastinate"
URL = config.pg_url(DATABASE)

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=URL))


@app.task(name="noop")
async def noop() -> None:
    counter.done()


@app.task(name="latency")
async def latency(enqueued_at: float) -> None:
    counter.started(enqueued_at)


@app.task(name="record")
async def record(job_id: int, seconds: float) -> None:
    await counter.record_async(job_id, seconds)


class Procrastinate(System):
    name = "procrastinate"
    database = DATABASE
    backend = "postgresql"
    packages = ("procrastinate", "psycopg", "psycopg-pool")
    setting = "10"
    worker_setting = ("1 process, --concurrency {setting} (async jobs on one event loop; "
                      "default 1)")
    notes = "async defer API and async jobs; LISTEN/NOTIFY; ANALYZE after each prefill"
    bulk_api = "batch_defer_async"

    async def setup(self) -> None:
        from bench import pgutil
        pgutil.ensure_database(URL)
        if not pgutil.rows(URL, "SELECT to_regclass('procrastinate_jobs') IS NOT NULL")[0][0]:
            async with app.open_async():
                await app.schema_manager.apply_schema_async()
        self.opened = app.open_async()
        await self.opened.__aenter__()

    async def teardown(self) -> None:
        await self.opened.__aexit__(None, None, None)

    def reset(self) -> None:
        from bench import pgutil
        pgutil.truncate_all(URL)

    def after_prefill(self) -> None:
        from bench import pgutil
        pgutil.execute(URL, "ANALYZE")

    async def enqueue(self) -> None:
        await noop.defer_async()

    async def enqueue_bulk(self, count: int) -> None:
        await noop.batch_defer_async(*([{}] * count))

    async def enqueue_latency(self, enqueued_at: float) -> None:
        await latency.defer_async(enqueued_at=enqueued_at)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "procrastinate", "--app=bench.peers.procrastinate.app",
                "worker", "--concurrency", self.setting]

    def default_worker_command(self) -> list[str]:
        return [sys.executable, "-m", "procrastinate", "--app=bench.peers.procrastinate.app",
                "worker"]

    async def enqueue_record(self, job_id: int, seconds: float) -> None:
        await record.defer_async(job_id=job_id, seconds=seconds)

    def unfinished(self) -> int:
        from bench import pgutil
        return pgutil.rows(URL, "SELECT count(*) FROM procrastinate_jobs "
                                "WHERE status IN ('todo', 'doing')")[0][0]

    def stats(self) -> dict[str, int]:
        from bench import pgutil
        return dict(pgutil.rows(
            URL, "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1"))
