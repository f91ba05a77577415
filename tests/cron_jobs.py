"""Periodic jobs for the tests (imported only by the workers of the cron tests)."""

from __future__ import annotations

import os
import time

import queuejob
from queuejob import job


@job(cron="* * * * * */2")
def every_two_seconds(session):
    """Logs its slot (its eta) and its process."""
    path = os.environ["QUEUEJOB_TEST_CRON_LOG"]
    line = f"{session.job.eta.timestamp():.3f} {os.getpid()} {time.time():.3f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@job
def report(session, model_name, period):
    return period


queuejob.schedule(report, cron="* * * * * */3", args=("account.report", "daily"),
                  name="daily-report", priority=3)
