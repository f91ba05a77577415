"""Django tasks as queuejob job functions, and queuejob jobs as Django task results.

Each Django task of a queuejob backend is a job function of its own, registered under
the task's module path (``shop.tasks.send_invoice``) when its module is imported: a
worker runs the tasks of the modules it imported, and ``queuejob functions set
shop.tasks.send_invoice --retry-pattern ...`` changes that task's retries. A stored
name is looked up among registered tasks, never imported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import traceback
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from ...core import registry
from ...core.channels import ROOT
from ...core.errors import FailedJobError, JobTimeout, NothingToDoJob, RetryableJobError
from ...core.job import DEFAULT_PRIORITY
from ...core.outcome import MAX_TEXT
from ...jobfunction import JobFunction
from ...store.mapping import job_from_row
from ._compat import (
    TASK_MAX_PRIORITY,
    TASK_MIN_PRIORITY,
    InvalidTaskError,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultStatus,
    module_path,
    normalize_json,
    task_backends,
    task_finished,
    task_started,
)

log = logging.getLogger("queuejob.django")

#: the key of a job's context that marks it as a Django task (with how it was enqueued)
CONTEXT_KEY = "django_task"

#: queuejob's state of a job -> Django's status of its result
STATUS = {
    "wait_dependencies": TaskResultStatus.READY,
    "pending": TaskResultStatus.READY,
    "enqueued": TaskResultStatus.READY,
    "started": TaskResultStatus.RUNNING,
    "done": TaskResultStatus.SUCCESSFUL,
    "failed": TaskResultStatus.FAILED,
    "cancelled": TaskResultStatus.FAILED,
}

_lock = threading.Lock()


class TaskCancelled(Exception):
    """The error of a task whose job was cancelled (``queuejob cancel``)."""


# -- priorities --------------------------------------------------------------------------
def to_queuejob_priority(priority: int) -> int:
    """Django's priority (-100..100, higher first, default 0) as queuejob's (smaller
    first, default 10): ``10 - priority``, so 100 -> -90, 0 -> 10, -100 -> 110."""
    return DEFAULT_PRIORITY - int(priority)


def to_django_priority(priority: int) -> int:
    """The inverse of ``to_queuejob_priority``, within Django's bounds."""
    return max(TASK_MIN_PRIORITY, min(TASK_MAX_PRIORITY, DEFAULT_PRIORITY - int(priority)))


# -- times -------------------------------------------------------------------------------
def django_time(value: dt.datetime | None) -> dt.datetime | None:
    """A time read from the queue as Django wants it: aware with USE_TZ, else naive in
    the current time zone."""
    if value is None:
        return None
    if settings.USE_TZ:
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)
    return timezone.make_naive(value) if timezone.is_aware(value) else value


def aware(value: dt.datetime) -> dt.datetime:
    """``run_after`` for the queue: a naive time (USE_TZ = False) is in the current zone."""
    if timezone.is_aware(value):
        return value
    return timezone.make_aware(value, timezone.get_current_timezone())


def enqueued_at(meta: dict[str, Any], date_created: dt.datetime | None) -> dt.datetime | None:
    """A task's ``enqueued_at``: its job's creation time. A task with a ``run_after`` has
    its job's ``date_created`` set to ``run_after`` (its place in line, see
    ``backend.queue_at_run_after``) and its creation time kept in ``meta``."""
    stored = meta.get("enqueued_at")
    return django_time(stored if isinstance(stored, dt.datetime) else date_created)


# -- job functions -----------------------------------------------------------------------
class TaskJobFunction(JobFunction):
    """The queuejob job function of one Django task (its ``func_name`` is the task's
    module path). Workers call it with the task's arguments; it runs the task and
    returns its return value as JSON, which the job stores as its result."""

    def __init__(self, task: Task, *, retry_pattern: Any = None, timeout: float | None = None
                 ) -> None:
        self.task = task
        func = task.func

        def run(session: Any, /, *args: Any, **kwargs: Any) -> str:
            return run_task(self, session, list(args), dict(kwargs))

        run.__module__ = func.__module__
        run.__name__ = func.__name__
        run.__qualname__ = func.__qualname__
        run.__doc__ = func.__doc__
        super().__init__(run, default_channel=ROOT, retry_pattern=retry_pattern,
                         timeout=timeout)

    def task_for(self, meta: dict[str, Any], priority: int | None = None) -> Task:
        """The task as it was enqueued (``using()`` may have changed its priority, queue,
        run_after or backend)."""
        base = self.task
        wanted = {"priority": meta.get("priority", priority),
                  "queue_name": meta.get("queue_name"),
                  "backend": meta.get("backend")}
        changes = {key: value for key, value in wanted.items()
                   if value is not None and value != getattr(base, key)}
        # run_after is stored even when None (the task registered first may have one)
        if "run_after" in meta:
            run_after = meta["run_after"]
            run_after = django_time(run_after) if isinstance(run_after, dt.datetime) else None
            if run_after != base.run_after:
                changes["run_after"] = run_after
        if not changes:
            return base
        try:
            return dataclasses.replace(base, **changes)
        except Exception:  # the settings changed since (a queue or backend removed)
            return base


def register_task(task: Task, *, retry_pattern: Any = None, timeout: float | None = None
                  ) -> TaskJobFunction:
    """The job function of ``task``, registered on first sight (a backend's
    ``validate_task`` calls this for every task declared with it)."""
    name = module_path(task.func)
    with _lock:
        existing = registry.job_function(name)
        if isinstance(existing, TaskJobFunction) and existing.task.func is task.func:
            return existing
        if existing is not None and not isinstance(existing, TaskJobFunction):
            raise InvalidTaskError(f"{name} is already a queuejob @job function")
        return TaskJobFunction(task, retry_pattern=retry_pattern, timeout=timeout)


def task_function(func_name: str) -> TaskJobFunction | None:
    """The registered job function of a Django task stored as ``func_name``, or None."""
    found = registry.job_function(func_name)
    return found if isinstance(found, TaskJobFunction) else None


def task_meta(context: dict[str, Any] | None) -> dict[str, Any] | None:
    """How a Django task was enqueued (from its job's context); None for other jobs."""
    meta = (context or {}).get(CONTEXT_KEY)
    return meta if isinstance(meta, dict) else None


# -- running -----------------------------------------------------------------------------
def encode_return_value(value: Any) -> str:
    """A task's return value as the job's result: JSON (Django requires return values
    that JSON can carry), within what a result may hold."""
    text = json.dumps(normalize_json(value))
    if len(text) > MAX_TEXT:
        raise ValueError(f"the task's return value is {len(text)} characters of JSON; "
                         f"a job's result holds at most {MAX_TEXT}")
    return text


def worker_ids(worker_id: str | None, attempts: int) -> list[str]:
    """Django's ``worker_ids`` (one per attempt): the queue records the last worker."""
    return [worker_id] * attempts if worker_id else []


def _send(signal: Any, backend: Any, result: TaskResult) -> None:
    sender = type(backend) if backend is not None else None
    for receiver, response in signal.send_robust(sender, task_result=result):
        if isinstance(response, Exception):
            log.error("task %s: receiver %r of a task signal failed: %r", result.id,
                      receiver, response)


def _set(result: TaskResult, **values: Any) -> None:
    for key, value in values.items():
        object.__setattr__(result, key, value)


def run_task(function: TaskJobFunction, session: Any, args: list[Any],
             kwargs: dict[str, Any]) -> str:
    """Run a Django task: in a worker, Django's connections are checked before and after
    (as around a request); task_started and task_finished are sent; the return value
    comes back as JSON. RetryableJobError retries the job; NothingToDoJob ends it
    successful with the return value None; any other exception fails it, BaseExceptions
    too (SystemExit, ``exit()``, KeyboardInterrupt), as the reference backends do:
    task_finished is sent with the FAILED result, then the exception goes on to the
    worker, which records the failure and carries on (a job thread's exception never
    stops the worker)."""
    job = getattr(session, "job", None)
    meta = task_meta(session.context) or {}
    task = function.task_for(meta)
    alias = meta.get("backend") or task.backend
    try:
        backend = task_backends[alias]
    except Exception:
        backend = None
    now = timezone.now()
    attempt = getattr(job, "attempt", 0) or 1
    result = TaskResult(
        task=task, id=getattr(job, "uuid", "") or "", status=TaskResultStatus.RUNNING,
        enqueued_at=enqueued_at(meta, getattr(job, "date_created", None)), started_at=now,
        last_attempted_at=now, finished_at=None, args=args, kwargs=kwargs, backend=alias,
        errors=[], worker_ids=worker_ids(getattr(job, "worker_id", None), attempt))
    # in a worker's job thread, Django's connections are checked as around a request
    # (never in a request's thread: trap_jobs or no-delay run tasks inside enqueue)
    in_worker = bool(getattr(session, "in_worker", False))
    if in_worker:
        close_old_connections()
    try:
        _send(task_started, backend, result)
        try:
            if task.takes_context:
                value = task.call(TaskContext(task_result=result), *args, **kwargs)
            else:
                value = task.call(*args, **kwargs)
            text = encode_return_value(value)
        except NothingToDoJob:
            text = "null"
        except RetryableJobError as err:
            last = (job is not None and not err.ignore_retry and job.max_retries
                    and job.retry >= job.max_retries)
            if last and job is not None:
                failure = FailedJobError(f"Max. retries ({job.max_retries}) reached: {err}")
                _finish_failed(result, backend, failure, err)
            raise
        except JobTimeout:
            # the worker stopped this attempt and decided its outcome already (a retry,
            # or a failure once its retries are used up); the exception may even land
            # just after the task returned: nothing to report from this thread
            raise
        except KeyboardInterrupt as exc:
            # in a worker, only the task itself can raise it in a job thread (signals go
            # to the main thread): a failure, as django-tasks' database worker records
            # it; run in the caller's thread (trap_jobs, no-delay), it is the user's
            # Ctrl-C, let through as ImmediateBackend does, without task_finished
            if in_worker:
                _finish_failed(result, backend, exc, exc)
            raise
        except BaseException as exc:
            _finish_failed(result, backend, exc, exc)
            raise
        _set(result, status=TaskResultStatus.SUCCESSFUL, finished_at=timezone.now(),
             _return_value=json.loads(text))
        _send(task_finished, backend, result)
        return text
    finally:
        if in_worker:
            close_old_connections()


def _finish_failed(result: TaskResult, backend: Any, error: BaseException,
                   raised: BaseException) -> None:
    text = "".join(traceback.format_exception(raised))
    result.errors.append(TaskError(exception_class_path=module_path(type(error)),
                                   traceback=text))
    _set(result, status=TaskResultStatus.FAILED, finished_at=timezone.now())
    _send(task_finished, backend, result)


# -- results -----------------------------------------------------------------------------
_HEADER = "Traceback (most recent call last):"
FAILED_PATH = module_path(FailedJobError)


def exception_class_path(exc_info: str) -> str:
    """The class of the exception that failed a job, read from its traceback (Python's
    format: the first unindented line after the last header names it); FailedJobError
    when queuejob failed the job without an exception (not registered, undecodable
    arguments, a worker that died) or when the traceback was cut before it."""
    lines = exc_info.splitlines()
    starts = [index for index, line in enumerate(lines) if line == _HEADER]
    if not starts:
        return FAILED_PATH
    for line in lines[starts[-1] + 1:]:
        if line and not line[0].isspace():
            if line.startswith("[... truncated"):
                break
            name = line.split(":", 1)[0].strip()
            if not name or " " in name:
                break
            return name if "." in name else f"builtins.{name}"
    return FAILED_PATH


def errors_of(row: dict[str, Any]) -> list[TaskError]:
    if row["state"] == "cancelled":
        return [TaskError(exception_class_path=module_path(TaskCancelled),
                          traceback=row["result"] or "cancelled")]
    text = row.get("exc_info")
    if not text:
        return [TaskError(exception_class_path=FAILED_PATH, traceback=row["result"] or "")]
    return [TaskError(exception_class_path=exception_class_path(text), traceback=text)]


def return_value_of(text: str | None) -> Any:
    """The JSON a task returned; None for a job done otherwise (set done by hand)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def result_from_row(row: dict[str, Any], function: TaskJobFunction) -> TaskResult:
    """The Django TaskResult of a stored job."""
    job = job_from_row(row)
    meta = task_meta(job.context) or {}
    task = function.task_for(meta, priority=to_django_priority(row["priority"]))
    status = STATUS.get(row["state"], TaskResultStatus.READY)
    finished = status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    finished_at = (row.get("date_failed") or row.get("date_done")) \
        if row["state"] == "failed" else row.get("date_done")
    result = TaskResult(
        task=task, id=row["uuid"], status=status,
        enqueued_at=enqueued_at(meta, row["date_created"]),
        started_at=django_time(row["date_started"]),
        finished_at=django_time(finished_at) if finished else None,
        last_attempted_at=django_time(row["date_started"]),
        args=list(job.args), kwargs=dict(job.kwargs),
        backend=meta.get("backend") or task.backend,
        errors=errors_of(row) if status == TaskResultStatus.FAILED else [],
        worker_ids=worker_ids(row.get("worker_id"), row.get("attempt") or 0))
    if status == TaskResultStatus.SUCCESSFUL:
        _set(result, _return_value=return_value_of(row["result"]))
    return result
