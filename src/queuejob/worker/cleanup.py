"""Removal of old done and cancelled jobs, a small batch at a time, and of the rows of
workers stopped or dead long ago.

Each channel keeps its done and cancelled jobs for its removal interval (days,
``removal_interval``, default 30); failed jobs are kept until someone acts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .context import WorkerContext

log = logging.getLogger("queuejob.worker")

BATCH = 500


class Cleaner:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        #: when the next batch is due (the loop's thread only)
        self.next_at = time.monotonic() + min(context.settings.cleanup_interval, 10.0)
        #: where the last batch stopped, in (date_done, id) order
        self._cursor: Any = None

    def due(self, now: float) -> bool:
        return now >= self.next_at and not self.context.stopping.is_set()

    def run_once(self, conn: Any) -> int:
        """Remove a batch of expired jobs (and, at the end of a pass, old worker rows);
        how many jobs were removed. A full batch makes the next one due at once."""
        store = self.context.store
        tree = store.shared_tree(conn)
        removed, self._cursor = store.remove_old_jobs(conn, tree, limit=BATCH,
                                                      after=self._cursor)
        if removed:
            log.info("removed %d old done or cancelled job(s)", removed)
        if self._cursor is None:
            pruned = store.prune_workers(conn)
            if pruned:
                log.info("removed the rows of %d worker(s) stopped or dead for a week",
                         pruned)
        # a full batch read: go on soon from where it stopped
        self.next_at = time.monotonic() + (
            1.0 if self._cursor is not None else self.context.settings.cleanup_interval)
        return removed
