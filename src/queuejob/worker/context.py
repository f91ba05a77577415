"""What a worker's services share: its identity, its settings, its database's health.

Each service (heartbeat, rescue, cleanup, periodic jobs, wake-ups) gets this narrow
context instead of the whole ``Worker``: what it may read is here, what it writes is
its own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.channels import WorkerChannels
from ..core.errors import ConfigurationError
from ..core.wakeups import Rank
from .connections import LoopConnection

if TYPE_CHECKING:
    from ..database import Database
    from ..store import JobStore


@dataclass(frozen=True)
class WorkerSettings:
    """The intervals of a worker (seconds)."""

    #: how often the worker proves, in the database, that it is alive
    heartbeat_interval: float = 5.0
    #: a worker silent this long is dead: its jobs are rescued
    dead_after: float = 30.0
    #: how often this worker looks for dead workers
    rescue_interval: float = 10.0
    #: how often an idle worker looks for due jobs when no notification comes (jobs
    #: whose eta came, a notification missed; all new jobs when nothing listens)
    poll_interval: float = 3.0
    #: what running jobs get to finish after SIGTERM
    grace_period: float = 30.0
    #: how often old done and cancelled jobs are removed
    cleanup_interval: float = 300.0

    def __post_init__(self) -> None:
        for label in ("heartbeat_interval", "dead_after", "rescue_interval", "poll_interval"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{label} must be a positive number of seconds")
        if self.dead_after <= self.heartbeat_interval:
            raise ConfigurationError("dead_after must be longer than heartbeat_interval")


class Health:
    """When this worker last failed to reach or lock its database: after a failure,
    every worker needs ``dead_after`` to beat again before another judges it. Written
    by the loop and the heartbeat thread (a float assignment is atomic)."""

    def __init__(self) -> None:
        self.healthy_since = time.monotonic()

    def database_failed(self) -> None:
        """A thread could not reach or lock the database just now."""
        self.healthy_since = time.monotonic()

    def healthy_for(self, now: float) -> float:
        return now - self.healthy_since


@dataclass(frozen=True)
class Look:
    """What the last heartbeat read: the worker's rank (which notifications wake it)
    and whether the services that look every second have anything to look at."""

    rank: Rank
    schedules: bool
    open_batches: bool


@dataclass
class WorkerContext:
    """A worker's identity, settings and database, as its services see them."""

    db: Database
    worker_id: str
    hostname: str
    pid: int
    #: the channel rules the worker declares for all workers (its ``--channels``)
    declared: WorkerChannels
    #: how many jobs the worker runs at once (its ``--concurrency``)
    concurrency: int
    settings: WorkerSettings
    health: Health = field(default_factory=Health)
    #: set once the worker stops taking jobs (services that add work stand down)
    stopping: threading.Event = field(default_factory=threading.Event)
    #: the one connection of the worker's own work (loop, heartbeat, services)
    connection: LoopConnection = field(init=False)
    #: what the last heartbeat read (None before the first)
    look: Look | None = None
    #: when the worker last beat (time.monotonic()), by the loop or the heartbeat thread
    last_beat: float = 0.0
    #: the supervisor it runs under (``worker --processes``), None alone
    supervisor_pid: int | None = None
    #: how it is woken: "own" LISTEN (or SQLite's watcher), "shared" (its supervisor's),
    #: "none" (polling)
    listener: str = "own"
    #: the most connections its jobs' sessions hold at once
    job_connections: int = 0
    #: where its pid means something (worker/liveness.py), None where it cannot be told
    process_space: str | None = None

    def __post_init__(self) -> None:
        self.connection = LoopConnection(self.db.connector)

    def register(self, conn: Any) -> None:
        """The worker's row (at start, and again if an operator removed it)."""
        self.store.register_worker(conn, self.worker_id, self.hostname, self.pid,
                                   self.channels, self.concurrency,
                                   supervisor_pid=self.supervisor_pid, listener=self.listener,
                                   job_connections=self.job_connections,
                                   process_space=self.process_space)

    @property
    def store(self) -> JobStore:
        return self.db.store

    @property
    def channels(self) -> str:
        return self.declared.to_string()
