"""PostgreSQL for asyncio: the named queries of ``queries.sql`` on psycopg's
``AsyncConnection``, and a bounded ``AsyncConnectionPool`` for the sessions that bring
no connection of their own.

The store's operations are written once, as steps (``base.Steps``); ``drive`` runs them
here with ``await``, where the synchronous connector runs them with blocking calls. The
pool is configured as the synchronous one (``PostgresConnector._get_pool``): autocommit
connections, so that a session that only delays jobs writes them in one statement; no
prepared statements through a pooler (PgBouncer in transaction mode); a connection that
idled is pinged before a session gets it. An asyncio pool belongs to one event loop:
there is one per loop that uses the database.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

from ..base import Copy, Row, Statement, Steps, resume, step_result
from . import (
    KEEPALIVES,
    PING_AFTER_IDLE,
    TOPICS,
    PostgresConnector,
    arrays,
    convert_rows,
    copy_types_query,
    prepare_copy,
)

T = TypeVar("T")


class AsyncPostgres:
    """How to run the named queries on an ``AsyncConnection`` of one database."""

    def __init__(self, connector: PostgresConnector) -> None:
        self.connector = connector
        self._pools: dict[asyncio.AbstractEventLoop, asyncio.Future[AsyncConnectionPool]] = {}
        #: the pools opened already (what a session's checkout looks up)
        self._ready: dict[asyncio.AbstractEventLoop, AsyncConnectionPool] = {}
        #: what closes each loop's pool when the loop ends without close_async
        self._guards: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = \
            weakref.WeakKeyDictionary()
        #: the pool each borrowed connection goes back to
        self._origin: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any],
                                                AsyncConnectionPool] = \
            weakref.WeakKeyDictionary()

    # -- the pool ------------------------------------------------------------------------
    async def pool(self) -> AsyncConnectionPool:
        """This event loop's pool (opened on first use)."""
        loop = asyncio.get_running_loop()
        ready = self._ready.get(loop)
        if ready is not None:
            return ready
        opening = self._pools.get(loop)
        if opening is None:
            for other in [other for other in self._pools if other.is_closed()]:
                del self._pools[other]  # a loop that ended: its pool went with it
                self._ready.pop(other, None)
                self._guards.pop(other, None)
            opening = self._pools[loop] = loop.create_task(self._open())
        pool = await asyncio.shield(opening)
        self._ready[loop] = pool
        return pool

    async def _open(self) -> AsyncConnectionPool:
        connector = self.connector
        pool: AsyncConnectionPool = AsyncConnectionPool(
            connector.conninfo, min_size=0, max_size=connector._pool_size, open=False,
            kwargs={"row_factory": dict_row, "prepare_threshold": connector.prepare_threshold,
                    "connect_timeout": max(1, int(connector.connect_timeout)),
                    "autocommit": True, **KEEPALIVES},
            check=self._check, configure=self._tune, timeout=connector.connect_timeout,
            name="queuejob-async")
        await pool.open()
        self._guards[asyncio.get_running_loop()] = asyncio.get_running_loop().create_task(
            self._close_with_the_loop(pool), name="queuejob-async-pool-guard")
        return pool

    async def _close_with_the_loop(self, pool: AsyncConnectionPool) -> None:
        """Wait until the loop's tasks are cancelled (``asyncio.run`` does it at the end),
        then close the pool. Without this, a pool left open when the loop ends may keep
        the end waiting forever: its workers carry on through a cancellation that comes
        while they reconnect (after a server restart, for instance)."""
        loop = asyncio.get_running_loop()
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            if self._ready.get(loop) is pool:
                del self._ready[loop]
                self._pools.pop(loop, None)
            self._guards.pop(loop, None)
            await pool.close(timeout=1.0)
            raise

    async def _tune(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """As ``PostgresConnector._tune``: prepared statements only on a connection that
        reaches the server itself, never through a pooler."""
        if self.connector.prepared_statements is not None:
            return
        cursor = await conn.execute("SELECT pg_backend_pid() AS pid")
        row = await cursor.fetchone()
        direct = row is not None and (row["pid"] if isinstance(row, dict) else row[0]) \
            == conn.info.backend_pid
        conn.prepare_threshold = 5 if direct else None

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("connection closed")
        if time.monotonic() - self._returned.get(conn, 0.0) > PING_AFTER_IDLE:
            await AsyncConnectionPool.check_connection(conn)

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        pool = self._ready.get(asyncio.get_running_loop()) or await self.pool()
        conn = await pool.getconn()
        self._origin[conn] = pool
        return conn

    async def release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Give a connection back to the pool it came from (which rolls back an open
        transaction and drops a broken connection itself); closed, when that pool was
        closed meanwhile (``close_async``, or the end of its loop)."""
        self._returned[conn] = time.monotonic()
        pool = self._origin.pop(conn, None)
        if pool is None or pool.closed:
            await conn.close()
            return
        await pool.putconn(conn)

    async def close(self) -> None:
        """Close this event loop's pool."""
        loop = asyncio.get_running_loop()
        self._ready.pop(loop, None)
        guard = self._guards.pop(loop, None)
        if guard is not None:
            guard.cancel()
        opening = self._pools.pop(loop, None)
        if opening is not None:
            pool = await opening
            await pool.close()

    # -- transactions --------------------------------------------------------------------
    @staticmethod
    def in_transaction(conn: psycopg.AsyncConnection[Any]) -> bool:
        return conn.info.transaction_status != TransactionStatus.IDLE

    async def begin(self, conn: psycopg.AsyncConnection[Any]) -> None:
        # pooled connections are in autocommit: open the transaction here
        if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            await conn.execute("BEGIN")

    # -- queries -------------------------------------------------------------------------
    async def execute(self, conn: psycopg.AsyncConnection[Any], name: str,
                      params: Mapping[str, Any] | None = None) -> list[Row]:
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(self.connector.queries[name], params or {})
            if cursor.description is None:
                return []
            return convert_rows(cursor.description, await cursor.fetchall())

    async def execute_many(self, conn: psycopg.AsyncConnection[Any], name: str,
                           params: Sequence[Mapping[str, Any]]) -> list[Row]:
        if not params:
            return []
        return await self.execute(conn, name, arrays(params))

    async def copy(self, conn: psycopg.AsyncConnection[Any], name: str,
                   rows: Sequence[Sequence[Any]]) -> None:
        sql = self.connector.queries[name]
        types = self.connector.copy_types.get(name)
        if types is None:
            async with conn.cursor() as cursor:
                await cursor.execute(copy_types_query(sql))
                types = self.connector.copy_types[name] = [
                    column.type_code for column in cursor.description or ()]
        async with conn.cursor() as cursor, cursor.copy(sql) as stream:
            prepare_copy(cursor, stream, types)
            for row in rows:
                await stream.write_row(row)

    async def execute_sql(self, conn: psycopg.AsyncConnection[Any], sql: str,
                          params: Any = ()) -> Any:
        # the application's queries get psycopg's default rows (tuples)
        cursor = conn.cursor(row_factory=tuple_row)
        await cursor.execute(sql, params or None)
        return cursor

    async def insert_held(self, conn: psycopg.AsyncConnection[Any],
                          rows: Sequence[Mapping[str, Any]], *, commit: bool) -> None:
        """As ``JobStore.insert_held``: with ``commit``, the insert and the COMMIT in one
        round trip (pipeline mode); else, outside a transaction, one statement that is
        its own transaction."""
        if commit:
            async with conn.pipeline(), conn.cursor() as cursor:
                await cursor.execute(self.connector.queries["insert_jobs"], arrays(rows))
                await conn.commit()
        elif len(rows) == 1:
            # one statement, its own transaction; its uuid is known already: no rows
            # fetched nor converted
            await conn.execute(self.connector.queries["insert_job"], rows[0])
        else:
            await self.execute_many(conn, "insert_jobs", rows)

    async def run_step(self, conn: psycopg.AsyncConnection[Any],
                       step: Statement | Copy) -> list[Row]:
        if isinstance(step, Copy):
            await self.copy(conn, step.name, step.rows)
            return []
        if step.many:
            return await self.execute_many(conn, step.name, step.params)
        return await self.execute(conn, step.name, step.params)

    async def drive(self, conn: psycopg.AsyncConnection[Any], steps: Steps[T],
                    first: Statement | Copy | None = None) -> T:
        """``Connector.drive`` with ``await``: the same steps, the same order."""
        step, result = (first, None) if first is not None else step_result(steps)
        while step is not None:
            try:
                rows = await self.run_step(conn, step)
            except Exception as exc:
                step, result = resume(steps, error=exc)
            else:
                step, result = resume(steps, rows)
        return result  # type: ignore[return-value]

    async def run(self, steps: Steps[T]) -> T:
        """``steps`` in a transaction of their own, on a pooled connection."""
        conn = await self.acquire()
        try:
            async with conn.transaction():
                return await self.drive(conn, steps)
        finally:
            await self.release(conn)

    async def read(self, steps: Steps[T]) -> T:
        """``steps`` that only read, on a pooled connection (autocommit)."""
        conn = await self.acquire()
        try:
            return await self.drive(conn, steps)
        finally:
            await self.release(conn)

    # -- wake-ups ------------------------------------------------------------------------
    async def listen(self, topic: str, started: Callable[[], None],
                     changed: Callable[[], None]) -> None:
        """LISTEN on a connection of its own (the listen URL's, when one is set: a
        pooler in transaction mode cannot LISTEN); ``started()`` once listening,
        ``changed()`` at each notification, until cancelled."""
        conn = await psycopg.AsyncConnection.connect(
            self.connector.listen_conninfo or self.connector.conninfo, autocommit=True,
            connect_timeout=max(1, int(self.connector.connect_timeout)),
            **KEEPALIVES)  # type: ignore[arg-type]
        try:
            await conn.execute(f"LISTEN {TOPICS[topic]}")
            started()
            async for _ in conn.notifies():
                changed()
        finally:
            await conn.close()
