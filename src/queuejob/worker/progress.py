"""Progress reports and logs of running jobs, on their way to the database.

A job's ``session.progress(...)`` lands here (any thread); the loop writes the latest
report of each attempt in its next transaction, with the outcomes and the claim, at
most once per ``core.progress.INTERVAL`` per attempt; the last report of an attempt
that ended is written with the next batch whatever the interval.

So do the lines a running attempt logged (``live_logs``): written as they grow, at most
once an interval per attempt, so that they can be watched while it runs; the whole log
of an attempt that ended goes with its outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from ..core.joblog import AttemptLog
from ..core.progress import INTERVAL, Progress
from .outcomes import Key


class ProgressReports:
    def __init__(self, wake: Callable[[], None], interval: float = INTERVAL) -> None:
        self._wake = wake
        self.interval = interval
        self._lock = threading.Lock()
        #: the latest report not yet written, per attempt
        self._latest: dict[Key, Progress] = {}
        #: when each attempt's progress was last written (monotonic)
        self._written_at: dict[Key, float] = {}
        #: the logs of running attempts that logged, and how much of each was written
        #: (lines and dropped lines) and when
        self._logs: dict[Key, AttemptLog] = {}
        self._log_written: dict[Key, tuple[int, float]] = {}

    def report(self, key: Key, progress: Progress) -> None:
        """A running attempt reported ``progress`` (any thread)."""
        with self._lock:
            self._latest[key] = progress
            first = key not in self._written_at
        if first:  # the first report of an attempt is written at once
            self._wake()

    def log_started(self, key: Key, log: AttemptLog) -> None:
        """A running attempt logged its first line (any thread)."""
        with self._lock:
            self._logs[key] = log
        self._wake()

    def live_logs(self, ended: Iterable[Key] = ()) -> list[tuple[Key, AttemptLog]]:
        """Copies of the running attempts' logs that grew since they were last written
        an interval ago or more; the ``ended`` attempts' are forgotten (their whole log
        goes with their outcome)."""
        if not self._logs:
            return []
        now = time.monotonic()
        out = []
        with self._lock:
            for key in ended:
                self._logs.pop(key, None)
                self._log_written.pop(key, None)
            for key, log in self._logs.items():
                size = len(log.lines) + log.dropped
                written, at = self._log_written.get(key, (0, 0.0))
                if size != written and now >= at + self.interval:
                    out.append((key, AttemptLog(list(log.lines), log.dropped, log.chars)))
                    self._log_written[key] = (size, now)
        return out

    def due(self, ended: Iterable[Key] = ()) -> list[tuple[Key, Progress]]:
        """The reports to write now: those whose attempt was last written an interval
        ago or more, and those of the ``ended`` attempts (then forgotten)."""
        if not self._latest and not self._written_at:
            # no attempt reported anything (a report made before its attempt ended is
            # seen here: the loop takes the ended attempts after their threads report)
            return []
        now = time.monotonic()
        out = []
        with self._lock:
            for key in ended:
                report = self._latest.pop(key, None)
                self._written_at.pop(key, None)
                if report is not None:
                    out.append((key, report))
            for key in list(self._latest):
                if now >= self._written_at.get(key, 0.0) + self.interval:
                    out.append((key, self._latest.pop(key)))
                    self._written_at[key] = now
        return out

    def put_back(self, reports: Iterable[tuple[Key, Progress]]) -> None:
        """Reports a failed transaction did not write: written with the next one,
        unless a newer report came meanwhile."""
        with self._lock:
            for key, report in reports:
                self._latest.setdefault(key, report)

    @property
    def next_at(self) -> float:
        """When the loop has a report or log lines to write (monotonic; inf when none
        waits)."""
        with self._lock:
            reports = min((self._written_at.get(key, 0.0) + self.interval
                           for key in self._latest), default=float("inf"))
            logs = min((at + self.interval for key, log in self._logs.items()
                        for written, at in [self._log_written.get(key, (0, 0.0))]
                        if len(log.lines) + log.dropped != written), default=float("inf"))
            return min(reports, logs)
