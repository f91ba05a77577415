"""Rescue: jobs of dead workers go back to pending, counting a retry.

A worker is dead when its heartbeat is older than ``dead_after`` (by the
database's clock). Every worker runs the rescue every ``rescue_interval``;
the writes are fenced on each job's attempt, so workers rescuing at once
rescue each job once. A job that keeps killing its worker ends failed after
``max_retries``.
"""

from __future__ import annotations

import logging
from typing import Any

from ..manager import RescueReport

log = logging.getLogger("queuejob.worker")


def rescue_jobs(worker: Any, conn: Any) -> RescueReport:
    report = worker.db.manager.rescue(conn, worker.dead_after, rescuer=worker.id)
    for dead in report.dead_workers:
        log.warning("worker %s (pid %s on %s) missed its heartbeats: marked dead",
                    dead["id"], dead["pid"], dead["hostname"])
    if report.rescued:
        log.warning("rescued %d job(s) of dead workers: back to pending", len(report.rescued))
    for job_uuid in report.failed:
        log.error("job %s failed: its worker died while running it, retries used up", job_uuid)
    return report
