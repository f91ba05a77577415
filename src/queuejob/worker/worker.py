"""The worker: claims due jobs within channel capacities and runs them.

One loop thread talks to the database: each cycle writes the outcomes of the
jobs that finished since the last one and claims jobs for the free slots, in
one transaction (one commit per cycle, however many jobs it covers). Job
threads only run jobs. A heartbeat thread keeps the worker alive in the
database; a watcher thread wakes the loop when jobs arrive.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import threading
import time
import uuid as uuid_module
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import channels as channel_rules
from ..core import registry
from ..core.channels import ROOT, ChannelTree
from ..core.errors import ConfigurationError, FailedJobError, JobTimeout, RetryableJobError
from ..core.outcome import Outcome, failure, outcome_of, released
from ..core.rows import is_int, job_row_problem
from ..core.text import describe
from ..storage import job_from_row
from . import cleanup, crashpoints, rescue, scheduler
from .asyncrunner import AsyncRunner
from .execution import run_claimed
from .executor import Executor
from .heartbeat import Heartbeat
from .shutdown import handle_signals
from .wakeup import Wakeup

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.worker")

DEFAULT_CONCURRENCY = 4
#: seconds between reads of the channel configuration by workers of a simple queue
RECHECK_INTERVAL = 0.5

#: an attempt: (job uuid, attempt number)
Key = tuple[str, int]


def import_job_modules(modules: Iterable[str]) -> None:
    """Import the modules whose @job functions a worker runs (named by its
    configuration, never by stored data)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import job module {module!r}: {exc}") from None


@dataclass
class Running:
    row: dict[str, Any]
    started: float
    is_async: bool = False


def key_of(item: Outcome | dict[str, Any]) -> Key:
    if isinstance(item, Outcome):
        return (item.uuid, item.attempt)
    return (item["uuid"], item["attempt"])


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


class Worker:
    """Runs the jobs of a database (the page's Worker and its Queue).

    ``channels``: the worker's own channel configuration (``"root:4,root.export:1"``);
    root's capacity is the number of job threads. ``modules``: modules to import;
    only job functions registered in them run (None: every registered function).
    Capacities stored in the database (``queuejob channels set``) bound all workers.
    """

    def __init__(self, db: Database, channels: str | None = None,
                 modules: Iterable[str] | None = None, *,
                 heartbeat_interval: float = 5.0, dead_after: float = 30.0,
                 rescue_interval: float = 10.0, poll_interval: float = 1.0,
                 grace_period: float = 30.0, cleanup_interval: float = 300.0,
                 name: str | None = None, hostname: str | None = None) -> None:
        self.db = db
        specs = channel_rules.parse_channels(channels or "")
        tree = ChannelTree(specs)
        root = tree.specs[ROOT]
        if root.capacity is None:
            tree = tree.with_specs([channel_rules.spec_with(root, capacity=DEFAULT_CONCURRENCY)])
        self.tree = tree
        self.capacity: int = tree.specs[ROOT].capacity or DEFAULT_CONCURRENCY
        self.modules: list[str] | None = None if modules is None else list(modules)
        if self.modules is not None:
            import_job_modules(self.modules)
        for value, label in ((heartbeat_interval, "heartbeat_interval"),
                             (dead_after, "dead_after"), (rescue_interval, "rescue_interval"),
                             (poll_interval, "poll_interval")):
            if not value > 0:
                raise ConfigurationError(f"{label} must be a positive number of seconds")
        if dead_after <= heartbeat_interval:
            raise ConfigurationError("dead_after must be longer than heartbeat_interval")
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = dead_after
        self.rescue_interval = rescue_interval
        self.poll_interval = poll_interval
        self.grace_period = grace_period
        self.cleanup_interval = cleanup_interval
        hostname = hostname or socket.gethostname()
        self.id = name or f"{hostname}:{os.getpid()}:{uuid_module.uuid4().hex[:8]}"
        self.hostname = hostname

        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._finished: list[tuple[Outcome, bool]] = []
        self._running: dict[Key, Running] = {}
        self._unwritten: list[Outcome] = []
        self._claim_wanted = True
        self._claim_locked = True
        self._claim_fast = False
        self._claim_short = True
        self._recheck_at = 0.0
        self._last_cycle = 0.0
        self._reconcile = False
        self._stopping = False
        self._hard_stop = False
        self._grace_deadline = float("inf")
        self._conn: Any = None
        self._local = threading.local()
        self._job_connections: list[tuple[threading.Thread, Any]] = []
        self._healthy_since = time.monotonic()
        self._started = False
        self._stopped = threading.Event()
        self._cleanup_cursor: Any = None
        #: attempts stopped for their timeout (their thread's late outcome is ignored)
        self._timed_out: set[Key] = set()
        self._async: AsyncRunner | None = None
        #: the last cycle failed on data, not on the database: outcomes go one by one
        self._careful = False
        #: the latest slot of each schedule this worker saw handled
        self._schedule_seen: dict[str, Any] = {}
        self._next_schedule = float("inf")
        #: turns of the loop (a worker with nothing to do sleeps: this stays small)
        self.loop_iterations = 0

    # -- public --------------------------------------------------------------------------
    def allows(self, func: Any) -> bool:
        """A registered job function this worker may run (it is in its modules)."""
        if self.modules is None:
            return True
        module = getattr(func.func, "__module__", "")
        return any(module == name or module.startswith(name + ".") for name in self.modules)

    def wake(self) -> None:
        """Something may be runnable now (a job was enqueued, a channel changed)."""
        self._claim_wanted = True
        self._wake.set()

    def stop(self, grace_period: float | None = None) -> None:
        """Stop taking jobs; running ones get ``grace_period`` seconds to finish, then
        go back to pending. A second call stops at once (running jobs go back)."""
        if self._stopping:
            self._hard_stop = True
        else:
            grace = self.grace_period if grace_period is None else grace_period
            self._grace_deadline = time.monotonic() + grace
            self._stopping = True
        self._wake.set()

    def run(self, burst: bool = False) -> None:
        """Run jobs until stopped (``stop()``, SIGTERM, Ctrl-C); with ``burst=True``,
        return as soon as nothing is runnable."""
        if self._started:
            raise RuntimeError("a Worker runs once; create a new one")
        self._started = True
        with handle_signals(self):
            try:
                self._setup()
            except BaseException:
                self._drop_connection()
                raise
            try:
                self._loop(burst)
            finally:
                self._teardown()

    def database_failed(self) -> None:
        """A thread of this worker could not reach or lock the database just now: its
        heartbeat may be late, and so may the other workers' be."""
        self._healthy_since = time.monotonic()

    def timed_out(self, row: dict[str, Any]) -> bool:
        """This attempt was stopped for its timeout."""
        return key_of(row) in self._timed_out

    def lost_ownership(self, outcome: Outcome) -> None:
        log.warning("job %s: lost ownership of attempt %d (rescued, requeued or cancelled "
                    "meanwhile); its outcome (%s) was not written",
                    outcome.uuid, outcome.attempt, outcome.state)

    # -- the loop ------------------------------------------------------------------------
    def _setup(self) -> None:
        backoff = Backoff()
        # a busy SQLite file is no reason to give up at start-up, a locked one is
        deadline = time.monotonic() + 3 * self.db.connector.lock_timeout
        while True:
            try:
                self._in_transaction(lambda conn: self.db.manager.register_worker(
                    conn, self.id, self.hostname, os.getpid(), self.tree.to_string()))
                break
            except Exception as exc:
                if not self.db.connector.is_transient(exc) or time.monotonic() > deadline \
                        or self._hard_stop:
                    raise
                log.debug("registering: %s", self.db.connector.describe_error(exc))
                self._drop_connection()
                time.sleep(backoff.next())
        log.info("worker %s started: channels %s, %d job threads, database %s",
                 self.id, self.tree.to_string(), self.capacity, self.db.dialect)
        self.db._add_local_worker(self)
        self._executor = Executor(self.capacity, self._run_job, name=self.id)
        self._heartbeat = Heartbeat(self)
        self._wakeup = Wakeup(self)
        self._next_rescue = time.monotonic()
        self._next_cleanup = time.monotonic() + min(self.cleanup_interval, 10.0)
        self._next_schedule = time.monotonic()

    def _loop(self, burst: bool) -> None:
        backoff = Backoff()
        next_poll = time.monotonic() + self.poll_interval
        while not self._hard_stop:
            self.loop_iterations += 1
            finished = self._collect_finished()
            finished = [item for item in finished if key_of(item[0]) not in self._timed_out]
            for outcome, _ in finished:
                self._running.pop(key_of(outcome), None)
            writes = self._unwritten + [outcome for outcome, written in finished
                                        if not written]
            now = time.monotonic()
            free = self.capacity - len(self._running)
            can_claim = not self._stopping and free > 0
            want = can_claim and (self._claim_wanted or bool(finished) or now >= next_poll)
            claimed_none = False
            if writes or want:
                if want:
                    self._claim_wanted = False
                try:
                    cycle_started = time.monotonic()
                    claimed = self._cycle(writes, free if want else 0)
                    self._last_cycle = time.monotonic() - cycle_started
                except Exception as exc:
                    self._unwritten = writes
                    self._claim_wanted = self._claim_wanted or want
                    if self._data_failed(exc):
                        continue  # again at once, one outcome at a time
                    self._database_failed(exc, backoff)
                    if self._stopping and time.monotonic() >= self._grace_deadline:
                        return  # the teardown tries once more, then rescue takes over
                    continue
                backoff.reset()
                if writes:
                    crashpoints.reached("outcome_after_commit")
                if claimed:
                    crashpoints.reached("claim_after_commit")
                self._unwritten = []
                if want:
                    next_poll = time.monotonic() + self.poll_interval
                    if len(claimed) == free:
                        self._claim_wanted = True  # there may be more
                    claimed_none = not claimed
                    for row in claimed:
                        self._dispatch(row)
                self._careful = False
            if self._stopping:
                if not self._running and not self._unwritten:
                    return
                if time.monotonic() >= self._grace_deadline:
                    log.warning("grace period over: giving %d unfinished job(s) back",
                                len(self._running))
                    return
            elif burst and claimed_none and not self._running and not self._unwritten:
                return
            self._periodic()
            self._stop_overdue_jobs()
            free = self.capacity - len(self._running)
            can_claim = not self._stopping and free > 0
            if self._finished or (self._claim_wanted and can_claim) or self._unwritten:
                continue
            # the poll only matters when a job could be claimed; with every slot busy
            # (or while stopping) the loop sleeps until a job ends or a timer is due
            deadline = min(next_poll if can_claim else float("inf"), self._next_rescue,
                           self._next_cleanup, self._grace_deadline, self._next_timeout(),
                           self._next_schedule)
            self._wake.wait(max(0.001, min(deadline - time.monotonic(), 3600.0)))
            self._wake.clear()

    def _dispatch(self, row: dict[str, Any]) -> None:
        """Hand a claimed job to a job thread, or to the event loop for async jobs. A
        row that cannot be run as it is stored (written by hand, damaged) ends failed
        with the reason, without a thread."""
        problem = job_row_problem(row)
        if problem is not None:
            log.error("job row %s cannot run: %s", row.get("id"), problem)
            self._unwritten.append(failure(
                row["uuid"], row["attempt"], row["retry"] if is_int(row["retry"]) else 0,
                f"this job cannot run: {problem}", row.get("id")))
            self._claim_wanted = True
            return
        key = key_of(row)
        func = registry.job_function(row["func_name"])
        is_async = bool(func is not None and func.is_async and self.allows(func))
        self._running[key] = Running(row, time.monotonic(), is_async)
        if is_async:
            if self._async is None:
                self._async = AsyncRunner(self, self._async_done)
            self._async.submit(key, row)
        else:
            self._executor.submit(row)

    def _async_done(self, row: dict[str, Any], result: Any) -> None:
        if isinstance(result, BaseException):
            log.error("job %s: unexpected error in the worker: %r", row["uuid"], result)
            result = (failure(row["uuid"], row["attempt"], row["retry"] + 1,
                              f"the worker failed to run this job: {describe(result)}",
                              row.get("id")), False)
        with self._lock:
            self._finished.append(result)
        self._wake.set()

    def _next_timeout(self) -> float:
        deadlines = [item.started + item.row["timeout"] for item in self._running.values()
                     if item.row.get("timeout")]
        return min(deadlines, default=float("inf"))

    def _stop_overdue_jobs(self) -> None:
        """Jobs over their timeout: the attempt ends as a retry (a failure once its
        retries are used up), a new thread takes the slot, and JobTimeout is raised
        in the old thread; what the old thread does after is fenced out."""
        now = time.monotonic()
        for key, item in list(self._running.items()):
            timeout = item.row.get("timeout")
            if not timeout or now - item.started < timeout:
                continue
            del self._running[key]
            self._timed_out.add(key)
            self._claim_wanted = True
            if item.is_async and self._async is not None:
                self._async.cancel(key)
            else:
                self._executor.abandon(lambda row, key=key: key_of(row) == key, JobTimeout)
            job = job_from_row(item.row, decode=False)
            job.retry_pattern_override = self.db.manager.retry_patterns.get(job.func_name)
            job.retry += 1  # the attempt counts, as perform() counted it
            message = f"timed out after {timeout:g} s"
            error: BaseException = RetryableJobError(message)
            if job.max_retries and job.retry >= job.max_retries:
                error = FailedJobError(f"Max. retries ({job.max_retries}) reached: {message}")
            log.warning("job %s: %s, stopping it", job.uuid, message)
            self._unwritten.append(outcome_of(job, item.row["attempt"], error))

    def _collect_finished(self) -> list[tuple[Outcome, bool]]:
        """Outcomes of the jobs that finished. When some finished and others still run,
        linger a fifth of a cycle's time for those too: a cycle costs round trips and a
        commit whatever the number of jobs it covers."""
        with self._lock:
            finished, self._finished = self._finished, []
        if not finished or self._stopping:
            return finished
        deadline = time.monotonic() + min(0.2 * self._last_cycle, 0.005)
        while len(finished) < len(self._running):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake.wait(remaining)
            self._wake.clear()
            with self._lock:
                finished += self._finished
                self._finished = []
        return finished

    def _cycle(self, writes: list[Outcome], free: int) -> list[dict[str, Any]]:
        """One transaction: write finished jobs' outcomes, then claim up to ``free``."""
        manager = self.db.manager

        def work(conn: Any) -> list[dict[str, Any]]:
            self._write_outcomes(conn, writes)
            if self._reconcile:
                # after the outcomes waiting to be written: their jobs are no longer
                # running here, yet they must not be given back
                self._give_back_forgotten(conn)
            if free <= 0:
                return []
            running = Counter(item.row["channel"] for item in self._running.values())
            # a simple queue reads the channel configuration a few times a second, not
            # at every claim
            recheck = (not self._claim_fast or self._claim_short
                       or time.monotonic() >= self._recheck_at)
            state = manager.claim(conn, self.id, self.tree, running, free,
                                  lock_first=self._claim_locked, recheck=recheck)
            self._claim_locked = state.locked
            self._claim_fast = state.fast
            # fewer jobs than asked: an empty queue, or a configuration that changed
            self._claim_short = len(state.rows) < free
            if recheck:
                self._recheck_at = time.monotonic() + RECHECK_INTERVAL
            if state.rows:
                crashpoints.reached("claim_before_commit")
            return state.rows

        return self._in_transaction(work)

    def _write_outcomes(self, conn: Any, writes: list[Outcome]) -> None:
        """Write outcomes: in one batch; after a batch failed on something other than
        the database (``_careful``), one by one, so that one job's outcome that cannot
        be written ends that job failed and never takes the others with it."""
        if not writes:
            return
        manager = self.db.manager
        record = manager.record_one_by_one if self._careful else manager.record
        for outcome in record(conn, writes):
            self.lost_ownership(outcome)

    def _data_failed(self, exc: Exception) -> bool:
        """A cycle failed on something other than the database being away or lost (a
        value of a job or of a stored row): True to try again at once, carefully (the
        first time); False to back off as for an outage. Never fatal."""
        connector = self.db.connector
        if connector.is_transient(exc) or connector.is_lost(exc):
            return False
        if not self._careful:
            self._careful = True
            log.warning("writing outcomes one by one after an error: %s",
                        describe(str(exc) or type(exc).__name__, 300)[1:-1])
            return True
        log.error("a claim or outcome write failed (the worker goes on): %s",
                  describe(str(exc) or type(exc).__name__, 300)[1:-1], exc_info=exc)
        return False

    def _give_back_forgotten(self, conn: Any) -> None:
        """After a failed transaction whose commit may have gone through (the answer
        was lost with the connection), jobs may be started by this worker in the
        database that it does not run: give them back to pending."""
        rows = self.db.manager.started_by(conn, self.id)
        forgotten = [released(row) for row in rows if key_of(row) not in self._running]
        if forgotten:
            log.warning("giving back %d job(s) claimed by a transaction whose answer was "
                        "lost", len(forgotten))
            self.db.manager.record(conn, forgotten)
        self._reconcile = False

    def _run_job(self, row: dict[str, Any]) -> None:
        try:
            outcome, written = run_claimed(self, row, self._job_connection)
        except BaseException as exc:
            log.exception("job %s: unexpected error in the worker", row["uuid"])
            # counted as a failed attempt: giving it back unchanged could loop forever
            outcome, written = failure(row["uuid"], row["attempt"], row["retry"] + 1,
                                       f"the worker failed to run this job: {describe(exc)}",
                                       row.get("id")), False
        if not written:
            crashpoints.reached("job_before_outcome")
        with self._lock:
            self._finished.append((outcome, written))
        self._wake.set()

    def _periodic(self) -> None:
        now = time.monotonic()
        if now >= self._next_rescue:
            self._next_rescue = now + self.rescue_interval
            # judge other workers only once this one has reached the database without a
            # failure for dead_after: after an outage or a long write lock, every worker
            # needs that time to beat again
            if now - self._healthy_since > self.dead_after:
                self._guarded(lambda conn: self._rescue(conn, now))
        if now >= self._next_schedule and not self._stopping:
            self._next_schedule = now + 1.0
            if self._guarded(lambda conn: scheduler.run_schedules(self, conn)):
                self._claim_wanted = True
        if now >= self._next_cleanup and not self._stopping:
            removed = self._guarded(lambda conn: cleanup.remove_old_jobs(self, conn)) or 0
            self._next_cleanup = now + (1.0 if removed >= cleanup.BATCH else self.cleanup_interval)

    def _rescue(self, conn: Any, asked: float) -> Any:
        if time.monotonic() - asked > self.heartbeat_interval or self._heartbeat.waiting():
            # the transaction, or this worker's own heartbeat, waited for the database
            # (a long write lock): so did the other workers' heartbeats, which are about
            # to be written
            self.database_failed()
            return None
        return rescue.rescue_jobs(self, conn)

    def _guarded(self, operation: Callable[[Any], Any]) -> Any:
        """A periodic service's transaction; its failure is logged, never fatal."""
        try:
            return self._in_transaction(operation)
        except Exception as exc:
            if self.db.connector.is_lost(exc):
                raise
            if not self.db.connector.is_transient(exc):
                log.error("%s failed (the worker goes on): %s",
                          getattr(operation, "__name__", "a periodic task"),
                          describe(str(exc) or type(exc).__name__, 300)[1:-1], exc_info=exc)
                return None
            log.warning("%s", self.db.connector.describe_error(exc))
            self._drop_connection()
            self._reconcile = True
            self.database_failed()
            return None

    # -- connections ---------------------------------------------------------------------
    def _in_transaction(self, operation: Callable[[Any], Any]) -> Any:
        connector = self.db.connector
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

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # it is broken already
                self.db.connector.close_connection(self._conn)
            self._conn = None

    def _database_failed(self, exc: Exception, backoff: Backoff) -> None:
        """Back off after a failed cycle (the database away or busy, or a cycle that
        failed twice on data); the database lost for good is fatal."""
        connector = self.db.connector
        if connector.is_lost(exc):
            raise exc
        delay = backoff.next()
        log.warning("%s; retrying in %.1fs", connector.describe_error(exc), delay)
        self._drop_connection()
        self._reconcile = True
        self.database_failed()
        deadline = time.monotonic() + delay
        while not self._hard_stop and time.monotonic() < deadline:
            self._wake.wait(deadline - time.monotonic())
            self._wake.clear()
            if self._stopping and time.monotonic() >= self._grace_deadline:
                break

    def _job_connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.db.connector.is_closed(conn):
            self.connection_failed(conn)
            conn = None
        if conn is None:
            conn = self.db.connector.connect(worker=False)
            self._local.conn = conn
            with self._lock:
                self._job_connections.append((threading.current_thread(), conn))
        return conn

    def connection_failed(self, conn: Any) -> None:
        """A job thread's connection broke: forget it (a new one is opened next time)."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
            with self._lock:
                self._job_connections = [(thread, other) for thread, other
                                         in self._job_connections if other is not conn]
            with contextlib.suppress(Exception):  # it is broken already
                self.db.connector.close_connection(conn)

    # -- stopping ------------------------------------------------------------------------
    def _teardown(self) -> None:
        self._stopping = True
        self.db._remove_local_worker(self)
        for thread in (getattr(self, "_wakeup", None), getattr(self, "_heartbeat", None)):
            if thread is not None:
                thread.stop()
        executor = getattr(self, "_executor", None)
        busy_threads: list[threading.Thread] = []
        if executor is not None:
            busy_threads = executor.shutdown(timeout=0.0 if self._running else 1.0)
        if self._async is not None:
            self._async.shutdown()
        with self._lock:
            finished, self._finished = self._finished, []
        for outcome, _ in finished:
            self._running.pop(key_of(outcome), None)
        writes = self._unwritten + [outcome for outcome, written in finished if not written]
        writes += [released(item.row) for item in self._running.values()]
        # out of time: one try (bounded by the lock timeout), then the rescue takes over
        tries = 1 if self._hard_stop or time.monotonic() >= self._grace_deadline else 3
        attempt = 0
        while attempt < tries:
            attempt += 1
            try:
                def final(conn: Any) -> None:
                    self._write_outcomes(conn, writes)
                    self.db.manager.stop_worker(conn, self.id)
                self._in_transaction(final)
                if self._running:
                    log.info("%d unfinished job(s) given back to pending", len(self._running))
                break
            except Exception as exc:
                connector = self.db.connector
                if not connector.is_transient(exc) and not connector.is_lost(exc) \
                        and not self._careful:
                    self._careful = True  # again, one outcome at a time (not counted)
                    attempt -= 1
                    continue
                if attempt >= tries or not connector.is_transient(exc):
                    log.error("could not record the last outcomes (%s): the jobs will be "
                              "rescued", connector.describe_error(exc))
                    break
                self._drop_connection()
                time.sleep(0.2)
        self._running.clear()
        for thread in (getattr(self, "_wakeup", None), getattr(self, "_heartbeat", None)):
            if thread is not None:
                # daemons: one stuck on a locked database closes its connection itself
                thread.join(1.0)
        self._drop_connection()
        with self._lock:
            job_connections, self._job_connections = self._job_connections, []
        busy = set(busy_threads)
        for thread, conn in job_connections:
            if thread in busy:
                continue  # still running a job given back: its connection goes with it
            with contextlib.suppress(Exception):  # closing anyway
                self.db.connector.close_connection(conn)
        log.info("worker %s stopped", self.id)
        self._stopped.set()
