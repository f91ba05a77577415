"""Retry patterns: how long a retried job waits before its next attempt.

A delay is a number of seconds, or, as in the original, a ``(low, high)`` pair: a
random delay between the two bounds (whole seconds when both are whole). A pattern
maps a retry count to a delay: ``{1: 60, 5: 300, 10: (1800, 3600)}`` waits 60 s
after the first attempts, 300 s from the fifth, between 30 and 60 minutes from the
tenth. Patterns are written as a dict in code, as JSON (``{"1": 60, "10": [30, 45]}``)
or as text (``1: 60, 5: 300, 10: 30-45``) on the command line and the dashboard:
``parse_retry_pattern`` reads both, once for every face.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

#: Delay in seconds of a retry when neither the exception nor a retry pattern
#: gives one (the original's value).
RETRY_INTERVAL = 10 * 60
#: The longest delay of a retry (ten years): longer ones are refused.
MAX_DELAY = 10 * 365 * 86400

Delay = float | tuple[float, float]


class BadDelayError(ValueError):
    """A delay that is not a number of seconds, nor a (low, high) pair of them."""


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadDelayError(f"{what} is not a number of seconds")
    if not math.isfinite(value) or value < 0 or value > MAX_DELAY:
        raise BadDelayError(f"{what} must be between 0 and {MAX_DELAY} seconds")
    return value


def check_delay(value: Any, what: str = "delay") -> Delay:
    """A delay as stored: seconds, or a ``(low, high)`` pair with low <= high."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise BadDelayError(f"{what} {_short(value)} is not a (low, high) pair")
        low = _seconds(value[0], f"{what} {_short(value)}")
        high = _seconds(value[1], f"{what} {_short(value)}")
        if low > high:
            raise BadDelayError(f"{what} {_short(value)}: the low bound is above the high one")
        return (low, high)
    return _seconds(value, f"{what} {_short(value)}")


def _short(value: Any) -> str:
    from .text import describe
    return describe(value, 60)


def validate_retry_pattern(pattern: Mapping[int, Any] | None) -> dict[int, Delay]:
    """Check a ``{retry_count: delay}`` mapping and return a plain copy."""
    if pattern is None:
        return {}
    if not isinstance(pattern, Mapping):
        raise TypeError("retry_pattern must be a dict of {retry count: seconds}")
    checked: dict[int, Delay] = {}
    for key, value in pattern.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 0 or key > 1_000_000:
            raise ValueError(f"retry_pattern key {_short(key)} is not a retry count "
                             "(a whole number from 0)")
        try:
            checked[key] = check_delay(value, "retry_pattern delay")
        except BadDelayError as exc:
            raise ValueError(str(exc)) from None
    return checked


def parse_retry_pattern(text: str) -> dict[int, Delay]:
    """A retry pattern written as JSON (``{"1": 60, "10": [30, 45]}``, how the database
    stores it) or as text (``1: 60, 5: 300, 10: 30-45``). ConfigurationError, in one
    line, when it is neither."""
    if not isinstance(text, str):
        raise ConfigurationError("a retry pattern is text")
    text = text.strip()
    try:
        if text.startswith("{"):
            loaded = json.loads(text, parse_constant=_no_constant)
            if not isinstance(loaded, dict):
                raise ValueError("not an object")
            pairs: list[tuple[Any, Any]] = list(loaded.items())
        else:
            pairs = []
            for part in text.split(","):
                if not part.strip():
                    continue
                key, sep, value = part.partition(":")
                if not sep:
                    raise ValueError(f"{part.strip()!r} has no ':'")
                low, dash, high = value.strip().partition("-")
                delay: Any = (_number(low), _number(high)) if dash else _number(value)
                pairs.append((key, delay))
        pattern = {_count(key): value for key, value in pairs}
        return validate_retry_pattern(pattern)
    except (ValueError, TypeError, RecursionError) as exc:
        from .text import describe
        raise ConfigurationError(
            f"bad retry pattern {describe(text, 60)}: {exc}; write it as "
            "'1: 60, 5: 300, 10: 30-45' (retry count: seconds, or a low-high range)") from None


def format_retry_pattern(pattern: Mapping[int, Delay]) -> str:
    """The text form of a pattern: ``1: 60, 10: 30-45``."""
    def one(delay: Delay) -> str:
        if isinstance(delay, tuple):
            return f"{delay[0]:g}-{delay[1]:g}"
        return f"{delay:g}"
    return ", ".join(f"{count}: {one(delay)}" for count, delay in sorted(pattern.items()))


def dump_retry_pattern(pattern: Mapping[int, Delay]) -> str:
    """The JSON the database stores (``{"1": 60, "10": [30, 45]}``)."""
    return json.dumps({str(key): list(value) if isinstance(value, tuple) else value
                       for key, value in sorted(pattern.items())})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number of seconds")


def _number(text: str) -> float:
    value = float(text.strip())
    return int(value) if value.is_integer() and "." not in text else value


def _count(key: Any) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    text = str(key).strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"{_short(key)} is not a retry count")
    return int(text)


def pick(delay: Delay, rng: random.Random | None = None) -> float:
    """The seconds of one retry: the delay itself, or a random one within its bounds."""
    if isinstance(delay, tuple):
        low, high = delay
        source = rng or random
        if float(low).is_integer() and float(high).is_integer():
            return float(source.randint(int(low), int(high)))
        return source.uniform(low, high)
    return float(delay)


def retry_seconds(retry: int, pattern: Mapping[int, Delay] | None,
                  seconds: Any = None, rng: random.Random | None = None) -> float:
    """Delay before the next attempt of a job that has been tried ``retry`` times.

    ``seconds`` given by the exception wins (0 or None count as not given); else the
    delay of the largest pattern key that is <= ``retry``; else RETRY_INTERVAL.
    BadDelayError when ``seconds`` is neither a delay nor empty.
    """
    if seconds is not None and not (isinstance(seconds, int | float)
                                    and not isinstance(seconds, bool) and seconds == 0):
        return pick(check_delay(seconds, "seconds"), rng)
    return pattern_seconds(retry, pattern, rng)


def pattern_seconds(retry: int, pattern: Mapping[int, Delay] | None,
                    rng: random.Random | None = None) -> float:
    """The pattern's delay for ``retry`` tries (RETRY_INTERVAL without a pattern)."""
    if pattern:
        eligible = [count for count in pattern if count <= retry]
        if eligible:
            return pick(pattern[max(eligible)], rng)
    return float(RETRY_INTERVAL)
