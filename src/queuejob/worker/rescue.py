"""Rescue: jobs of dead workers go back to pending, counting a retry.

A worker is dead when its heartbeat is older than ``dead_after`` (by the database's
clock). The first live worker runs the rescue every ``rescue_interval`` (the others
less often, as a backup); the writes are fenced on
each job's attempt, so workers rescuing at once rescue each job once. A job that keeps
killing its worker ends failed after ``max_retries``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..store import RescueReport
from .context import WorkerContext
from .heartbeat import Heartbeat

log = logging.getLogger("queuejob.worker")

#: the rescue intervals between two looks of a worker that is not the first
BACKUP = 3


class Rescuer:
    def __init__(self, context: WorkerContext, heartbeat: Heartbeat) -> None:
        self.context = context
        self.heartbeat = heartbeat
        #: when the rescue is due next (time.monotonic()); the loop's thread only
        self.next_at = time.monotonic()
        self._asked = self.next_at

    def due(self, now: float) -> bool:
        """Time to look for dead workers, and this worker may judge them: it has reached
        the database without a failure for ``dead_after`` (after an outage or a long
        write lock, every worker needs that time to beat again). The first of the live
        workers (rank 0, as its heartbeat read) looks every ``rescue_interval``, the
        others every ``BACKUP`` intervals (in case the first is the one that died), so
        that a fleet's rescue costs about one transaction per interval."""
        if now < self.next_at:
            return False
        settings = self.context.settings
        look = self.context.look
        first = look is None or look.rank.rank == 0 or look.rank.workers <= 1
        self.next_at = now + settings.rescue_interval * (1 if first else BACKUP)
        self._asked = now
        return self.context.health.healthy_for(now) > settings.dead_after

    def run_once(self, conn: Any) -> RescueReport | None:
        """Mark silent workers dead and rescue their jobs; None when the look is given
        up because the database kept this worker waiting."""
        settings = self.context.settings
        if time.monotonic() - self._asked > settings.heartbeat_interval \
                or self.heartbeat.waiting():
            # the transaction, or this worker's own heartbeat, waited for the database (a
            # long write lock): so did the other workers' heartbeats, which are about to
            # be written. Judge nobody on this look.
            self.context.health.database_failed()
            return None
        report = self.context.store.rescue(conn, settings.dead_after,
                                           rescuer=self.context.worker_id)
        for dead in report.dead_workers:
            log.warning("worker %s (pid %s on %s) missed its heartbeats: marked dead",
                        dead["id"], dead["pid"], dead["hostname"])
        if report.rescued:
            log.warning("rescued %d job(s) of dead workers: back to pending",
                        len(report.rescued))
        for job_uuid in report.failed:
            log.error("job %s failed: its worker died while running it, retries used up",
                      job_uuid)
        return report
