"""The flow keys of delay(): ``concurrency_key`` stored with the job, and ``debounce``,
which gathers the calls with one identity key into one pending job holding the last
call's arguments, race-safe on both databases."""

from __future__ import annotations

import datetime as dt
import threading
import uuid as uuid_module

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import identity_exact
from queuejob.core.errors import ConfigurationError
from queuejob.core.graph import chain
from queuejob.core.job import MAX_DEBOUNCE
from queuejob.testing import trap_jobs
from tests import jobs
from tests.helpers import load, row, run_burst, states

ONE_LINE_ERRORS = (TypeError, ValueError, ConfigurationError)


def db_now(db: queuejob.Database) -> dt.datetime:
    return db.read(db.store.database_now)


def set_state(db: queuejob.Database, job_uuid: str, state: str) -> None:
    """Put a job in ``state`` as a worker (or the graph) would have."""
    mark = "?" if db.dialect == "sqlite" else "%s"
    with db.session() as session:
        session.execute(f"UPDATE queue_job SET state = {mark} WHERE uuid = {mark}",
                        (state, job_uuid))


def keyed_rows(db: queuejob.Database, identity_key: str) -> list[dict]:
    """The rows of the jobs holding or having held ``identity_key``, oldest first."""
    mark = "?" if db.dialect == "sqlite" else "%s"
    with db.session() as session:
        uuids = [found[0] for found in session.execute(
            f"SELECT uuid FROM queue_job WHERE identity_key = {mark} ORDER BY id",
            (identity_key,)).fetchall()]
    return [row(db, str(job_uuid)) for job_uuid in uuids]


def assert_one_line(error: BaseException) -> None:
    assert "\n" not in str(error) and str(error)


# -- concurrency keys -----------------------------------------------------------------------
def test_a_concurrency_key_is_stored_and_read_back(db):
    with db.session() as session:
        keyed = jobs.add.delay(session, "m", 1, 2, concurrency_key="tenant-7")
        plain = jobs.add.delay(session, "m", 1, 2)
        none = jobs.add.delay(session, "m", 1, 2, concurrency_key=None)
        empty = jobs.add.delay(session, "m", 1, 2, concurrency_key="")
        unicode = jobs.add.delay(session, "m", 1, 2, concurrency_key="client é 東京 🙂",
                                 identity_key="with an identity key")
    assert row(db, keyed)["concurrency_key"] == "tenant-7"
    assert load(db, keyed).concurrency_key == "tenant-7"
    for job_uuid in (plain, none, empty):
        assert row(db, job_uuid)["concurrency_key"] == ""
        assert load(db, job_uuid).concurrency_key == ""
    assert load(db, unicode).concurrency_key == "client é 東京 🙂"


def test_a_key_of_a_job_held_by_the_session_is_written_at_commit(db):
    # a job without identity key is held by the session and written with its commit
    with db.session() as session:
        held = jobs.add.delay(session, "m", 1, 2, concurrency_key="held")
        assert session._held
    assert row(db, held)["concurrency_key"] == "held"
    with db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, concurrency_key="a")
        second = jobs.add.delay(session, "m", 3, 4, concurrency_key="b")
    assert (row(db, first)["concurrency_key"], row(db, second)["concurrency_key"]) == ("a", "b")


def test_delay_many_stores_the_concurrency_keys(db):
    with db.session() as session:
        # many jobs without identity keys: streamed in
        shared = jobs.add.delay_many(session, [("m", n, n) for n in range(50)],
                                     concurrency_key="shared")
        unkeyed = jobs.add.delay_many(session, [("m", n, n) for n in range(3)])
        mixed = jobs.add.delay_many(session, [
            {"args": ("m", 1, 1), "concurrency_key": "own"},
            {"args": ("m", 2, 2)},
            ("m", 3, 3)], concurrency_key="default")
        # with identity keys: the batch insert
        identified = jobs.add.delay_many(session, [("m", 9, n) for n in range(3)],
                                         concurrency_key="idem", identity_key=identity_exact)
        single = jobs.add.delay_many(session, [("m", 1, 1)], concurrency_key="alone")
    assert {row(db, job_uuid)["concurrency_key"] for job_uuid in shared} == {"shared"}
    assert {row(db, job_uuid)["concurrency_key"] for job_uuid in unkeyed} == {""}
    assert [row(db, job_uuid)["concurrency_key"] for job_uuid in mixed] == \
        ["own", "default", "default"]
    assert [load(db, job_uuid).concurrency_key for job_uuid in identified] == ["idem"] * 3
    assert row(db, single[0])["concurrency_key"] == "alone"


def test_delayable_and_set_give_the_concurrency_key(db):
    with db.session() as session:
        first = jobs.add.delayable(session, "m", 1, 2, concurrency_key="built")
        second = jobs.add.delayable(session, "m", 3, 4).set(concurrency_key="set")
        third = jobs.add.delayable(session, "m", 5, 6, concurrency_key="dropped")
        third.set({"concurrency_key": None})
        chain(first, second, third).delay()
    assert row(db, first.uuid)["concurrency_key"] == "built"
    assert row(db, second.uuid)["concurrency_key"] == "set"
    assert row(db, third.uuid)["concurrency_key"] == ""
    assert row(db, second.uuid)["state"] == "wait_dependencies"


def test_trap_jobs_shows_the_concurrency_key(db):
    with trap_jobs() as trap, db.session() as session:
        jobs.add.delay(session, "m", 1, 2, concurrency_key="trapped")
        trap.assert_enqueued_job(jobs.add, args=("m", 1, 2),
                                 properties={"concurrency_key": "trapped"})
    assert trap.calls[0].properties["concurrency_key"] == "trapped"


@pytest.mark.parametrize(("key", "error", "words"), [
    (42, TypeError, "must be a str, not int"),
    (b"bytes", TypeError, "must be a str, not bytes"),
    (["a"], TypeError, "must be a str, not list"),
    ("two\nlines", ValueError, "one line"),
    ("tab\there", ValueError, "one line"),
    ("nul\x00", ValueError, "one line"),
    ("bell\x07", ValueError, "printable"),
    ("lone \udce9", ValueError, "printable"),
    ("x" * 256, ValueError, "over the limit of 255"),
])
def test_a_bad_concurrency_key_is_refused_in_one_line_and_nothing_is_stored(db, key, error,
                                                                             words):
    with db.session() as session:
        with pytest.raises(error, match=words) as raised:
            jobs.add.delay(session, "m", 1, 2, concurrency_key=key)
        assert_one_line(raised.value)
        with pytest.raises(error, match=words):
            jobs.add.delay_many(session, [("m", 1, 2)], concurrency_key=key)
        with pytest.raises(error, match=words):
            jobs.add.delay_many(session, [{"args": ("m", 1, 2), "concurrency_key": key}])
        with pytest.raises(error, match=words):
            jobs.add.delayable(session, "m", 1, 2, concurrency_key=key)
        delayable = jobs.add.delayable(session, "m", 1, 2)
        with pytest.raises(error, match=words):
            delayable.set(concurrency_key=key)
        assert delayable.job.concurrency_key == ""
    assert states(db) == {}
    assert queuejob.Job(func=jobs.add, concurrency_key="x" * 255).concurrency_key == "x" * 255


KEYS = st.one_of(
    st.text(max_size=300),
    st.text(st.one_of(st.characters(), st.characters(categories=["Cs"]),
                      st.sampled_from("\n\t\r\x00\x1b\x7f\x85\u2028\u202e")), max_size=40),
    st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=10),
    st.lists(st.text(max_size=3), max_size=2))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS)
def test_any_concurrency_key_is_stored_as_given_or_refused_in_one_line(db, key):
    try:
        with db.session() as session:
            job_uuid = jobs.add.delay(session, "m", 1, 2, concurrency_key=key)
    except ONE_LINE_ERRORS as exc:
        assert_one_line(exc)
        assert not (isinstance(key, str) and len(key) <= 255 and key.isprintable()), key
        return
    assert key is None or isinstance(key, str)
    assert row(db, job_uuid)["concurrency_key"] == (key or "")
    assert load(db, job_uuid).concurrency_key == (key or "")


# -- debounce -------------------------------------------------------------------------------
def test_debounce_keeps_one_job_with_the_last_arguments_and_moves_its_eta(db):
    before = db_now(db)
    with db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key="recompute 7", debounce=60,
                               description="first call")
    stored = row(db, first)
    assert stored["state"] == "pending"
    assert before + dt.timedelta(seconds=59) <= stored["eta"] <= \
        db_now(db) + dt.timedelta(seconds=61)
    created = stored["date_created"]

    later = db_now(db)
    with db.session() as session:
        second = jobs.add.delay(session, "n", 3, 4, identity_key="recompute 7", debounce=600)
        third = jobs.add.delay(session, "n", 5, 6, identity_key="recompute 7", debounce=3600)
    assert first == second == third
    assert states(db) == {"pending": 1}
    stored = row(db, first)
    job = load(db, first)
    assert (job.args, job.kwargs, job.model_name) == (("n", 5, 6), {}, "n")
    assert stored["model_name"] == "n"
    # not given again: the description stays; the eta counts from the last call
    assert job.description == "first call"
    assert later + dt.timedelta(seconds=3599) <= stored["eta"] <= \
        db_now(db) + dt.timedelta(seconds=3601)
    # what a debounced call does not change
    assert (stored["date_created"], stored["priority"], stored["channel"]) == \
        (created, 10, "root")

    # a shorter debounce moves the eta closer, a description given replaces the old one
    with db.session() as session:
        assert jobs.add.delay(session, "n", 7, 8, identity_key="recompute 7",
                              debounce=dt.timedelta(seconds=5),
                              description="last call") == first
    stored = row(db, first)
    assert stored["eta"] <= db_now(db) + dt.timedelta(seconds=6)
    assert (load(db, first).args, stored["description"]) == (("n", 7, 8), "last call")


def test_a_debounced_call_changes_nothing_when_its_transaction_rolls_back(db):
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key="k", debounce=100)
    before = row(db, job_uuid)
    with pytest.raises(RuntimeError), db.session() as session:
        assert jobs.add.delay(session, "m", 3, 4, identity_key="k", debounce=5,
                              description="rolled back") == job_uuid
        assert load_in(session, job_uuid).args == ("m", 3, 4)  # seen inside
        raise RuntimeError("roll back")
    assert row(db, job_uuid) == before
    with pytest.raises(RuntimeError), db.session() as session:
        jobs.add.delay(session, "m", 1, 2, identity_key="fresh", debounce=5)
        raise RuntimeError("roll back")
    assert states(db) == {"pending": 1}


def load_in(session, job_uuid: str) -> queuejob.Job:
    return queuejob.DatabaseJobStorage(session).load(job_uuid)


def test_without_a_holder_the_job_is_stored_with_its_eta_debounce_from_now(db):
    before = db_now(db)
    with db.session() as session:
        job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key="alone", debounce=0)
        keyed = jobs.add.delay(session, "m", 1, 2, identity_key="keyed", debounce=30,
                               concurrency_key="tenant")
    stored = row(db, job_uuid)
    assert before <= stored["eta"] <= db_now(db)
    assert (stored["identity_key"], stored["state"]) == ("alone", "pending")
    assert row(db, keyed)["concurrency_key"] == "tenant"
    # due at once: a worker runs it with the arguments of the last call
    with db.session() as session:
        assert jobs.add.delay(session, "m", 20, 22, identity_key="alone", debounce=0) == \
            job_uuid
    run_burst(db)
    assert (row(db, job_uuid)["state"], row(db, job_uuid)["result"]) == ("done", "42")


@pytest.mark.parametrize("state", ["started", "done", "failed", "cancelled"])
def test_a_holder_that_started_is_not_changed_and_a_new_job_is_stored(db, state):
    with db.session() as session:
        running = jobs.add.delay(session, "m", 1, 2, identity_key="k", debounce=10)
    set_state(db, running, state)
    before = row(db, running)
    with db.session() as session:
        new = jobs.add.delay(session, "m", 3, 4, identity_key="k", debounce=10)
        again = jobs.add.delay(session, "m", 5, 6, identity_key="k", debounce=10)
    assert new == again != running
    assert row(db, running) == before
    assert load(db, new).args == ("m", 5, 6)
    assert [found["uuid"] for found in keyed_rows(db, "k")] == [running, new]


@pytest.mark.parametrize("state", ["enqueued", "wait_dependencies"])
def test_a_holder_that_is_not_pending_acts_as_a_plain_identity_key(db, state):
    with db.session() as session:
        holder = jobs.add.delay(session, "m", 1, 2, identity_key="k", debounce=10,
                                description="holder")
    set_state(db, holder, state)
    before = row(db, holder)
    with db.session() as session:
        assert jobs.add.delay(session, "m", 3, 4, identity_key="k", debounce=1,
                              description="ignored") == holder
    assert row(db, holder) == before
    assert len(keyed_rows(db, "k")) == 1


def test_a_holder_of_another_function_acts_as_a_plain_identity_key(db):
    with db.session() as session:
        other = jobs.noop.delay(session, "m", 1, identity_key="shared key")
    before = row(db, other)
    with db.session() as session:
        assert jobs.add.delay(session, "m", 3, 4, identity_key="shared key",
                              debounce=5) == other
    assert row(db, other) == before
    assert states(db) == {"pending": 1}


def test_a_waiting_child_of_a_graph_keeps_its_arguments(db):
    with db.session() as session:
        parent = jobs.add.delayable(session, "m", 1, 1)
        child = jobs.add.delayable(session, "m", 2, 2, identity_key="child")
        parent.on_done(child)
        parent.delay()
    with db.session() as session:
        assert jobs.add.delay(session, "m", 9, 9, identity_key="child", debounce=1) == \
            child.uuid
    assert load(db, child.uuid).args == ("m", 2, 2)
    assert row(db, child.uuid)["state"] == "wait_dependencies"


def test_a_debounced_call_takes_over_a_job_delayed_without_debounce(db):
    with db.session() as session:
        plain = jobs.add.delay(session, "m", 1, 2, identity_key="k")
        assert row_in(session, plain)["eta"] is None
        assert jobs.add.delay(session, "m", 3, 4, identity_key="k", debounce=30) == plain
        # a plain delay with the key changes nothing, as ever
        assert jobs.add.delay(session, "m", 5, 6, identity_key="k") == plain
    assert load(db, plain).args == ("m", 3, 4)
    assert row(db, plain)["eta"] is not None


def row_in(session, job_uuid: str) -> dict:
    found = queuejob.DatabaseJobStorage(session).db_record_from_uuid(job_uuid)
    assert found is not None
    return found


def test_debounce_with_a_function_as_identity_key(db):
    with db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact, debounce=5)
        same = jobs.add.delay(session, "m", 1, 2, identity_key=identity_exact, debounce=50)
        other = jobs.add.delay(session, "m", 1, 3, identity_key=identity_exact, debounce=5)
    assert first == same != other
    assert states(db) == {"pending": 2}


def test_delay_many_debounces_between_its_calls_and_with_stored_jobs(db):
    with db.session() as session:
        held = jobs.add.delay(session, "m", 0, 0, identity_key="a", debounce=5)
    with db.session() as session:
        uuids = jobs.add.delay_many(session, [
            {"args": ("m", 1, 1), "identity_key": "a"},
            {"args": ("m", 2, 2), "identity_key": "b"},
            {"args": ("m", 3, 3), "identity_key": "a", "description": "a again"},
            {"args": ("m", 4, 4), "debounce": None, "identity_key": "b"},  # plain
            {"args": ("m", 5, 5), "debounce": None},                         # no key
        ], debounce=120)
    assert uuids[0] == uuids[2] == held
    assert uuids[1] == uuids[3] != held
    assert len(set(uuids)) == 3
    assert (load(db, held).args, load(db, held).description) == (("m", 3, 3), "a again")
    assert load(db, uuids[1]).args == ("m", 2, 2)
    assert row(db, uuids[1])["eta"] > db_now(db) + dt.timedelta(seconds=100)
    assert (load(db, uuids[4]).args, row(db, uuids[4])["eta"]) == (("m", 5, 5), None)
    assert states(db) == {"pending": 3}
    with db.session() as session, pytest.raises(ValueError, match="needs an identity_key"):
        jobs.add.delay_many(session, [{"args": ("m", 1, 1), "identity_key": "d"},
                                      {"args": ("m", 2, 2)}], debounce=120)
    assert states(db) == {"pending": 3}
    with db.session() as session:
        same = jobs.add.delay_many(session, [("m", n, n) for n in range(5)],
                                   identity_key="c", debounce=1)
    assert len(set(same)) == 1
    assert load(db, same[0]).args == ("m", 4, 4)


@pytest.mark.parametrize(("options", "error", "words"), [
    ({"debounce": 5}, ValueError, "debounce needs an identity_key"),
    ({"debounce": 5, "identity_key": "k", "eta": 60}, ValueError, "eta or debounce"),
    ({"debounce": -1, "identity_key": "k"}, ValueError, "from 0 to 86400"),
    ({"debounce": MAX_DEBOUNCE + 1, "identity_key": "k"}, ValueError, "from 0 to 86400"),
    ({"debounce": float("nan"), "identity_key": "k"}, ValueError, "finite"),
    ({"debounce": float("inf"), "identity_key": "k"}, ValueError, "finite"),
    ({"debounce": 10**400, "identity_key": "k"}, ValueError, "finite"),
    ({"debounce": dt.timedelta(days=2), "identity_key": "k"}, ValueError, "a day"),
    ({"debounce": "5", "identity_key": "k"}, TypeError, "not str"),
    ({"debounce": True, "identity_key": "k"}, TypeError, "not bool"),
])
def test_a_bad_debounce_is_refused_in_one_line_and_nothing_is_stored(db, options, error,
                                                                       words):
    with db.session() as session:
        with pytest.raises(error, match=words) as raised:
            jobs.add.delay(session, "m", 1, 2, **options)
        assert_one_line(raised.value)
        with pytest.raises(error, match=words):
            jobs.add.delay_many(session, [("m", 1, 2)], **options)
    assert states(db) == {}


def test_debounce_is_refused_where_it_has_no_meaning(db):
    with db.session() as session:
        with pytest.raises(TypeError, match="debounce is an option of delay") as raised:
            jobs.add.delayable(session, "m", 1, 2, identity_key="k", debounce=5)
        assert_one_line(raised.value)
        with pytest.raises(ValueError, match="No property debounce"):
            jobs.add.delayable(session, "m", 1, 2).set(debounce=5)
    with pytest.raises(TypeError, match="schedule\\(\\): debounce is not an option"):
        queuejob.schedule(jobs.noop, cron="* * * * *", name="debounced", debounce=5)
    assert "debounced" not in queuejob.core.registry.schedules()
    assert states(db) == {}


def test_trap_jobs_debounces_as_the_database_does(db):
    with trap_jobs() as trap, db.session() as session:
        first = jobs.add.delay(session, "m", 1, 2, identity_key="k", debounce=5)
        second = jobs.add.delay(session, "m", 3, 4, identity_key="k", debounce=60,
                                description="again")
        other = jobs.noop.delay(session, "m", identity_key="k", debounce=5)
    assert first == second == other
    trap.assert_jobs_count(1)
    job = trap.enqueued_jobs[0]
    assert (job.args, job.description) == (("m", 3, 4), "again")
    assert job.eta is not None
    assert job.eta > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=50)
    assert len(trap.calls) == 3
    assert states(db) == {}


DEBOUNCES = st.one_of(
    st.none(), st.floats(), st.floats(min_value=0, max_value=MAX_DEBOUNCE),
    st.integers(min_value=-10, max_value=MAX_DEBOUNCE + 10), st.integers(),
    st.timedeltas(), st.timedeltas(min_value=dt.timedelta(0),
                                   max_value=dt.timedelta(seconds=MAX_DEBOUNCE)),
    st.booleans(), st.text(max_size=4), st.decimals(allow_nan=False, places=2))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(debounce=DEBOUNCES)
def test_any_debounce_is_applied_or_refused_in_one_line(db, debounce):
    key = f"hypothesis {uuid_module.uuid4()}"
    before = db_now(db)
    try:
        with db.session() as session:
            job_uuid = jobs.add.delay(session, "m", 1, 2, identity_key=key,
                                      debounce=debounce)
    except ONE_LINE_ERRORS as exc:
        assert_one_line(exc)
        assert keyed_rows(db, key) == []
        return
    after = db_now(db)
    seconds = debounce.total_seconds() if isinstance(debounce, dt.timedelta) else debounce
    assert seconds is None or 0 <= seconds <= MAX_DEBOUNCE
    stored = row(db, job_uuid)
    if seconds is None:
        assert stored["eta"] is None
    else:
        slack = dt.timedelta(seconds=1)
        assert before + dt.timedelta(seconds=seconds) - slack <= stored["eta"] <= \
            after + dt.timedelta(seconds=seconds) + slack
        with db.session() as session:
            assert jobs.add.delay(session, "m", 3, 4, identity_key=key,
                                  debounce=debounce) == job_uuid
        assert load(db, job_uuid).args == ("m", 3, 4)
    assert len(keyed_rows(db, key)) == 1


# -- debounce under concurrency ---------------------------------------------------------------
def test_concurrent_debounced_delays_end_with_one_job_holding_the_last_write(db):
    threads_count = 8
    rounds = 3
    barrier = threading.Barrier(threads_count)
    order: list[int] = []
    order_lock = threading.Lock()
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def delay(number: int) -> None:
        try:
            mine = results.setdefault(number, [])
            for _ in range(rounds):
                barrier.wait(30)
                with db.session() as session:
                    mine.append(jobs.add.delay(session, "m", number, len(mine),
                                               identity_key="burst", debounce=300))
                    # still inside the transaction: until it commits, it holds the row
                    # (or the key) and every other call waits, so this order is the
                    # order of the writes
                    with order_lock:
                        order.append(number)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=delay, args=(number,))
               for number in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    uuids = {job_uuid for mine in results.values() for job_uuid in mine}
    assert len(uuids) == 1
    assert states(db) == {"pending": 1}
    last = order[-1]
    assert load(db, uuids.pop()).args == ("m", last, rounds - 1)
    assert len(order) == threads_count * rounds


def test_a_delay_waiting_for_a_concurrent_insert_of_its_key_updates_that_job(db, db_url):
    """The second call finds no holder, then the first call's job once it commits: it
    must update that job, not return it unchanged nor store a second one."""
    inserted = threading.Event()
    release = threading.Event()
    first_uuid: list[str] = []
    second_uuid: list[str] = []
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with db.session() as session:
                first_uuid.append(jobs.add.delay(session, "m", 1, 1, identity_key="race",
                                                 debounce=300))
                inserted.set()
                assert release.wait(30)
        except BaseException as exc:
            errors.append(exc)
            inserted.set()

    def second() -> None:
        try:
            with db.session() as session:
                second_uuid.append(jobs.add.delay(session, "m", 2, 2, identity_key="race",
                                                  debounce=600))
        except BaseException as exc:
            errors.append(exc)

    one = threading.Thread(target=first)
    one.start()
    assert inserted.wait(30)
    two = threading.Thread(target=second)
    two.start()
    try:
        if db.dialect == "postgresql":
            # the second call waits on the uncommitted insert of the first one
            with psycopg.connect(db_url, autocommit=True) as conn:
                wait_for_a_lock_wait(conn)
    finally:
        release.set()
        one.join(30)
        two.join(30)
    assert not errors, errors
    assert first_uuid == second_uuid
    assert states(db) == {"pending": 1}
    assert load(db, first_uuid[0]).args == ("m", 2, 2)
    assert row(db, first_uuid[0])["eta"] > db_now(db) + dt.timedelta(seconds=500)


def wait_for_a_lock_wait(conn: psycopg.Connection) -> None:
    from tests.helpers import wait_until
    wait_until(lambda: conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'").fetchone()[0] > 0,  # type: ignore[index]
        timeout=20, message="the second delay to wait for the first one's insert")
