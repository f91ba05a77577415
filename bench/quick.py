"""Quick benchmark of queuejob alone: enqueue, processing and start latency.

    python -m bench.quick --backend sqlite            # embedded SQLite
    python -m bench.quick --backend postgresql        # starts a throw-away PostgreSQL
    python -m bench.quick --backend postgresql --stale-statistics   # as after a burst

Prints one line per measure. For no-op jobs; the worker is the real
``queuejob worker`` process, started by this script with ``--concurrency 64`` (the
jobs one process runs at once) and no channel rule; ``--channels`` gives it rules,
which hold for all workers (the processing with 2 workers too). Completion is counted
outside queuejob (a byte appended per job). Where the time goes, from /proc (Linux):
CPU microseconds per job of the enqueuing client, of the worker processes (their
start-up included) and, on PostgreSQL, of the server's backends for the benchmark's
database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import queuejob  # noqa: E402
from bench import jobs  # noqa: E402
from bench.cpu import cpu_seconds, server_cpu_seconds  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    position = (len(values) - 1) * q
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class Bench:
    def __init__(self, url: str, workdir: Path, concurrency: int = 64,
                 channels: str = "") -> None:
        self.url = url
        self.workdir = workdir
        #: the worker's --concurrency (jobs one process runs at once) and --channels
        #: (rules for all workers; passed only when not empty)
        self.concurrency = concurrency
        self.channels = channels
        self.done_file = workdir / "done"
        self.latency_file = workdir / "latency"
        os.environ["QUEUEJOB_BENCH_DONE"] = str(self.done_file)
        os.environ["QUEUEJOB_BENCH_LATENCY"] = str(self.latency_file)
        jobs._DONE = str(self.done_file)
        self.db = queuejob.open(url)
        self.dbname = url.rsplit("/", 1)[-1] if self.db.dialect == "postgresql" else ""

    def server_cpu(self) -> float:
        return server_cpu_seconds(self.dbname) if self.dbname else 0.0

    def reset(self) -> None:
        self.db.run(lambda conn: [self.db.connector.execute_sql(conn, sql) for sql in (
            "DELETE FROM queue_job", "DELETE FROM queue_worker", "DELETE FROM queue_channel",
            "DELETE FROM queue_rate_start")])
        for path in (self.done_file, self.latency_file):
            path.unlink(missing_ok=True)

    def spawn_worker(self) -> subprocess.Popen:
        # the workers run this tree's queuejob, whatever is installed
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")) if p))
        command = [sys.executable, "-m", "queuejob", "worker", "--db", self.url,
                   "--concurrency", str(self.concurrency), "--module", "bench.jobs",
                   "--log-level", "WARNING"]
        if self.channels:
            command += ["--channels", self.channels]
        return subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def enqueue_single(self, count: int) -> dict:
        self.reset()
        started = time.perf_counter()
        client, server = time.process_time(), self.server_cpu()
        for _ in range(count):
            with self.db.session() as session:
                jobs.noop.delay(session, None)
        seconds = time.perf_counter() - started
        result = {"measure": "enqueue_single", "jobs": count, "seconds": seconds,
                  "jobs_per_s": count / seconds,
                  "client_cpu_us_per_job": (time.process_time() - client) / count * 1e6}
        if self.dbname:
            result["server_cpu_us_per_job"] = (self.server_cpu() - server) / count * 1e6
        return result

    def process(self, count: int, workers: int, stale: bool = False) -> dict:
        """Drain ``count`` jobs with ``workers`` processes. ``stale``: with the planner
        statistics of the empty queue, as autovacuum leaves them for up to a minute after
        a burst of delays (PostgreSQL; autovacuum held off on the table meanwhile)."""
        self.reset()
        if stale:
            self.autovacuum(False)
        try:
            if stale:
                self.analyze()
            with self.db.session() as session:
                for _ in range(count):
                    jobs.noop.delay(session, None)
            if not stale:
                self.analyze()
            return {"measure": f"process_w{workers}" + ("_stale" if stale else ""),
                    **self.drain(count, workers)}
        finally:
            if stale:
                self.autovacuum(True)

    def autovacuum(self, enabled: bool) -> None:
        """Hold autovacuum off the table of unfinished jobs, or give it back its own
        setting (PostgreSQL)."""
        if self.db.dialect == "postgresql":
            sql = ("ALTER TABLE queue_job_live RESET (autovacuum_enabled)" if enabled else
                   "ALTER TABLE queue_job_live SET (autovacuum_enabled = false)")
            self.db.run(lambda conn: self.db.connector.execute_sql(conn, sql))

    def analyze(self) -> None:
        """Fresh planner statistics after a bulk enqueue (PostgreSQL)."""
        if self.db.dialect == "postgresql":
            self.db.run(lambda conn: self.db.connector.execute_sql(conn, "ANALYZE queue_job"))

    def drain(self, count: int, workers: int = 1, timeout: float = 300,
              during: Callable[[int], object] | None = None) -> dict:
        """Spawn ``workers`` worker processes on the queued jobs and wait until ``count``
        jobs are done (counted in the done file); then stop them. The figures: seconds
        from the spawn, start-up (spawn to the first job done), drain rate after it, CPU
        per job of the workers (start-up included) and of the server's backends.
        ``during`` is called with the jobs done so far at every look (every 20 ms)."""
        started = time.perf_counter()
        server = self.server_cpu()
        processes = [self.spawn_worker() for _ in range(workers)]
        first = None
        worker_cpu = server_cpu = 0.0
        try:
            while True:
                done = self.done_file.stat().st_size if self.done_file.exists() else 0
                if done and first is None:
                    first = (time.perf_counter(), done)
                if during is not None:
                    during(done)
                if done >= count:
                    # before the workers stop: their connections' backends end with them
                    worker_cpu = sum(cpu_seconds(process.pid) for process in processes)
                    server_cpu = self.server_cpu() - server
                    break
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"timed out with {done}/{count} jobs done")
                for process in processes:
                    if process.poll() is not None:
                        raise RuntimeError(f"worker exited with status {process.returncode}"
                                           f" with {done}/{count} jobs done")
                time.sleep(0.02)
        finally:
            for process in processes:
                self.stop(process)
        seconds = time.perf_counter() - started
        startup = first[0] - started
        drain = (count - first[1]) / max(1e-9, seconds - startup)
        result = {"jobs": count, "seconds": seconds, "jobs_per_s": count / seconds,
                  "startup_s": startup, "drain_jobs_per_s": drain,
                  "worker_cpu_us_per_job": worker_cpu / count * 1e6}
        if self.dbname:
            result["server_cpu_us_per_job"] = server_cpu / count * 1e6
        return result

    def latency(self, count: int = 200, interval: float = 0.02, idle: float = 1.0) -> dict:
        self.reset()
        process = self.spawn_worker()
        try:
            # warm up: one job through the worker, then idle
            with self.db.session() as session:
                jobs.latency.delay(session, None, time.time())
            deadline = time.time() + 60
            while not (self.latency_file.exists() and self.latency_file.stat().st_size):
                if time.time() > deadline:
                    raise RuntimeError("worker did not start")
                time.sleep(0.01)
            self.latency_file.unlink()
            time.sleep(idle)
            for _ in range(count):
                with self.db.session() as session:
                    jobs.latency.delay(session, None, time.time())
                time.sleep(interval)
            deadline = time.time() + 60
            while True:
                lines = self.latency_file.read_text().splitlines() \
                    if self.latency_file.exists() else []
                if len(lines) >= count:
                    break
                if time.time() > deadline:
                    raise RuntimeError(f"only {len(lines)}/{count} latency jobs ran")
                time.sleep(0.02)
        finally:
            self.stop(process)
        delays = [(float(b) - float(a)) * 1000 for a, b in (line.split() for line in lines)]
        return {"measure": "latency", "jobs": count, "p50_ms": percentile(delays, 0.5),
                "p99_ms": percentile(delays, 0.99), "mean_ms": statistics.fmean(delays)}


@contextlib.contextmanager
def database(backend: str, url: str | None = None) -> Iterator[tuple[str, Path]]:
    """A database URL and a scratch directory, removed at the end: ``url`` if given, else
    a new SQLite file or a throw-away PostgreSQL server (fsync on), stopped at the end."""
    server = None
    with tempfile.TemporaryDirectory(prefix="queuejob-bench-") as tmp:
        workdir = Path(tmp)
        if url is None and backend == "sqlite":
            url = f"sqlite:///{workdir}/bench.db"
        elif url is None:
            from tests.pgserver import PostgresServer
            server = PostgresServer(fast=False).start()
            url = server.create_database("bench")
        try:
            yield url, workdir
        finally:
            if server is not None:
                server.stop()


def print_result(result: dict, as_json: bool = False) -> None:
    """One line per measure: ``backend measure key value, ...``, or a JSON object."""
    if as_json:
        print(json.dumps(result), flush=True)
        return
    figures = ", ".join(f"{key} {value:,.1f}" if isinstance(value, float)
                        else f"{key} {value}" for key, value in result.items()
                        if key not in ("measure", "backend"))
    print(f"{result['backend']:10} {result['measure']:15} {figures}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="use this database instead of a fresh one")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64,
                        help="the worker's --concurrency: jobs one process runs at once "
                             "[64, the best setting for no-op jobs]")
    parser.add_argument("--channels", default="",
                        help="the worker's --channels, rules for all workers; passed only "
                             "when given [none]")
    parser.add_argument("--stale-statistics", action="store_true",
                        help="drain with the planner statistics of the empty queue, as "
                             "autovacuum leaves them for up to a minute after a burst "
                             "(PostgreSQL; by default the benchmark analyzes after "
                             "enqueueing)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with database(args.backend, args.url) as (url, workdir):
        bench = Bench(url, workdir, args.concurrency, args.channels)
        try:
            stale = args.stale_statistics
            results = [bench.enqueue_single(args.jobs), bench.process(args.jobs, 1, stale),
                       bench.process(args.jobs, 2, stale), bench.latency()]
        finally:
            bench.db.close()
    for result in results:
        print_result(dict(result, backend=args.backend), args.json)


if __name__ == "__main__":
    main()
