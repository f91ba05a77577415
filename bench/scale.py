"""Many workers on one PostgreSQL: what N worker processes cost idle, how a trickle of
jobs reaches them, how fast they drain, and how many connections they hold.

    python -m bench.scale                     # full run: workers 1,8,32,64
    python -m bench.scale --quick             # workers 1,8, small sizes, short windows
    python -m bench.scale --workers 8 --no-peers --routes direct

A throw-away PostgreSQL (``tests.pgserver``, fsync on; ``max_connections`` raised to
``--max-connections``, 400, and autovacuum off: see ``ScalePostgres``) and a PgBouncer
in transaction mode in front of it (``tests.pgbouncer``, its defaults but
``max_client_conn``, raised to 1000) on free loopback ports. For each N of ``--workers``
and each route, N worker processes ``queuejob worker --module bench.jobs --channels
root:8`` (this tree's code, ``PYTHONPATH=src``):

* ``direct``: ``--db`` the server;
* ``pgbouncer``: ``--db`` PgBouncer's transaction pool, ``--listen-url`` the server;
* ``processes``: one ``queuejob worker --processes N`` supervisor, ``--db`` the server
  (when this tree's worker has ``--processes``; not for N = 1);

and, with ``bench/.venv-peers`` (bench/run.sh makes it; ``--no-peers``: not), N PGQueuer
processes ``pgq run bench.peers.pgqueuer:create_pgqueuer`` (``bench.peers.pgqueuer``'s
command and database, its ``--batch-size`` default), direct. Each (system, route, N):

1. idle: N processes started on an empty queue; once every one registered
   (``queue_worker``; PGQueuer: holds its connection), 5 s more and what they did
   reported (below), over ``--idle`` (20) s: the database's transactions
   (``pg_stat_database`` xact_commit + xact_rollback) per second per worker, the worker
   processes' CPU (``/proc``, children included) in % of a core per worker, the
   server's backends' CPU, the server's connections to the database and PgBouncer's
   clients (medians of one look a second);
2. trickle, the same processes: one job per transaction every 50 ms for ``--trickle``
   (10) s (queuejob: ``bench.jobs.latency``, whose argument is ``time.time()`` taken just
   before the enqueue and which records its start; PGQueuer: the harness's latency
   job); the start latency p50/p99, from just before the enqueue and from its commit;
   the database's transactions per job, the inserts included, until the last job ran,
   the transactions were back to the idle rate of step 1 and every count was reported
   (all the work the trickle caused): ``in all`` (the idle rate of the wait after the
   last job taken off), ``beyond idle`` (the idle rate of the whole time taken off);
3. drain: the processes stopped, the queue emptied, ``--jobs`` (20,000) no-op jobs
   queued in bulk (``delay_many``, 10,000 per transaction; PGQueuer: ``enqueue`` with
   lists), ANALYZE, then N new processes started; time until the last job ran (counted
   outside the queue, as bench.quick does): jobs/s, start-up (spawn to first job),
   server CPU per job (the database's backends), worker CPU per job (start-up
   included) and, sampled every 0.2 s, the backends running a statement and those
   waiting on a lock (queuejob's claim lock is an advisory lock), PgBouncer's waiting
   clients;
4. connections under application jobs (queuejob only), the processes of step 3:
   ``--app-jobs`` (400) jobs of ``bench.jobs.session_select`` (a row read through the
   job's session, then 50 ms with its transaction open), 8 at once in all (root:8):
   the server's connections to the database before, at their peak while they run
   (sampled every 0.1 s), and ``--app-after`` (15) s after the last one ran; through
   PgBouncer, its clients too.

The benchmark's own queries go to the ``postgres`` database (pg_stat_database and
pg_stat_activity are cluster-wide) and its own connection to the measured one is named
(``OWN``): neither is counted. A backend reports its counts to pg_stat_database when it
goes idle, at most once a second, else up to 10 s later: before reading a counter after
activity, the benchmark waits until every backend that may still hold counts has
reported them (``Scale.settle``), and takes the idle rate of that wait off. (A backend
whose transactions read no table reports their count only when it ends: the
application jobs read a row.)

Writes ``--out``/scale.md (the tables) and scale.json (every figure, what the
connections were doing, the settings, the environment, the warnings the workers
logged), and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from tests.pgbouncer import PgBouncer  # noqa: E402
from tests.pgserver import PostgresServer  # noqa: E402

import queuejob  # noqa: E402
from bench import config, envinfo, jobs, pgutil  # noqa: E402
from bench.cpu import cpu_seconds  # noqa: E402
from bench.quick import Bench, percentile  # noqa: E402

PEERS_PYTHON = ROOT / "bench" / ".venv-peers" / "bin" / "python"
#: the application_name of the benchmark's own connections to the measured database
OWN = "queuejob-scale"
DBNAME = "bench"
PGQ_DBNAME = "bench_pgqueuer"
CHANNELS = "root:8"
CHUNK = 10_000  # jobs per delay_many transaction
#: a backend reports its counts to pg_stat_database when it goes idle, at most once
#: every REPORT_EVERY s; counts it could not report then, REPORT_IDLE s later at the latest
REPORT_EVERY = 1.0
REPORT_IDLE = 10.0
#: seconds the workers settle once registered, before the idle window
SETTLE = 5.0
#: seconds between two enqueues of the trickle
INTERVAL = 0.05
#: seconds one application job holds its session's transaction
APP_JOB_SECONDS = 0.05
#: seconds a measurement waits at most for jobs (a drain, a trickle's last jobs)
TIMEOUT = 600.0
ROUTES = ("direct", "pgbouncer", "processes")
ROUTE_LABELS = {"direct": "direct", "pgbouncer": "PgBouncer (tx), listen direct",
                "processes": "direct, one --processes N supervisor"}
STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[scale {time.monotonic() - STARTED:6.0f}s] {message}", file=sys.stderr, flush=True)


# -- the servers --------------------------------------------------------------------------
class ScalePostgres(PostgresServer):
    """``tests.pgserver.PostgresServer`` (fsync on) with more connections than its 200
    (64 worker processes hold 2 each idle, more while their jobs use their sessions) and
    without autovacuum: its visits are transactions of the database too (8 in 30 s after
    the schema's creation, with no worker), which would count as the workers' own; every
    measure starts on tables emptied by TRUNCATE (no dead rows), and the benchmark runs
    ANALYZE after each bulk enqueue. Settings given again on the command line: the last
    one wins."""

    def __init__(self, max_connections: int) -> None:
        super().__init__(fast=False)
        self.settings = {"max_connections": str(max_connections), "autovacuum": "off"}

    def pg_ctl(self, action: str, *extra: str) -> None:
        settings = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        if action in ("start", "restart") and not self.options.endswith(settings):
            self.options = f"{self.options} {settings}"
        super().pg_ctl(action, *extra)


class ScaleBouncer(PgBouncer):
    """``tests.pgbouncer.PgBouncer`` (transaction mode, PgBouncer's defaults) but
    ``max_client_conn``: its default, 100, is fewer than 64 workers' connections while
    their jobs use their sessions. The pools (``default_pool_size`` 20) are untouched."""

    MAX_CLIENT_CONN = 1000

    def _config(self) -> str:
        # [pgbouncer] is the last section of the file
        return super()._config() + f"max_client_conn = {self.MAX_CLIENT_CONN}\n"


# -- processes ------------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def tree(pids: list[int]) -> list[int]:
    """``pids`` and every process descending from them (alive)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def tree_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process of the trees of ``pids``."""
    found = {}
    for pid in tree(pids):
        with contextlib.suppress(OSError, IndexError, ValueError):
            found[pid] = cpu_seconds(pid)
    return found


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class Group:
    """The worker processes of one (system, route, N): each command started in a process
    group of its own, its output to a log file; stopped by SIGTERM, killed if it lingers."""

    def __init__(self, tag: str, commands: list[list[str]], env: dict[str, str],
                 logdir: Path, stop_signal: int = signal.SIGTERM) -> None:
        self.tag = tag
        self.commands = commands
        self.env = env
        self.logs = [logdir / f"{tag}-{index + 1}.log" for index in range(len(commands))]
        self.stop_signal = stop_signal
        self.procs: list[subprocess.Popen] = []

    def start(self) -> Group:
        for command, path in zip(self.commands, self.logs, strict=True):
            with open(path, "wb") as out:
                self.procs.append(subprocess.Popen(
                    command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True))
        return self

    def check(self) -> None:
        for proc, path in zip(self.procs, self.logs, strict=False):
            if proc.poll() is not None:
                raise RuntimeError(f"{self.tag}: process {proc.pid} exited with "
                                   f"{proc.returncode}: {tail(path)}")

    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def cpu(self) -> dict[int, float]:
        return tree_cpu(self.pids())

    def stop(self, timeout: float = 40.0) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
        lingering = [proc for proc in self.procs if proc.poll() is None]
        if lingering:
            say(f"{self.tag}: {len(lingering)} process(es) did not stop in {timeout:g}s: "
                "killing them")
            # a supervisor's children lead process groups of their own
            for pid in tree([proc.pid for proc in lingering]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for proc in lingering:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)

    def warnings(self) -> list[str]:
        """The distinct warning and error lines the processes logged (numbers masked),
        with how many times each came."""
        counts: dict[str, int] = {}
        for path in self.logs:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if re.search(r"WARNING|ERROR|CRITICAL|Traceback|Error:", line):
                    key = re.sub(r"\d+", "N", line.split(" ", 2)[-1])[:240]
                    counts[key] = counts.get(key, 0) + 1
        return [f"{count}x {line}" for line, count in counts.items()]


def tail(path: Path, size: int = 800) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-size:].strip() or "(no output)"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             check: Callable[[], None] | None = None, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def wall(moment: float) -> float:
    """A time.monotonic() moment on the wall clock (the server's timestamps)."""
    return time.time() - (time.monotonic() - moment)


# -- the benchmark --------------------------------------------------------------------------
class Scale(Bench):
    """``bench.quick.Bench`` on the direct URL (its database handle, its done and latency
    files, its ANALYZE), with the servers, the monitor and the measures of this run."""

    def __init__(self, args: argparse.Namespace, server: ScalePostgres, bouncer: ScaleBouncer,
                 workdir: Path) -> None:
        self.args = args
        self.server = server
        self.bouncer = bouncer
        self.direct_url = server.url(DBNAME)
        self.bouncer_url = bouncer.url(DBNAME)
        # its own queuejob handle (the enqueues) is named: not counted as the workers'
        super().__init__(f"{self.direct_url}?application_name={OWN}", workdir,
                         concurrency=8, channels=CHANNELS)
        self.dbname = DBNAME
        self.logdir = workdir / "logs"
        self.logdir.mkdir(exist_ok=True)
        # the benchmark's own queries: the postgres database, never the measured ones
        self.monitor = psycopg.connect(server.url("postgres"), autocommit=True)

    # -- looks at the server (the monitor's connection: not counted) ----------------------
    def xacts(self, dbname: str) -> int:
        return self.monitor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (dbname,)).fetchone()[0]

    def connections(self, dbname: str) -> int:
        return self.monitor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
            "AND backend_type = 'client backend' AND application_name <> %s",
            (dbname, OWN)).fetchone()[0]

    def settle(self, dbname: str, since: float, until: float, x0: int = 0) -> list[Any]:
        """Wait until the backends of ``dbname`` reported to pg_stat_database what they
        did from ``since`` to ``until`` (wall clock): a backend reports when it goes idle,
        unless it reported less than REPORT_EVERY s before (then REPORT_IDLE s later at
        the latest). So one whose last transaction ended before ``until`` + REPORT_EVERY
        may still hold counts, until REPORT_IDLE s after it; one that ended a transaction
        since has reported them (a backend that exited did so as it left); one inside a
        transaction will when it ends. Returns the counter (minus ``x0``) every 0.5 s
        meanwhile."""
        series = []
        started = time.monotonic()
        while True:
            series.append((round(time.monotonic() - started, 2), self.xacts(dbname) - x0))
            holding = self.monitor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND backend_type = 'client backend' AND (state <> 'idle' "
                "OR state_change >= to_timestamp(%s) "
                "AND state_change < to_timestamp(%s) + make_interval(secs => %s) "
                "AND state_change > now() - make_interval(secs => %s))",
                (dbname, since, until, REPORT_EVERY, REPORT_IDLE + 0.5)).fetchone()[0]
            if not holding or time.monotonic() - started > REPORT_IDLE + 2:
                return series
            time.sleep(0.5)

    def activity(self, dbname: str) -> list[list[Any]]:
        """What the connections to ``dbname`` do: [count, application_name, state, the
        start of their last statement], for the JSON (what a count is made of)."""
        return [list(row) for row in self.monitor.execute(
            "SELECT count(*), application_name, state, left(regexp_replace(query, '\\s+', "
            "' ', 'g'), 60) FROM pg_stat_activity WHERE datname = %s AND backend_type = "
            "'client backend' GROUP BY 2, 3, 4 ORDER BY 1 DESC", (dbname,)).fetchall()]

    def backend_cpu(self, dbname: str) -> dict[int, float]:
        """CPU seconds of each backend connected to ``dbname`` (the server's list, then
        ``/proc`` as ``bench.quick.server_cpu_seconds`` reads it): a backend that
        ends or starts during a measure does not skew a difference."""
        found = {}
        for (pid,) in self.monitor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,)).fetchall():
            with contextlib.suppress(OSError, IndexError, ValueError):
                found[pid] = cpu_seconds(pid)
        return found

    def waits(self, dbname: str) -> tuple[int, int]:
        """Backends of ``dbname`` running a statement, and those of them waiting on a
        lock (queuejob's claim lock is an advisory lock)."""
        return self.monitor.execute(
            "SELECT count(*) FILTER (WHERE state = 'active'), "
            "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            (dbname,)).fetchone()

    def pool(self) -> dict[str, int]:
        """PgBouncer's clients and server connections of the benchmark's pool."""
        row = self.bouncer.pools(DBNAME)
        servers = sum(int(row.get(key, 0)) for key in (
            "sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"))
        return {"clients": int(row["cl_active"]) + int(row["cl_waiting"]),
                "waiting": int(row["cl_waiting"]), "servers": servers}

    def bouncer_cpu(self) -> dict[int, float]:
        assert self.bouncer.process is not None
        return tree_cpu([self.bouncer.process.pid])

    # -- queue state ----------------------------------------------------------------------
    def reset(self) -> None:
        """Empty queuejob's tables (no worker runs): TRUNCATE leaves no dead rows for
        autovacuum to visit during a measurement."""
        pgutil.execute(self.direct_url, "TRUNCATE queue_job, queue_worker, queue_channel, "
                       "queue_rate_start CASCADE", "CHECKPOINT")
        for path in (self.done_file, self.latency_file):
            path.unlink(missing_ok=True)

    def done(self) -> int:
        return self.done_file.stat().st_size if self.done_file.exists() else 0

    def latencies(self) -> list[tuple[float, float]]:
        if not self.latency_file.exists():
            return []
        return [(float(a), float(b)) for a, b in (
            line.split() for line in self.latency_file.read_text().splitlines() if line)]

    # -- worker processes ----------------------------------------------------------------
    def env(self, peers: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("QUEUEJOB_LISTEN_URL", None)
        paths = [str(ROOT)] if peers else [str(ROOT / "src"), str(ROOT)]
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (*paths, os.environ.get("PYTHONPATH")) if p)
        return env

    def queuejob_group(self, route: str, n: int, phase: str) -> Group:
        db = self.bouncer_url if route == "pgbouncer" else self.direct_url
        command = [sys.executable, "-m", "queuejob", "worker", "--db", db,
                   "--module", "bench.jobs", "--log-level", "WARNING",
                   *worker_options(self.args)]
        if route == "pgbouncer":
            command += ["--listen-url", self.direct_url]
        commands = [[*command, "--processes", str(n)]] if route == "processes" \
            else [command] * n
        return Group(f"queuejob-{route}-{n}-{phase}", commands, self.env(), self.logdir)

    def pgqueuer_group(self, n: int, command: list[str], phase: str) -> Group:
        return Group(f"pgqueuer-direct-{n}-{phase}", [command] * n, self.env(peers=True),
                     self.logdir)

    def alive_workers(self) -> int:
        return pgutil.rows(self.direct_url,
                           "SELECT count(*) FROM queue_worker WHERE state = 'alive'")[0][0]

    # -- the measures ---------------------------------------------------------------------
    def drain(self, group: Group, count: int, dbname: str, route: str) -> dict[str, Any]:
        """Start ``group`` on ``count`` queued jobs; until the last one ran."""
        self.done_file.unlink(missing_ok=True)
        server, pool_cpu = self.backend_cpu(dbname), self.bouncer_cpu()
        started = time.monotonic()
        group.start()
        first = None
        active, waiting, bouncer_waiting = [], [], []
        next_look = started
        while True:
            done = self.done()
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done >= count:
                break
            if now >= next_look:
                next_look = now + 0.2
                busy, locked = self.waits(dbname)
                active.append(busy)
                waiting.append(locked)
                if route == "pgbouncer":
                    bouncer_waiting.append(self.pool()["waiting"])
                group.check()
            if now - started > TIMEOUT:
                raise RuntimeError(f"drain timed out with {done}/{count} jobs done")
            time.sleep(0.02)
        seconds = time.monotonic() - started
        worker_cpu = sum(group.cpu().values())
        server_cpu = cpu_delta(server, self.backend_cpu(dbname))
        assert first is not None
        startup = first[0] - started
        result = {
            "jobs": count, "seconds": seconds, "jobs_per_s": count / seconds,
            "startup_s": startup,
            "drain_jobs_per_s": (count - first[1]) / max(1e-9, seconds - startup),
            "server_cpu_us_per_job": server_cpu / count * 1e6,
            "worker_cpu_us_per_job": worker_cpu / count * 1e6,
            "active_backends_mean": statistics.fmean(active) if active else 0.0,
            "lock_waiting_backends_mean": statistics.fmean(waiting) if waiting else 0.0,
        }
        if route == "pgbouncer":
            result["bouncer_cpu_us_per_job"] = cpu_delta(pool_cpu, self.bouncer_cpu()) \
                / count * 1e6
            result["bouncer_waiting_clients_mean"] = statistics.fmean(bouncer_waiting) \
                if bouncer_waiting else 0.0
        return result

    def app_connections(self, group: Group, route: str) -> dict[str, Any]:
        """Application jobs (their sessions used), 8 at once in all: connections."""
        count, after = self.args.app_jobs, self.args.app_after
        self.done_file.unlink(missing_ok=True)
        before, activity_before = self.connections(DBNAME), self.activity(DBNAME)
        pool_before = self.pool() if route == "pgbouncer" else None
        with self.db.session() as session:
            jobs.session_select.delay_many(session, [(None, APP_JOB_SECONDS)] * count)
        started = time.monotonic()
        peak = peak_clients = peak_servers = 0
        activity_peak: list[list[Any]] = []
        while self.done() < count:
            now = self.connections(DBNAME)
            if now > peak:
                peak, activity_peak = now, self.activity(DBNAME)
            if route == "pgbouncer":
                pool = self.pool()
                peak_clients = max(peak_clients, pool["clients"])
                peak_servers = max(peak_servers, pool["servers"])
            group.check()
            if time.monotonic() - started > TIMEOUT:
                raise RuntimeError(f"application jobs timed out with {self.done()}/{count}")
            time.sleep(0.1)
        finished = time.monotonic()
        sleep_until(finished + after)
        result = {"jobs": count, "seconds": finished - started, "before": before,
                  "peak": peak, "after": self.connections(DBNAME), "after_s": after,
                  "activity_before": activity_before, "activity_peak": activity_peak,
                  "activity_after": self.activity(DBNAME)}
        if route == "pgbouncer":
            assert pool_before is not None
            pool_after = self.pool()
            result.update(clients_before=pool_before["clients"], clients_peak=peak_clients,
                          clients_after=pool_after["clients"],
                          bouncer_servers_peak=peak_servers,
                          bouncer_servers_after=pool_after["servers"])
        return result

    def idle(self, group: Group, n: int, dbname: str, route: str) -> dict[str, Any]:
        seconds = self.args.idle
        connections, clients = [], []
        x0, workers0 = self.xacts(dbname), group.cpu()
        server0, pool0 = self.backend_cpu(dbname), self.bouncer_cpu()
        started = time.monotonic()
        while time.monotonic() < started + seconds:
            connections.append(self.connections(dbname))
            if route == "pgbouncer":
                clients.append(self.pool()["clients"])
            group.check()
            sleep_until(min(started + seconds, time.monotonic() + 1.0))
        x1, workers1 = self.xacts(dbname), group.cpu()
        server1, pool1 = self.backend_cpu(dbname), self.bouncer_cpu()
        elapsed = time.monotonic() - started
        result = {
            "seconds": elapsed, "xacts": x1 - x0,
            "xacts_per_s": (x1 - x0) / elapsed,
            "xacts_per_s_per_worker": (x1 - x0) / elapsed / n,
            "worker_cpu_pct_per_worker": cpu_delta(workers0, workers1) / elapsed / n * 100,
            "server_cpu_pct": cpu_delta(server0, server1) / elapsed * 100,
            "server_connections": statistics.median(connections),
            "server_connections_max": max(connections),
            "activity_end": self.activity(dbname),
        }
        if route == "pgbouncer":
            result["bouncer_clients"] = statistics.median(clients)
            result["bouncer_cpu_pct"] = cpu_delta(pool0, pool1) / elapsed * 100
        return result

    def trickle(self, enqueue: Callable[[], tuple[float, int, dict[str, float]]],
                dbname: str, idle_rate: float, group: Group) -> dict[str, Any]:
        """``enqueue()`` trickles the jobs: it returns when it started (the database's
        counter read just before) and, for each job, ``enqueued_at`` (as the job writes
        it) and when its transaction had committed. Then until all ran, the workers are
        back to their idle rate (``idle_rate``, tx/s) and the counts reported: all the
        work the trickle caused is counted."""
        self.latency_file.unlink(missing_ok=True)
        started, x0, committed = enqueue()
        count = len(committed)
        wait_for(lambda: len(self.latencies()) >= count, TIMEOUT,
                 f"{count} trickled jobs to start", group.check)
        ran = time.monotonic()
        calm = self.calm(dbname, idle_rate)
        series = self.settle(dbname, wall(started), wall(ran + calm), x0)
        x1, ended = self.xacts(dbname), time.monotonic()
        total = x1 - x0
        lines = self.latencies()
        delays = [(b - a) * 1000 for a, b in lines]
        from_commit = [(b - committed[f"{a:.6f}"]) * 1000 for a, b in lines
                       if f"{a:.6f}" in committed]
        return {
            "jobs": count, "seconds": ran - started, "xacts": total,
            "xacts_per_job_in_all": (total - idle_rate * (ended - ran)) / count,
            "xacts_per_job_beyond_idle": (total - idle_rate * (ended - started)) / count,
            "calm_s": calm,
            "latency_p50_ms": percentile(delays, 0.5), "latency_p99_ms": percentile(delays, 0.99),
            "latency_max_ms": max(delays),
            "from_commit_p50_ms": percentile(from_commit, 0.5),
            "from_commit_p99_ms": percentile(from_commit, 0.99),
            "commit_p50_ms": percentile(
                [(done - float(at)) * 1000 for at, done in committed.items()], 0.5),
            "settle_s": ended - ran, "settle_series": series,
        }

    def calm(self, dbname: str, idle_rate: float, most: float = 60.0) -> float:
        """Wait until the database's transactions are back to ``idle_rate`` (tx/s, all
        workers; 1.5 times it plus 2, over the last 2 s), ``most`` s at most; how long
        they were not (the seconds waited, but the last 2). (Workers that each take
        every notification of every job may work through them long after the last job
        ran.)"""
        started = time.monotonic()
        looks = [(started, self.xacts(dbname))]
        while time.monotonic() - started < most:
            time.sleep(0.5)
            looks.append((time.monotonic(), self.xacts(dbname)))
            old = [look for look in looks if look[0] <= looks[-1][0] - 2.0]
            if old and (looks[-1][1] - old[-1][1]) / (looks[-1][0] - old[-1][0]) \
                    <= 1.5 * idle_rate + 2:
                return old[-1][0] - started
        return time.monotonic() - started

    def trickle_queuejob(self, url: str) -> tuple[float, int, dict[str, float]]:
        """One latency job per transaction every INTERVAL s (through ``url``)."""
        client = queuejob.open(url)
        committed = {}
        try:
            with client.session() as session:  # its connection opened before the count
                # a table read: the server reports this transaction's count at once
                session.execute("SELECT count(*) FROM queue_worker")
            x0, started = self.xacts(DBNAME), time.monotonic()
            for index in range(round(self.args.trickle / INTERVAL)):
                sleep_until(started + index * INTERVAL)
                enqueued_at = time.time()
                with client.session() as session:
                    jobs.latency.delay(session, None, enqueued_at)
                committed[f"{enqueued_at:.6f}"] = time.time()
            return started, x0, committed
        finally:
            client.close()

    def trickle_pgqueuer(self) -> tuple[float, int, dict[str, float]]:
        """The same through PGQueuer's client, run by the peers' Python (bench.scale's
        helper): it connects, says ready, and trickles when told."""
        helper = subprocess.Popen(
            [str(PEERS_PYTHON), "-m", "bench.scale", "--pgq-helper", "trickle",
             str(self.args.trickle)],
            cwd=ROOT, env=self.env(peers=True), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        try:
            assert helper.stdin is not None and helper.stdout is not None
            if helper.stdout.readline().strip() != "ready":
                raise RuntimeError("the PGQueuer trickle helper did not start")
            x0, started = self.xacts(PGQ_DBNAME), time.monotonic()
            helper.stdin.write("go\n")
            helper.stdin.flush()
            committed = json.loads(helper.stdout.readline())
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                helper.wait(30)
            if helper.poll() is None:
                helper.kill()
        return started, x0, committed

    # -- one (system, route, N) ---------------------------------------------------------
    def run_queuejob(self, route: str, n: int) -> dict[str, Any]:
        """Idle and trickle with N workers started on an empty queue; then the drain with
        N new ones, and the application jobs with them."""
        record: dict[str, Any] = {"system": "queuejob", "route": route, "workers": n}
        url = self.bouncer_url if route == "pgbouncer" else self.direct_url
        groups = [self.queuejob_group(route, n, "idle"), self.queuejob_group(route, n, "drain")]
        try:
            self.reset()
            group = groups[0]
            started = time.time()
            group.start()
            wait_for(lambda: self.alive_workers() >= n, 120, f"{n} workers registered",
                     group.check, step=0.5)
            self.settled(DBNAME, started)
            say(f"queuejob {route} N={n}: idle {self.args.idle:g}s")
            record["idle"] = self.idle(group, n, DBNAME, route)
            say(f"queuejob {route} N={n}: trickle {self.args.trickle:g}s")
            record["trickle"] = self.trickle(lambda: self.trickle_queuejob(url), DBNAME,
                                             record["idle"]["xacts_per_s"], group)
            group.stop()
            self.reset()
            with self.db.session() as session:
                for start in range(0, self.args.jobs, CHUNK):
                    jobs.noop.delay_many(
                        session, [(None,)] * min(CHUNK, self.args.jobs - start))
                    session.commit()
            self.analyze()
            group = groups[1]
            say(f"queuejob {route} N={n}: drain of {self.args.jobs}")
            record["drain"] = self.drain(group, self.args.jobs, DBNAME, route)
            wait_for(lambda: self.alive_workers() >= n, 120, f"{n} workers registered",
                     group.check, step=0.5)
            say(f"queuejob {route} N={n}: application jobs")
            record["app"] = self.app_connections(group, route)
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            say(f"queuejob {route} N={n}: FAILED: {record['error']}")
        finally:
            for group in groups:
                group.stop()
            record["warnings"] = [warning for group in groups for warning in group.warnings()]
            if route == "pgbouncer":
                try:
                    self.drop_pool()
                except Exception as exc:
                    say(f"PgBouncer's server connections not closed: {exc}")
        return record

    def settled(self, dbname: str, started: float) -> None:
        """The processes started at ``started`` (wall clock), now registered, settle:
        SETTLE s, and what they did until now reported."""
        registered = time.time()
        time.sleep(SETTLE)
        self.settle(dbname, started, registered)

    def drop_pool(self) -> None:
        """PgBouncer closes its server connections to the database (they stay 10 minutes
        idle otherwise, and would be counted with the next route's)."""
        with self.bouncer.admin() as conn:
            conn.execute(f"KILL {DBNAME}")
            conn.execute(f"RESUME {DBNAME}")
        wait_for(lambda: self.connections(DBNAME) == 0, 30, "PgBouncer's connections to end")

    def run_pgqueuer(self, n: int, command: list[str]) -> dict[str, Any]:
        """As ``run_queuejob``, without the application jobs."""
        record: dict[str, Any] = {"system": "pgqueuer", "route": "direct", "workers": n}
        groups = [self.pgqueuer_group(n, command, "idle"),
                  self.pgqueuer_group(n, command, "drain")]
        url = config.pg_url(PGQ_DBNAME)
        try:
            pgutil.truncate_all(url)
            group = groups[0]
            started = time.time()
            group.start()
            wait_for(lambda: self.connections(PGQ_DBNAME) >= n, 120,
                     f"{n} PGQueuer connections", group.check, step=0.5)
            self.settled(PGQ_DBNAME, started)
            say(f"pgqueuer direct N={n}: idle {self.args.idle:g}s")
            record["idle"] = self.idle(group, n, PGQ_DBNAME, "direct")
            say(f"pgqueuer direct N={n}: trickle {self.args.trickle:g}s")
            record["trickle"] = self.trickle(self.trickle_pgqueuer, PGQ_DBNAME,
                                             record["idle"]["xacts_per_s"], group)
            group.stop()
            self.done_file.unlink(missing_ok=True)
            pgutil.truncate_all(url)
            pgq_helper("bulk", str(self.args.jobs))
            pgutil.execute(url, "ANALYZE")
            say(f"pgqueuer direct N={n}: drain of {self.args.jobs}")
            record["drain"] = self.drain(groups[1], self.args.jobs, PGQ_DBNAME, "direct")
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            say(f"pgqueuer N={n}: FAILED: {record['error']}")
        finally:
            for group in groups:
                group.stop()
            record["warnings"] = [warning for group in groups for warning in group.warnings()]
        return record


# -- PGQueuer's side, run by the peers' Python -------------------------------------------
def pgq_helper(*argv: str) -> str:
    """Run this module's PGQueuer helper with the peers' Python; its output."""
    done = subprocess.run([str(PEERS_PYTHON), "-m", "bench.scale", "--pgq-helper", *argv],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise RuntimeError(f"PGQueuer helper {' '.join(argv)} failed: {done.stderr[-1500:]}")
    return done.stdout


def helper_main(argv: list[str]) -> None:
    """setup | command | bulk N | trickle SECONDS (in the peers' virtualenv)."""
    from bench.peers.pgqueuer import Pgqueuer
    system = Pgqueuer()
    action = argv[0]
    if action == "command":
        print(json.dumps(system.worker_command()))
        return

    async def run() -> None:
        await system.setup()
        try:
            if action == "bulk":
                count = int(argv[1])
                for start in range(0, count, CHUNK):
                    await system.enqueue_bulk(min(CHUNK, count - start))
            elif action == "trickle":
                count = round(float(argv[1]) / INTERVAL)
                print("ready", flush=True)
                sys.stdin.readline()
                started, committed = time.monotonic(), {}
                for index in range(count):
                    await asyncio.sleep(max(0.0, started + index * INTERVAL - time.monotonic()))
                    enqueued_at = time.time()
                    await system.enqueue_latency(enqueued_at)
                    committed[f"{enqueued_at:.6f}"] = time.time()
                print(json.dumps(committed), flush=True)
        finally:
            await system.teardown()

    asyncio.run(run())


# -- output ------------------------------------------------------------------------------------
def worker_options(args: argparse.Namespace) -> list[str]:
    """The queuejob workers' rules: ``--channels`` (for all of them together, root:8 by
    default; none when empty) and ``--concurrency`` (each process's own bound)."""
    return ([*(["--channels", args.channels] if args.channels else []),
             *(["--concurrency", str(args.concurrency)] if args.concurrency else [])])


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def label(record: dict[str, Any]) -> list[str]:
    return [record["system"], ROUTE_LABELS[record["route"]], str(record["workers"])]


def table(title: str, note: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", note, "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def tables(records: list[dict[str, Any]], args: argparse.Namespace) -> str:
    key = ["system", "route", "N"]
    parts = []
    rows = []
    for r in records:
        if "idle" in r:
            i = r["idle"]
            rows.append([*label(r),
                fmt(i["xacts_per_s_per_worker"], 2), fmt(i["worker_cpu_pct_per_worker"], 3),
                fmt(i["server_cpu_pct"], 2), fmt(i["server_connections"], 0),
                fmt(i.get("bouncer_clients"), 0), fmt(i.get("bouncer_cpu_pct"), 2)])
    parts.append(table(
        "Idle", f"Over {args.idle:g} s, N processes started on an empty queue, once every "
        f"one registered, {SETTLE:g} s more and their counts reported. Targets: at "
        "most 0.5 server transactions/s and 0.2% of a core per idle worker.",
        [*key, "server tx/s per worker", "worker CPU % of a core, per worker",
               "server CPU % of a core, all backends", "server connections",
               "PgBouncer clients", "PgBouncer CPU %"], rows))
    rows = []
    for r in records:
        if "trickle" in r:
            t = r["trickle"]
            rows.append([*label(r),
                fmt(t["jobs"]), fmt(t.get("xacts_per_job_in_all"), 2),
                fmt(t.get("xacts_per_job_beyond_idle"), 2), fmt(t["latency_p50_ms"], 1),
                fmt(t["latency_p99_ms"], 1), fmt(t["latency_max_ms"], 1),
                fmt(t["from_commit_p50_ms"], 1), fmt(t["from_commit_p99_ms"], 1)])
    parts.append(table(
        "Trickle", f"One job per transaction every {INTERVAL * 1000:g} ms for "
        f"{args.trickle:g} s, the workers idle. Server transactions per job, the inserts "
        "included: in all (the idle workers' own during the trickle too) and beyond the idle "
        "rate; start latency from just before the enqueue to the job's first line, and from "
        "the enqueue's commit (its return) to it. Targets: "
        "at most 4 transactions per job in all, whatever N; median from the commit within "
        "10 ms.",
        [*key, "jobs", "server tx/job in all", "server tx/job beyond idle",
               "latency p50 ms", "p99 ms", "max ms", "from commit p50 ms", "p99 ms"], rows))
    rows = []
    for r in records:
        if "drain" in r:
            d = r["drain"]
            rows.append([*label(r),
                fmt(d["jobs"]), fmt(d["jobs_per_s"], 0), fmt(d["startup_s"], 1),
                fmt(d["drain_jobs_per_s"], 0), fmt(d["server_cpu_us_per_job"], 0),
                fmt(d["worker_cpu_us_per_job"], 0), fmt(d["active_backends_mean"], 1),
                fmt(d["lock_waiting_backends_mean"], 1),
                fmt(d.get("bouncer_waiting_clients_mean"), 1),
                fmt(d.get("bouncer_cpu_us_per_job"), 0)])
    parts.append(table(
        "Drain", f"queuejob workers: `{' '.join(worker_options(args)) or 'defaults'}`. "
        "No-op jobs queued in bulk, then the workers started; jobs/s from the spawn "
        "to the last job (start-up included), and after the first job. CPU per job: the "
        "database's backends, the worker processes (start-up included), PgBouncer. Backends: "
        "running a statement, and waiting on a lock (mean of looks every 0.2 s).",
        [*key, "jobs", "jobs/s", "start-up s", "jobs/s after start-up",
               "server CPU µs/job", "worker CPU µs/job", "active backends",
               "backends waiting on a lock", "PgBouncer clients waiting",
               "PgBouncer CPU µs/job"], rows))
    rows = []
    for r in records:
        if "app" in r:
            a = r["app"]
            rows.append([*label(r),
                fmt(a["jobs"]), fmt(a["before"]), fmt(a["peak"]), fmt(a["after"]),
                fmt(a.get("clients_before")), fmt(a.get("clients_peak")),
                fmt(a.get("clients_after"))])
    parts.append(table(
        "Connections under application jobs",
        f"Jobs that use their session (a row read, then {APP_JOB_SECONDS * 1000:g} ms in "
        f"their transaction), {CHANNELS} (8 at once in all). Server connections to the "
        f"database before, at the peak, and {args.app_after:g} s after the last job; "
        "through PgBouncer its clients too.",
        [*key, "jobs", "server conns before", "peak", f"{args.app_after:g} s after",
               "PgBouncer clients before", "peak", "after"], rows))
    failed = [f"- {' / '.join(label(r))}: {r['error']}" for r in records if "error" in r]
    if failed:
        parts.append("### Failures\n\n" + "\n".join(failed) + "\n")
    return "\n".join(parts)


def write(out: Path, records: list[dict[str, Any]], args: argparse.Namespace,
          info: dict[str, Any]) -> str:
    text = tables(records, args)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.scale " + " ".join(sys.argv[1:])
    source = info.get("queuejob_source") or {}
    changed = source.get("commit") != (info.get("queuejob_source_end") or source).get("commit")
    header = (f"# Many workers on one PostgreSQL\n\n`{command.strip()}`, "
              f"{info.get('date', '')}, {info.get('duration_s', 0) / 60:.1f} min; "
              f"queuejob at {source.get('commit')}"
              f"{' (src/ modified)' if source.get('src_modified') else ''}"
              f"{' (a new commit during the run)' if changed else ''}; "
              f"{info.get('cpus')} CPUs, PostgreSQL "
              f"{(info.get('postgresql') or {}).get('server_version', '?')} (fsync on, "
              f"max_connections {args.max_connections}, autovacuum off), "
              f"{info.get('pgbouncer', 'PgBouncer ?')} (transaction mode, default_pool_size "
              f"20, max_client_conn {ScaleBouncer.MAX_CLIENT_CONN}).\n\n")
    (out / "scale.md").write_text(header + text)
    raw = json.dumps(
        {"settings": {key: value for key, value in vars(args).items() if key != "pgq_helper"},
         "environment": info, "results": records}, indent=1, default=str)
    # paths relative to the repository: the file says nothing of the machine's folders
    (out / "scale.json").write_text(raw.replace(f"{ROOT}/", "").replace(str(ROOT), ".")
                                    + "\n")
    return text


# -- main ----------------------------------------------------------------------------------
def has_processes() -> bool:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(ROOT / "src"), str(ROOT))))
    out = subprocess.run([sys.executable, "-m", "queuejob", "worker", "--help"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    return "--processes" in out.stdout


def peers_ready() -> str | None:
    """None when the peers' virtualenv has PGQueuer, else why not."""
    if not PEERS_PYTHON.exists():
        return f"{PEERS_PYTHON} missing (bench/run.sh makes it)"
    found = subprocess.run([str(PEERS_PYTHON), "-c", "import pgqueuer, asyncpg"],
                           capture_output=True, text=True, check=False)
    return None if found.returncode == 0 else f"PGQueuer not importable: {found.stderr[-300:]}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default=None,
                        help="worker processes per measurement, a list [1,8,32,64; quick 1,8]")
    parser.add_argument("--jobs", type=int, default=None,
                        help="no-op jobs of a drain [20000; quick 1000]")
    parser.add_argument("--quick", action="store_true",
                        help="workers 1,8, drains of 1,000 jobs, idle 10 s, trickle 5 s, 100 "
                             "application jobs, their connections counted 5 s after")
    parser.add_argument("--no-peers", action="store_true", help="queuejob only")
    parser.add_argument("--routes", default=",".join(ROUTES),
                        help=f"queuejob's routes [{','.join(ROUTES)}]")
    parser.add_argument("--idle", type=float, default=None, help="idle window, s [20; quick 10]")
    parser.add_argument("--trickle", type=float, default=None,
                        help="trickle duration, s [10; quick 5]")
    parser.add_argument("--app-jobs", type=int, default=None,
                        help="application jobs [400; quick 100]")
    parser.add_argument("--app-after", type=float, default=None,
                        help="seconds after the last application job the connections are "
                             "counted [15; quick 5]")
    parser.add_argument("--channels", default=CHANNELS,
                        help=f"the queuejob workers' --channels, rules for all of them "
                             f"together (empty: none) [{CHANNELS}]")
    parser.add_argument("--concurrency", type=int, default=0,
                        help="the queuejob workers' --concurrency, each process's own "
                             "bound [their default]")
    parser.add_argument("--max-connections", type=int, default=400)
    parser.add_argument("--out", type=Path, default=None,
                        help="where scale.md and scale.json go [bench/results; quick: "
                             "bench/results/tmp, not to overwrite a full run's]")
    parser.add_argument("--pgq-helper", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.workers = [int(n) for n in (args.workers or ("1,8" if quick else "1,8,32,64"))
                    .split(",") if n.strip()]
    args.jobs = args.jobs or (1_000 if quick else 20_000)
    args.idle = args.idle or (10.0 if quick else 20.0)
    args.trickle = args.trickle or (5.0 if quick else 10.0)
    args.app_jobs = args.app_jobs or (100 if quick else 400)
    args.app_after = args.app_after if args.app_after is not None else (5.0 if quick else 15.0)
    args.out = args.out or config.BENCH / "results" / ("tmp" if quick else "")
    args.routes = [route for route in args.routes.split(",") if route]
    for route in args.routes:
        if route not in ROUTES:
            parser.error(f"unknown route {route!r}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.pgq_helper:
        helper_main(args.pgq_helper)
        return
    routes = list(args.routes)
    notes = []
    if "processes" in routes and not has_processes():
        routes.remove("processes")
        notes.append("this tree's `queuejob worker` has no --processes: that route skipped")
    peers = None if args.no_peers else peers_ready()
    if peers is not None:
        notes.append(f"PGQueuer not measured: {peers}")
    for note in notes:
        say(note)
    server = bouncer = bench = None
    records: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="queuejob-scale-") as tmp:
        try:
            server = ScalePostgres(args.max_connections).start()
            server.create_database(DBNAME)
            bouncer = ScaleBouncer(server, dbnames=(DBNAME,)).start()
            os.environ["QUEUEJOB_BENCH_PG"] = server.url("").rstrip("/")
            bench = Scale(args, server, bouncer, Path(tmp))
            info = envinfo.collect(types.SimpleNamespace(postgres=server, redis=None))
            info["pgbouncer"] = bouncer.show("VERSION")[0].get("version", "?")
            info["notes"] = notes
            pgq_command = None
            if not args.no_peers and peers is None:
                pgq_helper("setup")
                pgq_command = json.loads(pgq_helper("command"))
                info["pgqueuer_command"] = pgq_command
            for n in args.workers:
                plan = [("queuejob", route) for route in routes
                        if not (route == "processes" and n == 1)]
                if pgq_command is not None:
                    plan.append(("pgqueuer", "direct"))
                for system, route in plan:
                    record = bench.run_queuejob(route, n) if system == "queuejob" \
                        else bench.run_pgqueuer(n, pgq_command)
                    records.append(record)
                    info["duration_s"] = time.monotonic() - STARTED
                    write(args.out, records, args, info)
        finally:
            if bench is not None:
                with contextlib.suppress(Exception):
                    bench.monitor.close()
                with contextlib.suppress(Exception):
                    bench.db.close()
            if bouncer is not None:
                bouncer.stop()
            if server is not None:
                server.stop()
    info["duration_s"] = time.monotonic() - STARTED
    # others may change the tree meanwhile: each group of workers ran the code of its start
    info["queuejob_source_end"] = envinfo.queuejob_source()
    print(write(args.out, records, args, info))
    warned = [(r, w) for r in records for w in r.get("warnings", [])]
    if warned:
        print("Warnings the workers logged:")
        for record, warning in warned:
            print(f"- {' / '.join(label(record))}: {warning}")
    print(f"Took {info['duration_s'] / 60:.1f} min; written to {args.out}/scale.md and "
          "scale.json")


if __name__ == "__main__":
    main()
