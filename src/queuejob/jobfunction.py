"""The ``@job`` and ``@related_action`` decorators, and ``delay``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from .core import registry
from .core.channels import ROOT, normalize_name
from .core.cron import Schedule
from .core.graph import Delayable
from .core.job import check_timeout, default_description
from .core.retry import validate_retry_pattern

P = ParamSpec("P")
R = TypeVar("R")


class JobFunction(Generic[P, R]):
    """A function decorated with ``@job``: call it to run it now, ``delay`` it to
    store a job that a worker runs later."""

    def __init__(self, func: Callable[P, R], default_channel: str = ROOT,
                 retry_pattern: Mapping[int, float] | None = None,
                 timeout: float | None = None, cron: str | None = None) -> None:
        if not callable(func):
            raise TypeError("@job decorates a function")
        if "<locals>" in func.__qualname__ or func.__name__ == "<lambda>":
            raise TypeError(f"@job needs a module-level function, not {func.__qualname__}: "
                            "workers find job functions by their module and name")
        functools.update_wrapper(self, func)
        self.func = func
        self.func_name = registry.qualified_name(func)
        self.default_channel = normalize_name(default_channel)
        self.retry_pattern = validate_retry_pattern(retry_pattern)
        self.timeout = check_timeout(timeout)
        self.related_action: Callable[..., Any] | None = getattr(func, "related_action", None)
        #: an ``async def`` function: workers await it on their event loop
        self.is_async = inspect.iscoroutinefunction(func)
        self.description = default_description(func)
        registry.register_job_function(self.func_name, self)
        if cron is not None:
            schedule(self, cron=cron)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function synchronously, as if it were not decorated."""
        return self.func(*args, **kwargs)

    def delay(self, session: Any, *args: Any, **kwargs: Any) -> str:
        """Store a job that will call this function; returns the job's uuid.

        ``delay(session, model_name, *args, **kwargs)``: the job calls
        ``func(session, model_name, *args, **kwargs)``, the arguments as they were given
        (the model name first, by convention; ``delay(session)`` calls
        ``func(session)``). Reserved keywords, never passed to the function: priority,
        max_retries, eta, description, channel, identity_key, timeout.
        """
        from .storage import DatabaseJobStorage
        return DatabaseJobStorage(session).enqueue_resolve_args(self, *args, **kwargs)

    def delayable(self, session: Any, *args: Any, **kwargs: Any) -> Delayable:
        """A job of this function, built but not stored, to compose into a graph with
        ``chain``, ``group`` and ``on_done``; ``delay()`` on the graph stores it all.
        Same arguments and reserved keywords as ``delay``."""
        from .storage import DatabaseJobStorage, job_of_call
        job = job_of_call(self, args, kwargs)
        return Delayable(session, job, DatabaseJobStorage(session).enqueue_graph)

    def delay_many(self, session: Any, calls: Iterable[Sequence[Any] | Mapping[str, Any]],
                   **options: Any) -> list[str]:
        """Store many jobs of this function in one go; their uuids, in order.

        Each call is a tuple of positional arguments, the model name first
        (``("res.partner", 42)``), or a dict ``{"args": (...), "kwargs": {...}}`` that
        may also hold options of its own. ``options`` (priority, eta, max_retries,
        description, channel, identity_key) apply to every job. Identity keys are
        honoured as by ``delay``, between the jobs of the call too.
        """
        from .core.job import Job
        from .storage import RESERVED, DatabaseJobStorage, job_of_call
        unknown = set(options) - set(RESERVED) - {"model_name"}
        if unknown:
            raise TypeError(f"delay_many() got unknown options: {', '.join(sorted(unknown))}")
        jobs = []
        shared = {key: value for key, value in options.items() if key != "model_name"}
        # the options shared by the calls are checked once: each job is a copy of this one
        template = Job(func=self, **shared)
        prefix = (options["model_name"],) if options.get("model_name") else ()
        for call in calls:
            if isinstance(call, Mapping):
                own = {**options, **{key: call[key] for key in RESERVED if key in call}}
                jobs.append(job_of_call(self, tuple(call.get("args", ())),
                                        {**dict(call.get("kwargs", {})), **own}))
                continue
            jobs.append(template.copy(prefix + tuple(call)))
        return DatabaseJobStorage(session).enqueue_many(jobs)

    def __repr__(self) -> str:
        return f"<job {self.func_name}>"


@overload
def job(func: Callable[P, R], default_channel: str = ROOT,
        retry_pattern: Mapping[int, float] | None = None,
        timeout: float | None = None, cron: str | None = None) -> JobFunction[P, R]: ...


@overload
def job(func: None = None, default_channel: str = ROOT,
        retry_pattern: Mapping[int, float] | None = None, timeout: float | None = None,
        cron: str | None = None) -> Callable[[Callable[P, R]], JobFunction[P, R]]: ...


def job(func: Callable[P, R] | None = None, default_channel: str = ROOT,
        retry_pattern: Mapping[int, float] | None = None, timeout: float | None = None,
        cron: str | None = None) -> Any:
    """Decorator for jobs: ``@job`` or ``@job(default_channel=..., retry_pattern=...)``.

    ``default_channel`` is the channel of the function's jobs (``delay(channel=...)``
    overrides it); ``retry_pattern`` maps a retry count to the delay in seconds
    of the next attempt after a RetryableJobError; ``timeout`` is the seconds an
    attempt may run before it is stopped and retried (``delay(timeout=...)``
    overrides it); ``cron`` delays a job (without arguments) at every slot of the
    cron expression, by workers that import the function's module.
    """
    if func is None:
        return functools.partial(job, default_channel=default_channel,
                                 retry_pattern=retry_pattern, timeout=timeout, cron=cron)
    return JobFunction(func, default_channel=default_channel, retry_pattern=retry_pattern,
                       timeout=timeout, cron=cron)


def schedule(func: JobFunction[..., Any], cron: str, args: Sequence[Any] = (),
             kwargs: Mapping[str, Any] | None = None, *, name: str | None = None,
             catch_up: bool = False, **options: Any) -> Schedule:
    """Delay ``func(session, *args, **kwargs)`` (model name first in ``args``) at every
    slot of ``cron`` (5 fields, or 6 with seconds last). Each slot gives one job
    across all workers and machines. Slots missed while no worker ran are not piled
    up (``catch_up=True``: they are delayed, up to 100). ``options`` are delay()'s
    reserved keywords (priority, channel, max_retries...). Workers that import the
    module declaring the schedule run it; ``name`` (default: the function's name)
    must be unique."""
    from .storage import RESERVED
    if not isinstance(func, JobFunction):
        raise TypeError("schedule() takes a function decorated with @job")
    unknown = set(options) - set(RESERVED)
    if unknown:
        raise TypeError(f"schedule() got unknown options: {', '.join(sorted(unknown))}")
    entry = Schedule(name=name or func.func_name, func=func, cron=cron, args=tuple(args),
                     kwargs=dict(kwargs or {}), options=options, catch_up=catch_up)
    registry.register_schedule(entry)
    return entry


def _no_action(session: Any, job: Any) -> None:
    return None


def related_action(action: Callable[..., Any] = _no_action, **kwargs: Any
                   ) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Attach a related action to a job function: ``action(session, job, **kwargs)``.

    The dashboard shows its result (a URL becomes a link); ``Job.related_action``
    calls it.
    """
    bound = functools.partial(action, **kwargs) if kwargs else action

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        func.related_action = bound  # type: ignore[attr-defined]
        return func

    return decorate


def whitelist_unpickle_global(fn_or_class: Any) -> Any:
    """Allow a function or class in job arguments (usable as a decorator).

    Instances of an allowed class are stored as their class name and their
    state (dataclass fields or ``__dict__``), which must be storable itself.
    Nothing is ever unpickled: the name is looked up among allowed ones.
    """
    return registry.whitelist(fn_or_class)
