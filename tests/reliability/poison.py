"""Job functions that return or raise odd values (imported by worker processes as
``tests.reliability.poison``): what a job does is data, and none of it may stop the
worker or cost another job."""

from __future__ import annotations

from queuejob import FailedJobError, NothingToDoJob, RetryableJobError, job
from tests.jobs import log_execution


class BadStr:
    """A value whose ``str`` and ``repr`` raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class BadStrError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("an exception whose str() raises")


class NotStrError(Exception):
    def __str__(self):
        return 42  # noqa: PLE0307 - not a str on purpose: str() raises TypeError


def _raise(kind: str, value):
    if kind == "value_error":
        raise ValueError(value)
    if kind == "failed":
        raise FailedJobError(value)
    if kind == "nothing":
        raise NothingToDoJob(value)
    if kind == "retryable":
        raise RetryableJobError("retry me", seconds=value)
    if kind == "retryable_text":
        raise RetryableJobError(value)
    if kind == "system_exit":
        raise SystemExit(value)
    if kind == "keyboard":
        raise KeyboardInterrupt(value)
    if kind == "bad_str_error":
        raise BadStrError()
    if kind == "not_str_error":
        raise NotStrError()
    raise AssertionError(f"unknown kind {kind}")


@job
def behave(session, model_name, kind, value=None):
    """Return or raise what ``kind`` says, made of ``value``."""
    if kind == "return":
        return value
    if kind == "return_bad_str":
        return BadStr()
    if kind == "return_huge":
        return "x" * value
    return _raise(kind, value)


@job
def ordinary(session, model_name, path):
    """An ordinary job beside the odd ones: logs its execution."""
    log_execution(path, session.context["job_uuid"], session.job.retry, 0.0, 0.0)
    return "fine"


@job(retry_pattern={1: (100, 200), 3: 50})
def random_retry(session, model_name):
    """Retried after a random delay of 100 to 200 s (the original's form), later 50 s."""
    raise RetryableJobError("later")
