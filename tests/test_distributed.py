"""Many worker processes on one database: global capacities, dead workers, outages."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import psycopg
import pytest

import queuejob
from tests import jobs
from tests.helpers import (
    claim,
    executions,
    job_rows,
    max_overlap,
    spawn_worker,
    states,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.slow

FAST_RESCUE = ("--heartbeat", "0.5", "--dead-after", "3", "--rescue-interval", "0.5")


def test_global_capacity_holds_across_ten_workers_on_three_machines(db, db_url, job_env,
                                                                   tmp_path):
    log = tmp_path / "executions"
    queuejob.operations.set_channel(db, "root.export", 2)
    with db.session() as session:
        for _ in range(60):
            jobs.export.delay(session, "m", str(log), seconds=0.05)
    workers = [spawn_worker(db_url, job_env, "--hostname", f"machine{n % 3}",
                            "--poll", "0.05", "--concurrency", "1",
                            channels="root.export:1",
                            log=tmp_path / f"worker{n}.log") for n in range(10)]
    try:
        wait_until(lambda: states(db) == {"done": 60}, timeout=120, message="all done")
    finally:
        assert [stop_process(worker) for worker in workers] == [0] * 10
    runs = executions(log)
    assert len(runs) == 60 and len({run[0] for run in runs}) == 60
    # the stored capacity (2) wins over the one the workers declare (1); each process
    # runs one job at a time, so reaching 2 takes two processes, and without a rule
    # for all workers the ten of them would run up to ten at once
    assert max_overlap([(run[3], run[4]) for run in runs]) == 2
    assert len({run[2] for run in runs}) >= 2
    assert states(db) == {"done": 60}


def test_channels_command_shows_the_global_capacity(db, db_url):
    queuejob.operations.set_channel(db, "export", 2)
    rows = {row["name"]: row for row in queuejob.operations.channels(db)}
    assert rows["root.export"]["capacity"] == 2


def test_a_killed_worker_s_jobs_are_rescued_and_run_again(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log), seconds=1.0) for _ in range(8)]
    victim = spawn_worker(db_url, job_env, *FAST_RESCUE, log=tmp_path / "victim.log")
    try:
        started = wait_until(lambda: [r for r in job_rows(
            db, state="started") if r["worker_id"]], message="victim started jobs")
        victim_id = started[0]["worker_id"]
        in_flight = {r["uuid"] for r in job_rows(db, state="started")}
        assert len(in_flight) == 4
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(10)
    finally:
        stop_process(victim)
    rescuer = spawn_worker(db_url, job_env, *FAST_RESCUE, log=tmp_path / "rescuer.log")
    try:
        wait_until(lambda: all(queuejob.operations.load_job(db, u)["worker_id"] != victim_id
                               or queuejob.operations.load_job(db, u)["state"] != "started"
                               for u in in_flight), timeout=20, message="rescue")
        rescued_after = time.monotonic() - killed_at
        wait_until(lambda: states(db) == {"done": 8}, timeout=60, message="all done")
    finally:
        assert stop_process(rescuer) == 0
    assert rescued_after < 3 + 0.5 + 1 + 2  # dead-after + rescue interval + 1 s (+ start-up)
    runs = executions(log)
    assert Counter(run[0] for run in runs) == Counter(uuids)  # each finished exactly once
    for job_uuid in uuids:
        job = queuejob.operations.load_job(db, job_uuid)
        assert job["retry"] == (2 if job_uuid in in_flight else 1)
    workers = {row["id"]: row for row in queuejob.operations.workers(db)}
    assert workers[victim_id]["state"] == "dead"


def test_a_job_that_kills_its_worker_ends_failed_after_max_retries(db, db_url, job_env,
                                                                  tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        poison = jobs.kill_worker.delay(session, "m", str(log), max_retries=3)
        normal = [jobs.add.delay(session, "m", n, n) for n in range(50)]
    deaths = 0
    deadline = time.monotonic() + 90
    while queuejob.operations.load_job(db, poison)["state"] != "failed":
        assert time.monotonic() < deadline, "poison job never failed"
        worker = spawn_worker(db_url, job_env, *FAST_RESCUE, log=tmp_path / "worker.log")
        try:
            wait_until(lambda worker=worker: worker.poll() is not None
                       or queuejob.operations.load_job(db, poison)["state"] == "failed",
                       timeout=30, message="worker killed by its job or poison failed")
        finally:
            stop_process(worker)
        deaths += worker.returncode == -signal.SIGKILL
    assert len(executions(log)) == 3 == deaths
    job = queuejob.operations.load_job(db, poison)
    assert job["exc_info"] == "worker died while running this job (3 times)"
    # the jobs that shared the poison's last worker were rescued with it: one more run
    worker = spawn_worker(db_url, job_env, "--burst", *FAST_RESCUE)
    try:
        assert worker.wait(60) == 0
    finally:
        stop_process(worker)
    assert all(queuejob.operations.load_job(db, u)["state"] == "done" for u in normal)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_workers_survive_a_postgresql_restart(db, db_url, job_env, tmp_path, pg_server):
    log = tmp_path / "executions"
    total = 1500
    with db.session() as session:
        for _ in range(total):
            jobs.record.delay(session, "m", str(log), seconds=0.002)
    workers = [spawn_worker(db_url, job_env, "--poll", "0.2", log=tmp_path / f"w{n}.log")
               for n in range(4)]
    try:
        wait_until(lambda: len(executions(log)) > 200, timeout=60, message="jobs running")
        pg_server.pg_ctl("restart", "-m", "fast")
        restarted_at = len(executions(log))
        assert restarted_at < total, "the restart came too late to matter"

        def all_done():
            try:
                return states(db) == {"done": total}
            except psycopg.OperationalError:
                return False
        wait_until(all_done, timeout=120, message="all jobs done after the restart")
        assert all(worker.poll() is None for worker in workers), "a worker exited"
    finally:
        codes = [stop_process(worker) for worker in workers]
    assert codes == [0, 0, 0, 0]
    runs = Counter(run[0] for run in executions(log))
    assert len(runs) == total
    assert sum(runs.values()) - total <= 4 * 4  # re-runs: at most the jobs in flight
    logs = "".join((tmp_path / f"w{n}.log").read_text() for n in range(4))
    assert "retrying in" in logs


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_worker_started_while_postgresql_is_down_waits_for_it(db, db_url, job_env,
                                                                  tmp_path, pg_server):
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log)) for _ in range(5)]
    worker_log = tmp_path / "worker.log"
    pg_server.pg_ctl("stop", "-m", "fast")
    try:
        worker = spawn_worker(db_url, job_env, "--burst", log=worker_log)
        wait_until(lambda: "retrying in" in worker_log.read_text(), timeout=60,
                   message="the worker reports it is waiting for the database")
        assert worker.poll() is None, worker_log.read_text()
    finally:
        pg_server.pg_ctl("start")
    try:
        assert worker.wait(60) == 0, worker_log.read_text()
    finally:
        stop_process(worker)
    assert sorted(run[0] for run in executions(log)) == sorted(uuids)


def test_application_connection_commits_and_rolls_back_jobs(db, db_url):
    """db.session(connection=conn): the application's transaction decides."""
    if db.dialect == "postgresql":
        conn = psycopg.connect(db_url)
        placeholder = "%s"
    else:
        import sqlite3
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        placeholder = "?"
    try:
        conn.execute("CREATE TABLE orders (id integer)")
        with db.session(connection=conn) as session:
            session.execute(f"INSERT INTO orders VALUES ({placeholder})", (1,))
            kept = jobs.add.delay(session, "m", 1, 1)
            with pytest.raises(RuntimeError, match="application commits"):
                session.commit()
        conn.commit()
        if db.dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
        with db.session(connection=conn) as session:
            session.execute(f"INSERT INTO orders VALUES ({placeholder})", (2,))
            jobs.add.delay(session, "m", 2, 2)
        conn.rollback()
    finally:
        conn.close()
    assert states(db) == {"pending": 1}
    assert queuejob.operations.load_job(db, kept)["state"] == "pending"
    with db.session() as session:
        assert [r[0] for r in session.execute("SELECT id FROM orders").fetchall()] == [1]


def test_many_rescuers_rescue_each_job_once(db, db_url):
    """Workers rescuing at the same time count each dead worker's job once."""
    with db.session() as session:
        uuids = [jobs.add.delay(session, "m", n, n) for n in range(20)]
    # a worker that claimed every job, then went silent
    db.run(lambda conn: db.store.register_worker(conn, "ghost", "nowhere", 1, "root:20"))
    from queuejob.core.channels import ChannelTree
    claimed = db.run(lambda conn: claim(db, conn, "ghost", ChannelTree.from_string(
        "root:20"), {}, 20))
    assert len(claimed) == 20
    db.run(lambda conn: db.connector.execute_sql(
        conn, "UPDATE queue_worker SET state = 'dead'"))
    import threading
    barrier = threading.Barrier(6)
    reports = []

    def rescue():
        barrier.wait()
        for _ in range(5):
            try:
                reports.append(db.run(lambda conn: db.store.rescue(conn, 3.0)))
                return
            except Exception as exc:  # SQLite: another rescuer holds the write lock
                if not db.connector.is_transient(exc):
                    raise
                time.sleep(random.random() / 10)
    threads = [threading.Thread(target=rescue) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    rescued = [job_uuid for report in reports for job_uuid in report.rescued]
    assert sorted(rescued) == sorted(uuids)
    assert {queuejob.operations.load_job(db, u)["retry"] for u in uuids} == {1}
