"""Delaying jobs: what is stored, in which transaction, and what is refused."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import DatabaseJobStorage, identity_exact
from tests import jobs
from tests.helpers import job_rows, load, row, run_burst, states

# the core cases, on PostgreSQL a second time through PgBouncer in transaction mode
pytestmark = pytest.mark.through_pgbouncer


def test_calling_a_job_function_runs_it_synchronously():
    assert jobs.add(None, "a.model", 2, 3) == 5


def test_delay_stores_a_pending_job_with_the_options(db):
    eta = dt.datetime(2030, 1, 2, 3, 4, 5)  # naive: UTC
    with db.session(user_id=7, context={"lang": "en"}) as session:
        job_uuid = jobs.add.delay(session, "a.model", 1, b=2, priority=30, max_retries=3,
                                  eta=eta, description="Adding", channel="root.sub")
    assert isinstance(job_uuid, str)
    UUID(job_uuid)
    job = load(db, job_uuid)
    assert job.state == "pending"
    assert (job.func_name, job.model_name, job.args, job.kwargs) == \
        ("tests.jobs.add", "a.model", ("a.model", 1), {"b": 2})
    assert (job.priority, job.max_retries, job.retry) == (30, 3, 0)
    assert job.eta == eta.replace(tzinfo=dt.UTC)
    assert job.eta.tzinfo is not None and job.date_created.tzinfo is not None
    assert job.description == "Adding"
    assert job.channel == "root.sub"
    assert job.user_id == 7
    assert job.context == {"lang": "en"}
    assert job.func_string == "tests.jobs.add('a.model', 1, b=2)"


def test_defaults(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "a.model", 1, 2)
        no_doc = jobs.noop.delay(session, None)
    job = load(db, job_uuid)
    assert (job.priority, job.max_retries, job.eta, job.channel) == (10, 5, None, "root")
    assert job.description == "Add two numbers."
    assert load(db, no_doc).description == "Do nothing."
    assert load(db, no_doc).model_name is None


def test_description_without_docstring_names_the_function(db):
    with db.session() as session:
        job_uuid = jobs.fail.delay(session, "m")
    assert load(db, job_uuid).description == "Function fail"


def test_default_channel_of_the_decorator_and_the_channel_override(db):
    with db.session() as session:
        default = jobs.export.delay(session, "m", "/dev/null")
        overridden = jobs.export.delay(session, "m", "/dev/null", channel="root.other")
        short = jobs.export.delay(session, "m", "/dev/null", channel="other.sub")
    assert load(db, default).channel == "root.export"
    assert load(db, overridden).channel == "root.other"
    assert load(db, short).channel == "root.other.sub"


@pytest.mark.parametrize("eta", [60 * 60 * 5, dt.timedelta(hours=5)])
def test_relative_eta_counts_from_now(db, eta):
    before = dt.datetime.now(dt.UTC)
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, eta=eta)
    stored = load(db, job_uuid).eta
    assert before + dt.timedelta(hours=5) - dt.timedelta(seconds=5) <= stored
    assert stored <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=5, seconds=5)


def test_reserved_keywords_are_not_passed_to_the_function(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, priority=1, max_retries=1, eta=0,
                                  description="d", channel="root", identity_key="k")
    job = load(db, job_uuid)
    assert job.kwargs == {}
    run_burst(db)
    assert load(db, job_uuid).result == "3"


def test_rollback_of_the_session_leaves_no_job(db):
    with pytest.raises(RuntimeError), db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2)
        raise RuntimeError("the application failed")
    with db.session() as session:
        assert not DatabaseJobStorage(session).exists(job_uuid)
    assert states(db) == {}


def test_application_sql_runs_in_the_same_transaction(db):
    placeholder = "?" if db.dialect == "sqlite" else "%s"
    with db.session() as session:
        session.execute("CREATE TABLE app_rows (value integer)")
    with pytest.raises(RuntimeError), db.session() as session:
        session.execute(f"INSERT INTO app_rows VALUES ({placeholder})", (1,))
        jobs.add.delay(session, "m", 1, 2)
        raise RuntimeError("rolled back")
    with db.session() as session:
        session.execute(f"INSERT INTO app_rows VALUES ({placeholder})", (2,))
        kept = jobs.add.delay(session, "m", 1, 2)
    with db.session() as session:
        assert [tuple(r) for r in session.execute("SELECT value FROM app_rows").fetchall()] \
            == [(2,)]
    assert states(db) == {"pending": 1}
    assert load(db, kept).state == "pending"


def test_a_job_is_invisible_to_workers_until_its_session_commits(db):
    inside = threading.Event()
    release = threading.Event()

    def enqueue():
        with db.session() as session:
            jobs.add.delay(session, "m", 1, 2)
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=enqueue)
    thread.start()
    try:
        assert inside.wait(10)
        if db.dialect == "postgresql":
            # the worker sees nothing to run while the transaction is open
            run_burst(db)
    finally:
        release.set()
        thread.join(10)
    assert states(db) == {"pending": 1}
    run_burst(db)
    assert states(db) == {"done": 1}


def test_identity_key_drops_duplicates_while_pending(db):
    with db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key="same")
        second = jobs.add.delay(session, "m", 5, 5, identity_key="same")
        other = jobs.add.delay(session, "m", 1, 2, identity_key="other")
    assert first == second != other
    assert states(db) == {"pending": 2}
    run_burst(db)
    with db.session() as session:
        third = jobs.add.delay(session, "m", 1, 2, identity_key="same")
    assert third != first  # the first one is done: a new job is stored


def test_identity_exact_keys_on_model_function_and_arguments(db):
    with db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact)
        same = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact)
        other_args = jobs.add.delay(session, "m", 1, 3, identity_key=identity_exact)
        other_model = jobs.add.delay(session, "n", 1, 2, identity_key=identity_exact)
    assert first == same
    assert len({first, other_args, other_model}) == 3
    assert load(db, first).identity_key == identity_exact(load(db, first))


def test_allowed_argument_types_round_trip(db):
    values = ["text", 1, 2.5, True, None, [1, [2]], (1, (2, 3)), {"k": {"n": 1}},
              dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC), dt.date(2026, 1, 1),
              dt.timedelta(seconds=90), Decimal("1.10"),
              UUID("12345678-1234-5678-1234-567812345678"), jobs.add,
              jobs.Box([1, "two"]), jobs.Point(1, 2), jobs.Point]
    with db.session() as session:
        job_uuid = jobs.noop.delay(session, "m", *values, key=(1, 2))
    job = load(db, job_uuid)
    assert list(job.args) == ["m", *values]  # the model name first, as it was given
    assert type(job.args[7]) is tuple
    assert job.kwargs == {"key": (1, 2)}


def test_a_disallowed_argument_is_refused_and_nothing_is_stored(db):
    with db.session() as session:
        with pytest.raises(TypeError, match=r"builtins\.set"):
            jobs.noop.delay(session, "m", {1, 2})
        with pytest.raises(TypeError, match="bytes"):
            jobs.noop.delay(session, "m", key=b"raw")
        with pytest.raises(TypeError, match="object"):
            jobs.noop.delay(session, "m", object())
        with pytest.raises(TypeError, match=r"tests\.jobs\.NotAllowed"):
            jobs.noop.delay(session, "m", [jobs.NotAllowed()])
    assert states(db) == {}


def test_arguments_over_the_size_limit_are_refused(db_url):
    small = queuejob.open(db_url, max_args_size=1000)
    try:
        with small.session() as session:
            with pytest.raises(ValueError, match="over the limit of 1000 bytes"):
                jobs.noop.delay(session, "m", "x" * 2000)
            jobs.noop.delay(session, "m", "x" * 100)
        assert states(small) == {"pending": 1}
    finally:
        small.close()


def test_stored_arguments_do_not_change_when_the_job_mutates_them(db):
    items, mapping = ["a"], {"k": 1}
    with db.session() as session:
        job_uuid = jobs.mutate_args.delay(session, "m", items, mapping)
    items.append("after delay")  # the caller's objects are not the stored ones
    run_burst(db)
    job = load(db, job_uuid)
    assert job.state == "done" and job.result == "2"
    assert job.args == ("m", ["a"], {"k": 1})


def test_delay_without_model_name(db):
    with db.session() as session:
        job_uuid = jobs.noop.delay(session)
    job = load(db, job_uuid)
    assert job.model_name is None and job.args == ()
    assert row(db, job_uuid)["func_name"] == "tests.jobs.noop"


def test_delay_many_stores_every_job_in_order(db):
    with db.session(user_id=3) as session:
        uuids = jobs.add.delay_many(session, [("m", n, n) for n in range(2500)], priority=7)
        mixed = jobs.add.delay_many(session, [
            {"args": ("m", 1), "kwargs": {"b": 2}, "priority": 1, "channel": "root.x"},
            ("n", 5, 6)])
    assert len(uuids) == len(set(uuids)) == 2500
    assert states(db) == {"pending": 2502}
    job = load(db, uuids[1234])
    assert (job.args, job.priority, job.user_id, job.model_name) == \
        (("m", 1234, 1234), 7, 3, "m")
    first = load(db, mixed[0])
    assert (first.kwargs, first.priority, first.channel) == ({"b": 2}, 1, "root.x")
    assert load(db, mixed[1]).args == ("n", 5, 6)


def test_delay_many_honours_identity_keys(db):
    with db.session() as session:
        held = jobs.add.delay(session, "m", 1, 1, identity_key=identity_exact)
    with db.session() as session:
        uuids = jobs.add.delay_many(session, [("m", 1, 1), ("m", 2, 2), ("m", 2, 2)],
                                    identity_key=identity_exact)
    assert uuids[0] == held
    assert uuids[1] == uuids[2] != held
    assert states(db) == {"pending": 2}


def test_delay_many_refuses_a_bad_argument_and_stores_nothing(db):
    with db.session() as session, pytest.raises(TypeError, match="set"):
        jobs.add.delay_many(session, [("m", 1, 1), ("m", {1}, 2)])
    assert states(db) == {}


#: columns that differ between two jobs stored from the same call (the eta is compared
#: from the creation date)
VARYING = {"id", "uuid", "date_created", "eta"}
#: text any database stores (a NUL or a lone surrogate is one of the faults below)
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=8)
ARGUMENT = st.one_of(st.integers(-2**70, 2**70), TEXT, st.none(), st.booleans(),
                     st.floats(), st.lists(st.integers(), max_size=2),
                     st.sampled_from([(1, 2), {"k": 1}, dt.date(2030, 1, 1)]))
SHARED = st.fixed_dictionaries({}, optional={
    "priority": st.integers(-5, 20), "max_retries": st.integers(0, 4),
    "timeout": st.floats(0.5, 60), "channel": st.sampled_from(["root", "root.x"]),
    "description": TEXT,
    "concurrency_key": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=4),
    "eta": st.one_of(st.integers(-10, 3600), st.just(dt.datetime(2030, 1, 2, 3, 4, 5)),
                     st.just(dt.datetime(2031, 5, 6, tzinfo=dt.UTC))),
    "model_name": TEXT.filter(bool)})
#: one thing wrong at most: (where, what)
FAULT = st.one_of(st.none(), st.none(), st.none(), st.sampled_from([
    ("priority", "high"), ("priority", 2**40), ("max_retries", -1), ("channel", "root..x"),
    ("model_name", 5), ("model_name", "m\x00"), ("description", "\ud800"),
    ("argument", {1}), ("argument", float), ("user_id", "7"), ("user_id", 2**64)]))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.one_of(st.lists(ARGUMENT, max_size=3).map(tuple),
                                st.lists(ARGUMENT, max_size=3)), min_size=2, max_size=4),
       options=SHARED, user_id=st.one_of(st.none(), st.integers(-2**63, 2**63 - 1)),
       fault=FAULT)
def test_delay_many_stores_what_delay_stores_call_by_call(db, calls, options, user_id,
                                                          fault):
    """delay_many's calls (stored without a Job each when they are tuples or lists)
    give the rows that delay() gives for each call with the same options, or the same
    refusal, in one line, and nothing of the batch is stored."""
    if fault is not None:
        where, value = fault
        if where == "argument":
            calls = [*calls[:-1], (*calls[-1], value)]
        elif where == "user_id":
            user_id = value
        else:
            options = {**options, where: value}

    def outcome(function):
        try:
            return "ok", function()
        except Exception as exc:  # the refusal is what is compared
            return type(exc).__name__, str(exc)

    def apart(session):
        return [jobs.noop.delay(session, *call, **options) for call in calls]

    results = []
    for store in (apart, lambda session: jobs.noop.delay_many(session, calls, **options)):
        before = len(job_rows(db))
        with db.session(user_id=user_id, context={"lang": "fr"}) as session:
            results.append(outcome(lambda store=store, session=session: store(session)))
    (kind, one), (kind_many, many) = results
    assert (kind == "ok") == (fault is None), results
    if fault is not None:
        assert (kind_many, many) == (kind, one)
        assert "\n" not in many
        assert len(job_rows(db)) == before  # nothing of delay_many's calls
        return
    assert kind_many == "ok", results
    by_uuid = {stored["uuid"]: stored for stored in job_rows(db)}

    def compared(stored):
        eta = stored["eta"] and stored["eta"] - stored["date_created"] \
            if "eta" in options and not isinstance(options["eta"], dt.datetime) \
            else stored["eta"]
        return {**{key: value for key, value in stored.items() if key not in VARYING},
                "eta": eta}
    for alone, together in zip(one, many, strict=True):
        assert compared(by_uuid[alone]) == compared(by_uuid[together])


@pytest.mark.parametrize("user_id", ["7", 2**63, True, 1.5])
def test_a_user_id_no_database_stores_is_refused_at_delay(db, user_id):
    """The user a job is created for is refused where the job is written, in one line,
    not by the database at the commit of the caller's whole transaction."""
    with db.session(user_id=user_id) as session:
        for call in (lambda: jobs.noop.delay(session, "m"),
                     lambda: jobs.noop.delay_many(session, [("m", 1), ("m", 2)])):
            with pytest.raises((TypeError, ValueError), match="user_id must"):
                call()
    with db.session(user_id=2**63 - 1) as session:
        kept = jobs.noop.delay_many(session, [("m", 1), ("m", 2)])
    assert sorted(stored["uuid"] for stored in job_rows(db)) == sorted(kept)
    assert {stored["user_id"] for stored in job_rows(db)} == {2**63 - 1}


@pytest.mark.parametrize("call", [
    lambda session: jobs.noop.delay(session, "m", description="a\x00b"),
    lambda session: jobs.noop.delay(session, "m", identity_key="key\ud800"),
    lambda session: jobs.noop.delay(session, "model\x00", 1),
    lambda session: jobs.noop.delay(session, "m", description="lone \udce9"),
    lambda session: jobs.noop.delay_many(session, [("m", 1), ("bad\x00model", 2)]),
])
def test_a_text_no_database_stores_is_refused_at_delay_and_nothing_is_stored(db, call):
    """A NUL character (PostgreSQL refuses it) or a lone surrogate (not UTF-8) in a text
    stored as it is: refused where it is written, in one line, on both backends."""
    with db.session() as session:
        with pytest.raises(ValueError, match="cannot be stored"):
            call(session)
        kept = jobs.noop.delay(session, "m", "fine")
    assert [stored["uuid"] for stored in job_rows(db)] == [kept]
