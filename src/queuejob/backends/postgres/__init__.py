"""PostgreSQL: one queue for many workers on many machines, no broker.

psycopg 3. Application sessions use a psycopg_pool pool; each worker keeps its
own connections. Claims are serialized by an advisory transaction lock so that
channel capacities hold across all workers; workers are woken by LISTEN/NOTIFY.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import uuid as uuid_module
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool

from ...core.errors import ConfigurationError
from ..base import ChangeWatcher, Connector, Row, first_line

LISTEN_CHANNEL = "queuejob"
#: notification channels: jobs became runnable; jobs ended (for db.wait)
TOPICS = {"jobs": LISTEN_CHANNEL, "outcomes": "queuejob_done"}
#: seconds a pooled connection may idle before it is pinged on checkout
PING_AFTER_IDLE = 2.0

# Every connection: UTC, and keepalives both ways, so that a machine that vanishes is
# noticed in about 25 s (by the client and by the server, which then ends its
# transaction and frees its locks) instead of the operating system's 2 hours.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}
SESSION_OPTIONS = ("-c TimeZone=UTC -c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                   "-c tcp_keepalives_count=3")
# A worker's own transactions are short: waiting 5 s for a lock (the claim lock, a row
# an application holds) means something is stuck, and the worker backs off and says
# so; a worker frozen inside a transaction (SIGSTOP, swap) loses it after 60 s, and its
# claim lock with it.
WORKER_OPTIONS = " -c lock_timeout=5s -c idle_in_transaction_session_timeout=60s"


def _convert_row(row: dict[str, Any]) -> Row:
    for key, value in row.items():
        if isinstance(value, uuid_module.UUID):
            row[key] = str(value)
    return row


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
        self.connect_timeout = connect_timeout
        self.lock_timeout = connect_timeout
        self._pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._returned: weakref.WeakKeyDictionary[psycopg.Connection, float] = \
            weakref.WeakKeyDictionary()

    # -- connections ---------------------------------------------------------------------
    def connect(self, worker: bool = False, autocommit: bool = False) -> psycopg.Connection:
        options = SESSION_OPTIONS + (WORKER_OPTIONS if worker else "")
        conn: psycopg.Connection = psycopg.connect(
            self.conninfo, autocommit=autocommit, row_factory=dict_row,  # type: ignore[arg-type]
            connect_timeout=max(1, int(self.connect_timeout)), options=options,
            **KEEPALIVES)  # type: ignore[arg-type]
        return conn

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
                    kwargs={"row_factory": dict_row, "options": SESSION_OPTIONS,
                            "connect_timeout": max(1, int(self.connect_timeout)),
                            "autocommit": True, **KEEPALIVES},
                    check=self._check_pooled,
                    timeout=self.connect_timeout, name="queuejob")
            return self._pool

    def acquire(self) -> psycopg.Connection:
        return self._get_pool().getconn()

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
                    cursor.execute(self.queries[name], params or {})
            else:
                cursor.execute(self.queries[name], params or {})
            if cursor.description is None:
                return []
            return [_convert_row(row) for row in cursor.fetchall()]

    def execute_many(self, conn: psycopg.Connection, name: str,
                     params: Sequence[Mapping[str, Any]]) -> list[Row]:
        # the batch queries take one array per parameter (unnest): one statement,
        # one round trip, whatever the number of rows
        if not params:
            return []
        arrays = {key: [row[key] for row in params] for key in params[0]}
        return self.execute(conn, name, arrays)

    def copy(self, conn: psycopg.Connection, name: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cursor, cursor.copy(self.queries[name]) as stream:
            for row in rows:
                stream.write_row(row)

    def execute_many_and_commit(self, conn: psycopg.Connection, name: str,
                                params: Sequence[Mapping[str, Any]]) -> None:
        # BEGIN (if due), the statement and COMMIT go out together in pipeline mode
        arrays = {key: [row[key] for row in params] for key in params[0]}
        with conn.pipeline(), conn.cursor() as cursor:
            cursor.execute(self.queries[name], arrays)
            conn.commit()

    def insert_alone(self, conn: psycopg.Connection, one: str, many: str,
                     params: Sequence[Mapping[str, Any]]) -> None:
        if not conn.autocommit:
            self.execute_many_and_commit(conn, many, params)
        elif len(params) == 1:
            # one statement is its own transaction: one round trip, no BEGIN nor COMMIT
            self.execute(conn, one, params[0])
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
        return NotificationWatcher(self, TOPICS[topic])


class NotificationWatcher(ChangeWatcher):
    """LISTEN on a connection of its own; a notification means new or freed jobs."""

    def __init__(self, connector: PostgresConnector, channel: str = LISTEN_CHANNEL) -> None:
        self._conn = connector.connect(worker=True, autocommit=True)
        self._conn.execute(f"LISTEN {channel}")

    def wait(self, timeout: float) -> bool:
        # several notifications in a row wake the worker once each; its wake-up
        # event folds them into one claim
        return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))

    def close(self) -> None:
        self._conn.close()
