"""``queuejob worker --processes N``: N worker processes under one supervisor, one
listener for the host (real processes, both backends)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

import queuejob
from queuejob.worker.supervisor import MARGIN, child_arguments, exit_status
from tests import jobs
from tests.conftest import POOLED_DB
from tests.helpers import ROOT, executions, spawn_worker, states, stop_process, wait_until

pytestmark = pytest.mark.slow


def children_of(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold blanks and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def alive_workers(db: queuejob.Database) -> list[dict]:
    return [row for row in queuejob.operations.workers(db) if row["state"] == "alive"]


def listeners(db_url: str) -> int:
    """Connections of the test database waiting in LISTEN."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query ILIKE 'LISTEN%%' AND state = 'idle'").fetchone()[0]


class Supervised:
    """A supervisor process (``queuejob worker --processes N``) and what it started; on
    exit, stopped, and any child it left killed."""

    def __init__(self, db_url: str, env: dict[str, str], log: Path, processes: int,
                 *extra: str) -> None:
        self.log = log
        self.processes = processes
        self.process = spawn_worker(db_url, env, "--processes", str(processes), *extra,
                                    log=log)
        self.seen: set[int] = set()

    def children(self) -> set[int]:
        found = children_of(self.process.pid)
        self.seen |= found
        return found

    def wait_children(self, count: int, timeout: float = 30.0) -> set[int]:
        return wait_until(lambda: len(self.children()) == count and self.children(),
                          timeout=timeout, message=f"{count} worker processes")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Supervised:
        return self

    def __exit__(self, *exc: object) -> None:
        self.children()
        stop_process(self.process, timeout=60)
        for pid in self.seen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def delay(db: queuejob.Database, func, *args, **kwargs) -> str:
    with db.session() as session:
        return func.delay(session, "m", *args, **kwargs)


def test_three_processes_share_one_listener_and_run_the_jobs(db, db_url, backend, job_env,
                                                             tmp_path):
    log = tmp_path / "executions"
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 3,
                    "--poll", "0.5") as supervisor:
        pids = supervisor.wait_children(3)
        wait_until(lambda: {row["pid"] for row in alive_workers(db)} == pids,
                   message="the 3 worker processes registered")
        for _ in range(30):
            delay(db, jobs.record, str(log), seconds=0.05)
        wait_until(lambda: states(db) == {"done": 30}, timeout=60, message="30 jobs done")
        assert {run[2] for run in executions(log)} <= pids
        if backend == "postgresql":
            # one LISTEN connection for the host, however many workers
            wait_until(lambda: listeners(db_url) == 1, message="one LISTEN connection")
            assert len(alive_workers(db)) == 3
            assert listeners(db_url) == 1
        assert supervisor.children() == pids
        output = supervisor.output()
    started = f"supervisor {supervisor.process.pid}: 3 worker processes, " + (
        "one listener for the host" if backend == "postgresql" else "no listener (polling)")
    assert started in output, output
    assert supervisor.process.returncode == 0


def test_a_killed_worker_process_is_replaced(db, db_url, job_env, tmp_path):
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 2,
                    "--poll", "0.5") as supervisor:
        before = supervisor.wait_children(2)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        after = wait_until(lambda: (found := supervisor.children()) and len(found) == 2
                           and victim not in found and found, timeout=30,
                           message="a new worker process in the killed one's place")
        assert len(after - before) == 1
        assert f"worker process {victim} exited with SIGKILL: restarting in 1s" \
            in supervisor.output()
        uuids = [delay(db, jobs.add, n, 1) for n in range(10)]
        wait_until(lambda: states(db) == {"done": 10}, timeout=60, message="jobs done")
        assert all(queuejob.operations.load_job(db, uuid)["state"] == "done"
                   for uuid in uuids)


@pytest.mark.parametrize("how", ["SIGTERM to the supervisor", "Ctrl-C at its terminal"])
def test_sigterm_lets_running_jobs_finish_then_stops_every_process(how, db, db_url, job_env,
                                                                  tmp_path):
    """(Ctrl-C: SIGINT to the terminal's foreground process group, which the test's
    spawn made the supervisor's own: its children, in groups of their own, receive only
    the SIGTERM it forwards, once.)"""
    log = tmp_path / "executions"
    grace = 8.0
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 2, "--poll", "0.5",
                    "--grace", str(grace)) as supervisor:
        pids = supervisor.wait_children(2)
        job_uuid = delay(db, jobs.record, str(log), seconds=2.0)
        wait_until(lambda: queuejob.operations.load_job(db, job_uuid)["state"] == "started",
                   message="the job started")
        stopped = time.monotonic()
        if how == "Ctrl-C at its terminal":
            os.killpg(supervisor.process.pid, signal.SIGINT)
        else:
            os.kill(supervisor.process.pid, signal.SIGTERM)
        code = supervisor.process.wait(timeout=grace + MARGIN + 5)
        took = time.monotonic() - stopped
    assert code == 0, supervisor.output()
    assert took < grace, (took, supervisor.output())  # the job's 2 s, not the grace period
    assert not any(alive(pid) for pid in pids | supervisor.seen)
    assert queuejob.operations.load_job(db, job_uuid)["state"] == "done"
    assert [run[0] for run in executions(log)] == [job_uuid]


def test_a_second_sigterm_stops_the_processes_at_once(db, db_url, job_env, tmp_path):
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 2, "--poll", "0.5",
                    "--grace", "60") as supervisor:
        pids = supervisor.wait_children(2)
        job_uuid = delay(db, jobs.sleep, 30)
        wait_until(lambda: queuejob.operations.load_job(db, job_uuid)["state"] == "started",
                   message="the job started")
        os.kill(supervisor.process.pid, signal.SIGTERM)
        # the first signal leaves the running job its grace period...
        with pytest.raises(subprocess.TimeoutExpired):
            supervisor.process.wait(timeout=1.0)
        os.kill(supervisor.process.pid, signal.SIGTERM)
        # ...the second gives it back at once
        supervisor.process.wait(timeout=20)
    assert not any(alive(pid) for pid in pids)
    row = queuejob.operations.load_job(db, job_uuid)
    assert row["state"] == "pending", (row, supervisor.output())


def test_burst_processes_that_are_done_are_not_restarted(db, db_url, job_env, tmp_path):
    for n in range(20):
        delay(db, jobs.add, n, 1)
    result = subprocess.run(
        [sys.executable, "-m", "queuejob", "worker", "--db", db_url, "--module", "tests.jobs",
         "--processes", "2", "--burst", "--poll", "0.2"], env=job_env, cwd=ROOT, check=False,
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert states(db) == {"done": 20}
    assert "restarting" not in result.stderr


@pytest.mark.parametrize("backend", ["postgresql"])  # LISTEN/NOTIFY
def test_the_shared_listener_wakes_the_processes(db, db_url, job_env, tmp_path):
    """With a 30 s poll, a job enqueued while the workers are idle is claimed at once:
    the supervisor's listener woke one of them through its pipe."""
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 3,
                    "--poll", "30") as supervisor:
        pids = supervisor.wait_children(3)
        wait_until(lambda: {row["pid"] for row in alive_workers(db)} == pids,
                   message="the 3 worker processes registered")
        wait_until(lambda: listeners(db_url) == 1, message="the supervisor's LISTEN")
        # each job names one worker to wake (core.wakeups): several reach several
        for n in range(4):
            job_uuid = delay(db, jobs.add, n, 1)
            enqueued = time.monotonic()
            wait_until(lambda job_uuid=job_uuid: queuejob.operations.load_job(
                db, job_uuid)["state"] == "done", timeout=10,
                message=f"job {n} done without waiting for the 30 s poll\n"
                        f"{supervisor.output()}")
            assert time.monotonic() - enqueued < 10


def test_the_workers_command_shows_the_supervisor_and_the_connections(db, db_url, backend,
                                                                     job_env, tmp_path,
                                                                     invoke):
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 3, "--poll", "0.5",
                    "--concurrency", "2", "--job-connections", "3",
                    "--hostname", "host-a") as supervisor:
        pids = supervisor.wait_children(3)
        wait_until(lambda: {row["pid"] for row in alive_workers(db)} == pids,
                   message="the 3 worker processes registered")
        alone = spawn_worker(db_url, job_env, "--poll", "0.5", "--no-listen",
                             "--hostname", "host-a", log=tmp_path / "alone.log")
        try:
            wait_until(lambda: alone.pid in {row["pid"] for row in alive_workers(db)},
                       message="the worker alone registered")
            table = invoke("workers", "--db", db_url).stdout
            rows = json.loads(invoke("workers", "--db", db_url, "--json").stdout)
        finally:
            assert stop_process(alone) == 0
    # (SQLite: each process watches the file itself, no pipe: its own "listener")
    shared = "1 + shared listener + up to 3" if backend == "postgresql" \
        else "1 + listener + up to 3"
    lines = {pid: line_of(table, f" {pid} ") for pid in pids | {alone.pid}}
    for pid in pids:
        assert f" {pid} " in lines[pid] and f" {supervisor.process.pid} " in lines[pid]
        assert shared in lines[pid], lines[pid]
        assert "host-a" in lines[pid]
    assert str(supervisor.process.pid) not in lines[alone.pid]
    assert "1 + no listener + up to 4" in lines[alone.pid], lines[alone.pid]
    # the 3 processes of the supervisor together
    order = [pid for pid in (int(line.split()[3]) for line in table.splitlines()[1:])
             if pid in pids | {alone.pid}]
    assert order.index(alone.pid) in (0, 3), table
    # --json: the rows as stored
    by_pid = {row["pid"]: row for row in rows if row["state"] == "alive"}
    assert {pid: (row["supervisor_pid"], row["job_connections"])
            for pid, row in by_pid.items() if pid in pids} == {
        pid: (supervisor.process.pid, 3) for pid in pids}
    assert {by_pid[pid]["listener"] for pid in pids} == {
        "shared" if backend == "postgresql" else "own"}
    assert (by_pid[alone.pid]["supervisor_pid"], by_pid[alone.pid]["listener"]) == (
        None, "none")


def line_of(text: str, needle: str) -> str:
    [line] = [line for line in text.splitlines() if needle in line]
    return line


# -- behind PgBouncer in transaction mode ------------------------------------------------

def listen_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "LISTEN does not hold" in line]


def test_behind_a_transaction_pool_the_supervisor_says_so_once_and_the_processes_poll(
        pooled_db, pooled_db_url, job_env, tmp_path):
    with Supervised(pooled_db_url, job_env, tmp_path / "supervisor.log", 2,
                    "--poll", "0.5") as supervisor:
        supervisor.wait_children(2)
        wait_until(lambda: listen_warnings(supervisor.output()), timeout=20,
                   message="the supervisor's LISTEN warning")
        for round_ in range(3):  # the children poll once their pipes are closed
            uuids = [delay(pooled_db, jobs.add, round_, n) for n in range(4)]
            wait_until(lambda uuids=uuids: all(
                queuejob.operations.load_job(pooled_db, uuid)["state"] == "done"
                for uuid in uuids), timeout=15, message=f"round {round_} of jobs")
        output = supervisor.output()
    assert supervisor.process.returncode == 0, output
    # one check, by the supervisor: the children's pipes do not probe
    assert len(listen_warnings(output)) == 1, output
    assert "Traceback" not in output


def test_behind_a_transaction_pool_the_listen_url_wakes_the_processes(
        pooled_db, pooled_db_url, pooled_direct_url, pgbouncer, job_env, tmp_path):
    session_url = pgbouncer.url(POOLED_DB, session=True)
    with Supervised(pooled_db_url, job_env, tmp_path / "supervisor.log", 3, "--poll", "30",
                    "--listen-url", session_url) as supervisor:
        pids = supervisor.wait_children(3)
        wait_until(lambda: {row["pid"] for row in alive_workers(pooled_db)} == pids,
                   timeout=20, message="the 3 worker processes registered")
        wait_until(lambda: listeners(pooled_direct_url) == 1, message="one LISTEN")
        for n in range(4):
            job_uuid = delay(pooled_db, jobs.add, n, 1)
            wait_until(lambda job_uuid=job_uuid: queuejob.operations.load_job(
                pooled_db, job_uuid)["state"] == "done", timeout=10,
                message=f"job {n} woken through the listen URL\n{supervisor.output()}")
        assert listeners(pooled_direct_url) == 1
        output = supervisor.output()
    assert listen_warnings(output) == [], output


def test_behind_a_transaction_pool_the_processes_say_they_poll(pooled_db, pooled_db_url,
                                                               job_env, tmp_path):
    with Supervised(pooled_db_url, job_env, tmp_path / "supervisor.log", 2,
                    "--poll", "0.5", "--heartbeat", "0.5") as supervisor:
        pids = supervisor.wait_children(2)
        wait_until(lambda: listen_warnings(supervisor.output()), timeout=20,
                   message="the supervisor's LISTEN warning")
        wait_until(lambda: {row["pid"]: row["listener"] for row in alive_workers(pooled_db)}
                   == dict.fromkeys(pids, "none"), timeout=5,
                   message="the processes' rows saying they poll")


@pytest.mark.parametrize("value", ["0", "abc", "257"])
def test_a_bad_number_of_processes_is_one_line(value, tmp_path, job_env):
    url = f"sqlite:///{tmp_path}/jobs.db"
    result = subprocess.run(
        [sys.executable, "-m", "queuejob", "worker", "--db", url, "--module", "tests.jobs",
         "--processes", value], env=job_env, cwd=ROOT, check=False, capture_output=True,
        text=True, timeout=30)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("queuejob: error: ") and "--processes" in lines[0]
    assert not (tmp_path / "jobs.db").exists()


def test_children_get_the_command_line_without_processes():
    argv = ["/venv/bin/queuejob", "worker", "--db", "sqlite:///x.db", "--processes", "3",
            "--module", "m", "--processes=4", "--grace", "5", "--no-listen"]
    assert child_arguments(argv) == ["--db", "sqlite:///x.db", "--module", "m", "--grace",
                                     "5", "--no-listen"]
    with pytest.raises(ValueError, match="worker"):
        child_arguments(["pytest", "-q"])
    assert exit_status(-signal.SIGKILL) == "SIGKILL"
    assert exit_status(3) == "code 3"


def test_the_processes_stop_when_their_supervisor_is_killed(db, db_url, job_env, tmp_path):
    """A supervisor killed with SIGKILL leaves no worker running unsupervised: each
    child notices it is no longer its parent's and stops as after SIGTERM."""
    with Supervised(db_url, job_env, tmp_path / "supervisor.log", 2,
                    "--poll", "0.5") as supervisor:
        pids = supervisor.wait_children(2)
        wait_until(lambda: {row["pid"] for row in alive_workers(db)} == pids,
                   message="the 2 worker processes registered")
        supervisor.process.kill()
        supervisor.process.wait(timeout=10)
        wait_until(lambda: not any(alive(pid) for pid in pids), timeout=30,
                   message="the children to stop")
        assert alive_workers(db) == []
        assert "the supervisor (pid" in supervisor.output()
