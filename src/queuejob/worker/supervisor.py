"""``queuejob worker --processes N``: N worker processes on one host under one supervisor.

CPU-bound jobs need processes; a host running N of them needs only one LISTEN
connection. The supervisor is the process the command started: it runs no job and
holds no connection but that listener (and, once at start, the short connection of the
check that LISTEN holds). Each child is ``python -m queuejob worker`` with the same
arguments but ``--processes``, its environment saying ``QUEUEJOB_SUPERVISOR_PID``.

Wake-ups (PostgreSQL, listening): each child reads a pipe of its own (its number in
``QUEUEJOB_WAKE_FD``); the supervisor writes every notification it receives, one payload
a line, to every child's pipe, and each child decides whether it acts on it. A full pipe
loses that notification for that child (the child's poll is the fallback), never blocks
the listener. When LISTEN does not hold (a pooler in transaction mode) the supervisor
closes the pipes: the children see their end and poll, as do the children started
later (without a pipe). SQLite, or ``--no-listen``: no pipe, no listener; each child
does as it would alone.

Children: one that dies while the supervisor is not stopping is started again after a
back-off (1 s, doubled up to 30 s; back to 1 s once a child lived a minute); one that
exits 0 (a ``--burst`` run that found nothing to do) is not, and when every child did,
the supervisor exits 0. Each child runs in a process group of its own: Ctrl-C at a
terminal (SIGINT to the foreground group) reaches the supervisor alone, which forwards
one SIGTERM; had the children received the terminal's SIGINT too, the forwarded SIGTERM
would have been their second signal, which stops at once. (A service manager that
signals every process of the service, as systemd's default ``KillMode=control-group``,
has the same effect: give it ``KillMode=mixed``.)

Signals: the first SIGTERM or SIGINT (or SIGHUP: the terminal closed, unless nohup
ignores it) is forwarded to every child as SIGTERM (running jobs get the grace period);
the supervisor waits for them the grace period plus ``MARGIN``, then kills those left. A
second one is forwarded at once (the children stop now). The supervisor exits 0 when
every child stopped by itself with 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.wakeups import PROBE_PREFIX
from .wakeup import SUPERVISOR_PID_ENV, WAKE_FD_ENV, Wakeup

if TYPE_CHECKING:
    from ..backends.postgres import PostgresConnector
    from ..database import Database

log = logging.getLogger("queuejob.worker")

#: seconds children get past the grace period (their last writes, hooks) before SIGKILL
MARGIN = 10.0
#: back-off before a dead child is started again: first, most
FIRST_DELAY = 1.0
MOST_DELAY = 30.0
#: a child that lived this long died by accident: its back-off starts again
LIVED = 60.0
#: seconds between two looks at the children
TURN = 0.2
#: the most bytes a pipe takes in one write, all or nothing
PIPE_BUF = select.PIPE_BUF
#: what stops the children: SIGTERM, SIGINT, and SIGHUP (the terminal closed) unless
#: ignored (nohup)
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def child_arguments(argv: Sequence[str], command: str = "worker") -> list[str]:
    """The arguments ``command`` was given on ``argv`` (``sys.argv``), without
    ``--processes N`` / ``--processes=N``: what each child is started with."""
    try:
        start = list(argv[1:]).index(command) + 2
    except ValueError:
        raise ValueError(f"--processes: no {command!r} command on the command line "
                         f"{' '.join(argv)!r}") from None
    out: list[str] = []
    rest = iter(argv[start:])
    for argument in rest:
        if argument == "--":
            out += [argument, *rest]
            break
        if argument == "--processes":
            next(rest, None)
        elif not argument.startswith("--processes="):
            out.append(argument)
    return out


def exit_status(code: int) -> str:
    """A child's exit as a person reads it: ``code 1``, ``SIGKILL``."""
    if code >= 0:
        return f"code {code}"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


@dataclass
class Child:
    """One of the N places: the process in it now, its pipe, its back-off."""

    slot: int
    process: subprocess.Popen[bytes] | None = None
    #: the write end of its wake-up pipe (None: it has none, or it was closed)
    pipe: int | None = None
    started: float = 0.0
    #: the last back-off (0: none yet)
    delay: float = 0.0
    #: when it is started again (None: not waiting)
    restart_at: float | None = None
    #: exited 0 while the supervisor was not stopping: not started again
    done: bool = False


class Supervisor:
    """Runs ``processes`` worker processes (``arguments``: the worker command's, without
    ``--processes``) until they are done or the supervisor is signalled to stop.

    ``db``: the database (opened, not used but for listening: on its listen URL when it
    has one). ``listen``: False for ``--no-listen``. ``grace``: the children's grace
    period (``--grace``)."""

    def __init__(self, db: Database, processes: int, arguments: Sequence[str], *,
                 grace: float, listen: bool = True) -> None:
        self.db = db
        self.arguments = list(arguments)
        self.grace = grace
        self.children = [Child(slot) for slot in range(processes)]
        self.connector = self._postgres() if listen else None
        self._listener: Wakeup | None = None
        #: children get pipes (PostgreSQL, listening, and LISTEN was not found broken)
        self._listening = self.connector is not None
        #: guards the pipes: written by the listener's thread, opened and closed here
        self._lock = threading.Lock()
        self._signals: list[int] = []
        self._stopping = False
        self._deadline = float("inf")
        self._clean = True
        self._alarm_read, self._alarm_write = os.pipe()
        for end in (self._alarm_read, self._alarm_write):
            os.set_blocking(end, False)

    # -- running -------------------------------------------------------------------------
    def run(self) -> int:
        """Start the children and watch them; the exit code (0: every child ended
        well)."""
        previous = self._handle_signals()
        try:
            if self.connector is not None:
                self._start_listener(self.connector)
            log.info("supervisor %d: %d worker processes, %s", os.getpid(),
                     len(self.children), "one listener for the host"
                     if self._listener is not None else "no listener (polling)")
            for child in self.children:
                self._spawn(child)
            return self._watch()
        finally:
            try:
                self._end_children()
            finally:
                if self._listener is not None:
                    self._listener.stop()
                    self._listener.join(2.0)
                self._close_pipes()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                for end in (self._alarm_read, self._alarm_write):
                    os.close(end)

    def _watch(self) -> int:
        while True:
            self._take_signals()
            now = time.monotonic()
            self._reap(now)
            alive = [child for child in self.children if child.process is not None]
            if self._stopping:
                if not alive:
                    return 0 if self._clean else 1
                if now >= self._deadline:
                    self._kill(alive)
                    return 1
            elif all(child.done for child in self.children):
                log.info("supervisor %d: every worker process is done", os.getpid())
                return 0
            else:
                for child in self.children:
                    if child.restart_at is not None and now >= child.restart_at:
                        self._spawn(child)
            self._sleep(now)

    def _sleep(self, now: float) -> None:
        """Until the next look at the children, a restart due or a signal."""
        until = min([now + TURN, self._deadline,
                     *(child.restart_at for child in self.children
                       if child.restart_at is not None)])
        with contextlib.suppress(InterruptedError):
            select.select([self._alarm_read], [], [], max(0.0, until - now))
        with contextlib.suppress(BlockingIOError):
            os.read(self._alarm_read, 512)

    def _reap(self, now: float) -> None:
        """Note the children that exited; schedule the restart of those that died."""
        for child in self.children:
            process = child.process
            if process is None:
                continue
            code = process.poll()
            if code is None:
                continue
            child.process = None
            self._close_pipe(child)
            if self._stopping:
                self._clean = self._clean and code == 0
            elif code == 0:
                child.done = True
                log.info("worker process %d exited with code 0: done", process.pid)
            else:
                lived = now - child.started
                child.delay = FIRST_DELAY if not child.delay or lived >= LIVED \
                    else min(MOST_DELAY, child.delay * 2)
                child.restart_at = now + child.delay
                log.warning("worker process %d exited with %s: restarting in %gs",
                            process.pid, exit_status(code), child.delay)

    def _spawn(self, child: Child) -> None:
        """Start the worker process of ``child``'s place (with a pipe when listening)."""
        child.restart_at = None
        env = dict(os.environ)
        env[SUPERVISOR_PID_ENV] = str(os.getpid())
        env.pop(WAKE_FD_ENV, None)
        read_end = write_end = None
        if self._listening:
            read_end, write_end = os.pipe()
            os.set_blocking(write_end, False)
            env[WAKE_FD_ENV] = str(read_end)
        try:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "queuejob", "worker", *self.arguments], env=env,
                stdin=subprocess.DEVNULL, pass_fds=() if read_end is None else (read_end,),
                start_new_session=False, process_group=0)
        except OSError as exc:  # no process to be had now (limits, memory): later
            if write_end is not None:
                os.close(write_end)
            child.delay = min(MOST_DELAY, child.delay * 2 or FIRST_DELAY)
            child.restart_at = time.monotonic() + child.delay
            log.warning("worker process not started (%s): trying again in %gs", exc,
                        child.delay)
            return
        finally:
            if read_end is not None:
                os.close(read_end)
        child.started = time.monotonic()
        if write_end is not None:
            with self._lock:
                if self._listening:
                    child.pipe = write_end
                else:  # LISTEN was found broken meanwhile: the child polls
                    os.close(write_end)

    # -- signals -------------------------------------------------------------------------
    def _handle_signals(self) -> dict[int, Any]:
        """SIGTERM, SIGINT and SIGHUP noted (the loop acts on them), in the main
        thread."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, frame: Any) -> None:
            self._signals.append(signum)
            with contextlib.suppress(OSError):
                os.write(self._alarm_write, b"!")

        return {sig: signal.signal(sig, on_signal) for sig in SIGNALS
                if not (sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN)}

    def _take_signals(self) -> None:
        while self._signals:
            self.stop(self._signals.pop(0))

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop the children (SIGTERM: their grace period); a second call, at once."""
        name = signal.Signals(signum).name
        alive = [child.process for child in self.children if child.process is not None]
        if self._stopping:
            log.warning("%s again: stopping %d worker process(es) now", name, len(alive))
        else:
            self._stopping = True
            self._deadline = time.monotonic() + self.grace + MARGIN
            for child in self.children:
                child.restart_at = None
            log.info("%s: stopping %d worker process(es) (grace %gs)", name, len(alive),
                     self.grace)
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)

    def _kill(self, children: list[Child]) -> None:
        for child in children:
            if child.process is None:
                continue
            log.warning("worker process %d still running after %gs: killing it",
                        child.process.pid, self.grace + MARGIN)
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(5.0)
            child.process = None
            self._close_pipe(child)

    def _end_children(self) -> None:
        """Children still running when the supervisor leaves (an error of its own):
        stopped as on SIGTERM."""
        if not any(child.process is not None for child in self.children):
            return
        if not self._stopping:
            self.stop()
        while True:
            self._reap(time.monotonic())
            alive = [child for child in self.children if child.process is not None]
            if not alive:
                return
            if time.monotonic() >= self._deadline:
                self._kill(alive)
                return
            time.sleep(TURN)

    # -- the listener --------------------------------------------------------------------
    def _postgres(self) -> PostgresConnector | None:
        """The database's connector when it is PostgreSQL (the one that listens)."""
        if self.db.dialect != "postgresql":
            return None
        from ..backends.postgres import PostgresConnector
        connector = self.db.connector
        return connector if isinstance(connector, PostgresConnector) else None

    def _start_listener(self, connector: PostgresConnector) -> None:
        where = connector.display_url if connector.listen_display is None \
            else f"the listen URL {connector.listen_display}"

        def probe(payload: str) -> None:
            conn = connector.connect(autocommit=True)
            try:
                connector.notify(conn, payload)
            finally:
                conn.close()

        self._listener = Wakeup("supervisor", connector,
                                watch=lambda: connector.watcher("jobs"),
                                deliver=self.deliver, probe=probe, gave_up=self.gave_up,
                                where=where)
        self._listener.start()

    def deliver(self, payloads: list[str]) -> None:
        """Write the payloads to every child's pipe, one a line (the listener's thread).
        A full pipe drops them for that child; a broken one is closed."""
        lines = [payload.replace("\n", " ").encode("utf-8", "replace") + b"\n"
                 for payload in payloads if not payload.startswith(PROBE_PREFIX)]
        # a line too long to be written whole would be cut: it wakes every worker
        lines = [line if len(line) <= PIPE_BUF else b"\n" for line in lines]
        writes: list[bytes] = []
        for line in lines:
            if writes and len(writes[-1]) + len(line) <= PIPE_BUF:
                writes[-1] += line
            else:
                writes.append(line)
        if not writes:
            return
        with self._lock:
            for child in self.children:
                for data in writes:
                    if child.pipe is None:
                        break
                    try:
                        os.write(child.pipe, data)
                    except BlockingIOError:  # it has plenty to read already
                        break
                    except OSError:  # its process is gone
                        self._close_pipe_locked(child)

    def gave_up(self) -> None:
        """LISTEN does not hold: the children poll (their pipes end); later ones get
        none."""
        with self._lock:
            self._listening = False
            for child in self.children:
                self._close_pipe_locked(child)

    def _close_pipe(self, child: Child) -> None:
        with self._lock:
            self._close_pipe_locked(child)

    def _close_pipe_locked(self, child: Child) -> None:
        if child.pipe is not None:
            with contextlib.suppress(OSError):
                os.close(child.pipe)
            child.pipe = None

    def _close_pipes(self) -> None:
        with self._lock:
            for child in self.children:
                self._close_pipe_locked(child)
