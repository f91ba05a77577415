"""Huey with ``SqliteHuey`` (one SQLite file, no server).

Client: calling a ``@huey.task()`` function enqueues it; huey has no batch enqueue API.
``SqliteHuey`` defaults: WAL journal, SQLite's default ``synchronous`` (FULL), results
stored (a ``None`` result is not). Worker: ``huey_consumer bench.peers.huey_sqlite.huey
-w 4 -k thread``: 4 worker threads (the default is 1; 4 drained no-op jobs faster with
one consumer on this machine), the consumer's default polling (0.1 s first delay,
backoff x1.15 up to 10 s).

``bench.crash`` runs its defaults: ``huey_consumer bench.peers.huey_sqlite.huey`` (one
worker thread).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from huey import SqliteHuey

from bench import config, counter
from bench.system import System

PATH = config.workdir() / "huey-bench.db"

huey = SqliteHuey(name="bench", filename=str(PATH))


@huey.task()
def noop() -> None:
    counter.done()


@huey.task()
def latency(enqueued_at: float) -> None:
    counter.started(enqueued_at)


@huey.task()
def record(job_id: int, seconds: float) -> None:
    counter.record(job_id, seconds)


class HueySqlite(System):
    name = "huey-sqlite"
    backend = "sqlite"
    packages = ("huey",)
    setting = "4"
    worker_setting = "1 process, -w {setting} -k thread (worker threads; default 1)"
    notes = "SqliteHuey defaults (WAL, synchronous FULL); the consumer polls the table"
    stop_signal = signal.SIGINT  # huey's graceful shutdown

    def reset(self) -> None:
        huey.storage.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            PATH.with_name(PATH.name + suffix).unlink(missing_ok=True)
        huey.storage.initialize_schema()

    def enqueue(self) -> None:
        noop()

    def enqueue_latency(self, enqueued_at: float) -> None:
        latency(enqueued_at)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "huey.bin.huey_consumer", "bench.peers.huey_sqlite.huey",
                "-w", self.setting, "-k", "thread"]

    def default_worker_command(self) -> list[str]:
        return [sys.executable, "-m", "huey.bin.huey_consumer", "bench.peers.huey_sqlite.huey"]

    def enqueue_record(self, job_id: int, seconds: float) -> None:
        record(job_id, seconds)

    def unfinished(self) -> int:
        # a task leaves the table when a consumer takes it (no acknowledgement)
        return huey.pending_count() + huey.scheduled_count()

    def info(self) -> dict[str, Any]:
        with huey.storage.db() as cursor:
            journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            sync = cursor.execute("PRAGMA synchronous").fetchone()[0]
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {"journal_mode": journal, "synchronous": names.get(sync, sync)}

    def stats(self) -> dict[str, int]:
        return {"pending": huey.pending_count()}
