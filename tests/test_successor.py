"""What queuejob takes from the original's successor: its stored fields (``exc_name``,
``exc_message``, ``exec_time``, ``date_cancelled``, ``worker_pid``), its states and
operator actions (requeue of done and cancelled jobs, set done, editing jobs that have
not started, the cancel cascade of a graph), ``Job.perform`` outside a worker, and the
settings of a job function people change without a restart (channel, retry pattern,
related action), through the Python API and the command line."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import (
    ConfigurationError,
    DatabaseJobStorage,
    JobStateError,
    NoSuchJobError,
    chain,
    group,
    job,
    operations,
    register_related_action,
    related_action,
)
from queuejob.core import registry
from queuejob.store import JobFilter
from tests import jobs
from tests.helpers import ROOT, ThreadWorker, load, refused, row, wait_until
from tests.reliability.common import sql

HERE = __name__
MODULES = [HERE, "tests.jobs"]
ENV_DB = "QUEUEJOB_DATABASE_URL"
UTC = dt.UTC


# -- job functions and related actions of these tests -----------------------------------
class PartnerGone(Exception):
    """A failure of the application's own."""


@job
def lose_partner(session, model_name, partner_id):
    raise PartnerGone(f"partner {partner_id} is gone\n  (deleted   by hand)")


@job
def whoami(session, model_name):
    """What a job function sees of its session."""
    return [session.user_id, session.context.get("job_uuid"), session.job.uuid,
            session.context.get("lang")]


def open_partner(session, job, view="form", **kwargs):
    return {"action": "open_partner", "partner": job.args[1], "view": view, **kwargs}


@register_related_action
def open_invoice(session, job, **kwargs):
    return {"action": "open_invoice", "partner": job.args[1], **kwargs}


@job
@related_action(action=open_partner)
def sync_partner(session, model_name, partner_id):
    return partner_id


@job(default_channel="root.sync", retry_pattern={1: 30})
def plain_sync(session, model_name, partner_id):
    return partner_id


def burst(db: queuejob.Database, channels: str = "root:4") -> None:
    queuejob.Worker(db, channels=channels, modules=MODULES).run(burst=True)


def delay(db: queuejob.Database, func: Any, *args: Any, user_id: int | None = None,
          **options: Any) -> str:
    with db.session(user_id=user_id) as session:
        return func.delay(session, "res.partner", *args, **options)


def act(db: queuejob.Database, action: Callable[..., list[str]], *uuids: str) -> list[str]:
    with db.session(context={"user": "alice"}) as session:
        return action(session, *uuids)


def seconds_between(later: dt.datetime, earlier: dt.datetime) -> float:
    return (later - earlier).total_seconds()


# -- the successor's fields -------------------------------------------------------------------
def test_a_failure_stores_its_exception_name_and_message(db):
    failed = delay(db, lose_partner, 42)
    builtin = delay(db, jobs.fail, "plain value error")
    burst(db)
    job = load(db, failed)
    assert job.state == "failed"
    assert job.exc_name == f"{HERE}.PartnerGone"
    assert job.exc_message == "partner 42 is gone (deleted by hand)"  # one line
    assert "PartnerGone: partner 42 is gone" in job.exc_info
    assert (load(db, builtin).exc_name, load(db, builtin).exc_message) == (
        "builtins.ValueError", "plain value error")
    # a failed job has not run to its end: no date_done, no exec_time
    assert (job.date_done, job.exec_time) == (None, None)
    assert job.worker_pid == os.getpid()


def test_a_done_job_stores_its_run_time_and_the_process_that_ran_it(db):
    job_uuid = delay(db, jobs.add, 1, 2)
    burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.exc_name, job.exc_message, job.date_cancelled) == (
        "done", None, None, None)
    assert job.worker_pid == os.getpid()
    assert job.exec_time is not None and job.exec_time >= 0
    assert job.exec_time == pytest.approx(seconds_between(job.date_done, job.date_started),
                                          abs=1e-3)
    stored = row(db, job_uuid)
    assert stored["worker_pid"] == os.getpid()


def test_a_cancelled_job_stores_when_it_was_cancelled(db):
    job_uuid = delay(db, jobs.add, 1, 2, eta=3600)
    before = dt.datetime.now(UTC)
    act(db, queuejob.cancel, job_uuid)
    job = load(db, job_uuid)
    assert job.state == "cancelled"
    assert job.date_cancelled is not None and job.date_cancelled.tzinfo is not None
    assert abs(seconds_between(job.date_cancelled, before)) < 30
    assert job.date_done == job.date_cancelled
    assert (job.worker_pid, job.exec_time) == (None, None)


def test_worker_pid_is_the_pid_of_the_worker_process(db, db_url, job_env):
    job_uuid = delay(db, jobs.add, 1, 2)
    process = subprocess.Popen(
        [sys.executable, "-m", "queuejob", "worker", "--db", db_url, "--module", "tests.jobs",
         "--burst", "--log-level", "WARNING"], cwd=ROOT, env=job_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    job = load(db, job_uuid)
    assert job.state == "done"
    assert job.worker_pid == process.pid != os.getpid()


def test_requeue_clears_what_the_last_run_left(db):
    job_uuid = delay(db, jobs.add, 1, 2)
    burst(db)
    assert load(db, job_uuid).worker_pid is not None
    act(db, queuejob.requeue, job_uuid)
    job = load(db, job_uuid)
    assert (job.state, job.retry, job.date_started, job.date_done, job.date_cancelled,
            job.worker_pid) == ("pending", 0, None, None, None, None)
    cancelled = delay(db, jobs.add, 1, 2, eta=3600)
    act(db, queuejob.cancel, cancelled)
    act(db, queuejob.requeue, cancelled)
    job = load(db, cancelled)
    assert (job.state, job.date_done, job.date_cancelled) == ("pending", None, None)


def test_the_new_fields_on_the_command_line(db, db_url, invoke):
    failed = delay(db, lose_partner, 7)
    done = delay(db, jobs.add, 1, 2)
    cancelled = delay(db, jobs.add, 1, 2, eta=3600)
    burst(db)
    act(db, queuejob.cancel, cancelled)
    shown = invoke("jobs", "--db", db_url, failed).stdout
    fields = dict([*line.split(None, 1), ""][:2] for line in shown.splitlines()
                  if line.strip())
    assert fields["exc_name"].strip() == f"{HERE}.PartnerGone"
    assert fields["exc_message"].strip() == "partner 7 is gone (deleted by hand)"
    assert fields["worker_pid"].strip() == str(os.getpid())
    as_json = json.loads(invoke("jobs", "--db", db_url, done, "--json").stdout)
    assert as_json["worker_pid"] == os.getpid()
    assert as_json["exec_time"] == pytest.approx(load(db, done).exec_time)
    assert as_json["exc_name"] is None
    as_json = json.loads(invoke("jobs", "--db", db_url, cancelled, "--json").stdout)
    assert as_json["date_cancelled"] is not None
    listed = json.loads(invoke("jobs", "--db", db_url, "--all", "--json").stdout)
    by_uuid = {entry["uuid"]: entry for entry in listed}
    assert by_uuid[failed]["exc_name"] == f"{HERE}.PartnerGone"
    assert by_uuid[failed]["exc_message"] == "partner 7 is gone (deleted by hand)"
    assert by_uuid[done]["worker_pid"] == os.getpid()
    assert by_uuid[cancelled]["date_cancelled"] is not None


def test_jobs_are_found_by_the_exception_they_failed_with(db, db_url, invoke):
    gone = [delay(db, lose_partner, n) for n in range(3)]
    value_errors = [delay(db, jobs.fail) for _ in range(2)]
    delay(db, jobs.add, 1, 2)
    burst(db)
    found = operations.find_jobs(db, JobFilter(exc_name=f"{HERE}.PartnerGone")).rows
    assert sorted(r["uuid"] for r in found) == sorted(gone)
    assert {r["exc_name"] for r in found} == {f"{HERE}.PartnerGone"}
    found = operations.find_jobs(db, JobFilter(state="failed",
                                               exc_name="builtins.ValueError")).rows
    assert sorted(r["uuid"] for r in found) == sorted(value_errors)
    assert operations.find_jobs(db, JobFilter(exc_name="builtins.KeyError")).rows == []
    listed = json.loads(invoke("jobs", "--db", db_url, "--exception", f"{HERE}.PartnerGone",
                               "--json").stdout)
    assert sorted(entry["uuid"] for entry in listed) == sorted(gone)
    table = invoke("jobs", "--db", db_url, "--exception", "builtins.ValueError").stdout
    assert all(value in table for value in value_errors)
    assert not any(value in table for value in gone)


def test_failures_are_grouped_by_exception(db, db_url, invoke):
    for n in range(3):
        delay(db, lose_partner, n)
    delay(db, jobs.fail)
    burst(db)
    groups = operations.failures_by_exception(db)
    assert [(g["exc_name"], g["jobs"]) for g in groups] == [
        (f"{HERE}.PartnerGone", 3), ("builtins.ValueError", 1)]
    # counts over time: within the last hour and day; an old failure counts in neither
    assert [(g["last_hour"], g["last_day"]) for g in groups] == [(3, 3), (1, 1)]
    old = "now() - interval '30 hours'" if db.dialect == "postgresql" \
        else f"{dt.datetime.now(UTC).timestamp() - 30 * 3600}"
    sql(db, f"UPDATE queue_job SET date_failed = {old} WHERE exc_name = 'builtins.ValueError'")
    [(_, last_hour, last_day)] = [(g["exc_name"], g["last_hour"], g["last_day"])
                                  for g in operations.failures_by_exception(db)
                                  if g["exc_name"] == "builtins.ValueError"]
    assert (last_hour, last_day) == (0, 0)
    table = invoke("failures", "--db", db_url).stdout
    assert f"{HERE}.PartnerGone" in table and "builtins.ValueError" in table
    as_json = json.loads(invoke("failures", "--db", db_url, "--json").stdout)
    assert [(g["exc_name"], g["jobs"]) for g in as_json] == [
        (f"{HERE}.PartnerGone", 3), ("builtins.ValueError", 1)]


def test_the_last_failure_of_a_group_is_a_time_on_both_databases(db, db_url, invoke):
    before = dt.datetime.now(UTC)
    delay(db, jobs.fail)
    burst(db)
    [group_row] = operations.failures_by_exception(db)
    assert isinstance(group_row["last_failed"], dt.datetime)
    assert abs(seconds_between(group_row["last_failed"], before)) < 60
    table = invoke("failures", "--db", db_url).stdout
    assert str(before.year) in table


# -- states -----------------------------------------------------------------------------------
def store_enqueued(db: queuejob.Database, job_uuid: str) -> None:
    """A job put in state enqueued, as an application using the JobStorage API might."""
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.set_enqueued()
        storage.store(job)
    assert row(db, job_uuid)["state"] == "enqueued"


def test_a_job_found_enqueued_is_put_back_to_pending_and_runs(db):
    job_uuid = delay(db, jobs.add, 2, 2)
    store_enqueued(db, job_uuid)
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05, heartbeat_interval=0.1,
                      dead_after=0.5, rescue_interval=0.1):
        wait_until(lambda: load(db, job_uuid).state == "done", message="enqueued job ran")
    job = load(db, job_uuid)
    assert (job.result, job.retry) == ("4", 1)  # put back without counting a retry


def test_a_job_found_enqueued_by_hand_written_sql_runs_too(db):
    job_uuid = delay(db, jobs.add, 3, 3)
    sql(db, "UPDATE queue_job SET state = 'enqueued' WHERE uuid = ?", (job_uuid,))
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05, heartbeat_interval=0.1,
                      dead_after=0.5, rescue_interval=0.1):
        wait_until(lambda: load(db, job_uuid).state == "done", message="enqueued job ran")
    assert load(db, job_uuid).result == "6"


def test_a_burst_worker_runs_a_job_found_enqueued(db, request):
    job_uuid = delay(db, jobs.add, 2, 2)
    store_enqueued(db, job_uuid)
    burst(db)
    assert load(db, job_uuid).state == "done"


def waiting_graph(db: queuejob.Database) -> dict[str, str]:
    """a and b (both waiting for their eta) -> c -> d, and e -> d:

        a --+
            +--> c --+
        b --+        +--> d
                e ---+
    """
    with db.session() as session:
        nodes = {name: jobs.add.delayable(session, "m", 1, 1, eta=3600)
                 for name in ("a", "b", "e")}
        nodes["c"] = jobs.add.delayable(session, "m", 1, 1)
        nodes["d"] = jobs.add.delayable(session, "m", 1, 1)
        group(nodes["a"], nodes["b"]).on_done(nodes["c"])
        group(nodes["c"], nodes["e"]).on_done(nodes["d"])
        nodes["a"].delay()
    return {name: node.uuid for name, node in nodes.items()}


def graph_states(db: queuejob.Database, uuids: dict[str, str]) -> dict[str, str]:
    return {name: load(db, value).state for name, value in uuids.items()}


def test_a_child_is_cancelled_only_when_all_its_parents_are(db):
    uuids = waiting_graph(db)
    act(db, queuejob.cancel, uuids["a"])
    assert graph_states(db, uuids) == {"a": "cancelled", "b": "pending", "c": "wait_dependencies",
                                       "d": "wait_dependencies", "e": "pending"}
    act(db, queuejob.cancel, uuids["b"])
    # c's parents are all cancelled: c is; d still has e
    assert graph_states(db, uuids) == {"a": "cancelled", "b": "cancelled", "c": "cancelled",
                                       "d": "wait_dependencies", "e": "pending"}
    child = load(db, uuids["c"])
    assert child.result == "Cancelled: every job it waited for was cancelled"
    assert child.date_cancelled is not None
    act(db, queuejob.cancel, uuids["e"])
    assert graph_states(db, uuids)["d"] == "cancelled"


def test_cancelling_all_parents_in_one_call_cascades_down_the_graph(db):
    uuids = waiting_graph(db)
    act(db, queuejob.cancel, uuids["a"], uuids["b"], uuids["e"])
    assert set(graph_states(db, uuids).values()) == {"cancelled"}


def test_a_child_with_a_parent_done_keeps_waiting_when_the_other_is_cancelled(db):
    uuids = waiting_graph(db)
    act(db, queuejob.set_done, uuids["a"])
    act(db, queuejob.cancel, uuids["b"])
    assert graph_states(db, uuids)["c"] == "wait_dependencies"
    # it can still be set done by hand, which releases d's side of it
    act(db, queuejob.set_done, uuids["c"])
    act(db, queuejob.set_done, uuids["e"])
    assert graph_states(db, uuids)["d"] == "pending"


def test_a_chain_cancelled_at_its_head_is_cancelled_to_its_end(db):
    with db.session() as session:
        nodes = [jobs.add.delayable(session, "m", n, n, eta=3600 if n == 0 else None)
                 for n in range(4)]
        chain(*nodes).delay()
    act(db, queuejob.cancel, nodes[0].uuid)
    assert [load(db, node.uuid).state for node in nodes] == ["cancelled"] * 4


# -- Job.perform outside a worker -------------------------------------------------------------
def test_perform_runs_as_the_jobs_user_with_its_uuid(db):
    with db.session(user_id=7, context={"lang": "fr_FR"}) as session:
        job_uuid = whoami.delay(session, "res.users")
    with db.session(user_id=1, context={"lang": "en_US"}) as session:
        job = DatabaseJobStorage(session).load(job_uuid)
        result = job.perform(session)
    assert result == [7, job_uuid, job_uuid, "fr_FR"]
    assert job.retry == 1


# -- operator actions -------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["done", "cancelled"])
def test_a_done_or_cancelled_job_is_requeued_and_runs_again(db, state):
    job_uuid = delay(db, jobs.add, 2, 5)
    if state == "done":
        burst(db)
    else:
        act(db, queuejob.cancel, job_uuid)
    assert load(db, job_uuid).state == state
    assert act(db, queuejob.requeue, job_uuid) == [job_uuid]
    assert (load(db, job_uuid).state, load(db, job_uuid).retry) == ("pending", 0)
    burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result, job.retry) == ("done", "7", 1)
    assert row(db, job_uuid)["attempt"] == (2 if state == "done" else 1)


def test_requeue_of_done_jobs_on_the_command_line(db, db_url, invoke):
    done = [delay(db, jobs.add, n, n) for n in range(3)]
    burst(db)
    result = invoke("requeue", "--db", db_url, done[0])
    assert result.stdout.strip() == "requeued 1 job(s)"
    result = invoke("requeue", "--db", db_url, "--state", "done", "--yes")
    assert "requeued 2 job(s)" in result.stdout
    assert {load(db, value).state for value in done} == {"pending"}


def make_in_state(db: queuejob.Database, state: str) -> str:
    """A job of tests.jobs.add in ``state``."""
    if state == "wait_dependencies":
        with db.session() as session:
            parent = jobs.add.delayable(session, "m", 1, 1, eta=3600)
            child = jobs.add.delayable(session, "m", 1, 1)
            parent.on_done(child).delay()
        job_uuid = child.uuid
    elif state == "failed":
        job_uuid = delay(db, jobs.fail)
        burst(db)
    elif state == "done":
        job_uuid = delay(db, jobs.add, 1, 1)
        burst(db)
    elif state == "started":
        job_uuid = delay(db, jobs.add, 1, 1, priority=-100)
        from queuejob.core.channels import ChannelTree
        from tests.helpers import claim
        [claimed] = db.run(lambda conn: claim(db, conn, "someone", ChannelTree(), {}, 1))
        assert claimed["uuid"] == job_uuid
    else:
        job_uuid = delay(db, jobs.add, 1, 1, eta=3600)
        if state == "enqueued":
            store_enqueued(db, job_uuid)
        elif state == "cancelled":
            act(db, queuejob.cancel, job_uuid)
    assert row(db, job_uuid)["state"] == state
    return job_uuid


@pytest.mark.parametrize("state", ["wait_dependencies", "pending", "enqueued", "failed"])
def test_set_done_applies_to_the_states_the_successor_allows(db, state):
    job_uuid = make_in_state(db, state)
    assert act(db, queuejob.set_done, job_uuid) == [job_uuid]
    job = load(db, job_uuid)
    assert (job.state, job.result, job.exc_info, job.exc_name) == (
        "done", "Manually set to done by alice", None, None)
    assert job.date_done is not None


@pytest.mark.parametrize("state", ["started", "done", "cancelled"])
def test_set_done_is_refused_from_other_states_with_a_clear_error(db, db_url, invoke, state):
    job_uuid = make_in_state(db, state)
    before = row(db, job_uuid)
    with pytest.raises(JobStateError, match=f"cannot set done job {job_uuid}: it is {state}"):
        act(db, queuejob.set_done, job_uuid)
    line = refused(invoke("done", "--db", db_url, job_uuid, exit_code=1))
    assert f"cannot set done job {job_uuid}: it is {state}" in line
    assert row(db, job_uuid) == before


# -- editing jobs that have not started -------------------------------------------------------
def edited(db: queuejob.Database, job_uuid: str) -> tuple[int, dt.datetime | None, str]:
    job = load(db, job_uuid)
    return job.priority, job.eta, job.channel


def test_edit_changes_priority_eta_and_channel_of_a_pending_job(db):
    job_uuid = delay(db, jobs.add, 1, 1)
    untouched = delay(db, jobs.add, 2, 2)
    with db.session() as session:
        assert operations.edit(session, job_uuid, priority=3, eta=600,
                               channel="root.edited") == [job_uuid]
    priority, eta, channel = edited(db, job_uuid)
    assert (priority, channel) == (3, "root.edited")
    assert eta is not None and 590 < seconds_between(eta, dt.datetime.now(UTC)) <= 600
    assert edited(db, untouched) == (10, None, "root")
    # each value alone; the others stay
    with db.session() as session:
        operations.edit(session, job_uuid, channel="export")  # a short name is completed
    assert edited(db, job_uuid)[::2] == (3, "root.export")
    at = dt.datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
    with db.session() as session:
        operations.edit(session, job_uuid, eta=at)
    priority, eta, channel = edited(db, job_uuid)
    assert (priority, channel) == (3, "root.export")
    assert eta is not None and abs(seconds_between(eta, at)) < 1
    with db.session() as session:
        operations.edit(session, job_uuid, eta=None)  # due now
    assert edited(db, job_uuid) == (3, None, "root.export")


def test_an_absolute_eta_given_to_edit_is_stored_as_given(db, request):
    at = dt.datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
    delayed = delay(db, jobs.add, 1, 1, eta=at)
    assert load(db, delayed).eta == at
    with db.session() as session:
        operations.edit(session, delayed, eta=at + dt.timedelta(days=1))
    assert load(db, delayed).eta == at + dt.timedelta(days=1)


def test_an_edited_eta_and_priority_decide_when_the_job_runs(db, tmp_path):
    log = tmp_path / "runs"
    first, second, later = (delay(db, jobs.record, str(log)) for _ in range(3))
    with db.session() as session:
        operations.edit(session, second, priority=1)
        operations.edit(session, later, eta=3600)
    burst(db, channels="root:1")
    runs = [line.split()[0] for line in log.read_text().splitlines()]
    assert runs == [second, first]
    assert load(db, later).state == "pending"
    with db.session() as session:
        operations.edit(session, later, eta=None)
    burst(db)
    assert load(db, later).state == "done"


@pytest.mark.parametrize("state", ["started", "done", "failed", "cancelled"])
def test_edit_is_refused_for_a_job_that_has_started_or_ended(db, db_url, invoke, state):
    job_uuid = make_in_state(db, state)
    pending = delay(db, jobs.add, 1, 1, eta=3600)
    before = {value: row(db, value) for value in (job_uuid, pending)}
    with db.session() as session, pytest.raises(
            JobStateError, match=f"cannot edit job {job_uuid}: it is {state}"):
        operations.edit(session, pending, job_uuid, priority=1)
    line = refused(invoke("edit", "--db", db_url, pending, job_uuid, "--set-priority", "1",
                          exit_code=1))
    assert f"cannot edit job {job_uuid}: it is {state}" in line
    # all or nothing: the pending job given with it is unchanged too
    assert {value: row(db, value) for value in (job_uuid, pending)} == before


def test_a_job_waiting_for_its_parents_can_be_edited(db):
    job_uuid = make_in_state(db, "wait_dependencies")
    with db.session() as session:
        operations.edit(session, job_uuid, priority=2, channel="root.later")
    assert edited(db, job_uuid)[::2] == (2, "root.later")
    assert load(db, job_uuid).state == "wait_dependencies"


BAD_EDITS = [
    ({}, ConfigurationError, "nothing to edit"),
    ({"priority": 2**40}, ValueError, "priority"),
    ({"priority": "high"}, TypeError, "priority"),
    ({"priority": True}, TypeError, "priority"),
    ({"channel": "root..x"}, ConfigurationError, "bad channel name"),
    ({"channel": "root.x'; DROP TABLE queue_job; --"}, ConfigurationError, "bad channel"),
    ({"eta": "tomorrow"}, TypeError, "eta"),
]


def test_bad_edits_are_refused_and_change_nothing(db):
    job_uuid = delay(db, jobs.add, 1, 1, eta=3600)
    before = row(db, job_uuid)
    for changes, error, says in BAD_EDITS:
        with db.session() as session, pytest.raises(error, match=says):
            operations.edit(session, job_uuid, **changes)
    assert row(db, job_uuid) == before


def test_edit_of_an_unknown_job_is_refused(db):
    with db.session() as session, pytest.raises(NoSuchJobError):
        operations.edit(session, "0b9c1f5e-6a57-4d1c-9a4e-2f7d8c3b1a60", priority=1)


def test_edit_matching_edits_the_jobs_that_have_not_started(db):
    pending = [delay(db, jobs.add, n, n, channel="root.bulk", eta=3600) for n in range(5)]
    other_channel = delay(db, jobs.add, 1, 1, eta=3600)
    done = delay(db, jobs.add, 1, 1, channel="root.bulk")
    burst(db)
    assert load(db, done).state == "done"
    changed, skipped = operations.edit_matching(db, JobFilter(channel="root.bulk"),
                                                priority=0, channel="root.moved")
    assert (changed, skipped) == (5, 0)
    assert {edited(db, value)[::2] for value in pending} == {(0, "root.moved")}
    assert edited(db, other_channel)[::2] == (10, "root")
    assert edited(db, done)[::2] == (10, "root.bulk")
    with pytest.raises(ConfigurationError, match="nothing to edit"):
        operations.edit_matching(db, JobFilter(channel="root.moved"))


def test_edit_on_the_command_line(db, db_url, invoke):
    job_uuid = delay(db, jobs.add, 1, 1)
    result = invoke("edit", "--db", db_url, job_uuid, "--set-priority", "4", "--set-eta",
                    "+120", "--set-channel", "root.cli")
    assert result.stdout.strip() == "edited 1 job(s)"
    priority, eta, channel = edited(db, job_uuid)
    assert (priority, channel) == (4, "root.cli")
    assert eta is not None and 100 < seconds_between(eta, dt.datetime.now(UTC)) <= 120
    invoke("edit", "--db", db_url, job_uuid, "--set-eta", "2099-01-02T03:04:05")
    eta = edited(db, job_uuid)[1]
    assert eta is not None
    assert abs(seconds_between(eta, dt.datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC))) < 1
    invoke("edit", "--db", db_url, job_uuid, "--set-eta", "now")
    assert edited(db, job_uuid) == (4, None, "root.cli")
    others = [delay(db, jobs.add, n, n, channel="root.cli", eta=3600) for n in range(3)]
    result = invoke("edit", "--db", db_url, "--channel", "root.cli", "--set-priority", "1",
                    "--yes")
    assert "edited 4 job(s)" in result.stdout
    assert {edited(db, value)[0] for value in [job_uuid, *others]} == {1}
    assert invoke("edit", "--db", db_url, "--state", "pending", "--channel", "root.nothing",
                  "--set-priority", "1").stdout.strip() == "no job matches"


BAD_CLI_EDITS = [
    (["--set-priority", "1", "--state", "pending"], "uuids or a filter"),
    ([], "nothing to edit"),
    (["--set-eta", "tomorrow"], "bad eta"),
    (["--set-channel", "root..x"], "bad channel name"),
    (["--set-priority", str(2**40)], "priority"),
]


def test_bad_edits_on_the_command_line_are_refused_in_one_line(db, db_url, invoke):
    job_uuid = delay(db, jobs.add, 1, 1, eta=3600)
    before = row(db, job_uuid)
    for args, says in BAD_CLI_EDITS:
        line = refused(invoke("edit", "--db", db_url, job_uuid, *args, exit_code=1))
        assert says in line, args
    assert row(db, job_uuid) == before


def test_edit_without_uuid_nor_filter_is_refused(db, db_url, invoke):
    assert "uuids, or a filter" in refused(
        invoke("edit", "--db", db_url, "--set-priority", "1", exit_code=1))


# -- job function settings ----------------------------------------------------------------------
def function_entry(db: queuejob.Database, name: str) -> dict[str, Any]:
    [entry] = [e for e in operations.functions(db) if e["name"] == name]
    return entry


def test_setting_the_channel_keeps_a_stored_retry_pattern_and_back(db, db_url, invoke):
    name = f"{HERE}.plain_sync"
    invoke("functions", "set", "--db", db_url, name, "--retry-pattern", "1: 60, 5: 300",
           "--module", HERE)
    result = invoke("functions", "set", "--db", db_url, name, "--channel", "root.crm",
                    "--module", HERE)
    assert result.stdout.strip() == f"function {name}: channel set"
    entry = function_entry(db, name)
    assert (entry["channel"], entry["retry_pattern"]) == ("root.crm", {1: 60, 5: 300})
    assert entry["channel_overridden"] and entry["retry_pattern_overridden"]
    invoke("functions", "set", "--db", db_url, name, "--retry-pattern", "1: 5")
    entry = function_entry(db, name)
    assert (entry["channel"], entry["retry_pattern"]) == ("root.crm", {1: 5})
    # jobs delayed from now on go to the stored channel
    assert load(db, delay(db, plain_sync, 1)).channel == "root.crm"
    # each reset puts back only its own setting
    invoke("functions", "set", "--db", db_url, name, "--reset-channel")
    entry = function_entry(db, name)
    assert (entry["channel"], entry["retry_pattern"]) == ("root.sync", {1: 5})
    invoke("functions", "set", "--db", db_url, name, "--channel", "root.crm",
           "--related-action", "off")
    invoke("functions", "set", "--db", db_url, name, "--reset-retry-pattern")
    entry = function_entry(db, name)
    assert (entry["channel"], entry["retry_pattern"]) == ("root.crm", {1: 30})
    assert entry["related_action_overridden"]
    result = invoke("functions", "set", "--db", db_url, name, "--reset")
    assert "reset" in result.stdout
    entry = function_entry(db, name)
    assert (entry["channel"], entry["retry_pattern"], entry["channel_overridden"],
            entry["retry_pattern_overridden"], entry["related_action_overridden"]) == (
        "root.sync", {1: 30}, False, False, False)


def test_the_python_api_keeps_the_settings_it_is_not_given(db):
    name = f"{HERE}.plain_sync"
    operations.set_function(db, name, retry_pattern={1: 45})
    operations.set_function(db, name, channel="root.api")
    operations.set_function(db, name, related_action={"enable": False})
    entry = function_entry(db, name)
    assert (entry["channel"], entry["retry_pattern"], entry["related_action_setting"]) == (
        "root.api", {1: 45}, {"enable": False, "func_name": None, "kwargs": {}})
    operations.set_function(db, name, channel=None)
    assert function_entry(db, name)["retry_pattern"] == {1: 45}
    operations.reset_function(db, name)
    entry = function_entry(db, name)
    assert (entry["channel_overridden"], entry["retry_pattern_overridden"],
            entry["related_action_overridden"]) == (False, False, False)


def test_unknown_function_names_are_refused(db, db_url, invoke):
    for name in ("tests.nowhere.nothing", f"{HERE}.not_a_job", f"{HERE}.PartnerGone"):
        line = refused(invoke("functions", "set", "--db", db_url, name, "--channel",
                              "root.x", "--module", HERE, exit_code=1))
        assert "unknown job function" in line
        with pytest.raises(ConfigurationError, match="unknown job function"):
            operations.set_function(db, name, channel="root.x")
        assert not [e for e in operations.functions(db) if e["name"] == name]
    for name in ("has space", "", "a\nb"):
        assert "job function" in refused(invoke(
            "functions", "set", "--db", db_url, name, "--channel", "root.x", exit_code=1))


def test_a_function_the_database_knows_can_be_set_without_its_module(db, db_url, invoke):
    """The database holds jobs of it: a tool without the application's code sets it."""
    name = "shop.tasks.only_in_the_database"
    stored = delay(db, jobs.add, 1, 1, eta=3600)
    sql(db, "UPDATE queue_job SET func_name = ? WHERE uuid = ?", (name, stored))
    invoke("functions", "set", "--db", db_url, name, "--channel", "root.shop")
    assert function_entry(db, name)["channel"] == "root.shop"


BAD_FUNCTION_SETTINGS = [
    (["--related-action", "tests.nowhere.action"], "unknown related action"),
    (["--related-action", f"{HERE}.open_partner_typo"], "unknown related action"),
    (["--related-action-kwargs", "[1, 2]"], "kwargs"),
    (["--related-action-kwargs", "not json"], "--related-action-kwargs"),
    (["--related-action-kwargs", '{"view": NaN}'], "kwargs"),
    (["--related-action-kwargs", "[]"], "kwargs"),
    (["--related-action-kwargs", '"view"'], "kwargs"),
    (["--channel", "root..x"], "bad channel name"),
    (["--retry-pattern", "one: sixty"], "retry"),
    (["--channel", "root.x", "--reset-channel"], "not both"),
    ([], "give --channel"),
]


def test_bad_function_settings_are_refused_in_one_line(db, db_url, invoke):
    name = f"{HERE}.sync_partner"
    for args, says in BAD_FUNCTION_SETTINGS:
        line = refused(invoke("functions", "set", "--db", db_url, name, "--module", HERE,
                              *args, exit_code=1))
        assert says in line, args
    entry = function_entry(db, name)
    assert not (entry["related_action_overridden"] or entry["channel_overridden"]
                or entry["retry_pattern_overridden"])


def test_related_action_settings_change_what_the_action_gives(db, db_url, invoke):
    name = f"{HERE}.sync_partner"
    job_uuid = delay(db, sync_partner, 42)
    plain = delay(db, plain_sync, 43)
    assert operations.related_action(db, job_uuid) == {
        "action": "open_partner", "partner": 42, "view": "form"}
    assert operations.has_related_action(db, name)
    assert not operations.has_related_action(db, f"{HERE}.plain_sync")
    assert operations.related_action(db, plain) is None

    def set_related(*args: str) -> None:
        invoke("functions", "set", "--db", db_url, name, "--module", HERE, *args)

    set_related("--related-action", "off")
    assert operations.related_action(db, job_uuid) is None
    assert not operations.has_related_action(db, name)
    assert function_entry(db, name)["related_action"] is None
    assert "off (set)" in invoke("functions", "--db", db_url, "--module", HERE).stdout

    set_related("--related-action", "on")
    assert operations.related_action(db, job_uuid)["view"] == "form"

    # kwargs alone: the decorator's action, its keyword arguments updated
    set_related("--related-action-kwargs", '{"view": "tree", "limit": 5}')
    assert operations.related_action(db, job_uuid) == {
        "action": "open_partner", "partner": 42, "view": "tree", "limit": 5}

    # another registered related action, with its own kwargs only
    set_related("--related-action", f"{HERE}.open_invoice", "--related-action-kwargs",
                '{"mode": "pay"}')
    assert operations.related_action(db, job_uuid) == {
        "action": "open_invoice", "partner": 42, "mode": "pay"}
    entry = function_entry(db, name)
    assert entry["related_action"] == f"{HERE}.open_invoice"
    assert entry["related_action_setting"] == {
        "enable": True, "func_name": f"{HERE}.open_invoice", "kwargs": {"mode": "pay"}}
    assert f"{HERE}.open_invoice (set)" in invoke("functions", "--db", db_url, "--module",
                                                  HERE).stdout

    # a function without a decorator's related action gets one
    invoke("functions", "set", "--db", db_url, f"{HERE}.plain_sync", "--module", HERE,
           "--related-action", f"{HERE}.open_invoice")
    assert operations.has_related_action(db, f"{HERE}.plain_sync")
    assert operations.related_action(db, plain) == {"action": "open_invoice", "partner": 43}

    set_related("--reset-related-action")
    assert operations.related_action(db, job_uuid)["action"] == "open_partner"
    assert not function_entry(db, name)["related_action_overridden"]


def test_stored_kwargs_an_action_does_not_take_say_why(db, db_url, invoke):
    """tests.jobs.related_partner(session, job, extra=1): any other keyword, or one named
    like its job, is refused when the action is asked for, in a sentence."""
    name = "tests.jobs.export_partner"
    job_uuid = delay(db, jobs.export_partner, 42)
    for kwargs in ('{"colour": "red"}', '{"job": 1}'):
        invoke("functions", "set", "--db", db_url, name, "--module", "tests.jobs",
               "--related-action-kwargs", kwargs)
        assert operations.has_related_action(db, name)
        with pytest.raises(ConfigurationError, match="does not take the stored kwargs"):
            operations.related_action(db, job_uuid)
        assert "does not take the stored kwargs" in function_entry(db, name)["problem"]
    invoke("functions", "set", "--db", db_url, name, "--related-action-kwargs",
           '{"extra": 9}')
    assert operations.related_action(db, job_uuid)["extra"] == 9


def test_a_stored_related_action_this_process_lacks_says_why(db, monkeypatch):
    name = f"{HERE}.sync_partner"
    job_uuid = delay(db, sync_partner, 42)
    operations.set_function(db, name, related_action={"func_name": f"{HERE}.open_invoice"})
    monkeypatch.delitem(registry._related_actions, f"{HERE}.open_invoice")
    assert operations.has_related_action(db, name)  # there is one: calling it says why
    with pytest.raises(ConfigurationError, match="not registered in this process"):
        operations.related_action(db, job_uuid)
    entry = function_entry(db, name)
    assert entry["related_action"] is None and "not registered" in entry["problem"]


def test_a_bad_stored_related_action_row_costs_only_that_setting(db, db_url, invoke):
    name = f"{HERE}.sync_partner"
    job_uuid = delay(db, sync_partner, 42)
    operations.set_function(db, name, channel="root.kept", related_action={"enable": False})
    sql(db, "UPDATE queue_job_function SET related_action = ? WHERE name = ?",
        ('{"enable": "maybe"', name))
    # the decorator's related action applies; the channel setting still holds
    assert operations.related_action(db, job_uuid)["action"] == "open_partner"
    entry = function_entry(db, name)
    assert entry["channel"] == "root.kept"
    assert "stored related action" in entry["problem"]
    # the command line lists the function with the setting it can use
    listed = invoke("functions", "--db", db_url, "--module", HERE).stdout
    assert name in listed and "root.kept (set)" in listed


# -- generated related action settings ------------------------------------------------------------
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                                                                allow_infinity=False),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
ODD_VALUES = st.one_of(
    st.floats(), st.tuples(st.integers()), st.datetimes(), st.decimals(allow_nan=False),
    st.binary(max_size=4), st.just(jobs.Point(1, 2)), st.just(object()),
    st.dictionaries(st.integers(), st.integers(), max_size=2), st.sets(st.integers(), max_size=2))
KWARGS = st.one_of(
    st.dictionaries(st.text(max_size=8), JSONISH, max_size=3),
    st.dictionaries(st.text(max_size=8), st.one_of(JSONISH, ODD_VALUES), max_size=3),
    st.none(), st.just([]), st.lists(st.integers(), max_size=2), st.text(max_size=5),
    st.integers(), st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2))
ACTION_NAMES = st.one_of(
    st.none(), st.sampled_from([f"{HERE}.open_invoice", f"{HERE}.open_partner",
                                "tests.jobs.related_partner", "", " ", "nowhere.nothing"]),
    st.text(max_size=20), st.integers(), st.booleans())
VALID_SETTINGS = st.fixed_dictionaries({}, optional={
    "enable": st.booleans(),
    "func_name": st.sampled_from([None, f"{HERE}.open_invoice", f"{HERE}.open_partner",
                                  "tests.jobs.related_partner"]),
    "kwargs": st.dictionaries(st.one_of(st.sampled_from(["view", "extra", "job", "mode"]),
                                        st.text(max_size=6)), JSONISH, max_size=3)})
SETTINGS = st.one_of(
    VALID_SETTINGS, VALID_SETTINGS,
    st.fixed_dictionaries({}, optional={
        "enable": st.one_of(st.booleans(), st.booleans(), st.none(), st.integers(0, 1),
                            st.text(max_size=3)),
        "func_name": ACTION_NAMES, "kwargs": KWARGS}),
    st.fixed_dictionaries({"enable": st.booleans()}, optional={"other": st.integers()}),
    st.none(), st.text(max_size=10), st.lists(st.integers(), max_size=2), st.booleans())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setting=SETTINGS)
@example(setting={"kwargs": {"when": dt.datetime(2020, 1, 1)}})  # the codec's, not JSON
@example(setting={"kwargs": {"amount": Decimal("1.5")}})
@example(setting={"kwargs": {"point": jobs.Point(1, 2)}})
@example(setting={"kwargs": {"pair": (1, 2)}})  # read back as a list
@example(setting={"kwargs": {"ratio": float("nan")}})
@example(setting={"kwargs": {"nested": {1: "one"}}})  # read back with a text key
@example(setting={"kwargs": []})
@example(setting={"enable": False, "func_name": f"{HERE}.open_invoice",
                  "kwargs": {"view": "\ud800\x00"}})
def test_generated_related_action_settings_are_stored_as_given_or_refused(db, setting):
    name = f"{HERE}.sync_partner"
    job_uuid = delay(db, sync_partner, 9)
    before = function_entry(db, name)
    try:
        operations.set_function(db, name, related_action=setting)
    except ConfigurationError:
        event("refused")
        assert function_entry(db, name) == before
        return
    event("accepted" if setting is not None else "reset")
    entry = function_entry(db, name)
    if setting is None:
        assert not entry["related_action_overridden"] and entry["problem"] is None
        return
    stored = entry["related_action_setting"]
    # what was stored is what was given, read back the same by every reader
    assert stored == {"enable": setting.get("enable", True),
                      "func_name": setting.get("func_name"),
                      "kwargs": setting.get("kwargs") or {}}
    assert json.loads(json.dumps(stored)) == stored  # plain JSON: any tool reads it
    found = operations.has_related_action(db, name)
    if not stored["enable"]:
        assert (found, operations.related_action(db, job_uuid)) == (False, None)
        assert entry["problem"] is None
    else:
        assert found
        check_related_action_call(db, name, job_uuid, stored["kwargs"])
    operations.reset_function(db, name)


def check_related_action_call(db: queuejob.Database, name: str, job_uuid: str,
                              kwargs: dict[str, Any]) -> None:
    """The related action gives the stored kwargs to the action, or (kwargs the action
    does not take) refuses in one sentence, also shown in the function's listing."""
    try:
        result = operations.related_action(db, job_uuid)
    except ConfigurationError as exc:
        event("refused when called")
        assert "does not take the stored kwargs" in str(exc) or "not registered" in str(exc)
        assert function_entry(db, name)["problem"]
        return
    event("called")
    assert function_entry(db, name)["problem"] is None
    assert {key: result[key] for key in kwargs} == kwargs


STORED_TEXTS = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
            max_size=40),
    SETTINGS.map(lambda value: json.dumps(value, default=repr)),
    st.sampled_from(['{"enable": NaN}', '{"kwargs": {"x": Infinity}}', "[]", "null", "{}",
                     '{"func_name": "nowhere.nothing"}', '{"enable": false}',
                     '{"kwargs": {"view": "tree"}}', '"text"', '{"kwargs": []}']))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=STORED_TEXTS)
def test_any_stored_related_action_text_costs_only_that_setting(db, text):
    """A setting written by another tool (or by hand): every reader copes, the other
    settings of the function hold."""
    name = f"{HERE}.sync_partner"
    job_uuid = delay(db, sync_partner, 5)
    operations.set_function(db, name, channel="root.kept")
    sql(db, "UPDATE queue_job_function SET related_action = ? WHERE name = ?", (text, name))
    entry = function_entry(db, name)
    assert entry["channel"] == "root.kept"
    assert isinstance(operations.has_related_action(db, name), bool)
    try:
        result = operations.related_action(db, job_uuid)
    except ConfigurationError as exc:  # an action not registered here, or kwargs it refuses
        event("refused when called")
        assert "not registered" in str(exc) or "does not take the stored kwargs" in str(exc)
        assert entry["problem"]
    else:
        event("used" if entry["related_action_overridden"] else "ignored")
        assert result is None or isinstance(result, dict)
    operations.reset_function(db, name)
