"""The asyncio client: ``db.session_async()``, ``fn.delay_async()``,
``fn.delay_many_async()``, ``graph.delay_async()``, ``db.wait_async()`` and the async
forms of the job operations.

They mean what the synchronous calls mean, because they run the same code: ``delay``
and ``delay_async`` build the same Job (the same reserved options, checks and errors)
and run the same store operation, written once as steps (``backends.base.Steps``:
the statements to run and what to do with their rows, identity keys and debounce
included). Only the driver differs:

- PostgreSQL: psycopg's ``AsyncConnection`` (``backends.postgres.aio``), the
  application's own (``connection=``: the jobs are written in its transaction) or one
  of a bounded asyncio pool configured as the synchronous one (behind PgBouncer too);
- SQLite: the synchronous session, its statements run on queuejob's own threads, so that
  the event loop never waits for the file's lock and SQLite's one writer at a time holds.

A task cancelled while it awaits one of these calls leaves nothing half written: an
owned session rolls back (its jobs go with it), a statement that was running is
cancelled by psycopg and the transaction rolled back, and a SQLite statement already
handed to a thread ends before the session's connection is touched again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from .backends.base import Steps, step_result
from .database import BaseSession, Database, JobStatus, Session, Waiting

T = TypeVar("T")
log = logging.getLogger("queuejob.aio")

#: SQLite: threads that run the asyncio sessions' statements (one writer at a time
#: anyway; the others read, or wait for the write lock without holding the loop)
SQLITE_THREADS = 4
#: SQLite: seconds between looks at the commit counter while ``wait_async`` waits
SQLITE_WAIT_STEP = 0.05


def _misuse(caller: str) -> TypeError:
    return TypeError(f"{caller} takes a session of db.session_async() "
                     "(async with db.session_async() as session: ...); in a session of "
                     "db.session(), call the synchronous form")


def check_session(session: Any, caller: str) -> AsyncSession:
    """The asyncio session an async call was given; TypeError for anything else (a
    synchronous session above all, whose calls would block the event loop)."""
    if not isinstance(session, AsyncSession):
        raise _misuse(caller)
    if session.closed:
        raise RuntimeError(f"{caller}: this session is closed")
    return session


class AsyncSession(BaseSession):
    """One transaction of an asyncio application (``db.session_async()``).

    ``await fn.delay_async(session, ...)`` delays jobs in it; ``await
    session.execute(sql, params)`` runs the application's own SQL in the same
    transaction (``%s`` placeholders on PostgreSQL, ``?`` on SQLite).

    Tasks may share a session: its operations run one at a time (``_lock``), and its end
    waits for the one in flight; an operation that comes after the end is refused."""

    #: an asyncio session: the synchronous calls refuse it
    is_async = True

    def __init__(self, db: Database, user_id: int | None, context: dict[str, Any] | None,
                 *, owns_transaction: bool, buffered: bool) -> None:
        super().__init__(db, user_id, context, owns_transaction=owns_transaction,
                         buffered=buffered)
        self._lock = asyncio.Lock()
        #: the task that awaited the end was cancelled: the end's own failure is logged
        self._abandoned = False

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this session is closed")

    async def run(self, steps: Steps[T]) -> T:
        """Run an operation of the store in this session's transaction."""
        step, result = step_result(steps)
        if step is None:
            return result  # type: ignore[return-value]
        async with self._lock:
            self._check_open()
            return await self._drive(steps, step)

    async def _drive(self, steps: Steps[T], first: Any) -> T:
        raise NotImplementedError

    async def execute(self, sql: str, params: Any = ()) -> Any:
        """Run the application's SQL in this session's transaction; returns the cursor
        (an asyncio cursor on PostgreSQL: ``await cursor.fetchall()``; on SQLite the rows
        are fetched already: ``cursor.fetchall()``)."""
        async with self._lock:
            self._check_open()
            return await self._execute(sql, params)

    async def _execute(self, sql: str, params: Any) -> Any:
        raise NotImplementedError

    async def commit(self) -> None:
        """Commit what the session did so far; it goes on in a new transaction."""
        if not self._owns_transaction:
            raise RuntimeError("this session uses the application's connection: "
                               "the application commits it")
        async with self._lock:
            self._check_open()
            await self._commit()
        self.after_commit()

    async def rollback(self) -> None:
        """Roll back what the session did so far, its jobs with it."""
        if not self._owns_transaction:
            raise RuntimeError("this session uses the application's connection: "
                               "the application rolls it back")
        async with self._lock:
            self._check_open()
            await self._rollback()

    async def _commit(self) -> None:
        raise NotImplementedError

    async def _rollback(self) -> None:
        raise NotImplementedError

    async def end(self, error: BaseException | None) -> None:
        """The end of the session's block: commit (or, after ``error``, roll back) and
        give the connection back; on the application's connection, only wait for what
        queuejob does on it. The end runs to its end in a task of its own, even when the
        awaiting task is cancelled, again and again as anyio's cancel scopes do (the
        cancellation is raised all the same): a transaction is never left open, nor a
        connection lost, nor SQLite's turn to write kept."""
        self.closed = True
        task = asyncio.get_running_loop().create_task(self._end(error))
        _ENDING.add(task)
        task.add_done_callback(self._ended)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            self._abandoned = True
            raise

    def _ended(self, task: asyncio.Task[None]) -> None:
        _ENDING.discard(task)
        if task.cancelled():
            return
        failure = task.exception()  # retrieved here when nobody awaits it any more
        if failure is not None and self._abandoned:
            log.warning("queuejob: the end of a cancelled session failed: %s", failure)

    async def _end(self, error: BaseException | None) -> None:
        async with self._lock:  # what another task has in flight in the session first
            if self._owns_transaction:
                await self._finish(error)
                if error is None:
                    self.after_commit()
            else:
                await self._borrowed_done()

    async def _finish(self, error: BaseException | None) -> None:
        raise NotImplementedError

    async def _borrowed_done(self) -> None:
        """The end of a session on the application's connection."""

    def __repr__(self) -> str:
        return f"<AsyncSession user_id={self.user_id} context={self.context}>"


#: the ends of sessions running on their own (a task needs a reference to run to its end)
_ENDING: set[asyncio.Task[None]] = set()


# -- PostgreSQL -------------------------------------------------------------------------------
class PostgresSession(AsyncSession):
    """An asyncio session on a psycopg ``AsyncConnection``."""

    def __init__(self, db: Database, conn: Any, user_id: int | None,
                 context: dict[str, Any] | None, *, owns_transaction: bool) -> None:
        super().__init__(db, user_id, context, owns_transaction=owns_transaction,
                         buffered=owns_transaction)
        self._conn = conn
        self._driver = db.aio.driver

    @property
    def connection(self) -> Any:
        """The psycopg ``AsyncConnection`` of this session."""
        return self._conn

    async def _write_connection(self) -> Any:
        """The connection inside a writing transaction, the jobs held so far written."""
        conn = self._conn
        if conn is None or conn.closed:
            raise RuntimeError("the session's connection is closed")
        if self._owns_transaction and not self._driver.in_transaction(conn):
            await self._driver.begin(conn)
        if self._held:
            held, self._held = self._held, []
            await self._driver.drive(conn, self.db.store.insert_many_steps(held))
        return conn

    async def _drive(self, steps: Steps[T], first: Any) -> T:
        return await self._driver.drive(await self._write_connection(), steps, first)

    async def _execute(self, sql: str, params: Any) -> Any:
        return await self._driver.execute_sql(await self._write_connection(), sql, params)

    async def _commit(self) -> None:
        conn = self._conn
        if self._held:
            held, self._held = self._held, []
            if conn is not None and self._driver.in_transaction(conn):
                await self._driver.insert_held(conn, held, commit=True)
            else:
                await self._insert_alone(held)
        elif conn is not None and self._driver.in_transaction(conn):
            await conn.commit()

    async def _insert_alone(self, held: list[dict[str, Any]]) -> None:
        """The jobs of a session that only delayed jobs: one statement, its own
        transaction. A pooled connection that a server restart closed wrote nothing:
        the jobs go to another one (as the synchronous session does)."""
        try:
            await self._driver.insert_held(self._conn, held, commit=False)
        except Exception as exc:
            if not self.db.connector.is_disconnect(exc):
                raise
            conn, self._conn = self._conn, None
            await self._driver.release(conn)
            self._conn = await self._driver.acquire()
            await self._driver.insert_held(self._conn, held, commit=False)

    async def _rollback(self) -> None:
        self._held = []
        self._inserted = False
        if self._conn is not None and not self._conn.closed:
            await self._conn.rollback()

    async def _finish(self, error: BaseException | None) -> None:
        try:
            if error is None:
                await self._commit()
            else:
                # the error that ended the block is the one raised: a rollback that
                # fails too (a connection gone) leaves the pool to drop the connection
                with contextlib.suppress(Exception):
                    await self._rollback()
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                # the pool rolls back what is left open and drops a broken connection
                await self._driver.release(conn)


class PostgresEngine:
    """The asyncio side of a PostgreSQL database."""

    def __init__(self, db: Database) -> None:
        from .backends.postgres import PostgresConnector
        from .backends.postgres.aio import AsyncPostgres
        assert isinstance(db.connector, PostgresConnector)
        self.db = db
        self.driver = AsyncPostgres(db.connector)
        #: the listeners of each event loop's waits (``changes_of``)
        self.changes: dict[tuple[asyncio.AbstractEventLoop, str], Changes] = {}

    async def session(self, user_id: int | None, context: dict[str, Any] | None,
                      connection: Any) -> AsyncSession:
        import psycopg
        if connection is None:
            return PostgresSession(self.db, await self.driver.acquire(), user_id, context,
                                   owns_transaction=True)
        connection = await _driver_connection(connection)
        if isinstance(connection, psycopg.Connection):
            raise TypeError("session_async(connection=...) takes a psycopg AsyncConnection; "
                            "a synchronous connection goes to db.session(connection=...)")
        if not isinstance(connection, psycopg.AsyncConnection):
            raise TypeError("session_async(connection=...) takes an open psycopg "
                            "AsyncConnection (or SQLAlchemy's AsyncSession or AsyncConnection "
                            f"over one), not {type(connection).__name__}")
        if connection.closed:
            raise ValueError("session_async(connection=...): the connection is closed")
        return PostgresSession(self.db, connection, user_id, context, owns_transaction=False)

    async def run(self, steps: Steps[T]) -> T:
        return await self.driver.run(steps)

    async def read(self, steps: Steps[T]) -> T:
        return await self.driver.read(steps)

    async def listen(self, topic: str, started: Callable[[], None],
                     changed: Callable[[], None]) -> None:
        await self.driver.listen(topic, started, changed)

    async def close(self) -> None:
        await self.driver.close()

    def shutdown(self) -> None:
        """``db.close()``: the pools of event loops still running are left to them
        (``close_async``); nothing else is held."""


async def _driver_connection(connection: Any) -> Any:
    """The psycopg connection under SQLAlchemy's ``AsyncSession`` or ``AsyncConnection``
    (the one the application's transaction runs on), else ``connection`` itself."""
    if not type(connection).__module__.startswith("sqlalchemy"):
        return connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
    if isinstance(connection, AsyncSession):
        connection = await connection.connection()
    if isinstance(connection, AsyncConnection):
        raw = await connection.get_raw_connection()
        return raw.driver_connection
    return connection


# -- SQLite -------------------------------------------------------------------------------------
class ThreadSession(AsyncSession):
    """An asyncio session on SQLite: a synchronous ``Session`` whose statements run on
    queuejob's own threads, one at a time.

    SQLite lets one transaction write at a time. A session that holds the write lock
    between two awaits would leave the threads of other sessions waiting for it, and
    itself waiting for a thread: the asyncio sessions of a loop take turns to write
    (the engine's ``writer`` lock, awaited on the loop, from their first write to the end
    of their transaction), so that only the lock of another process is ever waited for
    on a thread. A session on the application's connection that is inside a transaction
    already (it holds the file's lock) does not wait for the turn."""

    def __init__(self, db: Database, engine: ThreadEngine, inner: Session) -> None:
        super().__init__(db, inner.user_id, inner.context,
                         owns_transaction=inner._owns_transaction, buffered=False)
        self._engine = engine
        self._inner = inner
        #: what a thread is doing with the session's connection (even for a task that
        #: was cancelled while it waited): the next call waits for it to end
        self._busy: asyncio.Future[Any] | None = None
        #: this session has the loop's turn to write
        self._writing = False

    def hold(self, row: dict[str, Any]) -> bool:
        return self._inner.hold(row)

    def mark_inserted(self) -> None:
        self._inner.mark_inserted()

    @property
    def connection(self) -> Any:
        return self._inner.connection

    async def _idle(self) -> None:
        """Until no thread uses the session's connection."""
        if self._busy is not None and not self._busy.done():
            await asyncio.wait([self._busy])

    async def _take_turn(self) -> None:
        inner = self._inner
        if self._writing or (not inner._owns_transaction and inner.used):
            return
        await self._engine.writer().acquire()
        self._writing = True

    async def _call(self, function: Callable[[], T], *, write: bool = True) -> T:
        await self._idle()
        if write:
            await self._take_turn()
        future = self._engine.submit(function)
        self._busy = future
        return await asyncio.shield(future)

    def _end_turn(self) -> None:
        """The session's transaction is over (or was never opened): the next one writes."""
        if self._writing and not (self._inner.used or self._inner._held):
            self._writing = False
            self._engine.writer().release()

    async def _drive(self, steps: Steps[T], first: Any) -> T:
        inner = self._inner
        try:
            return await self._call(lambda: self.db.connector.drive(
                inner.write_connection(), steps, first))
        finally:
            self._end_turn()

    async def _execute(self, sql: str, params: Any) -> Any:
        try:
            return await self._call(lambda: _Fetched(self._inner.execute(sql, params)))
        finally:
            self._end_turn()

    async def _commit(self) -> None:
        try:
            await self._call(self._inner.commit)
        finally:
            self._end_turn()

    async def _rollback(self) -> None:
        try:
            await self._call(self._inner.rollback, write=False)
        finally:
            self._end_turn()

    async def _finish(self, error: BaseException | None) -> None:
        inner, connector = self._inner, self.db.connector

        def end() -> None:
            broken = False
            try:
                inner.close(error)
            except BaseException:
                broken = True
                if error is None:
                    connector.rollback_if_open(inner.connection)
                    raise
            finally:
                if inner.opened:
                    connector.release(inner.connection, discard=broken)
                    inner._conn = None
        try:
            # the jobs held until the commit are written in the loop's turn
            await self._call(end, write=error is None and bool(inner._held))
        finally:
            inner._held = []
            self._end_turn()

    async def _borrowed_done(self) -> None:
        """The end of a session on the application's connection: queuejob's last
        statement on it over, the turn given back (the transaction is the
        application's)."""
        try:
            await self._idle()
        finally:
            self._inner.closed = True
            if self._writing:
                self._writing = False
                self._engine.writer().release()


class _Fetched:
    """A SQLite cursor's rows, fetched on the thread that ran the statement."""

    def __init__(self, cursor: Any) -> None:
        self.description = cursor.description
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self._rows = cursor.fetchall()

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None


class ThreadEngine:
    """The asyncio side of a SQLite database: its work on a few threads of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        #: each loop's turn to write (``ThreadSession``)
        self._writers: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        #: the listeners of each event loop's waits (``changes_of``)
        self.changes: dict[tuple[asyncio.AbstractEventLoop, str], Changes] = {}
        self._lock = threading.Lock()

    def writer(self) -> asyncio.Lock:
        """The running loop's turn to write."""
        loop = asyncio.get_running_loop()
        lock = self._writers.get(loop)
        if lock is None:
            for other in [other for other in self._writers if other.is_closed()]:
                del self._writers[other]
            lock = self._writers[loop] = asyncio.Lock()
        return lock

    def submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    SQLITE_THREADS, thread_name_prefix="queuejob-sqlite")
            executor = self._executor
        return asyncio.get_running_loop().run_in_executor(executor, function)

    async def session(self, user_id: int | None, context: dict[str, Any] | None,
                      connection: Any) -> AsyncSession:
        import sqlite3
        db = self.db
        if connection is None:
            inner = Session(db, None, user_id, context, buffered=True,
                            connect=db.connector.acquire)
        elif isinstance(connection, sqlite3.Connection):
            try:
                connection.total_changes  # noqa: B018 - refused when closed
            except sqlite3.ProgrammingError:
                raise ValueError("session_async(connection=...): the connection is "
                                 "closed") from None
            inner = Session(db, connection, user_id, context, owns_transaction=False)
        else:
            raise TypeError("this database is SQLite: session_async(connection=...) takes a "
                            "sqlite3 connection (opened with check_same_thread=False: "
                            f"queuejob's threads use it), not {type(connection).__name__}")
        return ThreadSession(db, self, inner)

    async def run(self, steps: Steps[T]) -> T:
        # a writing transaction: in the loop's turn (``ThreadSession``)
        async with self.writer():
            return await asyncio.shield(self.submit(lambda: self.db.run(
                lambda conn: self.db.connector.drive(conn, steps))))

    async def read(self, steps: Steps[T]) -> T:
        return await self.submit(lambda: self.db.read(
            lambda conn: self.db.connector.drive(conn, steps)))

    async def listen(self, topic: str, started: Callable[[], None],
                     changed: Callable[[], None]) -> None:
        """SQLite has no notifications: the commit counter, looked at from a thread
        every ``SQLITE_WAIT_STEP`` seconds while someone waits."""
        watcher = await self.submit(lambda: self.db.connector.watcher(topic))
        try:
            started()
            while True:
                if await self.submit(functools.partial(watcher.wait, 0.0)):
                    changed()
                await asyncio.sleep(SQLITE_WAIT_STEP)
        finally:
            await self.submit(watcher.close)

    async def close(self) -> None:
        """Stop queuejob's SQLite threads once their statements end, without holding
        the loop meanwhile."""
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


class Changes:
    """What the waits of one event loop hear: one listener (a LISTEN connection, or
    SQLite's commit counter) for all of them, while any waits. ``generation`` counts the
    changes heard; a wait returns at once when it moved since the caller's last look,
    so nothing that happened between a look and the wait is missed."""

    def __init__(self, engine: Any, topic: str) -> None:
        self._engine = engine
        self._topic = topic
        self.generation = 0
        self._event = asyncio.Event()
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None

    def _changed(self) -> None:
        self.generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    def _started(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    async def _listen(self) -> None:
        try:
            await self._engine.listen(self._topic, self._started, self._changed)
        except Exception as exc:
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(exc)
            else:  # the waits go on with their periodic looks; the next one listens again
                log.warning("queuejob: the listener of %s stopped: %s", self._topic, exc)

    async def join(self) -> int:
        """One more wait listens (the listener started if it was not); the generation
        to wait from."""
        self._users += 1
        try:
            if self._task is None or self._task.done():
                self._ready = asyncio.get_running_loop().create_future()
                self._task = asyncio.get_running_loop().create_task(self._listen())
            assert self._ready is not None
            await asyncio.shield(self._ready)
        except BaseException:
            await self.leave()
            raise
        return self.generation

    async def leave(self) -> None:
        """A wait is over: the last one stops the listener."""
        self._users -= 1
        if self._users == 0 and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def wait(self, since: int, timeout: float) -> int:
        """Until a change after generation ``since``, or ``timeout`` seconds; the
        generation now."""
        if self.generation == since:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        return self.generation


def changes_of(db: Database, topic: str) -> Changes:
    """The running loop's listener of ``topic`` for ``db``."""
    engine = db.aio
    loop = asyncio.get_running_loop()
    for other in [other for other in engine.changes if other[0].is_closed()]:
        del engine.changes[other]
    key = (loop, topic)
    if key not in engine.changes:
        engine.changes[key] = Changes(engine, topic)
    return engine.changes[key]


# -- the entry points -------------------------------------------------------------------------
def engine_for(db: Database) -> PostgresEngine | ThreadEngine:
    return PostgresEngine(db) if db.dialect == "postgresql" else ThreadEngine(db)


class SessionOpening:
    """``db.session_async()``: an async context manager (a class rather than a generator:
    one session per job enqueued costs less this way), for one ``async with``."""

    def __init__(self, db: Database, user_id: int | None, context: dict[str, Any] | None,
                 connection: Any) -> None:
        if context is not None and not isinstance(context, dict):
            raise TypeError("context must be a dict")
        self._args = (user_id, context, connection)
        self._db = db
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        if self._session is not None:
            raise RuntimeError("this db.session_async() was entered already: call "
                               "db.session_async() for each async with")
        self._session = await self._db.aio.session(*self._args)
        return self._session

    async def __aexit__(self, kind: Any, error: BaseException | None, trace: Any) -> None:
        assert self._session is not None
        await self._session.end(error)


async def wait_async(db: Database, waiting: Waiting) -> JobStatus:
    """``db.wait_async()``: ``db.wait()``'s rules (``Waiting``) with asyncio I/O."""
    engine = db.aio
    store = db.store
    changes = changes_of(db, "outcomes")
    # announced as a waiter, and listening, before the first look: no outcome is missed
    await engine.run(store.waiter_steps(waiting.uuid, True))
    try:
        seen = await changes.join()
        try:
            while True:
                row = await engine.read(store.load_steps(waiting.uuid))
                status = waiting.look(row)
                if status is not None:
                    return status
                seen = await changes.wait(seen, waiting.pause(row))
        finally:
            await changes.leave()
    finally:
        await engine.run(store.waiter_steps(waiting.uuid, False))
