"""Many workers on one database: which worker a notification wakes, what a worker holds.

The rules of ``core.wakeups`` (proved for any number of workers), then real workers on
a real PostgreSQL: one new job wakes one worker's claim, a worker with no room passes
the notification on, a burst wakes the workers one after the other, jobs' sessions
borrow from a bounded pool, timestamps are UTC whatever the server's time zone.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import operations
from queuejob.core import wakeups
from queuejob.core.wakeups import Rank, Target
from tests import jobs
from tests.helpers import ThreadWorker, wait_until

# -- the rules -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(workers=st.integers(1, 300), token=st.integers(0, 10**12),
       hops=st.integers(0, 5))
def test_a_targeted_notification_wakes_exactly_one_worker(workers, token, hops):
    payload = wakeups.payload_of(Target(token, hops))
    woken = [rank for rank in range(workers) if wakeups.wakes(Rank(rank, workers), payload)]
    assert woken == [(token + hops) % workers]


@settings(max_examples=200, deadline=None)
@given(workers=st.integers(1, 200), token=st.integers(0, 10**9))
def test_passing_on_visits_every_worker_once_then_stops(workers, token):
    target: Target | None = Target(token)
    visited = []
    while target is not None:
        rank = Rank((target.token + target.hops) % workers, workers)
        assert rank.targets(target)
        visited.append(rank.rank)
        target = rank.passed_on(target)
    assert sorted(visited) == list(range(workers))


@settings(max_examples=100, deadline=None)
@given(workers=st.integers(2, 200), first=st.integers(0, 199))
def test_a_burst_wakes_the_next_workers_in_turn(workers, first):
    rank = Rank(first % workers, workers)
    chain = [rank.rank]
    for _ in range(workers - 1):
        after = rank.next_after_burst()
        assert after is not None
        nxt = [other for other in range(workers)
               if Rank(other, workers).targets(after)]
        assert len(nxt) == 1
        rank = Rank(nxt[0], workers)
        chain.append(rank.rank)
    assert sorted(chain) == list(range(workers))
    assert Rank(0, 1).next_after_burst() is None


@settings(max_examples=300, deadline=None)
@given(payload=st.text(max_size=40), rank=st.integers(0, 50), workers=st.integers(0, 50))
def test_any_payload_is_read_without_error(payload, rank, workers):
    """A payload someone sent by hand costs nothing: one that names no target wakes
    every worker, a probe none."""
    woken = wakeups.wakes(Rank(rank, workers), payload)
    if payload.startswith(wakeups.PROBE_PREFIX):
        assert not woken
    elif wakeups.parse(payload) is None:
        assert woken
    assert wakeups.wakes(None, payload) == (not payload.startswith(wakeups.PROBE_PREFIX))


# -- real workers on PostgreSQL --------------------------------------------------------------

pg_only = pytest.mark.parametrize("backend", ["postgresql"])


def _job(db: queuejob.Database, uuid: str) -> dict[str, Any]:
    return operations.load_job(db, uuid)


def _count_claims(worker: queuejob.Worker) -> list[int]:
    """Count the worker's claims (each is a transaction of its own or a cycle's)."""
    counted = [0]
    claim = worker.claimer.claim

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted[0] += 1
        return claim(*args, **kwargs)

    worker.claimer.claim = counting  # type: ignore[method-assign]
    return counted


def _ranked(workers: list[ThreadWorker], count: int) -> bool:
    looks = [tw.worker.context.look for tw in workers]
    return all(look is not None and look.rank.workers == count for look in looks) and \
        sorted(look.rank.rank for look in looks if look is not None) == list(range(count))


def _open_many(db_url: str, count: int) -> list[queuejob.Database]:
    return [queuejob.open(db_url) for _ in range(count)]


@pg_only
def test_one_new_job_wakes_one_claim_not_every_worker(db, db_url):
    databases = _open_many(db_url, 4)
    workers = [ThreadWorker(each, poll_interval=60.0) for each in databases]
    try:
        for tw in workers:
            tw.__enter__()
        wait_until(lambda: _ranked(workers, 4), timeout=20, message="4 ranked workers")
        counts = [_count_claims(tw.worker) for tw in workers]
        for round_ in range(3):
            with db.session() as session:
                uuid = jobs.add.delay(session, "m", round_, 1)
            assert db.wait(uuid, timeout=10).state == "done"
        # each job: the target's claim, then its cycle writing the outcome (which claims
        # again); every other worker stays asleep
        total = sum(count[0] for count in counts)
        assert total <= 3 * 2, [count[0] for count in counts]
    finally:
        for tw in workers:
            tw.stop()
        for each in databases:
            each.close()


@pg_only
def test_a_worker_with_no_room_passes_the_notification_on(db, db_url, tmp_path):
    gate = tmp_path / "gate"
    databases = _open_many(db_url, 2)
    busy = ThreadWorker(databases[0], concurrency=1, poll_interval=60.0)
    idle = ThreadWorker(databases[1], concurrency=1, poll_interval=60.0)
    try:
        busy.__enter__()
        with db.session() as session:
            blocker = jobs.progressing.delay(session, "m", 1, str(gate))
        wait_until(lambda: _job(db, blocker)["state"] == "started", timeout=10,
                   message="the busy worker's job started")
        idle.__enter__()
        wait_until(lambda: _ranked([busy, idle], 2), timeout=20, message="2 ranked workers")
        # a job that is not due yet: its insert's notification finds nothing to claim
        with db.session() as session:
            uuid = jobs.add.delay(session, "m", 2, 3, eta=1)
        eta = _job(db, uuid)["eta"]
        wait_until(lambda: dt.datetime.now(dt.UTC) > eta + dt.timedelta(seconds=0.2),
                   timeout=5, message="its eta")
        look = busy.worker.context.look
        assert look is not None
        with psycopg.connect(db_url, autocommit=True) as conn:  # names the busy worker
            conn.execute("SELECT pg_notify('queuejob', %s)", (str(look.rank.rank),))
        # polls are a minute apart: only the notification passed on runs it this soon
        assert db.wait(uuid, timeout=10).state == "done"
        assert _job(db, uuid)["worker_id"] == idle.worker.id
    finally:
        gate.write_text("open")
        idle.stop()
        busy.stop()
        for each in databases:
            each.close()


@pg_only
def test_a_burst_wakes_the_workers_one_after_the_other(db, db_url, tmp_path):
    databases = _open_many(db_url, 3)
    workers = [ThreadWorker(each, concurrency=2, poll_interval=60.0) for each in databases]
    try:
        for tw in workers:
            tw.__enter__()
        wait_until(lambda: _ranked(workers, 3), timeout=20, message="3 ranked workers")
        log = tmp_path / "log"
        with db.session() as session:  # one transaction: one notification
            uuids = jobs.record.delay_many(session, [("m", str(log), 0.3)] * 12)
        for uuid in uuids:
            assert db.wait(uuid, timeout=30).state == "done"
        ran_by = {_job(db, uuid)["worker_id"] for uuid in uuids}
        assert ran_by == {tw.worker.id for tw in workers}
    finally:
        for tw in workers:
            tw.stop()
        for each in databases:
            each.close()


def _connections(db_url: str) -> int:
    dbname = psycopg.conninfo.conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                           "AND pid <> pg_backend_pid()", (dbname,)).fetchone()
    assert row is not None
    return int(row[0])


@pg_only
def test_jobs_sessions_borrow_from_a_bounded_pool_and_give_back(db_url, tmp_path):
    worker_db = queuejob.open(db_url)
    client = queuejob.open(db_url)
    client.close()  # the client's pooled connections closed: only the worker's counted
    baseline = _connections(db_url)
    with queuejob.open(db_url) as enqueuer, enqueuer.session() as session:
        uuids = [jobs.write_row.delay(session, "m", "connection_test", n) for n in range(12)]
    tw = ThreadWorker(worker_db, concurrency=4, job_connections=2, poll_interval=0.2)
    assert tw.worker.budget() == "1 + listener + up to 2 for jobs"
    peak = [0]
    try:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS connection_test (value integer)")
        tw.__enter__()

        def all_done() -> bool:
            peak[0] = max(peak[0], _connections(db_url) - baseline)
            with psycopg.connect(db_url, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM queue_job WHERE state = 'done'"
                                   ).fetchone()
            return row is not None and row[0] == len(uuids)

        wait_until(all_done, timeout=30, message="the jobs")
        # the worker's own connection, its listener, at most 2 for its 4 job threads
        assert peak[0] <= 1 + 1 + 2
        # given back, then closed once idle
        wait_until(lambda: _connections(db_url) - baseline <= 2, timeout=20,
                   message="the jobs' connections closed")
    finally:
        tw.stop()
        worker_db.close()


def test_a_worker_without_a_listener_polls(db):
    tw = ThreadWorker(db, listen=False, poll_interval=0.2)
    assert tw.worker.budget() == "1 + no listener (polling) + up to 4 for jobs"
    with tw:
        with db.session() as session:
            uuid = jobs.add.delay(session, "m", 1, 2)
        assert db.wait(uuid, timeout=10).state == "done"
    rows = [row for row in operations.workers(db) if row["id"] == tw.worker.id]
    assert rows and rows[0]["listener"] == "none" and rows[0]["job_connections"] == 4


@pg_only
def test_times_are_utc_whatever_the_servers_time_zone(db_url):
    dbname = psycopg.conninfo.conninfo_to_dict(db_url)["dbname"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET TimeZone = \'Asia/Kolkata\'')
    try:
        with queuejob.open(db_url) as db:
            with db.session() as session:
                uuid = jobs.add.delay(session, "m", 1, 2)
            created = _job(db, uuid)["date_created"]
            assert created.utcoffset() == dt.timedelta(0)
            assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" RESET TimeZone')


def test_bad_listen_url_is_one_clear_error():
    with pytest.raises(queuejob.ConfigurationError, match="bad listen URL"):
        queuejob.open("postgresql://nobody@127.0.0.1:1/none", migrate=False,
                      listen_url="postgresql://x@[bad")


def test_listen_url_on_sqlite_is_one_clear_error(tmp_path, job_env):
    result = subprocess.run(
        [sys.executable, "-m", "queuejob", "worker", "--db", f"sqlite:///{tmp_path}/jobs.db",
         "--module", "tests.jobs", "--listen-url", "postgresql://app@localhost/app"],
        check=False, env=job_env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--listen-url" in lines[0] and "PostgreSQL" in lines[0]
