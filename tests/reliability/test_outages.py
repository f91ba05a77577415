"""Outages (issue 5, items 13-16): PostgreSQL restarts and lost notifications, SQLite
under kill -9, the WAL under load, migrations raced by many processes."""

from __future__ import annotations

import difflib
import json
import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

import queuejob
from tests import jobs
from tests.helpers import ROOT, ThreadWorker, executions, stop_process, wait_until
from tests.reliability.common import (
    VERY_FAST,
    read_log,
    rows,
    scaled,
    seeded,
    spawn,
    state_counts,
    tolerant,
)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent


def transient_error(db):
    if db.dialect == "sqlite":
        return sqlite3.OperationalError("database is locked")
    return psycopg.OperationalError("server closed the connection unexpectedly")


# -- 13. the database goes away --------------------------------------------------------------
def test_outcomes_waiting_while_the_database_is_away_are_written_not_rerun(db, tmp_path,
                                                                           monkeypatch):
    """Jobs that finished while the worker could not write their outcomes (a restart, a
    lock) are written when the database is back: they are not in flight, and must not
    run again."""
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log), 0.3) for _ in range(4)]
    away = {"cycles": 0}

    def failing(write):
        """``write`` (either way the loop writes outcomes) failing while away."""
        def wrapper(conn, outcomes, *args):
            if away["cycles"] and any(outcome.state == "done" for outcome in outcomes):
                away["cycles"] -= 1
                raise transient_error(db)
            return write(conn, outcomes, *args)
        return wrapper
    monkeypatch.setattr(db.store, "record", failing(db.store.record))
    monkeypatch.setattr(db.store, "finish_and_claim", failing(db.store.finish_and_claim))
    with ThreadWorker(db, channels="root:4", poll_interval=0.05):
        wait_until(lambda: state_counts(db).get("started") == 4, message="4 jobs running")
        away["cycles"] = 1  # the write of their outcomes fails once
        wait_until(lambda: state_counts(db) == {"done": 4}, timeout=30, message="all done")
    assert away["cycles"] == 0, "the outage never happened"
    runs = Counter(run[0] for run in executions(log))
    assert runs == Counter(uuids), f"re-run after the outage: {runs}"
    assert {job["retry"] for job in rows(db).values()} == {1}


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_workers_survive_five_postgresql_restarts(db, db_url, job_env, tmp_path, pg_server):
    rng = seeded("postgresql restarts")
    log = tmp_path / "executions"
    total, restarts, slots = 5000, 5, 4 * 4
    with db.session() as session:
        jobs.record.delay_many(session, [("m", str(log), 0.004)] * total)
    logs = [tmp_path / f"worker{n}.log" for n in range(4)]
    workers = [spawn(db_url, job_env, "--poll", "0.2", log=path) for path in logs]
    # a random point in each fifth of the run
    points = [int(total * (n + rng.uniform(0.1, 0.7)) / (restarts + 1)) for n in range(restarts)]
    try:
        for point in points:
            wait_until(lambda point=point: len(executions(log)) >= point, timeout=120,
                       message=f"{point} jobs run")
            pg_server.pg_ctl("restart", "-m", "fast")
            assert len(executions(log)) < total, "the restart came after the last job"
            assert all(worker.poll() is None for worker in workers), "a worker exited"
        wait_until(lambda: tolerant(lambda: state_counts(db) == {"done": total}), timeout=180,
                   message="every job done after the restarts")
        assert all(worker.poll() is None for worker in workers), "a worker exited"
    finally:
        codes = [stop_process(worker) for worker in workers]
    assert codes == [0] * 4
    runs = Counter(run[0] for run in executions(log))
    assert len(runs) == total
    reruns = sum(runs.values()) - total
    print(f"{restarts} restarts, {reruns} re-run(s)")
    assert reruns <= restarts * slots  # at most the jobs in flight at each restart
    text = "".join(read_log(path) for path in logs)
    delays = [float(value) for value in re.findall(r"retrying in (\d+(?:\.\d+)?)s", text)]
    assert delays, "the workers never met the restarts"
    assert max(delays) <= 5.0  # capped back-off
    assert "Traceback" not in text


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_no_job_is_lost_when_postgresql_crashes(db, db_url, job_env, tmp_path, pg_server):
    """A server crash (immediate stop: no checkpoint, WAL replayed at start-up) may undo
    the workers' last claims and outcomes, which commit without waiting for the disk:
    every job still ends done, having run at least once."""
    rng = seeded("postgresql crashes")
    log = tmp_path / "executions"
    total, crashes = 3000, 3
    with db.session() as session:
        uuids = jobs.record.delay_many(session, [("m", str(log), 0.002)] * total)
    logs = [tmp_path / f"worker{n}.log" for n in range(2)]
    workers = [spawn(db_url, job_env, "--poll", "0.2", log=path) for path in logs]
    points = [int(total * (n + rng.uniform(0.1, 0.7)) / (crashes + 1)) for n in range(crashes)]
    try:
        for point in points:
            wait_until(lambda point=point: len(executions(log)) >= point, timeout=120,
                       message=f"{point} jobs run")
            pg_server.pg_ctl("restart", "-m", "immediate")
            assert len(executions(log)) < total, "the crash came after the last job"
        wait_until(lambda: tolerant(lambda: state_counts(db) == {"done": total}), timeout=180,
                   message="every job done after the crashes")
        assert all(worker.poll() is None for worker in workers), "a worker exited"
    finally:
        codes = [stop_process(worker) for worker in workers]
    assert codes == [0] * 2
    runs = Counter(run[0] for run in executions(log))
    assert set(runs) == set(uuids), "a job never ran"
    print(f"{crashes} crashes, {sum(runs.values()) - total} re-run(s)")
    assert "Traceback" not in "".join(read_log(path) for path in logs)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_killed_listen_connection_is_replaced_and_polling_covers_the_gap(
        db, db_url, job_env, tmp_path, pg_server):
    log = tmp_path / "executions"
    poll, prompt = 3.0, 1.0
    worker = spawn(db_url, job_env, "--poll", str(poll), log=tmp_path / "worker.log")
    admin = psycopg.connect(db_url, autocommit=True)

    def listeners() -> list[int]:
        return [row[0] for row in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query = 'LISTEN queuejob' AND pid <> pg_backend_pid()").fetchall()]

    def latency() -> float:
        before = len(executions(log))
        asked = time.time()
        with db.session() as session:
            jobs.record.delay(session, "m", str(log))
        wait_until(lambda: len(executions(log)) > before, timeout=poll + 10,
                   message="the job ran")
        return executions(log)[-1][3] - asked

    try:
        [listener] = wait_until(listeners, message="the worker listens")
        latency()  # warm up
        assert latency() < prompt  # woken by the notification, well before the poll
        admin.execute("SELECT pg_terminate_backend(%s)", (listener,))
        assert latency() < poll + prompt  # still started: within the poll interval
        [replacement] = wait_until(listeners, timeout=10, message="listening again")
        assert replacement != listener
        assert "listening for new jobs again" in read_log(tmp_path / "worker.log")
        assert max(latency() for _ in range(3)) < prompt  # notifications work again
        assert worker.poll() is None
    finally:
        admin.close()
        assert stop_process(worker) == 0
    assert "job watcher lost" in read_log(tmp_path / "worker.log")


# -- 15. SQLite under crashes ----------------------------------------------------------------
CRASH_TRIALS = scaled(50, 100)


def sqlite_rows(path: str, query: str) -> list[tuple]:
    conn = sqlite3.connect(path, timeout=30)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def integrity(path: str) -> list[tuple]:
    return sqlite_rows(path, "PRAGMA integrity_check")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_survives_kill_9_during_enqueue_and_claim(db, db_url, job_env, tmp_path):
    rng = seeded("sqlite crashes")
    path = db_url.removeprefix("sqlite:///")
    uuid_log = tmp_path / "committed"
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["queuejob", "tests.jobs", "tests.reliability.crashload"])
    from tests.reliability.crashload import load
    for trial in range(CRASH_TRIALS):
        # process crashes are survived with the default synchronous=NORMAL as with FULL
        url = db_url + ("?synchronous=full" if trial % 2 else "")
        before = len(read_log(uuid_log).splitlines())
        child = context.Process(target=load, args=(url, str(uuid_log), rng.randrange(2**32)))
        child.start()
        try:
            wait_until(lambda before=before: len(read_log(uuid_log).splitlines()) > before,
                       timeout=30, message="the child enqueues")
            time.sleep(rng.uniform(0.0, 0.1))  # the random moment of the kill
        finally:
            child.kill()
            child.join(30)
        assert child.exitcode == -9
        assert integrity(path) == [("ok",)], f"trial {trial}"
        committed = set(read_log(uuid_log).split())
        stored = {row[0] for row in sqlite_rows(path, "SELECT uuid FROM queue_job")}
        missing = committed - stored
        assert not missing, f"trial {trial}: {len(missing)} committed job(s) missing"

    # nothing is lost either: the dead workers' jobs are rescued and every job runs
    workers = [spawn(db_url, job_env, *VERY_FAST, "--concurrency", "8") for _ in range(2)]
    try:
        wait_until(lambda: set(state_counts(db)) == {"done"}, timeout=120,
                   message="every job done")
    finally:
        assert [stop_process(worker) for worker in workers] == [0, 0]
    print(f"{CRASH_TRIALS} kills, {len(committed)} committed jobs, all done")
    assert integrity(path) == [("ok",)]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_wal_stays_bounded_with_a_concurrent_reader(db, db_url, job_env, tmp_path):
    total = scaled(20_000, 50_000)
    path = db_url.removeprefix("sqlite:///")
    with db.session() as session:
        jobs.noop.delay_many(session, [("m",)] * total)
    sizes: list[int] = []
    reads = Counter()
    done = threading.Event()

    def reader() -> None:
        conn = sqlite3.connect(path, timeout=30)
        try:
            while not done.is_set():
                conn.execute("SELECT count(*) FROM queue_job WHERE state = 'done'").fetchone()
                reads["n"] += 1
                sizes.append(os.path.getsize(path + "-wal"))
                time.sleep(0.005)
        finally:
            conn.close()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    workers = [spawn(db_url, job_env, "--burst", "--concurrency", "8") for _ in range(2)]
    try:
        for worker in workers:
            assert worker.wait(300) == 0
    finally:
        done.set()
        thread.join(10)
        for worker in workers:
            stop_process(worker)
    assert state_counts(db) == {"done": total}
    assert reads["n"] > 100
    largest = max(sizes)
    print(f"WAL: largest {largest / 1e6:.1f} MB over {reads['n']} reads of {total} jobs")
    # SQLite checkpoints every 1000 pages (about 4 MB): the WAL is reused, not grown. A
    # checkpoint cannot pass the reader's snapshot, so on a loaded machine the WAL
    # reaches a few times that; without checkpoints it would hold every write of the
    # run (over 100 MB for 20,000 jobs)
    assert largest < 24e6


# -- 16. migrations ------------------------------------------------------------------------------
MIGRATE = """
import json, sys, time
import queuejob
url, at = sys.argv[1], float(sys.argv[2])
while time.time() < at:
    time.sleep(0.001)
db = queuejob.Database(url, migrate=False)
print(json.dumps(db.migrate()))
db.close()
"""


def fresh(db_url: str, backend: str, number: int) -> str:
    if backend == "sqlite":
        return db_url.replace("jobs.db", f"race{number}.db")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return db_url


def test_eight_processes_opening_an_empty_database_apply_each_migration_once(
        backend, db_url, job_env):
    versions = None
    for number in range(scaled(1, 3)):
        url = fresh(db_url, backend, number)
        at = time.time() + 1.0
        processes = [subprocess.Popen([sys.executable, "-c", MIGRATE, url, str(at)],
                                      env=job_env, cwd=ROOT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(8)]
        outputs = [process.communicate(timeout=120) for process in processes]
        for process, (_, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err
        applied = [version for out, _ in outputs for version in json.loads(out)]
        db = queuejob.open(url)
        try:
            recorded = [row[0] for row in db.read(lambda conn, db=db: db.connector.execute_sql(
                conn, "SELECT version FROM queuejob_migration ORDER BY version").fetchall())]
            versions = [migration.version for migration in db.connector.migrations]
            assert db.migrate() == []
        finally:
            db.close()
        assert sorted(applied) == versions  # each applied by exactly one process
        assert recorded == versions
    assert versions


SNAPSHOT_VARIABLE = "QUEUEJOB_WRITE_SCHEMA_SNAPSHOT"


def strip_sql(text: str) -> str:
    """SQL without comments, on one line."""
    return " ".join(re.sub(r"--[^\n]*", "", text).split())


def schema_of(db: queuejob.Database) -> str:
    """The schema as the engine reports it, one line per object, sorted."""
    def read(query: str) -> list[tuple]:
        return db.read(lambda conn: [tuple(row) for row in db.connector.execute_sql(
            conn, query).fetchall()])
    lines = []
    if db.dialect == "sqlite":
        for kind, name, sql_text in read("SELECT type, name, sql FROM sqlite_master WHERE "
                                         "sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                                         "ORDER BY type, name"):
            lines.append(f"{kind} {name}: {strip_sql(sql_text)}")
    else:
        for table, column, kind, nullable, default, identity in read(
                "SELECT table_name, column_name, data_type, is_nullable, column_default, "
                "is_identity FROM information_schema.columns WHERE table_schema = 'public' "
                "ORDER BY table_name, ordinal_position"):
            lines.append(f"column {table}.{column}: {kind} nullable={nullable} "
                         f"default={default} identity={identity}")
        for table, name, definition in read(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
                "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
                "ORDER BY 1, 2"):
            lines.append(f"constraint {table}.{name}: {definition}")
        for name, definition in read("SELECT indexname, indexdef FROM pg_indexes "
                                     "WHERE schemaname = 'public' ORDER BY indexname"):
            lines.append(f"index {name}: {definition}")
    for version, name in read("SELECT version, name FROM queuejob_migration ORDER BY version"):
        lines.append(f"migration {version}: {name}")
    return "\n".join(lines) + "\n"


def test_replayed_migrations_give_the_committed_schema_snapshot(db):
    snapshot = HERE / f"schema_{db.dialect}.sql"
    actual = schema_of(db)
    if os.environ.get(SNAPSHOT_VARIABLE):
        snapshot.write_text(actual)
    expected = snapshot.read_text() if snapshot.exists() else ""
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            str(snapshot.name), "migrations replayed"))
        pytest.fail(f"the schema built by the migrations differs from {snapshot}:\n{diff}\n"
                    f"If the schema changed on purpose (a new migration), regenerate the "
                    f"snapshots and commit them:\n  {SNAPSHOT_VARIABLE}=1 .venv/bin/python -m "
                    f"pytest tests/reliability/test_outages.py -k schema_snapshot "
                    f"-p no:cacheprovider", pytrace=False)
    # migrating again changes nothing
    assert db.migrate() == []
    assert schema_of(db) == expected


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_asyncio_sessions_go_on_after_a_postgresql_restart(db, pg_server):
    """The asyncio pool's connections die with a restart: the next sessions still store
    their jobs (a connection used a moment ago is replaced when its statement finds it
    closed; one that idled is checked before a session gets it)."""
    import asyncio

    async def enqueue(count: int) -> list[str]:
        uuids = []
        for number in range(count):
            async with db.session_async() as session:
                uuids.append(await jobs.noop.delay_async(session, "m", number))
        return uuids

    async def body() -> tuple[list[str], list[str]]:
        before = await enqueue(5)  # the pool holds connections now
        pg_server.pg_ctl("restart", "-m", "fast")
        after = await enqueue(5)
        await db.close_async()
        return before, after
    before, after = asyncio.run(body())
    assert set(rows(db)) == set(before + after)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_loop_that_ends_on_a_lost_connection_ends_at_once(db, pg_server):
    """An application whose transaction meets a restarted server gets the error, and its
    event loop ends at once although it never closed the asyncio pool: the pool's
    workers, reconnecting, do not hold the end of ``asyncio.run`` forever."""
    import asyncio
    import threading

    import psycopg

    async def body() -> None:
        for number in range(3):
            async with db.session_async() as session:
                await jobs.noop.delay_async(session, "m", number)
        pg_server.pg_ctl("restart", "-m", "fast")
        async with db.session_async() as session:
            await session.execute("SELECT 1")  # on a connection the restart closed

    raised: list[BaseException] = []

    def application() -> None:
        try:
            asyncio.run(body())
        except BaseException as exc:  # what the application sees
            raised.append(exc)
    runner = threading.Thread(target=application, daemon=True)
    runner.start()
    runner.join(30)
    assert not runner.is_alive(), "asyncio.run did not end"
    assert len(raised) == 1 and isinstance(raised[0], psycopg.OperationalError)
