"""What the peers' benchmark jobs do: the same as ``bench/jobs.py`` does for queuejob.

Imported inside the peers' worker processes, so it needs the standard library only.
A no-op job appends one byte to the file named by ``QUEUEJOB_BENCH_DONE`` (opened,
written and closed per job, exactly as ``bench.jobs.noop`` does); a latency job appends
``"<enqueued_at> <started_at>\\n"`` to ``QUEUEJOB_BENCH_LATENCY``, ``started_at`` being
``time.time()`` taken first thing. The harness counts bytes and lines of these files, so
completion is detected in the same way for every system, whatever it records itself.
"""

from __future__ import annotations

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
