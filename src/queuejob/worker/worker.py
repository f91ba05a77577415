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
the worker's connection            loop, heartbeat and wake-ups        its lock (one at once)
``context.look``, ``last_beat``    whoever beats (loop or heartbeat)   attribute assignment
``_passes``, ``_cascade``          wake-ups (add), the loop (send)     list ops / bool
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

from ..core import wakeups
from ..core.channels import ROOT, ChannelSpec, ChannelTree, WorkerChannels
from ..core.errors import ConfigurationError
from ..core.joblog import AttemptLog
from ..core.outcome import Outcome
from ..core.progress import Progress
from ..core.text import describe
from . import crashpoints, joblog, liveness
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
from .tallies import TallyKeeper
from .wakeup import PipeWatcher, Wakeup

if TYPE_CHECKING:
    from ..database import Database
    from ..store import KnownClaim

log = logging.getLogger("queuejob.worker")

DEFAULT_CONCURRENCY = 4
#: the most job threads one process runs
MAX_CONCURRENCY = 10_000
#: seconds the hooks still queued at shutdown have to run
HOOKS_AT_SHUTDOWN = 5.0
#: cycles in a row that may meet a concurrent change and run again at once, before the
#: worker backs off as for any database failure
CONFLICT_RETRIES = 3


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

    Connections: one for the worker's own work, plus its listener (``listen=False``:
    none, the worker polls every ``poll_interval``; ``wake_fd``: a pipe its supervisor
    forwards notifications through), plus up to ``job_connections`` (default: the job
    threads) that jobs' sessions borrow while they run.
    """

    def __init__(self, db: Database, channels: str | None = None,
                 modules: Iterable[str] | None = None, *, concurrency: int | None = None,
                 heartbeat_interval: float = 5.0, dead_after: float = 30.0,
                 rescue_interval: float = 10.0, poll_interval: float = 3.0,
                 grace_period: float = 30.0, cleanup_interval: float = 300.0,
                 name: str | None = None, hostname: str | None = None,
                 listen: bool = True, wake_fd: int | None = None,
                 job_connections: int | None = None,
                 supervisor_pid: int | None = None) -> None:
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
        if job_connections is not None and (
                isinstance(job_connections, bool) or not isinstance(job_connections, int)
                or not 1 <= job_connections <= MAX_CONCURRENCY):
            raise ConfigurationError(f"job_connections must be a whole number from 1 to "
                                     f"{MAX_CONCURRENCY}, not {job_connections!r}")
        self.job_connections = self.capacity if job_connections is None else job_connections
        self._wake_fd = wake_fd
        self.context = WorkerContext(
            db, self.id, self.hostname, os.getpid(), self.declared, self.capacity,
            self.settings, supervisor_pid=supervisor_pid,
            listener="shared" if wake_fd is not None else "own" if listen else "none",
            job_connections=self.job_connections, process_space=liveness.process_space())
        #: what the worker did so far (claimed, finished, rescued): wait on it
        self.signals = Signals()
        self.claimer = Claimer(db.store, self.id, tree)
        self.outcomes = OutcomeWriter(db.store, db.connector, self.id)
        #: hooks and notifications, after outcomes are committed (a thread of their own)
        self.hooks = Hooks(db, self.id)
        self.heartbeat = Heartbeat(self.context)
        self.services = (Rescuer(self.context, self.heartbeat),
                         ScheduleRunner(self.context, self.allows), Cleaner(self.context),
                         BatchConcluder(self.context), TallyKeeper(self.context))
        self._connection: LoopConnection = self.context.connection
        self.slots = Slots(db, self.capacity, self.id, self.allows,
                           lambda: self.claimer.retry_patterns, self._wake_set,
                           self.job_connections)
        self._wakeup = self._wakeup_of(listen, wake_fd)
        #: notifications to pass on to the next worker (this one had no room)
        self._passes: list[wakeups.Target] = []
        #: the next claim was asked by a notification: if it is full, wake the next worker
        self._cascade = False
        #: the worker stopped listening: its row says so at the next turn
        self._listener_changed = False
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

    # -- wake-ups ------------------------------------------------------------------------
    def _wakeup_of(self, listen: bool, wake_fd: int | None) -> Wakeup | None:
        """What wakes this worker: its supervisor's pipe, its own listener, or nothing
        (it polls)."""
        connector = self.db.connector
        if wake_fd is not None:
            return Wakeup(self.id, connector, lambda: PipeWatcher(wake_fd), self.notified,
                          gave_up=self._not_listening)
        if not listen:
            return None
        probe = None
        if self.db.dialect == "postgresql":
            def probe(payload: str) -> None:
                self._connection.transaction(lambda conn: connector.notify(conn, payload))
        listen_url = getattr(connector, "listen_display", None)
        where = getattr(connector, "display_url", "the database") if listen_url is None \
            else f"the listen URL {listen_url}"
        return Wakeup(self.id, connector, connector.watcher, self.notified, probe=probe,
                      gave_up=self._not_listening, where=where)

    def _not_listening(self) -> None:
        """LISTEN does not hold (or the supervisor closed the pipe): the worker polls,
        and its row says so (written by the loop)."""
        self.context.listener = "none"
        self._listener_changed = True
        self._wake.set()

    def _supervisor_gone(self) -> bool:
        """Run under a supervisor that is no longer this process's parent (killed): a
        worker left alone stops as if sent SIGTERM, instead of running unsupervised."""
        supervisor = self.context.supervisor_pid
        return supervisor is not None and os.getppid() != supervisor

    def notified(self, payloads: list[str]) -> None:
        """Notifications arrived (the wake-up thread): the claims they ask of this
        worker (``core.wakeups``): wake the loop, or pass them on when it has no room."""
        look = self.context.look
        rank = look.rank if look is not None else None
        for payload in payloads:
            if not wakeups.wakes(rank, payload):
                continue
            target = wakeups.parse(payload)
            if self._stopping or self.slots.free <= 0:
                passed = rank.passed_on(target) if rank is not None else None
                if passed is not None:
                    self._passes.append(passed)
                    self._wake.set()
                continue
            if target is not None:
                self._cascade = True
            self.wake()

    def _send_passes(self, conn: Any) -> None:
        """In a transaction of the loop: the notifications this worker passes on."""
        passes, self._passes = self._passes, []
        for target in dict.fromkeys(passes):
            self.db.store.wake_worker(conn, wakeups.payload_of(target))

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
        log.info("connections: %s", self.budget())
        if self.job_connections < self.capacity:
            log.warning("%d job connections for %d job threads: jobs that use their "
                        "session wait for one when more run at once", self.job_connections,
                        self.capacity)
        self.db.add_local_worker(self)
        self.heartbeat.start()
        if self._wakeup is not None:
            self._wakeup.start()
        self.ready.set()

    def budget(self) -> str:
        """The connections this worker may hold, as its start-up line says them."""
        listener = {"own": "listener", "shared": "shared listener (its supervisor's)",
                    "none": "no listener (polling)"}[self.context.listener]
        return f"1 + {listener} + up to {self.job_connections} for jobs"

    def _register(self, conn: Any) -> None:
        self.context.register(conn)
        self.heartbeat.beat(conn)
        # jobs left in 'enqueued' run (the rescue also looks for them, later)
        self.db.store.requeue_enqueued(conn)

    def _loop(self, burst: bool) -> None:
        backoff = Backoff()
        conflicts = 0  # cycles in a row that met a concurrent change
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
                    claimed = self._turn(writes, free if want else 0, reports, logs)
                except Exception as exc:
                    self._unwritten = writes
                    self.slots.progress.put_back(reports)
                    self._claim_wanted = self._claim_wanted or want
                    if self.outcomes.data_failed(exc):
                        continue  # again at once, one outcome at a time
                    if self.db.connector.is_conflict(exc) and conflicts < CONFLICT_RETRIES:
                        conflicts += 1
                        log.debug("a cycle met a concurrent change (%s): again at once",
                                  self.db.connector.describe_error(exc))
                        continue
                    self._database_failed(exc, backoff)
                    if self._stopping and time.monotonic() >= self._grace_deadline:
                        return  # the teardown tries once more, then rescue takes over
                    continue
                backoff.reset()
                conflicts = 0
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
        self.slots.run_inline()  # short jobs: here, once the others are on their threads

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
        # the services do not run while the worker stops: their times do not wake it
        services = () if self._stopping else self.services
        deadline = min(self._next_poll if can_claim else float("inf"), self._grace_deadline,
                       self.slots.next_deadline(), self.slots.progress.next_at,
                       *(service.next_at for service in services))
        self._wake.wait(max(0.001, min(deadline - time.monotonic(), 3600.0)))
        self._wake.clear()

    def _turn(self, writes: list[Outcome], free: int, reports: list[tuple[Key, Progress]],
              logs: list[tuple[Key, AttemptLog]]) -> list[dict[str, Any]]:
        """Write what is due and claim up to ``free`` jobs: a plain turn (outcomes and a
        claim that needs nothing read) in one round trip, any other in ``_cycle``."""
        if self._plain_turn(writes, reports, logs):
            known = self.claimer.known_claim() if free > 0 else None
            if known is not None or free <= 0:
                return self._quick_cycle(writes, free, known)
        return self._cycle(writes, free, reports, logs)

    def _cycle(self, writes: list[Outcome], free: int, reports: list[tuple[Key, Progress]],
               logs: list[tuple[Key, AttemptLog]]) -> list[dict[str, Any]]:
        """One transaction: write running jobs' progress and logs and finished jobs'
        outcomes, then claim up to ``free``. (A log a failed transaction did not write
        is written with the next lines, or with its outcome.)"""
        written: list[Outcome] = []

        cascade, self._cascade = self._cascade, False

        def work(conn: Any) -> list[dict[str, Any]]:
            if self.heartbeat.due(time.monotonic()):
                self.heartbeat.beat(conn)  # an idle worker's poll carries its heartbeat
            if self._passes:
                self._send_passes(conn)
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
            # the claim's statements read without bitmaps until the commit: nothing that
            # reads the jobs' table comes after it
            rows = self.claimer.claim(conn, self.slots.running_channels(), free)
            if rows:
                crashpoints.reached("claim_before_commit")
            look = self.context.look
            if cascade and len(rows) >= free and look is not None:
                # a burst: more jobs may wait; the next worker claims too
                after = look.rank.next_after_burst()
                if after is not None:
                    self.db.store.wake_worker(conn, wakeups.payload_of(after))
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

    def _plain_turn(self, writes: list[Outcome], reports: list[tuple[Key, Progress]],
                    logs: list[tuple[Key, AttemptLog]]) -> bool:
        """A turn with nothing but plain outcomes and a claim to send: the busy
        worker's usual turn, which ``_quick_cycle`` sends in one round trip."""
        return not (reports or logs or self._cascade or self._passes or self._reconcile
                    or self.outcomes.careful or crashpoints.armed("claim_before_commit")
                    or self.heartbeat.due(time.monotonic())) \
            and self.db.store.plain_finishes(writes)

    def _quick_cycle(self, writes: list[Outcome], free: int, known: KnownClaim | None
                     ) -> list[dict[str, Any]]:
        """``_cycle`` for a plain turn: the outcomes written, the jobs claimed as the
        claimer knows to claim them (none when ``known`` is None) and the commit, one
        round trip on PostgreSQL."""
        started = time.monotonic()
        lost, claimed = self._connection.transaction(
            lambda conn: self.db.store.finish_and_claim(conn, writes, self.id,
                                                        known, free))
        self._last_cycle = time.monotonic() - started
        if known is not None:
            self.claimer.known_claimed(known, claimed, free)
        if writes:
            crashpoints.reached("outcome_after_commit")
            self.hooks.committed(self.outcomes.settle(writes, lost))
        if claimed:
            crashpoints.reached("claim_after_commit")
        return claimed

    def _periodic(self) -> None:
        """The services that are due (rescue, periodic jobs, cleanup), each in a
        transaction of its own."""
        now = time.monotonic()
        if self._passes:  # no cycle carried them: a transaction of their own
            self._guarded(self._send_passes)
        if self._listener_changed:
            self._listener_changed = False
            self._guarded(lambda conn: self.db.store.set_worker_listener(
                conn, self.id, self.context.listener))
        self.slots.close_idle_connections()
        if not self._stopping and self._supervisor_gone():
            log.warning("the supervisor (pid %s) is gone: stopping", self.context.supervisor_pid)
            self.stop()
        for service in self.services:
            if service.due(now):
                wanted = getattr(service, "wanted", None)
                if wanted is not None and not wanted():
                    continue
                done = self._guarded(service.run_once)
                if isinstance(service, Rescuer) and done is not None:
                    self.signals.emit("rescued", len(done.rescued))
                    self.hooks.rescued_failed(done.failed)
                    # jobs back to pending, capacity freed: its own claim looks at once
                    # (the rescue's notification may name the dead worker's rank, which
                    # the heartbeats still count until the next look)
                    self._claim_wanted = self._claim_wanted or bool(
                        done.rescued or done.dead_workers)
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
        if self._wakeup is not None:
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
        if self._wakeup is not None:
            self._wakeup.join(1.0)
        self.heartbeat.join(1.0)
        self._connection.drop()
        self.slots.close_connections(busy_threads)
        log.info("worker %s stopped", self.id)
