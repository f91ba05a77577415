"""Measurements of one system (queuejob or a peer), one JSON line per measurement.

    python -m bench.harness --system pgqueuer --workloads enqueue,process,latency

``bench.compare`` runs this once per system and round, with the servers up; it can be
run by hand against servers of your own (see ``bench/config.py`` for the variables).
Progress goes to stderr, worker output to ``<scratch>/logs/``.

Workloads (``--workloads``):

``enqueue``   N no-op jobs, one call (and transaction) each, from one client process.
``bulk``      N no-op jobs through the system's batch API, ``--batch-size`` per call.
``process``   N no-op jobs queued first, then 1 (and 2, see ``--workers``) worker
              processes started; timed from spawning them until the N-th job ran.
              ``startup_s`` is the time to the first finished job, ``drain_jobs_per_s``
              the rate after it. Stopped after ``--max-process-s`` (flagged ``capped``).
``latency``   one idle, warmed-up worker; ``--latency-jobs`` jobs enqueued
              ``--latency-interval-ms`` apart; start minus enqueue time, p50/p99.
``growth``    (queuejob) drain rate of 1 worker with 0, ``--growth-finished`` finished
              jobs in the table, and with ``--growth-pending`` pending jobs spread over
              ``--growth-channels`` channels (the first N of them timed).
``channels``  (queuejob) the same drain with ``root:8`` and with
              ``root:8,root.a:2,root.b:2,root.c:4``, the jobs spread over root.a/b/c.
``memory``    (queuejob) one worker runs ``--memory-jobs`` queued jobs; its VmRSS when
              the first checkpoint and the last are reached.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime as dt
import importlib
import importlib.metadata
import inspect
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench import config
from bench.cpu import server_cpu_seconds, session_cpu_seconds
from bench.system import System

POLL_S = 0.02
WORKLOADS = ("enqueue", "bulk", "process", "latency", "growth", "channels", "memory")

#: system name -> "module:class"
SYSTEMS = {
    "queuejob-sqlite": "bench.queuejob_system:QueuejobSQLite",
    "queuejob-sqlite-full": "bench.queuejob_system:QueuejobSQLiteFull",
    "queuejob-postgresql": "bench.queuejob_system:QueuejobPostgres",
    "queuejob-sqlite-root8": "bench.queuejob_system:QueuejobSQLiteRoot8",
    "queuejob-postgresql-root8": "bench.queuejob_system:QueuejobPostgresRoot8",
    "queuejob-postgresql-async": "bench.queuejob_system:QueuejobPostgresAsync",
    "procrastinate": "bench.peers.procrastinate:Procrastinate",
    "pgqueuer": "bench.peers.pgqueuer:Pgqueuer",
    "pgqueuer-batch500": "bench.peers.pgqueuer:PgqueuerBatch500",
    "pgqueuer-limit8": "bench.peers.pgqueuer:PgqueuerLimit8",
    "huey-sqlite": "bench.peers.huey_sqlite:HueySqlite",
    "rq": "bench.peers.rq:RQ",
    "dramatiq-redis": "bench.peers.dramatiq_redis:DramatiqRedis",
}


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, q in 0..100."""
    values = sorted(values)
    if not values:
        return float("nan")
    position = (len(values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


async def call(fn, *args):
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class MeasurementError(RuntimeError):
    pass


class Workers:
    """Worker processes, each in its own session (process group), always stopped."""

    live: list[subprocess.Popen] = []

    def __init__(self, system: System, count: int, tag: str, command: list[str],
                 env: dict[str, str]) -> None:
        self.system = system
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        logdir = config.workdir() / "logs"
        logdir.mkdir(exist_ok=True)
        full_env = dict(os.environ, **env)
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(config.ROOT), os.environ.get("PYTHONPATH")) if p)
        for index in range(count):
            path = logdir / f"{system.name}-{tag}-w{index + 1}.log"
            self.logs.append(path)
            with open(path, "wb") as out:
                proc = subprocess.Popen(command, cwd=config.ROOT, env=full_env,
                                        stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            self.procs.append(proc)
            Workers.live.append(proc)
            with open(config.workdir() / "worker-pids", "a") as pids:
                pids.write(f"{proc.pid}\n")

    def check_alive(self) -> None:
        for proc, path in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                raise MeasurementError(f"worker exited early (status {proc.returncode}): "
                                       f"{tail(path)}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, self.system.stop_signal)
        deadline = time.monotonic() + self.system.stop_timeout
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"worker {proc.pid} did not stop in time: killing its process group")
        for proc in self.procs:
            kill_group(proc)


def kill_group(proc: subprocess.Popen) -> None:
    # the worker leads its own session: its group is itself and what it forked
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    if proc in Workers.live:
        Workers.live.remove(proc)


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(Workers.live):
        kill_group(proc)


def tail(path: Path, size: int = 600) -> str:
    try:
        data = path.read_bytes()[-size:]
    except OSError:
        return "(no log)"
    return data.decode(errors="replace").replace("\n", " | ")


def vm_rss_kib(pid: int) -> int | None:
    """VmRSS of a process, in KiB, from /proc/<pid>/status."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def line_count(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def versions(packages: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


class Harness:
    def __init__(self, system: System, args: argparse.Namespace) -> None:
        self.system = system
        self.args = args
        self.n = args.jobs
        work = config.workdir()
        self.done_file = work / f"{system.name}.done"
        self.latency_file = work / f"{system.name}.latency"
        self.worker_env = {
            "QUEUEJOB_BENCH_DONE": str(self.done_file),
            "QUEUEJOB_BENCH_LATENCY": str(self.latency_file),
            "QUEUEJOB_BENCH_TOKEN": os.environ.get("QUEUEJOB_BENCH_TOKEN", "by-hand"),
        }
        self.failed = False

    # -- output ------------------------------------------------------------------
    def emit(self, measure: str, **fields: Any) -> None:
        record = {"system": self.system.name, "backend": self.system.backend,
                  "measure": measure, "round": self.args.round}
        record.update(fields)
        record.setdefault("ok", True)
        record["time"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if not record["ok"]:
            self.failed = True
        print(json.dumps(record), flush=True)

    def describe(self, settings: Any) -> None:
        self.emit("system", versions=versions(self.system.packages),
                  setting=self.system.setting,
                  worker_setting=self.system.worker_setting.format(setting=self.system.setting),
                  notes=self.system.notes,
                  bulk_api=self.system.bulk_api, settings=settings,
                  python=platform.python_version())

    # -- helpers -----------------------------------------------------------------
    async def reset(self) -> None:
        await call(self.system.reset)
        for path in (self.done_file, self.latency_file):
            path.write_bytes(b"")

    async def enqueue_single(self, count: int) -> None:
        fn = self.system.enqueue
        if inspect.iscoroutinefunction(fn):
            for _ in range(count):
                await fn()
        else:
            for _ in range(count):
                fn()

    async def enqueue_bulk(self, count: int, *extra: Any) -> None:
        size = self.args.batch_size
        for start in range(0, count, size):
            await call(self.system.enqueue_bulk, min(size, count - start), *extra)

    async def prefill(self, count: int) -> float:
        started = time.perf_counter()
        if self.system.bulk_api:
            await self.enqueue_bulk(count)
        else:
            await self.enqueue_single(count)
        await call(self.system.after_prefill)
        return time.perf_counter() - started

    def start_workers(self, count: int, tag: str, command: list[str] | None = None
                      ) -> Workers:
        return Workers(self.system, count, f"r{self.args.round}-{tag}",
                       command or self.system.worker_command(), self.worker_env)

    async def wait_for(self, path: Path, target: int, workers: Workers, *,
                       lines: bool = False, cap_s: float = 0.0, timeout: float | None = None,
                       started: float | None = None, on_poll=None):
        """Poll until ``path`` counts ``target`` (bytes, or lines); with ``cap_s``, stop
        that many seconds after ``started``. Returns (t_end, n_end, t_first, n_first)."""
        count = line_count if lines else file_size
        started = time.perf_counter() if started is None else started
        timeout = self.args.timeout if timeout is None else timeout
        first: tuple[float, int] | None = None
        checked = started
        while True:
            done = count(path)
            now = time.perf_counter()
            if done and first is None:
                first = (now, done)
            if on_poll is not None:
                on_poll(done)
            if done >= target or (cap_s and now - started >= cap_s and done):
                assert first is not None
                return now, done, first[0], first[1]
            if now - started > timeout:
                raise MeasurementError(f"timed out after {timeout:.0f} s: {done}/{target} done")
            if now - checked > 0.5:
                workers.check_alive()
                checked = now
            await asyncio.sleep(POLL_S)

    async def drain(self, measure: str, count: int, workers: int = 1, *,
                    command: list[str] | None = None, target: int | None = None,
                    **fields: Any) -> None:
        """Start workers on an already filled queue; time ``target`` jobs (default all)."""
        target = target or count
        cap = self.args.max_process_s
        started = time.perf_counter()
        procs = self.start_workers(workers, measure, command)
        # CPU of the workers (their sessions) and of the database server's backends,
        # from the first job done (start-up left out) to the last
        cpu: dict[str, tuple[float, float]] = {}

        def cpu_now() -> tuple[float, float]:
            return (sum(session_cpu_seconds(proc.pid) for proc in procs.procs),
                    server_cpu_seconds(self.system.database))

        def on_poll(done: int) -> None:
            if done and "first" not in cpu:
                cpu["first"] = cpu_now()
        try:
            t_end, n_end, t_first, n_first = await self.wait_for(
                self.done_file, target, procs, cap_s=cap, started=started, on_poll=on_poll)
            cpu["end"] = cpu_now()
        finally:
            procs.stop()
        seconds = t_end - started
        drain = (n_end - n_first) / (t_end - t_first) if t_end > t_first else None
        if n_end > n_first:
            per_job = [(end - first) / (n_end - n_first) * 1e6
                       for first, end in zip(cpu["first"], cpu["end"], strict=True)]
            fields.update(worker_cpu_us_per_job=round(per_job[0], 1),
                          server_cpu_us_per_job=round(per_job[1], 1),
                          cpu_us_per_job=round(sum(per_job), 1))
        self.emit(measure, jobs=count, timed=target, workers=workers,
                  seconds=round(seconds, 4), jobs_per_s=round(n_end / seconds, 1),
                  capped=n_end < target, jobs_done=n_end, cap_s=cap or None,
                  startup_s=round(t_first - started, 4),
                  drain_jobs_per_s=round(drain, 1) if drain else None,
                  stats=await self.stats(), **fields)

    async def stats(self) -> Any:
        try:
            return await call(self.system.stats)
        except Exception as exc:  # sanity information only
            return {"error": repr(exc)}

    # -- the four workloads of every system ------------------------------------------
    async def m_enqueue(self) -> None:
        await self.reset()
        started = time.perf_counter()
        await self.enqueue_single(self.n)
        seconds = time.perf_counter() - started
        self.emit("enqueue_single", jobs=self.n, seconds=round(seconds, 4),
                  jobs_per_s=round(self.n / seconds, 1), stats=await self.stats())

    async def m_bulk(self) -> None:
        if not self.system.bulk_api:
            self.emit("enqueue_bulk", unsupported=True, note="no batch enqueue API")
            return
        await self.reset()
        started = time.perf_counter()
        await self.enqueue_bulk(self.n)
        seconds = time.perf_counter() - started
        self.emit("enqueue_bulk", jobs=self.n, seconds=round(seconds, 4),
                  jobs_per_s=round(self.n / seconds, 1), batch_size=self.args.batch_size,
                  api=self.system.bulk_api, stats=await self.stats())

    async def m_process(self) -> None:
        for workers in self.args.workers:
            measure = f"process_w{workers}"
            log(f"{self.system.name}: {measure}")
            try:
                await self.reset()
                prefill_s = await self.prefill(self.n)
                await self.drain(measure, self.n, workers, prefill_s=round(prefill_s, 3))
            except Exception as exc:
                self.fail(measure, exc)

    async def m_latency(self) -> None:
        count = self.args.latency_jobs
        interval = self.args.latency_interval_ms / 1000
        await self.reset()
        workers = self.start_workers(1, "latency")
        call_ms = []
        try:
            # warm-up: one job proves the worker is up; then it idles
            await call(self.system.enqueue_latency, time.time())
            await self.wait_for(self.latency_file, 1, workers, lines=True, timeout=120)
            self.latency_file.write_bytes(b"")
            await asyncio.sleep(self.args.idle_s)
            fn = self.system.enqueue_latency
            start = time.perf_counter()
            for index in range(count):
                delay = start + index * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = time.time()
                await call(fn, now)
                call_ms.append((time.time() - now) * 1000)
            await self.wait_for(self.latency_file, count, workers, lines=True, timeout=120)
        finally:
            workers.stop()
        delays = []
        for line in self.latency_file.read_text().splitlines():
            enqueued, begun = line.split()
            delays.append((float(begun) - float(enqueued)) * 1000)
        self.emit("latency", jobs=count, interval_ms=self.args.latency_interval_ms,
                  idle_s=self.args.idle_s, p50_ms=round(percentile(delays, 50), 3),
                  p99_ms=round(percentile(delays, 99), 3),
                  mean_ms=round(statistics.fmean(delays), 3), max_ms=round(max(delays), 3),
                  enqueue_call_p50_ms=round(percentile(call_ms, 50), 3))

    # -- queuejob's own workloads ------------------------------------------------------
    async def m_growth(self) -> None:
        system = self.system
        variants = [("growth_empty", 0), *(
            (f"growth_finished_{label}", count)
            for label, count in zip(("mid", "big"), self.args.growth_finished, strict=False))]
        for measure, finished in variants:
            log(f"{system.name}: {measure} ({finished:,} finished jobs)")
            try:
                await self.reset()
                started = time.perf_counter()
                await call(system.insert_finished, finished)
                insert_s = time.perf_counter() - started
                await self.prefill(self.n)
                await self.drain(measure, self.n, finished=finished,
                                 insert_finished_s=round(insert_s, 2))
            except Exception as exc:
                self.fail(measure, exc)
        measure = "growth_pending_channels"
        pending, spread = self.args.growth_pending, self.args.growth_channels
        log(f"{system.name}: {measure} ({pending:,} pending jobs over {spread} channels)")
        try:
            await self.reset()
            channels = [f"root.g{index:02d}" for index in range(spread)]
            await self.enqueue_bulk(pending, channels)
            await call(system.after_prefill)
            await self.drain(measure, pending, target=min(self.n, pending),
                             pending=pending, channels=spread)
        except Exception as exc:
            self.fail(measure, exc)

    async def m_channels(self) -> None:
        system = self.system
        for measure, channels in (("channels_plain", "root:8"),
                                  ("channels_tree", "root:8,root.a:2,root.b:2,root.c:4")):
            log(f"{system.name}: {measure} ({channels})")
            try:
                await self.reset()
                await self.enqueue_bulk(self.n, ["root.a", "root.b", "root.c"])
                await call(system.after_prefill)
                await self.drain(measure, self.n, command=system.worker_command(channels),
                                 worker_channels=channels)
            except Exception as exc:
                self.fail(measure, exc)

    async def m_memory(self) -> None:
        checkpoints = sorted(self.args.memory_jobs)
        total = checkpoints[-1]
        await self.reset()
        log(f"{self.system.name}: memory: queueing {total:,} jobs")
        started = time.perf_counter()
        chunk = max(self.args.batch_size, 10_000)
        for start in range(0, total, chunk):
            await call(self.system.enqueue_bulk, min(chunk, total - start))
        await call(self.system.after_prefill)
        prefill_s = time.perf_counter() - started
        log(f"{self.system.name}: memory: queued in {prefill_s:.0f} s, running them")
        workers = self.start_workers(1, "memory")
        pid = workers.procs[0].pid
        rss: dict[str, int | None] = {}
        samples: list[tuple[int, int]] = []
        peak = [0]
        pending = list(checkpoints)
        next_sample = [0]

        def on_poll(done: int) -> None:
            if next_sample[0] <= done:
                value = vm_rss_kib(pid)
                if value:
                    samples.append((done, value))
                    peak[0] = max(peak[0], value)
                next_sample[0] = done + max(1, total // 50)
            while pending and done >= pending[0]:
                rss[str(pending.pop(0))] = vm_rss_kib(pid)

        started = time.perf_counter()
        try:
            t_end, n_end, t_first, n_first = await self.wait_for(
                self.done_file, total, workers, timeout=max(self.args.timeout, total / 200),
                started=started, on_poll=on_poll)
        finally:
            workers.stop()
        first, last = str(checkpoints[0]), str(total)
        growth = (rss[last] / rss[first]) if rss.get(first) and rss.get(last) else None
        self.emit("memory", jobs=total, checkpoints=checkpoints, rss_kib=rss,
                  rss_ratio=round(growth, 4) if growth else None, peak_rss_kib=peak[0],
                  samples=samples, seconds=round(t_end - started, 2),
                  drain_jobs_per_s=round((n_end - n_first) / (t_end - t_first), 1),
                  prefill_s=round(prefill_s, 2), stats=await self.stats())

    # -- driver --------------------------------------------------------------------------
    def fail(self, measure: str, exc: BaseException) -> None:
        log(f"{self.system.name}: {measure} failed: {exc!r}")
        traceback.print_exc()
        self.emit(measure, ok=False, error=repr(exc)[:500])

    async def run(self) -> int:
        wanted = [w for w in self.args.workloads
                  if w in self.system.workloads or w in self.system.extra_workloads]
        try:
            await call(self.system.setup)
        except Exception as exc:
            self.fail("setup", exc)
            return 1
        try:
            try:
                settings = await call(self.system.info)
            except Exception as exc:
                settings = {"error": repr(exc)}
            self.describe(settings)
            for workload in wanted:
                if workload != "process":
                    log(f"{self.system.name}: {workload}")
                try:
                    await getattr(self, f"m_{workload}")()
                except Exception as exc:
                    self.fail(workload, exc)
        finally:
            try:
                await call(self.system.teardown)
            except Exception as exc:
                log(f"{self.system.name}: teardown failed: {exc!r}")
        return 1 if self.failed else 0


def load_system(name: str) -> System:
    module, _, cls = SYSTEMS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def ints(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    parser.add_argument("--workloads", default="enqueue,bulk,process,latency",
                        help=f"comma list out of {','.join(WORKLOADS)}")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--setting", help="override the worker's main knob (see the system)")
    parser.add_argument("--workers", type=ints, default=[1, 2])
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--latency-interval-ms", type=float, default=20.0)
    parser.add_argument("--idle-s", type=float, default=1.0)
    parser.add_argument("--max-process-s", type=float, default=25.0,
                        help="cap of one processing run (0: none)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--growth-finished", type=ints, default=[100_000, 1_000_000])
    parser.add_argument("--growth-pending", type=int, default=100_000)
    parser.add_argument("--growth-channels", type=int, default=50)
    parser.add_argument("--memory-jobs", type=ints, default=[100_000, 1_000_000])
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


def _terminate(signum, frame):  # SIGTERM -> SystemExit, so that workers are stopped
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    system = load_system(args.system)
    if args.setting:
        system.setting = args.setting
    return asyncio.run(Harness(system, args).run())


if __name__ == "__main__":
    sys.exit(main())
