"""Helpers for tests: waiting on conditions, running workers, reading execution logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import queuejob

ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02,
               message: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def load(db: queuejob.Database, job_uuid: str) -> queuejob.Job:
    with db.session() as session:
        return queuejob.DatabaseJobStorage(session).load(job_uuid)


def row(db: queuejob.Database, job_uuid: str) -> dict[str, Any]:
    return db.run(lambda conn: db.manager.load(conn, job_uuid))


def states(db: queuejob.Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for by_state in queuejob.operations.stats(db).values():
        for state, count in by_state.items():
            counts[state] = counts.get(state, 0) + count
    return counts


def run_burst(db: queuejob.Database, channels: str = "root:4", **options: Any) -> None:
    queuejob.Worker(db, channels=channels, modules=["tests.jobs"], **options).run(burst=True)


class ThreadWorker:
    """A Worker running in a thread of the test process."""

    def __init__(self, db: queuejob.Database, channels: str = "root:4", **options: Any) -> None:
        options.setdefault("modules", ["tests.jobs"])
        self.worker = queuejob.Worker(db, channels=channels, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> ThreadWorker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 15.0) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error:
            raise self.error


def worker_command(db_url: str, *extra: str, channels: str = "root:4") -> list[str]:
    return [sys.executable, "-m", "queuejob", "worker", "--db", db_url, "--channels", channels,
            "--module", "tests.jobs", *extra]


def spawn_worker(db_url: str, env: dict[str, str], *extra: str, channels: str = "root:4",
                 log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(worker_command(db_url, *extra, channels=channels), env=env,
                                cwd=ROOT, stdout=out, stderr=out, start_new_session=True)
    finally:
        if log:
            out.close()


def stop_process(process: subprocess.Popen, timeout: float = 20.0) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


def executions(path: Path) -> list[tuple[str, int, int, float, float]]:
    """Lines logged by tests.jobs.log_execution: (uuid, attempt, pid, start, end)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        job_uuid, attempt, pid, start, end = line.split()
        out.append((job_uuid, int(attempt), int(pid), float(start), float(end)))
    return out


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda event: (event[0], event[1]))
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best
