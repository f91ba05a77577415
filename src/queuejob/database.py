"""``queuejob.open``: a database of jobs, and sessions (one transaction each).

A session is the application's transaction: jobs delayed in it are stored on
its connection, beside the application's own SQL (``session.execute``), and
exist only if it commits.
"""

from __future__ import annotations

import getpass
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .backends import base, connector_for_url
from .backends.base import Connector, SchemaStatus
from .core import registry, related, rows, states
from .core.codec import MAX_ARGS_SIZE
from .core.errors import ConfigurationError, NoSuchJobError
from .core.job import canonical_uuid
from .core.progress import Progress, check_progress, progress_of
from .store import JobReads, JobStore

if TYPE_CHECKING:
    from .aio import AsyncSession


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


#: seconds between looks at a waited job's progress, when the caller follows it
PROGRESS_LOOK = 0.5


@dataclass(frozen=True)
class JobStatus:
    """A job's outcome as ``db.wait`` returns it."""

    uuid: str
    state: str
    result: str | None
    exc_info: str | None
    #: the last progress the job reported (None: none)
    progress: Progress | None = None


class BaseSession:
    """What a session is whatever its I/O: the user and context jobs are created for,
    the jobs it holds until its next statement or commit, the job it runs in a worker.
    ``Session`` runs its statements on a synchronous connection, ``AsyncSession``
    (``queuejob.aio``) on an asyncio one; both run the same steps (``run``)."""

    def __init__(self, db: Database, user_id: int | None = None,
                 context: dict[str, Any] | None = None, *, owns_transaction: bool = True,
                 buffered: bool = False) -> None:
        self.db = db
        self.user_id = user_id
        self.context: dict[str, Any] = dict(context or {})
        self._owns_transaction = owns_transaction
        self._inserted = False
        self.closed = False
        self._buffered = buffered and owns_transaction
        self._held: list[dict[str, Any]] = []
        #: the running job, in the session a worker passes to a job function
        self.job: Any = None
        #: the session a worker's job thread passes to a job function
        self.in_worker = False
        #: where the running job's progress reports go (the worker's; None elsewhere)
        self.progress_sink: Callable[[Progress], None] | None = None
        #: the last progress the job reported in this session
        self.last_progress: Progress | None = None
        #: the open batch that jobs delayed in this session join (``queuejob.batch``)
        self.batch: Any = None

    def hold(self, row: dict[str, Any]) -> bool:
        """Keep a new job's row to write later; False when it must be written now."""
        if not self._buffered or self.closed:
            return False
        self._held.append(row)
        self._inserted = True
        return True

    def delaying(self, jobs: Sequence[Any]) -> None:
        """Jobs are being delayed in this session (``delay``, ``delay_many``, a graph's
        ``delay``: ``nodelay.intercept`` says so for each): an open batch takes them."""
        if self.batch is not None:
            self.batch.delaying(jobs)

    def mark_inserted(self) -> None:
        """Jobs were written: workers of this process are woken once it commits."""
        self._inserted = True

    def after_commit(self) -> None:
        """The session's transaction committed: wake this process's workers if it wrote
        jobs."""
        if self._inserted:
            self._inserted = False
            self.db.wake_local_workers()

    def run(self, steps: base.Steps[Any]) -> Any:
        """Run an operation of the store (``Steps``) in this session's writing
        transaction, opened at its first statement; its result (in an asyncio session,
        what awaits it)."""
        raise NotImplementedError


class Session(BaseSession):
    """One database transaction, with the user and context jobs are created for.

    ``user_id`` and ``context`` are stored with every job delayed in the session;
    ``execute`` runs the application's own SQL in the same transaction.

    Its connection is given (``conn``) or opened on first use (``connect``: the job
    thread's, in a worker). With ``owns_transaction`` off it is the application's and the
    session never commits nor rolls back. ``buffered``: jobs without an identity key are
    held and written with the next statement or at commit (several jobs in one
    statement; on PostgreSQL, with the commit, in one round trip).
    """

    def __init__(self, db: Database, conn: Any = None, user_id: int | None = None,
                 context: dict[str, Any] | None = None, *, owns_transaction: bool = True,
                 buffered: bool = False, connect: Callable[[], Any] | None = None) -> None:
        super().__init__(db, user_id, context, owns_transaction=owns_transaction,
                         buffered=buffered)
        self._conn = conn
        self._connect = connect
        #: the connection comes from the pool: it may be swapped for another
        self._replaceable = buffered

    def progress(self, done: int, total: int, message: str | None = None) -> None:
        """Report the running job's progress: ``done`` of ``total`` steps, and what it
        is doing. The worker stores the latest report with the job, at most once a
        second (and the last one when the job ends); ``queuejob jobs UUID``, the
        dashboard and ``db.wait()`` show it. A report that is not one (``done`` over
        ``total``, a ``total`` under 1, a message over 500 characters) raises
        ValueError. Outside a worker (a job performed in a test) it is only checked and
        kept in ``last_progress``."""
        report = check_progress(done, total, message)
        self.last_progress = report
        if self.progress_sink is not None:
            self.progress_sink(report)

    def run(self, steps: base.Steps[Any]) -> Any:
        step, result = base.step_result(steps)
        if step is None:
            return result
        return self.db.connector.drive(self.write_connection(), steps, first=step)

    @property
    def connection(self) -> Any:
        """The driver connection of this session (sqlite3 or psycopg)."""
        if self._conn is None and self._connect is not None:
            self._conn = self._connect()
        return self._conn

    @property
    def opened(self) -> bool:
        """The session has a connection (a lazy one is opened on first use)."""
        return self._conn is not None

    @property
    def used(self) -> bool:
        """The session opened a transaction that is still open."""
        return self._conn is not None and self.db.connector.in_transaction(self._conn)

    def write_connection(self) -> Any:
        """The connection inside a writing transaction (opened on first use), the jobs
        held so far written first: where a statement of the session runs."""
        if self.closed:
            raise RuntimeError("this session is closed")
        conn = self.connection
        connector = self.db.connector
        if self._owns_transaction and not connector.in_transaction(conn):
            connector.begin(conn)
        if self._held:
            held, self._held = self._held, []
            self.db.store.insert_many(conn, held)
        return conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        """Run the application's SQL in this session's transaction; returns the cursor.

        Placeholders are the driver's: ``?`` on SQLite, ``%s`` on PostgreSQL.
        """
        return self.db.connector.execute_sql(self.write_connection(), sql, params)

    def commit(self) -> None:
        """Commit what the session did so far; the session goes on in a new transaction."""
        if not self._owns_transaction:
            raise RuntimeError("this session uses the application's connection: "
                               "the application commits it")
        connector = self.db.connector
        if self._held:
            held, self._held = self._held, []
            store = self.db.store
            conn = self.connection  # a lazy one is opened here
            if connector.in_transaction(conn):
                store.insert_held(conn, held, commit=True)
            else:
                # the session only delayed jobs: one statement, its own transaction
                try:
                    store.insert_held(conn, held, commit=False)
                except Exception as exc:
                    if not (self._replaceable and connector.is_disconnect(exc)):
                        raise
                    # a pooled connection that a server restart closed: nothing was
                    # written, the jobs go to another connection
                    connector.release(self._conn, discard=True)
                    self._conn = connector.acquire()
                    store.insert_held(self._conn, held, commit=False)
        elif self._conn is not None and connector.in_transaction(self._conn):
            connector.commit(self._conn)
        self.after_commit()

    def rollback(self) -> None:
        if not self._owns_transaction:
            raise RuntimeError("this session uses the application's connection: "
                               "the application rolls it back")
        self._held = []
        if self._conn is not None:
            self.db.connector.rollback(self._conn)
        self._inserted = False

    def close(self, error: BaseException | None = None) -> None:
        """Commit (or, after ``error``, roll back) and close the session."""
        if self.closed:
            return
        try:
            if self._owns_transaction:
                if error is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.closed = True

    def for_job(self, job: Any) -> Session:
        """This session bound to ``job``, as a worker gives it to the job's function: the
        job's creator's user and context, its uuid in ``context["job_uuid"]`` and
        ``session.job``, on this session's transaction. Itself when already bound to it."""
        if self.job is job:
            return self
        return JobInSession(self, job)

    def related_action_of(self, func_name: str) -> Callable[..., Any] | None:
        """What ``Job.related_action`` calls: ``Database.related_action_of``."""
        return self.db.related_action_of(func_name)

    def __repr__(self) -> str:
        return f"<Session user_id={self.user_id} context={self.context}>"


class JobInSession(Session):
    """A session bound to a job, on another session's transaction (``Session.for_job``):
    what a job run at once, or performed by hand, gets."""

    def __init__(self, outer: Session, job: Any) -> None:
        super().__init__(outer.db, None, job.user_id, {**job.context, "job_uuid": job.uuid},
                         owns_transaction=False)
        self._outer = outer
        self.job = job
        self.in_worker = outer.in_worker

    @property
    def connection(self) -> Any:
        return self._outer.connection

    def write_connection(self) -> Any:
        return self._outer.write_connection()

    def commit(self) -> None:
        self._outer.commit()

    def rollback(self) -> None:
        self._outer.rollback()


class Waiting:
    """What ``wait`` and ``wait_async`` both do with each look at the waited job's row:
    the rules of waiting, without the I/O."""

    def __init__(self, job_uuid: str, timeout: float | None,
                 on_progress: Callable[[Progress], None] | None) -> None:
        self.uuid = canonical_uuid(job_uuid)
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.on_progress = on_progress
        #: seconds between looks (sooner when woken)
        self.every = 5.0 if on_progress is None else PROGRESS_LOOK
        self.seen: Progress | None = None

    def look(self, row: dict[str, Any] | None) -> JobStatus | None:
        """The job's status once it ended, else None (its new progress reported)."""
        if row is None:
            raise NoSuchJobError(f"no job {self.uuid}")
        progress = progress_of(row)
        if self.on_progress is not None and progress is not None and progress != self.seen:
            self.seen = progress
            self.on_progress(progress)
        if row["state"] in states.ENDED:
            return JobStatus(row["uuid"], row["state"], row["result"], row["exc_info"],
                             progress)
        return None

    def pause(self, row: dict[str, Any]) -> float:
        """Seconds to wait for a wake-up before the next look; TimeoutError when the
        time is up."""
        remaining = self.every if self.deadline is None else self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"job {self.uuid} is still {row['state']} after "
                               f"{self.timeout:g} s")
        return min(remaining, self.every)


class Database:
    """A job database (``queuejob.open(url)``); opens sessions, feeds workers."""

    def __init__(self, url: str, *, max_args_size: int = MAX_ARGS_SIZE, migrate: bool = True,
                 **options: Any) -> None:
        self.url = url
        self.connector: Connector = connector_for_url(url, **options)
        #: every write to the queue (and the reads a worker needs)
        self.store = JobStore(self.connector)
        #: the read models of the dashboard, the metrics and the command line
        self.reads = JobReads(self.connector)
        self.dialect = self.connector.dialect
        if isinstance(max_args_size, bool) or not isinstance(max_args_size, int) \
                or max_args_size <= 0:
            raise ConfigurationError("max_args_size must be a positive number of bytes")
        self.max_args_size = max_args_size
        self._local_workers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        #: the asyncio side (``aio``), made on first use
        self._aio: Any = None
        if migrate:
            try:
                self.migrate()
            except BaseException:
                self.connector.close()
                raise

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet (``open`` does it); the versions applied.
        ConfigurationError for a database migrated by a newer queuejob."""
        return self.connector.migrate()

    def schema_status(self) -> SchemaStatus:
        """Where the database stands against this queuejob's migrations (``state``: no
        database, no queue, older, current or newer), read without creating nor
        changing anything: what a ``migrate=False`` open asks before using a queue."""
        return self.connector.schema_status()

    def require_queue(self) -> None:
        """Refuse, in one line (ConfigurationError), a database that holds no queue of this
        queuejob's schema: what commands that must not create nor change one check."""
        status = self.schema_status()
        if status.state == base.CURRENT:
            return
        if status.state == base.NEWER:
            raise base.newer_schema_error(status.version, status.latest)
        path = getattr(self.connector, "path", None)
        where = f"SQLite file {path!r}" if isinstance(path, str) else "the database"
        if status.state == base.NO_DATABASE:
            raise ConfigurationError(f"{where} does not exist (nothing was created): "
                                     "'queuejob migrate' creates a queue there")
        if status.state == base.NO_QUEUE:
            raise ConfigurationError(f"{where} holds no queue (no queuejob_migration table; "
                                     "nothing was changed): 'queuejob migrate' creates one "
                                     "there")
        raise ConfigurationError(
            f"the queue is at schema version {status.version}, this queuejob's is "
            f"{status.latest}: 'queuejob migrate' updates it (a worker of this version does "
            "too when it starts)")

    @contextmanager
    def session(self, user_id: int | None = None, context: dict[str, Any] | None = None,
                connection: Any = None) -> Iterator[Session]:
        """One transaction: committed on normal exit, rolled back on an exception.

        With ``connection`` (an open psycopg or sqlite3 connection of the
        application) jobs are written in the application's current transaction
        and the session never commits nor rolls back: the application does.
        """
        if context is not None and not isinstance(context, dict):
            raise TypeError("context must be a dict")
        if connection is not None:
            session = Session(self, connection, user_id, context, owns_transaction=False)
            try:
                yield session
            finally:
                session.closed = True
            return
        session = Session(self, self.connector.acquire(), user_id, context, buffered=True)
        broken = False
        try:
            yield session
        except BaseException as exc:
            try:
                session.close(exc)
            except Exception:
                broken = True
            raise
        else:
            try:
                session.close()
            except BaseException:
                broken = True
                self.connector.rollback_if_open(session.connection)
                raise
        finally:
            self.connector.release(session.connection, discard=broken)

    def related_action_of(self, func_name: str) -> Callable[..., Any] | None:
        """The related action of a job function: its decorator's, as the stored setting
        changes it (``core.related``); None when it has none. ConfigurationError when
        the setting names a related action this process has not registered."""
        decorated = getattr(registry.job_function(func_name), "related_action", None)
        if not rows.is_text(func_name):  # a bad stored name has no stored setting
            return decorated
        setting = self.read(lambda conn: self.store.related_action_setting(conn, func_name))
        return related.effective(decorated, setting, registry.related_action)

    def connection(self) -> Any:
        """A new connection of the connector (for the worker and tools)."""
        return self.connector.connect()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A writing transaction on a pooled connection, for queuejob's own operations."""
        conn = self.connector.acquire()
        broken = False
        try:
            self.connector.begin(conn)
            yield conn
            self.connector.commit(conn)
        except BaseException:
            try:
                self.connector.rollback_if_open(conn)
            except Exception:
                broken = True
            raise
        finally:
            self.connector.release(conn, discard=broken)

    def run(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(conn)`` in a writing transaction of its own; its return value."""
        with self.transaction() as conn:
            return operation(conn)

    def read(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(conn)`` that only reads: on SQLite it takes no write lock, so it
        runs beside a writer (WAL)."""
        conn = self.connector.acquire()
        broken = False
        try:
            return operation(conn)
        finally:
            try:
                self.connector.rollback_if_open(conn)
            except Exception:
                broken = True
            self.connector.release(conn, discard=broken)

    def wait(self, job_uuid: str, timeout: float | None = None,
             on_progress: Callable[[Progress], None] | None = None) -> JobStatus:
        """Wait until the job is done, failed or cancelled; its state, result, traceback
        and last progress. TimeoutError after ``timeout`` seconds (None: no limit).
        ``on_progress`` is called with each new progress report seen while waiting
        (looked for twice a second).

        Woken by the outcome itself: a notification on PostgreSQL, SQLite's commit
        counter on SQLite (no query per poll)."""
        waiting = Waiting(job_uuid, timeout, on_progress)
        # announced as a waiter, and listening, before the first look: no outcome is missed
        self.run(lambda conn: self.connector.drive(
            conn, self.store.waiter_steps(waiting.uuid, True)))
        watcher = self.connector.watcher("outcomes")
        try:
            while True:
                row = self.read(lambda conn: self.store.load(conn, waiting.uuid))
                status = waiting.look(row)
                if status is not None:
                    return status
                watcher.wait(waiting.pause(row))
        finally:
            watcher.close()
            self.run(lambda conn: self.connector.drive(
                conn, self.store.waiter_steps(waiting.uuid, False)))

    # -- asyncio -------------------------------------------------------------------------
    def session_async(self, user_id: int | None = None, context: dict[str, Any] | None = None,
                      connection: Any = None) -> AbstractAsyncContextManager[AsyncSession]:
        """``session()`` for asyncio: ``async with db.session_async() as session:`` and
        ``await fn.delay_async(session, ...)``. Committed on normal exit, rolled back on
        an exception (a cancellation included).

        With ``connection``, an open psycopg ``AsyncConnection`` of the application (the
        one under SQLAlchemy's ``AsyncSession`` too), jobs are written in the
        application's current transaction: they exist only if it commits, and the
        session never commits nor rolls back. Without it, a connection of a bounded
        asyncio pool (PostgreSQL), or of queuejob's own threads (SQLite: the loop never
        waits for the file's lock)."""
        from .aio import SessionOpening
        return SessionOpening(self, user_id, context, connection)

    async def wait_async(self, job_uuid: str, timeout: float | None = None,
                         on_progress: Callable[[Progress], None] | None = None) -> JobStatus:
        """``wait()`` for asyncio: the event loop runs on while the job is awaited, and
        cancelling the awaiting task stops the wait (nothing is left behind)."""
        from .aio import wait_async
        return await wait_async(self, Waiting(job_uuid, timeout, on_progress))

    async def close_async(self) -> None:
        """Close the asyncio pool of the running event loop (``close()`` closes the rest:
        call this first from asyncio code)."""
        if self._aio is not None:
            await self._aio.close()

    @property
    def aio(self) -> Any:
        """The asyncio side of this database (``queuejob.aio``), made on first use."""
        with self._lock:
            if self._aio is None:
                from .aio import engine_for
                self._aio = engine_for(self)
            return self._aio

    # -- in-process wake-ups -------------------------------------------------------------
    def add_local_worker(self, worker: Any) -> None:
        """A worker of this process, woken when a session of it commits new jobs."""
        with self._lock:
            self._local_workers.add(worker)

    def remove_local_worker(self, worker: Any) -> None:
        with self._lock:
            self._local_workers.discard(worker)

    def wake_local_workers(self) -> None:
        if not self._local_workers:
            return
        with self._lock:
            workers = list(self._local_workers)
        for worker in workers:
            worker.wake()

    def close(self) -> None:
        if self._aio is not None:
            self._aio.shutdown()
        self.connector.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<queuejob.Database {self.connector.dialect}>"


def open(url: str, **options: Any) -> Database:
    """Open a job database and apply its pending migrations.

    ``sqlite:///path/jobs.db`` (created if missing) or
    ``postgresql://user:password@host:port/dbname``. A database migrated by a newer
    queuejob is refused (ConfigurationError). ``migrate=False`` opens it as it is,
    without connecting yet: ``Database.schema_status()`` then tells whether it holds a
    queue of this queuejob's schema.
    """
    return Database(url, **options)
