"""Bad input (issue 5, items 17-21): arguments that round-trip or are refused, stored
rows that are corrupt or name functions nobody registered, size limits, the CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob.core import codec
from queuejob.core.errors import ArgumentsTooLargeError, DecodeError
from queuejob.core.outcome import MAX_TEXT
from queuejob.storage import RESERVED
from tests import jobs
from tests.helpers import stop_process, wait_until
from tests.reliability import jobs as rjobs
from tests.reliability.common import row, rows, scaled, seeded, spawn, sql, state_counts
from tests.test_cli import EVIL_CHANNEL, MALFORMED_UUID, UNKNOWN_UUID, one_line_error, run_cli
from tests.unit.test_codec import VALUES, same

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("QUEUEJOB_RELIABILITY_EXAMPLES") or scaled(500, 10_000))


class Rollback(Exception):
    pass


def delay(db, func, *args, **options):
    with db.session() as session:
        return func.delay(session, "m", *args, **options)


def run_burst(db):
    queuejob.Worker(db, channels="root:4", modules=["tests.jobs", "tests.reliability.jobs"]
                    ).run(burst=True)


def set_column(db, job_uuid, column, value):
    sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, job_uuid))


# -- 17. arguments round-trip through the database, or are refused ----------------------------
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda name: name not in RESERVED and name != "model_name")


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(args=st.lists(VALUES, max_size=4), kwargs=st.dictionaries(NAMES, VALUES, max_size=3))
def test_nested_allowed_arguments_round_trip_through_the_database(db, args, kwargs):
    try:
        with db.session() as session:
            job_uuid = rjobs.args_of.delay(session, "m", *args, **kwargs)
            job = queuejob.DatabaseJobStorage(session).load(job_uuid)
            raise Rollback
    except Rollback:
        pass
    assert same(job.args, ("m", *args)), (args, job.args)
    assert same(job.kwargs, kwargs), (kwargs, job.kwargs)


def test_a_job_receives_its_tuples_and_zoned_datetimes_as_they_were(db):
    paris = dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris"))
    args = ((1, (2, [3])), paris, dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(
        hours=5, minutes=45))), dt.date(2024, 2, 29), Decimal("1.10"),
        UUID(int=7), {(1, 2): "tuple key"}, float("inf"))
    kwargs = {"when": dt.timedelta(days=-1, microseconds=3), "nested": [{"a": (None,)}]}
    job_uuid = delay(db, rjobs.args_of, *args, **kwargs)
    run_burst(db)
    # keyword arguments come back with their keys sorted (canonical JSON)
    assert row(db, job_uuid)["result"] == repr((args, sorted(kwargs.items())))
    with db.session() as session:
        job = queuejob.DatabaseJobStorage(session).load(job_uuid)
    assert same(job.args, ("m", *args)) and same(job.kwargs, kwargs)
    assert job.args[2].tzinfo == ZoneInfo("Europe/Paris") and job.args[2].fold == 1


class NotAllowed:
    pass


REFUSED = [{1, 2}, frozenset({1}), b"bytes", bytearray(b"x"), object(), complex(1, 2),
           NotAllowed(), lambda: None, jobs.not_a_job, range(3), [1, {"deep": [{3}]}],
           (1, b"x"), {"k": object()}, {frozenset(): 1}, {1: NotAllowed()}]


@pytest.mark.parametrize("value", REFUSED, ids=lambda value: type(value).__name__)
def test_a_disallowed_argument_is_refused_at_delay_and_nothing_is_written(db, value):
    with db.session() as session:
        kept = jobs.add.delay(session, "m", 1, 2)
        with pytest.raises(TypeError, match="cannot store"):
            jobs.add.delay(session, "m", value, 2)
        with pytest.raises(TypeError, match="cannot store"):
            jobs.add.delay(session, "m", 1, b=value)
        with pytest.raises(TypeError, match="cannot store"):
            jobs.add.delay_many(session, [("m", 1, 2), ("m", value, 2)])
    assert set(rows(db)) == {kept}
    with pytest.raises(TypeError), db.session() as session:
        jobs.add.delay(session, "m", 3, 4)
        jobs.add.delay(session, "m", value, 4)
    assert set(rows(db)) == {kept}


# -- 18. corrupted stored rows ----------------------------------------------------------------
def pickle_creating(path: Path) -> str:
    """A protocol-0 pickle (text) that would create ``path`` if it were unpickled."""
    return f"c__builtin__\nopen\n(V{path}\nVw\ntR."


def corruptions(rng, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """{name: (column, stored text)} of corrupt argument payloads."""
    marker = tmp_path / "created"
    valid = codec.dumps([1, "two", {"three": (3.0, None)}, [dt.date(2024, 1, 2)]])
    out: dict[str, tuple[str, str]] = {}
    flips = 0
    while flips < 8:
        data = bytearray(valid.encode())
        position = rng.randrange(len(data))
        data[position] ^= 1 << rng.randrange(7)  # stays ASCII
        text = data.decode()
        try:
            codec.decode_arguments(text, "{}")
        except DecodeError:
            out[f"bit flip {flips}"] = ("args", text)
            flips += 1
    for number, cut in enumerate(sorted(rng.sample(range(1, len(valid)), 3))):
        out[f"truncated {number}"] = ("args", valid[:cut])
    out["truncated kwargs"] = ("kwargs", '{"a": [1, 2')
    out["100,000-deep nesting"] = ("args", "[" * 100_000 + "]" * 100_000)
    out["100,000-deep dict"] = ("kwargs", '{"a":' * 100_000 + "1" + "}" * 100_000)
    out["50 MB string"] = ("args", '["' + "a" * 50_000_000 + '"]')
    out["unknown tag"] = ("args", json.dumps([{"__qj__": "pickle", "v": "gASVAAAAAAAAAAA="}]))
    out["eval tag"] = ("kwargs", json.dumps({"x": {"__qj__": "eval", "v": "1+1"}}))
    out["Popen object"] = ("args", json.dumps([{"__qj__": "object", "cls": "subprocess.Popen",
                                                "v": {"args": ["touch", str(marker)]}}]))
    out["Popen global"] = ("args", json.dumps([{"__qj__": "global", "v": "subprocess.Popen"}]))
    out["Popen enum"] = ("args", json.dumps([{"__qj__": "enum", "cls": "subprocess.Popen",
                                              "v": ["touch", str(marker)]}]))
    out["os.system job"] = ("args", json.dumps([{"__qj__": "job", "v": "os.system"}]))
    out["side-effect module"] = ("args", json.dumps(
        [{"__qj__": "global", "v": "tests.reliability.side_effect.boom"}]))
    out["pickle"] = ("args", pickle_creating(marker))
    out["pickle kwargs"] = ("kwargs", pickle_creating(marker))
    out["not a list"] = ("args", '{"a": 1}')
    out["NaN constant"] = ("args", "[NaN]")
    return out


def test_corrupted_rows_fail_alone_and_run_nothing(db, db_url, job_env, tmp_path):
    rng = seeded("corruptions")
    log = tmp_path / "executions"
    marker = tmp_path / "created"
    side_effect = tmp_path / "side-effect"
    env = {**job_env, "QUEUEJOB_TEST_SIDE_EFFECT": str(side_effect)}
    corrupt: dict[str, str] = {}
    normal = []
    for name, (column, text) in corruptions(rng, tmp_path).items():
        job_uuid = delay(db, rjobs.args_of, 1, key="value")
        set_column(db, job_uuid, column, text)
        corrupt[job_uuid] = name
        normal.append(delay(db, jobs.record, str(log)))
    worker = spawn(db_url, env, "--poll", "0.05", log=tmp_path / "worker.log")
    try:
        wait_until(lambda: state_counts(db) == {"failed": len(corrupt), "done": len(normal)},
                   timeout=120, message="corrupt jobs failed, the others done")
        assert worker.poll() is None, "the worker exited"
    finally:
        assert stop_process(worker) == 0
    for job_uuid, name in corrupt.items():
        job = row(db, job_uuid)
        assert job["state"] == "failed", name
        message = job["exc_info"]
        assert message.startswith("cannot decode the stored arguments: "), (name, message)
        assert "\n" not in message and len(message) < 500, (name, message)
        assert job["retry"] == 0 and job["result"] is None, name
    assert not marker.exists(), "a payload created a file"
    assert not side_effect.exists(), "a payload imported a module"
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def test_arguments_that_are_not_valid_utf8_fail_their_job_alone(db, db_url, job_env,
                                                                tmp_path):
    """SQLite stores whatever bytes it is given, as text or as a blob; PostgreSQL
    refuses text that is not valid UTF-8, so such a row cannot exist there."""
    invalid = b'["\xff\xfe"]'
    if db.dialect == "postgresql":
        job_uuid = delay(db, rjobs.args_of, 1)
        with pytest.raises(psycopg.DataError):
            sql(db, "UPDATE queue_job SET args = convert_from(?, 'UTF8') WHERE uuid = ?",
                (invalid, job_uuid))
        with pytest.raises(psycopg.DataError):
            sql(db, "UPDATE queue_job SET args = ? WHERE uuid = ?",
                (invalid.decode("latin-1").replace("ÿ", "\x00"), job_uuid))
        assert row(db, job_uuid)["args"] == "[\"m\",1]"
        return
    log = tmp_path / "executions"
    as_text = delay(db, rjobs.args_of, 1)
    as_blob = delay(db, rjobs.args_of, 2)
    sql(db, "UPDATE queue_job SET args = CAST(? AS TEXT) WHERE uuid = ?", (invalid, as_text))
    sql(db, "UPDATE queue_job SET kwargs = ? WHERE uuid = ?", (invalid, as_blob))
    normal = [delay(db, jobs.record, str(log)) for _ in range(5)]
    worker = spawn(db_url, job_env, "--poll", "0.05", log=tmp_path / "worker.log")
    try:
        wait_until(lambda: all(row(db, u)["state"] == "done" for u in normal)
                   or worker.poll() is not None, timeout=30,
                   message="the other jobs done (or the worker dead)")
        alive = worker.poll() is None
    finally:
        code = stop_process(worker)
    log_text = (tmp_path / "worker.log").read_text(errors="replace")
    assert alive and code == 0, f"the worker died on a stored row:\n{log_text[-1500:]}"
    conn = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    conn.text_factory = bytes
    try:
        states = dict(conn.execute("SELECT uuid, state FROM queue_job").fetchall())
        messages = dict(conn.execute("SELECT uuid, exc_info FROM queue_job").fetchall())
    finally:
        conn.close()
    for job_uuid in (as_text, as_blob):
        assert states[job_uuid.encode()] == b"failed"
        assert messages[job_uuid.encode()].startswith(b"cannot decode the stored arguments")


# -- 19. stored function names nobody registered ----------------------------------------------
def test_stored_function_names_that_are_not_registered_jobs_run_nothing(
        db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    marker = tmp_path / "called"
    side_effect = tmp_path / "side-effect"
    env = {**job_env, "QUEUEJOB_TEST_SIDE_EFFECT": str(side_effect)}
    names = {
        "os.system": json.dumps([f"touch {marker}"]),
        "builtins.eval": json.dumps([f"open({str(marker)!r}, 'w')"]),
        "builtins.exec": json.dumps([f"open({str(marker)!r}, 'w')"]),
        "subprocess.run": json.dumps([["touch", str(marker)]]),
        "tests.jobs.not_a_job": "[]",                       # undecorated
        "no_such_module.function": "[]",                    # a missing module
        "tests.reliability.side_effect.boom": "[]",         # an import with a side effect
        "tests.jobs": "[]", "": "[]", "os.path.join.__call__": "[]",
    }
    stored = {}
    for name, args in names.items():
        job_uuid = delay(db, jobs.add, 1, 2)
        sql(db, "UPDATE queue_job SET func_name = ?, args = ?, kwargs = '{}' WHERE uuid = ?",
            (name, args, job_uuid))
        stored[job_uuid] = name
    normal = [delay(db, jobs.record, str(log)) for _ in range(10)]
    worker = spawn(db_url, env, "--poll", "0.05", log=tmp_path / "worker.log")
    try:
        wait_until(lambda: state_counts(db) == {"failed": len(names), "done": len(normal)},
                   timeout=60, message="unregistered jobs failed, the others done")
    finally:
        assert stop_process(worker) == 0
    for job_uuid, name in stored.items():
        job = row(db, job_uuid)
        assert f"{name} is not registered as a job" in job["exc_info"], name
    assert not marker.exists(), "a stored function name was called"
    assert not side_effect.exists(), "a stored function name was imported"


# -- 20. size limits -----------------------------------------------------------------------------
def test_arguments_over_the_limit_are_refused_at_delay(db, db_url):
    big = "x" * (1024 * 1024)
    with db.session() as session:
        kept = jobs.add.delay(session, "m", "x" * 1000, "y")
        with pytest.raises(ArgumentsTooLargeError, match="over the limit of 1048576 bytes"):
            jobs.add.delay(session, "m", big, "y")
        with pytest.raises(ArgumentsTooLargeError):
            jobs.add.delay(session, "m", 1, b=[big[: 600_000], big[: 600_000]])
    assert set(rows(db)) == {kept}
    small = queuejob.open(db_url, max_args_size=2000)  # configurable
    try:
        with small.session() as session:
            fits = jobs.add.delay(session, "m", "x" * 1500, "y")
            with pytest.raises(ArgumentsTooLargeError, match="over the limit of 2000 bytes"):
                jobs.add.delay(session, "m", "x" * 2500, "y")
        # a worker with a smaller limit than the writer refuses the stored row, not more
        with db.session() as session:
            over = jobs.add.delay(session, "m", "x" * 5000, "y")
        queuejob.Worker(small, channels="root:2", modules=["tests.jobs"]).run(burst=True)
    finally:
        small.close()
    assert set(rows(db)) == {kept, fits, over}
    assert row(db, over)["state"] == "failed"
    assert "over the limit of 2000" in row(db, over)["exc_info"]
    assert row(db, fits)["state"] == "done"


def test_result_and_exc_info_are_capped_with_a_marker(db):
    result = delay(db, rjobs.big_result, 500_000)
    error = delay(db, rjobs.big_error, 500_000)
    small = delay(db, rjobs.big_result, 100)
    run_burst(db)
    stored = row(db, result)["result"]
    assert len(stored) <= MAX_TEXT == 64 * 1024
    assert stored.startswith("r" * 1000)
    assert stored.endswith("[... truncated: 500000 characters in all]")
    failed = row(db, error)
    assert failed["state"] == "failed"
    assert len(failed["exc_info"]) <= MAX_TEXT
    assert failed["exc_info"].startswith("Traceback")
    assert "[... truncated:" in failed["exc_info"]
    assert row(db, small)["result"] == "r" * 100


# -- 21. the command line --------------------------------------------------------------------------
def dump(db) -> list[tuple]:
    """Every row of queuejob's tables."""
    out = []
    for table in ("queue_job", "queue_worker", "queue_channel", "queue_job_function"):
        out += [(table, *map(str, item)) for item in sql(db, f"SELECT * FROM {table}")]
    return sorted(out)


UNREACHABLE = "postgresql://u@127.0.0.1:1/x"

CLI_CASES = {
    "bad url": (["stats", "--db", "foo://x"], "foo"),
    "bad sqlite path": (["jobs", "--db", "sqlite:///no-such-dir/x.db"], "no-such-dir"),
    "unreachable database": (["cancel", UNKNOWN_UUID, "--db", UNREACHABLE], "127.0.0.1"),
    "unknown uuid": (["cancel", UNKNOWN_UUID], UNKNOWN_UUID),
    "malformed uuid": (["requeue", MALFORMED_UUID], MALFORMED_UUID),
    "unknown uuid shown": (["jobs", UNKNOWN_UUID], UNKNOWN_UUID),
    "malformed channels": (["worker", "--channels", "root:4,root.a:x", "--module",
                            "tests.jobs", "--burst"], "root.a:x"),
    "sql in a channel name": (["channels", "set", EVIL_CHANNEL, "2"], "channel"),
    "sql in a channel filter": (["cancel", "--channel", EVIL_CHANNEL, "--yes"], "channel"),
    "sql in worker channels": (["worker", "--channels", f"root:4,{EVIL_CHANNEL}:1",
                                "--module", "tests.jobs", "--burst"], "channel"),
    "malformed channel string": (["channels", "set", "root..a", "2"], "channel"),
}


def test_cli_bad_input_is_one_line_and_writes_nothing(db, db_url, job_env, tmp_path):
    env = {key: value for key, value in job_env.items() if key != "QUEUEJOB_DATABASE_URL"}
    delay(db, jobs.fail)
    run_burst(db)
    pending = delay(db, jobs.noop, eta=86400)
    queuejob.operations.set_channel(db, "root.kept", 3)
    before = dump(db)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name, (args, named) in CLI_CASES.items():
        database = [] if "--db" in args else ["--db", db_url]
        message = one_line_error(run_cli(env, *args, *database, cwd=cwd, timeout=60))
        assert named in message, (name, message)
        assert dump(db) == before, name
    assert list(cwd.iterdir()) == [], "a command created a file"
    assert row(db, pending)["state"] == "pending"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_cli_on_a_locked_sqlite_database_is_one_line_and_writes_nothing(db, db_url, job_env):
    env = {key: value for key, value in job_env.items() if key != "QUEUEJOB_DATABASE_URL"}
    pending = delay(db, jobs.noop, eta=86400)
    before = dump(db)
    url = f"{db_url}?busy_timeout=0.2"
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        for args in (["cancel", pending], ["channels", "set", "root.a", "2"],
                     ["worker", "--module", "tests.jobs", "--burst"]):
            message = one_line_error(run_cli(env, *args, "--db", url, timeout=60))
            assert "locked" in message, (args, message)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert dump(db) == before
