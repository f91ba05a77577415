"""The worker's job slots: the jobs it runs now, handed to job threads or to the event
loop of ``async def`` jobs (or, short ones, run on the loop's own thread: ``inline``),
their outcomes collected for the loop, their timeouts enforced.

The loop's thread calls every method but ``_ended``, which job threads and the event
loop's thread call when a job ends: it appends to ``_finished`` under ``_lock`` and
wakes the loop.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import registry
from ..core.errors import JobTimeout
from ..core.joblog import AttemptLog
from ..core.outcome import Outcome, failure, released
from ..core.progress import Progress
from ..core.retry import Delay
from ..core.rows import as_name, is_int, job_row_problem
from ..core.text import describe
from . import crashpoints
from .async_jobs import AsyncRunner
from .connections import JobConnections
from .inline import ShortJobs
from .outcomes import Key, key_of, lost_ownership
from .progress import ProgressReports
from .running import run_claimed
from .threads import JobThreads
from .timeouts import Running, next_deadline, overdue, timeout_outcome

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.worker")


def _is_attempt(key: Key, row: dict[str, Any]) -> bool:
    return key_of(row) == key


class Slots:
    """What runs now, up to ``capacity`` jobs (the ``running.Host`` of their runs)."""

    def __init__(self, db: Database, capacity: int, name: str,
                 allows: Callable[[Any], bool],
                 retry_patterns: Callable[[], dict[str, dict[int, Delay]]],
                 wake: Callable[[], None], job_connections: int | None = None) -> None:
        self.db = db
        self.capacity = capacity
        self.name = name
        self.allows = allows
        self._retry_patterns = retry_patterns
        self._wake = wake
        #: progress reports of the running jobs, until the loop writes them
        self.progress = ProgressReports(wake)
        self._ended_event = threading.Event()
        self._lock = threading.Lock()
        self._finished: list[tuple[Outcome, bool]] = []
        self._running: dict[Key, Running] = {}
        #: attempts stopped for their timeout (their thread's late outcome is ignored)
        self._timed_out: set[Key] = set()
        self._threads = JobThreads(capacity, self._run, name=name)
        #: which functions' jobs run on the loop's thread, and the claimed rows waiting
        #: for it to run them (``run_inline``)
        self._short = ShortJobs()
        self._inline: list[dict[str, Any]] = []
        self._async: AsyncRunner | None = None
        self._connections = JobConnections(
            db.connector, capacity if job_connections is None else job_connections)

    # -- what the loop asks --------------------------------------------------------------
    @property
    def free(self) -> int:
        return self.capacity - len(self._running)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    @property
    def has_finished(self) -> bool:
        return bool(self._finished)

    def running_keys(self) -> list[Key]:
        return list(self._running)

    def running_channels(self) -> Counter[str]:
        """This worker's running jobs per stored channel (what its capacities count)."""
        return Counter(item.row["channel"] for item in self._running.values())

    def next_deadline(self) -> float:
        return next_deadline(self._running)

    def start(self, row: dict[str, Any]) -> Outcome | None:
        """Hand a claimed job to a job thread, or to the event loop for async jobs. A
        row that cannot be run as it is stored (written by hand, damaged) is not
        started: its failed outcome, with the reason, is returned."""
        problem = job_row_problem(row)
        if problem is not None:
            log.error("job row %s cannot run: %s", row.get("id"), problem)
            return failure(row["uuid"], row["attempt"],
                           row["retry"] if is_int(row["retry"]) else 0,
                           f"this job cannot run: {problem}", row.get("id"),
                           as_name(row.get("func_name")))
        key = key_of(row)
        func = registry.job_function(row["func_name"])
        is_async = bool(func is not None and func.is_async and self.allows(func))
        self._running[key] = Running(row, time.monotonic(), is_async)
        if not is_async and not row.get("timeout") and self._short.inline(row["func_name"]):
            self._inline.append(row)
        elif is_async:
            if self._async is None:
                self._async = AsyncRunner(self, self.name, self._async_done)
                self._async.start()
            self._async.submit(key, row)
        else:
            self._threads.submit(row)
        return None

    def run_inline(self) -> None:
        """Run, on this (the loop's) thread, the claimed jobs that ``start`` kept for it."""
        rows, self._inline = self._inline, []
        for row in rows:
            self._run(row, inline=True)

    def take_finished(self, linger: float) -> list[tuple[Outcome, bool]]:
        """Outcomes of the jobs that finished (their slots freed). When some finished
        and others still run, wait up to ``linger`` seconds for those too: a cycle costs
        round trips and a commit whatever the number of jobs it covers."""
        with self._lock:
            finished, self._finished = self._finished, []
        if finished and linger > 0:
            deadline = time.monotonic() + linger
            while len(finished) < len(self._running):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ended_event.wait(remaining)
                self._ended_event.clear()
                with self._lock:
                    finished += self._finished
                    self._finished = []
        finished = [item for item in finished if key_of(item[0]) not in self._timed_out]
        for outcome, _ in finished:
            self._running.pop(key_of(outcome), None)
        return finished

    def stop_overdue(self) -> list[Outcome]:
        """Jobs over their timeout: each slot is given to a new thread at once and
        ``JobTimeout`` raised in the old one; the attempts' outcomes (a retry, or a
        failure once retries are used up)."""
        outcomes = []
        for key in overdue(self._running, time.monotonic()):
            item = self._running.pop(key)
            self._timed_out.add(key)
            if item.is_async and self._async is not None:
                self._async.cancel(key)
            else:
                self._threads.abandon(functools.partial(_is_attempt, key), JobTimeout)
            outcomes.append(timeout_outcome(item, self.retry_pattern(item.row["func_name"])))
        return outcomes

    def shutdown(self) -> tuple[list[Outcome], list[threading.Thread]]:
        """Stop the threads (they finish their job if it ends within a second, when
        nothing runs). The outcomes not taken yet, the attempts still running given
        back, and the threads still busy."""
        busy = self._threads.shutdown(timeout=0.0 if self._running else 1.0)
        if self._async is not None:
            self._async.shutdown()
        writes = [outcome for outcome, written in self.take_finished(0.0) if not written]
        writes += [released(item.row) for item in self._running.values()]
        self._running.clear()
        return writes, busy

    def close_idle_connections(self) -> None:
        """Close jobs' connections that nothing borrowed for a while."""
        self._connections.close_if_idle()

    def close_connections(self, busy: list[threading.Thread]) -> None:
        self._connections.close_all(busy=busy)

    # -- what running a job needs of its worker (running.Host) --------------------------
    def retry_pattern(self, func_name: str) -> dict[int, Delay] | None:
        """The retry pattern people stored for a job function (None: the decorator's)."""
        return self._retry_patterns().get(func_name)

    def timed_out(self, row: dict[str, Any]) -> bool:
        """This attempt was stopped for its timeout."""
        return key_of(row) in self._timed_out

    def lost_ownership(self, outcome: Outcome) -> None:
        lost_ownership(outcome)

    def connection_failed(self, conn: Any) -> None:
        """A job thread's connection broke: forget it (a new one is opened next time)."""
        self._connections.failed(conn)

    def report_progress(self, key: Key, progress: Progress) -> None:
        """A running attempt reported its progress (its thread, or the event loop's)."""
        if key in self._running:
            self.progress.report(key, progress)

    def log_started(self, key: Key, log: AttemptLog) -> None:
        """A running attempt logged its first line: written while it runs."""
        if key in self._running:
            self.progress.log_started(key, log)

    # -- in the threads that run jobs ---------------------------------------------------
    def _run(self, row: dict[str, Any], inline: bool = False) -> None:
        """In a job thread (or the loop's, ``inline``): run one claimed job and hand its
        outcome to the loop."""
        result: tuple[Outcome, bool] | BaseException
        started = time.monotonic()
        try:
            result = run_claimed(self, row, self._connections.get)
        except BaseException as exc:
            log.exception("job %s: unexpected error in the worker", row["uuid"])
            result = exc
        finally:
            self._connections.give_back()
        self._ended(row, result, time.monotonic() - started, inline)

    def _async_done(self, row: dict[str, Any], result: Any) -> None:
        if isinstance(result, BaseException):
            log.error("job %s: unexpected error in the worker: %r", row["uuid"], result)
        self._ended(row, result)

    def _ended(self, row: dict[str, Any], ended: tuple[Outcome, bool] | BaseException,
               took: float | None = None, inline: bool = False) -> None:
        """A job ended (``took`` seconds to run, on the loop's thread when ``inline``;
        None: an ``async def`` job, never run inline)."""
        if isinstance(ended, BaseException):
            # counted as a failed attempt: giving it back unchanged could loop forever
            result = (failure(row["uuid"], row["attempt"], row["retry"] + 1,
                              f"the worker failed to run this job: {describe(ended)}",
                              row.get("id")), False)
        else:
            result = ended
        if result[0].func_name is None and isinstance(row.get("func_name"), str):
            result[0].func_name = row["func_name"]  # what its hooks are looked up by
        if not result[1]:
            crashpoints.reached("job_before_outcome")
        with self._lock:
            if took is not None:
                self._short.ended(row["func_name"], took, inline)
            self._finished.append(result)
        self._ended_event.set()
        self._wake()
