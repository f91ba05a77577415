"""Wakes the worker loop when jobs may have become runnable elsewhere.

PostgreSQL: LISTEN/NOTIFY. SQLite: commits of other connections, seen through
``PRAGMA data_version``. If the watcher's connection is lost, it reconnects
with back-off and wakes the loop once (a notification may have been missed);
meanwhile the loop's poll interval is the fallback.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

log = logging.getLogger("queuejob.worker")


class Wakeup(threading.Thread):
    def __init__(self, worker: Any) -> None:
        super().__init__(name=f"{worker.id}-wakeup", daemon=True)
        self.worker = worker
        self._stop_event = threading.Event()
        self.start()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        connector = self.worker.db.connector
        watcher = None
        delay = 0.0
        try:
            while not self._stop_event.is_set():
                try:
                    if watcher is None:
                        watcher = connector.watcher()
                        if delay:
                            log.info("listening for new jobs again")
                            self.worker.wake()
                        delay = 0.0
                    if watcher.wait(0.1):
                        self.worker.wake()
                except Exception as exc:
                    delay = min(5.0, delay * 2 or 0.1)
                    log.warning("job watcher lost (%s); reconnecting in %.1fs",
                                connector.describe_error(exc), delay)
                    if watcher is not None:
                        with contextlib.suppress(Exception):  # broken already
                            watcher.close()
                        watcher = None
                    self._stop_event.wait(delay)
        finally:
            if watcher is not None:
                watcher.close()
