"""async def jobs, and waiting for a job's outcome."""

from __future__ import annotations

import threading

import pytest

from tests import jobs
from tests.helpers import ThreadWorker, executions, load, max_overlap, states, wait_until


def test_a_hundred_async_jobs_await_at_once_on_one_worker(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        uuids = jobs.async_sleep.delay_many(session, [("m", str(log), 1.0)] * 100)
    with ThreadWorker(db, channels="root:100", poll_interval=0.05) as thread_worker:
        wait_until(lambda: states(db) == {"done": 100}, timeout=60, message="all done")
        job_threads = len(thread_worker.worker.slots._threads._threads)
    runs = executions(log)
    assert len(runs) == 100
    assert max_overlap([(run[3], run[4]) for run in runs]) == 100
    assert job_threads == 0  # no job thread was needed
    assert load(db, uuids[0]).result == "slept 1.0"


def test_async_jobs_follow_the_rules_of_retries_and_timeouts(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        retried = jobs.async_retry_then_fail.delay(session, "m", max_retries=3)
        timed_out = jobs.async_sleep.delay(session, "m", str(log), 30, timeout=0.2,
                                           max_retries=1)
    with ThreadWorker(db, channels="root:4", poll_interval=0.05):
        wait_until(lambda: load(db, retried).state == "failed"
                   and load(db, timed_out).state == "failed", timeout=30, message="failed")
    assert "Max. retries (3) reached: async not yet" in load(db, retried).exc_info
    assert "timed out after 0.2 s" in load(db, timed_out).exc_info
    assert executions(log) == []  # cancelled at its await


def test_calling_an_async_job_function_gives_its_coroutine(tmp_path):
    import asyncio
    import types
    session = types.SimpleNamespace(context={"job_uuid": "direct"},
                                    job=types.SimpleNamespace(retry=0))
    coroutine = jobs.async_sleep(session, "m", str(tmp_path / "log"), 0)
    assert asyncio.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == "slept 0"


def test_wait_returns_the_outcome_once_a_worker_ends_the_job(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 20, 22)
        failing = jobs.fail.delay(session, "m", "no luck")
    with ThreadWorker(db, poll_interval=5):
        status = db.wait(job_uuid, timeout=20)
        failed = db.wait(failing, timeout=20)
    assert (status.state, status.result) == ("done", "42")
    assert failed.state == "failed" and "no luck" in failed.exc_info


def test_wait_times_out_and_says_so(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 1, eta=3600)
    with pytest.raises(TimeoutError, match="still pending"):
        db.wait(job_uuid, timeout=0.3)


def test_wait_wakes_on_the_outcome_not_on_a_poll(db):
    """A waiter started before the job is run sees its outcome as it is written."""
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, eta=3600)
    seen = {}
    waiter = threading.Thread(target=lambda: seen.update(status=db.wait(job_uuid, timeout=30)))
    waiter.start()
    with db.session() as session:
        from queuejob import set_done
        set_done(session, job_uuid)
    waiter.join(30)
    assert seen["status"].state == "done"
