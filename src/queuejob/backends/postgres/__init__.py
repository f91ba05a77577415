"""PostgreSQL: one queue for many workers on many machines, no broker.

psycopg 3. Application sessions (and the sessions of jobs) use a bounded psycopg_pool
pool; a worker's own work uses one connection. Claims are serialized by an advisory
transaction lock so that channel capacities hold across all workers; workers are woken
by LISTEN/NOTIFY.

Behind a pooler in transaction mode (PgBouncer, a managed PostgreSQL's pooler) every
connection works as it is: no startup ``options``, no server-side prepared statements
(unless asked for), no session state. What a worker's transactions need (lock and
idle timeouts) is set with ``set_config(..., true)`` inside each transaction, sent with
its first statement; timestamps are read as UTC whatever the session's time zone.
Only LISTEN needs a session: ``listen_url`` names a connection that keeps one (direct,
or a session-mode pool).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import time
import urllib.parse
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper
from psycopg.pq import Format, TransactionStatus
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

from ...core.errors import ConfigurationError
from ..base import ChangeWatcher, Connector, Row, Statement, first_line

LISTEN_CHANNEL = "queuejob"
#: the environment variable that names the listen URL
LISTEN_URL_ENV = "QUEUEJOB_LISTEN_URL"
#: notification channels: jobs became runnable; jobs ended (for db.wait)
TOPICS = {"jobs": LISTEN_CHANNEL, "outcomes": "queuejob_done"}
#: seconds a pooled connection may idle before it is pinged on checkout
PING_AFTER_IDLE = 2.0
#: seconds a connection of jobs' sessions may idle in its pool, while jobs run, before it
#: is closed (once no job holds one, the worker closes them all: JOB_POOL_IDLE)
JOB_CONNECTION_IDLE = 10.0

# Every connection: client keepalives, so that a server that vanishes is noticed in
# about 25 s instead of the operating system's 2 hours. (No startup parameter: a pooler
# in transaction mode refuses ``options``.)
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}
# A worker's own transactions are short: waiting 5 s for a lock (the claim lock, a row
# an application holds) means something is stuck, and the worker backs off and says
# so; a worker frozen inside a transaction (SIGSTOP, swap) loses it after 60 s, and its
# claim lock with it. Its commits do not wait for the WAL to reach the disk
# (synchronous_commit off): a server crash may undo the last few hundred milliseconds of
# claims and outcomes, which at-least-once allows (a claim undone leaves its job pending,
# so it runs again; an outcome undone leaves its job started by a worker that no longer
# runs it, which the worker gives back when it reconnects); an application's
# transactions, and so every job it delays, keep the server's setting. Set in each
# transaction (``is_local``): a pooled server connection goes to other clients between
# transactions.
WORKER_SETTINGS = ("SELECT set_config('lock_timeout', '5s', true), "
                   "set_config('idle_in_transaction_session_timeout', '60s', true), "
                   "set_config('synchronous_commit', 'off', true)")


def arrays(params: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Parameter sets as one array per parameter, for the batch queries (unnest)."""
    return {key: [row[key] for row in params] for key in params[0]}


#: type oids of the columns a result's rows convert (``_rows``)
_UUID_OID, _TIMESTAMPTZ_OID = 2950, 1184


class TextUuidBinaryDumper(Dumper):
    """A uuid of a binary COPY, from the text form queuejob keeps uuids in."""

    format = Format.BINARY
    oid = _UUID_OID

    def dump(self, obj: Any) -> bytes:
        text = str(obj)
        if len(text) == 36 and text.count("-") == 4:  # the form queuejob writes
            with contextlib.suppress(ValueError):
                return bytes.fromhex(text.replace("-", ""))
        return UUID(text).bytes  # other spellings of a uuid; ValueError for anything else


_COPY_TARGET = re.compile(r"COPY\s+(\w+)\s*\(([^)]*)\)\s+FROM\s+STDIN", re.IGNORECASE)


def copy_types_query(sql: str) -> str:
    """A query whose result's columns have the types of the columns a COPY ``sql``
    writes (a binary COPY sends each value in its column's binary form)."""
    found = _COPY_TARGET.search(sql)
    if found is None:
        raise ValueError(f"not a COPY of named columns: {sql[:60]!r}")
    table, columns = found.groups()
    return f"SELECT {columns} FROM {table} WHERE false"


def prepare_copy(cursor: Any, stream: Any, types: Sequence[int]) -> None:
    """Set up ``stream``, a binary COPY of ``cursor``, for values of ``types``."""
    cursor.adapters.register_dumper(None, TextUuidBinaryDumper)
    stream.set_types(types)


def _rows(cursor: psycopg.Cursor[Any]) -> list[Row]:
    """A result's rows as dicts: uuids as str; timestamps in UTC, whatever the time zone
    of the server connection (a pooled one has the server's default, and no startup
    parameter can change it)."""
    description = cursor.description
    if description is None:
        return []
    return convert_rows(description, cursor.fetchall())


def convert_rows(description: Sequence[Any], rows: list[Row]) -> list[Row]:
    """``_rows`` for rows fetched already (an asyncio cursor's): only the columns of the
    converted types are looked at."""
    uuids = [column.name for column in description if column.type_code == _UUID_OID]
    stamps = [column.name for column in description if column.type_code == _TIMESTAMPTZ_OID]
    if uuids or stamps:
        for row in rows:
            for key in uuids:
                value = row[key]
                if value is not None:
                    row[key] = str(value)
            for key in stamps:
                value = row[key]
                if value is not None and value.utcoffset():
                    row[key] = value.astimezone(dt.UTC)
    return rows


def _password(url: str) -> str | None:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:  # a URL too malformed to split: take what is between : and @
        userinfo = url.partition("://")[2].rpartition("@")[0]
        return userinfo.partition(":")[2] or None


def masked(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return without_password(url, url)


def without_password(text: str, url: str) -> str:
    """``text`` (a URL, or an error message about it) with the URL's password, as written
    and percent-decoded, replaced by ``***``: libpq's messages quote what they could
    not parse, the password included."""
    password = _password(url)
    if not password:
        return text
    for secret in sorted({password, urllib.parse.unquote(password)}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class PostgresConnector(Connector):
    dialect = "postgresql"
    package = "queuejob.backends.postgres"

    def __init__(self, url: str, *, connect_timeout: float = 10.0, pool_size: int = 10,
                 prepared_statements: bool | None = None, listen_url: str | None = None,
                 **_: Any) -> None:
        super().__init__(url)
        try:
            conninfo = psycopg.conninfo.make_conninfo(
                url.replace("postgres://", "postgresql://", 1))
            psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(f"bad PostgreSQL URL {masked(url)!r}: "
                                     f"{without_password(first_line(str(exc)), url)}") from None
        self.conninfo = conninfo
        self.display_url = masked(url)
        #: where LISTEN connects (a direct or session-pool URL); None: the database's
        self.listen_url: str | None = listen_url or os.environ.get(LISTEN_URL_ENV) or None
        self.listen_conninfo: str | None = None
        self.listen_display = masked(self.listen_url) if self.listen_url else None
        if self.listen_url is not None:
            try:
                self.listen_conninfo = psycopg.conninfo.make_conninfo(
                    self.listen_url.replace("postgres://", "postgresql://", 1))
                psycopg.conninfo.conninfo_to_dict(self.listen_conninfo)
            except psycopg.ProgrammingError as exc:
                raise ConfigurationError(
                    f"bad listen URL {masked(self.listen_url)!r}: "
                    f"{without_password(first_line(str(exc)), self.listen_url)}") from None
        self.connect_timeout = connect_timeout
        self.lock_timeout = connect_timeout
        self._pool_size = pool_size
        #: server-side prepared statements: True, False, or None: on the connections
        #: that reach the server directly, off through a pooler (``_tune``)
        self.prepared_statements = prepared_statements
        #: psycopg's prepare threshold of a new connection (``_tune`` may change it)
        self.prepare_threshold: int | None = 5 if prepared_statements else None
        #: the column types of each binary COPY, read from the table once
        self.copy_types: dict[str, list[int]] = {}
        #: the worker connections, whose transactions get WORKER_SETTINGS
        self._worker_conns: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection, float] = \
            weakref.WeakKeyDictionary()

    # -- connections ---------------------------------------------------------------------
    def connect(self, worker: bool = False, autocommit: bool = False,
                conninfo: str | None = None) -> psycopg.Connection:
        conn: psycopg.Connection = psycopg.connect(
            conninfo or self.conninfo, autocommit=autocommit,
            row_factory=dict_row,  # type: ignore[arg-type]
            connect_timeout=max(1, int(self.connect_timeout)),
            prepare_threshold=self.prepare_threshold, **KEEPALIVES)  # type: ignore[arg-type]
        self._tune(conn)
        if worker:
            self._worker_conns.add(conn)
        return conn

    def _tune(self, conn: psycopg.Connection) -> None:
        """A new connection prepares the statements it runs often when it reaches the
        server itself: the backend pid libpq was given at start-up is the server's.
        Through a pooler (which gives its own key, and hands each transaction to any
        server connection, where a prepared statement would be missing or already
        there) it never does."""
        if self.prepared_statements is not None:
            return
        row = conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
        if not conn.autocommit:
            conn.rollback()
        direct = row is not None and (row["pid"] if isinstance(row, dict) else row[0]) \
            == conn.info.backend_pid
        conn.prepare_threshold = 5 if direct else None

    def _first_statement(self, conn: psycopg.Connection) -> None:
        """Before the first statement of a worker's transaction, in the same pipeline:
        its settings (one round trip for BEGIN, the settings and the statement)."""
        if conn in self._worker_conns:
            conn.execute(WORKER_SETTINGS)

    def is_closed(self, conn: psycopg.Connection) -> bool:
        return conn.closed or conn.broken

    def close_connection(self, conn: psycopg.Connection) -> None:
        conn.close()

    def begin(self, conn: psycopg.Connection) -> None:
        # a worker's connections: psycopg opens a transaction at the first statement;
        # pooled ones are in autocommit (a session that only delays jobs writes them in
        # one statement, without BEGIN and COMMIT): open it here
        if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            conn.execute("BEGIN")
            if conn in self._worker_conns:
                conn.execute(WORKER_SETTINGS)

    def in_transaction(self, conn: psycopg.Connection) -> bool:
        return conn.info.transaction_status != TransactionStatus.IDLE

    def commit(self, conn: psycopg.Connection) -> None:
        conn.commit()

    def rollback(self, conn: psycopg.Connection) -> None:
        if not conn.closed:
            conn.rollback()

    def _get_pool(self) -> ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                # check: a pooled connection that a server restart closed is replaced
                # before a session gets it
                self._pool = ConnectionPool(
                    self.conninfo, min_size=0, max_size=self._pool_size, open=True,
                    kwargs={"row_factory": dict_row,
                            "prepare_threshold": self.prepare_threshold,
                            "connect_timeout": max(1, int(self.connect_timeout)),
                            "autocommit": True, **KEEPALIVES},
                    check=self._check_pooled, configure=self._tune,
                    timeout=self.connect_timeout, name="queuejob")
            return self._pool

    def acquire(self) -> psycopg.Connection:
        return self._get_pool().getconn()

    def job_pool(self, size: int) -> JobPool:  # type: ignore[override]
        return JobPool(self, size)

    def release(self, conn: psycopg.Connection, discard: bool = False) -> None:
        # the pool rolls back an open transaction and drops broken connections itself
        self._returned[conn] = time.monotonic()
        self._get_pool().putconn(conn)

    def _check_pooled(self, conn: psycopg.Connection) -> None:
        """Before a session gets a pooled connection: one that idled for a while is
        pinged (a server restart may have closed it); one used a moment ago is not,
        so that enqueueing one job per transaction costs no extra round trip."""
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("connection closed")
        if time.monotonic() - self._returned.get(conn, 0.0) > PING_AFTER_IDLE:
            ConnectionPool.check_connection(conn)

    def close(self) -> None:
        super().close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # -- queries -------------------------------------------------------------------------
    def execute(self, conn: psycopg.Connection, name: str,
                params: Mapping[str, Any] | None = None) -> list[Row]:
        # dict rows even on the application's own connection (tuple rows by default)
        with conn.cursor(row_factory=dict_row) as cursor:
            if conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit:
                # the first statement of a transaction: in pipeline mode, psycopg sends
                # its BEGIN with it, one round trip instead of two
                with conn.pipeline():
                    self._first_statement(conn)
                    cursor.execute(self.queries[name], params or {})
            else:
                cursor.execute(self.queries[name], params or {})
            return _rows(cursor)

    def execute_many(self, conn: psycopg.Connection, name: str,
                     params: Sequence[Mapping[str, Any]]) -> list[Row]:
        # the batch queries take one array per parameter (unnest): one statement,
        # one round trip, whatever the number of rows
        if not params:
            return []
        return self.execute(conn, name, arrays(params))

    def execute_all_and_commit(self, conn: psycopg.Connection,
                               statements: Sequence[Statement]) -> list[list[Row]]:
        # pipeline mode: BEGIN (if due), the settings, every statement and COMMIT go out
        # together; the server runs them in order, each with a snapshot of its own
        cursors: list[psycopg.Cursor[Any] | None] = []
        with conn.pipeline():
            if conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit:
                self._first_statement(conn)
            for statement in statements:
                if statement.many and not statement.params:
                    cursors.append(None)
                    continue
                cursor = conn.cursor(row_factory=dict_row)
                cursor.execute(self.queries[statement.name], arrays(statement.params)
                               if statement.many else statement.params or {})
                cursors.append(cursor)
            conn.commit()
        return [[] if cursor is None else _rows(cursor) for cursor in cursors]

    def copy(self, conn: psycopg.Connection, name: str, rows: Sequence[Sequence[Any]]) -> None:
        if conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit:
            self._first_statement(conn)
        types = self.copy_types.get(name)
        if types is None:
            with conn.cursor() as cursor:
                cursor.execute(copy_types_query(self.queries[name]))
                types = self.copy_types[name] = [
                    column.type_code for column in cursor.description or ()]
        with conn.cursor() as cursor, cursor.copy(self.queries[name]) as stream:
            prepare_copy(cursor, stream, types)
            for row in rows:
                stream.write_row(row)

    def execute_many_and_commit(self, conn: psycopg.Connection, name: str,
                                params: Sequence[Mapping[str, Any]]) -> None:
        # BEGIN (if due), the statement and COMMIT go out together in pipeline mode
        values = arrays(params)
        with conn.pipeline(), conn.cursor() as cursor:
            if conn.info.transaction_status == TransactionStatus.IDLE:
                self._first_statement(conn)
            cursor.execute(self.queries[name], values)
            conn.commit()

    def insert_alone(self, conn: psycopg.Connection, one: str, many: str,
                     params: Sequence[Mapping[str, Any]]) -> None:
        if not conn.autocommit:
            self.execute_many_and_commit(conn, many, params)
        elif len(params) == 1:
            # one statement is its own transaction: one round trip, no BEGIN nor COMMIT;
            # its uuid is known already: no rows fetched nor converted
            conn.execute(self.queries[one], params[0])
        else:
            self.execute_many(conn, many, params)

    def execute_sql(self, conn: psycopg.Connection, sql: str, params: Any = ()) -> Any:
        # the application's queries get psycopg's default rows (tuples)
        cursor = conn.cursor(row_factory=tuple_row)
        cursor.execute(sql, params or None)
        return cursor

    def execute_script(self, conn: psycopg.Connection, sql: str) -> None:
        conn.execute(sql)

    # -- errors --------------------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, pg_errors.UniqueViolation | pg_errors.InvalidPassword
                      | pg_errors.InvalidAuthorizationSpecification | pg_errors.InvalidCatalogName):
            return False
        # ReadOnlySqlTransaction: a fail-over made the server a standby for a moment
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError
                          | pg_errors.SerializationFailure | pg_errors.DeadlockDetected
                          | pg_errors.AdminShutdown | pg_errors.CannotConnectNow
                          | pg_errors.ReadOnlySqlTransaction
                          | pg_errors.InFailedSqlTransaction)

    def is_conflict(self, exc: BaseException) -> bool:
        # e.g. a claim that meets a pending job another transaction moved to the history
        # partition (cancelled) after the claim's statement began
        return isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected)

    def is_lost(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn
                          | pg_errors.UndefinedFunction | pg_errors.InsufficientPrivilege
                          | pg_errors.InvalidCatalogName | pg_errors.InvalidPassword
                          | pg_errors.InvalidAuthorizationSpecification)

    def is_disconnect(self, exc: BaseException) -> bool:
        return self.is_transient(exc) and not isinstance(
            exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected
            | pg_errors.LockNotAvailable | pg_errors.QueryCanceled)

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, pg_errors.UniqueViolation)

    def describe_error(self, exc: BaseException) -> str:
        message = without_password(first_line(str(exc)), self.url) or type(exc).__name__
        return f"PostgreSQL {self.display_url}: {message}"

    # -- wake-ups ------------------------------------------------------------------------
    def watcher(self, topic: str = "jobs") -> ChangeWatcher:
        return NotificationWatcher(self, TOPICS[topic], self.listen_conninfo)

    def notify(self, conn: psycopg.Connection, payload: str, topic: str = "jobs") -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (TOPICS[topic], payload))


class JobPool:
    """The connections of a worker's jobs' sessions: at most ``size`` open, closed after
    idling ``JOB_CONNECTION_IDLE`` seconds, opened when a job first uses its session.
    Transactions as psycopg opens them (a job's writes commit with its outcome)."""

    def __init__(self, connector: PostgresConnector, size: int) -> None:
        self._connector = connector
        self._size = max(1, size)
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def _get(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                connector = self._connector
                self._pool = ConnectionPool(
                    connector.conninfo, min_size=0, max_size=self._size, open=True,
                    max_idle=JOB_CONNECTION_IDLE, num_workers=1,
                    kwargs={"row_factory": dict_row,
                            "prepare_threshold": connector.prepare_threshold,
                            "connect_timeout": max(1, int(connector.connect_timeout)),
                            **KEEPALIVES},
                    check=connector._check_pooled, configure=connector._tune,
                    timeout=connector.connect_timeout, name="queuejob-jobs")
            return self._pool

    def acquire(self) -> psycopg.Connection:
        return self._get().getconn()

    def release(self, conn: psycopg.Connection, discard: bool = False) -> None:
        if discard:
            with contextlib.suppress(Exception):  # broken already
                conn.close()
        self._connector._returned[conn] = time.monotonic()
        self._get().putconn(conn)

    def close_idle(self) -> None:
        """Close the pool and its connections (none is borrowed): the next job that
        needs one opens it again."""
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close(timeout=1.0)
                self._pool = None


class NotificationWatcher(ChangeWatcher):
    """LISTEN on a connection of its own (to ``conninfo``: the listen URL, else the
    database's); a notification means new or freed jobs."""

    def __init__(self, connector: PostgresConnector, channel: str = LISTEN_CHANNEL,
                 conninfo: str | None = None) -> None:
        self._conn = connector.connect(autocommit=True, conninfo=conninfo)
        self._conn.execute(f"LISTEN {channel}")

    def wait(self, timeout: float) -> list[str]:
        # every notification that arrived, or the first one within the timeout
        payloads = [note.payload for note in self._conn.notifies(timeout=timeout,
                                                                  stop_after=1)]
        if payloads:
            payloads += [note.payload for note in self._conn.notifies(timeout=0)]
        return payloads

    def close(self) -> None:
        self._conn.close()
