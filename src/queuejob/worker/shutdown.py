"""Signals: the first SIGTERM or Ctrl-C stops taking jobs and lets running ones
finish within the grace period; a second one gives them back at once."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("queuejob.worker")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def handle_signals(worker: Any) -> Iterator[None]:
    """Route SIGTERM and SIGINT to ``worker.stop()`` while the worker runs (only in
    the main thread: Python delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if worker.stopping:
            log.warning("%s again: stopping now, giving running jobs back", name)
        else:
            log.info("%s: finishing running jobs (grace %.0fs), taking no new ones",
                     name, worker.grace_period)
        worker.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
