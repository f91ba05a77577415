"""The schedules defined at run time, as stored (``queue_run_schedule``): the named
queries of each dialect's ``schedules.sql``. Callers pass the connection, and so decide
the transaction; the rules (what a definition may hold, which slots run) are in
``queuejob.core.schedules``. Rows are handed back as stored: ``core.schedules.from_row``
checks them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..backends.base import Connector, Row
from ..core.schedules import RunSchedule, dump_json


def _definition(schedule: RunSchedule) -> dict[str, Any]:
    return {"name": schedule.name, "cron": schedule.cron, "func_name": schedule.func_name,
            "args": dump_json(list(schedule.args)), "kwargs": dump_json(schedule.kwargs),
            "channel": schedule.channel, "timezone": schedule.timezone,
            "missed": schedule.missed, "missed_window": schedule.missed_window}


class ScheduleStore:
    """The run-time schedules' reads and writes on one connector."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self._run = connector.execute

    def all(self, conn: Any) -> list[Row]:
        """Every run-time schedule's row, by name (as stored)."""
        return self._run(conn, "run_schedules")

    def one(self, conn: Any, name: str) -> Row | None:
        rows = self._run(conn, "run_schedule", {"name": name})
        return rows[0] if rows else None

    def add(self, conn: Any, schedule: RunSchedule, last_slot: dt.datetime) -> bool:
        """Store a new schedule, starting after ``last_slot``; False when its name is
        taken."""
        return bool(self._run(conn, "add_run_schedule", {
            **_definition(schedule), "paused": schedule.paused, "last_slot": last_slot}))

    def edit(self, conn: Any, schedule: RunSchedule, last_slot: dt.datetime | None) -> bool:
        """Replace a schedule's definition (``last_slot``: where it starts again, None:
        where it is); False when there is none of that name."""
        return bool(self._run(conn, "edit_run_schedule",
                              {**_definition(schedule), "last_slot": last_slot}))

    def pause(self, conn: Any, name: str, paused: bool, last_slot: dt.datetime | None
              ) -> bool:
        return bool(self._run(conn, "pause_run_schedule", {
            "name": name, "paused": paused, "last_slot": last_slot}))

    def remove(self, conn: Any, name: str) -> bool:
        return bool(self._run(conn, "remove_run_schedule", {"name": name}))

    def request_run(self, conn: Any, name: str) -> bool:
        return bool(self._run(conn, "request_run_schedule", {"name": name}))

    def take_run_request(self, conn: Any, name: str, seen: int) -> bool:
        """Take the 'run now' requests seen (``seen``); False when another worker did."""
        return bool(self._run(conn, "take_run_request", {"name": name, "seen": seen}))

    def advance(self, conn: Any, name: str, last: Any, slot: dt.datetime) -> bool:
        """Move a schedule's last slot from ``last`` (as read) to ``slot``; False when
        another worker did."""
        return bool(self._run(conn, "advance_run_schedule",
                              {"name": name, "last": last, "slot": slot}))
