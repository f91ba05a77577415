"""The cases that stopped workers, each as a test (the generative versions are in
tests/reliability/test_poison.py): odd outcomes, odd delays, the original's random
delays, bad configuration values, oversized texts, stored rows of the wrong type."""

from __future__ import annotations

import logging
import os
import random

import psycopg
import pytest

import queuejob
from queuejob import operations
from queuejob.core import codec, limits, retry
from queuejob.core.channels import ChannelSpec, normalize_name, parse_channels
from queuejob.core.errors import ConfigurationError, JobDataTooLargeError
from queuejob.core.text import printable, storable
from tests import jobs
from tests.helpers import row, states
from tests.reliability import poison
from tests.reliability.common import sql


def delay(db, func, *args, **options):
    with db.session() as session:
        return func.delay(session, "m", *args, **options)


def eta_in(db, job_uuid):
    """Seconds from now to the job's eta, by the database's clock."""
    return (row(db, job_uuid)["eta"] - db.read(db.store.database_now)).total_seconds()


def burst(db, channels="root:8"):
    queuejob.Worker(db, channels=channels,
                    modules=["tests.jobs", "tests.reliability.poison"]).run(burst=True)


# -- outcomes ------------------------------------------------------------------------------------
def test_a_lone_surrogate_or_a_nul_fails_or_ends_its_job_alone(db):
    """os.fsdecode of a file name that is not UTF-8 in an exception or a result, and a
    NUL in a result: stored escaped; the batch's other jobs keep their outcomes."""
    surrogate = os.fsdecode(b"caf\xe9")
    bad_exc = delay(db, poison.behave, "value_error", surrogate)
    bad_result = delay(db, poison.behave, "return", surrogate)
    nul = delay(db, poison.behave, "return", "a\x00b")
    fine = [delay(db, jobs.add, n, n) for n in range(5)]
    burst(db)
    assert row(db, bad_exc)["state"] == "failed"
    assert "ValueError: caf\\udce9" in row(db, bad_exc)["exc_info"]
    assert (row(db, bad_result)["state"], row(db, bad_result)["result"]) == \
        ("done", "caf\\udce9")
    assert (row(db, nul)["state"], row(db, nul)["result"]) == ("done", "a\\x00b")
    assert [row(db, u)["result"] for u in fine] == [str(2 * n) for n in range(5)]


@pytest.mark.parametrize("seconds", ["soon", float("inf"), float("nan"), -5, (40, 20), [1],
                                     True, 10**30])
def test_a_retry_delay_that_is_not_one_retries_by_the_pattern_and_says_why(db, seconds):
    job_uuid = delay(db, jobs.always_retry, seconds)
    ok = delay(db, jobs.add, 1, 2)
    burst(db)
    found = row(db, job_uuid)
    assert found["state"] == "pending"
    assert "not yet (RetryableJobError seconds" in found["result"]
    assert "retried after the retry pattern's 60 s" in found["result"]
    assert row(db, ok)["state"] == "done"


def test_the_originals_random_delays_are_honoured(db):
    """RetryableJobError(seconds=(20, 40)) and retry_pattern={1: (100, 200)}: a random
    delay between the bounds, as in the original."""
    ranged = delay(db, jobs.always_retry, (20, 40))
    burst(db)
    assert 14 <= eta_in(db, ranged) <= 40
    by_pattern = delay(db, poison.random_retry)
    burst(db)
    assert 94 <= eta_in(db, by_pattern) <= 200
    pattern_job = poison.random_retry
    assert pattern_job.retry_pattern == {1: (100, 200), 3: 50}
    rng = random.Random(1)
    picks = {retry.retry_seconds(1, pattern_job.retry_pattern, rng=rng) for _ in range(200)}
    assert min(picks) >= 100 and max(picks) <= 200 and len(picks) > 50
    assert all(float(pick).is_integer() for pick in picks)
    assert retry.retry_seconds(3, pattern_job.retry_pattern) == 50
    assert 1.5 <= retry.retry_seconds(0, None, seconds=(1.5, 2.5), rng=rng) <= 2.5


def test_a_stored_random_retry_pattern_is_used_by_the_worker(db):
    operations.set_function(db, jobs.always_retry.func_name,
                            retry_pattern=retry.parse_retry_pattern("1: 300-301"))
    job_uuid = delay(db, jobs.always_retry)
    burst(db)
    assert 294 <= eta_in(db, job_uuid) <= 301


@pytest.mark.parametrize("text,pattern", [
    ("1: 60, 5: 300", {1: 60, 5: 300}), ('{"1": 60, "10": [30, 45]}', {1: 60, 10: (30, 45)}),
    ("10: 30-45", {10: (30, 45)}), ("0: 1.5", {0: 1.5}), ("", {})])
def test_one_retry_pattern_parser_reads_text_and_json(text, pattern):
    assert retry.parse_retry_pattern(text) == pattern
    if pattern:
        assert retry.parse_retry_pattern(retry.format_retry_pattern(pattern)) == pattern
        assert retry.parse_retry_pattern(retry.dump_retry_pattern(pattern)) == pattern


@pytest.mark.parametrize("text", ["1: inf", '{"1": NaN}', "x: 3", "1: 5-2", "1 60", "-1: 3",
                                  '{"1": "soon"}', "[1, 2]", '{"1": [1, 2, 3]}', "1: 1e400"])
def test_a_bad_retry_pattern_is_one_line(text):
    with pytest.raises(ConfigurationError) as error:
        retry.parse_retry_pattern(text)
    assert "\n" not in str(error.value) and "bad retry pattern" in str(error.value)


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("options", [{"throttle": float("inf")}, {"throttle": float("nan")},
                                     {"throttle": -1}, {"removal_interval": float("inf")},
                                     {"removal_interval": 1e300}, {"capacity": -1},
                                     {"capacity": 2**40}])
def test_bad_channel_values_are_refused_where_they_are_written(db, options):
    with pytest.raises(ConfigurationError):
        operations.set_channel(db, "root.x", **options)
    assert operations.channels(db) == [] or all(c["name"] != "root.x"
                                                for c in operations.channels(db))
    [(key, value)] = options.items()
    text = f"root.x:{value}" if key == "capacity" else f"root.x:2:{key}={value}"
    with pytest.raises(ConfigurationError):
        parse_channels("root:4," + text)


@pytest.mark.parametrize("name", ["root.a\n.b", "root.a b", "root.é", "", "root.",
                                  "root." + "a" * 600])
def test_channel_names_follow_the_grammar_to_the_letter(name):
    with pytest.raises(ConfigurationError):
        normalize_name(name)


def stored_channel(db, name, **values):
    columns = {"name": name, "capacity": None, "sequential": False, "throttle": 0.0,
               "removal_interval": None, "paused": False, **values}
    marks = ", ".join("?" for _ in columns)
    sql(db, f"INSERT INTO queue_channel ({', '.join(columns)}) VALUES ({marks})",
        tuple(columns.values()))


def test_a_bad_stored_channel_row_is_skipped_and_logged_once(db, caplog):
    if db.dialect == "sqlite":
        stored_channel(db, "root.inf", throttle=float("inf"))
        stored_channel(db, b"root.\xe9", capacity=1)
        stored_channel(db, "root.text", capacity="many")
    else:
        stored_channel(db, "root.neg", capacity=-3)
        stored_channel(db, "not a name", capacity=1)
    stored_channel(db, "root.ok", capacity=1)
    uuids = [delay(db, jobs.add, n, 1, channel=channel) for n, channel in enumerate(
        ["root.inf", "root.text", "root.neg", "root.ok", "root"])]
    with caplog.at_level(logging.ERROR, logger="queuejob.store"):
        burst(db)
        burst(db)
    assert all(row(db, u)["state"] == "done" for u in uuids)
    skipped = [r.getMessage() for r in caplog.records if "skipping the stored" in r.getMessage()]
    assert len(skipped) == len(set(skipped)) >= 2, skipped
    listed = {c["name"]: c for c in operations.channels(db)}
    assert listed["root.ok"]["capacity"] == 1


def test_a_malformed_stored_retry_pattern_is_skipped_and_shown(db, caplog):
    sql(db, "INSERT INTO queue_job_function (name, retry_pattern) VALUES (?, ?)",
        (jobs.always_retry.func_name, '{"1": "soon"'))
    sql(db, "INSERT INTO queue_job_function (name, retry_pattern) VALUES (?, ?)",
        ("tests.jobs.other", '{"1": [5, 1]}'))
    job_uuid = delay(db, jobs.always_retry)
    ok = delay(db, jobs.add, 1, 1)
    with caplog.at_level(logging.ERROR, logger="queuejob.store"):
        burst(db)
    assert 54 <= eta_in(db, job_uuid) <= 60  # the decorator's pattern
    assert row(db, ok)["state"] == "done"
    assert any("skipping the stored function" in r.getMessage() for r in caplog.records)
    listed = {f["name"]: f for f in operations.functions(db)}
    assert "not used" in listed[jobs.always_retry.func_name]["problem"]
    assert "not used" in listed["tests.jobs.other"]["problem"]


# -- stored job rows of the wrong type (SQLite stores any value in any column) ----------------
@pytest.mark.parametrize("column,value", [
    ("priority", "high"), ("channel", b"root"), ("channel", "root.bad name"),
    ("func_name", b"tests.jobs.add"), ("context", "{not json"), ("timeout", "abc"),
    ("uuid", "not-a-uuid")])
def test_a_stored_job_row_of_the_wrong_type_fails_that_job_alone(db, column, value):
    bad = delay(db, jobs.add, 1, 1)
    fine = [delay(db, jobs.add, n, n) for n in range(3)]
    if db.dialect == "postgresql" and column in ("priority", "timeout", "uuid"):
        # PostgreSQL's column types refuse such a value where it is written
        with pytest.raises(psycopg.Error):
            sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, bad))
        value = {"priority": 10, "timeout": None, "uuid": bad}.get(column, "root.bad name")
    sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, bad))
    burst(db)
    assert [row(db, u)["state"] for u in fine] == ["done"] * 3
    counts = states(db)
    assert "started" not in counts and "pending" not in counts
    assert counts.get("failed", 0) == (0 if column in ("priority", "timeout", "uuid")
                                       and db.dialect == "postgresql" else 1)


def test_a_text_eta_in_sqlite_is_never_due_and_holds_nothing_back(db):
    """SQLite sorts text after every number: such a job is never due. It stays pending,
    shown as it is, and the queue goes on. (PostgreSQL stores tomorrow's midnight.)"""
    bad = delay(db, jobs.add, 1, 1)
    # (PostgreSQL reads 'tomorrow' as tomorrow's midnight: not due either)
    sql(db, "UPDATE queue_job SET eta = 'tomorrow' WHERE uuid = ?", (bad,))
    fine = [delay(db, jobs.add, n, n) for n in range(3)]
    burst(db)
    assert [row(db, u)["state"] for u in fine] == ["done"] * 3
    assert row(db, bad)["state"] == "pending"


def test_a_channel_stored_as_text_that_is_not_utf8_fails_its_jobs(db):
    bad = delay(db, jobs.add, 1, 1)
    if db.dialect == "postgresql":
        with pytest.raises(psycopg.Error):  # refused where it is written
            sql(db, "UPDATE queue_job SET channel = convert_from(?, 'UTF8') WHERE uuid = ?",
                (b"root.caf\xe9", bad))
        sql(db, "UPDATE queue_job SET channel = 'root.caf é' WHERE uuid = ?", (bad,))
    else:
        sql(db, "UPDATE queue_job SET channel = CAST(? AS TEXT) WHERE uuid = ?",
            (b"root.caf\xe9", bad))
    fine = delay(db, jobs.add, 2, 2)
    burst(db)
    assert row(db, fine)["state"] == "done"
    failed = row(db, bad)
    assert failed["state"] == "failed" and "this job cannot run: its channel" in \
        failed["exc_info"]


# -- sizes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,options", [
    ("description", {"description": "d" * (limits.DESCRIPTION + 1)}),
    ("identity_key", {"identity_key": "k" * (limits.IDENTITY_KEY + 1)}),
    ("context", None)])
def test_oversized_texts_are_refused_at_delay_naming_field_and_limit(db, field, options):
    with pytest.raises(JobDataTooLargeError, match=f"job {field} is .* over the limit"):
        if options is None:
            with db.session(context={"big": "x" * limits.CONTEXT}) as session:
                jobs.add.delay(session, "m", 1, 2)
        else:
            delay(db, jobs.add, 1, 2, **options)
    with pytest.raises(JobDataTooLargeError, match="job model_name is"), \
            db.session() as session:
            jobs.add.delay(session, "m" * (limits.MODEL_NAME + 1), 1, 2)
    assert states(db) == {}


def test_deep_arguments_are_refused_with_the_documented_type_error(db):
    value: list = []
    inner = value
    for _ in range(500):
        inner.append([])
        inner = inner[0]
    with pytest.raises(TypeError, match="nested more than 100 levels"):
        delay(db, jobs.noop, value)
    cycle: dict = {}
    cycle["self"] = cycle
    with pytest.raises(TypeError):
        delay(db, jobs.noop, cycle)
    assert codec.dumps([[[]]]) == "[[[]]]"


def test_results_and_tracebacks_are_capped(db):
    huge = delay(db, poison.behave, "return_huge", 5_000_000)
    burst(db)
    assert len(row(db, huge)["result"]) <= limits.RESULT
    assert row(db, huge)["result"].endswith("[... truncated: 5000000 characters in all]")


# -- text rules ----------------------------------------------------------------------------------
def test_storable_and_printable_text():
    assert storable("caf\udce9 a\x00b ok\n") == "caf\\udce9 a\\x00b ok\n"
    assert printable("a\x1b]52;c;aGk=\x07b\nc\u202e") == "a\\x1b]52;c;aGk=\\x07b\nc\\u202e"
    assert printable("a\nb\tc", one_line=True) == "a\\x0ab\\x09c"
    assert ChannelSpec("root.a", throttle=1).throttle == 1.0
