"""No-op jobs for the benchmarks (imported by worker processes as bench.jobs).

Completion is counted outside queuejob, as the peers' harness does: each job
appends one byte to the file named by QUEUEJOB_BENCH_DONE; the latency job
appends ``enqueue_time start_time`` to QUEUEJOB_BENCH_LATENCY; the stamped job does
both (a no-op that records its wait, for bench.flow).
"""

from __future__ import annotations

import os
import time

from queuejob import job

_DONE = os.environ.get("QUEUEJOB_BENCH_DONE", "")
_LATENCY = os.environ.get("QUEUEJOB_BENCH_LATENCY", "")


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
