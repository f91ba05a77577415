"""Helpers for tests: waiting on conditions, running workers, reading execution logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
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
    return db.run(lambda conn: db.store.load(conn, job_uuid))


def states(db: queuejob.Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for by_state in queuejob.operations.stats(db).values():
        for state, count in by_state.items():
            counts[state] = counts.get(state, 0) + count
    return counts


def run_burst(db: queuejob.Database, channels: str | None = None, **options: Any) -> None:
    queuejob.Worker(db, channels=channels, modules=["tests.jobs"], **options).run(burst=True)


class ThreadWorker:
    """A Worker running in a thread of the test process."""

    def __init__(self, db: queuejob.Database, channels: str | None = None, **options: Any
                 ) -> None:
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


def worker_command(db_url: str, *extra: str, channels: str | None = None) -> list[str]:
    """A worker process; without ``channels`` it declares no rule and runs 4 jobs at once."""
    rules = ["--channels", channels] if channels else []
    return [sys.executable, "-m", "queuejob", "worker", "--db", db_url, *rules,
            "--module", "tests.jobs", *extra]


def spawn_worker(db_url: str, env: dict[str, str], *extra: str, channels: str | None = None,
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


def claim(db: queuejob.Database, conn: Any, worker_id: str, tree: Any, running: Any,
          limit: int) -> list[dict[str, Any]]:
    """One claim for ``worker_id`` with its channel ``tree``, in the caller's transaction,
    as a worker's first claim does it."""
    from queuejob.worker.claim import Claimer
    return Claimer(db.store, worker_id, tree).claim(conn, running, limit)


def job_rows(db: queuejob.Database, state: str | None = None, func_name: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
    """Every column of the jobs (newest first), read with plain SQL: what the tests
    check, beyond what the read models show."""
    mark = "?" if db.dialect == "sqlite" else "%s"
    where, params = [], []
    if state is not None:
        where.append(f"state = {mark}")
        params.append(state)
    if func_name is not None:
        where.append(f"func_name = {mark}")
        params.append(func_name)
    text = ("SELECT * FROM queue_job" + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else ""))

    def read(conn: Any) -> list[dict[str, Any]]:
        cursor = db.connector.execute_sql(conn, text, params)
        names = [column[0] for column in cursor.description]
        return [_typed(db, dict(zip(names, values, strict=True)))
                for values in cursor.fetchall()]
    return db.read(read)


def _typed(db: queuejob.Database, row: dict[str, Any]) -> dict[str, Any]:
    """A raw row as the store hands rows over (aware times, uuids as text)."""
    if db.dialect == "sqlite":
        from queuejob.backends.sqlite import TIMESTAMPS, _from_epoch
        return {key: _from_epoch(value) if key in TIMESTAMPS and value is not None
                else value for key, value in row.items()}
    return {key: str(value) if isinstance(value, uuid.UUID) else value
            for key, value in row.items()}


def refused(result: Any) -> str:
    """The single stderr line of a refused command (click's Result; no traceback)."""
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("queuejob: error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]
