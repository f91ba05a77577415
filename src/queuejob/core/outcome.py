"""What an attempt of a job leads to, decided from how ``perform`` ended.

An outcome is always storable on its own: whatever the job returned or raised, its
texts are made valid for either database (``text.storable``) and cut to their limits,
and a retry delay is checked before it is used. One odd job can therefore never make
the batch of outcomes it is written with fail.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from . import limits, states
from .errors import NothingToDoJob, RetryableJobError
from .joblog import AttemptLog
from .retry import BadDelayError, pattern_seconds
from .text import bounded, describe, storable

#: Stored ``result`` and ``exc_info`` are capped to this many characters.
MAX_TEXT = limits.RESULT

#: Outcome "state" of an attempt given back unfinished at shutdown.
RELEASED = "released"


def cap_text(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """``text`` made storable and cut to ``limit`` characters, with a marker saying so."""
    if text is None:
        return None
    return bounded(storable(text), limit)


def result_text(result: Any) -> str | None:
    return None if result is None else cap_text(str(result), limits.RESULT)


class ResultError(Exception):
    """The function's return value cannot be turned into text."""


@dataclass(slots=True)
class Outcome:
    """The write that ends one attempt (one claimed ``attempt`` of job ``uuid``)."""

    uuid: str
    attempt: int
    state: str
    retry: int
    result: str | None = None
    exc_info: str | None = None
    #: for a retry: seconds from now (by the database's clock) of the next attempt
    eta_delay: float | None = None
    #: the job holds an identity key: going back to pending may be superseded
    identity_key: str | None = None
    #: jobs of its graph wait for this one: its end releases or cancels them
    has_dependents: bool = False
    #: the job's row id (outcomes are fenced on it and the attempt)
    id: int | None = None
    #: a failure: the exception's ``module.Class`` and its message (the successor's fields)
    exc_name: str | None = None
    exc_message: str | None = None
    #: the job's function (what its hooks are looked up by); None when not known
    func_name: str | None = None
    #: what the attempt logged (None: nothing), stored with the outcome
    log: AttemptLog | None = None


def _message(error: BaseException) -> str:
    """``str(error)``, or a description of why there is none (``__str__`` may raise)."""
    try:
        return str(error)
    except Exception as exc:
        return f"<{type(error).__name__} whose str() raised {type(exc).__name__}>"


def _traceback(error: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(error))
    except Exception as exc:  # a broken exception object: say what it was
        return f"{type(error).__name__}: {_message(error)}\n(no traceback: {exc!r})"


def outcome_of(job: Any, attempt: int, error: BaseException | None) -> Outcome:
    """The outcome of ``job.perform`` that returned (``error`` None) or raised ``error``.

    Done with the function's result; done with the message for NothingToDoJob;
    back to pending with an eta for RetryableJobError (``perform`` has already
    turned one past ``max_retries`` into FailedJobError; a ``seconds`` that is not a
    delay is replaced by the retry pattern's, and the result says so); failed with
    the traceback for anything else. Never raises: a value whose ``str`` raises
    fails the attempt with a reason.
    """
    common = {"uuid": job.uuid, "attempt": attempt, "retry": job.retry,
              "identity_key": job.identity_key, "id": getattr(job, "id", None),
              "has_dependents": bool(getattr(job, "has_dependents", False)),
              "func_name": getattr(job, "func_name", None)}
    if error is None:
        try:
            return Outcome(state=states.DONE, result=result_text(job.result), **common)
        except Exception as exc:  # a __str__ that raises: the attempt failed
            error = ResultError("the job's return value cannot be stored as text: "
                                f"{describe(exc)}")
            error.__cause__ = exc
    if isinstance(error, NothingToDoJob):
        return Outcome(state=states.DONE, result=cap_text(_message(error)), **common)
    if isinstance(error, RetryableJobError):
        # a retried job says why it waits, even when its exception said nothing
        message = _message(error) or type(error).__name__
        try:
            delay = job.retry_seconds(error.seconds)
        except BadDelayError as exc:
            delay = pattern_seconds(job.retry, job.retry_pattern)
            message += (f" (RetryableJobError {exc}: retried after the retry pattern's "
                        f"{delay:g} s)")
        return Outcome(state=states.PENDING, result=cap_text(message), eta_delay=delay,
                       **common)
    return Outcome(state=states.FAILED, exc_info=cap_text(_traceback(error), limits.EXC_INFO),
                   exc_name=exception_name(error), exc_message=exception_message(error),
                   **common)


def exception_name(error: BaseException) -> str:
    """``module.Class`` of an exception, as the successor's ``exc_name``."""
    kind = type(error)
    return storable(f"{kind.__module__}.{kind.__qualname__}")[:limits.FUNC_NAME]


def exception_message(error: BaseException) -> str:
    """An exception's message, as the successor's ``exc_message`` (its ``name`` when it
    has one, as Odoo's exceptions do), one bounded line."""
    name = getattr(error, "name", None)
    text = name if isinstance(name, str) else _message(error)
    return bounded(storable(" ".join(text.split())), limits.DESCRIPTION)


def failure(job_uuid: str, attempt: int, retry: int, message: str,
            job_id: int | None = None, func_name: str | None = None) -> Outcome:
    """A job that could not even start (not registered, undecodable): failed at once."""
    return Outcome(uuid=job_uuid, attempt=attempt, state=states.FAILED, retry=retry,
                   exc_info=cap_text(message), id=job_id, exc_name="queuejob.JobCannotRun",
                   exc_message=exception_message(Exception(message)), func_name=func_name)


def released(row: Any) -> Outcome:
    """The attempt of a claimed job ``row`` given back to pending, its retry unchanged
    (shutdown, a lost commit answer)."""
    return Outcome(uuid=row["uuid"], attempt=row["attempt"], state=RELEASED,
                   retry=row["retry"], identity_key=row["identity_key"],
                   has_dependents=bool(row.get("has_dependents")), id=row.get("id"))
