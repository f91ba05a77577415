"""The Job model of the original API: a task to execute, and its states.

A ``Job`` is plain data plus the rules of its life (``perform``, ``postpone``,
``set_*``); reading and writing it is the storage's business.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import uuid as uuid_module
from collections.abc import Callable, Mapping
from typing import Any

from . import limits, states
from .channels import ROOT, normalize_name
from .errors import FailedJobError, NoSuchJobError, RetryableJobError
from .retry import Delay, retry_seconds
from .text import describe, printable

DEFAULT_PRIORITY = 10
DEFAULT_MAX_RETRIES = 5
#: the largest eta given in seconds from now (a hundred years)
MAX_ETA_DELAY = 100 * 365 * 86400
#: priorities and retry counts are stored as 32-bit integers
MAX_INT = 2**31 - 1
#: the longest debounce, in seconds (a day): a job put off further is not a burst of
#: calls being gathered but a job to delay with an ``eta``
MAX_DEBOUNCE = 86400

UTC = dt.UTC


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """A naive datetime is UTC; an aware one is converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def eta_parts(eta: Any) -> tuple[dt.datetime | None, float | None]:
    """(absolute eta, delay in seconds from now) for the eta forms of the API."""
    if eta is None:
        return None, None
    if isinstance(eta, dt.datetime):
        return as_utc(eta), None
    if isinstance(eta, dt.timedelta):
        return eta_parts(eta.total_seconds())
    if isinstance(eta, int | float) and not isinstance(eta, bool):
        if not math.isfinite(eta) or abs(eta) > MAX_ETA_DELAY:
            raise ValueError(f"eta must be a finite number of seconds (at most {MAX_ETA_DELAY}), "
                             f"not {eta!r}")
        return None, float(eta)
    raise TypeError(f"eta must be a datetime, a timedelta or a number of seconds, not {eta!r}")


def default_description(func: Any) -> str:
    doc = getattr(func, "__doc__", None)
    if doc and doc.strip():
        return doc.strip().splitlines()[0].strip()
    return f"Function {getattr(func, '__name__', func)}"


def check_priority(value: Any) -> int:
    """A job's priority: a whole number (smaller runs first), stored in 32 bits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an int, not {value!r}")
    if not -MAX_INT <= value <= MAX_INT:
        raise ValueError(f"priority must be between {-MAX_INT} and {MAX_INT}")
    return value


def check_timeout(value: Any) -> float | None:
    """A job's timeout: None, or a positive number of seconds."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {value!r}")
    return float(value)


def check_max_retries(value: Any) -> int:
    """A job's max_retries: a whole number >= 0 (0 = retry forever), stored in 32 bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ValueError(f"max_retries must be an int >= 0 (0 = retry forever), "
                         f"not {value!r}")
    return value


def check_model_name(value: Any) -> str | None:
    """The model name given to ``delay(model_name=...)``: None or a str a database stores."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"model_name must be a str, not {type(value).__name__}")
    return limits.check("model_name", value)


def check_user_id(value: Any) -> int | None:
    """The user a job is created for: None or a whole number (the database's user id,
    stored in 64 bits), refused where the job is written rather than by the database."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"user_id must be an int or None, not {value!r}")
    if not -2**63 <= value < 2**63:
        raise ValueError(f"user_id must fit in 64 bits, not {value!r}")
    return value


def model_name_of(args: tuple | list) -> str | None:
    """The model name of a job whose positional arguments are ``args``: the first one,
    by convention, when it is a str (None otherwise)."""
    return args[0] if args and isinstance(args[0], str) else None


def canonical_uuid(value: Any) -> str:
    """A job uuid in its stored form; NoSuchJobError for anything that is not a uuid."""
    try:
        return str(uuid_module.UUID(str(value).strip()))
    except ValueError:
        raise NoSuchJobError(f"no job {value!r}: not a job uuid") from None


def func_name_of(func: Any) -> str:
    name = getattr(func, "func_name", None)
    if name:
        return name
    return f"{func.__module__}.{func.__qualname__}"


def check_concurrency_key(value: Any) -> str:
    """A concurrency key: a str of at most ``limits.CONCURRENCY_KEY`` characters on one
    line ('' or None: none)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"concurrency_key must be a str, not {type(value).__name__}")
    if printable(value, one_line=True) != value:
        raise ValueError(f"concurrency_key {describe(value, 60)} is not one line of "
                         "printable text")
    limits.check("concurrency_key", value)
    return value


def check_debounce(value: Any) -> float | None:
    """A debounce: None, or the seconds (a number or a timedelta) a job waits for more
    calls with its identity key, from 0 to ``MAX_DEBOUNCE``."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"debounce must be a number of seconds or a timedelta, not "
                        f"{type(value).__name__}")
    # NaN fails both comparisons; a huge int is refused before float() could overflow
    if not 0 <= seconds <= MAX_DEBOUNCE:
        raise ValueError(f"debounce must be a finite number of seconds from 0 to "
                         f"{MAX_DEBOUNCE} (a day), not {describe(value, 60)}")
    return float(seconds)


def debounced_eta(debounce: float | None, identity_key: Any, eta: Any) -> Any:
    """The eta of a new job: ``eta``, or with a debounce (checked), the debounce's
    seconds from now. A debounce needs an identity key and no eta of its own."""
    if debounce is None:
        return eta
    if identity_key is None:
        raise ValueError("debounce needs an identity_key: the key names the waiting job "
                         "that a later delay() replaces")
    if eta is not None:
        raise ValueError("debounce sets the eta (now + debounce): give eta or debounce, "
                         "not both")
    return debounce



def new_uuid() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` gives it, from the
    same source (``os.urandom``), without building a ``UUID`` on the way: a bulk
    enqueue makes one per job."""
    digits = os.urandom(16).hex()
    # the version nibble is 4; the variant's two top bits are 10 (8, 9, a or b)
    return (f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-"
            f"{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:]}")


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}

class Job:
    """A Job is a task to execute (the page's ``Job``).

    Attributes: uuid, state, retry, max_retries, func_name, args, kwargs,
    func_string, description, func, model_name, priority, date_created,
    date_enqueued, date_started, date_done, result, exc_info, user_id, eta,
    channel, identity_key; and queuejob's concurrency_key, context (the session context given at
    ``delay`` time), worker_id and attempt.
    """

    #: the seconds a new job waits for more calls with its identity key (``delay(...,
    #: debounce=...)``): not stored, a way of storing it (None: none)
    debounce: float | None = None
    #: the description was given to delay(), not taken from the function (what a
    #: debounced delay writes over the waiting job's)
    description_given: bool = False

    def __init__(
            self, func: Callable[..., Any] | None = None, model_name: str | None = None,
                 args: tuple | list | None = None, kwargs: Mapping[str, Any] | None = None,
                 priority: int | None = None, eta: Any = None, job_uuid: str | None = None,
                 max_retries: int | None = None, description: str | None = None,
                 channel: str | None = None, identity_key: Any = None,
                 timeout: float | None = None, concurrency_key: str | None = None,
                 debounce: Any = None) -> None:
        self.func = func
        self.func_name: str | None = func_name_of(func) if func is not None else None
        self.model_name = model_name
        # the model name is by convention the first argument of the job (connector 9.0):
        # the function is called as func(session, *job.args, **job.kwargs)
        self.args: tuple = ((model_name,) if model_name else ()) + (
            tuple(args) if args is not None else ())
        self.kwargs: dict[str, Any] = dict(kwargs) if kwargs is not None else {}
        if priority is None:
            priority = DEFAULT_PRIORITY
        self.priority: int = check_priority(priority)
        self.max_retries: int = check_max_retries(
            DEFAULT_MAX_RETRIES if max_retries is None else max_retries)
        self.uuid: str = job_uuid or new_uuid()
        self.state: str = states.PENDING
        self.retry: int = 0
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str, not {type(description).__name__}")
        self.description_given = description is not None
        self.description: str = limits.check("description", description or (
            getattr(func, "description", None) or default_description(func) if func else "")
        ) or ""
        check_model_name(model_name)
        limits.check("func_name", self.func_name)
        #: the channel was given to delay(), not taken from the function
        self.channel_given = channel is not None
        if channel is None:
            channel = getattr(func, "default_channel", None) or ROOT
        self.channel: str = normalize_name(channel)
        if timeout is None:
            timeout = getattr(func, "timeout", None)
        self.timeout: float | None = check_timeout(timeout)
        #: a retry pattern people set for the function (it overrides the decorator's)
        self.retry_pattern_override: dict[int, Delay] | None = None
        #: the graph the job belongs to (jobs waiting for other jobs), if any
        self.graph_uuid: str | None = None
        self.has_dependents = False
        self.date_created: dt.datetime = utcnow()
        self.date_enqueued: dt.datetime | None = None
        self.date_started: dt.datetime | None = None
        self.date_done: dt.datetime | None = None
        self.result: str | None = None
        self.exc_info: str | None = None
        #: a failure's ``module.Class`` and message, the seconds from started to done,
        #: when the job was cancelled, the process that ran it (the successor's fields)
        self.exc_name: str | None = None
        self.exc_message: str | None = None
        self.exec_time: float | None = None
        self.date_cancelled: dt.datetime | None = None
        self.worker_pid: int | None = None
        self.user_id: int | None = None
        self.context: dict[str, Any] = {}
        self.worker_id: str | None = None
        #: the stored row's id (None until stored)
        self.id: int | None = None
        self.attempt: int = 0
        self.worker_deaths: int = 0
        self._eta: dt.datetime | None = None
        self._eta_delay: float | None = None
        self.debounce = check_debounce(debounce)
        self.eta = debounced_eta(self.debounce, identity_key, eta)
        #: the jobs of one key (a customer, a tenant...) share a channel's key_capacity
        #: and take turns in a fair channel ('' : none)
        self.concurrency_key: str = check_concurrency_key(concurrency_key)
        self._identity_key: str | None = None
        self._identity_key_func: Callable[[Job], str] | None = None
        if callable(identity_key):
            self._identity_key_func = identity_key
        elif identity_key is not None:
            if not isinstance(identity_key, str):
                raise TypeError("identity_key must be a string or a function of the job")
            self._identity_key = limits.check("identity_key", identity_key)

    def copy(self, args: tuple) -> Job:
        """A new job like this one (a new uuid) for other positional arguments (the
        model name first, as ``delay`` takes them)."""
        job = Job.__new__(Job)
        fields = self.__dict__.copy()
        args = tuple(args)
        fields.update(uuid=new_uuid(), args=args, kwargs={}, context={},
                      model_name=limits.check("model_name", model_name_of(args)))
        if self._identity_key_func is not None:
            fields["_identity_key"] = None
        job.__dict__ = fields
        return job

    # -- derived attributes ---------------------------------------------------------------
    @property
    def eta(self) -> dt.datetime | None:
        """Estimated Time of Arrival: the job is not executed before it."""
        return self._eta

    @eta.setter
    def eta(self, value: Any) -> None:
        absolute, delay = eta_parts(value)
        self._eta_delay = delay
        self._eta = absolute if delay is None else utcnow() + dt.timedelta(seconds=delay)

    @property
    def eta_delay(self) -> float | None:
        """Seconds from now given as eta and not stored yet (stored with the database's clock)."""
        return self._eta_delay

    @property
    def identity_key(self) -> str | None:
        if self._identity_key is None and self._identity_key_func is not None:
            key = self._identity_key_func(self)
            if key is not None and not isinstance(key, str):
                raise TypeError(f"the identity key function returned a "
                                f"{type(key).__name__}, not a str")
            self._identity_key = limits.check("identity_key", key)
        return self._identity_key

    @identity_key.setter
    def identity_key(self, value: str | None) -> None:
        self._identity_key = value
        self._identity_key_func = None

    @property
    def func_string(self) -> str:
        """``module.function('model', arg, key=value)``: the call this job makes."""
        parts = [repr(arg) for arg in self.args]
        parts += [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"{self.func_name}({', '.join(parts)})"

    @property
    def retry_pattern(self) -> dict[int, Delay]:
        if self.retry_pattern_override is not None:
            return dict(self.retry_pattern_override)
        return dict(getattr(self.func, "retry_pattern", None) or {})

    # -- running --------------------------------------------------------------------------
    def _session_of(self, session: Any) -> Any:
        """The session the function gets: ``session`` bound to this job (its creator's
        user and context, its uuid in ``context["job_uuid"]`` and ``session.job``), as
        in a worker, whoever calls ``perform``."""
        bind = getattr(session, "for_job", None)
        return bind(self) if bind is not None else session

    def perform(self, session: Any) -> Any:
        """Execute the job, as the user who created it, and return its result.

        Adds 1 to ``retry`` first. A RetryableJobError past ``max_retries``
        becomes a FailedJobError.
        """
        if self.func is None:
            raise FailedJobError(f"{self.func_name} is not a registered job function")
        self.retry += 1
        try:
            self.result = self.func(self._session_of(session), *self.args, **self.kwargs)
        except RetryableJobError as err:
            self._retryable(err)
        return self.result

    async def perform_async(self, session: Any) -> Any:
        """``perform`` for an ``async def`` job function: awaited on an event loop."""
        if self.func is None:
            raise FailedJobError(f"{self.func_name} is not a registered job function")
        self.retry += 1
        try:
            self.result = await self.func(self._session_of(session), *self.args,
                                          **self.kwargs)
        except RetryableJobError as err:
            self._retryable(err)
        return self.result

    def _retryable(self, err: RetryableJobError) -> None:
        """Raise what a RetryableJobError of this attempt means: itself, uncounted with
        ``ignore_retry``; FailedJobError once ``max_retries`` attempts are used up."""
        if err.ignore_retry:
            self.retry -= 1
            raise err
        if self.max_retries and self.retry >= self.max_retries:  # 0: retry forever
            raise FailedJobError(
                f"Max. retries ({self.max_retries}) reached: {err or type(err).__name__}"
            ) from err
        raise err

    def retry_seconds(self, seconds: float | None = None) -> float:
        """Delay before the next attempt (the exception's, the pattern's or RETRY_INTERVAL)."""
        return retry_seconds(self.retry, self.retry_pattern, seconds)

    def postpone(self, result: str | None = None, seconds: float | None = None) -> None:
        """Set the eta ``seconds`` (or the retry pattern's delay) from now."""
        self.eta = dt.timedelta(seconds=self.retry_seconds(seconds))
        self.exc_info = None
        if result is not None:
            self.result = result

    def related_action(self, session: Any) -> Any:
        """The result of the function's related action, or None when it has none: its
        decorator's, as the function's stored setting changes it when ``session`` knows
        the database (``session.related_action_of``)."""
        resolve = getattr(session, "related_action_of", None)
        if resolve is not None:
            action = resolve(self.func_name)
        else:
            action = getattr(self.func, "related_action", None)
        if action is None:
            return None
        return action(session, self)

    # -- states ---------------------------------------------------------------------------
    def set_pending(self, result: str | None = None, reset_retry: bool = True) -> None:
        self.state = states.PENDING
        self.date_enqueued = None
        self.date_started = None
        self.date_done = None
        self.date_cancelled = None
        self.worker_id = None
        self.worker_pid = None
        if reset_retry:
            self.retry = 0
        if result is not None:
            self.result = result

    def set_enqueued(self) -> None:
        self.state = states.ENQUEUED
        self.date_enqueued = utcnow()
        self.date_started = None

    def set_started(self) -> None:
        self.state = states.STARTED
        self.date_started = utcnow()
        self.worker_pid = os.getpid()

    def set_done(self, result: str | None = None) -> None:
        self.state = states.DONE
        self.exc_info = self.exc_name = None
        self.date_done = utcnow()
        if self.date_started is not None:
            self.exec_time = (self.date_done - self.date_started).total_seconds()
        if result is not None:
            self.result = result

    def set_failed(self, exc_info: str | None = None) -> None:
        self.state = states.FAILED
        if exc_info is not None:
            self.exc_info = exc_info

    def set_cancelled(self, result: str | None = None) -> None:
        self.state = states.CANCELLED
        self.date_done = self.date_cancelled = utcnow()
        if result is not None:
            self.result = result

    def __repr__(self) -> str:
        return f"<Job {self.uuid} {self.func_name} {self.state}>"


class JobStorage:
    """Interface for the storage of jobs."""

    def exists(self, job_uuid: str) -> bool:
        """Returns if a job still exists in the storage."""
        raise NotImplementedError

    def load(self, job_uuid: str) -> Job:
        """Read the job's data from the storage."""
        raise NotImplementedError

    def store(self, job_: Job) -> None:
        """Store a job."""
        raise NotImplementedError
