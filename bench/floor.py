"""The floor of enqueueing on PostgreSQL: how far a client can go.

    bench/.venv-peers/bin/python -m bench.floor [--jobs 3000] [--bulk 20000] [--rounds 3]

On one throw-away PostgreSQL (``tests.pgserver``, fsync and synchronous_commit on, as
``bench/run.sh``'s), in interleaved rounds, from one asyncio task. One job per
transaction:

* ``pgqueuer``: PGQueuer's ``Queries.enqueue`` on one asyncpg connection (the harness's);
* ``floor``: queuejob's own ``insert_job`` statement, with the row ``delay()`` makes,
  run as a prepared asyncpg statement: no queuejob code between the loop and the socket,
  the least client any library could put over queuejob's table;
* ``queuejob``: ``delay_async`` in ``session_async``, as an application calls it.

In bulk, 1,000 jobs per transaction (the harness's batch):

* ``pgqueuer bulk``: ``Queries.enqueue`` with lists;
* ``floor bulk``: asyncpg's binary COPY of rows made beforehand, with the columns and
  values of queuejob's ``copy_jobs`` (what ``delay_many`` streams): the server's share
  of a bulk enqueue, and nothing of any client;
* ``queuejob bulk``: ``delay_many_async`` in ``session_async``.

Jobs/s and the client's CPU per job (this process, ``time.process_time``). What a floor
reaches against PGQueuer is the most any client of queuejob's table can reach: the rest
is the server's work on the rows and the WAL flush of each commit.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

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


#: jobs per transaction in bulk (the harness's ``--batch-size``)
BATCH = 1000


async def batches(count: int, once: Callable[[int], Awaitable[object]]
                  ) -> tuple[float, float]:
    """``timed`` for a bulk enqueue: ``once(size)`` per batch of up to BATCH jobs."""
    await once(min(BATCH, count))  # warm
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, count, BATCH):
        await once(min(BATCH, count - start))
    return count / (time.perf_counter() - wall), (time.process_time() - cpu) / count * 1e6


async def pgqueuer_bulk(url: str, count: int) -> tuple[float, float]:
    conn = await asyncpg.connect(url)
    queries = Queries(AsyncpgDriver(conn))
    try:
        return await batches(count, lambda size: queries.enqueue(
            ["noop"] * size, [None] * size, [0] * size))
    finally:
        await conn.close()


def copy_records(db: queuejob.Database, count: int) -> tuple[str, list[str], list[tuple]]:
    """The table, columns and rows of ``copy_jobs`` for ``count`` no-op jobs, made as
    ``delay_many`` makes them (a uuid each, the rest shared)."""
    found = re.search(r"COPY (\w+) \(([^)]*)\)", db.store.connector.queries["copy_jobs"])
    assert found is not None
    table, columns = found.group(1), [name.strip() for name in found.group(2).split(",")]
    row: dict[str, Any] = dict(new_row(Job(func=jobs.noop, args=(None,))))
    row.update(channel=row["channel"] or row["default_channel"],
               date_created=dt.datetime.now(dt.UTC), concurrency_key="")
    shared = [row.get(name) for name in columns]
    at = columns.index("uuid")
    return table, columns, [tuple(uuid.uuid4() if index == at else value
                                  for index, value in enumerate(shared))
                            for _ in range(count)]


async def floor_bulk(db: queuejob.Database, url: str, count: int) -> tuple[float, float]:
    table, columns, records = copy_records(db, count + BATCH)
    conn = await asyncpg.connect(url)
    position = 0

    async def once(size: int) -> object:
        nonlocal position
        chunk, position = records[position:position + size], position + size
        async with conn.transaction():
            return await conn.copy_records_to_table(table, records=chunk, columns=columns)
    try:
        return await batches(count, once)
    finally:
        await conn.close()


async def client_bulk(db: queuejob.Database, count: int) -> tuple[float, float]:
    async def once(size: int) -> object:
        async with db.session_async() as session:
            return await jobs.noop.delay_many_async(session, [(None,)] * size)
    try:
        return await batches(count, once)
    finally:
        await db.close_async()


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
    parser.add_argument("--bulk", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    server = PostgresServer(fast=False).start()
    try:
        url, peer_url = server.create_database("floor"), server.create_database("peer")
        db = queuejob.open(url)
        figures: dict[str, list[tuple[float, float]]] = {
            name: [] for name in ("pgqueuer", "floor", "queuejob", "pgqueuer bulk",
                                  "floor bulk", "queuejob bulk")}
        for _ in range(options.rounds):
            figures["pgqueuer"].append(asyncio.run(pgqueuer(peer_url, options.jobs)))
            figures["floor"].append(asyncio.run(floor(db, url, options.jobs)))
            figures["queuejob"].append(asyncio.run(client(db, options.jobs)))
            figures["pgqueuer bulk"].append(asyncio.run(pgqueuer_bulk(peer_url,
                                                                      options.bulk)))
            figures["floor bulk"].append(asyncio.run(floor_bulk(db, url, options.bulk)))
            figures["queuejob bulk"].append(asyncio.run(client_bulk(db, options.bulk)))
        db.close()
    finally:
        server.stop()
    print(f"{'client':<14} {'jobs/s (median)':>16} {'vs PGQueuer, by round':>24} "
          f"{'client CPU µs/job':>18}")
    for name, runs in figures.items():
        peer = [rate for rate, _ in figures["pgqueuer bulk" if "bulk" in name
                                            else "pgqueuer"]]
        rates = [rate for rate, _ in runs]
        ratios = " ".join(f"{rate / other:.2f}" for rate, other in zip(rates, peer,
                                                                       strict=True))
        print(f"{name:<14} {statistics.median(rates):>16,.0f} {ratios:>24} "
              f"{statistics.median(cpu for _, cpu in runs):>18.0f}")


if __name__ == "__main__":
    main()
