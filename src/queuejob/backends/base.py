"""What every dialect's connector provides, and what they share.

A connector knows *how* to run SQL on its engine (connections, transactions,
parameters, errors, wake-ups), never *which* SQL: the SQL is in the dialect's
``queries.sql`` and ``migrations/``, and the operations that compose queries
are in ``queuejob.store``.
"""

from __future__ import annotations

import os
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, TypeVar

from ..core.errors import ConfigurationError

Row = dict[str, Any]


@dataclass(frozen=True)
class Statement:
    """One named query of a batch that ``execute_all_and_commit`` runs: ``params`` once,
    or, when ``many``, a sequence of parameter sets (as ``execute_many``)."""

    name: str
    params: Any = None
    many: bool = False


@dataclass(frozen=True)
class Copy:
    """A step that streams ``rows`` of values into a table (``Connector.copy``)."""

    name: str
    rows: Sequence[Sequence[Any]]


T = TypeVar("T")
#: An operation of the store written once for both kinds of caller: a generator that
#: yields the statements to run (``Statement`` or ``Copy``), is sent each one's rows
#: (an exception of the statement is thrown into it) and returns its result. A
#: synchronous connection runs it with ``Connector.drive``, an asyncio one with its
#: async driver (``queuejob.backends.postgres.aio``): the rules stay in one place.
Steps = Generator[Statement | Copy, list[dict[str, Any]], T]


def step_result(steps: Steps[T]) -> tuple[Statement | Copy | None, T | None]:
    """Start ``steps``: its first statement, or (None, its result) when it needs none."""
    try:
        return next(steps), None
    except StopIteration as stop:
        return None, stop.value


def resume(steps: Steps[T], rows: list[Row] | None = None,
           error: Exception | None = None) -> tuple[Statement | Copy | None, T | None]:
    """Give ``steps`` the rows of its statement (or the statement's ``error``): its
    next statement, or (None, its result) once it returned."""
    try:
        return (steps.throw(error) if error is not None else steps.send(rows or [])), None
    except StopIteration as stop:
        return None, stop.value


_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TEMPLATE = re.compile(r"/\* TEMPLATE: (\w+) \*/")


def load_queries(text: str) -> dict[str, str]:
    """Split a ``queries.sql`` file into ``{name: sql}`` by its ``-- name:`` headers."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for index in range(1, len(parts), 2):
        name, body = parts[index], parts[index + 1]
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if name in queries:
            raise ValueError(f"query {name} is defined twice")
        queries[name] = sql
    return queries


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(package: str) -> list[Migration]:
    """Numbered ``NNNN_name.sql`` files of a dialect, in order."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations of {package} are not numbered 1..n: {versions}")
    return found


#: where a database stands against this queuejob's migrations (SchemaStatus.state)
NO_DATABASE = "no database"   # nothing there (a SQLite file that does not exist)
NO_QUEUE = "no queue"         # a database without queuejob_migration
OLDER = "older"               # a queue missing some of this queuejob's migrations
CURRENT = "current"           # a queue with exactly this queuejob's migrations
NEWER = "newer"               # a queue migrated by a newer queuejob


@dataclass(frozen=True)
class SchemaStatus:
    """A database's schema as this queuejob sees it, read without changing anything."""

    state: str
    #: the migration versions recorded in the database (empty without a queue)
    applied: tuple[int, ...]
    #: the newest migration version this queuejob knows
    latest: int

    @property
    def version(self) -> int:
        """The database's schema version (0 without a queue)."""
        return max(self.applied, default=0)


def newer_schema_error(version: int, latest: int) -> ConfigurationError:
    """The refusal of a database migrated by a newer queuejob."""
    return ConfigurationError(
        f"this database was migrated by a newer queuejob (schema version {version}; "
        f"this one knows up to {latest}): upgrade queuejob")


class ChangeWatcher(ABC):
    """Tells a worker that jobs may have become runnable (new, requeued, freed)."""

    @abstractmethod
    def wait(self, timeout: float) -> list[str]:
        """Block up to ``timeout`` seconds; the payloads of what changed meanwhile (a
        notification's payload, ``""`` when the engine has none), empty when nothing
        did."""

    @abstractmethod
    def close(self) -> None: ...


class Connector(ABC):
    """How to run the named queries on one engine (the internal backend seam)."""

    dialect: ClassVar[str]
    #: package holding queries.sql and migrations/
    package: ClassVar[str]
    #: seconds a statement may wait for a lock or a connection before failing
    lock_timeout: float = 10.0

    def __init__(self, url: str) -> None:
        self.url = url
        # every .sql file beside the connector holds named queries (queries.sql for the
        # queue itself, others for the faces); a name is defined once across them
        self.queries: dict[str, str] = {}
        folder = resources.files(self.package)
        for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if entry.name.endswith(".sql") and entry.name != "schema.sql":
                for name, sql in load_queries(entry.read_text()).items():
                    if name in self.queries:
                        raise ValueError(f"query {name} is defined twice in {self.package}")
                    self.queries[name] = sql
        self.migrations = load_migrations(self.package)
        self._composed: dict[str, str] = {}
        self._closed = False

    # -- connections and transactions ----------------------------------------------------
    @abstractmethod
    def connect(self, worker: bool = False) -> Any:
        """A new connection, configured, outside any transaction. ``worker``: for a
        worker's own bookkeeping (claims, outcomes, heartbeats), which never waits on
        a lock for long nor stays idle inside a transaction."""

    @abstractmethod
    def close_connection(self, conn: Any) -> None: ...

    def is_closed(self, conn: Any) -> bool:
        """The connection is closed or broken and must be replaced."""
        return False

    @abstractmethod
    def begin(self, conn: Any) -> None:
        """Open a writing transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: implicit)."""

    @abstractmethod
    def in_transaction(self, conn: Any) -> bool: ...

    def commit(self, conn: Any) -> None:
        conn.commit()

    def rollback(self, conn: Any) -> None:
        conn.rollback()

    @abstractmethod
    def acquire(self) -> Any:
        """A connection for an application session (from a pool)."""

    @abstractmethod
    def release(self, conn: Any, discard: bool = False) -> None: ...

    def job_pool(self, size: int) -> SimplePool:
        """The connections the sessions of a worker's jobs borrow (at most ``size``
        open at once on a server; SQLite's are file handles, kept for reuse)."""
        return SimplePool(self, max_idle=size)

    def notify(self, conn: Any, payload: str, topic: str = "jobs") -> None:  # noqa: B027
        """Send a notification with ``conn``'s transaction (engines without them: other
        processes see the commit itself)."""

    def close(self) -> None:
        self._closed = True

    # -- running queries -----------------------------------------------------------------
    @abstractmethod
    def execute(self, conn: Any, name: str, params: Mapping[str, Any] | None = None
                ) -> list[Row]:
        """Run the named query; its rows as dicts (timestamps aware UTC, uuids str)."""

    def execute_composed(self, conn: Any, name: str, parts: Mapping[str, str],
                         params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a named query whose ``/* TEMPLATE: x */`` markers are filled with
        ``parts``, which must themselves be named queries' text (the dashboard's filter
        fragments), never values: values are bound parameters. The composed statement is
        kept, so that the driver prepares it once."""
        key = name + "[" + ";".join(f"{k}={v}" for k, v in sorted(parts.items())) + "]"
        if key not in self._composed:
            self._composed[key] = _TEMPLATE.sub(lambda match: parts[match.group(1)],
                                                self.queries[name])
            self.queries[key] = self._composed[key]
        return self.execute(conn, key, params)

    @abstractmethod
    def execute_many(self, conn: Any, name: str, params: Sequence[Mapping[str, Any]]
                     ) -> list[Row]:
        """Run the named query once per parameter set, in one round trip where the
        engine allows; the rows of all runs."""

    @abstractmethod
    def copy(self, conn: Any, name: str, rows: Sequence[Sequence[Any]]) -> None:
        """Stream rows of values into a table (the named query says which columns)."""

    def execute_many_and_commit(self, conn: Any, name: str,
                                params: Sequence[Mapping[str, Any]]) -> None:
        """``execute_many``, then commit (PostgreSQL sends both in one round trip)."""
        self.execute_many(conn, name, params)
        self.commit(conn)

    def execute_all_and_commit(self, conn: Any, statements: Sequence[Statement]
                               ) -> list[list[Row]]:
        """Run the statements in order, then commit; the rows of each. PostgreSQL sends
        them, BEGIN and COMMIT in one round trip (each statement still sees what the
        ones before it did and committed: a lock taken by one holds for the next)."""
        results = [self.execute_many(conn, st.name, st.params) if st.many
                   else self.execute(conn, st.name, st.params) for st in statements]
        self.commit(conn)
        return results

    def insert_alone(self, conn: Any, one: str, many: str,
                     params: Sequence[Mapping[str, Any]]) -> None:
        """Write rows as a transaction of their own on a pooled connection (outside any
        transaction): with query ``one`` for a single row, the batch query ``many``
        otherwise."""
        if len(params) == 1:
            # in autocommit mode, one statement is its own transaction
            self.execute(conn, one, params[0])
            return
        self.begin(conn)
        self.execute_many_and_commit(conn, many, params)

    @abstractmethod
    def execute_sql(self, conn: Any, sql: str, params: Any = ()) -> Any:
        """The application's own SQL, with the driver's placeholders; its cursor."""

    @abstractmethod
    def execute_script(self, conn: Any, sql: str) -> None:
        """Several statements (a migration) inside the current transaction."""

    # -- errors --------------------------------------------------------------------------
    @abstractmethod
    def is_transient(self, exc: BaseException) -> bool:
        """A failure worth retrying: lock contention, lost connection, server restart."""

    @abstractmethod
    def is_disconnect(self, exc: BaseException) -> bool:
        """The connection or the server went away (not mere lock contention)."""

    def is_conflict(self, exc: BaseException) -> bool:
        """A transaction that met a concurrent change and may simply run again at once
        (a serialization failure, a deadlock): no reason to back off nor reconnect."""
        return False

    def is_lost(self, exc: BaseException) -> bool:
        """The database cannot be used any more (its tables gone, a file that is not a
        database, no permission): a worker stops, saying why, instead of retrying."""
        return False

    @abstractmethod
    def is_unique_violation(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def describe_error(self, exc: BaseException) -> str:
        """One line for a log or the CLI."""

    # -- steps ---------------------------------------------------------------------------
    def run_step(self, conn: Any, step: Statement | Copy) -> list[Row]:
        """Run one statement of a ``Steps`` operation; its rows."""
        if isinstance(step, Copy):
            self.copy(conn, step.name, step.rows)
            return []
        if step.many:
            return self.execute_many(conn, step.name, step.params)
        return self.execute(conn, step.name, step.params)

    def drive(self, conn: Any, steps: Steps[T], first: Statement | Copy | None = None) -> T:
        """Run a ``Steps`` operation on ``conn``, statement by statement; its result.
        ``first``: its first statement, already taken out of it (``step_result``)."""
        step, result = (first, None) if first is not None else step_result(steps)
        while step is not None:
            try:
                rows = self.run_step(conn, step)
            except Exception as exc:
                step, result = resume(steps, error=exc)
            else:
                step, result = resume(steps, rows)
        return result  # type: ignore[return-value]

    # -- savepoints ----------------------------------------------------------------------
    @contextmanager
    def savepoint(self, conn: Any) -> Iterator[None]:
        """A part of the current transaction that can fail alone (rolled back to the
        savepoint, the transaction goes on)."""
        self.execute(conn, "savepoint")
        try:
            yield
        except BaseException:
            self.execute(conn, "rollback_to_savepoint")
            raise
        self.execute(conn, "release_savepoint")

    # -- wake-ups ------------------------------------------------------------------------
    @abstractmethod
    def watcher(self, topic: str = "jobs") -> ChangeWatcher:
        """A new watcher of changes made by other connections: ``jobs`` (jobs became
        runnable: for workers) or ``outcomes`` (jobs ended: for db.wait)."""

    # -- migrations ----------------------------------------------------------------------
    def prepare(self, conn: Any) -> None:  # noqa: B027 - optional hook
        """Database-wide settings applied before migrations (SQLite: WAL)."""

    @property
    def latest_version(self) -> int:
        """The newest migration version this queuejob knows."""
        return max((migration.version for migration in self.migrations), default=0)

    def _refuse_newer(self, done: set[int]) -> None:
        """A ConfigurationError when ``done`` holds versions this queuejob does not know:
        its queries would not match the tables a newer one made."""
        known = {migration.version for migration in self.migrations}
        if done - known:
            raise newer_schema_error(max(done), self.latest_version)

    def exists(self) -> bool:
        """Whether the database is there, found without creating it. A connector whose
        ``connect()`` would create a missing database (SQLite creates its file) answers
        from its ``path``; a server's database exists or connecting says why not."""
        path = getattr(self, "path", None)
        return not isinstance(path, str) or os.path.exists(path)

    def is_missing_table(self, exc: BaseException) -> bool:
        """The statement failed because a table it names does not exist (SQLite's
        "no such table", PostgreSQL's undefined_table)."""
        if getattr(exc, "sqlstate", None) == "42P01":
            return True
        return type(exc).__name__ == "OperationalError" and \
            str(exc).startswith("no such table")

    def schema_status(self) -> SchemaStatus:
        """Where the database stands against this queuejob's migrations, read without
        creating nor changing anything (a missing SQLite file stays missing)."""
        latest = self.latest_version
        if not self.exists():
            return SchemaStatus(NO_DATABASE, (), latest)
        conn = self.connect()
        try:
            try:
                done = {row["version"] for row in self.execute(conn, "applied_migrations")}
            except Exception as exc:
                if not self.is_missing_table(exc):
                    raise
                return SchemaStatus(NO_QUEUE, (), latest)
            finally:
                self.rollback_if_open(conn)
        finally:
            self.close_connection(conn)
        known = {migration.version for migration in self.migrations}
        applied = tuple(sorted(done))
        if done - known:
            return SchemaStatus(NEWER, applied, latest)
        if known - done:
            return SchemaStatus(OLDER, applied, latest)
        return SchemaStatus(CURRENT, applied, latest)

    def migrate(self) -> list[int]:
        """Apply pending migrations; safe when many processes open the database at once.
        Returns the versions this call applied. A database migrated by a newer queuejob
        (versions this one does not know) is refused with a ConfigurationError, and left
        as it is."""
        conn = self.connect()
        try:
            wanted = {migration.version for migration in self.migrations}
            found: set[int] | None = None
            try:
                found = {row["version"] for row in self.execute(conn, "applied_migrations")}
            except Exception as exc:
                if self.is_transient(exc):
                    raise
            finally:
                self.rollback_if_open(conn)
            if found is not None:
                # refused before anything is written (prepare included)
                self._refuse_newer(found)
            self.prepare(conn)
            if found is not None and wanted <= found:
                return []
            self.begin(conn)
            self.execute(conn, "lock_migrations")
            self.execute(conn, "create_migration_table")
            done = {row["version"] for row in self.execute(conn, "applied_migrations")}
            # another process may have migrated it meanwhile, with a newer queuejob
            self._refuse_newer(done)
            applied = []
            for migration in self.migrations:
                if migration.version in done:
                    continue
                self.execute_script(conn, migration.sql)
                self.execute(conn, "record_migration",
                             {"version": migration.version, "name": migration.name})
                applied.append(migration.version)
            self.commit(conn)
            return applied
        except BaseException:
            self.rollback_if_open(conn)
            raise
        finally:
            self.close_connection(conn)

    def rollback_if_open(self, conn: Any) -> None:
        try:
            if self.in_transaction(conn):
                self.rollback(conn)
        except Exception:  # noqa: S110 - the connection is being abandoned anyway
            pass


class SimplePool:
    """Idle connections kept for reuse by application sessions (LIFO).

    A connection is opened when none is idle; at most ``max_idle`` are kept.
    """

    def __init__(self, connector: Connector, max_idle: int = 8) -> None:
        self._connector = connector
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._closed = False

    def acquire(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connector.connect()

    def release(self, conn: Any, discard: bool = False) -> None:
        if not discard:
            with self._lock:
                if not self._closed and len(self._idle) < self._max_idle:
                    self._idle.append(conn)
                    return
        self._connector.close_connection(conn)

    def close_idle(self) -> None:
        """Close the idle connections (the pool stays usable)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._connector.close_connection(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.close_idle()


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""
