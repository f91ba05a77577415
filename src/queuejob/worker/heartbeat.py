"""The heartbeat: proof, in the database, that this worker is alive.

Other workers rescue the jobs of a worker whose heartbeat is older than ``dead_after``.
The loop beats with its own transactions when a beat is due (an idle worker's poll
carries it: no transaction of its own); a thread of its own beats when the loop did not
(every slot busy, the loop waiting), on the worker's one connection. With each beat the
worker reads where it stands (``Look``: its rank for wake-ups, whether there are
schedules and open batches).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..core.wakeups import Rank
from .context import Look, WorkerContext

log = logging.getLogger("queuejob.worker")


class Heartbeat:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{context.worker_id}-heartbeat",
                                        daemon=True)
        #: when the beat in progress began (time.monotonic()), None between beats; written
        #: by the heartbeat thread, read by the loop
        self.beating_since: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def waiting(self) -> bool:
        """The beat in progress has waited longer than a heartbeat interval (a lock, a
        slow disk): the other workers' beats are likely waiting as well."""
        began = self.beating_since
        interval = self.context.settings.heartbeat_interval
        return began is not None and time.monotonic() - began > interval

    def _run(self) -> None:
        context = self.context
        connector = context.db.connector
        interval = context.settings.heartbeat_interval
        while not self._stop.wait(max(0.05, context.last_beat + interval - time.monotonic())):
            if time.monotonic() - context.last_beat < interval:
                continue  # the loop beat meanwhile
            self.beating_since = time.monotonic()
            try:
                context.connection.transaction(self.beat)
            except Exception as exc:
                log.warning("heartbeat failed: %s", connector.describe_error(exc))
                context.health.database_failed()
                if not connector.is_transient(exc) or "lock" not in str(exc):
                    context.connection.drop()
                context.last_beat = time.monotonic() - interval + min(interval, 1.0)
            finally:
                # cleared once the worker knows whether the beat waited
                self.beating_since = None

    def due(self, now: float) -> bool:
        """A beat is worth carrying in the loop's transaction (half the interval since
        the last one: the thread then never needs its own)."""
        return now - self.context.last_beat >= self.context.settings.heartbeat_interval / 2

    def beat(self, conn: Any) -> None:
        """Beat and read where the worker stands, in ``conn``'s transaction."""
        context = self.context
        store = context.store
        if not store.heartbeat(conn, context.worker_id) and not context.stopping.is_set():
            # our row is gone (removed by an operator): register again
            context.register(conn)
        look = store.worker_look(conn, context.worker_id, context.settings.dead_after)
        context.look = Look(Rank(int(look["rank"]), int(look["workers"])),
                            bool(look["schedules"]), bool(look["open_batches"]))
        now = time.monotonic()
        if now - context.last_beat > 2 * context.settings.heartbeat_interval \
                and context.last_beat:
            # this beat came late (a lock, a slow disk, a long transaction): the others'
            # beats may have been late as well, so give them time before judging them
            context.health.database_failed()
        context.last_beat = now
