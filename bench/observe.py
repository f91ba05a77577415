"""What watching jobs costs: progress reports and the capture of what jobs log.

    python -m bench.observe --backend sqlite
    python -m bench.observe --backend postgresql      # starts a throw-away PostgreSQL

The worker is the real ``queuejob worker`` process (one, ``--concurrency 8``, as
bench.flow starts it); ``--jobs`` (10,000) jobs enqueued with ``delay_many`` before it
starts. Variants, in turn within each of ``--rounds`` rounds (their order rotated):

- ``noop``: no-op jobs (they report nothing, log nothing);
- ``progress``: each job reports its progress 10 times (at most one write a second
  per job reaches the database: here, the last report of each, with its outcome);
- ``log``: each job logs 3 lines (kept with its attempt, written with its outcome).

Figures: the drain rate (median of the rounds) and its ratio to ``noop`` within each
round. And what a job that reports nothing and logs nothing pays for both features,
whatever the database: the worker's per-attempt work (the capture context entered and
left, the progress of an ended attempt looked up) timed in this process over 200,000
attempts, in microseconds, beside the worker's CPU per no-op job of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import jobs  # noqa: E402
from bench.flow import environment, median_of, rotated, show  # noqa: E402
from bench.quick import Bench, database  # noqa: E402

CONCURRENCY = 8
CHUNK = 10_000
#: variant -> (job function, its arguments after model_name)
VARIANTS: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "noop": (jobs.noop, ()),
    "progress": (jobs.reporting, (10,)),
    "log": (jobs.logging_noop, (3,)),
}
PER_ATTEMPT_SAMPLES = 200_000


class ObserveBench(Bench):
    def __init__(self, url: str, workdir: Path) -> None:
        super().__init__(url, workdir, concurrency=CONCURRENCY)

    def variant(self, name: str, count: int) -> dict:
        func, args = VARIANTS[name]
        self.reset()
        for start in range(0, count, CHUNK):
            with self.db.session() as session:
                func.delay_many(session, [(None, *args)] * min(CHUNK, count - start))
        self.analyze()
        return self.drain(count)


def per_attempt_us() -> float:
    """Microseconds a worker spends per attempt on capture and progress, for a job that
    reports nothing and logs nothing."""
    from queuejob.worker.joblog import capturing, install, uninstall
    from queuejob.worker.progress import ProgressReports
    reports = ProgressReports(lambda: None)
    install()
    try:
        started = time.perf_counter()
        for number in range(PER_ATTEMPT_SAMPLES):
            with capturing() as capture:
                pass
            _ = capture.log
            reports.due([("job", number)])
        return (time.perf_counter() - started) / PER_ATTEMPT_SAMPLES * 1e6
    finally:
        uninstall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="use this database instead of a fresh one "
                        "(its jobs are deleted)")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if min(args.jobs, args.rounds) < 1:
        parser.error("--jobs and --rounds must be at least 1")
    with database(args.backend, args.url) as (url, workdir):
        bench = ObserveBench(url, workdir)
        try:
            env = environment(bench)  # type: ignore[arg-type]
            runs: dict[str, list[dict]] = {}
            for number in range(args.rounds):
                for name in rotated(list(VARIANTS), number):
                    runs.setdefault(name, []).append(bench.variant(name, args.jobs))
            results = [{"backend": args.backend, **env}]
            for name in VARIANTS:
                result: dict[str, Any] = {"backend": args.backend, "measure": name,
                                          **median_of(runs[name]),
                                          "drain_rounds": [round(run["drain_jobs_per_s"], 1)
                                                           for run in runs[name]]}
                if name != "noop":
                    each = [run["drain_jobs_per_s"] / base["drain_jobs_per_s"]
                            for run, base in zip(runs[name], runs["noop"], strict=True)]
                    result["ratio_to_noop"] = statistics.median(each)
                    result["ratio_rounds"] = [round(value, 3) for value in each]
                results.append(result)
            noop_cpu = median_of(runs["noop"])["worker_cpu_us_per_job"]
            cost = per_attempt_us()
            results.append({"backend": args.backend, "measure": "per_attempt",
                            "capture_and_progress_us": cost,
                            "worker_cpu_us_per_noop_job": noop_cpu,
                            "percent_of_noop_job": 100 * cost / noop_cpu if noop_cpu else None})
            for result in results:
                show(result, args.json)
        finally:
            bench.db.close()


if __name__ == "__main__":
    main()
