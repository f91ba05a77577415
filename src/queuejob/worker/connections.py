"""A worker's connections: one for its own work (the loop's claims and outcomes, its
services, the heartbeat), and a bounded pool the sessions of jobs borrow from.

A worker process therefore holds ``1 + listener + up to K`` connections (K: its
``job_connections``, by default its job threads), however many jobs run."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..backends.base import Connector


class LoopConnection:
    """The connection of the worker's own work: short transactions, one at a time
    (the loop, the heartbeat thread and the wake-ups take turns), dropped after a
    failure (a new one is opened by the next transaction)."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self._conn: Any = None
        self._lock = threading.RLock()

    def transaction(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(conn)`` in one transaction; its return value."""
        connector = self.connector
        with self._lock:
            if self._conn is None:
                self._conn = connector.connect(worker=True)
            try:
                connector.begin(self._conn)
                result = operation(self._conn)
                connector.commit(self._conn)
                return result
            except BaseException:
                connector.rollback_if_open(self._conn)
                raise

    def drop(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # it is broken already
                    self.connector.close_connection(self._conn)
                self._conn = None


#: seconds without a borrowed connection after which the pool of jobs' connections is
#: closed (a worker that ran jobs using their session holds none once idle)
JOB_POOL_IDLE = 2.0


class JobConnections:
    """The connections of jobs' sessions: a job borrows one from a pool of at most
    ``size`` when it first uses its session, and gives it back when it ends; the pool's
    connections are closed once none was borrowed for ``JOB_POOL_IDLE`` seconds."""

    def __init__(self, connector: Connector, size: int) -> None:
        self.connector = connector
        self.size = size
        self._pool = connector.job_pool(size)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._borrowed = 0
        #: when the last connection came back (None: none is held by the pool)
        self._returned_at: float | None = None

    def get(self) -> Any:
        """The connection of this thread's job (borrowed on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._lock:
                self._borrowed += 1
            try:
                conn = self._pool.acquire()
            except BaseException:
                self._returned(1)
                raise
            self._local.conn = conn
        return conn

    def _returned(self, count: int) -> None:
        with self._lock:
            self._borrowed -= count
            self._returned_at = time.monotonic()

    def give_back(self) -> None:
        """This thread's job ended: its connection goes back to the pool (rolled back
        if the job left a transaction open)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            self._pool.release(conn, discard=self.connector.is_closed(conn))
            self._returned(1)

    def failed(self, conn: Any) -> None:
        """This thread's connection broke: it is closed instead of given back."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
            self._pool.release(conn, discard=True)
            self._returned(1)

    def close_if_idle(self) -> None:
        """The loop, from time to time: close the pool's connections when no job held
        one for ``JOB_POOL_IDLE`` seconds (opened again by the next job that needs one)."""
        with self._lock:
            idle = self._borrowed == 0 and self._returned_at is not None \
                and time.monotonic() - self._returned_at >= JOB_POOL_IDLE
            if idle:
                self._returned_at = None
        if idle:
            self._pool.close_idle()

    def close_all(self, busy: Iterable[threading.Thread] = ()) -> None:
        """Close the pool (connections of jobs still running go with them)."""
        self._pool.close()
