"""Periodic jobs: every worker looks at the schedules of its modules each second;
for each slot, the one that moves the schedule's last slot in the database delays
the slot's job, in the same transaction."""

from __future__ import annotations

import logging
from typing import Any

from ..core import registry
from ..core.schedule import due_slots, identity_of, latest_slot
from ..database import Session

log = logging.getLogger("queuejob.worker")


def run_schedules(worker: Any, conn: Any) -> int:
    """Delay the jobs of the slots that are due; how many were delayed."""
    schedules = [entry for entry in registry.schedules().values() if worker.allows(entry.func)]
    if not schedules:
        return 0
    manager = worker.db.manager
    now = manager.database_now(conn)
    delayed = 0
    for entry in schedules:
        latest = latest_slot(entry.cron, now)
        if worker._schedule_seen.get(entry.name) == latest:
            continue  # this worker saw this slot handled already: no query
        exists, last = manager.schedule_state(conn, entry.name)
        if not exists:
            manager.start_schedule(conn, entry.name, latest)
        else:
            slots = due_slots(entry, last, now)
            if slots and manager.advance_schedule(conn, entry.name, last, slots[-1]):
                session = Session(worker.db, conn, owns_transaction=False)
                for slot in slots:
                    entry.func.delay(session, *entry.args, eta=slot,
                                     identity_key=identity_of(entry, slot),
                                     **entry.kwargs, **entry.options)
                    delayed += 1
                log.info("schedule %s: delayed the job of %s", entry.name,
                         ", ".join(slot.isoformat() for slot in slots))
        worker._schedule_seen[entry.name] = latest
    return delayed
