"""How removal of finished jobs shares the database with the workers.

Removal runs in batches, each its own short transaction, and waits after each batch so
that removing takes at most ``DUTY`` of the time: on SQLite (one writer) the workers get
the write lock in between; on PostgreSQL the server's CPU and disk stay theirs. The same
rule paces the workers' removal of expired jobs and ``queuejob purge``.
"""

from __future__ import annotations

#: the share of the time removal spends removing
DUTY = 0.15
#: the shortest wait between two batches (seconds)
MIN_PAUSE = 0.01


def pause_after(batch_seconds: float, duty: float = DUTY) -> float:
    """Seconds to wait after a batch that took ``batch_seconds``, so that removing
    takes ``duty`` of the time (0 for a duty of 1 or more: no wait)."""
    if duty >= 1:
        return 0.0
    return max(MIN_PAUSE, max(batch_seconds, 0.0) * (1 - duty) / duty)
