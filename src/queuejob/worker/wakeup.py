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
from collections.abc import Callable

from .context import WorkerContext

log = logging.getLogger("queuejob.worker")


class Wakeup:
    def __init__(self, context: WorkerContext, wake: Callable[[], None]) -> None:
        self.context = context
        self.wake = wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{context.worker_id}-wakeup",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        connector = self.context.db.connector
        watcher = None
        delay = 0.0
        try:
            while not self._stop.is_set():
                try:
                    if watcher is None:
                        watcher = connector.watcher()
                        if delay:
                            log.info("listening for new jobs again")
                            self.wake()
                        delay = 0.0
                    if watcher.wait(0.1):
                        self.wake()
                except Exception as exc:
                    delay = min(5.0, delay * 2 or 0.1)
                    log.warning("job watcher lost (%s); reconnecting in %.1fs",
                                connector.describe_error(exc), delay)
                    if watcher is not None:
                        with contextlib.suppress(Exception):  # broken already
                            watcher.close()
                        watcher = None
                    self._stop.wait(delay)
        finally:
            if watcher is not None:
                watcher.close()
