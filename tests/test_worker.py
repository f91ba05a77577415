"""The worker: outcomes of jobs, order, etas, channels, sessions, shutdown."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest

import queuejob
from queuejob import RETRY_INTERVAL
from queuejob.worker.claim import RECHECK_INTERVAL
from tests import jobs
from tests.helpers import (
    ThreadWorker,
    executions,
    job_rows,
    load,
    max_overlap,
    row,
    run_burst,
    states,
    wait_until,
)

# the core cases, on PostgreSQL a second time through PgBouncer in transaction mode
pytestmark = pytest.mark.through_pgbouncer


def delay(db, func, *args, **kwargs):
    with db.session() as session:
        return func.delay(session, "a.model", *args, **kwargs)


def seconds_until(value: dt.datetime) -> float:
    return (value - dt.datetime.now(dt.UTC)).total_seconds()


# -- outcomes ----------------------------------------------------------------------------
def test_a_job_runs_and_its_return_value_is_its_result(db):
    job_uuid = delay(db, jobs.add, 2, 3)
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result, job.retry, job.exc_info) == ("done", "5", 1, None)
    assert job.date_started and job.date_done and job.date_enqueued
    assert job.date_created <= job.date_started <= job.date_done


def test_retryable_error_postpones_by_the_retry_pattern(db):
    job_uuid = delay(db, jobs.always_retry)
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.retry, job.result) == ("pending", 1, "not yet")
    assert 55 < seconds_until(job.eta) <= 60  # pattern {1: 60, ...}


def test_retryable_error_with_seconds_and_without_pattern(db):
    explicit = delay(db, jobs.always_retry, seconds=30)
    zero = delay(db, jobs.retry_then_succeed, 5, eta=None)
    run_burst(db)
    assert 25 < seconds_until(load(db, explicit).eta) <= 30
    # retry_then_succeed raises with seconds=0.01: a tiny delay, not the interval
    assert seconds_until(load(db, zero).eta) < 1
    job = queuejob.Job(func=jobs.fail)
    job.retry = 1
    assert job.retry_seconds(0) == RETRY_INTERVAL


def test_ignore_retry_does_not_count_the_attempt(db):
    job_uuid = delay(db, jobs.always_retry, seconds=60, ignore_retry=True)
    run_burst(db)
    assert load(db, job_uuid).retry == 0


def test_max_retries_counts_attempts_then_fails(db):
    job_uuid = delay(db, jobs.retry_then_succeed, 99, max_retries=3)
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: load(db, job_uuid).state == "failed", message="job failed")
    job = load(db, job_uuid)
    assert job.retry == 3
    assert "FailedJobError: Max. retries (3) reached: attempt 3" in job.exc_info


def test_retried_job_succeeds_on_a_later_attempt(db, tmp_path):
    job_uuid = delay(db, jobs.retry_then_succeed, 2)
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: load(db, job_uuid).state == "done", message="job done")
    job = load(db, job_uuid)
    assert (job.retry, job.result) == (3, "succeeded at attempt 3")


def test_max_retries_zero_retries_forever(db):
    job_uuid = delay(db, jobs.retry_then_succeed, 7, max_retries=0)
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: load(db, job_uuid).state == "done", message="job done")
    assert load(db, job_uuid).retry == 8


def test_nothing_to_do_ends_done_with_its_message(db):
    job_uuid = delay(db, jobs.nothing_to_do)
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result) == ("done", "already exported")


def test_any_other_exception_fails_at_once_with_its_traceback(db):
    failing = delay(db, jobs.fail, "kaboom")
    hard = delay(db, jobs.fail_hard)
    run_burst(db)
    job = load(db, failing)
    assert (job.state, job.retry) == ("failed", 1)
    assert "Traceback" in job.exc_info and "ValueError: kaboom" in job.exc_info
    assert load(db, hard).state == "failed"
    assert "FailedJobError: gave up" in load(db, hard).exc_info


def test_an_unregistered_function_fails_and_the_worker_goes_on(db):
    job_uuid = delay(db, jobs.add, 1, 1)
    good = delay(db, jobs.add, 2, 2)
    for name in ("os.system", "builtins.eval", "tests.jobs.not_a_job", "no.such.module.fn"):
        db.run(lambda conn, name=name: db.connector.execute_sql(
            conn, "UPDATE queue_job SET func_name = " + ("?" if db.dialect == "sqlite" else "%s")
            + " WHERE uuid = " + ("?" if db.dialect == "sqlite" else "%s"), (name, job_uuid)))
        db.run(lambda conn: db.connector.execute_sql(
            conn, "UPDATE queue_job SET state = 'pending' WHERE uuid = "
            + ("?" if db.dialect == "sqlite" else "%s"), (job_uuid,)))
        run_burst(db)
        job = row(db, job_uuid)
        assert job["state"] == "failed"
        assert f"{name} is not registered as a job" in job["exc_info"]
    assert load(db, good).state == "done"


def test_a_worker_runs_only_the_functions_of_its_modules(db):
    job_uuid = delay(db, jobs.add, 1, 1)
    queuejob.Worker(db, channels="root:2", modules=["queuejob.cli.demo_jobs"]).run(burst=True)
    job = row(db, job_uuid)
    assert job["state"] == "failed"
    assert "tests.jobs.add is not registered as a job" in job["exc_info"]


def test_a_corrupt_payload_fails_its_job_with_a_clear_message(db):
    corrupt = delay(db, jobs.add, 1, 1)
    good = delay(db, jobs.add, 2, 2)
    placeholder = "?" if db.dialect == "sqlite" else "%s"
    db.run(lambda conn: db.connector.execute_sql(
        conn, f"UPDATE queue_job SET args = {placeholder} WHERE uuid = {placeholder}",
        ('[1, {"__qj__": "object", "cls": "subprocess.Popen", "v": {}}]', corrupt)))
    run_burst(db)
    job = row(db, corrupt)
    assert job["state"] == "failed"
    assert job["exc_info"] == ("cannot decode the stored arguments: class 'subprocess.Popen' "
                               "in stored arguments is not whitelisted")
    assert load(db, good).state == "done"


def test_the_job_session_carries_user_context_and_uuid(db):
    with db.session(user_id=42, context={"lang": "fr"}) as session:
        job_uuid = jobs.echo_session.delay(session, "m")
    run_burst(db)
    assert load(db, job_uuid).result == repr((42, [("job_uuid", job_uuid), ("lang", "fr")]))


def test_related_action_of_a_loaded_job(db):
    job_uuid = delay(db, jobs.export_partner, 12)
    other_uuid = delay(db, jobs.add, 1, 1)
    with db.session() as session:
        job = queuejob.DatabaseJobStorage(session).load(job_uuid)
        assert job.related_action(session) == {"res_model": "a.model", "res_id": 12, "extra": 2}
        other = queuejob.DatabaseJobStorage(session).load(other_uuid)
        assert other.related_action(session) is None


# -- the job's own transaction ----------------------------------------------------------
def create_table(db, name="job_rows"):
    with db.session() as session:
        session.execute(f"CREATE TABLE {name} (value integer)")


def table_values(db, name="job_rows"):
    with db.session() as session:
        return sorted(r[0] for r in session.execute(f"SELECT value FROM {name}").fetchall())


def test_a_job_writes_commit_with_its_done_state(db):
    create_table(db)
    job_uuid = delay(db, jobs.write_row, "job_rows", 5)
    run_burst(db)
    assert load(db, job_uuid).state == "done"
    assert table_values(db) == [5]


def test_a_failing_job_writes_are_rolled_back(db):
    create_table(db)
    job_uuid = delay(db, jobs.write_row, "job_rows", 5, then_fail=True)
    run_burst(db)
    assert load(db, job_uuid).state == "failed"
    assert table_values(db) == []


def test_a_job_can_delay_another_job(db):
    parent = delay(db, jobs.delay_child)
    run_burst(db)
    child = load(db, parent).result
    assert load(db, child).state == "done" and load(db, child).result == "3"


# -- order, eta ---------------------------------------------------------------------------
def test_order_is_priority_then_creation(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        late = jobs.record.delay(session, "m", str(log), priority=20)
        first = jobs.record.delay(session, "m", str(log), priority=5)
        second = jobs.record.delay(session, "m", str(log), priority=10)
        third = jobs.record.delay(session, "m", str(log), priority=10)
    run_burst(db, channels="root:1")
    assert [line[0] for line in executions(log)] == [first, second, third, late]


def test_a_job_with_a_future_eta_waits(db, tmp_path):
    log = tmp_path / "log"
    waiting = delay(db, jobs.record, str(log), eta=1.0)
    now = delay(db, jobs.record, str(log), priority=50)
    run_burst(db)
    assert load(db, waiting).state == "pending"
    assert load(db, now).state == "done"
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: load(db, waiting).state == "done", message="eta job done")
    start = executions(log)[-1][3]
    assert start >= load(db, waiting).eta.timestamp()


def test_burst_returns_when_nothing_is_runnable(db):
    delay(db, jobs.add, 1, 1, eta=3600)
    started = time.monotonic()
    run_burst(db)
    assert time.monotonic() - started < 5
    assert states(db) == {"pending": 1}


# -- channels -----------------------------------------------------------------------------
def test_capacity_one_channel_never_overlaps(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        for _ in range(12):
            jobs.export.delay(session, "m", str(log), seconds=0.02)
        for _ in range(12):
            jobs.record.delay(session, "m", str(log), seconds=0.02)
    run_burst(db, channels="root:4,root.export:1")
    runs = executions(log)
    assert len(runs) == 24
    export_uuids = {row["uuid"] for row in job_rows(db) if row["channel"] == "root.export"}
    exports = [(start, end) for uuid_, _, _, start, end in runs if uuid_ in export_uuids]
    others = [(start, end) for uuid_, _, _, start, end in runs if uuid_ not in export_uuids]
    assert len(exports) == 12
    assert max_overlap(exports) == 1
    assert max_overlap(exports + others) <= 4
    assert max_overlap(others) > 1  # root's other slots did run in parallel


def test_a_subchannel_counts_against_its_ancestors(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        for _ in range(8):
            jobs.record.delay(session, "m", str(log), seconds=0.02, channel="root.a.x")
            jobs.record.delay(session, "m", str(log), seconds=0.02, channel="root.a.y")
    run_burst(db, channels="root:8,root.a:2,root.a.x:2,root.a.y:2")
    runs = executions(log)
    assert len(runs) == 16
    assert max_overlap([(start, end) for _, _, _, start, end in runs]) == 2


def test_an_unconfigured_channel_runs_in_its_nearest_configured_ancestor(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        for _ in range(6):
            jobs.record.delay(session, "m", str(log), seconds=0.02, channel="root.export.deep")
            jobs.export.delay(session, "m", str(log), seconds=0.02)
    run_burst(db, channels="root:4,root.export:1")
    runs = executions(log)
    assert len(runs) == 12
    assert max_overlap([(start, end) for _, _, _, start, end in runs]) == 1


def test_priority_competes_across_channels(db, tmp_path):
    """The issue's example: root:4,root.A:4,root.B:1; A1..A6 at 10, B1, B2 at 5."""
    log = tmp_path / "log"
    with db.session() as session:
        a_jobs = [jobs.record.delay(session, "m", str(log), 0.2, channel="root.A", priority=10)
                  for _ in range(6)]
        b_jobs = [jobs.record.delay(session, "m", str(log), 0.2, channel="root.B", priority=5)
                  for _ in range(2)]
    with ThreadWorker(db, channels="root:4,root.A:4,root.B:1") as thread_worker:
        thread_worker.worker.signals.wait("finished", 8, timeout=20)
    assert states(db) == {"done": 8}
    first_four = sorted(executions(log), key=lambda run: run[3])[:4]
    assert {run[0] for run in first_four} == {b_jobs[0], a_jobs[0], a_jobs[1], a_jobs[2]}


def _seconds(value) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def test_throttle_starts_one_job_every_n_seconds(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        uuids = [jobs.export.delay(session, "m", str(log)) for _ in range(4)]
    with ThreadWorker(db, channels="root:4,root.export:2:throttle=0.3",
                      poll_interval=0.05) as thread_worker:
        thread_worker.worker.signals.wait("finished", 4, timeout=20)
    assert states(db) == {"done": 4}
    # when each was claimed, by the database's clock (a job thread of a loaded machine
    # may begin its function a moment after its claim)
    starts = sorted(_seconds(row(db, uuid)["date_started"]) for uuid in uuids)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 0.29


def test_sequential_runs_one_at_a_time_in_order_and_blocks_on_failure(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        ordered = [jobs.seq_job.delay(session, "m", str(log)) for _ in range(4)]
        failing = jobs.seq_job.delay(session, "m", str(log), fail=True)
        after = [jobs.seq_job.delay(session, "m", str(log)) for _ in range(2)]
    run_burst(db, channels="root:4,root.seq:1:sequential")
    runs = executions(log)
    assert [run[0] for run in runs] == [*ordered, failing]
    assert max_overlap([(run[3], run[4]) for run in runs]) == 1
    assert load(db, failing).state == "failed"
    assert all(load(db, job_uuid).state == "pending" for job_uuid in after)
    with db.session() as session:
        queuejob.cancel(session, failing)
    run_burst(db, channels="root:4,root.seq:1:sequential")
    assert [run[0] for run in executions(log)][-2:] == after


def test_sequential_channel_does_not_let_a_later_job_pass_a_waiting_one(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        waiting = jobs.seq_job.delay(session, "m", str(log), eta=0.5)
        later = jobs.seq_job.delay(session, "m", str(log))
    with ThreadWorker(db, channels="root:4,root.seq:1:sequential",
                      poll_interval=0.05) as thread_worker:
        thread_worker.worker.signals.wait("finished", 2, timeout=20)
    assert states(db) == {"done": 2}
    assert [run[0] for run in executions(log)] == [waiting, later]


def test_a_sequential_channel_with_capacity_other_than_one_is_refused(db):
    with pytest.raises(ValueError, match="sequential"):
        queuejob.Worker(db, channels="root:4,root.seq:2:sequential")


@pytest.mark.parametrize("bad", ["root:x", "root:4,:2", "root.a:1:unknown=3", "root.a b:2",
                                 "root:-1", "root.a:1:paused=no"])
def test_a_malformed_channel_string_is_refused(db, bad):
    with pytest.raises(ValueError, match="bad channel"):
        queuejob.Worker(db, channels=bad)


# -- stopping -----------------------------------------------------------------------------
def test_stop_lets_running_jobs_finish_within_the_grace_period(db, tmp_path):
    log = tmp_path / "log"
    short = delay(db, jobs.record, str(log), 0.3)
    long = delay(db, jobs.record, str(log), 30)
    worker = ThreadWorker(db, grace_period=1.0).__enter__()
    wait_until(lambda: states(db).get("started") == 2, message="both started")
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 3
    assert load(db, short).state == "done"
    job = load(db, long)
    assert (job.state, job.retry) == ("pending", 0)
    assert states(db).get("started") is None


def test_a_second_stop_gives_running_jobs_back_at_once(db, tmp_path):
    log = tmp_path / "log"
    long = delay(db, jobs.record, str(log), 30)
    thread_worker = ThreadWorker(db, grace_period=60).__enter__()
    wait_until(lambda: states(db).get("started") == 1, message="started")
    started = time.monotonic()
    thread_worker.worker.stop()
    thread_worker.worker.stop()
    thread_worker.thread.join(10)
    assert not thread_worker.thread.is_alive()
    assert time.monotonic() - started < 3
    assert load(db, long).state == "pending"


def test_an_idle_worker_starts_a_new_job_quickly(db):
    with ThreadWorker(db, poll_interval=30):
        wait_until(lambda: db.run(db.reads.workers),
                   message="worker registered")
        job_uuid = delay(db, jobs.add, 1, 1)
        wait_until(lambda: load(db, job_uuid).state == "done", timeout=5,
                   message="job done well before the 30 s poll")


def test_workers_register_and_stop(db):
    with ThreadWorker(db):
        rows = wait_until(lambda: db.run(db.reads.workers), message="registered")
        assert rows[0]["state"] == "alive"
    rows = db.run(db.reads.workers)
    assert rows[0]["state"] == "stopped"


def test_in_process_start_stop_cycles_leak_no_threads(db):
    before = threading.active_count()
    for _ in range(5):
        with ThreadWorker(db):
            pass
    wait_until(lambda: threading.active_count() <= before, timeout=10,
               message="threads gone")


# -- timeouts -----------------------------------------------------------------------------
def test_a_job_over_its_timeout_is_stopped_and_retried_until_it_fails(db, tmp_path):
    log = tmp_path / "log"
    stuck = delay(db, jobs.spin, str(log), 60, timeout=0.2, max_retries=2)
    others = [delay(db, jobs.add, n, n) for n in range(5)]
    with ThreadWorker(db, channels="root:2", poll_interval=0.05):
        wait_until(lambda: load(db, stuck).state == "failed", timeout=30,
                   message="timed-out job failed")
        wait_until(lambda: all(load(db, u).state == "done" for u in others),
                   message="other jobs done")
    job = load(db, stuck)
    assert job.retry == 2
    assert "Max. retries (2) reached: timed out after 0.2 s" in job.exc_info
    assert executions(log) == []  # the CPU-bound loop never reached its end


def test_the_decorator_timeout_and_the_delay_override(db, tmp_path):
    log = tmp_path / "log"
    by_decorator = delay(db, jobs.slow_with_timeout, str(log), 1.0, max_retries=1)
    overridden = delay(db, jobs.slow_with_timeout, str(log), 0.5, timeout=5)
    assert load(db, by_decorator).timeout == 0.3
    with ThreadWorker(db, channels="root:4", poll_interval=0.05) as thread_worker:
        wait_until(lambda: load(db, by_decorator).state == "failed"
                   and load(db, overridden).state == "done", timeout=30,
                   message="outcomes")
        assert "timed out after 0.3 s" in load(db, by_decorator).exc_info
        # the abandoned thread gets JobTimeout when its sleep returns, and ends
        abandoned = thread_worker.worker.slots._threads._abandoned
        assert abandoned
        wait_until(lambda: not any(thread.is_alive() for thread in abandoned),
                   message="the abandoned thread ended")
    assert load(db, by_decorator).state == "failed"
    assert [run[0] for run in executions(log)] == [overridden]


def test_a_timed_out_slot_is_given_to_the_next_job_at_once(db, tmp_path):
    log = tmp_path / "log"
    delay(db, jobs.slow_with_timeout, str(log), 3.0, max_retries=1)
    quick = delay(db, jobs.add, 1, 2, priority=50)
    with ThreadWorker(db, channels="root:1", poll_interval=0.05):
        wait_until(lambda: load(db, quick).state == "done", timeout=2.5,
                   message="the next job ran while the timed-out one still sleeps")


# -- function settings stored in the database --------------------------------------------
def test_a_function_s_stored_channel_applies_to_jobs_delayed_afterwards(db):
    before = delay(db, jobs.export, "/dev/null")
    queuejob.operations.set_function(db, "tests.jobs.export", channel="root.other")
    after = delay(db, jobs.export, "/dev/null")
    explicit = delay(db, jobs.export, "/dev/null", channel="root.mine")
    with db.session() as session:
        one = jobs.export.delay_many(session, [("m", "/dev/null")])
        # streamed (COPY on PostgreSQL), the function's stored channel resolved by queuejob
        many = jobs.export.delay_many(session, [("m", "/dev/null"), ("m", "/dev/zero")])
        other = jobs.noop.delay_many(session, [("m",), ("m",)])
    assert [load(db, u).channel for u in (before, after, explicit, *one, *many)] == \
        ["root.export", "root.other", "root.mine", "root.other", "root.other", "root.other"]
    assert {load(db, u).channel for u in other} == {"root"}
    queuejob.operations.reset_function(db, "tests.jobs.export")  # back to the decorator
    assert load(db, delay(db, jobs.export, "/dev/null")).channel == "root.export"


def test_a_function_s_stored_retry_pattern_is_used_by_running_workers(db):
    job_uuid = delay(db, jobs.always_retry)
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: load(db, job_uuid).retry == 1, message="first attempt")
        assert 55 < seconds_until(load(db, job_uuid).eta) <= 60  # the decorator's {1: 60}
        queuejob.operations.set_function(db, "tests.jobs.always_retry",
                                          retry_pattern={1: 3000})
        # workers read stored settings a few times a second (RECHECK_INTERVAL): a job
        # that starts later than that sees the new pattern
        second = delay(db, jobs.always_retry, eta=RECHECK_INTERVAL + 0.5)
        wait_until(lambda: load(db, second).retry == 1, message="second job's first attempt")
    assert 2990 < seconds_until(load(db, second).eta) <= 3000
    listed = {row["name"]: row for row in queuejob.operations.functions(db)}
    assert listed["tests.jobs.always_retry"]["retry_pattern"] == {1: 3000}
    assert listed["tests.jobs.always_retry"]["retry_pattern_overridden"]


def test_an_emptied_configuration_table_does_not_stall_the_queue(db, tmp_path):
    """A TRUNCATE of every queue table (a reset by hand) leaves queue_config empty: jobs
    still run, and a configuration change afterwards is still seen by the workers."""
    db.run(lambda conn: db.connector.execute_sql(conn, "DELETE FROM queue_config"))
    log = tmp_path / "log"
    uuids = [delay(db, jobs.record, str(log)) for _ in range(30)]
    run_burst(db, channels="root:8")
    assert states(db) == {"done": 30}
    assert sorted(run[0] for run in executions(log)) == sorted(uuids)
    queuejob.operations.set_channel(db, "root", 1)
    with ThreadWorker(db, channels="root:8", poll_interval=0.05):
        later = [delay(db, jobs.record, str(log), seconds=0.05) for _ in range(4)]
        wait_until(lambda: all(load(db, u).state == "done" for u in later),
                   message="jobs delayed after the change")
    assert max_overlap([run[3:] for run in executions(log) if run[0] in later]) == 1


def test_a_worker_signals_what_it_claimed_finished_and_rescued(db):
    """Tests and embedding applications wait on what a worker did instead of polling."""
    with db.session() as session:
        uuids = [jobs.add.delay(session, "m", n, n) for n in range(5)]
    # a ghost worker's started job, for this worker's rescue
    ghost = claim_ghost(db)
    with ThreadWorker(db, channels="root:2", poll_interval=0.05, heartbeat_interval=0.1,
                      dead_after=0.5, rescue_interval=0.1) as thread_worker:
        signals = thread_worker.worker.signals
        assert signals.wait("rescued", 1, timeout=20) == 1
        assert signals.wait("finished", 6, timeout=20) >= 6
        assert signals.count("claimed") >= 6
        with pytest.raises(TimeoutError):
            signals.wait("rescued", 2, timeout=0.2)
        with pytest.raises(ValueError):
            signals.wait("lunch", 1, timeout=0.1)
    assert all(load(db, job_uuid).state == "done" for job_uuid in uuids)
    assert load(db, ghost).state == "done"


def claim_ghost(db):
    """A job started by a worker that died long ago."""
    from queuejob.core.channels import ChannelTree
    from tests.helpers import claim
    with db.session() as session:
        ghost = jobs.add.delay(session, "m", 1, 1, priority=0)
    db.run(lambda conn: db.store.register_worker(conn, "ghost", "nowhere", 1, "root:1"))
    [row] = db.run(lambda conn: claim(db, conn, "ghost", ChannelTree.from_string("root:1"),
                                      {}, 1))
    assert row["uuid"] == ghost
    db.run(lambda conn: db.connector.execute_sql(
        conn, "UPDATE queue_worker SET state = 'dead' WHERE id = 'ghost'"))
    return ghost
