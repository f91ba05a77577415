"""The worker: claims due jobs within channel capacities and runs them.

One loop thread talks to the database: each cycle writes the outcomes of the jobs that
finished since the last one and claims jobs for the free slots, in one transaction (one
commit per cycle, however many jobs it covers). Job threads only run jobs. The services
(heartbeat, wake-ups, rescue, cleanup, periodic jobs) each live in a module of their
own and see the worker through a narrow ``WorkerContext``.

Who writes what (each state has one writer, or says how it is shared):

============================  =====================================  ================
state                         written by                             shared how
============================  =====================================  ================
``_running``, ``_unwritten``  the loop                               loop only
``_timed_out``                the loop (read by job threads)         set add/lookup
claim caches (``Claimer``)    the loop                               loop only
service timers, cursors       the loop                               loop only
``_finished``                 job threads, the async-jobs thread     ``_lock``
job threads' connections      job threads                            their own lock
``_wake``, ``_claim_wanted``  any thread (wake-ups, job ends)        Event / bool
``_stopping``, grace          ``stop()``: signal handler, callers    bool / float
heartbeat connection, beat    the heartbeat thread                   its own
``health.healthy_since``      the loop and the heartbeat thread      float
============================  =====================================  ================

Threads are started by ``run()``, never by a constructor.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid as uuid_module
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..core import channels as channel_rules
from ..core import registry
from ..core.channels import ROOT, ChannelTree
from ..core.errors import JobTimeout
from ..core.outcome import Outcome, failure, released
from ..core.retry import Delay
from ..core.rows import is_int, job_row_problem
from ..core.text import describe
from . import crashpoints
from .async_jobs import AsyncRunner
from .claim import Claimer
from .cleanup import Cleaner
from .connections import JobConnections, LoopConnection
from .context import WorkerContext, WorkerSettings
from .heartbeat import Heartbeat
from .outcomes import Key, OutcomeWriter, key_of, lost_ownership
from .periodic import ScheduleRunner
from .rescue import Rescuer
from .running import run_claimed
from .shutdown import handle_signals
from .signals import Signals
from .startup import Backoff, import_job_modules
from .threads import JobThreads
from .timeouts import Running, next_deadline, overdue, timeout_outcome
from .wakeup import Wakeup

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.worker")

DEFAULT_CONCURRENCY = 4


def _is_attempt(key: Key, row: dict[str, Any]) -> bool:
    return key_of(row) == key


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
        tree = ChannelTree(channel_rules.parse_channels(channels or ""))
        if tree.specs[ROOT].capacity is None:
            tree = tree.with_specs([channel_rules.spec_with(tree.specs[ROOT],
                                                            capacity=DEFAULT_CONCURRENCY)])
        self.tree = tree
        self.capacity: int = tree.specs[ROOT].capacity or DEFAULT_CONCURRENCY
        self.modules: list[str] | None = None if modules is None else list(modules)
        if self.modules is not None:
            import_job_modules(self.modules)
        self.settings = WorkerSettings(heartbeat_interval, dead_after, rescue_interval,
                                       poll_interval, grace_period, cleanup_interval)
        self.hostname = hostname or socket.gethostname()
        self.id = name or f"{self.hostname}:{os.getpid()}:{uuid_module.uuid4().hex[:8]}"
        self.context = WorkerContext(db, self.id, self.hostname, os.getpid(), tree,
                                     self.settings)
        #: what the worker did so far (claimed, finished, rescued): wait on it
        self.signals = Signals()
        self.claimer = Claimer(db.store, self.id, tree)
        self.outcomes = OutcomeWriter(db.store, db.connector, self.id)
        self.heartbeat = Heartbeat(self.context)
        self.services = (Rescuer(self.context, self.heartbeat),
                         ScheduleRunner(self.context, self.allows), Cleaner(self.context))
        self._connection = LoopConnection(db.connector)
        self._job_connections = JobConnections(db.connector)
        self._threads = JobThreads(self.capacity, self._run_job, name=self.id)
        self._wakeup = Wakeup(self.context, self.wake)
        self._async: AsyncRunner | None = None

        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._finished: list[tuple[Outcome, bool]] = []
        self._running: dict[Key, Running] = {}
        self._unwritten: list[Outcome] = []
        #: attempts stopped for their timeout (their thread's late outcome is ignored)
        self._timed_out: set[Key] = set()
        self._claim_wanted = True
        self._last_cycle = 0.0
        self._next_poll = 0.0
        self._reconcile = False
        self._stopping = False
        self._hard_stop = False
        self._grace_deadline = float("inf")
        self._started = False
        #: turns of the loop (a worker with nothing to do sleeps: this stays small)
        self.loop_iterations = 0
        #: set once the worker is registered and its threads run
        self.ready = threading.Event()

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
            grace = self.settings.grace_period if grace_period is None else grace_period
            self._grace_deadline = time.monotonic() + grace
            self._stopping = True
            self.context.stopping.set()
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
                self._connection.drop()
                raise
            try:
                self._loop(burst)
            finally:
                self._teardown()

    @property
    def grace_period(self) -> float:
        return self.settings.grace_period

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- what running a job needs of its worker (running.Host) --------------------------
    def retry_pattern(self, func_name: str) -> dict[int, Delay] | None:
        """The retry pattern people stored for a job function (None: the decorator's)."""
        return self.claimer.retry_patterns.get(func_name)

    def timed_out(self, row: dict[str, Any]) -> bool:
        """This attempt was stopped for its timeout."""
        return key_of(row) in self._timed_out

    def lost_ownership(self, outcome: Outcome) -> None:
        lost_ownership(outcome)

    def connection_failed(self, conn: Any) -> None:
        """A job thread's connection broke: forget it (a new one is opened next time)."""
        self._job_connections.failed(conn)

    # -- the loop ------------------------------------------------------------------------
    def _setup(self) -> None:
        backoff = Backoff()
        # a busy SQLite file is no reason to give up at start-up, a locked one is
        deadline = time.monotonic() + 3 * self.db.connector.lock_timeout
        while True:
            try:
                self._connection.transaction(lambda conn: self.db.store.register_worker(
                    conn, self.id, self.hostname, os.getpid(), self.tree.to_string()))
                break
            except Exception as exc:
                if not self.db.connector.is_transient(exc) or time.monotonic() > deadline \
                        or self._hard_stop:
                    raise
                log.debug("registering: %s", self.db.connector.describe_error(exc))
                self._connection.drop()
                time.sleep(backoff.next())
        log.info("worker %s started: channels %s, %d job threads, database %s",
                 self.id, self.tree.to_string(), self.capacity, self.db.dialect)
        self.db.add_local_worker(self)
        self.heartbeat.start()
        self._wakeup.start()
        self.ready.set()

    def _loop(self, burst: bool) -> None:
        backoff = Backoff()
        self._next_poll = time.monotonic() + self.settings.poll_interval
        while not self._hard_stop:
            self.loop_iterations += 1
            finished, writes = self._take_finished()
            free = self.capacity - len(self._running)
            want = not self._stopping and free > 0 and (
                self._claim_wanted or finished or time.monotonic() >= self._next_poll)
            claimed_none = False
            if writes or want:
                self._claim_wanted = self._claim_wanted and not want
                try:
                    claimed = self._cycle(writes, free if want else 0)
                except Exception as exc:
                    self._unwritten = writes
                    self._claim_wanted = self._claim_wanted or want
                    if self.outcomes.data_failed(exc):
                        continue  # again at once, one outcome at a time
                    self._database_failed(exc, backoff)
                    if self._stopping and time.monotonic() >= self._grace_deadline:
                        return  # the teardown tries once more, then rescue takes over
                    continue
                backoff.reset()
                self._unwritten = []
                self.signals.emit("finished", len(writes))
                if want:
                    claimed_none = not claimed
                    self._start(claimed, free)
            if self._should_leave(burst, claimed_none):
                return
            self._periodic()
            self._stop_overdue_jobs()
            self._sleep()

    def _take_finished(self) -> tuple[bool, list[Outcome]]:
        """The attempts that ended since the last turn (their slots freed), and the
        outcomes to write (with those a last cycle could not write)."""
        finished = [item for item in self._collect_finished()
                    if key_of(item[0]) not in self._timed_out]
        for outcome, _ in finished:
            self._running.pop(key_of(outcome), None)
        # outcomes a job wrote itself, with its own writes
        self.signals.emit("finished", sum(1 for _, written in finished if written))
        return bool(finished), self._unwritten + [outcome for outcome, written in finished
                                                  if not written]

    def _start(self, claimed: list[dict[str, Any]], free: int) -> None:
        self._next_poll = time.monotonic() + self.settings.poll_interval
        self._claim_wanted = self._claim_wanted or len(claimed) == free  # there may be more
        for row in claimed:
            self._dispatch(row)
        self.signals.emit("claimed", len(claimed))

    def _should_leave(self, burst: bool, claimed_none: bool) -> bool:
        """Stopping with nothing left (or the grace period over), or a burst run that
        found nothing to do."""
        if self._stopping:
            if not self._running and not self._unwritten:
                return True
            if time.monotonic() >= self._grace_deadline:
                log.warning("grace period over: giving %d unfinished job(s) back",
                            len(self._running))
                return True
            return False
        return burst and claimed_none and not self._running and not self._unwritten

    def _sleep(self) -> None:
        """Until a job ends, a wake-up comes or a timer is due; not at all when there is
        work now. The poll only matters when a job could be claimed: with every slot busy
        (or while stopping) the loop sleeps until a job ends or a timer is due."""
        can_claim = not self._stopping and len(self._running) < self.capacity
        if self._finished or (self._claim_wanted and can_claim) or self._unwritten:
            return
        deadline = min(self._next_poll if can_claim else float("inf"), self._grace_deadline,
                       next_deadline(self._running),
                       *(service.next_at for service in self.services))
        self._wake.wait(max(0.001, min(deadline - time.monotonic(), 3600.0)))
        self._wake.clear()

    def _cycle(self, writes: list[Outcome], free: int) -> list[dict[str, Any]]:
        """One transaction: write finished jobs' outcomes, then claim up to ``free``."""
        def work(conn: Any) -> list[dict[str, Any]]:
            self.outcomes.write(conn, writes)
            if self._reconcile:
                # after the outcomes waiting to be written: their jobs are no longer
                # running here, yet they must not be given back
                self.outcomes.give_back_forgotten(conn, self._running)
                self._reconcile = False
            if free <= 0:
                return []
            running = Counter(item.row["channel"] for item in self._running.values())
            rows = self.claimer.claim(conn, running, free)
            if rows:
                crashpoints.reached("claim_before_commit")
            return rows

        started = time.monotonic()
        claimed: list[dict[str, Any]] = self._connection.transaction(work)
        self._last_cycle = time.monotonic() - started
        self.outcomes.careful = False
        if writes:
            crashpoints.reached("outcome_after_commit")
        if claimed:
            crashpoints.reached("claim_after_commit")
        return claimed

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
                self._async = AsyncRunner(self, self.id, self._async_done)
                self._async.start()
            self._async.submit(key, row)
        else:
            self._threads.submit(row)

    def _run_job(self, row: dict[str, Any]) -> None:
        """In a job thread: run one claimed job and hand its outcome to the loop."""
        result: tuple[Outcome, bool] | BaseException
        try:
            result = run_claimed(self, row, self._job_connections.get)
        except BaseException as exc:
            log.exception("job %s: unexpected error in the worker", row["uuid"])
            result = exc
        self._job_ended(row, result)

    def _async_done(self, row: dict[str, Any], result: Any) -> None:
        if isinstance(result, BaseException):
            log.error("job %s: unexpected error in the worker: %r", row["uuid"], result)
        self._job_ended(row, result)

    def _job_ended(self, row: dict[str, Any], ended: tuple[Outcome, bool] | BaseException
                   ) -> None:
        if isinstance(ended, BaseException):
            # counted as a failed attempt: giving it back unchanged could loop forever
            result = (failure(row["uuid"], row["attempt"], row["retry"] + 1,
                              f"the worker failed to run this job: {describe(ended)}",
                              row.get("id")), False)
        else:
            result = ended
        if not result[1]:
            crashpoints.reached("job_before_outcome")
        with self._lock:
            self._finished.append(result)
        self._wake.set()

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

    def _stop_overdue_jobs(self) -> None:
        for key in overdue(self._running, time.monotonic()):
            item = self._running.pop(key)
            self._timed_out.add(key)
            self._claim_wanted = True
            if item.is_async and self._async is not None:
                self._async.cancel(key)
            else:
                self._threads.abandon(functools.partial(_is_attempt, key), JobTimeout)
            self._unwritten.append(timeout_outcome(
                item, self.retry_pattern(item.row["func_name"])))

    def _periodic(self) -> None:
        """The services that are due (rescue, periodic jobs, cleanup), each in a
        transaction of its own."""
        now = time.monotonic()
        for service in self.services:
            if service.due(now):
                done = self._guarded(service.run_once)
                if isinstance(service, Rescuer) and done is not None:
                    self.signals.emit("rescued", len(done.rescued))
                elif isinstance(service, ScheduleRunner) and done:
                    self._claim_wanted = True

    def _guarded(self, operation: Callable[[Any], Any]) -> Any:
        """A periodic service's transaction; its failure is logged, never fatal."""
        try:
            return self._connection.transaction(operation)
        except Exception as exc:
            connector = self.db.connector
            if connector.is_lost(exc):
                raise
            if not connector.is_transient(exc):
                log.error("%s failed (the worker goes on): %s",
                          getattr(operation, "__qualname__", "a periodic task"),
                          describe(str(exc) or type(exc).__name__, 300)[1:-1], exc_info=exc)
                return None
            log.warning("%s", connector.describe_error(exc))
            self._connection.drop()
            self._reconcile = True
            self.context.health.database_failed()
            return None

    def _database_failed(self, exc: Exception, backoff: Backoff) -> None:
        """Back off after a failed cycle (the database away or busy, or a cycle that
        failed twice on data); the database lost for good is fatal."""
        connector = self.db.connector
        if connector.is_lost(exc):
            raise exc
        delay = backoff.next()
        log.warning("%s; retrying in %.1fs", connector.describe_error(exc), delay)
        self._connection.drop()
        self._reconcile = True
        self.context.health.database_failed()
        deadline = time.monotonic() + delay
        while not self._hard_stop and time.monotonic() < deadline:
            self._wake.wait(deadline - time.monotonic())
            self._wake.clear()
            if self._stopping and time.monotonic() >= self._grace_deadline:
                break

    # -- stopping ------------------------------------------------------------------------
    def _teardown(self) -> None:
        self._stopping = True
        self.context.stopping.set()
        self.db.remove_local_worker(self)
        self._wakeup.stop()
        self.heartbeat.stop()
        busy_threads = self._threads.shutdown(timeout=0.0 if self._running else 1.0)
        if self._async is not None:
            self._async.shutdown()
        with self._lock:
            finished, self._finished = self._finished, []
        for outcome, _ in finished:
            self._running.pop(key_of(outcome), None)
        writes = self._unwritten + [outcome for outcome, written in finished if not written]
        writes += [released(item.row) for item in self._running.values()]
        self._final_write(writes)
        self._running.clear()
        # daemons: one stuck on a locked database closes its connection itself
        self._wakeup.join(1.0)
        self.heartbeat.join(1.0)
        self._connection.drop()
        self._job_connections.close_all(busy=busy_threads)
        log.info("worker %s stopped", self.id)

    def _final_write(self, writes: list[Outcome]) -> None:
        """The last outcomes, jobs given back, the worker's row stopped: a few tries
        (one when out of time, bounded by the lock timeout); then the rescue takes over."""
        def final(conn: Any) -> None:
            self.outcomes.write(conn, writes)
            self.db.store.stop_worker(conn, self.id)

        tries = 1 if self._hard_stop or time.monotonic() >= self._grace_deadline else 3
        attempt = 0
        while attempt < tries:
            attempt += 1
            try:
                self._connection.transaction(final)
                if self._running:
                    log.info("%d unfinished job(s) given back to pending", len(self._running))
                return
            except Exception as exc:
                connector = self.db.connector
                if not connector.is_transient(exc) and not connector.is_lost(exc) \
                        and not self.outcomes.careful:
                    self.outcomes.careful = True  # again, one outcome at a time (not counted)
                    attempt -= 1
                    continue
                if attempt >= tries or not connector.is_transient(exc):
                    log.error("could not record the last outcomes (%s): the jobs will be "
                              "rescued", connector.describe_error(exc))
                    return
                self._connection.drop()
                time.sleep(0.2)
