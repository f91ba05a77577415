"""Exceptions of the job API (the names of the original) and of queuejob itself."""

from __future__ import annotations


class JobError(Exception):
    """Base class of the exceptions a job function may raise to steer its job."""


class RetryableJobError(JobError):
    """Postpone the job and put it back to pending.

    ``seconds`` sets the delay (0 or None: the function's retry pattern, else
    ``RETRY_INTERVAL``). With ``ignore_retry=True`` this attempt is not counted
    against ``max_retries``.
    """

    def __init__(self, msg: str = "", seconds: int | float | None = None,
                 ignore_retry: bool = False) -> None:
        super().__init__(msg)
        self.seconds = seconds
        self.ignore_retry = ignore_retry


class FailedJobError(JobError):
    """The job failed and is not retried."""


class NothingToDoJob(JobError):
    """The job has nothing to do: it ends as done with the message as its result."""


class JobTimeout(BaseException):
    """Raised inside a job that ran over its timeout, to stop it.

    A BaseException, like KeyboardInterrupt, so that a job's ``except Exception``
    does not swallow it.
    """


class NoSuchJobError(JobError):
    """No job with this uuid exists."""


class QueueJobError(Exception):
    """Base class of queuejob's own errors (configuration, storage, state)."""


class ConfigurationError(QueueJobError, ValueError):
    """A bad database URL, channel string, module or option."""


class MissingExtraError(ConfigurationError, ImportError):
    """A feature whose packages are not installed: the message names the extra."""


def require_extra(extra: str, feature: str, *modules: str) -> None:
    """MissingExtraError unless ``modules`` can be imported: what ``feature`` needs comes
    with ``pip install 'queuejob[<extra>]'``."""
    import importlib.util
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or blocked
            found = False
        if not found:
            raise MissingExtraError(f"{feature} needs the package {module!r}: "
                                    f"pip install 'queuejob[{extra}]'")


class JobStateError(QueueJobError):
    """A manual action that does not apply to a job's state; nothing was changed."""


class DecodeError(QueueJobError):
    """A stored payload that cannot be decoded (corrupt, unknown tag, not allowed)."""


class JobDataTooLargeError(QueueJobError, ValueError):
    """A text of a job (description, identity key, context...) over its limit."""


class ArgumentsTooLargeError(JobDataTooLargeError):
    """Encoded job arguments over the configured size limit."""
