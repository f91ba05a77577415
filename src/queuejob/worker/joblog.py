"""Capturing what a job logs while it runs, with its attempt.

One handler on the root logger, installed while a worker runs in the process; it keeps
a record only when it is emitted in a job's context (the job's thread, or its task on
the event loop: a context variable set around ``perform``), in that attempt's bounded
``AttemptLog``. queuejob's own loggers are the worker's, not the job's: not captured.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from ..core.joblog import AttemptLog

_current: ContextVar[AttemptLog | None] = ContextVar("queuejob_attempt_log", default=None)


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        attempt_log = _current.get()
        if attempt_log is None or record.name == "queuejob" \
                or record.name.startswith("queuejob."):
            return
        try:
            message = record.getMessage()
        except Exception as exc:  # arguments that do not fit the format
            message = f"{record.msg!r} (its arguments could not be formatted: {exc!r})"
        if record.exc_info:
            try:
                message += "\n" + _formatter.formatException(record.exc_info)
            except Exception:  # an exception whose traceback cannot be formatted
                message += "\n(a traceback that could not be formatted)"
        attempt_log.add(record.created, record.levelname, record.name, message)


_formatter = logging.Formatter()
_handler = _Capture()
_lock = threading.Lock()
_users = 0


def install() -> None:
    """A worker starts: capture job logs in this process (once for all workers)."""
    global _users
    with _lock:
        _users += 1
        if _users == 1:
            logging.getLogger().addHandler(_handler)


def uninstall() -> None:
    global _users
    with _lock:
        _users = max(0, _users - 1)
        if _users == 0:
            logging.getLogger().removeHandler(_handler)


@contextlib.contextmanager
def capturing() -> Iterator[AttemptLog]:
    """What is logged in this context, until it ends, goes to the attempt's log."""
    attempt_log = AttemptLog()
    token = _current.set(attempt_log)
    try:
        yield attempt_log
    finally:
        _current.reset(token)
