"""Job functions of the reliability suite (imported by worker subprocesses as
``tests.reliability.jobs``, beside ``tests.jobs``).

Executions are counted outside queuejob: the jobs append ``uuid attempt pid start
end`` lines with ``tests.jobs.log_execution``.
"""

from __future__ import annotations

import time

from queuejob import job
from tests.jobs import log_execution


def _placeholder(session) -> str:
    return "?" if session.db.dialect == "sqlite" else "%s"


@job
def sleep_first_attempt(session, model_name, path, seconds):
    """Sleep ``seconds`` on the job's first claim only (later claims are quick), then log."""
    start = time.time()
    if session.job.attempt == 1:
        time.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return "slept" if session.job.attempt == 1 else "quick"


@job
def commit_repeatedly(session, model_name, path, seconds, table):
    """Write a row and commit the job's own session every 50 ms for ``seconds``."""
    start = time.time()
    deadline = time.monotonic() + seconds
    count = 0
    while time.monotonic() < deadline:
        count += 1
        session.execute(f"INSERT INTO {table} (value) VALUES ({_placeholder(session)})",
                        (count,))
        session.commit()
        time.sleep(0.05)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return count


@job(retry_pattern={1: 0.01})
def time_out_first_attempt(session, model_name, path, seconds):
    """Over any small timeout on its first claim (sleeping), quick afterwards."""
    start = time.time()
    if session.job.attempt == 1:
        time.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return f"attempt {session.job.attempt}"


@job
def check_app_row(session, model_name, table, session_id, path):
    """Log whether the application row written beside this job is visible to the job."""
    start = time.time()
    job_uuid = session.context["job_uuid"]
    seen = session.execute(
        f"SELECT count(*) FROM {table} WHERE job_uuid = {_placeholder(session)}",
        (job_uuid,)).fetchone()[0]
    line = f"{job_uuid} {session_id} {seen} {start:.6f}\n"
    with open(path, "a") as out:
        out.write(line)
    return seen


@job
def big_result(session, model_name, size):
    return "r" * size


@job
def big_error(session, model_name, size):
    raise ValueError("e" * size)


@job
def args_of(session, model_name, *args, **kwargs):
    """Return the repr of what the job received (decoded arguments)."""
    return repr((args, sorted(kwargs.items())))
