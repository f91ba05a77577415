"""Manual actions: queuejob.requeue, queuejob.set_done and queuejob.cancel.

Refusals, all-or-nothing calls, identity keys (a refused requeue, a superseded
retry) and the fencing of a late outcome of an attempt that was requeued.
"""

from __future__ import annotations

import datetime as dt
import getpass
import uuid as uuid_module

import pytest

import queuejob
from queuejob import DatabaseJobStorage, JobStateError, NoSuchJobError
from queuejob.core.channels import ChannelTree
from queuejob.core.outcome import Outcome
from tests import jobs
from tests.helpers import claim as claim_for
from tests.helpers import load, row, run_burst, states

UTC = dt.UTC
ACTIONS = {"requeue": queuejob.requeue, "done": queuejob.set_done, "cancel": queuejob.cancel}
VERBS = {"requeue": "requeue", "done": "set done", "cancel": "cancel"}
APPLIES = {
    # as the successor's requeue: any job but one waiting for its parents
    "requeue": ("pending", "enqueued", "started", "failed", "done", "cancelled"),
    "done": ("pending", "enqueued", "failed", "wait_dependencies"),
    "cancel": ("pending", "enqueued", "failed", "wait_dependencies"),
}
ALL_STATES = ("pending", "enqueued", "started", "done", "failed", "cancelled",
              "wait_dependencies")
REFUSED = [(action, state) for action in ACTIONS for state in ALL_STATES
           if state not in APPLIES[action]]
APPLIED = [(action, state) for action in ACTIONS for state in APPLIES[action]]
TARGET = {"requeue": "pending", "done": "done", "cancel": "cancelled"}


# -- arranging jobs in each state ---------------------------------------------------------------

def claim(db, worker_id: str = "test-worker") -> list[dict]:
    """Start the next pending job as a worker would (the attempt stays open)."""
    with db.transaction() as conn:
        return claim_for(db, conn, worker_id, ChannelTree(), {}, 1)


def store_state(db, job_uuid: str, state: str) -> None:
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        if state == "enqueued":
            job.set_enqueued()
        elif state == "failed":
            job.set_failed(exc_info="Traceback: failed on purpose")
        elif state == "done":
            job.set_done(result="finished")
        elif state == "wait_dependencies":
            job.state = "wait_dependencies"
        else:
            raise AssertionError(state)
        storage.store(job)


def make_job(db, state: str, identity_key: str | None = None, **options) -> str:
    """A job in ``state``. ``started`` claims the next pending job: make it first."""
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key=identity_key, **options)
    if state == "pending":
        pass
    elif state == "started":
        claimed = claim(db)
        assert [r["uuid"] for r in claimed] == [job_uuid]
    elif state == "cancelled":
        with db.session(context={"user": "setup"}) as session:
            queuejob.cancel(session, job_uuid)
    else:
        store_state(db, job_uuid, state)
    assert row(db, job_uuid)["state"] == state
    return job_uuid


def outcome_for(claimed_row: dict, state: str, **fields) -> Outcome:
    return Outcome(uuid=claimed_row["uuid"], attempt=claimed_row["attempt"], state=state,
                   retry=claimed_row["retry"] + 1, identity_key=claimed_row["identity_key"],
                   **fields)


# -- requeue ----------------------------------------------------------------------------------

def test_requeue_of_a_failed_job_puts_it_back_to_pending_and_a_worker_runs_it(db):
    placeholder = "?" if db.dialect == "sqlite" else "%s"
    with db.session() as session:
        job_uuid = jobs.write_row.delay(session, "m", "late_table", 7)
    run_burst(db)
    failed = load(db, job_uuid)
    assert failed.state == "failed" and failed.retry == 1
    assert "late_table" in failed.exc_info
    # the cause is fixed, then the job is requeued
    with db.session() as session:
        session.execute("CREATE TABLE late_table (value integer)")
    with db.session() as session:
        assert queuejob.requeue(session, job_uuid) == [job_uuid]
    requeued = load(db, job_uuid)
    assert requeued.state == "pending"
    assert requeued.retry == 0
    assert (requeued.date_started, requeued.date_done) == (None, None)
    run_burst(db)
    done = load(db, job_uuid)
    assert (done.state, done.result, done.retry) == ("done", "written", 1)
    with db.session() as session:
        values = session.execute(f"SELECT value FROM late_table WHERE value = {placeholder}",
                                 (7,)).fetchall()
    assert [tuple(v) for v in values] == [(7,)]


def test_requeue_resets_the_retry_count(db):
    job_uuid = make_job(db, "pending", max_retries=4)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.retry = 4
        job.set_failed(exc_info="Max. retries (4) reached")
        storage.store(job)
    assert load(db, job_uuid).retry == 4
    with db.session() as session:
        queuejob.requeue(session, job_uuid)
    assert (load(db, job_uuid).state, load(db, job_uuid).retry) == ("pending", 0)
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result, job.retry) == ("done", "3", 1)


def test_a_requeued_failing_job_runs_again(db):
    with db.session() as session:
        job_uuid = jobs.fail.delay(session, "m", "again")
    run_burst(db)
    assert row(db, job_uuid)["attempt"] == 1
    with db.session() as session:
        queuejob.requeue(session, job_uuid)
    run_burst(db)
    stored = row(db, job_uuid)
    assert (stored["state"], stored["retry"], stored["attempt"]) == ("failed", 1, 2)
    assert "ValueError: again" in stored["exc_info"]


def test_requeue_of_a_started_job_puts_it_back_to_pending(db):
    job_uuid = make_job(db, "started")
    with db.session() as session:
        queuejob.requeue(session, job_uuid)
    stored = row(db, job_uuid)
    assert (stored["state"], stored["retry"], stored["date_started"]) == ("pending", 0, None)
    run_burst(db)
    assert (load(db, job_uuid).state, load(db, job_uuid).result) == ("done", "3")


# -- set done and cancel ----------------------------------------------------------------------

@pytest.mark.parametrize(("action", "state"), APPLIED)
def test_an_action_applies_to_its_states(db, action, state):
    job_uuid = make_job(db, state)
    with db.session(context={"user": "alice"}) as session:
        assert ACTIONS[action](session, job_uuid) == [job_uuid]
    job = load(db, job_uuid)
    assert job.state == TARGET[action]
    if action == "done":
        assert job.result == "Manually set to done by alice"
        assert job.exc_info is None
    elif action == "cancel":
        assert job.result == "Cancelled by alice"
    else:
        assert job.retry == 0
    if action in ("done", "cancel"):
        assert job.date_done is not None and job.date_done.tzinfo is not None
        assert abs((dt.datetime.now(UTC) - job.date_done).total_seconds()) < 30
    else:
        assert job.date_done is None


@pytest.mark.parametrize(("action", "message"), [("done", "Manually set to done by {}"),
                                                 ("cancel", "Cancelled by {}")])
def test_the_result_names_the_user_of_the_session(db, action, message):
    named = make_job(db, "pending")
    by_id = make_job(db, "pending")
    both = make_job(db, "pending")
    nobody = make_job(db, "pending")
    with db.session(context={"user": "alice"}) as session:
        ACTIONS[action](session, named)
    with db.session(user_id=7) as session:
        ACTIONS[action](session, by_id)
    with db.session(user_id=7, context={"user": "bob"}) as session:
        ACTIONS[action](session, both)
    with db.session() as session:
        ACTIONS[action](session, nobody)
    assert load(db, named).result == message.format("alice")
    assert load(db, by_id).result == message.format("user 7")
    assert load(db, both).result == message.format("bob")
    assert load(db, nobody).result == message.format(getpass.getuser())


def test_set_done_of_a_failed_job_clears_its_traceback_and_cancel_keeps_it(db):
    done = make_job(db, "failed")
    cancelled = make_job(db, "failed")
    with db.session(context={"user": "alice"}) as session:
        queuejob.set_done(session, done)
        queuejob.cancel(session, cancelled)
    assert load(db, done).exc_info is None
    assert load(db, cancelled).exc_info == "Traceback: failed on purpose"


def test_a_cancelled_or_done_job_is_never_run(db):
    cancelled = make_job(db, "pending")
    done = make_job(db, "pending")
    with db.session(context={"user": "alice"}) as session:
        queuejob.cancel(session, cancelled)
        queuejob.set_done(session, done)
    run_burst(db)
    assert load(db, cancelled).result == "Cancelled by alice"
    assert load(db, done).result == "Manually set to done by alice"
    assert row(db, cancelled)["attempt"] == row(db, done)["attempt"] == 0


def test_several_uuids_in_one_call(db):
    uuids = [make_job(db, state) for state in ("pending", "enqueued", "failed")]
    with db.session(context={"user": "alice"}) as session:
        assert queuejob.cancel(session, *uuids) == uuids
    assert states(db) == {"cancelled": 3}
    assert {load(db, value).result for value in uuids} == {"Cancelled by alice"}


def test_a_uuid_given_twice_is_acted_on_once(db):
    job_uuid = make_job(db, "pending")
    with db.session(context={"user": "alice"}) as session:
        assert queuejob.set_done(session, job_uuid, job_uuid) == [job_uuid]
    assert load(db, job_uuid).state == "done"


def test_no_uuid_does_nothing(db):
    job_uuid = make_job(db, "pending")
    with db.session() as session:
        assert queuejob.requeue(session) == []
        assert queuejob.set_done(session) == []
        assert queuejob.cancel(session) == []
    assert states(db) == {"pending": 1}
    assert load(db, job_uuid).state == "pending"


def test_an_action_in_a_session_that_rolls_back_changes_nothing(db):
    job_uuid = make_job(db, "pending")
    before = row(db, job_uuid)
    with pytest.raises(RuntimeError), db.session(context={"user": "alice"}) as session:
        queuejob.cancel(session, job_uuid)
        assert DatabaseJobStorage(session).load(job_uuid).state == "cancelled"
        raise RuntimeError("the application failed")
    assert row(db, job_uuid) == before


# -- refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "state"), REFUSED)
def test_an_action_on_a_state_it_does_not_apply_to_is_refused_and_changes_nothing(
        db, action, state):
    job_uuid = make_job(db, state)
    before = row(db, job_uuid)
    # the refusal is caught inside the session, which then commits: still nothing changed
    with db.session(context={"user": "alice"}) as session, \
            pytest.raises(JobStateError) as refused:
        ACTIONS[action](session, job_uuid)
    message = str(refused.value)
    assert f"cannot {VERBS[action]} job {job_uuid}" in message
    assert f"it is {state}" in message
    assert row(db, job_uuid) == before


@pytest.mark.parametrize("action", list(ACTIONS))
def test_one_refused_uuid_refuses_the_whole_call(db, action):
    refused_states = [state for state in ("done", "cancelled", "wait_dependencies")
                      if state not in APPLIES[action]][:2]
    culprits = [make_job(db, state) for state in refused_states]
    pending = make_job(db, "pending")
    failed = make_job(db, "failed")
    uuids = [pending, culprits[0], failed, *culprits[1:]]
    before = {value: row(db, value) for value in uuids}
    with db.session(context={"user": "alice"}) as session, \
            pytest.raises(JobStateError,
                          match=f"job {culprits[0]}: it is {refused_states[0]}") as refused:
        ACTIONS[action](session, *uuids)
    if len(culprits) > 1:
        assert "(and 1 more)" in str(refused.value)
    assert {value: row(db, value) for value in uuids} == before


@pytest.mark.parametrize("action", list(ACTIONS))
def test_an_unknown_uuid_raises_no_such_job_error_and_changes_nothing(db, action):
    pending = make_job(db, "pending")
    before = row(db, pending)
    missing = str(uuid_module.uuid4())
    with db.session(context={"user": "alice"}) as session:
        with pytest.raises(NoSuchJobError, match=missing):
            ACTIONS[action](session, pending, missing)
        with pytest.raises(NoSuchJobError):
            ACTIONS[action](session, "not-a-uuid")
    assert row(db, pending) == before
    assert states(db) == {"pending": 1}


# -- identity keys ----------------------------------------------------------------------------

@pytest.mark.parametrize("holder_state", ["pending", "enqueued"])
def test_requeue_is_refused_while_another_job_holds_the_identity_key(db, holder_state):
    with db.session() as session:
        first = jobs.fail.delay(session, "m", identity_key="K")
    run_burst(db)
    assert load(db, first).state == "failed"
    holder = make_job(db, holder_state, identity_key="K")
    assert holder != first
    before = {value: row(db, value) for value in (first, holder)}
    with db.session() as session, pytest.raises(JobStateError) as refused:
        queuejob.requeue(session, first)
    message = str(refused.value)
    assert f"cannot requeue job {first}" in message
    assert f"superseded by {holder}" in message
    assert "identity key" in message
    assert {value: row(db, value) for value in (first, holder)} == before


def test_requeue_of_a_started_job_is_refused_while_another_job_holds_its_key(db):
    started = make_job(db, "started", identity_key="K")
    with db.session() as session:
        holder = jobs.add.delay(session, "m", 5, 5, identity_key="K")
    assert holder != started
    before = row(db, started)
    with db.session() as session, pytest.raises(JobStateError, match=f"superseded by {holder}"):
        queuejob.requeue(session, started)
    assert row(db, started) == before


def test_requeue_of_the_holder_itself_is_allowed(db):
    holder = make_job(db, "pending", identity_key="K")
    with db.session() as session:
        assert queuejob.requeue(session, holder) == [holder]
    assert load(db, holder).state == "pending"


def test_requeue_of_two_failed_jobs_with_the_same_key_keeps_the_key_unique(db):
    with db.session() as session:
        first = jobs.fail.delay(session, "m", "one", identity_key="K")
    run_burst(db)
    with db.session() as session:
        second = jobs.fail.delay(session, "m", "two", identity_key="K")
    run_burst(db)
    assert first != second
    assert states(db) == {"failed": 2}
    before = {value: row(db, value) for value in (first, second)}
    # only one of them could go back to pending: the call is refused with a clear
    # message, and nothing changes
    with db.session() as session, pytest.raises(JobStateError, match="identity key"):
        queuejob.requeue(session, first, second)
    assert {value: row(db, value) for value in (first, second)} == before


def test_a_key_freed_by_cancel_or_done_can_be_taken_again(db):
    cancelled = make_job(db, "pending", identity_key="K1")
    done = make_job(db, "pending", identity_key="K2")
    with db.session(context={"user": "alice"}) as session:
        queuejob.cancel(session, cancelled)
        queuejob.set_done(session, done)
    with db.session() as session:
        again1 = jobs.add.delay(session, "m", 1, 2, identity_key="K1")
        again2 = jobs.add.delay(session, "m", 1, 2, identity_key="K2")
    assert again1 != cancelled and again2 != done
    assert states(db) == {"cancelled": 1, "done": 1, "pending": 2}


def test_a_retry_while_another_job_holds_the_key_ends_superseded(db):
    with db.session() as session:
        first = jobs.always_retry.delay(session, "m", identity_key="K")
    [claimed] = claim(db)
    assert claimed["uuid"] == first
    # while the first attempt runs, the key is free: a second job takes it
    with db.session() as session:
        second = jobs.always_retry.delay(session, "m", identity_key="K")
    assert second != first
    retry = outcome_for(claimed, "pending", result="not yet", eta_delay=60.0)
    with db.transaction() as conn:
        assert db.store.record(conn, [retry]) == []
    job = load(db, first)
    assert job.state == "cancelled"
    assert job.result == f"Superseded by {second}"
    assert job.date_done is not None
    assert load(db, second).state == "pending"
    assert states(db) == {"cancelled": 1, "pending": 1}


def test_two_retries_of_one_key_written_together_keep_the_key_unique(db):
    # two jobs with key K run at once (the second was delayed while the first was
    # started); both raise RetryableJobError and a worker writes both outcomes in
    # one transaction: one goes back to pending, the other is superseded by it
    with db.session() as session:
        first = jobs.always_retry.delay(session, "m", identity_key="K")
    [first_attempt] = claim(db)
    with db.session() as session:
        second = jobs.always_retry.delay(session, "m", identity_key="K")
    [second_attempt] = claim(db)
    assert (first_attempt["uuid"], second_attempt["uuid"]) == (first, second)
    retries = [outcome_for(first_attempt, "pending", result="not yet", eta_delay=60.0),
               outcome_for(second_attempt, "pending", result="not yet", eta_delay=60.0)]
    with db.transaction() as conn:
        assert db.store.record(conn, retries) == []
    assert states(db) == {"pending": 1, "cancelled": 1}
    pending = first if load(db, first).state == "pending" else second
    superseded = second if pending == first else first
    assert load(db, superseded).result == f"Superseded by {pending}"


def test_a_retry_with_its_key_free_goes_back_to_pending(db):
    with db.session() as session:
        first = jobs.always_retry.delay(session, "m", identity_key="K")
    [claimed] = claim(db)
    retry = outcome_for(claimed, "pending", result="not yet", eta_delay=60.0)
    with db.transaction() as conn:
        assert db.store.record(conn, [retry]) == []
    job = load(db, first)
    assert (job.state, job.result, job.retry) == ("pending", "not yet", 1)
    assert job.eta > dt.datetime.now(UTC) + dt.timedelta(seconds=30)
    with db.session() as session:
        # it holds its key again
        assert jobs.always_retry.delay(session, "m", identity_key="K") == first


# -- fencing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("late_state", ["done", "failed", "pending"])
def test_a_late_outcome_of_a_requeued_attempt_is_fenced(db, late_state):
    job_uuid = make_job(db, "pending")
    [claimed] = claim(db)
    assert claimed["uuid"] == job_uuid
    with db.session() as session:
        queuejob.requeue(session, job_uuid)
    before = row(db, job_uuid)
    assert before["state"] == "pending"
    late = outcome_for(claimed, late_state, result="late", exc_info="late traceback",
                       eta_delay=60.0 if late_state == "pending" else None)
    with db.transaction() as conn:
        lost = db.store.record(conn, [late])
    assert [o.uuid for o in lost] == [job_uuid]
    assert row(db, job_uuid) == before


def test_a_late_outcome_does_not_touch_the_next_attempt(db):
    job_uuid = make_job(db, "pending")
    [first_attempt] = claim(db, "worker-1")
    with db.session() as session:
        queuejob.requeue(session, job_uuid)
    [second_attempt] = claim(db, "worker-2")
    assert second_attempt["uuid"] == job_uuid
    assert second_attempt["attempt"] == first_attempt["attempt"] + 1
    with db.transaction() as conn:
        lost = db.store.record(conn, [outcome_for(first_attempt, "failed",
                                                    exc_info="late traceback")])
    assert [o.uuid for o in lost] == [job_uuid]
    stored = row(db, job_uuid)
    assert (stored["state"], stored["worker_id"], stored["exc_info"]) == \
        ("started", "worker-2", None)
    with db.transaction() as conn:
        assert db.store.record(conn, [outcome_for(second_attempt, "done",
                                                    result="3")]) == []
    assert (load(db, job_uuid).state, load(db, job_uuid).result) == ("done", "3")
