"""Batches (queuejob.batch, the successor's queue_job_batch), on both backends: the jobs
delayed in the block join the batch, written with them in the session's transaction; one
callback across several worker processes; on_failure once a job failed for good, not
while it is retrying; the counts the operations and the command line show; rows written
by hand cost their batch only."""

from __future__ import annotations

import json
import uuid as uuid_module

import pytest
from click.testing import CliRunner

import queuejob
from queuejob.cli.app import cli
from tests import jobs
from tests.helpers import (
    ThreadWorker,
    job_rows,
    refused,
    spawn_worker,
    stop_process,
    wait_until,
)


def _batch(db, batch_uuid):
    return queuejob.operations.batch(db, batch_uuid)


def _concluded(db, batch_uuid):
    entry = _batch(db, batch_uuid)
    return entry if entry["state"] != "open" else None


def test_jobs_delayed_in_the_block_join_the_batch(db):
    with db.session() as session:
        with queuejob.batch(session, "import 2026-12-03",
                            on_done=jobs.noop.delayable(session, "sale.order", "report"),
                            on_failure=jobs.noop.delayable(session, "sale.order", "alert")
                            ) as b:
            one = jobs.add.delay(session, "sale.order", 1, 2)
            many = jobs.add.delay_many(session, [("sale.order", 3, 4), ("sale.order", 5, 6)])
            graph = queuejob.chain(jobs.noop.delayable(session, "a"),
                                   jobs.noop.delayable(session, "b")).delay()
            keyed = jobs.noop.delay(session, "k", identity_key="batch-key")
        outside = jobs.noop.delay(session, "not in the batch")
    expected = {one, *many, keyed, *(d.uuid for d in graph.delayables())}
    assert set(b.jobs) == expected and len(b.jobs) == 6
    entry = _batch(db, b.uuid)
    assert entry["name"] == "import 2026-12-03" and entry["state"] == "open"
    assert {job["uuid"] for job in entry["jobs"]} == expected and outside not in expected
    assert entry["counts"]["pending"] == 5 and entry["counts"]["wait_dependencies"] == 1
    assert entry["counts"]["total"] == 6
    assert entry["on_done"]["func_name"] == "tests.jobs.noop"
    assert json.loads(entry["on_failure"]["args"]) == ["sale.order", "alert"]

    # a job whose identity key a pending job holds: that job joins instead
    with db.session() as session, queuejob.batch(session, "again") as again:
        jobs.noop.delay(session, "k", identity_key="batch-key")
    assert again.jobs == [keyed]


def test_a_rolled_back_session_leaves_no_batch(db):
    with pytest.raises(RuntimeError, match="changed my mind"), db.session() as session:
        with queuejob.batch(session, "rolled back") as b:
            jobs.noop.delay(session, "x")
            jobs.noop.delay_many(session, [("y",), ("z",)])
        raise RuntimeError("changed my mind")
    with pytest.raises(RuntimeError, match="in the block"), db.session() as session, \
            queuejob.batch(session, "failed in the block"):
        jobs.noop.delay(session, "x")
        raise RuntimeError("in the block")
    assert queuejob.operations.batches(db) == []
    assert job_rows(db) == []
    with pytest.raises(queuejob.ConfigurationError, match="no batch"):
        _batch(db, b.uuid)


def test_batches_do_not_nest_and_check_what_they_are_given(db):
    with db.session() as session:
        with queuejob.batch(session, "outer"):
            with pytest.raises(ValueError, match="batches do not nest"), \
                    queuejob.batch(session, "inner"):
                pass
            jobs.noop.delay(session, "x")
        with pytest.raises(ValueError, match="batch name"):
            queuejob.batch(session, "two\nlines")
        with pytest.raises(TypeError, match=r"fn\.delayable"):
            queuejob.batch(session, "b", on_done=jobs.noop)  # type: ignore[arg-type]
        linked = jobs.noop.delayable(session, "x")
        queuejob.chain(linked, jobs.noop.delayable(session, "y"))
        with pytest.raises(ValueError, match="a job of its own"):
            queuejob.batch(session, "b", on_failure=linked)
    assert [entry["name"] for entry in queuejob.operations.batches(db)] == ["outer"]


def test_a_batch_without_jobs_is_done_at_a_workers_next_look(db, tmp_path):
    out = tmp_path / "empty"
    with db.session() as session, queuejob.batch(
            session, "nothing",
            on_done=jobs.append_line.delayable(session, "x", str(out), "empty done")) as b:
        pass
    assert b.jobs == []
    with ThreadWorker(db):
        wait_until(out.exists, message="the callback of the empty batch")
    entry = _batch(db, b.uuid)
    assert entry["state"] == "done" and entry["callback_uuid"]
    assert out.read_text() == "empty done\n"


def test_a_worker_looks_at_every_open_batch_a_hundred_at_a_time(db):
    with db.session() as session:
        made = []
        for number in range(130):
            with queuejob.batch(session, f"batch {number}") as b:
                pass
            made.append(b.uuid)
    with ThreadWorker(db):
        wait_until(lambda: not queuejob.operations.batches(db, state="open", limit=1000),
                   message="every batch concluded")
    done = queuejob.operations.batches(db, state="done", limit=1000)
    assert sorted(entry["uuid"] for entry in done) == sorted(made)


def test_the_callback_runs_once_with_three_worker_processes(db, db_url, job_env, tmp_path):
    out = tmp_path / "callback"
    with db.session() as session, queuejob.batch(
            session, "thirty", on_done=jobs.append_line.delayable(
                session, "sale.order", str(out), "all done", priority=1),
            on_failure=jobs.append_line.delayable(session, "x", str(out), "failed")) as b:
        jobs.noop.delay_many(session, [("sale.order", n) for n in range(30)])
    workers = [spawn_worker(db_url, job_env, "--poll", "0.1", log=tmp_path / f"w{n}.log")
               for n in range(3)]
    try:
        concluded = wait_until(lambda: _concluded(db, b.uuid), timeout=40,
                               message="the batch concluded")
        wait_until(lambda: out.exists() and out.read_text(), timeout=30,
                   message="the callback ran")
        # a later batch concluded: every worker had time to look at the first one again
        with db.session() as session, queuejob.batch(session, "witness") as witness:
            jobs.noop.delay(session, "x")
        wait_until(lambda: _concluded(db, witness.uuid), timeout=30, message="the witness")
    finally:
        for worker in workers:
            stop_process(worker)
    assert concluded["state"] == "done" and concluded["counts"]["done"] == 30
    assert out.read_text() == "all done\n"
    callbacks = job_rows(db, func_name="tests.jobs.append_line")
    assert [row["uuid"] for row in callbacks] == [concluded["callback_uuid"]]
    assert callbacks[0]["priority"] == 1 and callbacks[0]["state"] == "done"


def test_on_failure_when_a_job_fails_for_good_not_while_it_retries(db, tmp_path):
    out, give_up = tmp_path / "callback", tmp_path / "give-up"
    with db.session() as session, queuejob.batch(
            session, "with a retry",
            on_done=jobs.append_line.delayable(session, "x", str(out), "done"),
            on_failure=jobs.append_line.delayable(session, "x", str(out), "failed")) as b:
        jobs.noop.delay(session, "x")
        retrying = jobs.retry_until_file.delay(session, "x", str(give_up))
    with ThreadWorker(db):
        wait_until(lambda: queuejob.operations.load_job(db, retrying)["retry"] >= 2,
                   message="the job retried")
        # a batch made later concludes: the workers looked at the first one meanwhile,
        # while its job was only retrying
        with db.session() as session, queuejob.batch(session, "witness") as witness:
            jobs.noop.delay(session, "x")
        wait_until(lambda: _concluded(db, witness.uuid), message="the witness concluded")
        entry = _batch(db, b.uuid)
        assert entry["state"] == "open" and entry["counts"]["done"] == 1
        assert not out.exists()
        give_up.touch()
        concluded = wait_until(lambda: _concluded(db, b.uuid), message="the batch failed")
        wait_until(out.exists, message="on_failure ran")
    assert concluded["state"] == "failed" and concluded["counts"]["failed"] == 1
    assert out.read_text() == "failed\n"


def test_a_cancelled_job_fails_its_batch(db):
    with db.session() as session, queuejob.batch(session, "cancelled") as b:
        done, cancelled = jobs.noop.delay_many(session, [("a",), ("b",)])
    with db.session() as session:
        queuejob.set_done(session, done)
        queuejob.cancel(session, cancelled)
    with ThreadWorker(db):
        concluded = wait_until(lambda: _concluded(db, b.uuid), message="concluded")
    assert concluded["state"] == "failed" and concluded["callback_uuid"] is None


def test_the_command_line_shows_the_counts(db, db_url):
    with db.session() as session, queuejob.batch(
            session, "counted <b>", on_done=jobs.noop.delayable(session, "x")) as b:
        first, second, _ = jobs.noop.delay_many(session, [("a",), ("b",), ("c",)])
    with db.session() as session:
        queuejob.set_done(session, first)
        queuejob.cancel(session, second)
    runner = CliRunner()
    listed = runner.invoke(cli, ["batches", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if b.uuid in line)
    assert line.split()[1:11] == ["counted", "<b>", "open", "1", "0", "1", "0", "1", "3",
                                  line.split()[10]]
    as_json = json.loads(runner.invoke(cli, ["batches", "--db", db_url, "--json"]).output)
    assert as_json[0]["counts"]["done"] == 1 and as_json[0]["counts"]["cancelled"] == 1
    assert as_json[0]["counts"]["pending"] == 1 and as_json[0]["counts"]["total"] == 3
    assert runner.invoke(cli, ["batches", "--db", db_url, "--state", "done",
                               "--json"]).output.strip() == "[]"
    shown = runner.invoke(cli, ["batches", "--db", db_url, b.uuid])
    assert shown.exit_code == 0, shown.output
    assert "1 done, 0 failed, 1 cancelled" in shown.output and "(total 3)" in shown.output
    assert "on done: tests.jobs.noop" in shown.output and first in shown.output
    one = json.loads(runner.invoke(cli, ["batches", "--db", db_url, b.uuid, "--json"]).output)
    assert len(one["jobs"]) == 3 and one["counts"]["done"] == 1
    missing = runner.invoke(cli, ["batches", "--db", db_url, str(uuid_module.uuid4())])
    assert "no batch" in refused(missing)


def _write_by_hand(db, batch_uuid, name, on_done, job_uuid, state="open"):
    """A queue_batch row (and one member) written with plain SQL."""
    mark = "?" if db.dialect == "sqlite" else "%s"
    now = "?" if db.dialect == "sqlite" else "now()"
    params: list = [batch_uuid, name, state]
    if db.dialect == "sqlite":
        params.append(1.0)
    params.append(on_done)
    with db.session() as session:
        session.execute(f"INSERT INTO queue_batch (uuid, name, state, date_created, on_done) "
                        f"VALUES ({mark}, {mark}, {mark}, {now}, {mark})", params)
        session.execute(f"INSERT INTO queue_batch_job (batch_uuid, job_uuid) "
                        f"VALUES ({mark}, {mark})", (batch_uuid, job_uuid))


def test_rows_written_by_hand_cost_their_batch_only(db, db_url, tmp_path):
    out = tmp_path / "callback"
    with db.session() as session:
        member = jobs.noop.delay(session, "x")
        with queuejob.batch(session, "good", on_done=jobs.append_line.delayable(
                session, "x", str(out), "good done")) as good:
            jobs.noop.delay(session, "y")
    bad = {
        str(uuid_module.uuid4()): ("not json <script>alert(1)</script>", "not json"),
        str(uuid_module.uuid4()): ("a list", json.dumps([1, 2])),
        str(uuid_module.uuid4()): ("bad function", json.dumps({
            "func_name": 5, "args": "[]", "kwargs": "{}"})),
        str(uuid_module.uuid4()): ("bad arguments", json.dumps({
            "func_name": "tests.jobs.noop", "args": "{", "kwargs": "{}",
            "description": "d", "default_channel": "root", "priority": 1,
            "max_retries": 1, "concurrency_key": ""})),
        str(uuid_module.uuid4()): ("bad priority", json.dumps({
            "func_name": "tests.jobs.noop", "args": "[]", "kwargs": "{}",
            "description": "d", "default_channel": "root", "priority": "high",
            "max_retries": 1, "concurrency_key": ""})),
        str(uuid_module.uuid4()): ("control \x1b[31m chars", None),
    }
    for batch_uuid, (name, on_done) in bad.items():
        _write_by_hand(db, batch_uuid, name, on_done, member)
    _write_by_hand(db, str(uuid_module.uuid4()), "strange state", None, member, "weird")
    with ThreadWorker(db):
        wait_until(lambda: all(_concluded(db, batch_uuid) for batch_uuid in (*bad, good.uuid)),
                   message="every batch concluded")
        wait_until(out.exists, message="the good batch's callback")
    assert out.read_text() == "good done\n"
    for batch_uuid, (_, on_done) in bad.items():
        entry = _batch(db, batch_uuid)
        assert entry["state"] == "done" and entry["callback_uuid"] is None
        assert (entry["callback_error"] is None) == (on_done is None), entry
    assert len(job_rows(db, func_name="tests.jobs.noop")) == 2
    runner = CliRunner()
    listed = runner.invoke(cli, ["batches", "--db", db_url])
    assert listed.exit_code == 0 and "\x1b" not in listed.output
    assert "strange state" in listed.output
    for batch_uuid in bad:
        shown = runner.invoke(cli, ["batches", "--db", db_url, batch_uuid])
        assert shown.exit_code == 0 and "\x1b" not in shown.output, shown.output


def test_sqlite_rows_of_any_type_cost_their_batch_only(tmp_path):
    db = queuejob.open(f"sqlite:///{tmp_path}/jobs.db")
    try:
        with db.session() as session:
            member = jobs.noop.delay(session, "x")
            session.execute("INSERT INTO queue_batch (uuid, name, state, date_created, "
                            "on_done, on_failure) VALUES ('not a uuid', x'00ff', 'open', "
                            "'yesterday', 42, x'01')")
            session.execute("INSERT INTO queue_batch_job VALUES ('not a uuid', ?)", (member,))
            session.execute("INSERT INTO queue_batch (uuid, name, state, date_created) "
                            "VALUES (7, 8, 'open', 9)")
            with queuejob.batch(session, "good") as good:
                jobs.noop.delay(session, "y")
        with ThreadWorker(db):
            wait_until(lambda: _concluded(db, good.uuid), message="the good batch")
            wait_until(lambda: all(entry["state"] == "done"
                                   for entry in queuejob.operations.batches(db)),
                       message="the bad ones too")
        runner = CliRunner()
        listed = runner.invoke(cli, ["batches", "--db", f"sqlite:///{tmp_path}/jobs.db"])
        assert listed.exit_code == 0, listed.output
        shown = runner.invoke(cli, ["batches", "--db", f"sqlite:///{tmp_path}/jobs.db",
                                    "not a uuid"])
        assert "not a uuid" in refused(shown)
    finally:
        db.close()
