"""PGQueuer (PostgreSQL, asyncio, asyncpg).

Client: ``Queries(AsyncpgDriver(connection)).enqueue`` on one asyncpg connection; bulk:
the same call with lists (one statement). Handlers are ``async def``. Worker: ``pgq run
bench.peers.pgqueuer:create_pgqueuer --batch-size 10``: batch size 10 (the default,
and the setting of PGQueuer's own documented benchmark), no concurrency limit,
LISTEN/NOTIFY, durable (logged) tables, uvloop.

``pgqueuer-batch500`` is the same with ``--batch-size 500``, processing only: larger
batches drained no-op jobs several times faster on this machine, so it is measured too.
``pgqueuer-limit8``, processing only, gives the noop entrypoint ``concurrency_limit=8``:
at most 8 picked at once across PGQueuer's workers, the rule of queuejob's ``root:8``.

``bench.crash`` runs its defaults: ``pgq run bench.peers.pgqueuer:create_pgqueuer``
(batch size 10, no concurrency limit, a job re-picked once its heartbeat is 30 s old).
"""

from __future__ import annotations

import os
import sys
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from bench import config, counter
from bench.system import System

DATABASE = "bench_pgqueuer"
URL = config.pg_url(DATABASE)


def factory(limit: int = 0) -> Any:
    """The factory ``pgq run`` calls in the worker process; ``limit``: the noop
    entrypoint's ``concurrency_limit`` (0: none), which PGQueuer enforces in the database
    across all its workers, as queuejob's ``--channels root:8`` does."""
    @asynccontextmanager
    async def create() -> Any:
        connection = await asyncpg.connect(URL)
        pgq = PgQueuer(AsyncpgDriver(connection))

        @pgq.entrypoint("noop", concurrency_limit=limit)
        async def noop(job: Job) -> None:
            counter.done()

        @pgq.entrypoint("latency")
        async def latency(job: Job) -> None:
            counter.started((job.payload or b"0").decode())

        if os.environ.get("QUEUEJOB_BENCH_RUNS"):
            # bench.crash only: every entrypoint takes part in the dequeue query, which
            # the other benchmarks measure with the two above
            @pgq.entrypoint("record")
            async def record(job: Job) -> None:
                job_id, seconds = (job.payload or b"0 0").decode().split()
                await counter.record_async(job_id, seconds)

        try:
            yield pgq
        finally:
            await connection.close()
    return create


create_pgqueuer = factory()
create_pgqueuer_limit8 = factory(8)


class Pgqueuer(System):
    name = "pgqueuer"
    database = DATABASE
    backend = "postgresql"
    packages = ("pgqueuer", "asyncpg", "uvloop")
    setting = "10"
    worker_setting = ("1 process, asyncio, --batch-size {setting} (the default, as in its "
                      "documented benchmark), no concurrency limit")
    notes = "asyncpg; async handlers; durable tables; ANALYZE after each prefill"
    bulk_api = "Queries.enqueue with lists"

    async def setup(self) -> None:
        from bench import pgutil
        pgutil.ensure_database(URL)
        self.connection = await asyncpg.connect(URL)
        self.queries = Queries(AsyncpgDriver(self.connection))
        if not await self.queries.schema_is_installed():
            await self.queries.install()

    async def teardown(self) -> None:
        await self.connection.close()

    def reset(self) -> None:
        from bench import pgutil
        pgutil.truncate_all(URL)

    def after_prefill(self) -> None:
        from bench import pgutil
        pgutil.execute(URL, "ANALYZE")

    async def enqueue(self) -> None:
        await self.queries.enqueue("noop", None)

    async def enqueue_bulk(self, count: int) -> None:
        await self.queries.enqueue(["noop"] * count, [None] * count, [0] * count)

    async def enqueue_latency(self, enqueued_at: float) -> None:
        await self.queries.enqueue("latency", repr(enqueued_at).encode())

    #: the factory of its worker processes
    factory = "bench.peers.pgqueuer:create_pgqueuer"

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "pgqueuer", "run", self.factory,
                "--batch-size", self.setting]

    def default_worker_command(self) -> list[str]:
        return [sys.executable, "-m", "pgqueuer", "run", "bench.peers.pgqueuer:create_pgqueuer"]

    async def enqueue_record(self, job_id: int, seconds: float) -> None:
        await self.queries.enqueue("record", f"{job_id} {seconds}".encode())

    def unfinished(self) -> int:
        from bench import pgutil
        return pgutil.rows(URL, "SELECT count(*) FROM pgqueuer "
                                "WHERE status IN ('queued', 'picked')")[0][0]

    def stats(self) -> dict[str, Any]:
        from bench import pgutil
        return {"queue": dict(pgutil.rows(
                    URL, "SELECT status::text, count(*) FROM pgqueuer GROUP BY 1")),
                "log": dict(pgutil.rows(
                    URL, "SELECT status::text, count(*) FROM pgqueuer_log GROUP BY 1"))}


class PgqueuerBatch500(Pgqueuer):
    name = "pgqueuer-batch500"
    setting = "500"
    worker_setting = ("1 process, asyncio, --batch-size {setting} (measured fastest here), "
                      "no concurrency limit")
    workloads = ("process",)


class PgqueuerLimit8(Pgqueuer):
    name = "pgqueuer-limit8"
    factory = "bench.peers.pgqueuer:create_pgqueuer_limit8"
    worker_setting = ("1 process, asyncio, --batch-size {setting}, concurrency_limit=8 on "
                      "its entrypoint (8 at once across its workers, as queuejob's root:8)")
    workloads = ("process",)
