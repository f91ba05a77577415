"""No-op jobs for the benchmarks (imported by worker processes as bench.jobs).

Completion is counted outside queuejob, as the peers' harness does: each job
appends one byte to the file named by QUEUEJOB_BENCH_DONE; the latency job
appends ``enqueue_time start_time`` to QUEUEJOB_BENCH_LATENCY; the stamped job does
both (a no-op that records its wait, for bench.flow); ``reporting`` and
``logging_noop`` report progress or log lines (bench.observe); ``session_select`` uses
its session as an application's job does (bench.scale); ``record`` works a while and
records its start and its end outside queuejob, as every peer's record job does
(``bench.counter.record``, for bench.crash).
"""

from __future__ import annotations

import logging
import os
import time

from bench import counter
from queuejob import job

_DONE = os.environ.get("QUEUEJOB_BENCH_DONE", "")
_LATENCY = os.environ.get("QUEUEJOB_BENCH_LATENCY", "")
_log = logging.getLogger("bench.jobs")


def _append(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@job
def noop(session, model_name):
    _append(_DONE, b".")


@job
def latency(session, model_name, enqueued_at):
    started = time.time()
    _append(_LATENCY, f"{enqueued_at:.6f} {started:.6f}\n".encode())


@job
def stamped(session, model_name, enqueued_at):
    started = time.time()
    _append(_LATENCY, f"{enqueued_at:.6f} {started:.6f}\n".encode())
    _append(_DONE, b".")


@job
def reporting(session, model_name, reports):
    """A no-op that reports its progress ``reports`` times."""
    for done in range(1, reports + 1):
        session.progress(done, reports)
    _append(_DONE, b".")


@job
def logging_noop(session, model_name, lines):
    """A no-op that logs ``lines`` lines (at WARNING: kept whatever the log level)."""
    for line in range(lines):
        _log.warning("line %d", line)
    _append(_DONE, b".")


@job
def session_select(session, model_name, seconds=0.0):
    """An application's job in miniature: it reads a row through its session (its own
    job's), then works ``seconds`` with the session's transaction open (bench.scale).
    A table, not a bare ``SELECT 1``: PostgreSQL reports the transaction counts of a
    connection whose transactions read no table only when it ends."""
    session.execute("SELECT 1 FROM queue_job WHERE uuid = %s::uuid",
                    (session.context["job_uuid"],))
    if seconds:
        time.sleep(seconds)
    _append(_DONE, b".")


@job
def record(session, model_name, job_id, seconds):
    """bench.crash: ``seconds`` of work between a start and an end recorded outside
    queuejob (bench.counter.record, the body of every system's record job)."""
    counter.record(job_id, seconds)
