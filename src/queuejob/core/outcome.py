"""What an attempt of a job leads to, decided from how ``perform`` ended."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from . import states
from .errors import NothingToDoJob, RetryableJobError

#: Stored ``result`` and ``exc_info`` are capped to this many characters.
MAX_TEXT = 64 * 1024

#: Outcome "state" of an attempt given back unfinished at shutdown.
RELEASED = "released"


def cap_text(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """``text`` cut to ``limit`` characters, with a marker saying so."""
    if text is None or len(text) <= limit:
        return text
    marker = f"\n[... truncated: {len(text)} characters in all]"
    return text[: max(0, limit - len(marker))] + marker


def result_text(result: Any) -> str | None:
    return None if result is None else cap_text(str(result))


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


def outcome_of(job: Any, attempt: int, error: BaseException | None) -> Outcome:
    """The outcome of ``job.perform`` that returned (``error`` None) or raised ``error``.

    Done with the function's result; done with the message for NothingToDoJob;
    back to pending with an eta for RetryableJobError (``perform`` has already
    turned one past ``max_retries`` into FailedJobError); failed with the
    traceback for anything else.
    """
    common = {"uuid": job.uuid, "attempt": attempt, "retry": job.retry,
              "identity_key": job.identity_key,
              "has_dependents": bool(getattr(job, "has_dependents", False))}
    if error is None:
        try:
            return Outcome(state=states.DONE, result=result_text(job.result), **common)
        except Exception as exc:  # a __str__ that raises: the attempt failed
            error = ResultError(f"the job's return value cannot be stored as text: {exc!r}")
            error.__cause__ = exc
    if isinstance(error, NothingToDoJob):
        return Outcome(state=states.DONE, result=result_text(str(error)), **common)
    if isinstance(error, RetryableJobError):
        return Outcome(state=states.PENDING, result=result_text(str(error)),
                       eta_delay=job.retry_seconds(error.seconds), **common)
    text = "".join(traceback.format_exception(error))
    return Outcome(state=states.FAILED, exc_info=cap_text(text), **common)


def failure(job_uuid: str, attempt: int, retry: int, message: str) -> Outcome:
    """A job that could not even start (not registered, undecodable): failed at once."""
    return Outcome(uuid=job_uuid, attempt=attempt, state=states.FAILED, retry=retry,
                   exc_info=cap_text(message))


def released(row: Any) -> Outcome:
    """The attempt of a claimed job ``row`` given back to pending, its retry unchanged
    (shutdown, a lost commit answer)."""
    return Outcome(uuid=row["uuid"], attempt=row["attempt"], state=RELEASED,
                   retry=row["retry"], identity_key=row["identity_key"],
                   has_dependents=bool(row.get("has_dependents")))
