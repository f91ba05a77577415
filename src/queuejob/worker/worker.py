"""The worker: claims due jobs within channel capacities and runs them.

One loop thread talks to the database: each cycle writes the outcomes of the jobs that
finished since the last one and claims jobs for the free slots, in one transaction (one
commit per cycle, however many jobs it covers). Job threads only run jobs. The services
(heartbeat, wake-ups, rescue, cleanup, periodic jobs) each live in a module of their
own and see the worker through a narrow ``WorkerContext``.

Who writes what (each state has one writer, or says how it is shared):

=================================  ==================================  ====================
state                              written by                          shared how
=================================  ==================================  ====================
``_unwritten``, ``_next_poll``     the loop                            loop only
``Slots``: running jobs, timeouts  the loop (read by job threads)      dict / set ops
``Slots._finished``                job threads, the async-jobs thread  ``Slots._lock``
job threads' connections           job threads                         their own lock
claim caches (``Claimer``)         the loop                            loop only
service timers, cursors            the loop                            loop only
``OutcomeWriter.careful``          the loop                            loop only
``_wake``, ``_claim_wanted``       any thread (wake-ups, job ends)     Event / bool
``_stopping``, grace deadline      ``stop()``: signal handler, caller  bool / float
heartbeat connection, beat         the heartbeat thread                its own
hooks' queue                       the loop (read by the hooks thread) ``queue.Queue``
``health.healthy_since``           the loop and the heartbeat thread   float
=================================  ==================================  ====================

Threads are started by ``run()``, never by a constructor.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid as uuid_module
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..core.channels import ROOT, ChannelSpec, ChannelTree, WorkerChannels
from ..core.errors import ConfigurationError
from ..core.joblog import AttemptLog
from ..core.outcome import Outcome
from ..core.progress import Progress
from ..core.text import describe
from . import crashpoints, joblog
from .batches import BatchConcluder
from .claim import Claimer
from .cleanup import Cleaner
from .connections import LoopConnection
from .context import WorkerContext, WorkerSettings
from .heartbeat import Heartbeat
from .hooks import Hooks
from .outcomes import Key, OutcomeWriter, key_of
from .periodic import ScheduleRunner
from .rescue import Rescuer
from .shutdown import handle_signals
from .signals import Signals
from .slots import Slots
from .startup import Backoff, import_job_modules
from .wakeup import Wakeup

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.worker")

DEFAULT_CONCURRENCY = 4
#: the most job threads one process runs
MAX_CONCURRENCY = 10_000
#: seconds the hooks still queued at shutdown have to run
HOOKS_AT_SHUTDOWN = 5.0


def check_concurrency(value: Any) -> int:
    """A worker's number of job threads: a whole number from 0 (no jobs) up."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 <= value <= MAX_CONCURRENCY:
        raise ConfigurationError(f"concurrency must be a whole number from 0 to "
                                 f"{MAX_CONCURRENCY}, not {value!r}")
    return value


class Worker:
    """Runs the jobs of a database (the page's Worker and its Queue).

    ``channels``: channel rules (``"root:4,root.export:1"``) that hold across all the
    workers of the database while this one lives, unless the database stores rules of
    its own for a channel (``queuejob channels set``); when live workers disagree, the
    most restrictive applies (``core.channels.combine``). ``concurrency``: how many jobs
    this process runs at once (its job threads; 0: it takes no jobs); by default root's
    capacity in ``channels`` (``root:0``: no jobs), else 4. ``modules``: modules to
    import; only job functions registered in them run (None: every registered one).
    """

    def __init__(self, db: Database, channels: str | None = None,
                 modules: Iterable[str] | None = None, *, concurrency: int | None = None,
                 heartbeat_interval: float = 5.0, dead_after: float = 30.0,
                 rescue_interval: float = 10.0, poll_interval: float = 1.0,
                 grace_period: float = 30.0, cleanup_interval: float = 300.0,
                 name: str | None = None, hostname: str | None = None) -> None:
        self.db = db
        self.declared = WorkerChannels.parse(channels)
        if concurrency is None and self.declared.concurrency is not None:
            concurrency = min(self.declared.concurrency, MAX_CONCURRENCY)
        self.capacity: int = check_concurrency(
            DEFAULT_CONCURRENCY if concurrency is None else concurrency)
        #: what bounds this process alone: its job threads
        tree = ChannelTree([ChannelSpec(ROOT, capacity=max(self.capacity, 1))])
        self.modules: list[str] | None = None if modules is None else list(modules)
        if self.modules is not None:
            import_job_modules(self.modules)
        self.settings = WorkerSettings(heartbeat_interval, dead_after, rescue_interval,
                                       poll_interval, grace_period, cleanup_interval)
        self.hostname = hostname or socket.gethostname()
        self.id = name or f"{self.hostname}:{os.getpid()}:{uuid_module.uuid4().hex[:8]}"
        self.context = WorkerContext(db, self.id, self.hostname, os.getpid(), self.declared,
                                     self.capacity, self.settings)
        #: what the worker did so far (claimed, finished, rescued): wait on it
        self.signals = Signals()
        self.claimer = Claimer(db.store, self.id, tree)
        self.outcomes = OutcomeWriter(db.store, db.connector, self.id)
        #: hooks and notifications, after outcomes are committed (a thread of their own)
        self.hooks = Hooks(db, self.id)
        self.heartbeat = Heartbeat(self.context)
        self.services = (Rescuer(self.context, self.heartbeat),
                         ScheduleRunner(self.context, self.allows), Cleaner(self.context),
                         BatchConcluder(self.context))
        self._connection = LoopConnection(db.connector)
        self.slots = Slots(db, self.capacity, self.id, self.allows,
                           lambda: self.claimer.retry_patterns, self._wake_set)
        self._wakeup = Wakeup(self.context, self.wake)
        self._wake = threading.Event()
        self._unwritten: list[Outcome] = []
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
            joblog.install()  # what jobs log is kept with their attempts
            try:
                self._loop(burst)
            finally:
                try:
                    self._teardown()
                finally:
                    joblog.uninstall()

    @property
    def grace_period(self) -> float:
        return self.settings.grace_period

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _wake_set(self) -> None:
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------
    def _setup(self) -> None:
        backoff = Backoff()
        # a busy SQLite file is no reason to give up at start-up, a locked one is
        deadline = time.monotonic() + 3 * self.db.connector.lock_timeout
        while True:
            try:
                self._connection.transaction(self._register)
                break
            except Exception as exc:
                if not self.db.connector.is_transient(exc) or time.monotonic() > deadline \
                        or self._hard_stop:
                    raise
                log.debug("registering: %s", self.db.connector.describe_error(exc))
                self._connection.drop()
                time.sleep(backoff.next())
        log.info("worker %s started: channel rules %s, %d job threads, database %s",
                 self.id, self.context.channels or "(none declared)", self.capacity,
                 self.db.dialect)
        self.db.add_local_worker(self)
        self.heartbeat.start()
        self._wakeup.start()
        self.ready.set()

    def _register(self, conn: Any) -> None:
        self.db.store.register_worker(conn, self.id, self.hostname, os.getpid(),
                                      self.context.channels, self.capacity)
        # jobs left in 'enqueued' run (the rescue also looks for them, later)
        self.db.store.requeue_enqueued(conn)

    def _loop(self, burst: bool) -> None:
        backoff = Backoff()
        self._next_poll = time.monotonic() + self.settings.poll_interval
        while not self._hard_stop:
            self.loop_iterations += 1
            finished, writes = self._take_finished()
            reports = self.slots.progress.due(finished)
            logs = self.slots.progress.live_logs(finished)
            free = self.slots.free
            want = not self._stopping and free > 0 and (
                self._claim_wanted or bool(finished) or time.monotonic() >= self._next_poll)
            claimed_none = self.capacity == 0  # a worker that takes no jobs: none to take
            if writes or want or reports or logs:
                self._claim_wanted = self._claim_wanted and not want
                try:
                    claimed = self._cycle(writes, free if want else 0, reports, logs)
                except Exception as exc:
                    self._unwritten = writes
                    self.slots.progress.put_back(reports)
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

    def _stop_overdue_jobs(self) -> None:
        stopped = self.slots.stop_overdue()
        if stopped:
            self._unwritten += stopped
            self._claim_wanted = True

    def _take_finished(self) -> tuple[list[Key], list[Outcome]]:
        """The attempts that ended since the last turn (their slots freed), and the
        outcomes to write (with those a last cycle could not write)."""
        linger = 0.0 if self._stopping else min(0.2 * self._last_cycle, 0.005)
        finished = self.slots.take_finished(linger)
        # outcomes a job wrote itself, with its own writes
        committed = [outcome for outcome, written in finished if written]
        if committed:
            self.signals.emit("finished", len(committed))
            self.hooks.committed(committed)
        return [key_of(outcome) for outcome, _ in finished], self._unwritten + [
            outcome for outcome, written in finished if not written]

    def _start(self, claimed: list[dict[str, Any]], free: int) -> None:
        self._next_poll = time.monotonic() + self.settings.poll_interval
        if self.claimer.retry_in is not None:  # a rate limit's window frees a start then
            self._next_poll = min(self._next_poll,
                                  time.monotonic() + self.claimer.retry_in + 0.001)
        self._claim_wanted = self._claim_wanted or len(claimed) == free  # there may be more
        for row in claimed:
            refused = self.slots.start(row)
            if refused is not None:  # a row that cannot run: its failure is written next
                self._unwritten.append(refused)
                self._claim_wanted = True
        self.signals.emit("claimed", len(claimed))

    def _should_leave(self, burst: bool, claimed_none: bool) -> bool:
        """Stopping with nothing left (or the grace period over), or a burst run that
        found nothing to do."""
        if self._stopping:
            if not self.slots.busy and not self._unwritten:
                return True
            if time.monotonic() >= self._grace_deadline:
                log.warning("grace period over: giving %d unfinished job(s) back",
                            self.capacity - self.slots.free)
                return True
            return False
        # (a burst run waits for a rate-limited channel's window, not for other workers)
        return burst and claimed_none and not self.slots.busy and not self._unwritten \
            and self.claimer.retry_in is None

    def _sleep(self) -> None:
        """Until a job ends, a wake-up comes or a timer is due; not at all when there is
        work now. The poll only matters when a job could be claimed: with every slot busy
        (or while stopping) the loop sleeps until a job ends or a timer is due."""
        can_claim = not self._stopping and self.slots.free > 0
        if self.slots.has_finished or (self._claim_wanted and can_claim) or self._unwritten:
            return
        deadline = min(self._next_poll if can_claim else float("inf"), self._grace_deadline,
                       self.slots.next_deadline(), self.slots.progress.next_at,
                       *(service.next_at for service in self.services))
        self._wake.wait(max(0.001, min(deadline - time.monotonic(), 3600.0)))
        self._wake.clear()

    def _cycle(self, writes: list[Outcome], free: int, reports: list[tuple[Key, Progress]],
               logs: list[tuple[Key, AttemptLog]]) -> list[dict[str, Any]]:
        """One transaction: write running jobs' progress and logs and finished jobs'
        outcomes, then claim up to ``free``. (A log a failed transaction did not write
        is written with the next lines, or with its outcome.)"""
        written: list[Outcome] = []

        def work(conn: Any) -> list[dict[str, Any]]:
            self.db.store.save_progress(conn, reports)
            self.db.store.save_job_logs(conn, logs)
            written[:] = self.outcomes.write(conn, writes)
            if self._reconcile:
                # after the outcomes waiting to be written: their jobs are no longer
                # running here, yet they must not be given back
                self.outcomes.give_back_forgotten(conn, self.slots.running_keys())
                self._reconcile = False
            if free <= 0:
                return []
            rows = self.claimer.claim(conn, self.slots.running_channels(), free)
            if rows:
                crashpoints.reached("claim_before_commit")
            return rows

        started = time.monotonic()
        claimed: list[dict[str, Any]] = self._connection.transaction(work)
        self._last_cycle = time.monotonic() - started
        self.outcomes.careful = False
        if writes:
            crashpoints.reached("outcome_after_commit")
            self.hooks.committed(written)
        if claimed:
            crashpoints.reached("claim_after_commit")
        return claimed

    def _periodic(self) -> None:
        """The services that are due (rescue, periodic jobs, cleanup), each in a
        transaction of its own."""
        now = time.monotonic()
        for service in self.services:
            if service.due(now):
                if not self._wanted(service):
                    continue
                done = self._guarded(service.run_once)
                if isinstance(service, Rescuer) and done is not None:
                    self.signals.emit("rescued", len(done.rescued))
                    self.hooks.rescued_failed(done.failed)
                elif isinstance(service, ScheduleRunner) and done:
                    self._claim_wanted = True

    def _wanted(self, service: Any) -> bool:
        """A service with a cheap read saying whether it has anything to do (``wanted``)
        runs its write transaction only then: a worker that looks every second never
        holds SQLite's write lock for nothing. A failed read lets it run (its own
        transaction reports the failure)."""
        wanted = getattr(service, "wanted", None)
        if wanted is None:
            return True
        try:
            return bool(self.db.read(wanted))
        except Exception:
            return True

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
        given_back = self.slots.busy
        writes, busy_threads = self.slots.shutdown()
        tries = 1 if self._hard_stop or time.monotonic() >= self._grace_deadline else 3
        written = self.outcomes.write_last(self._connection, self._unwritten + writes, tries)
        if written is not None:
            self.hooks.committed(written)
            if given_back:
                log.info("unfinished job(s) given back to pending")
        self.hooks.stop(timeout=HOOKS_AT_SHUTDOWN)
        # daemons: one stuck on a locked database closes its connection itself
        self._wakeup.join(1.0)
        self.heartbeat.join(1.0)
        self._connection.drop()
        self.slots.close_connections(busy_threads)
        log.info("worker %s stopped", self.id)
