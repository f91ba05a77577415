"""Flow control of channels: what its rules cost, and what fair turns give.

    python -m bench.flow --backend sqlite             # embedded SQLite
    python -m bench.flow --backend postgresql         # starts a throw-away PostgreSQL
    python -m bench.flow --backend sqlite --rounds 1 --flood 5000 --pending 20000

The worker is the real ``queuejob worker`` process, one process with
``--concurrency 8``, started as bench.quick starts it; the rules under test are its
``--channels`` (rules for all workers). The jobs are no-op jobs of bench.jobs in channel
``root.t``, enqueued with ``delay_many`` (10,000 per transaction) before the worker
starts; completion is counted outside queuejob (a byte appended per job). Three
measures, each figure the median of ``--rounds`` interleaved rounds (every round runs
every measure, the variants of a measure in turn, their order rotated between rounds);
ratios are taken within a round, then their median reported:

- overhead: the drain rate of ``--jobs`` (10,000) jobs spread over 100 concurrency keys,
  with no rule, with ``root.t:0:rate=1000000/s`` and with ``root.t:0:key_capacity=1000``
  (neither ever binds); and of the same number of jobs without keys, no rule. The ratio
  to no rule: target at least 0.7 (a rule costs at most 30%).
- keys: ``--pending`` (100,000) pending jobs in ``root.t:0:key_capacity=2``, their keys
  drawn at random among 10 and among 10,000 keys; the worker runs the first ``--starts``
  (5,000). Their drain rate, 10,000 keys against 10: target within 20% (0.8-1.2).
- noisy tenant: one key queues ``--flood`` (50,000) jobs; once the worker has run 1,000
  of them (a tenth of a smaller flood), 20 other keys delay 10 jobs each, one
  transaction per job, taking turns; without a rule and with ``root.t:0:fair``. The
  small keys' jobs record their wait (start minus the time taken just before ``delay``):
  p50, p99, max; and the whole drain, both runs side by side. A ``delay`` that finds
  SQLite's write lock held past its busy timeout is tried again (``delay_retries``),
  its wait counted from the first try; ``small_delay_s``: the 200 delays' time.

Prints one line per measure and variant (``--json``: one JSON object per line).
Where the time goes: CPU microseconds per job of the worker (its start-up included)
and, on PostgreSQL, of the server's backends for the benchmark's database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import jobs  # noqa: E402
from bench.quick import Bench, database, percentile, print_result  # noqa: E402

CHANNEL = "root.t"
CONCURRENCY = 8
CHUNK = 10_000  # jobs per delay_many transaction

#: overhead: the variant, its --channels and whether its jobs have keys (100 of them)
OVERHEAD = {
    "none": ("", True),
    "rate": ("root.t:0:rate=1000000/s", True),
    "key_capacity": ("root.t:0:key_capacity=1000", True),
    "nokeys": ("", False),
}
OVERHEAD_KEYS = 100
OVERHEAD_TARGET = 0.7
#: keys at scale: the key capacity and the numbers of keys compared
KEYS_RULE = "root.t:0:key_capacity=2"
KEY_COUNTS = (10, 10_000)
KEYS_TARGET = (0.8, 1.2)
#: noisy tenant: the other keys, their jobs each, and the rule of the fair run
SMALL_KEYS = 20
SMALL_JOBS = 10
NOISY = {"plain": "", "fair": "root.t:0:fair"}
#: tries of one small job's delay (SQLite: each waits up to the busy timeout, 5 s)
MAX_TRIES = 10


class FlowBench(Bench):
    def __init__(self, url: str, workdir: Path, timeout: float) -> None:
        super().__init__(url, workdir, concurrency=CONCURRENCY)
        self.timeout = timeout

    def reset(self) -> None:
        if self.db.dialect == "postgresql":
            # no dead rows left from one measure to the next, no checkpoint in the middle
            self.db.run(lambda conn: [self.db.connector.execute_sql(conn, sql) for sql in (
                "TRUNCATE queue_job, queue_worker, queue_channel, queue_rate_start CASCADE",
                "CHECKPOINT")])
            for path in (self.done_file, self.latency_file):
                path.unlink(missing_ok=True)
        else:
            super().reset()

    def enqueue(self, count: int, key_of: Callable[[int], str | None]) -> None:
        """``count`` no-op jobs in root.t, job i with the concurrency key ``key_of(i)``
        (none for None), 10,000 per ``delay_many``."""
        for start in range(0, count, CHUNK):
            calls: list[Any] = []
            for i in range(start, min(count, start + CHUNK)):
                key = key_of(i)
                calls.append((None,) if key is None
                             else {"args": (None,), "concurrency_key": key})
            with self.db.session() as session:
                jobs.noop.delay_many(session, calls, channel=CHANNEL)
        self.analyze()

    def overhead(self, variant: str, count: int) -> dict:
        channels, keyed = OVERHEAD[variant]
        self.reset()
        self.enqueue(count, (lambda i: f"key-{i % OVERHEAD_KEYS}") if keyed
                     else (lambda i: None))
        self.channels = channels
        return self.drain(count, timeout=self.timeout)

    def keys(self, keys: int, pending: int, starts: int) -> dict:
        self.reset()
        draw = random.Random(keys)
        self.enqueue(pending, lambda i: f"key-{draw.randrange(keys)}")
        self.channels = KEYS_RULE
        return self.drain(starts, timeout=self.timeout)

    def noisy(self, variant: str, flood: int) -> dict:
        self.reset()
        self.enqueue(flood, lambda i: "noisy")
        self.channels = NOISY[variant]
        after = max(1, min(1_000, flood // 10))
        small = SMALL_KEYS * SMALL_JOBS
        delayed: list[float] = []
        retries = [0]

        def delay_one(key: int) -> None:
            """One small job; a delay that finds SQLite's write lock held past its busy
            timeout is tried again, as an application would: its wait counts from the
            first try."""
            enqueued_at = time.time()
            for attempt in range(MAX_TRIES):
                try:
                    with self.db.session() as session:
                        jobs.stamped.delay(session, None, enqueued_at, channel=CHANNEL,
                                           concurrency_key=f"tenant-{key:02d}")
                    return
                except Exception as exc:
                    if "locked" not in str(exc) or attempt == MAX_TRIES - 1:
                        raise
                    retries[0] += 1

        def delay_small(done: int) -> None:
            if delayed or done < after:
                return
            delayed.append(time.perf_counter())
            for _ in range(SMALL_JOBS):
                for key in range(SMALL_KEYS):
                    delay_one(key)
            delayed.append(time.perf_counter())

        result = self.drain(flood + small, timeout=self.timeout, during=delay_small)
        lines = self.latency_file.read_text().splitlines()
        if len(lines) != small:
            raise RuntimeError(f"{len(lines)} of the {small} small keys' jobs recorded a wait")
        waits = [(float(b) - float(a)) * 1000 for a, b in (line.split() for line in lines)]
        return {"wait_p50_ms": percentile(waits, 0.5), "wait_p99_ms": percentile(waits, 0.99),
                "wait_max_ms": max(waits), "small_delay_s": delayed[1] - delayed[0],
                "delay_retries": retries[0], **result}


def median_of(runs: list[dict]) -> dict:
    """The median of each numeric figure of the rounds' runs."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value
        else:
            median = statistics.median(run[key] for run in runs)
            out[key] = median if isinstance(value, float) else int(median)
    return out


def rotated(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


def environment(bench: FlowBench) -> dict:
    env = {"measure": "environment", "cores": os.cpu_count(),
           "python": platform.python_version(), "date": dt.date.today().isoformat()}
    if bench.db.dialect == "postgresql":
        env["postgresql"] = bench.db.run(lambda conn: bench.db.connector.execute_sql(
            conn, "SHOW server_version").fetchone()[0])
    else:
        env["sqlite"] = sqlite3.sqlite_version
    return env


def run(bench: FlowBench, args: argparse.Namespace) -> list[dict]:
    measures = set(args.measures.split(","))
    runs: dict[tuple[str, str], list[dict]] = {}
    key_variants = [str(count) for count in KEY_COUNTS]
    for number in range(args.rounds):
        if "overhead" in measures:
            for variant in rotated(list(OVERHEAD), number):
                runs.setdefault(("overhead", variant), []).append(
                    bench.overhead(variant, args.jobs))
        if "keys" in measures:
            for variant in rotated(key_variants, number):
                runs.setdefault(("keys", variant), []).append(
                    bench.keys(int(variant), args.pending, args.starts))
        if "noisy" in measures:
            for variant in rotated(list(NOISY), number):
                runs.setdefault(("noisy", variant), []).append(
                    bench.noisy(variant, args.flood))
        if args.progress:
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    def ratios(measure: str, variant: str, base: str) -> list[float]:
        """Drain rate of ``variant`` / that of ``base``, round by round."""
        return [run["drain_jobs_per_s"] / against["drain_jobs_per_s"] for run, against in
                zip(runs[(measure, variant)], runs[(measure, base)], strict=True)]

    def rounds_of(measure: str, variant: str, key: str = "drain_jobs_per_s") -> list[float]:
        return [round(run[key], 1) for run in runs[(measure, variant)]]

    results: list[dict] = []
    if "overhead" in measures:
        for variant, (channels, keyed) in OVERHEAD.items():
            result = {"measure": f"overhead_{variant}", "channels": channels or "none",
                      "keys": OVERHEAD_KEYS if keyed else 0,
                      **median_of(runs[("overhead", variant)]),
                      "drain_rounds": rounds_of("overhead", variant)}
            if variant != "none":
                each = ratios("overhead", variant, "none")
                result["ratio_to_none"] = statistics.median(each)
                result["ratio_rounds"] = [round(value, 3) for value in each]
                if channels:
                    result["target"] = f">= {OVERHEAD_TARGET}"
                    result["met"] = result["ratio_to_none"] >= OVERHEAD_TARGET
            results.append(result)
    if "keys" in measures:
        low, high = key_variants
        for variant in key_variants:
            result = {"measure": f"keys_{variant}", "channels": KEYS_RULE,
                      "keys": int(variant), "pending": args.pending,
                      **median_of(runs[("keys", variant)]),
                      "drain_rounds": rounds_of("keys", variant)}
            if variant == high:
                each = ratios("keys", high, low)
                result[f"ratio_to_{low}_keys"] = statistics.median(each)
                result["ratio_rounds"] = [round(value, 3) for value in each]
                result["target"] = f"{KEYS_TARGET[0]}-{KEYS_TARGET[1]}"
                result["met"] = KEYS_TARGET[0] <= statistics.median(each) <= KEYS_TARGET[1]
            results.append(result)
    if "noisy" in measures:
        plain, fair = (median_of(runs[("noisy", variant)]) for variant in NOISY)
        noisy: dict[str, Any] = {"measure": "noisy_tenant", "flood": args.flood,
                                 "small_jobs": SMALL_KEYS * SMALL_JOBS}
        for key in ("wait_p50_ms", "wait_p99_ms", "wait_max_ms", "seconds",
                    "drain_jobs_per_s", "worker_cpu_us_per_job", "server_cpu_us_per_job",
                    "small_delay_s", "delay_retries"):
            if key in plain:
                noisy[key] = {"plain": plain[key], "fair": fair[key]}
        noisy["drain_ratio_fair_to_plain"] = statistics.median(ratios("noisy", "fair",
                                                                      "plain"))
        for key in ("wait_p99_ms", "seconds", "delay_retries"):
            noisy[f"{key}_rounds"] = {variant: rounds_of("noisy", variant, key)
                                      for variant in NOISY}
        results.append(noisy)
    return results


def figure(key: str, value: Any) -> str:
    """A figure as text: ratios with 2 decimals, other numbers with 1, lists by /."""
    if isinstance(value, list):
        return "/".join(figure(key, item) for item in value)
    if isinstance(value, float):
        return f"{value:.2f}" if "ratio" in key else f"{value:,.1f}"
    return str(value)


def show(result: dict, as_json: bool) -> None:
    """One line per measure, like bench.quick; the noisy tenant's two runs side by side
    (``without fair | with fair``)."""
    if as_json:
        print_result(result, as_json=True)
        return
    figures = []
    for key, value in result.items():
        if key in ("measure", "backend"):
            continue
        text = " | ".join(figure(key, value[variant]) for variant in NOISY) \
            if isinstance(value, dict) else figure(key, value)
        figures.append(f"{key} {text}")
    label = " (without fair | with fair)" if result["measure"] == "noisy_tenant" else ""
    print(f"{result['backend']:10} {result['measure']:21}{label} " + ", ".join(figures),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--url", help="use this database instead of a fresh one "
                        "(its jobs are deleted)")
    parser.add_argument("--jobs", type=int, default=10_000, help="overhead: jobs [10,000]")
    parser.add_argument("--pending", type=int, default=100_000,
                        help="keys: pending jobs [100,000]")
    parser.add_argument("--starts", type=int, default=5_000,
                        help="keys: jobs run of them [5,000]")
    parser.add_argument("--flood", type=int, default=50_000,
                        help="noisy tenant: the noisy key's jobs [50,000]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measures", default="overhead,keys,noisy",
                        help="some of overhead,keys,noisy [all]")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds one worker run may take [3600]")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--progress", action="store_true",
                        help="a line on stderr after each round")
    args = parser.parse_args()
    unknown = set(args.measures.split(",")) - {"overhead", "keys", "noisy"}
    if unknown:
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")
    if not 0 < args.starts <= args.pending:
        parser.error("--starts must be from 1 to --pending")
    if min(args.jobs, args.flood, args.rounds) < 1:
        parser.error("--jobs, --flood and --rounds must be at least 1")
    with database(args.backend, args.url) as (url, workdir):
        bench = FlowBench(url, workdir, args.timeout)
        try:
            results = [environment(bench), *run(bench, args)]
        finally:
            bench.db.close()
    for result in results:
        show(dict(result, backend=args.backend), args.json)


if __name__ == "__main__":
    main()
