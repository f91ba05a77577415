"""Rescue: jobs of dead workers go back to pending, counting a retry.

A worker is dead when its heartbeat is older than ``dead_after`` (by the database's
clock), or at once when a worker of its host finds its process gone (worker/liveness.py:
a worker restarted after a crash looks as it starts). The first live worker runs the
rescue every ``rescue_interval`` (the others less often, as a backup); the writes are
fenced on
each job's attempt, so workers rescuing at once rescue each job once. A job that keeps
killing its worker ends failed after ``max_retries``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..store import RescueReport
from . import liveness
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
        """Time to look for dead workers: the first of the live workers (rank 0, as its
        heartbeat read) looks every ``rescue_interval``, the others every ``BACKUP``
        intervals (in case the first is the one that died), so that a fleet's rescue
        costs about one transaction per interval. A worker that just started looks at
        once (for the workers of its host that are gone)."""
        if now < self.next_at:
            return False
        settings = self.context.settings
        look = self.context.look
        first = look is None or look.rank.rank == 0 or look.rank.workers <= 1
        self.next_at = now + settings.rescue_interval * (1 if first else BACKUP)
        self._asked = now
        return self.may_judge_silence(now) or self.context.process_space is not None

    def may_judge_silence(self, now: float) -> bool:
        """This worker may judge others by their heartbeats: it has reached the database
        without a failure for ``dead_after`` (after an outage or a long write lock,
        every worker needs that time to beat again)."""
        return self.context.health.healthy_for(now) > self.context.settings.dead_after

    def run_once(self, conn: Any) -> RescueReport | None:
        """Mark dead the workers silent for ``dead_after`` and those of this worker's
        process space whose process is gone, and rescue their jobs; None when there is
        nobody this worker may judge on this look."""
        settings = self.context.settings
        silence = self.may_judge_silence(time.monotonic())
        if silence and (time.monotonic() - self._asked > settings.heartbeat_interval
                        or self.heartbeat.waiting()):
            # the transaction, or this worker's own heartbeat, waited for the database (a
            # long write lock): so did the other workers' heartbeats, which are about to
            # be written. Judge nobody by silence on this look.
            self.context.health.database_failed()
            silence = False
        store, space = self.context.store, self.context.process_space
        gone = [] if space is None else [
            row for row in store.workers_in_space(conn, space, self.context.worker_id)
            if liveness.process_gone(row["pid"])]
        if not silence and not gone:
            return None
        report = store.rescue(conn, settings.dead_after if silence else None,
                              rescuer=self.context.worker_id, gone=gone, space=space)
        gone_ids = {row["id"] for row in gone}
        for dead in report.dead_workers:
            if dead["id"] in gone_ids:
                log.warning("worker %s (pid %s on %s) is gone: marked dead",
                            dead["id"], dead["pid"], dead["hostname"])
            else:
                log.warning("worker %s (pid %s on %s) missed its heartbeats: marked dead",
                            dead["id"], dead["pid"], dead["hostname"])
        if report.rescued:
            log.warning("rescued %d job(s) of dead workers: back to pending",
                        len(report.rescued))
        for job_uuid in report.failed:
            log.error("job %s failed: its worker died while running it, retries used up",
                      job_uuid)
        return report
