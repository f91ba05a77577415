"""Crash safety, side by side: kill -9 a worker inside a job, restart it, count the jobs.

    bench/.venv-peers/bin/python -m bench.crash            # every system, 3 trials of 200 jobs
    bench/.venv-peers/bin/python -m bench.crash --quick    # 1 trial of 50 jobs
    bench/.venv-peers/bin/python -m bench.crash --systems rq,queuejob-sqlite --trials 5

Run it with the benchmark's virtualenv (``bench/run.sh`` creates it: every peer is
importable there). It starts a throw-away PostgreSQL (``tests/pgserver.py``, fsync on) and
Redis on free loopback ports (``bench.servers``), as the systems chosen need them, and
stops them, and every worker it started, on exit, Ctrl-C, SIGTERM or failure.

Every system runs with its own defaults, what a user gets (``System.default_worker_command``:
``queuejob worker --channels root:8``, ``huey_consumer``, ``procrastinate worker``, ``pgq
run``, ``rq worker``, ``dramatiq --processes 1``). A trial, on a queue wiped first
(``System.reset``: a new SQLite file, TRUNCATE, FLUSHDB):

1. ``--jobs`` record jobs are queued, one call each; a job appends ``job_id pid start`` to
   a file of starts, sleeps ``--job-seconds``, then appends ``job_id pid start end`` to a
   file of runs (``bench.counter.record``): executions are counted outside the queue;
2. one worker process starts;
3. once k executions have started (k drawn uniformly from 1 to jobs/2: a moment in the
   first half of the run, whatever the system's speed), and a further delay drawn from 0
   to one job's time, the worker is killed if a job is running (else at the next start):
   SIGSTOP then SIGKILL to the worker and every process it started (RQ forks each job
   into a process of its own group: a crash of the host or container takes it too);
4. a worker is restarted at once with the same command;
5. the trial ends when the queue holds no job to run any more (``System.unfinished``)
   and none runs, or ``--deadline`` seconds after the kill.

Reported per system and trial: jobs lost (never run to their end), jobs running at the
kill (started, not ended) and how many of them were lost, jobs run more than once (and
the extra runs: a killed execution counts as one) and jobs run to their end more than
once, the time from the kill to the end of the last job to finish (none when a job was
lost), and how the trial ended. ``crash.md`` and ``crash.json`` in ``--output``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench import config, envinfo
from bench.harness import MeasurementError, Workers, call, load_system, log, tail, versions
from bench.servers import Servers

SYSTEMS = ("queuejob-sqlite", "queuejob-postgresql", "huey-sqlite", "procrastinate",
           "pgqueuer", "rq", "dramatiq-redis")
BACKEND = {"queuejob-sqlite": "sqlite", "queuejob-postgresql": "postgresql",
           "huey-sqlite": "sqlite", "procrastinate": "postgresql", "pgqueuer": "postgresql",
           "rq": "redis", "dramatiq-redis": "redis"}

POLL_S = 0.005          # the files of starts and runs, before the kill
WATCH_S = 0.1           # the same, after it
QUEUE_CHECK_S = 0.5     # System.unfinished
STARTUP_S = 120.0       # a worker's start-up, until it runs the k-th job
ATTEMPTS = 3            # a trial whose jobs all ended before the kill is run again


class TooLate(RuntimeError):
    """Every job ended before the moment of the kill: nothing left to kill inside."""


# -- processes ----------------------------------------------------------------------------
def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from the parent links of /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def ours(pid: int, token: str) -> bool:
    """Whether the process carries this run's token (never signal anyone else's)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"QUEUEJOB_BENCH_TOKEN={token}".encode() in environ.split(b"\0")


def signal_pids(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def crash(workers: Workers, token: str) -> tuple[float, list[int]]:
    """SIGKILL the worker and every process it started, frozen first (SIGSTOP) so that
    none acts after another died. Returns the moment all were frozen, and their pids."""
    proc = workers.procs[0]
    frozen: set[int] = set()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGSTOP)
    while True:  # a process forked meanwhile is found by the next look
        new = [pid for pid in process_tree(proc.pid) if pid not in frozen
               and (pid == proc.pid or ours(pid, token))]
        if not new:
            break
        signal_pids(new, signal.SIGSTOP)
        frozen.update(new)
    killed_at = time.time()
    signal_pids(sorted(frozen), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc in Workers.live:
        Workers.live.remove(proc)
    return killed_at, sorted(frozen)


def kill_leftovers(token: str) -> None:
    """Whatever an interrupted trial left: the workers and every process they started
    (only the workers' environment carries the token, not this process's nor the
    servers')."""
    for proc in list(Workers.live):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(10)
        Workers.live.remove(proc)
    left = [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and int(entry) != os.getpid() and ours(int(entry), token)]
    if left:
        log(f"killing leftover worker processes {left}")
        signal_pids(left, signal.SIGKILL)


def stop(workers: Workers, token: str) -> None:
    """The system's own stop (its stop signal, then SIGKILL to the group), then SIGKILL to
    any process it started in another group (RQ's work horses)."""
    others = [pid for proc in workers.procs if proc.poll() is None
              for pid in process_tree(proc.pid)[1:] if ours(pid, token)]
    workers.stop()
    signal_pids([pid for pid in others if ours(pid, token)], signal.SIGKILL)


# -- the files the jobs write ---------------------------------------------------------------
def read_lines(path: Path) -> list[list[str]]:
    """Complete lines only: a line being appended is read at the next look."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return [line.split() for line in data[:data.rfind(b"\n") + 1].decode().splitlines()
            if line]


def starts_of(path: Path) -> list[tuple[int, int, float]]:
    return [(int(job), int(pid), float(start)) for job, pid, start in read_lines(path)]


def runs_of(path: Path) -> list[tuple[int, int, float, float]]:
    return [(int(job), int(pid), float(start), float(end))
            for job, pid, start, end in read_lines(path)]


def running(starts: list[tuple[int, int, float]], runs: list[tuple[int, int, float, float]],
            since: float = 0.0) -> list[tuple[int, int]]:
    """Executions started (at ``since`` or later) and not ended."""
    ended = {(job, pid) for job, pid, _, _ in runs}
    return [(job, pid) for job, pid, start in starts
            if start >= since and (job, pid) not in ended]


# -- one system -------------------------------------------------------------------------------
class CrashTrials:
    def __init__(self, name: str, args: argparse.Namespace, token: str, rng: random.Random
                 ) -> None:
        self.name = name
        self.args = args
        self.token = token
        self.rng = rng
        work = config.workdir()
        self.starts_file = work / f"crash-{name}.starts"
        self.runs_file = work / f"crash-{name}.runs"
        self.env = {"QUEUEJOB_BENCH_STARTS": str(self.starts_file),
                    "QUEUEJOB_BENCH_RUNS": str(self.runs_file),
                    "QUEUEJOB_BENCH_TOKEN": token}

    async def run(self) -> dict[str, Any]:
        system = load_system(self.name)
        result: dict[str, Any] = {"system": self.name, "backend": system.backend,
                                  "versions": versions(system.packages), "trials": []}
        try:
            await call(system.setup)
        except Exception as exc:
            log(f"{self.name}: setup failed: {exc!r}")
            result["error"] = repr(exc)[:500]
            return result
        try:
            result["worker_command"] = " ".join(
                "python" if index == 0 else "URL" if "://" in part else part
                for index, part in enumerate(system.default_worker_command()))
            for number in range(1, self.args.trials + 1):
                trial: dict[str, Any] = {}
                for attempt in range(1, ATTEMPTS + 1):
                    try:
                        trial = await self.trial(system, number)
                        break
                    except TooLate as exc:
                        log(f"{self.name}: trial {number}, attempt {attempt}: {exc}")
                        trial = {"trial": number, "error": str(exc)}
                    except MeasurementError as exc:
                        log(f"{self.name}: trial {number} failed: {exc}")
                        trial = {"trial": number, "error": str(exc)[:500]}
                        break
                result["trials"].append(trial)
                if "error" not in trial:
                    log(f"{self.name}: trial {number}/{self.args.trials}: {summary(trial)}")
        finally:
            try:
                await call(system.teardown)
            except Exception as exc:
                log(f"{self.name}: teardown failed: {exc!r}")
        return result

    async def trial(self, system: Any, number: int) -> dict[str, Any]:
        args = self.args
        jobs, seconds = args.jobs, args.job_seconds
        await call(system.reset)
        for path in (self.starts_file, self.runs_file):
            path.write_bytes(b"")
        for job_id in range(jobs):
            await call(system.enqueue_record, job_id, seconds)
        command = system.default_worker_command()
        began = time.time()
        first = Workers(system, 1, f"crash-t{number}-first", command, self.env)
        try:
            killed_at, killed_pids, k, first_start = await self.kill_inside_a_job(first)
        except BaseException:
            stop(first, self.token)
            raise
        second = Workers(system, 1, f"crash-t{number}-restart", command, self.env)
        try:
            ended, left = await self.watch(system, second, killed_at)
        finally:
            stop(second, self.token)
        with contextlib.suppress(Exception):
            left = await call(system.unfinished)
        trial = self.figures(killed_at, killed_pids)
        trial.update(trial=number, kill_at_start=k,
                     kill_s_after_first_start=round(killed_at - first_start, 3),
                     ended=ended, unfinished_at_end=left,
                     stats_at_end=await self.stats(system),
                     seconds=round(time.time() - began, 1),
                     worker_logs=[str(path) for path in first.logs + second.logs])
        return trial

    async def kill_inside_a_job(self, workers: Workers
                                ) -> tuple[float, list[int], int, float]:
        jobs, seconds = self.args.jobs, self.args.job_seconds
        k = self.rng.randint(1, max(1, jobs // 2))
        delay = self.rng.uniform(0.0, seconds)
        spawned = checked = time.monotonic()
        limit = spawned + STARTUP_S + 3 * k * seconds
        while True:  # the k-th start
            starts = starts_of(self.starts_file)
            if len(starts) >= k:
                break
            if time.monotonic() > limit:
                raise MeasurementError(
                    f"{len(starts)} of {k} executions started in "
                    f"{time.monotonic() - spawned:.0f} s: {tail(workers.logs[0])}")
            if time.monotonic() - checked > 0.5:
                workers.check_alive()
                checked = time.monotonic()
            await asyncio.sleep(POLL_S)
        first_start = min(start for _, _, start in starts)
        await asyncio.sleep(delay)
        limit = time.monotonic() + 60.0
        while True:  # a job running, else the next one to start
            starts, runs = starts_of(self.starts_file), runs_of(self.runs_file)
            if running(starts, runs):
                break
            if len({job for job, _, _, _ in runs}) >= jobs:
                raise TooLate(f"every job ended before the kill ({k}th start + {delay:.3f} s)")
            if time.monotonic() > limit:
                raise MeasurementError("no job started in 60 s before the kill")
            await asyncio.sleep(POLL_S / 5)
        killed_at, pids = crash(workers, self.token)
        return killed_at, pids, k, first_start

    async def watch(self, system: Any, workers: Workers, killed_at: float
                    ) -> tuple[str, int | None]:
        """Until the queue holds nothing to run and nothing runs (twice in a row), or
        the deadline. Returns how it ended, and the queue's unfinished jobs then."""
        jobs = self.args.jobs
        deadline = killed_at + self.args.deadline
        quiet, left, next_check = 0, None, 0.0
        while time.time() < deadline:
            await asyncio.sleep(WATCH_S)
            if time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + QUEUE_CHECK_S
            for proc, path in zip(workers.procs, workers.logs, strict=True):
                if proc.poll() is not None:
                    log(f"{self.name}: the restarted worker exited ({proc.returncode}): "
                        f"{tail(path)}")
                    return "restarted worker exited", left
            starts, runs = starts_of(self.starts_file), runs_of(self.runs_file)
            active = running(starts, runs, since=killed_at)
            try:
                left = await call(system.unfinished)
            except Exception as exc:  # e.g. a table not there yet: not settled
                log(f"{self.name}: unfinished: {exc!r}")
                left = None
            quiet = quiet + 1 if left == 0 and not active else 0
            if quiet >= 2:
                done = len({job for job, _, _, _ in runs})
                return ("all done" if done >= jobs else "queue empty"), left
        return "deadline", left

    def figures(self, killed_at: float, killed_pids: list[int]) -> dict[str, Any]:
        jobs = self.args.jobs
        starts, runs = starts_of(self.starts_file), runs_of(self.runs_file)
        ended = {(job, pid) for job, pid, _, _ in runs}
        at_kill = sorted({job for job, pid, start in starts
                          if start < killed_at and (job, pid) not in ended})
        first_end: dict[int, float] = {}
        for job, _, _, end in runs:
            first_end[job] = min(end, first_end.get(job, end))
        lost = sorted(set(range(jobs)) - set(first_end))
        started = Counter(job for job, _, _ in starts)
        finished = Counter(job for job, _, _, _ in runs)
        after = [start for _, _, start in starts if start >= killed_at]
        return {
            "jobs": jobs, "job_seconds": self.args.job_seconds,
            "killed_pids": killed_pids,
            "started_before_kill": sum(1 for _, _, start in starts if start < killed_at),
            "ended_before_kill": sum(1 for _, _, _, end in runs if end < killed_at),
            "running_at_kill": len(at_kill), "running_at_kill_jobs": at_kill,
            "lost": len(lost), "lost_jobs": lost,
            "lost_running_at_kill": len(set(lost) & set(at_kill)),
            "lost_never_started": sum(1 for job in lost if not started[job]),
            "run_more_than_once": sum(1 for count in started.values() if count > 1),
            "extra_runs": sum(count - 1 for count in started.values() if count > 1),
            "ended_more_than_once": sum(1 for count in finished.values() if count > 1),
            "extra_ends": sum(count - 1 for count in finished.values() if count > 1),
            "executions": len(starts),
            "restart_to_first_start_s": round(min(after) - killed_at, 3) if after else None,
            "kill_to_last_done_s": (round(max(first_end.values()) - killed_at, 3)
                                    if not lost else None),
        }

    @staticmethod
    async def stats(system: Any) -> Any:
        try:
            return await call(system.stats)
        except Exception as exc:  # sanity information only
            return {"error": repr(exc)}


def summary(trial: dict[str, Any]) -> str:
    done = trial["kill_to_last_done_s"]
    return (f"killed at start {trial['kill_at_start']} "
            f"({trial['kill_s_after_first_start']:.2f} s after the first), "
            f"{trial['running_at_kill']} running; lost {trial['lost']}, "
            f"run more than once {trial['run_more_than_once']} (+{trial['extra_runs']}), "
            f"ended twice {trial['ended_more_than_once']}; "
            f"last done {'never' if done is None else f'{done:.1f} s'} after the kill; "
            f"{trial['ended']} ({trial['seconds']:.0f} s)")


# -- report --------------------------------------------------------------------------------
def cells(values: list[Any], fmt=str) -> str:
    """Per-trial figures, or min / median / max beyond 5 trials."""
    if not values:
        return "n/a"
    if len(values) > 5 and all(isinstance(value, (int, float)) for value in values):
        low, mid, high = min(values), statistics.median(values), max(values)
        return f"{fmt(low)} / {fmt(mid)} / {fmt(high)} (min / median / max)"
    return " / ".join(fmt(value) for value in values)


def seconds_text(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"


def markdown(data: dict[str, Any]) -> str:
    conf = data["settings"]
    lines = [
        "# Crash safety, side by side",
        "",
        f"`{conf['command']}`, {data['environment'].get('date', '')}: "
        f"{conf['trials']} trial(s) per system of {conf['jobs']} jobs of "
        f"{conf['job_seconds']} s; one worker process with the system's defaults, killed "
        "(SIGKILL, with every process it started) at a random moment inside a job in the "
        "first half of the run, restarted at once; each trial ends when the queue holds "
        f"nothing to run and nothing runs, or {conf['deadline']:.0f} s after the kill. "
        "Figures per trial, in order (see bench/README.md, \"Crash safety, side by side\").",
        "",
        "| system | worker (defaults) | jobs lost | running at the kill | of those, lost "
        "| run more than once: jobs (extra runs) | run to the end twice | kill → first job "
        "started again, s | kill → last job done, s | trial ended |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in data["systems"]:
        trials = [trial for trial in result["trials"] if "error" not in trial]
        failed = [trial for trial in result["trials"] if "error" in trial]
        if not trials:
            error = result.get("error") or (failed[0]["error"] if failed else "no trial")
            lines.append(f"| {result['system']} | {result.get('worker_command', '?')} | "
                         f"failed: {error[:200]} | | | | | | | |")
            continue

        def column(key: str, trials: list[dict] = trials) -> list[Any]:
            return [trial[key] for trial in trials]
        runs = " / ".join(f"{trial['run_more_than_once']} ({trial['extra_runs']})"
                          for trial in trials)
        if len(trials) > 5:
            runs = (f"{cells(column('run_more_than_once'))} jobs, "
                    f"{cells(column('extra_runs'))} extra runs")
        lines.append(
            f"| {result['system']} | `{result['worker_command']}` "
            f"| {cells(column('lost'))} | {cells(column('running_at_kill'))} "
            f"| {cells(column('lost_running_at_kill'))} | {runs} "
            f"| {cells(column('ended_more_than_once'))} "
            f"| {cells(column('restart_to_first_start_s'), seconds_text)} "
            f"| {cells(column('kill_to_last_done_s'), seconds_text)} "
            f"| {cells(column('ended'))} |")
        if failed:
            lines[-1] += f" {len(failed)} failed trial(s): {failed[0]['error'][:120]}"
    lines += [
        "",
        "- jobs lost: never run to their end by the deadline; \"of those, lost\": the jobs "
        "running at the kill that were lost (the rest of the lost ones were claimed or "
        "prefetched by the killed worker, or never started: crash.json has them)",
        "- run more than once: jobs with more than one execution started (a killed "
        "execution counts); run to the end twice: jobs whose end was recorded twice",
        "- kill → first job started again: until the restarted worker starts a job (any "
        "job: whether it waits for the dead worker's jobs to be recovered first); kill → "
        "last job done: until the end of the last job to finish, \"never\" when a job "
        "was lost",
        "- trial ended: \"all done\" (every job ended, the queue empty), \"queue empty\" "
        "(the queue holds nothing more to run, but jobs were lost), \"deadline\" (the queue "
        "still held jobs it had not run)",
        "",
        "Versions: " + "; ".join(
            f"{result['system']}: " + ", ".join(f"{k} {v}" for k, v in
                                                 result["versions"].items())
            for result in data["systems"]) + ".",
        "",
    ]
    env = data["environment"]
    lines.append(f"Machine: {env.get('cpus')} CPUs ({env.get('cpu_model')}), "
                 f"{env.get('memory_gib')} GiB, {env.get('os')}, Python {env.get('python')}, "
                 f"SQLite {env.get('sqlite')}; queuejob at "
                 f"{(env.get('queuejob_source') or {}).get('commit')}; run took "
                 f"{conf['total_seconds'] / 60:.1f} min, seed {conf['seed']}.")
    return "\n".join(lines) + "\n"


def write(data: dict[str, Any], output: Path) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output / "crash.json", output / "crash.md"
    # paths relative to the repository: the results say nothing of the machine's layout
    raw = json.dumps(data, indent=1) + "\n"
    json_path.write_text(raw.replace(f"{config.ROOT}/", "").replace(str(config.ROOT), "."))
    md_path.write_text(markdown(data))
    return [md_path, json_path]


# -- the run -----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma list out of {','.join(SYSTEMS)} (default: all)")
    parser.add_argument("--trials", type=int, help="trials per system [3; --quick: 1]")
    parser.add_argument("--jobs", type=int, help="jobs per trial [200; --quick: 50]")
    parser.add_argument("--job-seconds", type=float, default=0.1,
                        help="what each job sleeps [0.1]")
    parser.add_argument("--deadline", type=float, default=120.0,
                        help="seconds after the kill a trial may last [120]")
    parser.add_argument("--quick", action="store_true", help="1 trial of 50 jobs")
    parser.add_argument("--seed", type=int, help="of the moments of the kills")
    parser.add_argument("--output", type=Path, default=config.BENCH / "results")
    args = parser.parse_args(argv)
    if args.trials is None:
        args.trials = 1 if args.quick else 3
    if args.jobs is None:
        args.jobs = 50 if args.quick else 200
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.trials < 1 or args.jobs < 1 or args.job_seconds <= 0:
        parser.error("--trials and --jobs must be at least 1, --job-seconds above 0")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    token = uuid.uuid4().hex
    servers = Servers()
    t0 = time.monotonic()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        work = Path(os.environ.get("QUEUEJOB_BENCH_WORK") or
                    config.BENCH / "results" / "tmp" / "crash")
        # before any system's module is imported: they read these at import time
        os.environ["QUEUEJOB_BENCH_WORK"] = str(work)
        work.mkdir(parents=True, exist_ok=True)
        needs_pg = any(BACKEND[name] == "postgresql" for name in args.systems)
        needs_redis = any(BACKEND[name] == "redis" for name in args.systems)
        log(f"crash: seed {args.seed}; starting servers (PostgreSQL: {needs_pg}, "
            f"Redis: {needs_redis})")
        servers.start(needs_pg, needs_redis)
        os.environ.update(servers.env())
        environment = envinfo.collect(servers)
        rng = random.Random(args.seed)
        results = []
        settings = {"trials": args.trials, "jobs": args.jobs,
                    "job_seconds": args.job_seconds, "deadline": args.deadline,
                    "seed": args.seed, "systems": args.systems, "started": started,
                    "command": " ".join(["python -m bench.crash", *sys.argv[1:]])}
        for name in args.systems:
            log(f"{name}: {args.trials} trial(s) of {args.jobs} jobs")
            results.append(asyncio.run(CrashTrials(name, args, token, rng).run()))
        environment["loadavg_at_end"] = os.getloadavg()
        settings["total_seconds"] = round(time.monotonic() - t0)
        data = {"settings": settings, "environment": environment, "systems": results}
        paths = write(data, args.output)
        print(markdown(data), flush=True)
        log(f"done in {time.monotonic() - t0:.0f} s: " + ", ".join(str(p) for p in paths))
        failed = [result["system"] for result in results
                  if "error" in result or any("error" in trial for trial in result["trials"])]
        if failed:
            log(f"failed trials: {', '.join(failed)}")
        return 1 if failed else 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        kill_leftovers(token)
        servers.stop()


def _terminate(signum, frame):  # SIGTERM -> SystemExit, so that everything is stopped
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
