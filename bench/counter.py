"""What the peers' benchmark jobs do: the same as ``bench/jobs.py`` does for queuejob.

Imported inside the peers' worker processes, so it needs the standard library only.
A no-op job appends one byte to the file named by ``QUEUEJOB_BENCH_DONE`` (opened,
written and closed per job, exactly as ``bench.jobs.noop`` does); a latency job appends
``"<enqueued_at> <started_at>\\n"`` to ``QUEUEJOB_BENCH_LATENCY``, ``started_at`` being
``time.time()`` taken first thing. The harness counts bytes and lines of these files, so
completion is detected in the same way for every system, whatever it records itself.

A record job (``bench.crash``) appends ``"<job_id> <pid> <start>\\n"`` to
``QUEUEJOB_BENCH_STARTS`` first thing, sleeps, then appends ``"<job_id> <pid> <start>
<end>\\n"`` to ``QUEUEJOB_BENCH_RUNS``: an execution killed in between leaves a start and
no end.
"""

from __future__ import annotations

import asyncio
import os
import time

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def _append(path: str | None, data: bytes) -> None:
    if not path:  # called outside the benchmark: a real no-op
        return
    fd = os.open(path, _FLAGS, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def done() -> None:
    """The whole body of every peer's no-op job."""
    _append(os.environ.get("QUEUEJOB_BENCH_DONE"), b".")


def started(enqueued_at: float | str) -> None:
    """The whole body of every peer's latency job."""
    now = time.time()
    _append(os.environ.get("QUEUEJOB_BENCH_LATENCY"),
            f"{float(enqueued_at):.6f} {now:.6f}\n".encode())


def begin(job_id: int | str) -> float:
    """First thing of a record job: its start, on the file of starts."""
    now = time.time()
    _append(os.environ.get("QUEUEJOB_BENCH_STARTS"),
            f"{int(job_id)} {os.getpid()} {now:.6f}\n".encode())
    return now


def end(job_id: int | str, start: float) -> None:
    """Last thing of a record job: the whole execution, on the file of runs."""
    _append(os.environ.get("QUEUEJOB_BENCH_RUNS"),
            f"{int(job_id)} {os.getpid()} {start:.6f} {time.time():.6f}\n".encode())


def record(job_id: int | str, seconds: float | str) -> None:
    """The whole body of every system's record job (bench.crash): ``seconds`` of work
    (a sleep) between its start and its end."""
    start = begin(job_id)
    time.sleep(float(seconds))
    end(job_id, start)


async def record_async(job_id: int | str, seconds: float | str) -> None:
    """The same for async jobs (Procrastinate, PGQueuer): the sleep leaves the event loop
    free, as their no-op jobs do."""
    start = begin(job_id)
    await asyncio.sleep(float(seconds))
    end(job_id, start)
