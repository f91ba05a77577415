"""queuejob against its peers, side by side: every workload on every system, in rounds.

    python -m bench.compare                 # what bench/run.sh runs (see bench/README.md)
    python -m bench.compare --quick         # small sizes, one round: a few minutes

    # the asyncio clients' enqueue side by side (bench/README.md, "Async enqueue"):
    python -m bench.compare --workloads enqueue,bulk --output bench/results/async-enqueue \\
        --systems queuejob-postgresql-async,queuejob-postgresql,procrastinate,pgqueuer

Starts PostgreSQL and Redis (loopback, free ports), runs ``bench.harness`` once per system
and round (systems interleaved, their order rotated between rounds), then writes
``results.json``, ``results.md`` and ``throughput.png`` into ``--output``. Whatever it
started is stopped on exit, also on Ctrl-C, SIGTERM or failure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from bench import config, envinfo, report
from bench.harness import SYSTEMS, WORKLOADS, log
from bench.servers import Servers

DEFAULT_SYSTEMS = ("queuejob-sqlite", "queuejob-sqlite-root8", "queuejob-sqlite-full",
                   "queuejob-postgresql", "queuejob-postgresql-root8",
                   "queuejob-postgresql-async", "procrastinate", "pgqueuer",
                   "pgqueuer-batch500", "pgqueuer-limit8", "huey-sqlite", "rq",
                   "dramatiq-redis")
BACKEND = {"queuejob-sqlite": "sqlite", "queuejob-sqlite-full": "sqlite",
           "queuejob-sqlite-root8": "sqlite",
           "huey-sqlite": "sqlite", "rq": "redis",
           "dramatiq-redis": "redis"}  # the others: postgresql

QUICK = {"jobs": 2000, "rounds": 1, "latency_jobs": 100, "max_process_s": 10.0,
         "growth_finished": "10000,50000", "growth_pending": 10000,
         "memory_jobs": "5000,25000"}
FULL = {"jobs": 10_000, "rounds": 3, "latency_jobs": 200, "max_process_s": 25.0,
        "growth_finished": "100000,1000000", "growth_pending": 100_000,
        "memory_jobs": "100000,1000000"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS),
                        help=f"comma list out of {', '.join(SYSTEMS)}")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma list out of {','.join(WORKLOADS)} (growth, channels "
                             "and memory run on queuejob only)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and one round, for development: " + ", ".join(
                            f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--jobs", type=int, help="jobs per throughput run [10000]")
    parser.add_argument("--rounds", type=int, help="rounds [3]")
    parser.add_argument("--latency-jobs", type=int, help="[200]")
    parser.add_argument("--max-process-s", type=float,
                        help="cap of one processing run in seconds, 0 = none [25]")
    parser.add_argument("--growth-finished", help="finished jobs in the table [100000,1000000]")
    parser.add_argument("--growth-pending", type=int, help="pending jobs over 50 channels "
                                                           "[100000]")
    parser.add_argument("--memory-jobs", help="RSS checkpoints, the last = jobs run "
                                              "[100000,1000000]")
    parser.add_argument("--memory-rounds", type=int, default=1,
                        help="run the memory workload in this many rounds [1]")
    parser.add_argument("--output", type=Path, default=config.BENCH / "results")
    parser.add_argument("--system-timeout", type=float, default=0,
                        help="limit of one system's run in one round, seconds (0: from the "
                             "sizes)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = (set(args.systems) - set(SYSTEMS)) | (set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown systems or workloads: {', '.join(sorted(unknown))}")
    return args


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.token = uuid.uuid4().hex
        self.work = args.output / "tmp"
        self.child: subprocess.Popen | None = None
        self.servers = Servers()
        self.records: list[dict] = []
        self.failures: list[str] = []

    # -- processes -----------------------------------------------------------------
    def kill_stray_workers(self) -> None:
        """Worker groups a harness recorded and did not stop (it was killed): only those
        whose environment carries this run's token."""
        pids = self.work / "worker-pids"
        if not pids.exists():
            return
        marker = f"QUEUEJOB_BENCH_TOKEN={self.token}".encode()
        for line in pids.read_text().split():
            pid = int(line)
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                log(f"killing leftover worker process group {pid}")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        pids.unlink(missing_ok=True)

    def stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)  # the harness stops its workers
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def cleanup(self) -> None:
        self.stop_child()
        self.kill_stray_workers()
        self.servers.stop()

    # -- the run -------------------------------------------------------------------
    def harness_args(self, system: str, round_: int) -> list[str]:
        a = self.args
        workloads = [w for w in a.workloads if w != "memory" or round_ <= a.memory_rounds]
        return ["--system", system, "--round", str(round_), "--workloads", ",".join(workloads),
                "--jobs", str(a.jobs), "--latency-jobs", str(a.latency_jobs),
                "--max-process-s", str(a.max_process_s),
                "--growth-finished", str(a.growth_finished),
                "--growth-pending", str(a.growth_pending),
                "--memory-jobs", str(a.memory_jobs)]

    def system_timeout(self, system: str, round_: int) -> float:
        if self.args.system_timeout:
            return self.args.system_timeout
        limit = 600 + 8 * self.args.max_process_s
        if system.startswith("queuejob"):
            big = max(int(float(x)) for x in str(self.args.growth_finished).split(","))
            limit += 300 + big / 2000
            if "memory" in self.args.workloads and round_ <= self.args.memory_rounds:
                limit += max(int(float(x)) for x in str(self.args.memory_jobs).split(",")) / 300
        return limit

    def run_system(self, system: str, round_: int) -> None:
        env = dict(os.environ, **self.servers.env(), QUEUEJOB_BENCH_TOKEN=self.token,
                   QUEUEJOB_BENCH_WORK=str(self.work))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(config.ROOT), os.environ.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "bench.harness", *self.harness_args(system, round_)]
        timeout = self.system_timeout(system, round_)
        started = time.monotonic()
        self.child = subprocess.Popen(command, cwd=config.ROOT, env=env, stdout=subprocess.PIPE,
                                      text=True)
        child = self.child
        timed_out = threading.Event()

        def watchdog() -> None:
            log(f"{system}: over its {timeout:.0f} s limit: stopping it")
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

        timer = threading.Timer(timeout, watchdog)
        timer.daemon = True
        timer.start()
        assert child.stdout is not None
        try:
            with open(self.work / "raw.jsonl", "a") as sink:
                for line in child.stdout:  # one JSON object per line
                    sink.write(line)
                    sink.flush()
                    try:
                        self.records.append(json.loads(line))
                    except json.JSONDecodeError:
                        log(f"{system}: not JSON: {line.strip()[:200]}")
            try:
                status = child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                status = child.wait()
        finally:
            timer.cancel()
        self.child = None
        if timed_out.is_set():
            self.failures.append(f"{system}/round {round_}: stopped after {timeout:.0f} s")
        self.kill_stray_workers()
        if status != 0:
            self.failures.append(f"{system}/round {round_}: exit status {status}")
        log(f"{system} (round {round_}) took {time.monotonic() - started:.0f} s")

    def main(self) -> int:
        a = self.args
        t0 = time.monotonic()
        started_at = dt.datetime.now(dt.UTC)
        a.output.mkdir(parents=True, exist_ok=True)
        (a.output / "tmp").mkdir(exist_ok=True)
        for stale in [*self.work.glob("*"), *self.work.glob("logs/*")]:
            if stale.is_file():
                stale.unlink()
        os.environ["QUEUEJOB_BENCH_WORK"] = str(self.work)
        needs_pg = any(BACKEND.get(s, "postgresql") == "postgresql" for s in a.systems)
        needs_redis = any(BACKEND.get(s) == "redis" for s in a.systems)
        log(f"starting servers (PostgreSQL: {needs_pg}, Redis: {needs_redis})")
        self.servers.start(needs_pg, needs_redis)
        os.environ.update(self.servers.env())
        environment = envinfo.collect(self.servers)
        log(f"systems: {', '.join(a.systems)}; workloads: {', '.join(a.workloads)}; "
            f"{a.rounds} round(s) of {a.jobs} jobs")
        for round_ in range(1, a.rounds + 1):
            shift = (round_ - 1) % len(a.systems)
            order = a.systems[shift:] + a.systems[:shift]
            for system in order:
                log(f"round {round_}/{a.rounds}: {system}")
                self.run_system(system, round_)
        environment["loadavg_at_end"] = os.getloadavg()
        settings = {k: v for k, v in vars(a).items() if k != "output"}
        settings.update(total_seconds=round(time.monotonic() - t0),
                        started=started_at.isoformat(timespec="seconds"),
                        command=" ".join(["bash bench/run.sh", *sys.argv[1:]]),
                        failures=self.failures)
        self.servers.stop()
        paths = report.write(self.records, environment, settings, a.output)
        log(f"done in {time.monotonic() - t0:.0f} s: " + ", ".join(str(p) for p in paths))
        if self.failures:
            log("runs with errors: " + "; ".join(self.failures))
        return 1 if self.failures else 0


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    run = Run(args)
    try:
        return run.main()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        run.cleanup()


if __name__ == "__main__":
    sys.exit(main())
