"""RQ (Redis).

Client: ``Queue.enqueue``; bulk: ``Queue.enqueue_many`` with ``Queue.prepare_data``
(one pipeline per batch). Worker: ``rq worker --worker-class rq.SimpleWorker``: RQ's
documented worker that runs jobs in its own process; the default ``rq.Worker`` forks a
work horse per job and is several times slower with no-op jobs. One job at a time
either way; results kept 500 s (the default).

``bench.crash`` runs its defaults: ``rq worker`` (``rq.Worker``, a work horse forked per
job).
"""

from __future__ import annotations

import sys

from redis import Redis
from rq import Queue
from rq.registry import (
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from bench import config, counter
from bench.system import System

URL = config.redis_url(0)
QUEUE = "bench"


def noop() -> None:
    counter.done()


def latency(enqueued_at: float) -> None:
    counter.started(enqueued_at)


def record(job_id: int, seconds: float) -> None:
    counter.record(job_id, seconds)


class RQ(System):
    name = "rq"
    backend = "redis"
    packages = ("rq", "redis")
    setting = "rq.SimpleWorker"
    worker_setting = "1 process, one job at a time, --worker-class {setting}"
    notes = "enqueue_many + prepare_data for bulk"
    bulk_api = "Queue.enqueue_many"

    def setup(self) -> None:
        self.redis = Redis.from_url(URL)
        self.redis.ping()
        self.queue = Queue(QUEUE, connection=self.redis)

    def teardown(self) -> None:
        self.redis.close()

    def reset(self) -> None:
        self.redis.flushdb()

    def enqueue(self) -> None:
        self.queue.enqueue(noop)

    def enqueue_bulk(self, count: int) -> None:
        self.queue.enqueue_many([Queue.prepare_data(noop) for _ in range(count)])

    def enqueue_latency(self, enqueued_at: float) -> None:
        self.queue.enqueue(latency, enqueued_at)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "rq.cli", "worker", "--url", URL,
                "--worker-class", self.setting, QUEUE]

    def default_worker_command(self) -> list[str]:
        return [sys.executable, "-m", "rq.cli", "worker", "--url", URL, QUEUE]

    def enqueue_record(self, job_id: int, seconds: float) -> None:
        self.queue.enqueue(record, job_id, seconds)

    def unfinished(self) -> int:
        # raw sizes: a registry's count() runs its clean-up, which would move abandoned
        # jobs on (to the failed registry, or back to the queue with retries left)
        started = StartedJobRegistry(queue=self.queue)
        scheduled = ScheduledJobRegistry(queue=self.queue)
        return (self.redis.llen(self.queue.key) + self.redis.zcard(started.key)
                + self.redis.zcard(scheduled.key))

    def stats(self) -> dict[str, int]:
        return {"queued": self.queue.count,
                "finished": FinishedJobRegistry(QUEUE, connection=self.redis).count}
