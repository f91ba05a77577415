"""The interface every benchmarked system implements (one file per system).

Kept light on imports: the peers' worker processes import their system's module.
"""

from __future__ import annotations

import signal
from typing import Any


class System:
    """What a benchmarked job queue provides; one subclass per system.

    Every method may be a coroutine function. The jobs are module-level functions whose
    body is ``bench.counter.done()`` (no-op) or ``bench.counter.started(t)`` (latency).
    """

    name = "?"
    backend = "?"
    #: distributions whose versions are reported
    packages: tuple[str, ...] = ()
    #: the value of the worker's main knob (threads, concurrency, batch size);
    #: ``bench.harness --setting`` overrides it, to compare settings
    setting = ""
    #: what one worker process runs at once, and why; ``{setting}`` is replaced
    worker_setting = "?"
    notes = ""
    #: the batch enqueue API, or "" when the library has none
    bulk_api = ""
    #: the common workloads this system runs (a variant may run fewer)
    workloads: tuple[str, ...] = ("enqueue", "bulk", "process", "latency")
    #: workloads beyond the common ones
    extra_workloads: tuple[str, ...] = ()
    #: on PostgreSQL, the database whose server backends count as the system's CPU
    database = ""
    stop_signal = signal.SIGTERM
    stop_timeout = 15.0

    def setup(self) -> Any: ...

    def teardown(self) -> Any: ...

    def reset(self) -> Any:
        """Wipe all queue state (no worker runs)."""
        raise NotImplementedError

    def enqueue(self) -> Any:
        raise NotImplementedError

    def enqueue_bulk(self, count: int) -> Any:
        raise NotImplementedError

    def enqueue_latency(self, enqueued_at: float) -> Any:
        raise NotImplementedError

    def after_prefill(self) -> Any:
        """After the jobs of a processing run are queued, before workers start.
        PostgreSQL systems ANALYZE: the statistics autovacuum keeps on a live queue."""

    def worker_command(self) -> list[str]:
        """argv of one worker process (cwd and PYTHONPATH: the repository)."""
        raise NotImplementedError

    def info(self) -> Any:
        """Settings worth reporting (e.g. SQLite pragmas)."""
        return None

    def stats(self) -> Any:
        """A small sanity dict read from the backend after a measurement."""
        return None

    # -- bench.crash: kill -9 a worker inside a job ------------------------------------
    def default_worker_command(self) -> list[str]:
        """argv of one worker process with the system's own defaults, what a user gets
        (``bench.crash``; ``worker_command`` has the benchmark's tuned setting)."""
        raise NotImplementedError

    def enqueue_record(self, job_id: int, seconds: float) -> Any:
        """Queue one job that records its execution: ``bench.counter.record(job_id,
        seconds)``, or its async twin ``record_async`` (``bench.crash``)."""
        raise NotImplementedError

    def unfinished(self) -> Any:
        """How many jobs the queue still holds as to be run: queued, claimed, running
        or waiting for a retry (``bench.crash``). Read without side effects: no call
        that could trigger the system's own clean-up or recovery."""
        raise NotImplementedError
