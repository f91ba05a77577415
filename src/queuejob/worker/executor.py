"""The pool of threads that run jobs.

Daemon threads, not ``concurrent.futures``: a job that never returns must not
keep the process alive after the worker has given its job back at shutdown
(ThreadPoolExecutor joins its threads at interpreter exit).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

_STOP = object()


class Executor:
    def __init__(self, size: int, run: Callable[[Any], None], name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._run = run
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-job-{index}",
                                          daemon=True) for index in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, item: Any) -> None:
        self._queue.put(item)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._run(item)

    def shutdown(self, timeout: float) -> list[threading.Thread]:
        """Stop the threads once their current job ends; those still busy after
        ``timeout`` seconds are returned (they are daemons and die with the process)."""
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [thread for thread in self._threads if thread.is_alive()]
