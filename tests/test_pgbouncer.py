"""Many workers on one PostgreSQL through a real PgBouncer in transaction pooling mode,
PgBouncer's default settings otherwise: the client (open, delay from many threads,
delay_many, the operations), workers that run jobs, are woken through a listen URL or
poll, jobs that work through their session, rescue of a killed worker, capacities across
workers, run-time schedules, and the connection budget a worker announces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

import queuejob
from queuejob import operations
from tests import jobs, pgbouncer_jobs
from tests.conftest import POOLED_DB, ROOT
from tests.helpers import (
    executions,
    job_rows,
    max_overlap,
    spawn_worker,
    states,
    stop_process,
    wait_until,
    worker_command,
)

pytestmark = pytest.mark.slow

FAST_RESCUE = ("--heartbeat", "0.5", "--dead-after", "3", "--rescue-interval", "0.5")
MODULES = ("--module", "tests.pgbouncer_jobs")
BUDGET = "connections: 1 + "
TABLE = "pooled_rows"


def lines(log: Path) -> list[str]:
    return log.read_text(errors="replace").splitlines() if log.exists() else []


def listen_warnings(log: Path) -> list[str]:
    """The worker's lines saying that LISTEN does not hold on its connection (it polls)."""
    return [line for line in lines(log) if "LISTEN" in line and "--listen-url" in line]


def budget_lines(log: Path) -> list[str]:
    return [line for line in lines(log) if BUDGET in line]


def started(log: Path) -> bool:
    return any(" started: " in line for line in lines(log))


def listening(direct_url: str) -> bool:
    """A backend of the pooled database holds a LISTEN (its last statement), as
    pg_stat_activity shows through a direct connection."""
    with psycopg.connect(direct_url, autocommit=True) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%%'",
            (POOLED_DB,)).fetchone()[0])


def all_done(db: queuejob.Database, uuids: list[str]) -> bool:
    return all(operations.load_job(db, uuid)["state"] == "done" for uuid in uuids)


def wait_on(workers: list[tuple[subprocess.Popen, Path]], condition: Any, timeout: float,
            message: str) -> Any:
    """wait_until, failing at once (with the log) when a worker exits meanwhile."""
    def check() -> Any:
        for process, log in workers:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited ({process.returncode}) while waiting "
                                     f"for {message}:\n{log.read_text()[-3000:]}")
        return condition()
    return wait_until(check, timeout=timeout, message=message)


def busy(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Server connections inside a statement or a transaction."""
    return [server for server in servers if server["state"] != "idle"]




@pytest.fixture
def session_url(pgbouncer) -> str:
    """The pooled database through PgBouncer's session pool (a LISTEN holds there)."""
    return pgbouncer.url(POOLED_DB, session=True)


# -- the client --------------------------------------------------------------------------
def test_the_client_through_the_transaction_pool(pgbouncer, pooled_db_url, pooled_direct_url):
    xacts_before = _pool_stats(pgbouncer)["total_xact_count"]
    db = queuejob.open(pooled_db_url)  # applies the migrations through the pool
    try:
        with psycopg.connect(pooled_direct_url) as conn:
            assert conn.execute("SELECT to_regclass('queue_job')").fetchone()[0] is not None
        uuids: list[str] = []
        errors: list[BaseException] = []

        def delay_some(thread: int) -> None:
            try:
                for n in range(12):  # one statement text, many times on each connection
                    with db.session(user_id=thread) as session:
                        uuids.append(jobs.add.delay(session, "m", thread, n))
            except BaseException as exc:
                errors.append(exc)
        threads = [threading.Thread(target=delay_some, args=(n,)) for n in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert len(set(uuids)) == 60
        # one session, many delays of one text on one connection
        with db.session() as session:
            serial = [jobs.noop.delay(session, "m", n) for n in range(12)]
        with db.session() as session:
            many = jobs.noop.delay_many(session, [("m", n) for n in range(30)])
        assert len(set(many)) == 30
        assert states(db) == {"pending": 60 + 12 + 30}
        # the public operations: load, list, cancel, requeue
        job = operations.load_job(db, uuids[0])
        assert job["state"] == "pending" and job["func_name"] == "tests.jobs.add"
        page = operations.find_jobs(db, operations.JobFilter(func_name="tests.jobs.noop"),
                                    limit=100)
        assert {row["uuid"] for row in page.rows} == set(serial) | set(many)
        with db.session() as session:
            assert sorted(operations.cancel(session, *many[:5])) == sorted(many[:5])
        assert {operations.load_job(db, u)["state"] for u in many[:5]} == {"cancelled"}
        with db.session() as session:
            assert sorted(operations.requeue(session, *many[:5])) == sorted(many[:5])
        assert {operations.load_job(db, u)["state"] for u in many[:5]} == {"pending"}
        for _ in range(8):  # reads of one text, many times
            assert states(db) == {"pending": 102}
    finally:
        db.close()
    # it went through PgBouncer's transaction pool: a transaction at least per delay()
    assert _pool_stats(pgbouncer)["total_xact_count"] - xacts_before >= 60
    assert "prepared statement" not in pgbouncer.log()


def _pool_stats(pgbouncer) -> dict[str, Any]:
    for row in pgbouncer.show("STATS"):
        if row["database"] == POOLED_DB:
            return row
    return {"total_xact_count": 0}


def test_the_connection_budget_line(pooled_db_url, job_env, tmp_path):
    result = subprocess.run(worker_command(pooled_db_url, "--burst", channels="root:3"),
                            env=job_env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    budget = [line for line in result.stderr.splitlines() + result.stdout.splitlines()
              if BUDGET in line]
    assert len(budget) == 1, result.stderr


# -- waking workers ----------------------------------------------------------------------
@pytest.mark.parametrize("listen", ["session pool", "direct"])
def test_a_worker_is_woken_through_its_listen_url(listen, pooled_db, pooled_db_url,
                                                  pooled_direct_url, session_url, job_env,
                                                  tmp_path):
    listen_url = session_url if listen == "session pool" else pooled_direct_url
    log = tmp_path / "worker.log"
    with pooled_db.session() as session:
        first = [jobs.add.delay(session, "m", n, n) for n in range(6)]
    worker = spawn_worker(pooled_db_url, job_env, "--poll", "30", "--listen-url", listen_url,
                          channels="root:4", log=log)
    running = [(worker, log)]
    try:
        wait_on(running, lambda: all_done(pooled_db, first), timeout=20, message="the first jobs")
        wait_on(running, lambda: listening(pooled_direct_url), timeout=10, message="the LISTEN")
        with pooled_db.session() as session:
            late = jobs.add.delay(session, "m", 2, 3)
        # polls are 30 s apart: only the notification can bring it this soon
        wait_on(running, lambda: all_done(pooled_db, [late]), timeout=3,
                message="the job woken by its notification")
    finally:
        assert stop_process(worker) == 0, log.read_text()
    assert operations.load_job(pooled_db, late)["result"] == "5"  # stored as text
    assert listen_warnings(log) == []
    assert len(budget_lines(log)) == 1, log.read_text()
    assert "Traceback" not in log.read_text()


def test_without_a_listen_url_the_worker_says_listen_does_not_hold_and_polls(
        pooled_db, pooled_db_url, job_env, tmp_path):
    log = tmp_path / "worker.log"
    worker = spawn_worker(pooled_db_url, job_env, "--poll", "0.5", channels="root:4", log=log)
    running = [(worker, log)]
    try:
        wait_on(running, lambda: listen_warnings(log), timeout=15, message="the LISTEN warning")
        for round_ in range(3):  # several polls after the warning
            with pooled_db.session() as session:
                uuids = [jobs.add.delay(session, "m", round_, n) for n in range(4)]
            wait_on(running, lambda uuids=uuids: all_done(pooled_db, uuids), timeout=15,
                    message=f"round {round_} of jobs")
    finally:
        assert stop_process(worker) == 0, log.read_text()
    assert len(listen_warnings(log)) == 1, log.read_text()
    assert len(budget_lines(log)) == 1, log.read_text()
    assert "Traceback" not in log.read_text()


def test_with_no_listen_the_worker_polls_without_a_warning(pooled_db, pooled_db_url,
                                                          pooled_direct_url, job_env,
                                                          tmp_path):
    log = tmp_path / "worker.log"
    worker = spawn_worker(pooled_db_url, job_env, "--poll", "0.3", "--no-listen",
                          channels="root:4", log=log)
    running = [(worker, log)]
    try:
        wait_on(running, lambda: started(log), timeout=15, message="the worker's start")
        for round_ in range(2):
            with pooled_db.session() as session:
                uuids = [jobs.add.delay(session, "m", round_, n) for n in range(4)]
            wait_on(running, lambda uuids=uuids: all_done(pooled_db, uuids), timeout=15,
                    message=f"round {round_} of jobs")
        assert not listening(pooled_direct_url)
    finally:
        assert stop_process(worker) == 0, log.read_text()
    assert listen_warnings(log) == []
    assert len(budget_lines(log)) == 1, log.read_text()
    assert "Traceback" not in log.read_text()


# -- jobs that use their session -------------------------------------------------------------
def test_jobs_write_through_their_session_and_give_back_the_server_connections(
        pgbouncer, pooled_db, pooled_db_url, pooled_direct_url, job_env, tmp_path):
    with psycopg.connect(pooled_direct_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (value int)")
    runs = tmp_path / "executions"
    with pooled_db.session() as session:
        uuids = [pgbouncer_jobs.session_work.delay(session, "m", TABLE, n, str(runs),
                                                   seconds=0.4) for n in range(8)]
    log = tmp_path / "worker.log"
    worker = spawn_worker(pooled_db_url, job_env, "--poll", "0.2", "--no-listen", *MODULES,
                          channels="root:4", log=log)
    running = [(worker, log)]
    try:
        # four jobs at once, each holding its transaction: four busy server connections
        wait_on(running, lambda: len(busy(pgbouncer.server_connections(POOLED_DB))) >= 4,
                timeout=15, message="the jobs' transactions on server connections")
        wait_on(running, lambda: all_done(pooled_db, uuids), timeout=20, message="the jobs")
        # the jobs ended: no transaction left open on a server connection
        wait_on(running, lambda: not busy(pgbouncer.server_connections(POOLED_DB)),
                timeout=10, message="the server connections to go back to idle")
        wait_on(running, lambda: pgbouncer.pools(POOLED_DB)["sv_active"] == 0, timeout=10,
                message="no server connection linked to a client")
        servers = pgbouncer.server_connections(POOLED_DB)
        assert 4 <= len(servers) <= 20  # at least the jobs', at most the pool's default size
    finally:
        assert stop_process(worker) == 0, log.read_text()
    assert [operations.load_job(pooled_db, u)["result"] for u in uuids] == \
        [str(pgbouncer_jobs.REPEATS)] * 8  # results are stored as text
    with psycopg.connect(pooled_direct_url) as conn:
        assert sorted(r[0] for r in conn.execute(f"SELECT value FROM {TABLE}")) == \
            list(range(8))
    assert len(executions(runs)) == 8
    assert "Traceback" not in log.read_text()


# -- rescue, capacities, schedules ------------------------------------------------------------
def test_a_killed_worker_s_jobs_are_rescued_through_the_pool(pooled_db, pooled_db_url,
                                                            job_env, tmp_path):
    runs = tmp_path / "executions"
    with pooled_db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(runs), seconds=1.5) for _ in range(3)]
    victim_log, rescuer_log = tmp_path / "victim.log", tmp_path / "rescuer.log"
    victim = spawn_worker(pooled_db_url, job_env, *FAST_RESCUE, "--poll", "0.2",
                          channels="root:4", log=victim_log)
    running = [(victim, victim_log)]
    try:
        in_flight = wait_on(running, lambda: [r for r in job_rows(pooled_db, state="started")
                                              if r["worker_id"]],
                            timeout=15, message="the victim's jobs started")
        victim_id = in_flight[0]["worker_id"]
        os.killpg(victim.pid, signal.SIGKILL)  # mid-job: each sleeps 1.5 s
        victim.wait(10)
    finally:
        stop_process(victim)
    assert executions(runs) == []
    rescuer = spawn_worker(pooled_db_url, job_env, *FAST_RESCUE, "--poll", "0.2",
                           channels="root:4", log=rescuer_log)
    running = [(rescuer, rescuer_log)]
    try:
        wait_on(running, lambda: all_done(pooled_db, uuids), timeout=30,
                message="the rescued jobs run again")
    finally:
        assert stop_process(rescuer) == 0, rescuer_log.read_text()
    assert Counter(run[0] for run in executions(runs)) == Counter(uuids)
    for row in in_flight:
        assert operations.load_job(pooled_db, row["uuid"])["retry"] == 2
    workers = {row["id"]: row for row in operations.workers(pooled_db)}
    assert workers[victim_id]["state"] == "dead"
    assert "Traceback" not in rescuer_log.read_text()


def test_a_capacity_holds_across_two_workers_through_the_pool(pooled_db, pooled_db_url,
                                                             job_env, tmp_path):
    runs = tmp_path / "executions"
    with pooled_db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(runs), seconds=0.15) for _ in range(12)]
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [spawn_worker(pooled_db_url, job_env, "--poll", "0.1", "--no-listen",
                            channels="root:2", log=log) for log in logs]
    running = list(zip(workers, logs, strict=True))
    try:
        wait_on(running, lambda: all_done(pooled_db, uuids), timeout=30, message="all jobs")
    finally:
        assert [stop_process(worker) for worker in workers] == [0, 0]
    done = executions(runs)
    assert sorted(run[0] for run in done) == sorted(uuids)
    assert max_overlap([(run[3], run[4]) for run in done]) <= 2
    for log in logs:
        assert "Traceback" not in log.read_text()


def test_a_run_time_schedule_fires_through_the_pool(pooled_db_url, job_env, tmp_path,
                                                     invoke):
    runs = tmp_path / "executions"
    invoke("migrate", "--db", pooled_db_url)
    invoke("schedules", "add", "tick", "--db", pooled_db_url, "--cron", "* * * * * *",
           "--function", "tests.jobs.record", "--args", json.dumps(["m", str(runs)]),
           "--missed", "skip")
    log = tmp_path / "worker.log"
    worker = spawn_worker(pooled_db_url, job_env, "--poll", "0.2", "--no-listen",
                          channels="root:4", log=log)
    running = [(worker, log)]
    db = queuejob.open(pooled_db_url)
    try:
        wait_on(running, lambda: len(job_rows(db, state="done",
                                              func_name="tests.jobs.record")) >= 2,
                timeout=20, message="two slots of the schedule run")
    finally:
        assert stop_process(worker) == 0, log.read_text()
        db.close()
    [entry] = json.loads(invoke("schedules", "--db", pooled_db_url, "--json").stdout)
    assert entry["name"] == "tick" and entry["last_slot"] is not None
    assert len(executions(runs)) >= 2
    assert "Traceback" not in log.read_text()


def _prepared_after_many_delays(url: str) -> int:
    """Server-side prepared statements on a pooled connection of ``queuejob.open(url)``
    after it delayed more jobs than psycopg's prepare threshold."""
    with queuejob.open(url) as db:
        for n in range(8):
            with db.session() as session:
                jobs.add.delay(session, "m", n, n)
        with db.session() as session:
            return session.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]


def test_statements_are_prepared_on_direct_connections_only(pooled_db_url, pooled_direct_url):
    """Direct to the server, the statements run often are prepared (planned once); through
    the transaction pool never (they would be missing, or already there, on the next
    server connection), with nothing to configure."""
    assert _prepared_after_many_delays(pooled_direct_url) > 0
    assert _prepared_after_many_delays(pooled_db_url) == 0
