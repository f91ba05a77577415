"""What a job reports of its progress: checked where it is reported, one rule for all.

``session.progress(done, total, message=None)`` in a running job; the worker stores the
latest report with the job, at most once a second per job (``INTERVAL``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import limits
from .text import describe, storable

#: seconds between two writes of one job's progress, at least
INTERVAL = 1.0

#: the largest ``total`` (a 64-bit column)
MAX_TOTAL = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Progress:
    """``done`` of ``total`` steps, and what the job says it is doing."""

    done: int
    total: int
    message: str | None = None

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_TOTAL:
        raise ValueError(f"progress {name} must be a whole number from {low} to "
                         f"{MAX_TOTAL}, not {describe(value, 60)}")
    return value


def check_progress(done: Any, total: Any, message: Any = None) -> Progress:
    """The report, or ValueError (one line) saying what is wrong with it."""
    total = _whole("total", total, 1)
    done = _whole("done", done, 0)
    if done > total:
        raise ValueError(f"progress done ({done}) is more than its total ({total})")
    if message is not None:
        if not isinstance(message, str):
            raise ValueError(f"progress message must be text, not {type(message).__name__}")
        if len(message) > limits.PROGRESS_MESSAGE:
            raise ValueError(f"progress message is {len(message)} characters, over the "
                             f"limit of {limits.PROGRESS_MESSAGE}")
        message = storable(message)
    return Progress(done, total, message)


def stored_progress(done: Any, total: Any, message: Any) -> Progress | None:
    """The progress a row holds; None when it holds none or a value that is not one
    (a row written by hand)."""
    if done is None and total is None:
        return None
    try:
        return check_progress(done, total, message if isinstance(message, str) else None)
    except ValueError:
        return None


def progress_of(row: Mapping[str, Any]) -> Progress | None:
    """The progress a job row holds for its current attempt (None: none reported, a
    report of an earlier attempt, or values that are not a report)."""
    if row.get("progress_attempt") is None or row.get("progress_attempt") != row.get("attempt"):
        return None
    return stored_progress(row.get("progress_done"), row.get("progress_total"),
                           row.get("progress_message"))
