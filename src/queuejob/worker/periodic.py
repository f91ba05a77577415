"""Periodic jobs: every second, the worker looks at the schedules of its modules; for
each slot, the worker that moves the schedule's last slot in the database delays the
slot's job, in the same transaction (one job per slot across all workers)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..core import registry
from ..core.cron import due_slots, identity_of, latest_slot
from ..database import Session
from .context import WorkerContext

log = logging.getLogger("queuejob.worker")


class ScheduleRunner:
    def __init__(self, context: WorkerContext, allows: Callable[[Any], bool]) -> None:
        self.context = context
        self.allows = allows
        #: when schedules are looked at next (the loop's thread only)
        self.next_at = time.monotonic()
        #: the latest slot of each schedule this worker saw handled
        self._seen: dict[str, Any] = {}

    def due(self, now: float) -> bool:
        return now >= self.next_at and not self.context.stopping.is_set()

    def run_once(self, conn: Any) -> int:
        """Delay the jobs of the slots that are due; how many were delayed."""
        self.next_at = time.monotonic() + 1.0
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
