"""Transactions, duplicates and shutdown (issue 5, items 8-12)."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import logging
import multiprocessing
import os
import random
import signal
import sqlite3
import sys
import threading
import time
import warnings
from collections import Counter

import psycopg
import pytest

import queuejob
from queuejob.backends.sqlite import SQLiteConnector
from tests import jobs
from tests.helpers import ThreadWorker, executions, stop_process, wait_until
from tests.reliability import jobs as rjobs
from tests.reliability.common import (
    read_log,
    row,
    rows,
    scaled,
    seeded,
    spawn,
    sql,
    state_counts,
    wait_exit,
)

pytestmark = pytest.mark.slow


# -- 8. jobs exist if and only if their transaction committed --------------------------------
class Rollback(Exception):
    pass


def app_connection(db: queuejob.Database, db_url: str):
    """The application's own driver connection (psycopg, or sqlite3 in autocommit mode
    with its transactions opened by BEGIN IMMEDIATE)."""
    if db.dialect == "postgresql":
        return psycopg.connect(db_url)
    return sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None, timeout=30,
                           check_same_thread=False)


def test_jobs_exist_if_and_only_if_their_session_committed(db_url, job_env, tmp_path):
    sessions, clients = 1000, 4
    # SQLite does not queue writers fairly: under this contention a session may wait
    # past the default busy timeout (5 s); the application sets a longer one
    db = queuejob.open(f"{db_url}?busy_timeout=60" if db_url.startswith("sqlite") else db_url)
    try:
        check_sessions(db, db_url, job_env, tmp_path, sessions, clients)
    finally:
        db.close()


def check_sessions(db, db_url, job_env, tmp_path, sessions, clients):
    rng = seeded("sessions")
    seeds = [rng.randrange(2**32) for _ in range(clients)]
    run_log = tmp_path / "runs"
    sql(db, "CREATE TABLE app_rows (session_id integer, job_uuid text, position integer)")
    placeholder = "?" if db.dialect == "sqlite" else "%s"
    insert = f"INSERT INTO app_rows VALUES ({placeholder}, {placeholder}, {placeholder})"
    lock = threading.Lock()
    committed: dict[int, list[str]] = {}
    rolled_back: dict[int, list[str]] = {}
    commit_called: dict[int, float] = {}
    errors: list[BaseException] = []

    def enqueue(session, session_id, count, local):
        uuids = []
        for position in range(count):
            job_uuid = rjobs.check_app_row.delay(session, "m", "app_rows", session_id,
                                                 str(run_log))
            session.execute(insert, (session_id, job_uuid, position))
            uuids.append(job_uuid)
        # the transaction stays open a while, as the worker polls every 10 ms
        time.sleep(local.uniform(0, 0.01))
        return uuids

    def client(number):
        local = random.Random(seeds[number])
        own = number % 2 == 1  # half the clients use the application's own connection
        conn = app_connection(db, db_url) if own else None
        try:
            for session_id in range(number, sessions, clients):
                count, commit = local.randint(1, 3), local.random() < 0.5
                if own:
                    if db.dialect == "sqlite":
                        conn.execute("BEGIN IMMEDIATE")
                    with db.session(connection=conn) as session:
                        uuids = enqueue(session, session_id, count, local)
                    with lock:
                        commit_called[session_id] = time.time()
                    if commit:
                        conn.commit()
                    else:
                        conn.rollback()
                else:
                    try:
                        with db.session() as session:
                            uuids = enqueue(session, session_id, count, local)
                            with lock:
                                commit_called[session_id] = time.time()
                            if not commit:
                                raise Rollback
                    except Rollback:
                        pass
                with lock:
                    (committed if commit else rolled_back)[session_id] = uuids
        except BaseException as exc:
            errors.append(exc)
        finally:
            if conn is not None:
                conn.close()

    worker = spawn(db_url, job_env, "--poll", "0.01", log=tmp_path / "worker.log")
    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
        assert errors == []
        assert len(committed) + len(rolled_back) == sessions
        expected = {u for uuids in committed.values() for u in uuids}
        wait_until(lambda: len(read_log(run_log).splitlines()) >= len(expected), timeout=120,
                   message="every committed job ran")
        wait_until(lambda: state_counts(db) == {"done": len(expected)}, timeout=30,
                   message="every committed job done")
    finally:
        assert stop_process(worker) == 0
    assert committed and rolled_back
    dropped = {u for uuids in rolled_back.values() for u in uuids}
    assert set(rows(db)) == expected
    assert not dropped & set(rows(db))
    # application rows and jobs agree one to one
    app_rows = sql(db, "SELECT session_id, job_uuid, position FROM app_rows")
    assert sorted((sid, u) for sid, u, _ in app_rows) == sorted(
        (sid, u) for sid, uuids in committed.items() for u in uuids)
    # each job ran once, after its session's commit was asked for, and saw its row
    runs = [line.split() for line in read_log(run_log).splitlines()]
    assert Counter(run[0] for run in runs) == Counter(expected)
    by_uuid = {u: sid for sid, uuids in committed.items() for u in uuids}
    for job_uuid, session_id, seen, start in runs:
        assert by_uuid[job_uuid] == int(session_id)
        assert seen == "1", f"job {job_uuid} ran without its application row"
        assert float(start) >= commit_called[int(session_id)], \
            f"job {job_uuid} started before its session committed"


# -- 9. SQLite writer contention ---------------------------------------------------------------
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "SAVEPOINT")


def unsafe_writes(statements: list[tuple[int, str]]) -> list[str]:
    """Writes outside a transaction opened by BEGIN IMMEDIATE, and transactions opened
    any other way, per connection."""
    in_transaction: dict[int, bool] = {}
    problems = []
    for conn, text in statements:
        words = text.split()
        first = words[0].upper() if words else ""
        if first == "BEGIN":
            if " ".join(words[:2]).upper() != "BEGIN IMMEDIATE":
                problems.append(f"connection {conn}: {text[:80]!r}")
            in_transaction[conn] = True
        elif first in ("COMMIT", "END") or (first == "ROLLBACK" and "TO" not in
                                             [word.upper() for word in words[1:3]]):
            in_transaction[conn] = False
        elif first in WRITES and not in_transaction.get(conn):
            problems.append(f"connection {conn}: write outside BEGIN IMMEDIATE: {text[:80]!r}")
    return problems


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_writer_contention_breaks_nothing(db_url, tmp_path, monkeypatch, caplog):
    """The application holds the write lock for 2 s, then for twice the busy timeout,
    while 4 workers run; every write transaction is BEGIN IMMEDIATE."""
    busy_timeout = 1.25
    statements: list[tuple[int, str]] = []
    trace_lock = threading.Lock()
    numbers = itertools.count()
    real_connect = SQLiteConnector.connect

    def traced_connect(self, worker=False):
        conn = real_connect(self, worker)
        number = next(numbers)

        def trace(text, number=number):
            if not text.startswith("PRAGMA data_version"):
                with trace_lock:
                    statements.append((number, text.strip()))
        conn.set_trace_callback(trace)
        return conn
    monkeypatch.setattr(SQLiteConnector, "connect", traced_connect)
    caplog.set_level(logging.WARNING, logger="queuejob")
    log = tmp_path / "executions"
    db = queuejob.open(f"{db_url}?busy_timeout={busy_timeout}")
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None,
                             timeout=30)
    holder.execute("CREATE TABLE app_rows (value integer)")
    options = {"heartbeat_interval": 0.25, "dead_after": 1.5, "rescue_interval": 0.25,
               "poll_interval": 0.05, "cleanup_interval": 0.5}
    try:
        with db.session() as session:
            first = [jobs.record.delay(session, "m", str(log), 0.05) for _ in range(40)]
        workers = [ThreadWorker(db, concurrency=2, **options) for _ in range(4)]
        for worker in workers:
            worker.__enter__()
        try:
            wait_until(lambda: len(executions(log)) >= 8, message="jobs running")
            for hold, commit in ((2.0, False), (2 * busy_timeout, True)):
                holder.execute("BEGIN IMMEDIATE")
                holder.execute("INSERT INTO app_rows VALUES (1)")
                time.sleep(hold)  # the application holds the write lock: the stimulus
                holder.execute("COMMIT" if commit else "ROLLBACK")
                with db.session() as session:
                    jobs.record.delay_many(session, [("m", str(log), 0.05)] * 20)
                    later = jobs.record.delay(session, "m", str(log), eta=3600)
                with db.session() as session:  # a manual action: another write transaction
                    queuejob.cancel(session, later)
            wait_until(lambda: state_counts(db).get("done", 0) == 80, timeout=60,
                       message="every job done")
            assert all(worker.thread.is_alive() for worker in workers)
        finally:
            for worker in workers:
                worker.stop()  # raises what escaped a worker, if anything did
    finally:
        holder.close()
        db.close()
    check = queuejob.open(db_url)
    try:
        final = rows(check)
    finally:
        check.close()
    assert unsafe_writes(statements) == []
    begins = sum(1 for _, text in statements if text.upper().startswith("BEGIN IMMEDIATE"))
    # enough write transactions for the check to mean something (an idle worker's poll
    # carries its heartbeat, and services without work write nothing: about 100 here)
    assert begins > 60
    assert Counter(job["state"] for job in final.values()) == {"done": 80, "cancelled": 2}
    runs = Counter(run[0] for run in executions(log))
    twice = sorted(job_uuid for job_uuid, count in runs.items() if count > 1)
    assert twice == [], (f"{len(twice)} finished job(s) ran again after the lock (their "
                         "outcome was waiting to be written)")
    assert len(runs) == 80
    assert all(job["retry"] == 1 and job["worker_deaths"] == 0
               for job in final.values() if job["state"] == "done")
    assert all(first_uuid in runs for first_uuid in first)
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []
    assert any("locked" in record.getMessage() for record in caplog.records), \
        "the workers never met the lock: the test tested nothing"


def test_the_statement_check_finds_unsafe_writes():
    assert unsafe_writes([(1, "BEGIN"), (1, "INSERT INTO t VALUES (1)"), (1, "COMMIT")]) != []
    assert unsafe_writes([(1, "UPDATE t SET a = 1")]) != []
    assert unsafe_writes([(1, "BEGIN IMMEDIATE"), (2, "DELETE FROM t")]) != []
    assert unsafe_writes([(1, "BEGIN IMMEDIATE"), (1, "SAVEPOINT x"), (1, "ROLLBACK TO x"),
                          (1, "INSERT INTO t VALUES (1)"), (1, "COMMIT")]) == []


# -- 10. identity keys under a race ------------------------------------------------------------
def test_identity_keys_raced_by_16_processes(db, db_url, tmp_path):
    processes, rounds = 16, scaled(100, 200)
    url = f"{db_url}?synchronous=normal" if db.dialect == "sqlite" else db_url
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    from tests.reliability.racer import race
    racers = [context.Process(target=race, args=(url, barrier, rounds,
                                                 str(tmp_path / f"racer{n}"), n))
              for n in range(processes)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(240)
    assert [racer.exitcode for racer in racers] == [0] * processes
    got: dict[int, set[str]] = {}
    for number in range(processes):
        lines = (tmp_path / f"racer{number}").read_text().splitlines()
        assert len(lines) == rounds
        for line in lines:
            round_number, _, job_uuid = line.split()
            got.setdefault(int(round_number), set()).add(job_uuid)
    stored = rows(db)
    by_key = Counter(job["identity_key"] for job in stored.values())
    assert len(stored) == rounds and set(by_key.values()) == {1}
    for round_number, uuids in got.items():
        # every caller of the round got the uuid of the one job stored for the key
        assert len(uuids) == 1, (round_number, uuids)
        [job_uuid] = uuids
        assert stored[job_uuid]["identity_key"] == f"key-{round_number}"


# -- 11. graceful shutdown ---------------------------------------------------------------------
def no_fsync(db_url: str) -> str:
    """SQLite without an fsync per commit: the exit times measured below are the
    worker's, not those of a disk that other processes of the machine keep busy."""
    return f"{db_url}?synchronous=normal" if db_url.startswith("sqlite") else db_url


def test_sigterm_finishes_short_jobs_and_gives_long_ones_back(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    grace = 2.0
    with db.session() as session:
        short = [jobs.record.delay(session, "m", str(log), 0.5, priority=1) for _ in range(2)]
        long = [jobs.record.delay(session, "m", str(log), 30, priority=1) for _ in range(2)]
        waiting = [jobs.record.delay(session, "m", str(log), 0.0) for _ in range(4)]
    worker = spawn(no_fsync(db_url), job_env, "--grace", str(grace), "--poll", "0.05",
                   log=tmp_path / "worker.log")
    try:
        wait_until(lambda: state_counts(db).get("started") == 4, message="4 jobs running")
        signalled = time.time()
        sent = time.monotonic()
        os.killpg(worker.pid, signal.SIGTERM)
        with db.session() as session:  # enqueued after the signal: never claimed
            late = jobs.record.delay(session, "m", str(log), 0.0, priority=0)
        assert wait_exit(worker, grace + 5) == 0
        took = time.monotonic() - sent
    finally:
        stop_process(worker)
    assert took <= grace + 1.0, f"exit {took:.2f}s after SIGTERM"
    final = rows(db)
    assert all((final[u]["state"], final[u]["retry"]) == ("done", 1) for u in short)
    assert all((final[u]["state"], final[u]["retry"], final[u]["attempt"]) == ("pending", 0, 1)
               for u in long)
    assert all((final[u]["state"], final[u]["attempt"]) == ("pending", 0)
               for u in [*waiting, late])
    assert "started" not in state_counts(db)
    runs = executions(log)
    assert sorted(run[0] for run in runs) == sorted(short)
    # claimed before the signal (by the database's clock: a job thread of a loaded
    # machine may begin its function a moment after its claim committed)
    claimed = [final[run[0]]["date_started"] for run in runs]
    assert all((at.timestamp() if isinstance(at, dt.datetime) else float(at)) < signalled
               for at in claimed), "a job was claimed after the signal"


def test_a_second_sigterm_stops_at_once_losing_nothing(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        long = [rjobs.sleep_first_attempt.delay(session, "m", str(log), 60) for _ in range(4)]
    worker = spawn(no_fsync(db_url), job_env, "--grace", "60", "--poll", "0.05",
                   log=tmp_path / "worker.log")
    try:
        wait_until(lambda: state_counts(db).get("started") == 4, message="4 jobs running")
        os.killpg(worker.pid, signal.SIGTERM)
        wait_until(lambda: "SIGTERM: finishing running jobs" in read_log(tmp_path / "worker.log"),
                   message="the first SIGTERM handled")
        sent = time.monotonic()
        os.killpg(worker.pid, signal.SIGTERM)
        assert wait_exit(worker, 10) == 0
        took = time.monotonic() - sent
    finally:
        stop_process(worker)
    assert took < 1.5, f"exit {took:.2f}s after the second SIGTERM"
    final = rows(db)
    assert all((final[u]["state"], final[u]["retry"]) == ("pending", 0) for u in long)
    assert executions(log) == []
    # nothing lost: each job runs (once) on the next worker
    worker = spawn(db_url, job_env, "--poll", "0.05", "--burst")
    try:
        assert wait_exit(worker, 60) == 0
    finally:
        stop_process(worker)
    assert Counter(run[0] for run in executions(log)) == Counter(long)
    assert all(row(db, u)["state"] == "done" for u in long)


# -- 12. in-process start/stop cycles ----------------------------------------------------------
def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def describe_fds(numbers: set[str]) -> list[str]:
    out = []
    for number in sorted(numbers, key=int):
        try:
            out.append(f"{number} -> {os.readlink(f'/proc/self/fd/{number}')}")
        except OSError:
            out.append(f"{number} (closed meanwhile)")
    return out


def test_start_stop_cycles_leak_no_thread_fd_or_warning(db):
    threads_count, cycles = 10, 50
    with db.session() as session:
        for n in range(100):
            jobs.add.delay(session, "m", n, n)
    db.read(lambda conn: None)  # the session pool's connection exists before counting
    gc.collect()
    threads_before = set(threading.enumerate())
    fds_before = open_fds()
    unraisable: list[str] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda info: unraisable.append(repr(info.exc_value))
    errors: list[BaseException] = []

    def cycle(number):
        try:
            for _ in range(cycles):
                worker = queuejob.Worker(db, channels="root:2", modules=["tests.jobs"],
                                         heartbeat_interval=0.02, dead_after=5.0,
                                         poll_interval=0.05)
                failure: list[BaseException] = []

                def run(worker=worker, failure=failure):
                    try:
                        worker.run()
                    except BaseException as exc:
                        failure.append(exc)
                runner = threading.Thread(target=run, name=f"cycler{number}")
                runner.start()
                wait_until(lambda worker=worker, runner=runner: worker.ready.is_set()
                           or not runner.is_alive(), message="worker started")
                worker.stop()
                runner.join(30)
                assert not runner.is_alive(), "a worker did not stop"
                if failure:
                    raise failure[0]
        except BaseException as exc:
            errors.append(exc)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cyclers = [threading.Thread(target=cycle, args=(n,)) for n in range(threads_count)]
            for cycler in cyclers:
                cycler.start()
            for cycler in cyclers:
                cycler.join(240)
            assert errors == []
            assert not any(cycler.is_alive() for cycler in cyclers)
            wait_until(lambda: set(threading.enumerate()) <= threads_before, timeout=10,
                       message="no thread left behind")
            gc.collect()
            # SQLite (unix VFS) defers closing the file of a closed connection while
            # other connections of the process hold POSIX locks on it, and closes such
            # files when the process's locks on it are gone: closing the session pool's
            # connection, the last one, lets it close them
            db.close()
            try:
                wait_until(lambda: not open_fds() - fds_before
                           and len(open_fds()) <= len(fds_before), timeout=10,
                           message="no file descriptor left open")
            except AssertionError:
                raise AssertionError(f"file descriptors left open: "
                                     f"{describe_fds(open_fds() - fds_before)}") from None
        assert [str(item.message) for item in caught] == []
        assert unraisable == []
    finally:
        sys.unraisablehook = previous_hook
    workers = db.read(lambda conn: db.reads.workers(conn, limit=10_000))
    assert len(workers) == threads_count * cycles
    assert {worker["state"] for worker in workers} == {"stopped"}
    assert "started" not in state_counts(db)
