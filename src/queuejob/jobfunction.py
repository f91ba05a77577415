"""The ``@job`` and ``@related_action`` decorators, and ``delay``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from . import storage
from .aio import AsyncSession, check_session
from .core import registry
from .core.channels import ROOT, normalize_name
from .core.cron import Schedule
from .core.graph import Delayable
from .core.job import Job, check_model_name, check_timeout, default_description
from .core.retry import validate_retry_pattern

P = ParamSpec("P")
R = TypeVar("R")
#: a hook of ``@job(on_failure=..., on_retry=..., on_done=...)``: ``hook(session, job)``
Hook = Callable[[Any, Any], Any]


def _refuse_reserved_parameters(func: Callable[..., Any]) -> None:
    """TypeError when ``func`` has a parameter named like one of ``delay()``'s reserved
    options: ``delay`` would take the value for itself and the function never get it."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): nothing to refuse
        return
    for parameter in parameters:
        if parameter.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                  inspect.Parameter.KEYWORD_ONLY):
            continue
        # model_name is by convention the function's own (delay(model_name=...) fills it)
        if parameter.name in storage.RESERVED and parameter.name != "model_name":
            name = parameter.name
            raise TypeError(
                f"@job {func.__qualname__}: its parameter {name!r} has the name of delay()'s "
                f"reserved option {name!r}, which delay() takes for itself and would never "
                f"pass to the function; rename the parameter (for instance {name + '_'!r})")


def _check_hook(option: str, hook: Any) -> Hook | None:
    """A hook of ``@job``: None, or a module-level callable that takes (session, job)."""
    if hook is None:
        return None
    if not callable(hook):
        raise TypeError(f"@job({option}=...) takes a function called as "
                        f"{option}(session, job), not {type(hook).__name__}")
    target = hook
    while isinstance(target, functools.partial):
        target = target.func
    qualname = getattr(target, "__qualname__", None) or ""
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise TypeError(f"@job({option}=...) needs a module-level function, not {qualname}: "
                        "workers find the same one by importing the job function's module")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):  # no signature to read: trusted as it is
        return cast(Hook, hook)
    try:
        signature.bind(None, None)
    except TypeError:
        raise TypeError(f"@job({option}=...): {qualname or hook!r} is called as "
                        f"{option}(session, job), but its signature is {signature}") from None
    return cast(Hook, hook)


class JobFunction(Generic[P, R]):
    """A function decorated with ``@job``: call it to run it now, ``delay`` it to
    store a job that a worker runs later."""

    def __init__(self, func: Callable[P, R], default_channel: str = ROOT,
                 retry_pattern: Mapping[int, float] | None = None,
                 timeout: float | None = None, cron: str | None = None, *,
                 on_failure: Hook | None = None, on_retry: Hook | None = None,
                 on_done: Hook | None = None) -> None:
        if not callable(func):
            raise TypeError("@job decorates a function")
        if "<locals>" in func.__qualname__ or func.__name__ == "<lambda>":
            raise TypeError(f"@job needs a module-level function, not {func.__qualname__}: "
                            "workers find job functions by their module and name")
        _refuse_reserved_parameters(func)
        hooks = {name: _check_hook(name, hook) for name, hook in (
            ("on_failure", on_failure), ("on_retry", on_retry), ("on_done", on_done))}
        functools.update_wrapper(self, func)
        #: called as ``hook(session, job)`` when a job of this function fails for good,
        #: is put back to pending for a retry, is done (None: no hook)
        self.on_failure: Hook | None = hooks["on_failure"]
        self.on_retry: Hook | None = hooks["on_retry"]
        self.on_done: Hook | None = hooks["on_done"]
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
        max_retries, eta, description, channel, identity_key, timeout, concurrency_key
        (a str the jobs of one customer, tenant... share, for the channels' key_capacity
        and fair turns) and debounce (seconds: with an identity key, a pending job of
        this function holding the key takes these arguments and waits that long from
        now, and its uuid is returned).
        """
        if getattr(session, "is_async", False):
            raise TypeError("delay() in a session of db.session_async(): "
                            "await fn.delay_async(session, ...) instead")
        return storage.DatabaseJobStorage(session).enqueue_resolve_args(self, *args, **kwargs)

    async def delay_async(self, session: AsyncSession, *args: Any, **kwargs: Any) -> str:
        """``delay()`` in an asyncio session (``db.session_async()``): the same
        arguments, options, checks and identity keys; the job is written in the
        session's transaction without blocking the event loop. Returns the job's uuid."""
        session = check_session(session, "delay_async()")
        job = storage.job_of_call(self, args, kwargs)
        return await session.run(storage.DatabaseJobStorage(session).enqueue_steps(job))

    def delayable(self, session: Any, *args: Any, **kwargs: Any) -> Delayable:
        """A job of this function, built but not stored, to compose into a graph with
        ``chain``, ``group`` and ``on_done``; ``delay()`` on the graph stores it all.
        Same arguments and reserved keywords as ``delay``, but ``debounce``."""
        if "debounce" in kwargs:
            raise TypeError("delayable(): debounce is an option of delay() and delay_many(), "
                            "not of a job of a graph")
        job = storage.job_of_call(self, args, kwargs)
        return Delayable(session, job, storage.DatabaseJobStorage(session).enqueue_graph)

    def delay_many(self, session: Any, calls: Iterable[Sequence[Any] | Mapping[str, Any]],
                   **options: Any) -> list[str]:
        """Store many jobs of this function in one go; their uuids, in order.

        Each call is a tuple of positional arguments, the model name first
        (``("res.partner", 42)``), or a dict ``{"args": (...), "kwargs": {...}}`` that
        may also hold options of its own. ``options`` (priority, eta, max_retries,
        description, channel, identity_key, timeout, concurrency_key, debounce) apply to
        every job. Identity keys are honoured as by ``delay``, between the jobs of the
        call too; with ``debounce``, a later call with the same key replaces the arguments
        of an earlier one, and the jobs are stored one by one.
        """
        if getattr(session, "is_async", False):
            raise TypeError("delay_many() in a session of db.session_async(): "
                            "await fn.delay_many_async(session, calls) instead")
        return storage.DatabaseJobStorage(session).enqueue_many(self._jobs_of_calls(calls, options))

    async def delay_many_async(self, session: AsyncSession,
                               calls: Iterable[Sequence[Any] | Mapping[str, Any]],
                               **options: Any) -> list[str]:
        """``delay_many()`` in an asyncio session (``db.session_async()``): the same
        calls and options; the uuids, in order."""
        session = check_session(session, "delay_many_async()")
        jobs = self._jobs_of_calls(calls, options)
        return await session.run(storage.DatabaseJobStorage(session).enqueue_many_steps(jobs))

    def _jobs_of_calls(self, calls: Iterable[Sequence[Any] | Mapping[str, Any]],
                       options: dict[str, Any]) -> list[Any] | storage.Calls:
        """The Jobs of ``delay_many``'s calls, each checked (calls that are all tuples
        of one Job's options, without identity key nor debounce: ``storage.Calls``)."""
        storage.check_options(options, "delay_many()")
        calls = list(calls)
        shared = {key: value for key, value in options.items() if key != "model_name"}
        # the options shared by the calls are checked once: each job is a copy of this one
        # (a shared debounce without a shared identity key waits for the first call that
        # needs it: the calls given as dicts may bring their own keys)
        template = None if "debounce" in shared and "identity_key" not in shared \
            else Job(func=self, **shared)
        model_name = check_model_name(options.get("model_name"))
        prefix = (model_name,) if model_name else ()
        if template is not None and shared.get("identity_key") is None \
                and not any(isinstance(call, Mapping) for call in calls):
            return storage.Calls(template, [prefix + tuple(call) for call in calls])
        jobs = []
        for call in calls:
            if isinstance(call, Mapping):
                own = {**options, **{key: call[key] for key in storage.RESERVED if key in call}}
                jobs.append(storage.job_of_call(self, tuple(call.get("args", ())),
                                        {**dict(call.get("kwargs", {})), **own}))
                continue
            if template is None:
                template = Job(func=self, **shared)
            jobs.append(template.copy(prefix + tuple(call)))
        return jobs

    def __repr__(self) -> str:
        return f"<job {self.func_name}>"


@overload
def job(func: Callable[P, R], default_channel: str = ROOT,
        retry_pattern: Mapping[int, float] | None = None,
        timeout: float | None = None, cron: str | None = None, *,
        on_failure: Hook | None = None, on_retry: Hook | None = None,
        on_done: Hook | None = None) -> JobFunction[P, R]: ...


@overload
def job(func: None = None, default_channel: str = ROOT,
        retry_pattern: Mapping[int, float] | None = None, timeout: float | None = None,
        cron: str | None = None, *, on_failure: Hook | None = None,
        on_retry: Hook | None = None, on_done: Hook | None = None
        ) -> Callable[[Callable[P, R]], JobFunction[P, R]]: ...


def job(func: Callable[P, R] | None = None, default_channel: str = ROOT,
        retry_pattern: Mapping[int, float] | None = None, timeout: float | None = None,
        cron: str | None = None, *, on_failure: Hook | None = None,
        on_retry: Hook | None = None, on_done: Hook | None = None) -> Any:
    """Decorator for jobs: ``@job`` or ``@job(default_channel=..., retry_pattern=...)``.

    ``default_channel`` is the channel of the function's jobs (``delay(channel=...)``
    overrides it); ``retry_pattern`` maps a retry count to the delay in seconds
    of the next attempt after a RetryableJobError; ``timeout`` is the seconds an
    attempt may run before it is stopped and retried (``delay(timeout=...)``
    overrides it); ``cron`` delays a job (without arguments) at every slot of the
    cron expression, by workers that import the function's module.

    ``on_failure``, ``on_retry`` and ``on_done`` are hooks, each called as
    ``hook(session, job)`` when a job of the function fails for good, is put back to
    pending for a retry, or is done. Each must be a module-level function (or a
    ``functools.partial`` of one) accepting these two arguments: a worker finds the same
    one by importing the function's module, as for related actions.

    A function with a parameter named like one of ``delay()``'s reserved options
    (priority, eta, max_retries, description, channel, identity_key, timeout,
    concurrency_key, debounce) is refused with a TypeError: ``delay()`` would take the
    value for itself and never pass it on.
    """
    if func is None:
        return functools.partial(job, default_channel=default_channel,
                                 retry_pattern=retry_pattern, timeout=timeout, cron=cron,
                                 on_failure=on_failure, on_retry=on_retry, on_done=on_done)
    return JobFunction(func, default_channel=default_channel, retry_pattern=retry_pattern,
                       timeout=timeout, cron=cron, on_failure=on_failure, on_retry=on_retry,
                       on_done=on_done)


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
    if not isinstance(func, JobFunction):
        raise TypeError("schedule() takes a function decorated with @job")
    storage.check_options(options, "schedule()")
    if "debounce" in options:
        raise TypeError("schedule(): debounce is not an option of schedules: each slot "
                        "delays a job of its own, due at the slot")
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
    calls it. ``action`` is registered: a job function's stored setting may name it
    (``queuejob functions set NAME --related-action module.action``).
    """
    if action is not _no_action:  # people may name it in a function's stored settings
        registry.register_related_action(action)
    bound = functools.partial(action, **kwargs) if kwargs else action

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        func.related_action = bound  # type: ignore[attr-defined]
        return func

    return decorate


def register_related_action(action: Callable[..., Any]) -> Callable[..., Any]:
    """Register ``action(session, job, **kwargs)`` as a related action that a job
    function's stored setting may name (usable as a decorator)."""
    registry.register_related_action(action)
    return action


def whitelist_unpickle_global(fn_or_class: Any) -> Any:
    """Allow a function or class in job arguments (usable as a decorator).

    Instances of an allowed class are stored as their class name and their
    state (dataclass fields or ``__dict__``), which must be storable itself.
    Nothing is ever unpickled: the name is looked up among allowed ones.
    """
    return registry.whitelist(fn_or_class)
