"""The heartbeat: proof, in the database, that this worker is alive.

A thread of its own with a connection of its own, so that neither long jobs nor a busy
loop delay it. Other workers rescue the jobs of a worker whose heartbeat is older than
``dead_after``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

from .context import WorkerContext

log = logging.getLogger("queuejob.worker")


class Heartbeat:
    def __init__(self, context: WorkerContext) -> None:
        self.context = context
        self._stop = threading.Event()
        self._conn: Any = None
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
        last_beat = time.monotonic()
        try:
            while not self._stop.wait(interval):
                self.beating_since = time.monotonic()
                try:
                    self._beat()
                    now = time.monotonic()
                    if now - last_beat > 2 * interval:
                        # this beat waited (a lock, a slow disk): the others' beats may
                        # have waited as well, so give them time before judging them
                        context.health.database_failed()
                    last_beat = now
                except Exception as exc:
                    log.warning("heartbeat failed: %s", connector.describe_error(exc))
                    context.health.database_failed()
                    if self._conn is not None:
                        connector.rollback_if_open(self._conn)
                        if not connector.is_transient(exc) or "lock" not in str(exc):
                            self._close()
                finally:
                    # cleared once the worker knows whether the beat waited
                    self.beating_since = None
        finally:
            self._close()

    def _beat(self) -> None:
        context = self.context
        connector = context.db.connector
        if self._conn is None:
            self._conn = connector.connect(worker=True)
        connector.begin(self._conn)
        if not context.store.heartbeat(self._conn, context.worker_id) \
                and not context.stopping.is_set():
            # our row is gone (removed by an operator): register again
            context.store.register_worker(self._conn, context.worker_id, context.hostname,
                                          context.pid, context.channels,
                                          context.concurrency)
        connector.commit(self._conn)

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # broken already
                self.context.db.connector.close_connection(self._conn)
            self._conn = None
