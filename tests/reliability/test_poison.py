"""Poison data: what a job returns or raises, and what a stored row holds, never stops
its worker nor costs another job (generative, against a real worker process, on both
backends).

Each example delays odd jobs (any Unicode with lone surrogates and NUL, huge strings,
values whose ``str`` raises, any ``RetryableJobError`` ``seconds``, ``SystemExit``,
``KeyboardInterrupt``) mixed with ordinary ones in one batch, for one worker process
that lives through all the examples: it never exits, every ordinary job runs once and
ends done, every odd job ends done, failed or pending with a readable reason, and none
stays started.

Poison rows: a valid pending job row is stored with one to three of its columns replaced by
arbitrary values (SQLite: also BLOBs, text that is not UTF-8 and values of other
types; PostgreSQL: any value of the column's type, which its checks may refuse at
write), beside a channel row and a job function row of arbitrary values. Ordinary jobs
delayed after it must all run once, with the same worker process alive; the odd job,
when it is due, ends failed (or done, or cancelled) with a readable reason, never
stuck started.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections import Counter

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.helpers import spawn_worker, stop_process, wait_until
from tests.reliability import poison
from tests.reliability.common import FAST, read_log, row, scaled

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("QUEUEJOB_POISON_EXAMPLES") or scaled(20, 300))

TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
NUMBERS = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=True,
                                                              allow_infinity=True))
VALUES = st.one_of(st.none(), TEXT, NUMBERS, st.booleans(), st.lists(TEXT, max_size=3),
                   st.dictionaries(TEXT, TEXT, max_size=2), st.tuples(NUMBERS, NUMBERS))
SECONDS = st.one_of(st.none(), NUMBERS, TEXT, st.booleans(), st.tuples(NUMBERS, NUMBERS),
                    st.tuples(st.integers(0, 2), st.integers(0, 2)),
                    st.lists(NUMBERS, max_size=3), st.floats(0, 1))
BEHAVIOURS = st.one_of(
    st.tuples(st.just("return"), VALUES),
    st.tuples(st.just("return_bad_str"), st.none()),
    st.tuples(st.just("return_huge"), st.integers(70_000, 2_000_000)),
    st.tuples(st.sampled_from(["value_error", "failed", "nothing", "retryable_text",
                               "system_exit", "keyboard"]), VALUES),
    st.tuples(st.just("retryable"), SECONDS),
    st.tuples(st.sampled_from(["bad_str_error", "not_str_error"]), st.none()),
)
UNREADABLE = re.compile("[\x00\ud800-\udfff]")


@pytest.fixture
def poison_worker(db_url, job_env, tmp_path):
    """One worker process (8 job threads) for every example of the test."""
    log = tmp_path / "worker.log"
    process = spawn_worker(db_url, job_env, "--module", "tests.reliability.poison", *FAST,
                           "--concurrency", "8", log=log)
    try:
        yield process, log
    finally:
        stop_process(process)


def settled(db, uuids):
    """No job of ``uuids`` is started, nor pending and due within a second."""
    def check():
        for job_uuid in uuids:
            found = row(db, job_uuid)
            if found["state"] == "started":
                return False
            if found["state"] == "pending":
                eta = found["eta"]
                now = db.read(db.store.database_now)
                if eta is None or (eta - now).total_seconds() < 1.0:
                    return False
        return True
    return check


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(behaviours=st.lists(BEHAVIOURS, min_size=1, max_size=6),
       ordinary=st.integers(1, 4), odd_first=st.booleans())
def test_odd_jobs_never_stop_the_worker_nor_cost_another_job(db, poison_worker, tmp_path,
                                                             behaviours, ordinary, odd_first):
    process, log = poison_worker
    path = tmp_path / f"executions-{uuid.uuid4().hex}.log"
    with db.session() as session:
        def odd():
            return [poison.behave.delay(session, "m", kind, value, max_retries=2)
                    for kind, value in behaviours]

        def plain():
            return [poison.ordinary.delay(session, "m", str(path)) for _ in range(ordinary)]
        if odd_first:
            odd_uuids, plain_uuids = odd(), plain()
        else:
            plain_uuids, odd_uuids = plain(), odd()
    wait_until(settled(db, odd_uuids + plain_uuids), timeout=60,
               message=f"jobs settled; worker log:\n{read_log(log)[-3000:]}")
    assert process.poll() is None, f"the worker exited:\n{read_log(log)[-3000:]}"

    runs = Counter(line.split()[0] for line in path.read_text().splitlines()) \
        if path.exists() else Counter()
    for job_uuid in plain_uuids:
        assert row(db, job_uuid)["state"] == "done"
        assert runs[job_uuid] == 1, f"ordinary job ran {runs[job_uuid]} times"
    for job_uuid, (kind, value) in zip(odd_uuids, behaviours, strict=True):
        found = row(db, job_uuid)
        assert found["state"] in ("done", "failed", "pending"), (kind, found["state"])
        for column in ("result", "exc_info"):
            text = found[column]
            assert text is None or (isinstance(text, str) and not UNREADABLE.search(text)), \
                (kind, column, text[:200])
            assert text is None or len(text) <= 70_000, (kind, column, len(text))
        if found["state"] == "failed":
            assert found["exc_info"], (kind, value)
        if found["state"] == "pending":
            assert found["result"], (kind, value)  # why it waits


# -- poison rows ------------------------------------------------------------------------------
JOB_COLUMNS = ("uuid", "state", "func_name", "model_name", "args", "kwargs", "description",
               "channel", "priority", "max_retries", "retry", "attempt", "worker_deaths",
               "identity_key", "user_id", "context", "result", "exc_info", "worker_id",
               "eta", "date_created", "timeout", "graph_uuid", "has_dependents")
CHANNEL_COLUMNS = ("name", "capacity", "sequential", "throttle", "removal_interval", "paused",
                   "last_started")
FUNCTION_COLUMNS = ("name", "channel", "retry_pattern")

# -- SQLite: any value in any column ----------------------------------------------------------
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


class Raw:
    """A value bound as bytes: a BLOB, or text that is not UTF-8 (``as_text``)."""

    def __init__(self, data: bytes, as_text: bool) -> None:
        self.data, self.as_text = data, as_text

    def __repr__(self) -> str:
        return f"Raw({self.data!r}, as_text={self.as_text})"


SQLITE_VALUES = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT, st.sampled_from(["root", "root.a", "pending", "started", "[]", "{}", "{\"a\": 1}",
                               "tests.jobs.noop", "1: 60", '{"1": [5, 1]}', "Infinity"]),
    st.builds(Raw, st.binary(max_size=12), st.booleans()),
    st.builds(Raw, st.sampled_from([b"\xff\xfe", b"root.\xe9", b"caf\xe9", b"\x00"]),
              st.booleans()))

# -- PostgreSQL: any value of the column's type -------------------------------------------------
PG_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                  max_size=30)
# mostly values PostgreSQL's checks accept (others are refused at write, and the example
# is not counted)
PG_TIMES = st.one_of(st.datetimes(min_value=dt.datetime(1, 1, 1), timezones=st.just(dt.UTC)),
                     st.datetimes(min_value=dt.datetime(2000, 1, 1),
                                  max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)),
                     st.sampled_from(["infinity", "-infinity", "4000-01-01 BC"]))
PG_FLOATS = st.one_of(st.floats(0.001, 1e7), st.floats(allow_nan=True, allow_infinity=True))
PG_INT = st.integers(-(2**31), 2**31 - 1)
PG_VALUES = {
    "uuid": st.uuids().map(str), "priority": PG_INT, "max_retries": PG_INT, "retry": PG_INT,
    "attempt": PG_INT, "worker_deaths": PG_INT, "user_id": st.one_of(st.none(), PG_INT),
    "eta": st.one_of(st.none(), PG_TIMES), "date_created": PG_TIMES,
    "timeout": st.one_of(st.none(), PG_FLOATS), "graph_uuid": st.one_of(
        st.none(), st.uuids().map(str)), "has_dependents": st.booleans(),
    "capacity": st.one_of(st.none(), PG_INT), "sequential": st.booleans(),
    "paused": st.booleans(), "throttle": PG_FLOATS,
    "removal_interval": st.one_of(st.none(), PG_FLOATS),
    "last_started": st.one_of(st.none(), PG_TIMES),
}
NOT_NULL = {"uuid", "state", "func_name", "args", "kwargs", "channel", "priority",
            "max_retries", "retry", "attempt", "worker_deaths", "date_created",
            "has_dependents", "name", "sequential", "throttle", "paused"}


def value_for(dialect: str, column: str) -> st.SearchStrategy:
    if dialect == "sqlite":
        values = SQLITE_VALUES
    else:
        values = PG_VALUES.get(column, st.one_of(st.none(), PG_TEXT, st.sampled_from(
            ["root", "root.a", "pending", "started", "[]", "{}", "tests.jobs.noop",
             '{"1": [5, 1]}', '{"1": "soon"}', "1: 60"])))
    if column in NOT_NULL:
        values = values.filter(lambda value: value is not None)
    return values


@st.composite
def corrupted(draw, dialect: str):
    """(job columns to replace, channel row or None, function row or None)."""
    columns = draw(st.lists(st.sampled_from(JOB_COLUMNS), min_size=1, max_size=3, unique=True))
    job = {column: draw(value_for(dialect, column)) for column in columns}
    channel = None
    if draw(st.booleans()):
        channel = {column: draw(value_for(dialect, column)) for column in CHANNEL_COLUMNS}
        # a valid rule on root (paused, capacity 1...) would hold the ordinary jobs back,
        # as it should: not what this test is about
        assume(channel["name"] not in ("root",))
    function = None
    if draw(st.booleans()):
        function = {column: draw(value_for(dialect, column)) for column in FUNCTION_COLUMNS}
        assume(function["name"] != poison.ordinary.func_name)
    return job, channel, function


def bind(db, value):
    """(SQL placeholder, parameter) for a value of the test."""
    mark = "?" if db.dialect == "sqlite" else "%s"
    if isinstance(value, Raw):
        return (f"CAST({mark} AS TEXT)" if value.as_text else mark), value.data
    return mark, value


def insert(db, table, values):
    columns = list(values)
    marks, params = zip(*(bind(db, values[column]) for column in columns), strict=True)

    def run(conn):
        db.connector.execute_sql(
            conn, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marks)})",
            params)
    db.run(run)


def bump_config(db):
    db.run(lambda conn: db.connector.execute_sql(
        conn, "UPDATE queue_config SET version = version + 1"))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
@given(data=st.data())
def test_a_poison_row_costs_that_row_only(db, poison_worker, tmp_path, data):
    process, log = poison_worker
    job_values, channel, function = data.draw(corrupted(db.dialect))
    job_uuid = str(uuid.uuid4())
    valid = {"uuid": job_uuid, "state": "pending", "func_name": "tests.jobs.noop",
             "model_name": "m", "args": "[]", "kwargs": "{}", "description": "odd",
             "channel": "root", "priority": 10, "max_retries": 5, "retry": 0, "attempt": 0,
             "worker_deaths": 0, "date_created": dt.datetime.now(dt.UTC),
             "has_dependents": False}
    if db.dialect == "sqlite":
        valid["date_created"] = valid["date_created"].timestamp()
        valid["has_dependents"] = 0
    stored = {**valid, **job_values}
    try:
        insert(db, "queue_job", stored)
        if channel is not None:
            insert(db, "queue_channel", channel)
        if function is not None:
            insert(db, "queue_job_function", function)
    except (psycopg.errors.CheckViolation, psycopg.errors.UniqueViolation,
            psycopg.errors.DatetimeFieldOverflow, psycopg.errors.InvalidDatetimeFormat,
            psycopg.errors.NumericValueOutOfRange, psycopg.DataError,
            psycopg.errors.InvalidTextRepresentation) as exc:
        # PostgreSQL refuses the value at write: validated where it is written
        assume(False)
        raise AssertionError("unreachable") from exc
    except Exception as exc:  # SQLite: a unique or NOT NULL constraint
        if "UNIQUE" in str(exc) or "NOT NULL" in str(exc):
            assume(False)
        raise
    bump_config(db)
    path = tmp_path / f"executions-{uuid.uuid4().hex}.log"
    try:
        with db.session() as session:
            plain = [poison.ordinary.delay(session, "m", str(path)) for _ in range(3)]
        wait_until(lambda: all(row(db, u)["state"] == "done" for u in plain)
                   or process.poll() is not None, timeout=20,
                   message=f"ordinary jobs done; worker log:\n{read_log(log)[-3000:]}")
        assert process.poll() is None, f"the worker exited:\n{read_log(log)[-3000:]}"
        runs = Counter(line.split()[0] for line in path.read_text().splitlines())
        assert all(runs[u] == 1 for u in plain), runs
        if set(job_values) <= {"uuid", "model_name", "description", "result", "exc_info",
                               "worker_id", "identity_key", "user_id", "graph_uuid",
                               "has_dependents", "retry", "attempt", "worker_deaths",
                               "priority", "args", "kwargs", "context", "func_name"} \
                and channel is None and stored.get("uuid") == job_uuid:
            # a due pending job in root: it is claimed, and ends without staying started
            found = wait_until(lambda: _ended(db, job_uuid), timeout=30,
                               message=f"the odd job ended; log:\n{read_log(log)[-3000:]}")
            if found["state"] == "failed":
                assert found["exc_info"], found
    finally:
        _clean(db)


def _ended(db, job_uuid):
    def read(conn):
        cursor = db.connector.execute_sql(
            conn, "SELECT state, exc_info FROM queue_job WHERE uuid = "
            + ("?" if db.dialect == "sqlite" else "%s"), (job_uuid,))
        return cursor.fetchone()
    found = db.read(read)
    if found is None or found[0] in ("pending", "started"):
        return None
    return {"state": found[0], "exc_info": found[1]}


def _clean(db):
    def run(conn):
        db.connector.execute_sql(conn, "DELETE FROM queue_channel")
        db.connector.execute_sql(conn, "DELETE FROM queue_job_function")
        db.connector.execute_sql(conn, "UPDATE queue_config SET version = version + 1")
    db.run(run)
