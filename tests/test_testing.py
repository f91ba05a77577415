"""queuejob.testing: trapping delayed jobs, and running them at once."""

from __future__ import annotations

import pytest

from queuejob import chain, group
from queuejob.testing import NO_DELAY_ENV, NO_DELAY_KEY, trap_jobs
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
