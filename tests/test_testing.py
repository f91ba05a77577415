"""queuejob.testing: trapping delayed jobs, and running them at once."""

from __future__ import annotations

import datetime as dt

import pytest

from queuejob import chain, group, identity_exact
from queuejob.operations import load_job
from queuejob.testing import NO_DELAY_ENV, NO_DELAY_KEY, JobCall, JobCounter, trap_jobs
from tests import jobs
from tests.helpers import executions, states


def order_export(session, partner_id):
    """Application code under test: delays two jobs."""
    jobs.add.delay(session, "res.partner", partner_id, 1, priority=5)
    jobs.export.delay(session, "res.partner", "/dev/null", channel="root.crm")


def test_trap_catches_delayed_jobs_and_stores_nothing(db):
    with trap_jobs() as trap, db.session(user_id=4) as session:
        order_export(session, 42)
        trap.assert_jobs_count(2)
        trap.assert_jobs_count(1, only=jobs.add)
        job = trap.assert_enqueued_job(jobs.add, args=("res.partner", 42, 1),
                                       properties={"priority": 5})
        assert job.user_id == 4
        trap.assert_enqueued_job(jobs.export, properties={"channel": "root.crm"})
        with pytest.raises(AssertionError, match="no delayed job"):
            trap.assert_enqueued_job(jobs.add, args=("res.partner", 43, 1))
        with pytest.raises(AssertionError, match="expected 3"):
            trap.assert_jobs_count(3)
    assert states(db) == {}


def test_trap_performs_jobs_in_graph_order(db, tmp_path):
    log = tmp_path / "log"
    with trap_jobs() as trap, db.session() as session:
        j = [jobs.record.delayable(session, "m", str(log)) for _ in range(6)]
        group(chain(j[0], j[1]), chain(j[2], j[3])).on_done(chain(j[4], j[5])).delay()
        parent = jobs.delay_child.delayable(session, "m")  # delays a job when run
        parent.delay()
        trap.assert_jobs_count(7)
        trap.perform_enqueued_jobs()
        trap.assert_jobs_count(1, only=jobs.add)  # delayed by delay_child, trapped, run
    ran = [run[0] for run in executions(log)]
    position = {job_uuid: index for index, job_uuid in enumerate(ran)}
    uuid = [d.uuid for d in j]
    assert position[uuid[1]] > position[uuid[0]] and position[uuid[3]] > position[uuid[2]]
    assert position[uuid[4]] > max(position[uuid[1]], position[uuid[3]])
    assert position[uuid[5]] > position[uuid[4]]
    assert states(db) == {}


def test_trap_raises_the_exception_of_a_job(db):
    with trap_jobs() as trap, db.session() as session:
        jobs.fail.delay(session, "m", "exploded")
        with pytest.raises(ValueError, match="exploded"):
            trap.perform_enqueued_jobs()


def test_no_delay_context_key_runs_the_job_at_once(db, tmp_path):
    log = tmp_path / "log"
    with db.session(context={NO_DELAY_KEY: True}) as session:
        jobs.record.delay(session, "m", str(log))
        jobs.add.delay_many(session, [("m", 1, 1)])
    assert len(executions(log)) == 1
    assert states(db) == {}


def test_no_delay_environment_variable(db, tmp_path, monkeypatch):
    log = tmp_path / "log"
    monkeypatch.setenv(NO_DELAY_ENV, "1")
    with db.session() as session:
        a, b = (jobs.record.delayable(session, "m", str(log)) for _ in range(2))
        b.on_done(a).delay()
    assert [run[0] for run in executions(log)] == [b.uuid, a.uuid]
    assert states(db) == {}


# -- identity keys, calls and counts --------------------------------------------------------
def test_a_job_whose_identity_key_is_trapped_is_a_call_but_not_a_trapped_job(db):
    with trap_jobs() as trap, db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key="k")
        second = jobs.add.delay(session, "m", 5, 5, identity_key="k", priority=1)
        other = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact)
        again = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact)
        many = jobs.add.delay_many(session, [("m", 7, 7), ("m", 8, 8)], identity_key="k2")
        assert second == first and again == other and other != first
        assert many[0] == many[1] and many[0] not in (first, other)
        assert trap.jobs_count() == 3 and len(trap.enqueued_jobs) == 3
        assert [job.uuid for job in trap.enqueued_jobs] == [first, other, many[0]]
        assert [call.args for call in trap.calls] == [
            ("m", 1, 2), ("m", 5, 5), ("m", 1, 2), ("m", 1, 2), ("m", 7, 7), ("m", 8, 8)]
        assert trap.calls[1].properties["priority"] == 1
        trap.assert_jobs_count(3)
        with pytest.raises(AssertionError, match="no delayed job"):
            trap.assert_enqueued_job(jobs.add, args=("m", 5, 5))
    assert states(db) == {}


def test_a_performed_job_holds_its_identity_key_no_more(db):
    with trap_jobs() as trap, db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key="k")
        trap.perform_enqueued_jobs()
        assert trap.enqueued_jobs[0].result == 3
        later = jobs.add.delay(session, "m", 1, 2, identity_key="k")
        assert later != first and trap.jobs_count() == 2
        assert jobs.add.delay(session, "m", 1, 2, identity_key="k") == later


def test_calls_record_the_function_arguments_and_properties(db):
    eta = dt.datetime(2031, 1, 2, tzinfo=dt.UTC)
    with trap_jobs() as trap, db.session() as session:
        jobs.export.delay(session, "res.partner", "/tmp/x", seconds=1.5, priority=3, eta=eta,
                          max_retries=2, identity_key="key", timeout=4)
        (call,) = trap.calls
    assert call == JobCall(jobs.export, ("res.partner", "/tmp/x"), {"seconds": 1.5}, {
        "priority": 3, "eta": eta, "max_retries": 2,
        "description": "Export: logs its execution (channel root.export).",
        "channel": "root.export", "identity_key": "key", "timeout": 4.0,
        "concurrency_key": ""})
    assert call.func is jobs.export
    trap.clear()
    assert trap.calls == [] and trap.jobs_count() == 0


def test_jobs_count_counts_the_jobs_of_one_function(db):
    with trap_jobs() as trap, db.session() as session:
        order_export(session, 42)
        jobs.add.delay(session, "m", 3, 3)
        assert (trap.jobs_count(), trap.jobs_count(only=jobs.add),
                trap.jobs_count(only=jobs.export), trap.jobs_count(only="tests.jobs.add"),
                trap.jobs_count(only=jobs.fail)) == (3, 2, 1, 2, 0)


def test_a_trapped_graph_honours_identity_keys_as_the_database_does(db):
    """The scenario of test_graphs' test_a_graph_is_skipped_only_when_every_keyed_job_exists,
    trapped."""
    with trap_jobs() as trap, db.session() as session:
        held = jobs.add.delay(session, "m", 1, 1, identity_key="k1", eta=3600)
        a = jobs.add.delayable(session, "m", 1, 1, identity_key="k1")
        b = jobs.add.delayable(session, "m", 2, 2, identity_key="k2")
        a.on_done(b).delay()
        assert a.uuid == held and b.uuid != held
        # b waits for the job that stands in for a
        (trapped_b,) = [t for t in trap.trapped if t.job.uuid == b.uuid]
        assert [parent.job.uuid for parent in trapped_b.parents] == [held]
        a2 = jobs.add.delayable(session, "m", 1, 1, identity_key="k1")
        b2 = jobs.add.delayable(session, "m", 2, 2, identity_key="k2")
        unkeyed = jobs.add.delayable(session, "m", 3, 3)
        chain(a2, b2, unkeyed).delay()
        assert (a2.uuid, b2.uuid, unkeyed.uuid) == (held, b.uuid, None)
        assert trap.jobs_count() == 2 and len(trap.calls) == 6
        trap.perform_enqueued_jobs()
        assert [job.result for job in trap.enqueued_jobs] == [2, 4]
    assert states(db) == {}


def test_a_job_of_a_trapped_graph_can_stand_in_for_a_later_one(db, tmp_path):
    log = tmp_path / "log"
    with trap_jobs() as trap, db.session() as session:
        first = jobs.record.delayable(session, "m", str(log), identity_key="same")
        twin = jobs.record.delayable(session, "m", str(log), identity_key="same")
        after = jobs.record.delayable(session, "m", str(log))
        chain(first, twin, after).delay()
        assert twin.uuid == first.uuid and after.uuid not in (None, first.uuid)
        assert trap.jobs_count() == 2
        trapped_after = trap.trapped[1]
        assert [parent.job.uuid for parent in trapped_after.parents] == [first.uuid]
        trap.perform_enqueued_jobs()
    assert [run[0] for run in executions(log)] == [first.uuid, after.uuid]


def test_the_job_counter_counts_what_is_created_after_it(db, monkeypatch):
    monkeypatch.setattr(JobCounter, "PAGE", 2)  # several pages of jobs
    with db.session() as session:
        old = [jobs.add.delay(session, "m", n, n) for n in range(3)]
    counter = JobCounter(db)
    assert (counter.count_all(), counter.count_created(), counter.count_existing()) == (3, 0, 3)
    assert counter.search_created() == []
    with db.session() as session:
        new = [jobs.add.delay(session, "m", n, 1) for n in range(3)]
        new.append(jobs.export.delay(session, "m", "/dev/null"))
        assert counter.count_created() == 0  # not committed yet
    with pytest.raises(RuntimeError), db.session() as session:
        jobs.add.delay(session, "m", 9, 9)
        raise RuntimeError("rolled back: never counted")
    with db.session() as session:
        placeholder = "?" if db.dialect == "sqlite" else "%s"
        session.execute(f"DELETE FROM queue_job WHERE uuid = {placeholder}", (old[0],))
    assert (counter.count_all(), counter.count_created(), counter.count_existing()) == (6, 4, 2)
    created = counter.search_created()
    assert [row["uuid"] for row in created] == new
    assert created == [load_job(db, job_uuid) for job_uuid in new]
    assert created[-1]["func_name"] == "tests.jobs.export"
    assert JobCounter(db).count_created() == 0
