"""Periodic jobs: cron expressions and their slots, without I/O.

A schedule delays one job per slot of its cron expression (5 fields, or 6 with
seconds last). Which worker delays it is decided in the database (a
compare-and-set on the schedule's last slot), so that each slot gives one job
however many workers run. Slots missed while no worker ran are not piled up:
only the latest is run, unless the schedule catches up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter

from .errors import ConfigurationError

#: slots a catching-up schedule delays at most in one go
CATCH_UP_LIMIT = 100


@dataclass(frozen=True)
class Schedule:
    """``func`` delayed with ``args``/``kwargs`` (model name first in args) at every
    slot of ``cron``; ``options`` are delay()'s reserved keywords."""

    name: str
    func: Any
    cron: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    catch_up: bool = False

    def __post_init__(self) -> None:
        check_cron(self.cron)


def check_cron(expression: str) -> str:
    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise ConfigurationError(f"bad cron expression {expression!r}: expected 5 fields "
                                 "(minute hour day month weekday), or 6 with seconds last")
    return expression


def latest_slot(expression: str, now: dt.datetime) -> dt.datetime:
    """The last slot at or before ``now`` (UTC)."""
    probe = now + dt.timedelta(microseconds=1)
    return croniter(expression, probe).get_prev(dt.datetime)


def next_slot(expression: str, now: dt.datetime) -> dt.datetime:
    """The first slot after ``now``."""
    return croniter(expression, now).get_next(dt.datetime)


def due_slots(schedule: Schedule, last: dt.datetime | None, now: dt.datetime
              ) -> list[dt.datetime]:
    """The slots to delay now, given the last slot delayed (None: never run, start
    from the next slot). Without catch_up, only the latest missed slot."""
    latest = latest_slot(schedule.cron, now)
    if last is None or latest <= last:
        return []
    if not schedule.catch_up:
        return [latest]
    slots: list[dt.datetime] = []
    iterator = croniter(schedule.cron, last)
    while len(slots) < CATCH_UP_LIMIT:
        slot = iterator.get_next(dt.datetime)
        if slot > latest:
            break
        slots.append(slot)
    return slots


def identity_of(schedule: Schedule, slot: dt.datetime) -> str:
    return f"cron:{schedule.name}:{slot.isoformat()}"
