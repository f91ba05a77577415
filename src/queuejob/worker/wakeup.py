"""Wakes the worker loop when jobs may have become runnable elsewhere.

PostgreSQL: LISTEN/NOTIFY, on the connection of the listen URL (the database's own
when none is given); under ``queuejob worker --processes`` the supervisor listens once
for the host and hands each notification to its children through a pipe. SQLite:
commits of other connections, seen through ``PRAGMA data_version``.

A listener checks at start that LISTEN holds: it sends itself a notification through
the worker's own connection and waits for it. Behind a pooler in transaction mode the
notification never comes back (the LISTEN was made on a server connection the pooler
gave to someone else): the worker says so once, with the fix, and polls. If the
listener's connection is lost, it reconnects with back-off and wakes the loop once (a
notification may have been missed); meanwhile the loop's poll is the fallback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import uuid as uuid_module
from collections.abc import Callable

from ..backends.base import ChangeWatcher, Connector
from ..core.wakeups import PROBE_PREFIX

log = logging.getLogger("queuejob.worker")

#: seconds a listener waits for its own probe before it says LISTEN does not hold
PROBE_WAIT = 3.0
#: seconds between two looks at the stop flag while nothing arrives (a daemon thread:
#: a stopped worker does not wait for it; each turn costs an idle worker CPU)
TURN = 5.0
#: the environment variable naming the pipe a supervisor wakes its children through
WAKE_FD_ENV = "QUEUEJOB_WAKE_FD"
#: the environment variable giving a supervised worker its supervisor's pid
SUPERVISOR_PID_ENV = "QUEUEJOB_SUPERVISOR_PID"


class PipeWatcher(ChangeWatcher):
    """The notifications a supervisor forwards, one payload per line."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def wait(self, timeout: float) -> list[str]:
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if not ready:
            return []
        chunk = os.read(self._fd, 65536)
        if not chunk:  # the supervisor is gone: nothing will come any more
            raise EOFError("the supervisor's wake-up pipe is closed")
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class Wakeup:
    """A thread that hands what its watcher receives to ``deliver`` (the payloads).

    ``watch``: opens the watcher (called again after a lost connection). ``probe``:
    sends a notification through the worker's own connection (None: no check, as for a
    pipe or SQLite). ``gave_up``: called once when LISTEN does not hold."""

    def __init__(self, name: str, connector: Connector, watch: Callable[[], ChangeWatcher],
                 deliver: Callable[[list[str]], None],
                 probe: Callable[[str], None] | None = None,
                 gave_up: Callable[[], None] | None = None,
                 where: str = "the database") -> None:
        self.connector = connector
        self.watch = watch
        self.deliver = deliver
        self.probe = probe
        self.gave_up = gave_up
        self.where = where
        #: False once the probe showed that notifications do not arrive
        self.holds = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-wakeup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        connector = self.connector
        watcher: ChangeWatcher | None = None
        delay = 0.0
        checked = self.probe is None
        try:
            while not self._stop.is_set():
                try:
                    if watcher is None:
                        watcher = self.watch()
                        if delay:
                            log.info("listening for new jobs again")
                            self.deliver([""])
                        delay = 0.0
                    if not checked:
                        checked = True
                        if not self._probe(watcher):
                            return
                    payloads = watcher.wait(TURN)
                    if payloads:
                        self.deliver(payloads)
                except EOFError:
                    # the supervisor gave up on LISTEN, or is gone: the poll goes on
                    if self.gave_up is not None:
                        self.gave_up()
                    return
                except Exception as exc:
                    delay = min(5.0, delay * 2 or 0.1)
                    log.warning("job watcher lost (%s); reconnecting in %.1fs",
                                connector.describe_error(exc), delay)
                    if watcher is not None:
                        with contextlib.suppress(Exception):  # broken already
                            watcher.close()
                        watcher = None
                    self._stop.wait(delay)
        finally:
            if watcher is not None:
                with contextlib.suppress(Exception):  # closing anyway
                    watcher.close()

    def _probe(self, watcher: ChangeWatcher) -> bool:
        """Send a notification through the worker's own connection and wait for it;
        False (said once, the watcher given up) when it does not come."""
        assert self.probe is not None
        payload = f"{PROBE_PREFIX}{uuid_module.uuid4().hex}"
        try:
            self.probe(payload)
        except Exception as exc:  # the database is away: the check is for later
            log.debug("LISTEN check not sent: %s", self.connector.describe_error(exc))
            return True
        deadline = time.monotonic() + PROBE_WAIT
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            payloads = watcher.wait(min(remaining, TURN))
            others = [other for other in payloads if other != payload]
            if others:
                self.deliver(others)
            if len(others) < len(payloads):
                return True
        if self._stop.is_set():
            return True
        self.holds = False
        log.warning("LISTEN does not hold on %s (a pooler in transaction mode?): new jobs "
                    "are found by polling; give --listen-url a direct or session-pool URL "
                    "(or QUEUEJOB_LISTEN_URL), or --no-listen to poll without this check",
                    self.where)
        if self.gave_up is not None:
            self.gave_up()
        return False
