"""SQLite, the embedded default: one file, several worker processes on one machine.

Connections are in autocommit mode and every writing transaction starts with
``BEGIN IMMEDIATE``: Python's default deferred transactions fail at once with
SQLITE_BUSY when a read turns into a write in WAL mode, without waiting for
the busy timeout. WAL lets readers run beside the one writer.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from ...core.errors import ConfigurationError
from ..base import ChangeWatcher, Connector, Row, SimplePool, first_line

TIMESTAMPS = frozenset({"eta", "date_created", "date_enqueued", "date_started", "date_done",
                        "date_cancelled", "date_failed", "now", "last_slot", "last_failed",
                        "heartbeat", "date_stopped", "last_started", "date_updated",
                        "applied_at", "date_concluded"})

SYNCHRONOUS = {"off": "OFF", "normal": "NORMAL", "full": "FULL", "extra": "EXTRA"}


def _convert_row(row: sqlite3.Row) -> Row:
    out = dict(row)
    for key in TIMESTAMPS.intersection(out):
        value = out[key]
        if value is not None:
            out[key] = _from_epoch(value)
    return out


def _tolerant_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _from_epoch(value: float) -> Any:
    # a value stored by hand may be text, a BLOB or out of range: it is handed on as it
    # is, and the reader that needs a time says that this row's value is not one
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return value


def _param(value: Any) -> Any:
    return value.timestamp() if type(value) is dt.datetime else value


class SQLiteConnector(Connector):
    dialect = "sqlite"
    package = "queuejob.backends.sqlite"

    def __init__(self, url: str, *, busy_timeout: float = 5.0,
                 synchronous: str | None = None, **_: Any) -> None:
        super().__init__(url)
        parsed = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parsed.path)
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/file.db -> "/abs/file.db"
        if path.startswith("/"):
            path = path[1:]
        if parsed.netloc:
            raise ConfigurationError(
                f"bad SQLite URL {url!r}: use sqlite:///relative/path.db or sqlite:////abs/path.db")
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ConfigurationError(
                f"bad SQLite URL {url!r}: a file path is needed (workers share the database "
                "through the file)")
        query = dict(urllib.parse.parse_qsl(parsed.query))
        unknown = set(query) - {"busy_timeout", "synchronous"}
        if unknown:
            raise ConfigurationError(f"bad SQLite URL option(s): {', '.join(sorted(unknown))}")
        try:
            self.busy_timeout = float(query.get("busy_timeout", busy_timeout))
        except ValueError:
            raise ConfigurationError("busy_timeout must be a number of seconds") from None
        # NORMAL in WAL mode: a commit survives any crash of the process; an operating
        # system crash or a power loss may undo the last commits ("full" keeps them)
        sync = (query.get("synchronous") or synchronous or "normal").lower()
        if sync not in SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.synchronous = SYNCHRONOUS[sync]
        self.lock_timeout = self.busy_timeout
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ConfigurationError(f"cannot create the SQLite database {path!r}: "
                                     f"directory {directory!r} does not exist")
        self._pool = SimplePool(self)

    # -- connections ---------------------------------------------------------------------
    def connect(self, worker: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                   check_same_thread=False, cached_statements=256)
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open SQLite database {self.path!r}: {exc}") from None
        conn.row_factory = sqlite3.Row
        # a stored text that is not UTF-8 must fail its job, not the worker reading it:
        # undecodable bytes become lone surrogates, which the codec refuses
        conn.text_factory = _tolerant_text
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def close_connection(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error:
            pass
        conn.close()

    def begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def in_transaction(self, conn: sqlite3.Connection) -> bool:
        return conn.in_transaction

    def commit(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("COMMIT")

    def rollback(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def acquire(self) -> sqlite3.Connection:
        return self._pool.acquire()

    def release(self, conn: sqlite3.Connection, discard: bool = False) -> None:
        if not discard and conn.in_transaction:
            discard = True
        self._pool.release(conn, discard)

    def close(self) -> None:
        super().close()
        self._pool.close()

    def prepare(self, conn: sqlite3.Connection) -> None:
        # WAL is a property of the file: readers do not block the writer
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")

    # -- queries -------------------------------------------------------------------------
    def _params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        out = {key: _param(value) for key, value in params.items()} if params else {}
        out.setdefault("now", time.time())
        return out

    def execute(self, conn: sqlite3.Connection, name: str,
                params: Mapping[str, Any] | None = None) -> list[Row]:
        cursor = conn.cursor()
        # the application's own connection may have another row factory
        cursor.row_factory = sqlite3.Row
        cursor.execute(self.queries[name], self._params(params))
        return [_convert_row(row) for row in cursor.fetchall()]

    def execute_many(self, conn: sqlite3.Connection, name: str,
                     params: Sequence[Mapping[str, Any]]) -> list[Row]:
        sql = self.queries[name]
        now = time.time()
        rows: list[Row] = []
        cursor = conn.cursor()
        cursor.row_factory = sqlite3.Row
        for one in params:
            values = self._params(one)
            values["now"] = now
            rows.extend(_convert_row(row) for row in cursor.execute(sql, values).fetchall())
        return rows

    def copy(self, conn: sqlite3.Connection, name: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(self.queries[name], ([_param(value) for value in row] for row in rows))

    def execute_sql(self, conn: sqlite3.Connection, sql: str, params: Any = ()) -> Any:
        return conn.execute(sql, params)

    def execute_script(self, conn: sqlite3.Connection, sql: str) -> None:
        # executescript() would COMMIT the migration's transaction first: run the
        # statements one by one instead, splitting on complete statements
        statement = ""
        for line in sql.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                conn.execute(statement)
                statement = ""
        if statement.strip() and not all(
                part.strip().startswith("--") or not part.strip()
                for part in statement.splitlines()):
            raise ValueError(f"incomplete SQL statement in migration: {statement[:80]!r}")

    # -- errors --------------------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        if not isinstance(exc, sqlite3.OperationalError):
            return False
        message = str(exc).lower()
        return "locked" in message or "busy" in message or "disk i/o" in message

    def is_lost(self, exc: BaseException) -> bool:
        if not isinstance(exc, sqlite3.DatabaseError):
            return False
        message = str(exc).lower()
        return any(words in message for words in (
            "no such table", "no such column", "not a database", "malformed",
            "readonly database", "unable to open"))

    def is_disconnect(self, exc: BaseException) -> bool:
        # an embedded database has no connection to lose
        return False

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "unique" in str(exc).lower()

    def describe_error(self, exc: BaseException) -> str:
        return f"SQLite {self.path}: {first_line(str(exc)) or type(exc).__name__}"

    # -- wake-ups ------------------------------------------------------------------------
    def watcher(self, topic: str = "jobs") -> ChangeWatcher:
        # any commit to the file changes data_version, whatever the topic
        return DataVersionWatcher(self)


class DataVersionWatcher(ChangeWatcher):
    """Sees commits of other connections to the file through ``PRAGMA data_version``.

    SQLite has no notifications between processes. ``data_version`` changes when
    another connection commits; reading it costs a few microseconds and no disk
    I/O, so polling it every couple of milliseconds gives low latency cheaply.
    """

    def __init__(self, connector: SQLiteConnector, interval: float = 0.002) -> None:
        self._conn = connector.connect()
        self._interval = interval
        self._version = self._read()
        self._lock = threading.Lock()

    def _read(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def wait(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                version = self._read()
            if version != self._version:
                self._version = version
                return [""]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            time.sleep(min(self._interval, remaining))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
