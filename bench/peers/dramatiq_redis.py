"""Dramatiq with its Redis broker.

Client: ``actor.send()``; dramatiq has no batch enqueue API (``group`` sends one message
at a time). Worker: ``dramatiq bench.peers.dramatiq_redis --processes 1 --threads 8``:
one process (the CLI's default is one per CPU), 8 worker threads (the default), default
middleware, no result backend.

``bench.crash`` runs ``dramatiq bench.peers.dramatiq_redis --processes 1``: its defaults
(8 threads) but for one process instead of one per CPU, so that one worker is one process
as for every system.
"""

from __future__ import annotations

import sys

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench import config, counter
from bench.system import System

URL = config.redis_url(1)

broker = RedisBroker(url=URL)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench")
def noop() -> None:
    counter.done()


@dramatiq.actor(queue_name="bench")
def latency(enqueued_at: float) -> None:
    counter.started(enqueued_at)


@dramatiq.actor(queue_name="bench")
def record(job_id: int, seconds: float) -> None:
    counter.record(job_id, seconds)


class DramatiqRedis(System):
    name = "dramatiq-redis"
    backend = "redis"
    packages = ("dramatiq", "redis")
    setting = "8"
    worker_setting = "1 process (--processes 1), --threads {setting} (the default)"
    notes = "RedisBroker, default middleware, actor.send()"

    def setup(self) -> None:
        broker.client.ping()

    def reset(self) -> None:
        broker.client.flushdb()

    def enqueue(self) -> None:
        noop.send()

    def enqueue_latency(self, enqueued_at: float) -> None:
        latency.send(enqueued_at)

    def worker_command(self) -> list[str]:
        return [sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_redis",
                "--processes", "1", "--threads", self.setting]

    def default_worker_command(self) -> list[str]:
        return [sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_redis",
                "--processes", "1"]

    def enqueue_record(self, job_id: int, seconds: float) -> None:
        record.send(job_id, seconds)

    def unfinished(self) -> int:
        # a message stays in its queue's hash until acknowledged (queued, prefetched or
        # running), delayed ones (retries) in the .DQ queue's; read straight from Redis,
        # not through the broker, whose commands may run its maintenance (the requeue of
        # dead workers' messages)
        client = broker.client
        return (client.hlen("dramatiq:bench.msgs")
                + client.hlen("dramatiq:bench.DQ.msgs"))

    def stats(self) -> dict[str, int]:
        return {"queued": broker.client.llen("dramatiq:bench")}
