"""Retry patterns: how long a retried job waits before its next attempt."""

from __future__ import annotations

from collections.abc import Mapping

#: Delay in seconds of a retry when neither the exception nor a retry pattern
#: gives one (the original's value).
RETRY_INTERVAL = 10 * 60


def validate_retry_pattern(pattern: Mapping[int, float] | None) -> dict[int, float]:
    """Check a ``{retry_count: seconds}`` mapping and return a plain copy."""
    if pattern is None:
        return {}
    if not isinstance(pattern, Mapping):
        raise TypeError("retry_pattern must be a dict of {retry count: seconds}")
    checked: dict[int, float] = {}
    for key, value in pattern.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 0:
            raise ValueError(f"retry_pattern key {key!r} is not a retry count (int >= 0)")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"retry_pattern delay {value!r} is not a number of seconds >= 0")
        checked[key] = value
    return checked


def retry_seconds(retry: int, pattern: Mapping[int, float] | None,
                  seconds: float | None = None) -> float:
    """Delay before the next attempt of a job that has been tried ``retry`` times.

    ``seconds`` given by the exception wins (0 counts as not given); else the
    delay of the largest pattern key that is <= ``retry``; else RETRY_INTERVAL.
    """
    if seconds:
        return seconds
    if pattern:
        eligible = [count for count in pattern if count <= retry]
        if eligible:
            return pattern[max(eligible)]
    return RETRY_INTERVAL
