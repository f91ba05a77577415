"""Capturing what a job logs while it runs, with its attempt.

One handler on the root logger, installed while a worker runs in the process; it keeps
a record only when it is emitted in a job's context (the job's thread, or its task on
the event loop: a context variable set around ``perform``), in that attempt's bounded
``AttemptLog``. queuejob's own loggers are the worker's, not the job's: not captured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar

from ..core.joblog import AttemptLog

_current: ContextVar[capturing | None] = ContextVar("queuejob_attempt_log", default=None)


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        capture = _current.get()
        if capture is None or record.name == "queuejob" or record.name.startswith("queuejob."):
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
        first = capture.log is None
        if capture.log is None:
            capture.log = AttemptLog()
        capture.log.add(record.created, record.levelname, record.name, message)
        if first and capture.first_line is not None:
            capture.first_line(capture.log)


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


class capturing:  # used as a function: ``with capturing() as capture``
    """What is logged in this context, until it ends, goes to the attempt's log
    (``log``: made at the first line; None when nothing was logged). ``first_line`` is
    called with the log when its first line comes (the worker then writes it while the
    attempt runs)."""

    __slots__ = ("_token", "first_line", "log")

    def __init__(self, first_line: Callable[[AttemptLog], None] | None = None) -> None:
        self.first_line = first_line

    def __enter__(self) -> capturing:
        self.log: AttemptLog | None = None
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)
