"""Helpers of the reliability suite: seeds, worker processes, raw SQL, job rows."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

import queuejob
from tests.helpers import job_rows, spawn_worker

SEED_VARIABLE = "QUEUEJOB_TEST_SEED"

#: test settings: a worker silent for 2 s is dead (the real defaults: 5 s, 30 s, 10 s).
#: Not shorter: a process of this shared 2-core machine can stall for a second (a
#: checkpoint's fsync, the scheduler), and a live worker would then look dead.
HEARTBEAT, DEAD_AFTER, RESCUE_INTERVAL = 0.25, 2.0, 0.25
FAST = ("--heartbeat", str(HEARTBEAT), "--dead-after", str(DEAD_AFTER),
        "--rescue-interval", str(RESCUE_INTERVAL), "--poll", "0.05")
#: even faster, for tests where a freshly started worker must rescue at once
VERY_FAST = ("--heartbeat", "0.1", "--dead-after", "0.5", "--rescue-interval", "0.1",
             "--poll", "0.05")
MODULES = ("--module", "tests.reliability.jobs")


def seeded(name: str) -> random.Random:
    """A random generator whose seed is printed (and taken from QUEUEJOB_TEST_SEED to
    replay a run)."""
    given = os.environ.get(SEED_VARIABLE)
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    print(f"{name}: seed {seed} (replay with {SEED_VARIABLE}={seed})")
    return random.Random(seed)


def spawn(db_url: str, env: dict[str, str], *extra: str, channels: str | None = None,
          log: Path | None = None) -> subprocess.Popen:
    """A ``queuejob worker`` process running tests.jobs and tests.reliability.jobs."""
    return spawn_worker(db_url, env, *MODULES, *extra, channels=channels, log=log)


def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    os.killpg(process.pid, sig)


def freeze(process: subprocess.Popen, db: queuejob.Database, timeout: float = 20.0) -> None:
    """SIGSTOP ``process`` at a moment it holds no write lock of a SQLite database: one
    frozen inside a write transaction (a heartbeat, a service's look) holds every other
    writer back for as long as it stays frozen, SQLite's single writer, which is not what
    the tests of pauses are about. On PostgreSQL, at once."""
    deadline = time.monotonic() + timeout
    while True:
        kill(process, signal.SIGSTOP)
        if db.dialect != "sqlite" or _write_lock_free(db.connector.path):
            return
        kill(process, signal.SIGCONT)
        assert time.monotonic() < deadline, "the process held the write lock throughout"
        time.sleep(0.01)  # let it finish its transaction, then freeze it again


def _write_lock_free(path: str) -> bool:
    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def sql(db: queuejob.Database, text: str, params: Any = ()) -> list[tuple]:
    """Run SQL written with ``?`` placeholders on either backend, in a transaction of
    its own; the rows it returns, as tuples."""
    if db.dialect == "postgresql":
        text = text.replace("?", "%s")

    def run(conn: Any) -> list[tuple]:
        cursor = db.connector.execute_sql(conn, text, params)
        if cursor.description is None:
            return []
        return [tuple(row) for row in cursor.fetchall()]
    return db.run(run)


def rows(db: queuejob.Database) -> dict[str, dict[str, Any]]:
    """Every job row, by uuid."""
    return {row["uuid"]: row for row in job_rows(db, limit=10**7)}


def state_counts(db: queuejob.Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows(db).values():
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def tolerant(function: Any) -> Any:
    """``function()``, or None while the database is away (a restart in progress)."""
    try:
        return function()
    except (psycopg.Error, OSError):
        return None


def worker_ids(db: queuejob.Database, hostname: str) -> list[str]:
    return [row["id"] for row in queuejob.operations.workers(db)
            if row["hostname"] == hostname]


def age_heartbeat(db: queuejob.Database, worker_id: str, seconds: float) -> None:
    """Make a worker's last heartbeat ``seconds`` older (a worker that went silent)."""
    if db.dialect == "sqlite":
        sql(db, "UPDATE queue_worker SET heartbeat = heartbeat - ? WHERE id = ?",
            (seconds, worker_id))
    else:
        sql(db, "UPDATE queue_worker SET heartbeat = heartbeat - make_interval(secs => ?) "
                "WHERE id = ?", (seconds, worker_id))


def read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


RESCUED = re.compile(r"rescued (\d+) job\(s\) of dead workers")


def rescued_in_logs(*paths: Path) -> int:
    return sum(int(count) for path in paths for count in RESCUED.findall(read_log(path)))


def wait_exit(process: subprocess.Popen, timeout: float) -> int:
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker {process.pid} still running after {timeout}s") from None


def row(db: queuejob.Database, job_uuid: str) -> dict[str, Any] | None:
    """A job's row, read without taking SQLite's write lock."""
    return db.read(lambda conn: db.store.load(conn, job_uuid))


FULL_VARIABLE = "QUEUEJOB_RELIABILITY_FULL"


def scaled(ci: int, full: int) -> int:
    """A trial or job count: small in CI, the issue's full size with
    QUEUEJOB_RELIABILITY_FULL=1 (``python -m bench.soak --tests`` sets it)."""
    return full if os.environ.get(FULL_VARIABLE) == "1" else ci
