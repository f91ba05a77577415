"""Before a worker's loop: its job modules imported, its database reachable; and the
back-off it uses whenever the database is busy or away."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..core.errors import ConfigurationError

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.worker")


def import_job_modules(modules: Iterable[str]) -> None:
    """Import the modules whose @job functions a worker runs (named by its
    configuration, never by stored data)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import job module {module!r}: {exc}") from None


class Backoff:
    """Capped exponential back-off for a database that is busy or away."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self.delay = 0.0

    def next(self) -> float:
        self.delay = min(self.cap, self.delay * 2 if self.delay else self.first)
        return self.delay

    def reset(self) -> None:
        self.delay = 0.0


def migrate_when_reachable(db: Database, wait: float) -> None:
    """Apply ``db``'s migrations, retrying for up to ``wait`` seconds while the database
    cannot be reached (a server starting or restarting); then give up with its error."""
    backoff = Backoff(cap=2.0)
    deadline = time.monotonic() + wait
    while True:
        try:
            db.migrate()
            return
        except Exception as exc:
            delay = backoff.next()
            if not db.connector.is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s; retrying in %.1fs", db.connector.describe_error(exc), delay)
            time.sleep(delay)
