"""A worker's connections: the loop's own (claims, outcomes, its periodic services),
and one per job thread for the jobs that use their session."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..backends.base import Connector


class LoopConnection:
    """The connection of the worker loop's thread: short transactions, dropped after a
    failure (a new one is opened by the next transaction)."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self._conn: Any = None

    def transaction(self, operation: Callable[[Any], Any]) -> Any:
        """``operation(conn)`` in one transaction; its return value."""
        connector = self.connector
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
        if self._conn is not None:
            with contextlib.suppress(Exception):  # it is broken already
                self.connector.close_connection(self._conn)
            self._conn = None


class JobConnections:
    """A connection per job thread, opened when its job first uses its session and kept
    for the thread's next jobs. The list is written by job threads under a lock."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[threading.Thread, Any]] = []

    def get(self) -> Any:
        """This thread's connection (opened on first use, replaced when broken)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.connector.is_closed(conn):
            self.failed(conn)
            conn = None
        if conn is None:
            conn = self.connector.connect(worker=False)
            self._local.conn = conn
            with self._lock:
                self._opened.append((threading.current_thread(), conn))
        return conn

    def failed(self, conn: Any) -> None:
        """This thread's connection broke: forget it (a new one is opened next time)."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
            with self._lock:
                self._opened = [(thread, other) for thread, other in self._opened
                                if other is not conn]
            with contextlib.suppress(Exception):  # it is broken already
                self.connector.close_connection(conn)

    def close_all(self, busy: Iterable[threading.Thread] = ()) -> None:
        """Close every connection but those of threads still running a job given back
        (their connection goes with them)."""
        with self._lock:
            opened, self._opened = self._opened, []
        busy_threads = set(busy)
        for thread, conn in opened:
            if thread in busy_threads:
                continue
            with contextlib.suppress(Exception):  # closing anyway
                self.connector.close_connection(conn)
