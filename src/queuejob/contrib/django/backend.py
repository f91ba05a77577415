"""``QueueJobBackend``: Django tasks stored as queuejob jobs in the project's database.

``enqueue`` writes the job on Django's own connection of the database (``DATABASE``
option, ``default`` by default), inside the current transaction: the job exists if
and only if that transaction commits, together with what the view wrote.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string, module_has_submodule

from ...backends.base import Row, Steps
from ...core import codec
from ...core.channels import ROOT, format_spec, normalize_name, parse_channels
from ...core.errors import ConfigurationError, NoSuchJobError
from ...core.job import Job, check_concurrency_key, check_timeout
from ...core.retry import validate_retry_pattern
from ...database import Database
from ...nodelay import no_delay
from ...storage import DatabaseJobStorage
from ...store.jobs import JobStore
from ...store.mapping import job_from_row
from ._compat import (
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    InvalidTaskError,
    Task,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
)
from .jobs import (
    CONTEXT_KEY,
    TaskJobFunction,
    aware,
    register_task,
    result_from_row,
    task_function,
    task_meta,
    to_queuejob_priority,
)

APP = "queuejob.contrib.django"
OPTIONS = frozenset({"database", "channels", "max_retries", "retry_pattern", "timeout",
                     "modules", "autodiscover", "concurrency_key"})
#: DATABASES OPTIONS that are libpq connection parameters (carried into the worker's URL)
CONNINFO = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword",
                      "connect_timeout", "application_name", "target_session_attrs",
                      "service", "passfile", "gssencmode", "channel_binding"})

_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def database_url(alias: str = DEFAULT_DB_ALIAS) -> str:
    """The queuejob URL of a Django database (what workers and ``queuejob`` commands
    open): SQLite in a file, or PostgreSQL."""
    wrapper = connections[alias]
    return url_for(wrapper.vendor, wrapper.settings_dict, alias)


def url_for(vendor: str, config: dict[str, Any], alias: str = DEFAULT_DB_ALIAS) -> str:
    """The queuejob URL of a database from its DATABASES entry and its vendor."""
    if vendor == "sqlite":
        name = str(config.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            raise ImproperlyConfigured(
                f"queuejob needs DATABASES[{alias!r}] in a file that workers open too, not "
                f"{name or 'an in-memory database'!r} (for tests, set its TEST NAME to a file)")
        return "sqlite:///" + urllib.parse.quote(os.path.abspath(name))
    if vendor == "postgresql":
        netloc = ""
        if config.get("USER"):
            netloc = urllib.parse.quote(str(config["USER"]), safe="")
            if config.get("PASSWORD"):
                netloc += ":" + urllib.parse.quote(str(config["PASSWORD"]), safe="")
            netloc += "@"
        query = {key: str(value) for key, value in (config.get("OPTIONS") or {}).items()
                 if key in CONNINFO}
        host = str(config.get("HOST") or "")
        if host.startswith("/"):
            query["host"] = host
        elif host:
            netloc += f"[{host}]" if ":" in host else host
        if config.get("PORT"):
            netloc += f":{config['PORT']}"
        url = f"postgresql://{netloc}/{urllib.parse.quote(str(config.get('NAME') or ''))}"
        return url + ("?" + urllib.parse.urlencode(query) if query else "")
    raise ImproperlyConfigured(f"queuejob stores jobs in SQLite or PostgreSQL, not in "
                               f"DATABASES[{alias!r}] ({vendor})")


def database(url: str) -> Database:
    """A queuejob Database for ``url`` (one per process and URL; it opens no
    connection of its own to enqueue: jobs go through Django's connection)."""
    with _databases_lock:
        found = _databases.get(url)
        if found is None:
            found = _databases[url] = Database(url, migrate=False)
        return found


def close_databases() -> None:
    """Close the Databases the backends opened (tests, shutdown)."""
    with _databases_lock:
        opened = list(_databases.values())
        _databases.clear()
    for db in opened:
        db.close()


async def close_databases_async() -> None:
    """Close the asyncio pools (PostgreSQL) that ``aenqueue`` and ``aget_result`` opened
    on the running event loop (one per loop): before a loop ends, as
    ``db.close_async()``."""
    with _databases_lock:
        opened = list(_databases.values())
    for db in opened:
        await db.close_async()


def migrate(alias: str = DEFAULT_DB_ALIAS) -> list[int]:
    """Create or update queuejob's tables in a Django database (the app's migration
    and the worker command do it); the versions applied."""
    db = Database(database_url(alias), migrate=False)
    try:
        return db.migrate()
    finally:
        db.close()


def queuejob_backends() -> list[QueueJobBackend]:
    """The task backends of the settings that are queuejob backends."""
    out = []
    for alias in getattr(settings, "TASKS", {}) or {}:
        backend = task_backends[alias]
        if isinstance(backend, QueueJobBackend):
            out.append(backend)
    return out


def task_modules(backends: Iterable[QueueJobBackend] | None = None) -> list[str]:
    """The task modules a worker imports: the backends' ``modules`` option, and the
    ``tasks`` module of every installed app (unless ``autodiscover`` is off)."""
    chosen = queuejob_backends() if backends is None else list(backends)
    names: list[str] = []
    for backend in chosen:
        names.extend(backend.modules)
    if any(backend.autodiscover for backend in chosen):
        for app_config in apps.get_app_configs():
            if module_has_submodule(app_config.module, "tasks"):
                names.append(f"{app_config.name}.tasks")
    return list(dict.fromkeys(names))


def import_task_modules(names: Iterable[str]) -> None:
    """Import task modules named by the settings (never by stored data): their tasks
    register as job functions."""
    for name in names:
        import_module(name)


#: a worker's channels when neither ``--channels`` nor a queue configures root



def worker_channels(backend: QueueJobBackend, channels: str | None,
                    queues: Iterable[str] = ()) -> str:
    """A worker's channel configuration from ``--channels`` and ``--queue-name`` values.

    A queue value is ``QUEUE[:capacity[:sequential][:throttle=N]]`` (several separated by
    commas): the ``--channels`` entry of the queue's channel (``channel_for``: the
    ``channels`` option, ``root.QUEUE``, or root for the default queue) with the rest as
    it is written there. A bare ``QUEUE`` is checked and adds nothing: its channel runs
    within the workers' capacities, as every channel without an entry does. A channel
    configured twice is refused. ConfigurationError says why. As ``--channels``, the
    result is rules for all workers of the database while this one runs."""
    specs = {spec.name: spec for spec in parse_channels(channels or "")}
    from_queues: dict[str, str] = {}
    for value in queues:
        for raw in value.split(","):
            entry = raw.strip()
            if not entry:
                continue
            queue, _, rest = (part.strip() for part in entry.partition(":"))
            if backend.queues and queue not in backend.queues:
                raise ConfigurationError(
                    f"queue {queue!r} is not one of TASKS[{backend.alias!r}]['QUEUES'] "
                    f"({', '.join(sorted(backend.queues))})")
            try:
                channel = backend.channel_for(queue) or ROOT
            except InvalidTaskError as exc:
                raise ConfigurationError(str(exc)) from None
            if not rest:
                continue
            try:
                [spec] = parse_channels(f"{channel}:{rest}")
            except ConfigurationError as exc:
                raise ConfigurationError(f"bad queue entry {entry!r}: {exc}") from None
            if channel in from_queues:
                raise ConfigurationError(
                    f"queue {queue!r} is channel {channel}, which queue "
                    f"{from_queues[channel]!r} configures already")
            if channel in specs:
                raise ConfigurationError(
                    f"queue {queue!r} is channel {channel}, which --channels configures "
                    "already")
            from_queues[channel] = queue
            specs[channel] = spec
    # root first, the others as given
    return ",".join(format_spec(spec) for spec in sorted(specs.values(),
                                                         key=lambda spec: spec.name != ROOT))


def queue_at_run_after(row: dict[str, Any]) -> Steps[dict[str, Any]]:
    """Give a just stored task with a ``run_after`` its place in line: ``run_after``.

    Workers start due jobs in ``(priority, date_created, id)`` order, read from the
    pending indexes (``queue_job_next``, ``queue_job_pending``) and nothing else. Django
    wants an earlier ``run_after`` to run first among tasks of equal priority, so the
    job's ``date_created`` becomes its ``run_after`` (copied from its ``eta``, as the
    database stored it): the claims keep their index and their order, and a deferred
    task competes from the moment it became due, as a task enqueued then would. Ordering
    the claims by ``coalesce(eta, date_created)`` instead would need new indexes and
    would also move every retried job (a retry sets its eta) to the back of the line.

    The creation time is kept in the job's context (``enqueued_at``, read back from
    ``date_created`` before it changes), where ``get_result`` finds it. One UPDATE of the
    row just written, in the same transaction (``JobStore.queue_at_eta``),
    as steps the session runs: the same for ``enqueue`` and ``aenqueue``.
    """
    job = job_from_row(row, decode=False)
    context = dict(job.context)
    meta = dict(task_meta(context) or {})
    meta["enqueued_at"] = row["date_created"]
    context[CONTEXT_KEY] = meta
    text = codec.dumps(context)
    yield from JobStore.queue_at_eta_steps(row["id"], text)
    return {**row, "date_created": row["eta"], "context": text}


def store_task(session: Any, job: Job, run_after: bool) -> Steps[tuple[str, Row | None]]:
    """Store a task's job in ``session`` and read its row back, as ``get_result`` reads
    it (with its place in line when it has a ``run_after``): the job's uuid and its row,
    None when nothing was stored (``trap_jobs`` caught the job, or no-delay ran it at
    once). Steps the session runs: ``enqueue`` on Django's connection, ``aenqueue`` in an
    asyncio session."""
    job_uuid = yield from DatabaseJobStorage(session).enqueue_steps(job)
    row = yield from session.db.store.load_steps(job_uuid)
    if row is not None and run_after:
        row = yield from queue_at_run_after(row)
    return job_uuid, row


class QueueJobBackend(BaseTaskBackend):
    """A Django task backend that stores tasks as queuejob jobs.

    ``OPTIONS``: ``database`` (the Django database alias holding the queue, default
    ``default``), ``channels`` (queue name -> channel; the default queue goes to the
    task function's channel, ``root`` unless ``queuejob functions set`` changed it,
    another queue ``Q`` to ``root.Q``), ``max_retries`` (queuejob's default 5),
    ``retry_pattern`` and ``timeout`` (every task's defaults), ``modules`` (task modules
    besides the installed apps' ``tasks``), ``autodiscover`` (True), ``concurrency_key``
    (a function, or its dotted path, called as ``key(task, args, kwargs)`` at every
    enqueue: the job's concurrency key, a str, or None for none).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.params = params
        options = dict(self.options)
        unknown = set(options) - OPTIONS
        if unknown:
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS']: unknown option(s) {', '.join(sorted(unknown))} "
                f"(queuejob's are {', '.join(sorted(OPTIONS))})")
        self.database_alias: str = options.get("database", DEFAULT_DB_ALIAS)
        try:
            self.channels = {str(queue): normalize_name(channel)
                             for queue, channel in (options.get("channels") or {}).items()}
            self.retry_pattern = validate_retry_pattern(options.get("retry_pattern"))
        except (ConfigurationError, ValueError, TypeError) as exc:
            raise ImproperlyConfigured(f"TASKS[{alias!r}]['OPTIONS']: {exc}") from None
        max_retries = options.get("max_retries")
        if max_retries is not None and (isinstance(max_retries, bool)
                                        or not isinstance(max_retries, int) or max_retries < 0):
            raise ImproperlyConfigured(f"TASKS[{alias!r}]['OPTIONS']['max_retries'] must be "
                                       "an int >= 0 (0: retry forever)")
        self.max_retries: int | None = max_retries
        try:
            self.timeout: float | None = check_timeout(options.get("timeout"))
        except ValueError as exc:
            raise ImproperlyConfigured(f"TASKS[{alias!r}]['OPTIONS']: {exc}") from None
        self.modules: list[str] = list(options.get("modules") or [])
        self.autodiscover: bool = bool(options.get("autodiscover", True))
        key = options.get("concurrency_key")
        if key is not None and not callable(key) and not (isinstance(key, str) and "." in key):
            raise ImproperlyConfigured(
                f"TASKS[{alias!r}]['OPTIONS']['concurrency_key'] must be a function called "
                f"as key(task, args, kwargs), or its dotted path, not {key!r}")
        #: what gives each task its concurrency key: a function, its dotted path (imported
        #: at the first enqueue: the settings are read before the apps are), or None
        self.concurrency_key: Any = key
        self._concurrency_key_function: Any = key if callable(key) else None

    # -- where -------------------------------------------------------------------------
    def database_url(self) -> str:
        return database_url(self.database_alias)

    def database(self) -> Database:
        return database(self.database_url())

    def channel_for(self, queue_name: str) -> str | None:
        """The channel of a queue: None for the default queue (the function's channel)."""
        if queue_name in self.channels:
            return self.channels[queue_name]
        if queue_name == DEFAULT_TASK_QUEUE_NAME:
            return None
        try:
            return normalize_name(queue_name)
        except ConfigurationError:
            raise InvalidTaskError(
                f"queue {queue_name!r} is not a queuejob channel name (letters, digits, '_' "
                f"and '-'): map it to one in TASKS[{self.alias!r}]['OPTIONS']['channels']"
            ) from None

    def task_modules(self) -> list[str]:
        return task_modules([self])

    def concurrency_key_function(self) -> Any:
        """The function of the ``concurrency_key`` option (None without one), imported
        from its dotted path on first use; ImproperlyConfigured when it cannot be."""
        if self._concurrency_key_function is None and self.concurrency_key is not None:
            try:
                found = import_string(self.concurrency_key)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"TASKS[{self.alias!r}]['OPTIONS']['concurrency_key']: cannot import "
                    f"{self.concurrency_key!r} ({exc})") from None
            if not callable(found):
                raise ImproperlyConfigured(
                    f"TASKS[{self.alias!r}]['OPTIONS']['concurrency_key']: "
                    f"{self.concurrency_key!r} is not a function")
            self._concurrency_key_function = found
        return self._concurrency_key_function

    def concurrency_key_of(self, task: Task, args: list[Any], kwargs: dict[str, Any]
                           ) -> str | None:
        """The concurrency key of a task about to be enqueued with these arguments (its
        JSON form): what the ``concurrency_key`` option's function returns, checked
        (a str of one printable line, at most 255 characters; None or '': no key)."""
        function = self.concurrency_key_function()
        if function is None:
            return None
        value = function(task, args, kwargs)
        try:
            return check_concurrency_key(value) or None
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"TASKS[{self.alias!r}]['OPTIONS']['concurrency_key'] gave "
                            f"{task.name}: {exc}") from None

    # -- the backend API -----------------------------------------------------------------
    def validate_task(self, task: Task) -> None:
        super().validate_task(task)
        self.channel_for(task.queue_name)
        register_task(task, retry_pattern=self.retry_pattern, timeout=self.timeout)

    def _task_job(self, task: Task, args: Any, kwargs: Any
                  ) -> tuple[TaskJobFunction, TaskResult, dict[str, Any], Job]:
        """What ``enqueue`` and ``aenqueue`` both store, checked before anything is
        written: the task's job function, its result before it is stored (the
        arguments normalized to JSON), the meta kept in the job's context, the Job."""
        self.validate_task(task)
        function = register_task(task, retry_pattern=self.retry_pattern, timeout=self.timeout)
        # checks and normalizes the arguments (JSON) before anything is written
        result = TaskResult(task=task, id="", status=TaskResultStatus.READY, enqueued_at=None,
                            started_at=None, finished_at=None, last_attempted_at=None,
                            args=args, kwargs=kwargs, backend=self.alias, errors=[],
                            worker_ids=[])
        run_after = aware(task.run_after) if task.run_after is not None else None
        meta: dict[str, Any] = {"backend": self.alias, "queue_name": task.queue_name,
                                "priority": task.priority, "run_after": run_after}
        options: dict[str, Any] = {"priority": to_queuejob_priority(task.priority),
                                   "channel": self.channel_for(task.queue_name)}
        if run_after is not None:
            options["eta"] = run_after
        if self.max_retries is not None:
            options["max_retries"] = self.max_retries
        concurrency_key = self.concurrency_key_of(task, result.args, result.kwargs)
        if concurrency_key is not None:
            options["concurrency_key"] = concurrency_key
        # the task's arguments as they are: keyword arguments named like queuejob's
        # options (priority, eta...) are the task's, never options
        job = Job(func=function, model_name=None, args=result.args, kwargs=result.kwargs,
                  **options)
        return function, result, meta, job

    @staticmethod
    def _stored(task: Task, function: TaskJobFunction, result: TaskResult, job_uuid: str,
                row: Row | None) -> TaskResult:
        """The result ``enqueue`` and ``aenqueue`` return: the stored job read back, or,
        when nothing was stored, the result with its id and the time of now."""
        if row is not None:
            result = result_from_row(row, function)
            object.__setattr__(result, "task", task)
        else:
            object.__setattr__(result, "id", job_uuid)
            object.__setattr__(result, "enqueued_at", timezone.now())
        return result

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """Store the task as a job in the current transaction of Django's connection.

        The result is the stored job read back, as ``get_result`` reads it: equal to
        ``get_result(result.id)`` (its ``enqueued_at`` is the job's creation time, set
        by the database), so that ``refresh()`` changes nothing."""
        function, result, meta, job = self._task_job(task, args, kwargs)
        db = self.database()
        wrapper = connections[self.database_alias]
        # savepoint=False: no extra round trips; a failure marks an enclosing atomic
        # block for rollback, as any failed query of the ORM does
        with transaction.atomic(using=self.database_alias, savepoint=False), \
                wrapper.wrap_database_errors:
            wrapper.ensure_connection()
            with db.session(connection=wrapper.connection,
                            context={CONTEXT_KEY: meta}) as session:
                job_uuid, row = session.run(store_task(session, job, task.run_after is not None))
        result = self._stored(task, function, result, job_uuid, row)
        task_enqueued.send(type(self), task_result=result)
        return result

    async def aenqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        """``enqueue`` for asyncio code, on queuejob's asyncio client: the job is written
        and read back without leaving the event loop (PostgreSQL: psycopg's asyncio
        connections; SQLite: queuejob's own threads), instead of running ``enqueue`` in
        Django's thread (``sync_to_async``, the default ``aenqueue``).

        Django has no transaction in async code: the job is committed in a transaction
        of its own when this returns, as ``enqueue`` does in autocommit. The result
        equals ``aget_result(result.id)`` and ``get_result(result.id)``. With no-delay
        set, the task runs at once: that goes through ``enqueue`` in Django's thread,
        where a task may use the ORM. ``task_enqueued`` is sent with ``asend`` (its
        synchronous receivers run in Django's thread, as Django runs them from async
        code)."""
        if no_delay(None):
            return await super().aenqueue(task, args, kwargs)
        function, result, meta, job = self._task_job(task, args, kwargs)
        db = self.database()
        with connections[self.database_alias].wrap_database_errors:
            async with db.session_async(context={CONTEXT_KEY: meta}) as session:
                job_uuid, row = await session.run(
                    store_task(session, job, task.run_after is not None))
        result = self._stored(task, function, result, job_uuid, row)
        await task_enqueued.asend(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> TaskResult:
        """The result of a task from its job, read on Django's connection (so inside the
        current transaction). TaskResultDoesNotExist for an unknown id, a job that is
        not a Django task, or a task whose module is not one of the task modules."""
        db = self.database()
        wrapper = connections[self.database_alias]
        with wrapper.wrap_database_errors:
            wrapper.ensure_connection()
            with db.session(connection=wrapper.connection) as session:
                row = DatabaseJobStorage(session).db_record_from_uuid(str(result_id))
        return self._result(result_id, row)

    async def aget_result(self, result_id: str) -> TaskResult:
        """``get_result`` for asyncio code: the job's row read on queuejob's asyncio
        client (committed jobs: Django has no transaction in async code), without
        Django's thread (``sync_to_async``, the default ``aget_result``)."""
        db = self.database()
        try:
            with connections[self.database_alias].wrap_database_errors:
                row = await db.aio.read(db.store.load_steps(str(result_id)))
        except NoSuchJobError:  # not a job uuid
            row = None
        return self._result(result_id, row)

    def _result(self, result_id: str, row: Row | None) -> TaskResult:
        """``get_result``'s result from the job's row (None: no such job)."""
        if row is None or task_meta(job_from_row(row, decode=False).context) is None:
            raise TaskResultDoesNotExist(result_id)
        function = self._function(row["func_name"])
        if function is None:
            raise TaskResultDoesNotExist(
                f"{result_id} is a job of {row['func_name']}, which is not a task of the "
                "task modules of this project")
        return result_from_row(row, function)

    def _function(self, func_name: str) -> TaskJobFunction | None:
        function = task_function(func_name)
        if function is None:
            # the task's module may not be imported yet: import the task modules the
            # settings name (never the one the stored name names)
            import_task_modules(task_modules())
            function = task_function(func_name)
        return function

    def check(self, **kwargs: Any) -> Iterable[checks.CheckMessage]:
        messages: list[checks.CheckMessage] = list(super().check(**kwargs))
        try:
            self.database_url()
        except ImproperlyConfigured as exc:
            messages.append(checks.Error(str(exc), id="queuejob.E001"))
        try:
            self.concurrency_key_function()
        except ImproperlyConfigured as exc:
            messages.append(checks.Error(str(exc), id="queuejob.E002"))
        if not apps.is_installed(APP):
            messages.append(checks.Warning(
                f"TASKS[{self.alias!r}] is a queuejob backend but {APP!r} is not in "
                "INSTALLED_APPS: `manage.py migrate` will not create queuejob's tables "
                "(the queuejob_worker command does at start-up)", id="queuejob.W001"))
        if "ENQUEUE_ON_COMMIT" in self.params:
            messages.append(checks.Warning(
                f"TASKS[{self.alias!r}]['ENQUEUE_ON_COMMIT'] is ignored: queuejob writes "
                "the job in the current transaction, so it exists only if that "
                "transaction commits", id="queuejob.W002"))
        return messages
