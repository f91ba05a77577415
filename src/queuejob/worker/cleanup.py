"""Removal of old done and cancelled jobs, a small batch at a time, and of the rows of
workers stopped or dead long ago.

Each channel keeps its done and cancelled jobs for its removal interval (days,
``removal_interval``, default 30); failed jobs are kept until someone acts.

After an upgrade that gave PostgreSQL's finished jobs a partition of their own, the
cleaner first moves the old table's finished jobs there, a batch per turn (unless
``queuejob migrate`` did it before).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..core import removal
from .context import WorkerContext

log = logging.getLogger("queuejob.worker")

BATCH = 500
#: finished jobs of an old table moved into the history partition per turn
MOVE_BATCH = 1000
#: seconds between two of those turns (the loop runs no job claim meanwhile)
MOVE_PAUSE = 0.1
#: a removal pass shorter than this is never said to fall behind
LONG_PASS = 60.0


class Cleaner:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        #: when the next batch is due (the loop's thread only)
        self.next_at = time.monotonic() + min(context.settings.cleanup_interval, 10.0)
        #: where the last batch stopped, in (date_done, id) order
        self._cursor: Any = None
        #: False once no old table's finished jobs are left to move
        self._moving = True
        #: the pass under way: when it started, jobs removed so far
        self._pass_started: float | None = None
        self._pass_removed = 0

    def due(self, now: float) -> bool:
        return now >= self.next_at and not self.context.stopping.is_set()

    def run_once(self, conn: Any) -> int:
        """Remove a batch of expired jobs (and, at the end of a pass, old worker rows);
        how many jobs were removed. After a full batch the next comes once the batch's
        time is a small share of the time (``core.removal``), so that removal keeps up
        with a busy queue and leaves the loop its time."""
        store = self.context.store
        if self._moving:
            moved = store.move_legacy_history(conn, MOVE_BATCH)
            self._moving = moved is not None
            if moved:
                log.info("moved %d finished job(s) into the history partition", moved)
                self.next_at = time.monotonic() + MOVE_PAUSE
                return 0
        started = time.monotonic()
        tree = store.shared_tree(conn)
        if self._pass_started is None:
            self._pass_started, self._pass_removed = time.monotonic(), 0
        removed, self._cursor = store.remove_old_jobs(conn, tree, limit=BATCH,
                                                      after=self._cursor)
        self._pass_removed += removed
        interval = self.context.settings.cleanup_interval
        if self._cursor is None:
            self._end_pass(interval)
            pruned = store.prune_workers(conn)
            if pruned:
                log.info("removed the rows of %d worker(s) stopped or dead for a week",
                         pruned)
        # a full batch read: go on from where it stopped, paced (core.removal)
        now = time.monotonic()
        self.next_at = now + (removal.pause_after(now - started) if self._cursor is not None
                              else interval)
        return removed

    def _end_pass(self, interval: float) -> None:
        """Say what a pass removed; warn when it lasted longer than the interval between
        passes: finished jobs then expire faster than they are removed, and the history
        grows past what the removal intervals intend."""
        assert self._pass_started is not None
        seconds = time.monotonic() - self._pass_started
        removed, self._pass_started = self._pass_removed, None
        if removed:
            log.info("removed %d old done or cancelled job(s) in %.0f s", removed, seconds)
        if seconds > max(interval, LONG_PASS):
            log.warning("removing expired finished jobs took %.0f s (%d jobs), longer than "
                        "the %.0f s between removals: jobs expire about as fast as they "
                        "can be removed, so the history may keep growing; shorten the "
                        "channels' removal_interval, or remove some with queuejob purge",
                        seconds, removed, interval)
