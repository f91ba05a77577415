"""The tallies of finished jobs (``core.tallies``), kept small: the triggers of
PostgreSQL add a delta row per statement that finishes, requeues or removes jobs (so that
workers finishing jobs never wait on one another for a tally row); every few seconds the
first worker merges each key's deltas into one row, and the others do it now and then in
case the first is gone. Minutes older than any window reads are dropped (both
dialects). A merge changes no figure: the reads sum whatever rows there are.
"""

from __future__ import annotations

import time
from typing import Any

from .context import WorkerContext

#: seconds between merges by the first worker (deltas accumulate meanwhile: a few
#: rows per outcome batch); the others' every BACKUP times that
INTERVAL = 5.0
BACKUP = 12
#: seconds between prunes of old minutes on SQLite (each key is one row there)
SQLITE_INTERVAL = 60.0


class TallyKeeper:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        #: when the next merge is due (the loop's thread only)
        self.next_at = time.monotonic() + INTERVAL

    def due(self, now: float) -> bool:
        return now >= self.next_at and not self.context.stopping.is_set()

    def run_once(self, conn: Any) -> None:
        store = self.context.store
        if store.connector.dialect == "sqlite":
            interval = SQLITE_INTERVAL
        else:
            look = self.context.look
            first = look is None or look.rank.rank == 0 or look.rank.workers <= 1
            interval = INTERVAL * (1 if first else BACKUP)
        self.next_at = time.monotonic() + interval
        store.compact_tallies(conn)
