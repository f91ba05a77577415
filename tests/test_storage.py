"""DatabaseJobStorage (the page's OpenERPJobStorage) and the JobStorage interface."""

from __future__ import annotations

import datetime as dt
import uuid as uuid_module
from uuid import UUID

import pytest

import queuejob
from queuejob import (
    DatabaseJobStorage,
    Job,
    JobStorage,
    NoSuchJobError,
    identity_exact,
)
from tests import jobs
from tests.helpers import load, row, run_burst, states

# the core cases, on PostgreSQL a second time through PgBouncer in transaction mode
pytestmark = pytest.mark.through_pgbouncer

UTC = dt.UTC


def near_now(value: dt.datetime, seconds: float = 30.0) -> bool:
    now = dt.datetime.now(UTC)
    return value.tzinfo is not None and abs((now - value).total_seconds()) < seconds


def unknown_uuid() -> str:
    return str(uuid_module.uuid4())


# -- the interface --------------------------------------------------------------------------

def test_database_job_storage_implements_the_job_storage_interface(db):
    assert issubclass(DatabaseJobStorage, JobStorage)
    with db.session() as session:
        assert isinstance(DatabaseJobStorage(session), JobStorage)
    interface = JobStorage()
    with pytest.raises(NotImplementedError):
        interface.exists(unknown_uuid())
    with pytest.raises(NotImplementedError):
        interface.load(unknown_uuid())
    with pytest.raises(NotImplementedError):
        interface.store(Job(func=jobs.add, model_name="m", args=(1, 2)))


# -- enqueue ----------------------------------------------------------------------------------

def test_enqueue_returns_the_uuid_of_a_pending_job_with_every_option(db):
    eta = dt.datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    before = dt.datetime.now(UTC)
    with db.session(user_id=12, context={"lang": "fr"}) as session:
        job_uuid = DatabaseJobStorage(session).enqueue(
            jobs.add, model_name="res.partner", args=(1,), kwargs={"b": 2}, priority=3,
            eta=eta, max_retries=7, description="Adding things", channel="root.sub",
            identity_key="key-1")
    assert isinstance(job_uuid, str)
    assert str(UUID(job_uuid)) == job_uuid
    job = load(db, job_uuid)
    assert job.uuid == job_uuid
    assert job.state == "pending"
    assert job.func is jobs.add
    assert (job.func_name, job.model_name, job.args, job.kwargs) == \
        ("tests.jobs.add", "res.partner", ("res.partner", 1), {"b": 2})
    assert job.func_string == "tests.jobs.add('res.partner', 1, b=2)"
    assert (job.priority, job.max_retries, job.retry) == (3, 7, 0)
    assert job.eta == eta
    assert job.description == "Adding things"
    assert job.channel == "root.sub"
    assert job.identity_key == "key-1"
    assert job.user_id == 12
    assert job.context == {"lang": "fr"}
    assert before - dt.timedelta(seconds=5) <= job.date_created <= \
        dt.datetime.now(UTC) + dt.timedelta(seconds=5)
    assert job.date_created.tzinfo is not None
    assert (job.date_enqueued, job.date_started, job.date_done) == (None, None, None)
    assert (job.result, job.exc_info) == (None, None)


def test_enqueue_defaults(db):
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue(jobs.add)
    job = load(db, job_uuid)
    assert (job.model_name, job.args, job.kwargs) == (None, (), {})
    assert (job.priority, job.max_retries, job.eta, job.channel) == (10, 5, None, "root")
    assert job.description == "Add two numbers."
    assert job.identity_key is None
    assert job.user_id is None and job.context == {}


def test_enqueue_uses_the_default_channel_of_the_function(db):
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue(jobs.export, "m", args=("/dev/null",))
    assert load(db, job_uuid).channel == "root.export"


@pytest.mark.parametrize("eta", [3600, dt.timedelta(hours=1)])
def test_enqueue_with_a_relative_eta(db, eta):
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue(jobs.add, "m", args=(1, 2), eta=eta)
    stored = load(db, job_uuid).eta
    expected = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    assert abs((stored - expected).total_seconds()) < 10


def test_enqueue_with_a_naive_eta_is_utc(db):
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue(
            jobs.add, "m", args=(1, 2), eta=dt.datetime(2032, 1, 1, 12, 0, 0))
    assert load(db, job_uuid).eta == dt.datetime(2032, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_enqueue_with_a_held_identity_key_returns_the_holder_and_stores_nothing(db):
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        first = storage.enqueue(jobs.add, "m", args=(1, 2), identity_key="same")
        second = storage.enqueue(jobs.add, "m", args=(3, 4), identity_key="same")
    assert first == second
    assert states(db) == {"pending": 1}
    assert load(db, first).args == ("m", 1, 2)


def test_enqueue_with_an_identity_key_function(db):
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        first = storage.enqueue(jobs.add, "m", args=(1, 2), identity_key=identity_exact)
        same = storage.enqueue(jobs.add, "m", args=(1, 2), identity_key=identity_exact)
        other = storage.enqueue(jobs.add, "m", args=(1, 3), identity_key=identity_exact)
    assert first == same != other
    job = load(db, first)
    assert job.identity_key == identity_exact(job)


def test_enqueue_refuses_a_disallowed_argument_and_stores_nothing(db):
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        with pytest.raises(TypeError, match=r"tests\.jobs\.NotAllowed"):
            storage.enqueue(jobs.noop, "m", args=(jobs.NotAllowed(),))
        with pytest.raises(TypeError, match=r"builtins\.set"):
            storage.enqueue(jobs.noop, "m", kwargs={"values": {1, 2}})
    assert states(db) == {}


def test_enqueue_in_a_session_that_rolls_back_stores_nothing(db):
    with pytest.raises(RuntimeError), db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue(jobs.add, "m", args=(1, 2))
        assert DatabaseJobStorage(session).exists(job_uuid)  # visible in its transaction
        raise RuntimeError("rolled back")
    with db.session() as session:
        assert not DatabaseJobStorage(session).exists(job_uuid)
    assert states(db) == {}


# -- enqueue_resolve_args ---------------------------------------------------------------------

def test_enqueue_resolve_args_pops_the_reserved_keywords(db):
    eta = dt.datetime(2031, 1, 1, tzinfo=UTC)
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue_resolve_args(
            jobs.add, "a.model", 1, b=2, priority=4, eta=eta, max_retries=2,
            description="resolved", channel="root.resolved", identity_key="resolved-key")
    job = load(db, job_uuid)
    assert (job.model_name, job.args, job.kwargs) == ("a.model", ("a.model", 1), {"b": 2})
    assert (job.priority, job.eta, job.max_retries) == (4, eta, 2)
    assert (job.description, job.channel, job.identity_key) == \
        ("resolved", "root.resolved", "resolved-key")


def test_enqueue_resolve_args_takes_the_model_name_from_the_first_positional_argument(db):
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        positional = storage.enqueue_resolve_args(jobs.add, "first.model", 1, 2)
        keyword = storage.enqueue_resolve_args(jobs.add, 1, 2, model_name="kw.model")
        nothing = storage.enqueue_resolve_args(jobs.noop)
    assert (load(db, positional).model_name, load(db, positional).args) == \
        ("first.model", ("first.model", 1, 2))
    assert (load(db, keyword).model_name, load(db, keyword).args) == \
        ("kw.model", ("kw.model", 1, 2))
    assert (load(db, nothing).model_name, load(db, nothing).args) == (None, ())


def test_enqueue_resolve_args_does_not_pass_reserved_keywords_to_the_function(db):
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue_resolve_args(
            jobs.add, "m", 2, b=5, priority=1, max_retries=1, eta=0, description="d",
            channel="root", identity_key="k")
    assert load(db, job_uuid).kwargs == {"b": 5}
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result) == ("done", "7")


def test_enqueue_resolve_args_keeps_the_session_user_and_context(db):
    with db.session(user_id=3, context={"tz": "Europe/Paris"}) as session:
        job_uuid = DatabaseJobStorage(session).enqueue_resolve_args(jobs.noop, "m")
    job = load(db, job_uuid)
    assert (job.user_id, job.context) == (3, {"tz": "Europe/Paris"})


# -- exists -----------------------------------------------------------------------------------

def test_exists(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        assert storage.exists(job_uuid) is True
        assert storage.exists(unknown_uuid()) is False
        assert storage.exists("not-a-uuid") is False


# -- load -------------------------------------------------------------------------------------

def test_load_of_an_unknown_uuid_raises_no_such_job_error(db):
    missing = unknown_uuid()
    with db.session() as session, pytest.raises(NoSuchJobError, match=missing):
        DatabaseJobStorage(session).load(missing)


@pytest.mark.parametrize("bad", ["not-a-uuid", "", "1234", "'; DROP TABLE queue_job; --"])
def test_load_of_a_malformed_uuid_raises_no_such_job_error(db, bad):
    with db.session() as session:
        jobs.add.delay(session, "m", 1, 2)
    with db.session() as session, pytest.raises(NoSuchJobError):
        DatabaseJobStorage(session).load(bad)
    assert states(db) == {"pending": 1}


def test_load_sees_a_job_enqueued_in_the_same_session(db):
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job_uuid = jobs.add.delay(session, "m", 1, 2)
        assert storage.load(job_uuid).state == "pending"


def test_load_of_a_done_job_has_its_dates_and_result(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 20, 22)
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result, job.retry, job.exc_info) == ("done", "42", 1, None)
    for date in (job.date_created, job.date_started, job.date_done):
        assert near_now(date)
    assert job.date_created <= job.date_started <= job.date_done


def test_load_of_a_failed_job_has_its_traceback(db):
    with db.session() as session:
        job_uuid = jobs.fail.delay(session, "m", "exploded")
    run_burst(db)
    job = load(db, job_uuid)
    assert job.state == "failed"
    assert "Traceback" in job.exc_info
    assert "ValueError: exploded" in job.exc_info
    assert job.retry == 1
    assert job.date_done is None


def test_loaded_arguments_round_trip(db):
    values = ("text", 3, 1.5, None, [1, (2, 3)], {"k": dt.date(2026, 2, 3)},
              UUID("12345678-1234-5678-1234-567812345678"), jobs.Point(1, 2))
    with db.session() as session:
        job_uuid = DatabaseJobStorage(session).enqueue(
            jobs.noop, "m", args=values, kwargs={"when": dt.datetime(2026, 1, 1, tzinfo=UTC)})
    job = load(db, job_uuid)
    assert job.args == ("m", *values)  # the model name first (connector 9.0)
    assert type(job.args[5][1]) is tuple
    assert job.kwargs == {"when": dt.datetime(2026, 1, 1, tzinfo=UTC)}


# -- store ------------------------------------------------------------------------------------

def test_store_inserts_a_new_job(db):
    eta = dt.datetime(2030, 6, 1, 8, 0, 0, tzinfo=UTC)
    new = Job(func=jobs.add, model_name="m", args=(4,), kwargs={"b": 5}, priority=2,
              eta=eta, max_retries=9, description="stored", channel="root.store",
              identity_key="stored-key")
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        assert not storage.exists(new.uuid)
        storage.store(new)
        assert storage.exists(new.uuid)
    job = load(db, new.uuid)
    assert job.state == "pending"
    assert (job.func_name, job.model_name, job.args, job.kwargs) == \
        ("tests.jobs.add", "m", ("m", 4), {"b": 5})
    assert (job.priority, job.eta, job.max_retries) == (2, eta, 9)
    assert (job.description, job.channel, job.identity_key) == \
        ("stored", "root.store", "stored-key")
    assert states(db) == {"pending": 1}


def test_a_stored_new_job_runs(db):
    new = Job(func=jobs.add, model_name="m", args=(4, 5))
    with db.session() as session:
        DatabaseJobStorage(session).store(new)
    run_burst(db)
    job = load(db, new.uuid)
    assert (job.state, job.result) == ("done", "9")


def test_store_updates_an_existing_job(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key="old-key")
    new_eta = dt.datetime(2033, 3, 3, 3, 3, 3, tzinfo=UTC)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.priority = 1
        job.max_retries = 11
        job.description = "changed"
        job.channel = "root.changed"
        job.eta = new_eta
        job.identity_key = "new-key"
        job.retry = 2
        job.set_done(result="stored by hand")
        storage.store(job)
    stored = load(db, job_uuid)
    assert stored.state == "done"
    assert stored.result == "stored by hand"
    assert (stored.priority, stored.max_retries, stored.retry) == (1, 11, 2)
    assert (stored.description, stored.channel, stored.identity_key) == \
        ("changed", "root.changed", "new-key")
    assert stored.eta == new_eta
    assert near_now(stored.date_done)
    # arguments are not touched, and no second job is inserted
    assert (stored.args, stored.model_name) == (("m", 1, 2), "m")
    assert states(db) == {"done": 1}


def test_store_writes_failed_and_enqueued_states_and_their_fields(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.set_enqueued()
        storage.store(job)
    enqueued = load(db, job_uuid)
    assert enqueued.state == "enqueued" and near_now(enqueued.date_enqueued)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.set_started()
        job.set_failed(exc_info="Traceback: it broke")
        storage.store(job)
    failed = load(db, job_uuid)
    assert failed.state == "failed"
    assert failed.exc_info == "Traceback: it broke"
    assert near_now(failed.date_started)


def test_store_of_a_pending_job_back_from_failed_lets_a_worker_run_it(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.set_failed(exc_info="failed on purpose")
        storage.store(job)
    run_burst(db)
    assert load(db, job_uuid).state == "failed"  # a failed job is not run
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.set_pending(result="back")
        storage.store(job)
    assert load(db, job_uuid).state == "pending"
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.result) == ("done", "3")


def test_store_in_a_session_that_rolls_back_changes_nothing(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
    before = row(db, job_uuid)
    with pytest.raises(RuntimeError), db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.priority = 99
        job.set_done(result="never")
        storage.store(job)
        raise RuntimeError("rolled back")
    assert row(db, job_uuid) == before


# -- identity keys ----------------------------------------------------------------------------

def test_job_record_with_same_identity_key_returns_the_pending_holder(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key="held")
        jobs.add.delay(session, "m", 1, 2, identity_key="other")
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        record = storage.job_record_with_same_identity_key("held")
        assert record is not None
        assert record["uuid"] == job_uuid
        assert record["state"] == "pending"
        assert record["identity_key"] == "held"
        assert storage.job_record_with_same_identity_key("nobody-holds-this") is None


def test_job_record_with_same_identity_key_returns_an_enqueued_holder(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key="held")
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        job = storage.load(job_uuid)
        job.set_enqueued()
        storage.store(job)
    with db.session() as session:
        record = DatabaseJobStorage(session).job_record_with_same_identity_key("held")
    assert record is not None and record["uuid"] == job_uuid
    assert record["state"] == "enqueued"


@pytest.mark.parametrize(("job_function", "args", "final"),
                         [(jobs.add, (1, 2), "done"), (jobs.fail, (), "failed")])
def test_job_record_with_same_identity_key_ignores_finished_jobs(db, job_function, args,
                                                                 final):
    with db.session() as session:
        job_uuid = job_function.delay(session, "m", *args, identity_key="finished")
    run_burst(db)
    assert load(db, job_uuid).state == final
    with db.session() as session:
        assert DatabaseJobStorage(session).job_record_with_same_identity_key("finished") is None


def test_job_record_with_same_identity_key_ignores_cancelled_jobs(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key="gone")
    with db.session(context={"user": "tester"}) as session:
        queuejob.cancel(session, job_uuid)
    with db.session() as session:
        assert DatabaseJobStorage(session).job_record_with_same_identity_key("gone") is None


# -- db_record --------------------------------------------------------------------------------

def test_db_record_and_db_record_from_uuid(db):
    with db.session(user_id=5) as session:
        job_uuid = jobs.add.delay(session, "rec.model", 1, 2, priority=8)
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        by_uuid = storage.db_record_from_uuid(job_uuid)
        by_job = storage.db_record(storage.load(job_uuid))
    assert isinstance(by_uuid, dict)
    assert by_uuid == by_job
    assert by_uuid["uuid"] == job_uuid
    assert by_uuid["state"] == "pending"
    assert by_uuid["func_name"] == "tests.jobs.add"
    assert by_uuid["model_name"] == "rec.model"
    assert by_uuid["priority"] == 8
    assert by_uuid["user_id"] == 5
    assert by_uuid == row(db, job_uuid)


def test_db_record_of_an_unknown_job_is_none(db):
    with db.session() as session:
        storage = DatabaseJobStorage(session)
        assert storage.db_record_from_uuid(unknown_uuid()) is None
        assert storage.db_record_from_uuid("not-a-uuid") is None
        assert storage.db_record(Job(func=jobs.add, model_name="m", args=(1, 2))) is None


def test_db_record_follows_the_state(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
    run_burst(db)
    with db.session() as session:
        record = DatabaseJobStorage(session).db_record_from_uuid(job_uuid)
    assert (record["state"], record["result"]) == ("done", "3")


# -- related actions --------------------------------------------------------------------------

def test_related_action_of_a_loaded_job_calls_the_action_with_its_kwargs(db):
    with db.session() as session:
        job_uuid = jobs.export_partner.delay(session, "res.partner", 42)
    with db.session() as session:
        job = DatabaseJobStorage(session).load(job_uuid)
        assert job.related_action(session) == {"res_model": "res.partner", "res_id": 42,
                                               "extra": 2}


def test_related_action_is_none_for_a_function_without_one(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
    with db.session() as session:
        job = DatabaseJobStorage(session).load(job_uuid)
        assert job.related_action(session) is None


def test_enqueue_many_stores_jobs_set_done_or_cancelled_before_they_were_stored(db):
    """Jobs already finished when handed to enqueue_many are written whole (state,
    result, dates), beside new ones streamed as usual; a job whose priority was set
    past what the database stores is refused before anything is written."""
    done, cancelled = Job(func=jobs.noop, args=("m", 1)), Job(func=jobs.noop, args=("m", 2))
    done.set_done(result="done by hand")
    cancelled.set_cancelled(result="not needed")
    fresh = [Job(func=jobs.noop, args=("m", n)) for n in range(3, 6)]
    with db.session() as session:
        uuids = DatabaseJobStorage(session).enqueue_many([done, *fresh, cancelled])
    assert uuids == [done.uuid, *(job.uuid for job in fresh), cancelled.uuid]
    assert states(db) == {"done": 1, "cancelled": 1, "pending": 3}
    assert (load(db, done.uuid).result, load(db, cancelled.uuid).result) == \
        ("done by hand", "not needed")
    assert load(db, done.uuid).date_done is not None
    wrong = [Job(func=jobs.noop, args=("m", n)) for n in range(2)]
    wrong[1].priority = 2**40
    with db.session() as session, pytest.raises(ValueError, match="priority must be"):
        DatabaseJobStorage(session).enqueue_many(wrong)
    assert sum(states(db).values()) == 5
