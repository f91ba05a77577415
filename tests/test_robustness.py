"""Things that go wrong: busy databases, lost answers, races on identity keys, odd jobs."""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg
import pytest

import queuejob
from queuejob.core.channels import ChannelTree
from queuejob.core.outcome import Outcome
from tests import jobs
from tests.helpers import ThreadWorker, claim, executions, load, row, run_burst, states, wait_until


def delay(db, func, *args, **kwargs):
    with db.session() as session:
        return func.delay(session, "m", *args, **kwargs)


def test_a_worker_with_every_slot_busy_sleeps(db, tmp_path):
    delay(db, jobs.sleep, 1.0)
    with ThreadWorker(db, channels="root:1", poll_interval=0.05) as thread_worker:
        wait_until(lambda: states(db).get("started") == 1, message="started")
        before = thread_worker.worker.loop_iterations
        wait_until(lambda: states(db).get("done") == 1, message="done")
        turns = thread_worker.worker.loop_iterations - before
    assert turns < 60, f"the loop turned {turns} times while its only slot was busy"


def test_a_stopping_worker_sleeps_until_its_jobs_end(db):
    # the job outlasts the services' first due time (1 s after start): a service that
    # is due while the worker stops must not keep the loop awake
    delay(db, jobs.sleep, 1.5)
    thread_worker = ThreadWorker(db, channels="root:1", grace_period=10).__enter__()
    wait_until(lambda: states(db).get("started") == 1, message="started")
    before = thread_worker.worker.loop_iterations
    thread_worker.stop()
    assert thread_worker.worker.loop_iterations - before < 60
    assert states(db) == {"done": 1}


def test_a_return_value_that_cannot_be_text_fails_the_job_once(db):
    job_uuid = delay(db, jobs.returns_bad_text, max_retries=3)
    run_burst(db)
    job = load(db, job_uuid)
    assert (job.state, job.retry) == ("failed", 1)
    assert "cannot be stored as text" in job.exc_info


def test_a_lost_commit_answer_gives_the_claimed_jobs_back(db, monkeypatch):
    """The claim commits but the answer is lost: the worker must not leave the jobs
    started in its name while it lives."""
    uuids = [delay(db, jobs.add, n, n) for n in range(3)]
    connector = db.connector
    real_commit = connector.commit
    lost = {"done": False}

    def commit_then_fail(conn):
        real_commit(conn)
        if not lost["done"] and states(db).get("started"):
            lost["done"] = True
            raise connector_error(db)
    monkeypatch.setattr(connector, "commit", commit_then_fail)
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: states(db) == {"done": 3}, message="all done")
    assert lost["done"]
    assert all(load(db, u).state == "done" for u in uuids)


def connector_error(db):
    if db.dialect == "sqlite":
        return sqlite3.OperationalError("database is locked")
    return psycopg.OperationalError("server closed the connection unexpectedly")


def test_a_retry_raced_by_a_new_job_with_the_same_key_is_superseded(db):
    """PostgreSQL: another transaction makes a job with the key pending between the
    check and the write; the retry must end superseded, not crash the worker."""
    first = delay(db, jobs.add, 1, 1, identity_key="K")
    claimed = db.run(lambda conn: claim(db,
        conn, "w1", ChannelTree.from_string("root:4"), {}, 4))
    assert [r["uuid"] for r in claimed] == [first]
    if db.dialect == "postgresql":
        other = psycopg.connect(db.url)
        second_box = {}

        def insert_later():
            with db.session(connection=other) as session:
                second_box["uuid"] = jobs.add.delay(session, "m", 2, 2, identity_key="K")
            inserted.set()
            release.wait(10)
            other.commit()

        inserted, release = threading.Event(), threading.Event()
        thread = threading.Thread(target=insert_later)
        thread.start()
        assert inserted.wait(10)

        def record():
            conn = db.connector.connect()
            try:
                # the check sees no holder (uncommitted); the write then waits on the
                # other transaction's index entry, which commits: unique violation
                db.connector.begin(conn)
                timer = threading.Timer(0.3, release.set)
                timer.start()
                lost = db.store.record(conn, [Outcome(
                    uuid=first, attempt=1, state="pending", retry=1, eta_delay=0.0,
                    identity_key="K")])
                db.connector.commit(conn)
                return lost
            finally:
                db.connector.close_connection(conn)
        lost = record()
        thread.join(10)
        other.close()
        second = second_box["uuid"]
    else:
        second = delay(db, jobs.add, 2, 2, identity_key="K")
        lost = db.run(lambda conn: db.store.record(conn, [Outcome(
            uuid=first, attempt=1, state="pending", retry=1, eta_delay=0.0,
            identity_key="K")]))
    assert lost == []
    assert (row(db, first)["state"], row(db, first)["result"]) == \
        ("cancelled", f"Superseded by {second}")
    assert row(db, second)["state"] == "pending"


def test_cleanup_reaches_short_lived_channels_behind_long_lived_ones(db):
    with db.session() as session:
        for _ in range(600):
            jobs.noop.delay(session, None)
        short = [jobs.noop.delay(session, None, channel="root.short") for _ in range(10)]
    run_burst(db, channels="root:8")
    placeholder = "?" if db.dialect == "sqlite" else "%s"
    shift = ("date_done - " + placeholder) if db.dialect == "sqlite" \
        else f"date_done - make_interval(secs => {placeholder})"
    db.run(lambda conn: db.connector.execute_sql(
        conn, f"UPDATE queue_job SET date_done = {shift} WHERE channel = 'root'",
        (2 * 86400.0,)))
    db.run(lambda conn: db.connector.execute_sql(
        conn, f"UPDATE queue_job SET date_done = {shift} WHERE channel = 'root.short'",
        (1.5 * 86400.0,)))
    queuejob.operations.set_channel(db, "root.short", removal_interval=1)
    with ThreadWorker(db, cleanup_interval=0.05):
        wait_until(lambda: all(row(db, u) is None for u in short), timeout=30,
                   message="short-lived jobs removed")
    assert states(db) == {"done": 600}


def test_a_job_that_kills_its_worker_fails_even_when_retrying_forever(db):
    job_uuid = delay(db, jobs.add, 1, 1, max_retries=0)
    for death in range(1, 6):
        db.run(lambda conn, death=death: db.store.register_worker(
            conn, f"ghost{death}", "h", 1, "root:1"))
        db.run(lambda conn, death=death: claim(db,
            conn, f"ghost{death}", ChannelTree.from_string("root:1"), {}, 1))
        db.run(lambda conn: db.connector.execute_sql(
            conn, "UPDATE queue_worker SET state = 'dead'"))
        db.run(lambda conn: db.store.rescue(conn, 30.0))
        if death < 5:
            assert row(db, job_uuid)["state"] == "pending"
    job = row(db, job_uuid)
    assert job["state"] == "failed"
    assert job["exc_info"] == "worker died while running this job (5 times)"


def test_a_rescuer_never_rescues_its_own_jobs(db):
    job_uuid = delay(db, jobs.add, 1, 1)
    db.run(lambda conn: db.store.register_worker(conn, "me", "h", 1, "root:1"))
    db.run(lambda conn: claim(db, conn, "me", ChannelTree.from_string("root:1"), {}, 1))
    db.run(lambda conn: db.connector.execute_sql(
        conn, "UPDATE queue_worker SET state = 'dead'"))
    report = db.run(lambda conn: db.store.rescue(conn, 30.0, rescuer="me"))
    assert report.rescued == []
    assert row(db, job_uuid)["state"] == "started"


def test_a_worker_marked_dead_is_alive_again_when_it_claims(db):
    delay(db, jobs.add, 1, 1)
    db.run(lambda conn: db.store.register_worker(conn, "paused", "h", 1, "root:1"))
    db.run(lambda conn: db.connector.execute_sql(
        conn, "UPDATE queue_worker SET state = 'dead'"))
    rows = db.run(lambda conn: claim(db,
        conn, "paused", ChannelTree.from_string("root:1"), {}, 1))
    assert len(rows) == 1
    assert db.run(db.reads.workers)[0]["state"] == "alive"
    assert db.run(lambda conn: db.store.rescue(conn, 30.0)).rescued == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_long_write_lock_does_not_make_live_workers_look_dead(db, db_url, tmp_path):
    """The application holds SQLite's write lock longer than dead_after: heartbeats
    cannot be written, yet no live worker's job is rescued or run twice."""
    log = tmp_path / "executions"
    with db.session() as session:
        for _ in range(4):
            jobs.record.delay(session, "m", str(log), 3.0)
    options = {"heartbeat_interval": 0.2, "dead_after": 1.0, "rescue_interval": 0.2,
               "poll_interval": 0.05}
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    with ThreadWorker(db, concurrency=2, **options), \
            ThreadWorker(db, concurrency=2, **options):
        wait_until(lambda: states(db).get("started") == 4, message="all started")
        holder.execute("BEGIN IMMEDIATE")
        time.sleep(2.0)  # the lock is what this test is about: held past dead_after
        holder.execute("ROLLBACK")
        holder.close()
        wait_until(lambda: states(db) == {"done": 4}, timeout=30, message="all done")
    runs = executions(log)
    assert len(runs) == 4 and len({run[0] for run in runs}) == 4
    assert {row(db, run[0])["retry"] for run in runs} == {1}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_stop_is_honoured_while_the_database_is_locked(db, db_url):
    delay(db, jobs.sleep, 0.3)
    thread_worker = ThreadWorker(db, channels="root:1", grace_period=1.0,
                                 poll_interval=0.05).__enter__()
    wait_until(lambda: states(db).get("started") == 1, message="started")
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None,
                             timeout=0.1)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        thread_worker.worker.stop()
        thread_worker.thread.join(20)
        assert not thread_worker.thread.is_alive()
        assert time.monotonic() - started < 1.0 + 3 * db.connector.busy_timeout + 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_jobs_that_use_their_session_work_after_a_postgresql_restart(db, pg_server):
    with db.session() as session:
        session.execute("CREATE TABLE job_rows (value integer)")
    with ThreadWorker(db, channels="root:2", poll_interval=0.1):
        first = delay(db, jobs.write_row, "job_rows", 1)
        wait_until(lambda: load(db, first).state == "done", message="first done")
        pg_server.pg_ctl("restart", "-m", "fast")

        def reachable():
            try:
                return db.read(lambda conn: True)
            except psycopg.OperationalError:
                return False
        wait_until(reachable, timeout=30, message="server back")
        later = [delay(db, jobs.write_row, "job_rows", n) for n in range(2, 6)]
        wait_until(lambda: all(load(db, u).state in ("done", "failed") for u in later),
                   timeout=60, message="later jobs finished")
    assert [load(db, u).state for u in later] == ["done"] * 4
