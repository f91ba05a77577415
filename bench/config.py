"""Where the benchmark's servers and scratch files are (standard library only).

``bench.compare`` starts the servers and passes their addresses to every process it
starts through the environment; the peers' modules read them here at import time, in
the client and in their worker processes alike.

* ``QUEUEJOB_BENCH_PG``     base URL of the PostgreSQL server, without a database name
* ``QUEUEJOB_BENCH_REDIS``  base URL of the Redis server, without a database number
* ``QUEUEJOB_BENCH_WORK``   scratch folder (SQLite files, counter files, worker logs);
                            default ``bench/results/tmp``
* ``QUEUEJOB_BENCH_TOKEN``  marks the worker processes of one benchmark run, so that
                            leftovers of a killed run can be found and stopped
"""

from __future__ import annotations

import os
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def workdir() -> Path:
    path = Path(os.environ.get("QUEUEJOB_BENCH_WORK") or BENCH / "results" / "tmp")
    path.mkdir(parents=True, exist_ok=True)
    return path


def pg_url(database: str) -> str:
    base = os.environ.get("QUEUEJOB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
    return f"{base.rstrip('/')}/{database}"


def redis_url(number: int) -> str:
    base = os.environ.get("QUEUEJOB_BENCH_REDIS", "redis://127.0.0.1:6379")
    return f"{base.rstrip('/')}/{number}"
