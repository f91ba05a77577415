"""Signals a worker emits as it works (jobs claimed, outcomes written, jobs rescued),
so that a test, or an embedding application, waits on what happened instead of polling
the database."""

from __future__ import annotations

import threading
import time
from collections import Counter

#: the signals: jobs claimed, outcomes written (finished attempts), jobs rescued
NAMES = ("claimed", "finished", "rescued")


class Signals:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._changed = threading.Condition()

    def emit(self, name: str, count: int = 1) -> None:
        if count <= 0:
            return
        with self._changed:
            self._counts[name] += count
            self._changed.notify_all()

    def count(self, name: str) -> int:
        with self._changed:
            return self._counts[name]

    def wait(self, name: str, at_least: int, timeout: float) -> int:
        """Block until ``name`` was emitted ``at_least`` times in all; its count.
        TimeoutError after ``timeout`` seconds."""
        if name not in NAMES:
            raise ValueError(f"unknown signal {name!r} (one of {', '.join(NAMES)})")
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._counts[name] < at_least:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{name}: {self._counts[name]} of {at_least} after "
                                       f"{timeout:g} s")
                self._changed.wait(remaining)
            return self._counts[name]
