"""Batches (``queuejob.batch``): every second, the worker looks at the open batches (the
oldest first, a bounded number a look, going on from where the last look stopped), counts
their jobs per state, and concludes each one they conclude (``core.batches.conclusion``):
the state moves from open by a compare-and-set, and the callback is delayed in the same
transaction, so that of all the workers one alone delays it.

This is no part of a job's claim nor of its outcome: a batch costs nothing to the jobs it
holds. A callback is delayed whatever this worker registers (a job of a function no
worker registers fails as unregistered, as any job). A batch row that does not make
sense (written by hand) is concluded without its callback, the reason stored with it,
each in a savepoint of its own: it costs that batch only.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..core import batches as rules
from ..core.text import describe
from ..store.batches import BatchStore
from .context import WorkerContext

log = logging.getLogger("queuejob.worker")

#: the most open batches one look counts
LOOK = 100
#: seconds between looks
INTERVAL = 1.0


class BatchConcluder:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self.batches = BatchStore(context.store.connector)
        #: when the next look is due (the loop's thread only)
        self.next_at = time.monotonic() + INTERVAL
        #: where the last look stopped (date_created, uuid); None: from the oldest
        self._cursor: tuple[Any, str] | None = None

    def due(self, now: float) -> bool:
        return now >= self.next_at and not self.context.stopping.is_set()

    def wanted(self) -> bool:
        """Whether a batch is open (as the last heartbeat read): a look with nothing to
        do costs no transaction (and never takes SQLite's write lock)."""
        look = self.context.look
        if look is None or look.open_batches:
            return True
        # nothing until a heartbeat's read says otherwise
        self.next_at = time.monotonic() + self.context.settings.heartbeat_interval
        return False

    def run_once(self, conn: Any) -> int:
        """Conclude the open batches whose jobs say so; how many callbacks were delayed."""
        self.next_at = time.monotonic() + INTERVAL
        rows = self.batches.open_batches(conn, LOOK, self._cursor)
        self._cursor = None if len(rows) < LOOK else (rows[-1]["date_created"],
                                                      str(rows[-1]["uuid"]))
        if not rows:
            return 0
        counts = self.batches.counts(conn, [str(row["uuid"]) for row in rows])
        connector = self.batches.connector
        delayed = 0
        for row in rows:
            batch_uuid = str(row["uuid"])
            state = rules.conclusion(counts.get(batch_uuid, {}))
            if state is None:
                continue
            try:
                with connector.savepoint(conn):
                    delayed += self._conclude(conn, row, state)
            except Exception as exc:
                if connector.is_lost(exc) or connector.is_transient(exc):
                    raise
                self.context.store.bad_row("batch", batch_uuid, exc)
                self._conclude_without_callback(conn, batch_uuid, state, exc)
        return delayed

    def _conclude(self, conn: Any, row: dict[str, Any], state: str) -> int:
        batch_uuid = str(row["uuid"])
        stored = row.get("on_done") if state == rules.DONE else row.get("on_failure")
        callback, error = None, None
        if stored is not None:
            try:
                callback = rules.read_callback(stored)
            except ValueError as exc:
                error = str(exc)
        if not self.batches.conclude(conn, batch_uuid, state, error):
            return 0  # another worker concluded it
        name = describe(row.get("name"), 80)
        if error is not None:
            self.context.store.bad_row("batch", batch_uuid, ValueError(error))
        if callback is None:
            log.info("batch %s %s: %s", batch_uuid, name, state)
            return 0
        callback_uuid = self.context.store.insert_one(conn, self.batches.callback_row(callback))
        self.batches.set_callback(conn, batch_uuid, callback_uuid)
        log.info("batch %s %s: %s, delayed %s (job %s)", batch_uuid, name, state,
                 callback.func_name, callback_uuid)
        return 1

    def _conclude_without_callback(self, conn: Any, batch_uuid: str, state: str,
                                   exc: Exception) -> None:
        """A callback that could not be delayed (its row does not make sense): the batch
        is concluded without it, the reason kept with it."""
        connector = self.batches.connector
        try:
            with connector.savepoint(conn):
                self.batches.conclude(conn, batch_uuid, state,
                                      describe(str(exc), 500)[1:-1])
        except Exception as again:
            if connector.is_lost(again) or connector.is_transient(again):
                raise
            self.context.store.bad_row("batch", batch_uuid, again)
