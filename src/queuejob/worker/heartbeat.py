"""The heartbeat: proof, in the database, that this worker is alive.

A thread of its own with a connection of its own, so that neither long jobs
nor a busy loop delay it. Other workers rescue the jobs of a worker whose
heartbeat is older than ``dead_after``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("queuejob.worker")


class Heartbeat(threading.Thread):
    def __init__(self, worker: Any) -> None:
        super().__init__(name=f"{worker.id}-heartbeat", daemon=True)
        self.worker = worker
        self._stop_event = threading.Event()
        self._conn: Any = None
        #: when the beat in progress began (time.monotonic()), None between beats
        self.beating_since: float | None = None
        self.start()

    def stop(self) -> None:
        self._stop_event.set()

    def waiting(self) -> bool:
        """The beat in progress has waited longer than a heartbeat interval (a lock, a
        slow disk): the other workers' beats are likely waiting as well."""
        began = self.beating_since
        return began is not None and time.monotonic() - began > self.worker.heartbeat_interval

    def run(self) -> None:
        connector = self.worker.db.connector
        manager = self.worker.db.manager
        last_beat = time.monotonic()
        try:
            while not self._stop_event.wait(self.worker.heartbeat_interval):
                self.beating_since = time.monotonic()
                try:
                    if self._conn is None:
                        self._conn = connector.connect(worker=True)
                    connector.begin(self._conn)
                    if not manager.heartbeat(self._conn, self.worker.id) \
                            and not self.worker._stopping:
                        # our row is gone (removed by an operator): register again
                        manager.register_worker(self._conn, self.worker.id, self.worker.hostname,
                                                os.getpid(), self.worker.tree.to_string())
                    connector.commit(self._conn)
                    now = time.monotonic()
                    if now - last_beat > 2 * self.worker.heartbeat_interval:
                        # this beat waited (a lock, a slow disk): the others' beats may
                        # have waited as well, so give them time before judging them
                        self.worker.database_failed()
                    last_beat = now
                except Exception as exc:
                    log.warning("heartbeat failed: %s", connector.describe_error(exc))
                    self.worker.database_failed()
                    if self._conn is not None:
                        connector.rollback_if_open(self._conn)
                        if not connector.is_transient(exc) or "lock" not in str(exc):
                            self._close()
                finally:
                    # cleared once the worker knows whether the beat waited
                    self.beating_since = None
        finally:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # broken already
                self.worker.db.connector.close_connection(self._conn)
            self._conn = None
