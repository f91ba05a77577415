"""``async def`` jobs: awaited on one event loop in a thread of the worker.

They do not hold a job thread: a worker with ``root:100`` runs a hundred
awaiting jobs with one thread. Channel capacities count them like any other
job. A job over its timeout is cancelled (CancelledError at its current await).
A job that uses its session gets a pooled connection of its own for the
attempt; session calls block the loop while they run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from .running import Host, run_claimed_async


class AsyncRunner:
    """The event loop of ``async def`` jobs, in a thread of its own (``start``)."""

    def __init__(self, worker: Host, name: str,
                 done: Callable[[dict[str, Any], Any], None]) -> None:
        self.worker = worker
        self._done = done
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"{name}-async",
                                        daemon=True)
        self._futures: dict[Any, concurrent.futures.Future[Any]] = {}

    def start(self) -> None:
        self._thread.start()

    def submit(self, key: Any, row: dict[str, Any]) -> None:
        self._futures[key] = asyncio.run_coroutine_threadsafe(self._run(key, row), self.loop)

    async def _run(self, key: Any, row: dict[str, Any]) -> None:
        db = self.worker.db
        borrowed: list[Any] = []

        def connection() -> Any:
            conn = db.connector.acquire()
            borrowed.append(conn)
            return conn

        result: Any
        try:
            result = await run_claimed_async(self.worker, row, connection)
        except BaseException as exc:
            result = exc
        finally:
            for conn in borrowed:
                db.connector.release(conn)
            self._futures.pop(key, None)
        self._done(row, result)

    def cancel(self, key: Any) -> None:
        future = self._futures.get(key)
        if future is not None:
            future.cancel()

    def shutdown(self) -> None:
        for future in list(self._futures.values()):
            future.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2.0)
        if not self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.loop.close()
