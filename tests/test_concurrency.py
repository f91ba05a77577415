"""Several worker processes on one database: every job runs exactly once."""

from __future__ import annotations

from collections import Counter

import pytest

from tests import jobs
from tests.helpers import executions, spawn_worker, states, stop_process

pytestmark = pytest.mark.slow


def test_four_worker_processes_run_each_job_exactly_once(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    total = 20_000
    with db.session() as session:
        expected = {jobs.record.delay(session, None, str(log)) for _ in range(total)}
    workers = [spawn_worker(db_url, job_env, "--burst", log=tmp_path / f"worker{n}.log")
               for n in range(4)]
    try:
        for worker in workers:
            assert worker.wait(300) == 0
    finally:
        for worker in workers:
            stop_process(worker)
    runs = executions(log)
    counts = Counter(run[0] for run in runs)
    assert set(counts) == expected
    assert max(counts.values()) == 1
    assert len({run[2] for run in runs}) > 1, "more than one process took part"
    assert states(db) == {"done": total}
