"""Schedules defined at run time (in the database, not in code): their definition,
checked, the slots of a cron expression in a time zone, and the missed-run policy.
Pure rules, without I/O.

A run-time schedule names a job function registered with ``@job`` (workers that register
it run it, nothing else is ever imported), a cron expression (5 fields, or 6 with seconds
last) read in a time zone (an IANA name, ``zoneinfo``), JSON arguments, a channel, and
what to do with the slots missed while no worker ran (or a worker could not keep up):

- ``skip``: a slot runs only while it is at most ``missed_window`` seconds late (default
  ``SKIP_GRACE``): the missed ones are skipped;
- ``once``: the missed slots give one job, for the latest of them (as code schedules);
- ``all``: every missed slot at most ``missed_window`` seconds late gives a job (no
  window: every missed slot), at most ``CATCH_UP_LIMIT`` in one go, the next ones on the
  next look.

A stored row is data: ``from_row`` says in one line what does not make sense in it
(``ConfigurationError``), and that schedule only runs nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from . import limits
from .channels import normalize_name
from .cron import CATCH_UP_LIMIT, check_cron
from .errors import ConfigurationError
from .rows import is_int, is_number
from .text import describe, printable

SKIP = "skip"
ONCE = "once"
ALL = "all"
MISSED_POLICIES = (SKIP, ONCE, ALL)
#: how late a slot of a ``skip`` schedule may run without a window of its own (seconds)
SKIP_GRACE = 60.0
#: the longest missed-run window (seconds: a year)
MAX_WINDOW = 366 * 86400.0
#: the longest name of a schedule (its jobs' identity keys hold it)
NAME = 200
#: the longest cron expression and time zone name
CRON = 200
TIMEZONE = 100
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@/+-]*")
_FUNC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class RunSchedule:
    """A run-time schedule, checked: its jobs call ``func_name(session, *args,
    **kwargs)`` at each slot of ``cron`` in ``timezone``."""

    name: str
    cron: str
    func_name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    channel: str | None = None
    timezone: str = "UTC"
    missed: str = ONCE
    missed_window: float | None = None
    paused: bool = False


# -- checks of what is written (and read back) ----------------------------------------------
def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME:
        raise ConfigurationError(
            f"bad schedule name {describe(name, 80)}: up to {NAME} letters, digits and "
            "_ . : @ / + - (starting with a letter or digit) are needed")
    return name


def check_cron_text(expression: Any) -> str:
    if not isinstance(expression, str) or len(expression) > CRON:
        raise ConfigurationError(f"bad cron expression {describe(expression, 80)}")
    return check_cron(" ".join(expression.split()))


def check_func_name(func_name: Any) -> str:
    if not isinstance(func_name, str) or len(func_name) > limits.FUNC_NAME \
            or not _FUNC_NAME.fullmatch(func_name):
        raise ConfigurationError(f"bad job function {describe(func_name, 80)}: its "
                                 "module.name is needed (e.g. myapp.jobs.send_report)")
    return func_name


def check_timezone(name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > TIMEZONE \
            or printable(name, one_line=True) != name:
        raise ConfigurationError(f"unknown time zone {describe(name, 80)}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(f"unknown time zone {describe(name, 80)}: an IANA name "
                                 "such as Europe/Brussels or UTC is needed") from None
    return name


def check_channel(channel: Any) -> str | None:
    if channel is None or channel == "":
        return None
    if not isinstance(channel, str):
        raise ConfigurationError(f"bad channel {describe(channel, 80)}")
    try:
        return normalize_name(channel)
    except ConfigurationError as exc:
        raise ConfigurationError(f"bad channel: {exc}") from None


def check_missed(missed: Any, window: Any) -> tuple[str, float | None]:
    if missed not in MISSED_POLICIES:
        raise ConfigurationError(f"bad missed-run policy {describe(missed, 40)}: "
                                 f"one of {', '.join(MISSED_POLICIES)} is needed")
    if window is None:
        return missed, None
    if isinstance(window, bool) or not is_number(window) or not 0 < window <= MAX_WINDOW:
        raise ConfigurationError(f"bad missed-run window {describe(window, 40)}: seconds "
                                 f"from 1 to {MAX_WINDOW:g} are needed")
    return missed, float(window)


def _decoded(text: Any, what: str) -> Any:
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", "replace")
    if not isinstance(text, str):
        raise ConfigurationError(f"bad {what} {describe(text, 80)}: JSON text is needed")
    if len(text.encode("utf-8", "surrogatepass")) > limits.ARGUMENTS:
        raise ConfigurationError(f"{what} are {len(text)} characters, over the limit of "
                                 f"{limits.ARGUMENTS} bytes")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ConfigurationError(f"bad {what} {describe(text, 80)}: not JSON "
                                 f"({describe(str(exc), 80)[1:-1]})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests (stops counting past ``limit``)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
    return deepest


def parse_args(text: Any) -> list[Any]:
    """The positional arguments of a schedule's jobs: a JSON list (the model name first,
    by convention)."""
    value = _decoded(text, "args")
    if not isinstance(value, list):
        raise ConfigurationError(f"bad args {describe(text, 80)}: a JSON list is needed, "
                                 'e.g. ["res.partner", 42]')
    if _depth(value, limits.NESTING) > limits.NESTING:
        raise ConfigurationError(f"args nest deeper than {limits.NESTING} levels")
    return value


def parse_kwargs(text: Any, reserved: Iterable[str] = ()) -> dict[str, Any]:
    """The keyword arguments of a schedule's jobs: a JSON object, none of whose keys is
    one of ``reserved`` (delay()'s options, which delay() would take for itself)."""
    value = _decoded(text, "kwargs")
    if not isinstance(value, dict):
        raise ConfigurationError(f"bad kwargs {describe(text, 80)}: a JSON object is "
                                 'needed, e.g. {"period": "daily"}')
    taken = sorted(set(value) & set(reserved))
    if taken:
        raise ConfigurationError(f"bad kwargs: {', '.join(taken)} is an option of delay(), "
                                 "not an argument of the function (--channel sets the channel)")
    if _depth(value, limits.NESTING) > limits.NESTING:
        raise ConfigurationError(f"kwargs nest deeper than {limits.NESTING} levels")
    return value


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def check(name: Any, cron: Any, func_name: Any, args: Any = "[]", kwargs: Any = "{}",
          channel: Any = None, timezone: Any = "UTC", missed: Any = ONCE,
          missed_window: Any = None, paused: Any = False,
          reserved: Iterable[str] = ()) -> RunSchedule:
    """A schedule's definition checked (args and kwargs as JSON text): one
    ConfigurationError naming what is refused."""
    missed, window = check_missed(missed, missed_window)
    if paused not in (True, False, 0, 1):
        raise ConfigurationError(f"bad paused value {describe(paused, 40)}")
    arguments = parse_args(args)
    keywords = parse_kwargs(kwargs, reserved)
    if len(dump_json(arguments).encode("utf-8", "surrogatepass")) + len(dump_json(
            keywords).encode("utf-8", "surrogatepass")) > limits.ARGUMENTS:
        raise ConfigurationError(f"args and kwargs are over the limit of {limits.ARGUMENTS} "
                                 "bytes together")
    return RunSchedule(name=check_name(name), cron=check_cron_text(cron),
                       func_name=check_func_name(func_name), args=tuple(arguments),
                       kwargs=keywords, channel=check_channel(channel),
                       timezone=check_timezone(timezone), missed=missed,
                       missed_window=window, paused=bool(paused))


def from_row(row: Mapping[str, Any], reserved: Iterable[str] = ()) -> RunSchedule:
    """A stored schedule, checked as it is read back (a row written by hand may hold
    anything): ConfigurationError says what does not make sense."""
    window: Any = row.get("missed_window")
    if is_int(window):
        window = float(window)
    return check(row.get("name"), row.get("cron"), row.get("func_name"), row.get("args"),
                 row.get("kwargs"), row.get("channel"), row.get("timezone"),
                 row.get("missed"), window, row.get("paused"), reserved)


# -- slots in a time zone, and the missed-run policy ---------------------------------------
def _zone(timezone: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(timezone)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def latest_slot(expression: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """The last slot at or before ``now`` of ``expression`` read in ``timezone`` (UTC)."""
    probe = (now + dt.timedelta(microseconds=1)).astimezone(_zone(timezone))
    return _utc(croniter(expression, probe).get_prev(dt.datetime))


def next_slot(expression: str, timezone: str, now: dt.datetime) -> dt.datetime:
    """The first slot after ``now`` (UTC)."""
    return _utc(croniter(expression, now.astimezone(_zone(timezone))).get_next(dt.datetime))


def slots_after(expression: str, timezone: str, after: dt.datetime, until: dt.datetime,
                limit: int = CATCH_UP_LIMIT) -> list[dt.datetime]:
    """The slots after ``after`` and at or before ``until``, the first ``limit``."""
    iterator = croniter(expression, after.astimezone(_zone(timezone)))
    out: list[dt.datetime] = []
    while len(out) < limit:
        slot = _utc(iterator.get_next(dt.datetime))
        if slot > until:
            break
        if slot > after:  # a local time that a change of offset repeats is one slot
            out.append(slot)
    return out


@dataclass(frozen=True)
class Plan:
    """What a look at a schedule does: move its last slot to ``last`` (None: leave it)
    and delay a job for each of ``run``."""

    last: dt.datetime | None
    run: tuple[dt.datetime, ...] = ()


def plan(schedule: RunSchedule, last: Any, now: dt.datetime) -> Plan:
    """The slots to run now, given the last slot handled (None, or a stored value that
    is not a time: the schedule starts now, from its next slot)."""
    latest = latest_slot(schedule.cron, schedule.timezone, now)
    if not isinstance(last, dt.datetime) or last.tzinfo is None:
        return Plan(last=latest)
    if latest <= last:
        return Plan(last=None)
    if schedule.missed == ONCE:
        return Plan(last=latest, run=(latest,))
    if schedule.missed == SKIP:
        grace = schedule.missed_window if schedule.missed_window is not None else SKIP_GRACE
        late = (now - latest).total_seconds()
        return Plan(last=latest, run=(latest,) if late <= grace else ())
    start = last
    if schedule.missed_window is not None:
        window_start = now - dt.timedelta(seconds=schedule.missed_window)
        # slots before the window are skipped: start just before it (a slot exactly at
        # the window's start is in it)
        start = max(last, window_start - dt.timedelta(microseconds=1))
    slots = slots_after(schedule.cron, schedule.timezone, start, latest)
    if not slots:
        return Plan(last=latest)
    if len(slots) < CATCH_UP_LIMIT:
        return Plan(last=latest, run=tuple(slots))
    return Plan(last=slots[-1], run=tuple(slots))  # the next look goes on from there


def whole_second(moment: dt.datetime) -> dt.datetime:
    """``moment`` without its fraction of a second (a starting last slot: it is read
    back equal, on every backend)."""
    return moment.replace(microsecond=0)


def identity_of(name: str, slot: dt.datetime) -> str:
    return f"schedule:{name}:{slot.astimezone(dt.UTC).isoformat()}"


def window_text(window: float | None) -> str:
    if window is None:
        return ""
    return f"{window:g}s" if math.isfinite(window) else str(window)
