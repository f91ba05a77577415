"""The floor of enqueueing one job per transaction on PostgreSQL: how far a client can go.

    bench/.venv-peers/bin/python -m bench.floor [--jobs 3000] [--rounds 3]

On one throw-away PostgreSQL (``tests.pgserver``, fsync on, as ``bench/run.sh``'s), in
interleaved rounds, each a commit per job from one asyncio task:

* ``pgqueuer``: PGQueuer's ``Queries.enqueue`` on one asyncpg connection (the harness's);
* ``floor``: queuejob's own ``insert_job`` statement, with the row ``delay()`` makes,
  run as a prepared asyncpg statement: no queuejob code between the loop and the socket,
  the least client any library could put over queuejob's table;
* ``queuejob``: ``delay_async`` in ``session_async``, as an application calls it.

Jobs/s and the client's CPU per job (this process, ``time.process_time``). What ``floor``
reaches against ``pgqueuer`` is the most any client of queuejob's table can reach: the rest
is the server's work on the row and the WAL flush of each commit.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
from pgqueuer.db import AsyncpgDriver
from pgqueuer.queries import Queries
from tests.pgserver import PostgresServer

import queuejob
from bench import jobs
from queuejob.core.job import Job
from queuejob.store.mapping import new_row


def positional(sql: str) -> tuple[str, list[str]]:
    """psycopg's ``%(name)s`` parameters as asyncpg's ``$n``, and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"
    return re.sub(r"%\((\w+)\)s", number, sql), names


async def timed(count: int, once: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    await once()  # warm: the statement prepared, the connection open
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await once()
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) / count * 1e6


async def pgqueuer(url: str, count: int) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(conn))
    if not await queries.schema_is_installed():
        await queries.install()
    try:
        return await timed(count, lambda: queries.enqueue("noop", None))
    finally:
        await conn.close()


async def floor(db: queuejob.Database, url: str, count: int) -> tuple[float, float]:
    sql, names = positional(db.store.connector.queries["insert_job"])
    conn = await asyncpg.connect(url)
    statement = await conn.prepare(sql)

    async def once() -> object:
        row = new_row(Job(func=jobs.noop, args=(None,)))
        return await statement.fetch(*(row[name] for name in names))
    try:
        return await timed(count, once)
    finally:
        await conn.close()


async def client(db: queuejob.Database, count: int) -> tuple[float, float]:
    async def once() -> object:
        async with db.session_async() as session:
            return await jobs.noop.delay_async(session, None)
    try:
        return await timed(count, once)
    finally:
        await db.close_async()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    server = PostgresServer().start()
    try:
        url, peer_url = server.create_database("floor"), server.create_database("peer")
        db = queuejob.open(url)
        figures: dict[str, list[tuple[float, float]]] = {"pgqueuer": [], "floor": [],
                                                         "queuejob": []}
        for _ in range(options.rounds):
            figures["pgqueuer"].append(asyncio.run(pgqueuer(peer_url, options.jobs)))
            figures["floor"].append(asyncio.run(floor(db, url, options.jobs)))
            figures["queuejob"].append(asyncio.run(client(db, options.jobs)))
        db.close()
    finally:
        server.stop()
    peer = [rate for rate, _ in figures["pgqueuer"]]
    print(f"{'client':<10} {'jobs/s (median)':>16} {'vs PGQueuer, by round':>24} "
          f"{'client CPU µs/job':>18}")
    for name, runs in figures.items():
        rates = [rate for rate, _ in runs]
        ratios = " ".join(f"{rate / other:.2f}" for rate, other in zip(rates, peer,
                                                                       strict=True))
        print(f"{name:<10} {statistics.median(rates):>16,.0f} {ratios:>24} "
              f"{statistics.median(cpu for _, cpu in runs):>18.0f}")


if __name__ == "__main__":
    main()
