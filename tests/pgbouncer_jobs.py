"""Jobs for the PgBouncer tests (importable by worker subprocesses as tests.pgbouncer_jobs):
jobs that work through their session, as an application's jobs do."""

from __future__ import annotations

import time

from queuejob import job
from tests.jobs import log_execution

#: statements of one text run by each job: more than psycopg's prepare threshold (5), so
#: that a connection that prepared statements would have prepared this one
REPEATS = 8


@job
def session_work(session, model_name, table, value, path, seconds=0.0):
    """Insert a row and read it back REPEATS times through the job's session, then hold
    the transaction for ``seconds`` (its server connection stays busy meanwhile)."""
    start = time.time()
    session.execute(f"INSERT INTO {table} (value) VALUES (%s)", (value,))
    total = 0
    for _ in range(REPEATS):
        total += session.execute(f"SELECT count(*) FROM {table} WHERE value = %s",
                                 (value,)).fetchone()[0]
    if seconds:
        time.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return total
