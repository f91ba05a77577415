"""Periodic jobs: every second, the worker looks at the schedules of its modules and at
the schedules defined at run time (in the database) whose job function its modules
register; for each slot, the worker that moves the schedule's last slot in the database
delays the slot's job, in the same transaction (one job per slot across all workers).

A run-time schedule is data: one whose row does not make sense, or whose function this
worker does not register, is skipped (said once in the log) and costs nothing else; each
is handled in a savepoint of its own, so that one failing delay leaves the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..core import registry
from ..core import schedules as run_rules
from ..core.cron import due_slots, identity_of, latest_slot
from ..core.errors import ConfigurationError
from ..core.rows import is_int
from ..database import Session
from ..storage import RESERVED
from ..store.schedules import ScheduleStore
from .context import WorkerContext

log = logging.getLogger("queuejob.worker")


def _requested(row: dict[str, Any]) -> int:
    """The 'run now' requests of a stored schedule (0 for a value that is not a count)."""
    value: Any = row.get("run_requested")
    return value if is_int(value) and value > 0 else 0


class ScheduleRunner:
    def __init__(self, context: WorkerContext, allows: Callable[[Any], bool]) -> None:
        self.context = context
        self.allows = allows
        #: when schedules are looked at next (the loop's thread only)
        self.next_at = time.monotonic()
        #: the latest slot of each schedule this worker saw handled
        self._seen: dict[str, Any] = {}
        self.schedules = ScheduleStore(context.store.connector)

    def due(self, now: float) -> bool:
        return now >= self.next_at and not self.context.stopping.is_set()

    def wanted(self) -> bool:
        """Whether there is a schedule at all (in the worker's modules, or stored, as
        the last heartbeat read): a look with nothing to do costs no transaction (and
        never takes SQLite's write lock)."""
        look = self.context.look
        if any(self.allows(entry.func) for entry in registry.schedules().values()) \
                or look is None or look.schedules:
            return True
        # nothing until a heartbeat's read says otherwise
        self.next_at = time.monotonic() + self.context.settings.heartbeat_interval
        return False

    def run_once(self, conn: Any) -> int:
        """Delay the jobs of the slots that are due; how many were delayed."""
        self.next_at = time.monotonic() + 1.0
        return self._code_schedules(conn) + self._run_time_schedules(conn)

    def _code_schedules(self, conn: Any) -> int:
        schedules = [entry for entry in registry.schedules().values()
                     if self.allows(entry.func)]
        if not schedules:
            return 0
        store = self.context.store
        now = store.database_now(conn)
        delayed = 0
        for entry in schedules:
            latest = latest_slot(entry.cron, now)
            if self._seen.get(entry.name) == latest:
                continue  # this worker saw this slot handled already: no query
            exists, last = store.schedule_state(conn, entry.name)
            if not exists:
                store.start_schedule(conn, entry.name, latest)
            else:
                slots = due_slots(entry, last, now)
                if slots and store.advance_schedule(conn, entry.name, last, slots[-1]):
                    session = Session(self.context.db, conn, owns_transaction=False)
                    for slot in slots:
                        entry.func.delay(session, *entry.args, eta=slot,
                                         identity_key=identity_of(entry, slot),
                                         **entry.kwargs, **entry.options)
                        delayed += 1
                    log.info("schedule %s: delayed the job of %s", entry.name,
                             ", ".join(slot.isoformat() for slot in slots))
            self._seen[entry.name] = latest
        return delayed

    def _run_time_schedules(self, conn: Any) -> int:
        """The schedules stored in the database (one read a look): those with something
        to do, each in a savepoint of its own."""
        rows = self.schedules.all(conn)
        if not rows:
            return 0
        store = self.context.store
        connector = store.connector
        now = store.database_now(conn)
        delayed = 0
        for row in rows:
            work = self._work_of(row, now)
            if work is None:
                continue
            try:
                with connector.savepoint(conn):
                    delayed += self._run_time_schedule(conn, row, *work)
            except Exception as exc:
                if connector.is_lost(exc) or connector.is_transient(exc):
                    raise
                # this schedule's delay failed (its arguments, its function's checks):
                # the others go on; said once while it stays so
                store.bad_row("schedule", row.get("name"), exc)
        return delayed

    def _work_of(self, row: dict[str, Any], now: Any
                 ) -> tuple[Any, run_rules.RunSchedule, run_rules.Plan | None] | None:
        """(its job function, the schedule, what its slots need) when a stored schedule
        has something for this worker to do; None otherwise (nothing due, a row that
        does not make sense, a function this worker does not register)."""
        try:
            schedule = run_rules.from_row(row, RESERVED)
        except ConfigurationError as exc:
            self.context.store.bad_row("schedule", row.get("name"), exc)
            return None
        func = registry.job_function(schedule.func_name)
        if func is None or not self.allows(func):
            # another worker may register it: its slots are left to that one
            self.context.store.bad_row("schedule", schedule.name, ConfigurationError(
                f"job function {schedule.func_name} is not registered by this worker's "
                "modules: this worker does not run the schedule"))
            return None
        plan = None if schedule.paused else run_rules.plan(schedule, row.get("last_slot"),
                                                            now)
        if plan is not None and plan.last is None:
            plan = None
        if plan is None and not _requested(row):
            return None
        return func, schedule, plan

    def _run_time_schedule(self, conn: Any, row: dict[str, Any], func: Any,
                           schedule: run_rules.RunSchedule, plan: run_rules.Plan | None
                           ) -> int:
        delayed = 0
        requested = _requested(row)
        if requested and self.schedules.take_run_request(conn, schedule.name, requested):
            self._delay(conn, func, schedule, None)
            log.info("schedule %s: delayed a job (run now)", schedule.name)
            delayed += 1
        if plan is None or plan.last is None or not self.schedules.advance(
                conn, schedule.name, row.get("last_slot"), plan.last):
            return delayed
        for slot in plan.run:
            self._delay(conn, func, schedule, slot)
            delayed += 1
        if plan.run:
            log.info("schedule %s: delayed the job of %s", schedule.name,
                     ", ".join(slot.isoformat() for slot in plan.run))
        return delayed

    def _delay(self, conn: Any, func: Any, schedule: run_rules.RunSchedule,
               slot: Any) -> None:
        session = Session(self.context.db, conn, owns_transaction=False)
        options: dict[str, Any] = {}
        if schedule.channel is not None:
            options["channel"] = schedule.channel
        if slot is not None:
            options.update(eta=slot, identity_key=run_rules.identity_of(schedule.name, slot))
        func.delay(session, *schedule.args, **schedule.kwargs, **options)
