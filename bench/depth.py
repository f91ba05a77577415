"""Costs against the history kept: the same queue with 0, 1 and 10 million finished jobs.

    python -m bench.depth                              # both backends, 0 / 1M / 10M
    python -m bench.depth --quick                      # 0 / 200,000: a few minutes
    python -m bench.depth --backend postgresql --depths 0,1000000

For each backend, one database per depth, filled with finished jobs (done, a few
cancelled; six channels, eight functions; finished over the last 30 days, the newest
hour holding a tenth of them, so that the metrics window is busy), then VACUUM ANALYZE
and CHECKPOINT (PostgreSQL) or ANALYZE and a WAL checkpoint (SQLite). Then, in rounds
that interleave the depths (this machine is shared and noisy: only figures of the same
round compare), each depth measures:

- drain: N no-op jobs queued with ``delay_many``, one ``queuejob worker --channels
  root:8`` process (bench.quick's drain: jobs/s after the first job);
- enqueue: jobs/s of ``delay()`` one per transaction;
- start latency: p50/p99 from ``delay()`` to the job's first line, jobs 20 ms apart;
- the faces: the dashboard's overview (``/``), ``/channels`` and the Prometheus
  ``/metrics`` scrape, served by uvicorn: median server time (Server-Timing) of 3 GETs
  after one to warm up.

Each depth's drain is reported as a ratio to the empty database's in the same round.
Last, for each depth that has history, the drain again while the worker removes expired
jobs itself (the removal interval set to one day: nine tenths of the history expired),
then while ``queuejob purge --older-than 2h --yes`` removes the history beside it, each
against that depth's median.
Writes ``bench/results/depth.json`` and ``depth.md`` (``--quick``: bench/results/tmp).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import queuejob  # noqa: E402
from bench import jobs  # noqa: E402
from bench.dashboard import Server  # noqa: E402
from bench.quick import Bench, percentile  # noqa: E402

CHANNELS = ["root", "root.import", "root.export", "root.export.eu", "root.mail",
            "root.reports"]
PAGES = [("overview", "/"), ("channels", "/channels"), ("metrics", "/metrics")]

# i = 1..count: finished over the last 30 days (the newest tenth within the last hour)
POSTGRES_FILL = """
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, retry, attempt, date_created, date_enqueued,
                       date_started, date_done, date_cancelled, exec_time, result)
SELECT gen_random_uuid(), CASE WHEN i %% 50 = 0 THEN 'cancelled' ELSE 'done' END,
       'app.jobs.task_' || (i %% 8), NULL, '[' || i || ']', '{}', 'Job number ' || i,
       (ARRAY['root', 'root.import', 'root.export', 'root.export.eu', 'root.mail',
              'root.reports'])[i %% 6 + 1],
       10, 5, 1, 1, t - interval '1 s', t - interval '1 s', t - interval '0.5 s', t,
       CASE WHEN i %% 50 = 0 THEN t END, 0.5, 'null'
FROM generate_series(1, %(count)s) AS i,
     LATERAL (SELECT CASE WHEN i > %(count)s * 9 / 10
                          THEN now() - (%(count)s - i) * (interval '1 hour' / %(count)s * 10)
                          ELSE now() - interval '1 hour' - (%(count)s * 9 / 10 - i)
                               * (interval '29 days' / (%(count)s * 9 / 10 + 1)) END AS t)
         AS times
"""

SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count),
     timed(i, t) AS (
        SELECT i, CASE WHEN i > :count * 9 / 10
                       THEN :now - (:count - i) * (3600.0 / (:count / 10))
                       ELSE :now - 3600.0 - (:count * 9 / 10 - i)
                            * (29 * 86400.0 / (:count * 9 / 10 + 1)) END FROM n)
INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, description, channel,
                       priority, max_retries, retry, attempt, date_created, date_enqueued,
                       date_started, date_done, date_cancelled, exec_time, result)
SELECT printf('%08x-0000-4000-8000-%012x', i, i),
       CASE WHEN i % 50 = 0 THEN 'cancelled' ELSE 'done' END,
       'app.jobs.task_' || (i % 8), NULL, '[' || i || ']', '{}', 'Job number ' || i,
       CASE i % 6 WHEN 0 THEN 'root' WHEN 1 THEN 'root.import' WHEN 2 THEN 'root.export'
       WHEN 3 THEN 'root.export.eu' WHEN 4 THEN 'root.mail' ELSE 'root.reports' END,
       10, 5, 1, 1, t - 1.0, t - 1.0, t - 0.5, t, CASE WHEN i % 50 = 0 THEN t END, 0.5, 'null'
FROM timed
"""


def fill(db: queuejob.Database, count: int) -> float:
    """``count`` finished jobs, then the statistics and a checkpoint; seconds taken."""
    started = time.monotonic()
    if not count:
        return 0.0
    if db.dialect == "sqlite":
        db.run(lambda conn: db.connector.execute_sql(
            conn, SQLITE_FILL, {"count": count, "now": time.time()}))
        conn = db.connector.connect()
        try:
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        db.run(lambda conn: db.connector.execute_sql(conn, POSTGRES_FILL, {"count": count}))
        conn = db.connector.connect(autocommit=True)
        try:
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")
        finally:
            conn.close()
    return time.monotonic() - started


class Depth:
    """One database holding ``depth`` finished jobs."""

    def __init__(self, url: str, depth: int, workdir: Path) -> None:
        self.depth = depth
        self.workdir = workdir
        self.bench = Bench(url, workdir, concurrency=8, channels="root:8")
        self.db = self.bench.db
        self.fill_seconds = fill(self.db, depth)

    def use(self) -> None:
        """Point the jobs' completion files at this database's folder."""
        for name, env in (("done", "QUEUEJOB_BENCH_DONE"), ("latency", "QUEUEJOB_BENCH_LATENCY")):
            path = self.workdir / name
            path.unlink(missing_ok=True)
            os.environ[env] = str(path)
        jobs._DONE = os.environ["QUEUEJOB_BENCH_DONE"]

    def drain(self, count: int) -> dict[str, Any]:
        self.use()
        with self.db.session() as session:
            jobs.noop.delay_many(session, [(None,)] * count)
        self.bench.analyze()
        return self.bench.drain(count)

    def drain_while_expiring(self, count: int) -> dict[str, Any]:
        """The drain while the worker itself removes expired history: the channels'
        removal interval set to one day (nine tenths of the history expired), three
        times ``count`` jobs, since the worker's first removal comes 10 s after its
        start. Also how many finished jobs it removed meanwhile."""
        before = self.finished()
        self.bench.channels = "root:8:removal_interval=1"
        try:
            result = self.drain(3 * count)
        finally:
            self.bench.channels = "root:8"
        result["removed"] = before + 3 * count - self.finished()
        return result

    def drain_while_purging(self, count: int) -> dict[str, Any]:
        """The drain while ``queuejob purge`` removes every finished job older than two
        hours (nine tenths of the history) beside it, a thousand per transaction."""
        self.use()
        with self.db.session() as session:
            jobs.noop.delay_many(session, [(None,)] * count)
        self.bench.analyze()
        purge = subprocess.Popen(
            [sys.executable, "-m", "queuejob", "purge", "--db", self.bench.url,
             "--older-than", "2h", "--yes"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            time.sleep(1.0)  # its count done, its removal under way
            result = self.bench.drain(count)
            result["purge_still_running"] = purge.poll() is None
        finally:
            purge.terminate()  # resumable: what it removed stays removed
            output = purge.communicate(timeout=120)[0].decode()
        result["purge_output"] = output.strip().splitlines()[-1:]
        return result

    def enqueue(self, count: int) -> float:
        started = time.perf_counter()
        for _ in range(count):
            with self.db.session() as session:
                jobs.noop.delay(session, None)
        seconds = time.perf_counter() - started
        # run them, so that the next measure starts from an empty live queue
        self.use()
        self.bench.drain(count)
        return count / seconds

    def latency(self, count: int) -> dict[str, float]:
        self.use()
        process = self.bench.spawn_worker()
        latency_file = self.workdir / "latency"
        try:
            with self.db.session() as session:
                jobs.latency.delay(session, None, time.time())
            wait_for_lines(latency_file, 1)
            latency_file.unlink()
            time.sleep(1.0)  # idle: the worker waits for a wake-up
            for _ in range(count):
                with self.db.session() as session:
                    jobs.latency.delay(session, None, time.time())
                time.sleep(0.02)
            lines = wait_for_lines(latency_file, count)
        finally:
            self.bench.stop(process)
        delays = [(float(b) - float(a)) * 1000 for a, b in (line.split() for line in lines)]
        return {"p50_ms": percentile(delays, 0.5), "p99_ms": percentile(delays, 0.99)}

    def pages(self, repeat: int = 3) -> dict[str, float]:
        out = {}
        with Server(self.db) as server:
            for name, path in PAGES:
                server.get(path)
                out[name] = statistics.median(server.get(path)[0] for _ in range(repeat))
        return out

    def finished(self) -> int:
        counts = queuejob.operations.stats(self.db)
        return sum(by_state.get("done", 0) + by_state.get("cancelled", 0)
                   for by_state in counts.values())


def wait_for_lines(path: Path, count: int, timeout: float = 120.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(lines)}/{count} latency jobs ran")
        time.sleep(0.02)


@contextlib.contextmanager
def databases(backend: str, depths: list[int], tmp: Path):
    server = None
    try:
        if backend == "postgresql":
            from tests.pgserver import PostgresServer
            server = PostgresServer(fast=False).start()
        made = []
        for depth in depths:
            workdir = tmp / f"{backend}-{depth}"
            workdir.mkdir()
            url = server.create_database(f"depth{depth}") if server is not None \
                else f"sqlite:///{workdir}/jobs.db"
            print(f"{backend}: filling {depth:,} finished jobs ...", flush=True)
            made.append(Depth(url, depth, workdir))
            print(f"  filled in {made[-1].fill_seconds:.0f} s", flush=True)
        yield made
        for item in made:
            item.db.close()
    finally:
        if server is not None:
            server.stop()


def run(backend: str, depths: list[int], rounds: int, jobs_count: int) -> list[dict]:
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="queuejob-depth-") as tmp, \
            databases(backend, depths, Path(tmp)) as made:
        for number in range(rounds):
            for item in made if number % 2 == 0 else list(reversed(made)):
                drain = item.drain(jobs_count)
                row = {"backend": backend, "depth": item.depth, "round": number + 1,
                       "drain_jobs_per_s": drain["drain_jobs_per_s"],
                       "worker_cpu_us_per_job": drain["worker_cpu_us_per_job"],
                       "server_cpu_us_per_job": drain.get("server_cpu_us_per_job"),
                       "enqueue_jobs_per_s": item.enqueue(1000),
                       **item.latency(100), **{f"{name}_ms": ms for name, ms in
                                               item.pages().items()},
                       "finished_kept": item.finished()}
                results.append(row)
                show(row)
        # then (they remove most of the history): the drain while the worker removes
        # expired jobs, and while a purge runs beside it
        for item in made:
            if item.depth:
                drain = item.drain_while_expiring(jobs_count)
                row = {"backend": backend, "depth": item.depth, "round": "expiry",
                       "drain_jobs_per_s": drain["drain_jobs_per_s"],
                       "removed": drain["removed"]}
                results.append(row)
                show(row)
        for item in made:
            if item.depth:
                drain = item.drain_while_purging(jobs_count)
                row = {"backend": backend, "depth": item.depth, "round": "purge",
                       "drain_jobs_per_s": drain["drain_jobs_per_s"],
                       "purge_still_running": drain["purge_still_running"],
                       "purge_output": drain["purge_output"]}
                results.append(row)
                show(row)
    return results


def show(row: dict) -> None:
    print(json.dumps({key: round(value, 1) if isinstance(value, float) else value
                      for key, value in row.items()}), flush=True)


def table(results: list[dict]) -> str:
    lines = ["| backend | finished kept | drain jobs/s (vs empty, same round) | enqueue jobs/s "
             "| start p50 / p99 ms | overview ms | /channels ms | /metrics ms |",
             "|---|---|---|---|---|---|---|---|"]
    purges = [row for row in results if row["round"] in ("expiry", "purge")]
    results = [row for row in results if row["round"] not in ("expiry", "purge")]
    base = {(row["backend"], row["round"]): row["drain_jobs_per_s"]
            for row in results if row["depth"] == 0}
    for backend in dict.fromkeys(row["backend"] for row in results):
        for depth in dict.fromkeys(row["depth"] for row in results if row["backend"] == backend):
            rows = [row for row in results if row["backend"] == backend and row["depth"] == depth]
            ratios = [row["drain_jobs_per_s"] / base[(backend, row["round"])] for row in rows
                      if (backend, row["round"]) in base]

            def med(key: str, rows: list[dict] = rows) -> float:
                return statistics.median(row[key] for row in rows)
            lines.append(
                f"| {backend} | {depth:,} | {med('drain_jobs_per_s'):,.0f} "
                f"({', '.join(f'{ratio:.2f}' for ratio in ratios)}) "
                f"| {med('enqueue_jobs_per_s'):,.0f} | {med('p50_ms'):.1f} / "
                f"{med('p99_ms'):.1f} | {med('overview_ms'):.0f} | {med('channels_ms'):.0f} "
                f"| {med('metrics_ms'):.0f} |")
    if purges:
        lines += ["", "| backend | finished kept | removal beside the drain | drain jobs/s "
                  "(vs its rounds' median) | removal |", "|---|---|---|---|---|"]
    for row in purges:
        plain = statistics.median(other["drain_jobs_per_s"] for other in results
                                  if other["backend"] == row["backend"]
                                  and other["depth"] == row["depth"])
        if row["round"] == "expiry":
            kind, removal = "the worker's own (removal_interval=1)", \
                f"{row['removed']:,} removed meanwhile"
        else:
            kind = "queuejob purge --older-than 2h"
            removal = "still running at the end" if row["purge_still_running"] \
                else "over before the end"
        lines.append(f"| {row['backend']} | {row['depth']:,} | {kind} | "
                     f"{row['drain_jobs_per_s']:,.0f} ({row['drain_jobs_per_s'] / plain:.2f}) "
                     f"| {removal} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--depths", default=None,
                        help="finished jobs kept, comma-separated (default 0,1000000,10000000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20000, help="jobs per drain")
    parser.add_argument("--name", default="depth",
                        help="the results' file name (default depth: depth.json, depth.md)")
    parser.add_argument("--quick", action="store_true",
                        help="0 and 200,000 finished jobs, 2 rounds of 10,000-job drains")
    args = parser.parse_args()
    depths = [int(depth) for depth in (args.depths or (
        "0,200000" if args.quick else "0,1000000,10000000")).split(",")]
    if 0 not in depths:
        depths.insert(0, 0)
    rounds, count = (2, 10000) if args.quick else (args.rounds, args.jobs)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        results += run(backend, depths, rounds, count)
    out = ROOT / "bench" / "results" / ("tmp" if args.quick else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    (out / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
