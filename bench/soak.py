"""Soak: kill -9 workers at random moments, restart them, and count what happens.

    python -m bench.soak                                # 100 trials per backend, real defaults
    python -m bench.soak --backend sqlite --trials 5 --fast    # a quick check of the script
    python -m bench.soak --trials 0 --tests             # the reliability tests at full size

Each trial waits until a victim worker runs jobs, kills it with SIGKILL at a random
moment, restarts it at once and notes which jobs the database says the dead worker
was running. A worker that is never killed (and the victims, once they have lived
``--dead-after``) rescue those jobs; the time from the kill until none of them is
still started by the dead worker is the trial's rescue time. Several victims are
killed in turn (``--slots``), so that trials overlap the long rescue of the default
settings. At the end every job must be done.

Executions are counted outside queuejob: the job (``tests.jobs.record``) appends
``uuid retry pid start end`` to a file. Reported: trials, jobs, lost jobs, re-runs
(executions beyond the first), jobs in flight at the kills, worst rescue time and
the bound ``dead-after + rescue interval + 1 s``. Not run in CI; the reliability
tests run the same trials with short intervals (tests/reliability/test_crashes.py).

``--tests`` also runs tests/reliability with ``QUEUEJOB_RELIABILITY_FULL=1``: the
issue's full sizes where CI runs smaller ones (100 SQLite kill -9 trials instead of
50, a 50,000-job WAL run instead of 20,000, 16 processes x 200 identity races instead
of 100, 10,000 argument examples per backend instead of 500, 3 migration races).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers import executions, job_rows, wait_until  # noqa: E402
from tests.reliability.common import DEAD_AFTER, HEARTBEAT, RESCUE_INTERVAL  # noqa: E402

import queuejob  # noqa: E402

#: the worker's real defaults (queuejob worker --help)
DEFAULTS = {"heartbeat": 5.0, "dead_after": 30.0, "rescue_interval": 10.0, "poll": 3.0}
#: the test settings of the reliability suite
FAST = {"heartbeat": HEARTBEAT, "dead_after": DEAD_AFTER, "rescue_interval": RESCUE_INTERVAL,
        "poll": 0.05}

#: job threads of each worker of the trials
JOBS_PER_WORKER = 4


@dataclass
class Trial:
    number: int
    victim_id: str
    killed_at: float
    #: jobs the database said the dead worker was running: {uuid: retry}
    started: dict[str, int]
    rescued_at: float | None = None

    @property
    def rescue_time(self) -> float | None:
        return None if self.rescued_at is None else self.rescued_at - self.killed_at


@dataclass
class Report:
    backend: str
    settings: dict[str, float]
    trials: list[Trial] = field(default_factory=list)
    jobs: int = 0
    lost: int = 0
    reruns: int = 0
    #: rescues the database counted (worker_deaths of every job)
    rescued: int = 0
    executions: int = 0
    #: broken promises, one line each (empty when all held)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bound(self) -> float:
        return self.settings["dead_after"] + self.settings["rescue_interval"] + 1.0

    @property
    def in_flight(self) -> int:
        return sum(len(trial.started) for trial in self.trials)

    @property
    def worst_rescue(self) -> float:
        return max((trial.rescue_time or 0.0 for trial in self.trials), default=0.0)

    def summary(self) -> str:
        return (f"{self.backend}: trials {len(self.trials)}, jobs {self.jobs}, lost {self.lost}, "
                f"re-runs {self.reruns} (jobs in flight at the kills: {self.in_flight}, "
                f"rescued: {self.rescued}), "
                f"worst rescue {self.worst_rescue:.2f} s (bound {self.bound:.1f} s), "
                f"violations {len(self.violations)}, {self.seconds:.0f} s")


class KillTrials:
    """The trials on one database (``url``); files go to ``workdir``."""

    def __init__(self, url: str, workdir: Path, *, rng: random.Random,
                 settings: dict[str, float], slots: int = 2, jobs_per_trial: int = 16,
                 job_seconds: tuple[float, float] = (0.05, 0.3), env: dict[str, str] | None = None,
                 echo: Any = None) -> None:
        self.url = url
        self.workdir = workdir
        self.rng = rng
        self.settings = settings
        self.slots = slots
        self.jobs_per_trial = jobs_per_trial
        self.job_seconds = job_seconds
        self.env = dict(env or os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), self.env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.echo = echo or (lambda text: None)
        self.execution_log = workdir / "executions"
        self.processes: list[subprocess.Popen] = []
        self.names: dict[int, str] = {}

    # -- processes -----------------------------------------------------------------------
    def spawn(self, name: str) -> subprocess.Popen:
        settings = self.settings
        flags = ["--heartbeat", str(settings["heartbeat"]), "--dead-after",
                 str(settings["dead_after"]), "--rescue-interval", str(settings["rescue_interval"]),
                 "--poll", str(settings["poll"])]
        # root's capacity holds across all workers: room for 4 jobs in each of them (the
        # rescuer, the victims), else the workers that hold the slots keep them (a worker
        # claims again in the transaction that frees one) and a new victim waits its turn
        capacity = JOBS_PER_WORKER * (self.slots + 1)
        with open(self.workdir / f"{name}.log", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "queuejob", "worker", "--db", self.url, "--module",
                 "tests.jobs", "--channels", f"root:{capacity}", "--concurrency",
                 str(JOBS_PER_WORKER), "--hostname", name, *flags],
                env=self.env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)
        self.processes.append(process)
        self.names[process.pid] = name
        return process

    def stop_all(self, db: queuejob.Database) -> list[int]:
        codes = []
        for process in self.processes:
            # a worker handles SIGTERM once it has started: let the youngest get there
            if process.poll() is None:
                with contextlib.suppress(AssertionError):
                    wait_until(lambda process=process: process.poll() is not None
                               or self.worker_id(db, self.names[process.pid]), 30.0,
                               message="the worker registered")
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(self.settings["dead_after"] + 60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            codes.append(process.returncode)
        return codes

    # -- the database --------------------------------------------------------------------
    def enqueue(self, db: queuejob.Database, count: int) -> list[str]:
        from tests import jobs
        low, high = self.job_seconds
        with db.session() as session:
            return [jobs.record.delay(session, "soak", str(self.execution_log),
                                      seconds=round(self.rng.uniform(low, high), 3),
                                      max_retries=50) for _ in range(count)]

    @staticmethod
    def worker_id(db: queuejob.Database, hostname: str) -> str | None:
        for row in queuejob.operations.workers(db):
            if row["hostname"] == hostname and row["state"] == "alive":
                return row["id"]
        return None

    @staticmethod
    def settle(db: queuejob.Database) -> None:
        """PostgreSQL: wait until the statements running now are over (a COMMIT that a
        frozen worker sent before it stopped), those waiting on a lock aside (behind the
        frozen worker's own transaction, they cannot end before it dies), and those waiting
        for the client (a pipeline the worker was frozen halfway through sending stays
        active until the rest comes, which is never)."""
        if db.dialect != "postgresql":
            return  # SQLite: a frozen process commits nothing more
        look = ("SELECT pid, query_start FROM pg_stat_activity WHERE state = 'active' "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND wait_event_type IS DISTINCT FROM 'Lock' "
                "AND wait_event_type IS DISTINCT FROM 'Client'")

        def running() -> set[tuple[Any, Any]]:
            return set(db.run(lambda conn: [
                tuple(row) for row in db.connector.execute_sql(conn, look).fetchall()]))
        before = running()
        wait_until(lambda: not before & running(), 10.0, message="statements in flight over")

    @staticmethod
    def started_by(db: queuejob.Database, worker_id: str) -> dict[str, int]:
        return {row["uuid"]: row["retry"] for row in db.read(
            lambda conn: db.store.started_by(conn, worker_id))}

    # -- the run -------------------------------------------------------------------------
    def run(self, trials: int, backend: str) -> Report:
        report = Report(backend, dict(self.settings))
        began = time.monotonic()
        bound = report.bound
        db = queuejob.open(self.url)
        watcher_db = queuejob.open(self.url)
        unresolved: list[Trial] = []
        lock = threading.Lock()
        done = threading.Event()

        def watch() -> None:
            # a trial is rescued once its worker is marked dead and none of its jobs is
            # still started by it
            while not done.is_set():
                with lock:
                    pending = list(unresolved)
                states = {row["id"]: row["state"]
                          for row in queuejob.operations.workers(watcher_db)} if pending else {}
                for trial in pending:
                    still = self.started_by(watcher_db, trial.victim_id)
                    # a claim the victim sent just before the kill may commit just after
                    # the first look: nobody else writes its id, so these were its jobs too
                    for job_uuid, retry in still.items():
                        trial.started.setdefault(job_uuid, retry)
                    # rescued: marked dead (even a victim killed between two jobs) and
                    # none of its jobs left started
                    if not still and states.get(trial.victim_id) == "dead":
                        trial.rescued_at = time.monotonic()
                        with lock:
                            unresolved.remove(trial)
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        uuids: list[str] = []
        names = [f"victim{slot}" for slot in range(self.slots)]
        try:
            self.spawn("rescuer")
            victims = [self.spawn(name) for name in names]
            generation = self.slots
            startup = 30.0 + self.settings["dead_after"]
            for number in range(trials):
                slot = number % self.slots
                uuids.extend(self.enqueue(db, self.jobs_per_trial))
                victim_id = wait_until(lambda slot=slot: self.worker_id(db, names[slot]),
                                       startup, message=f"worker {names[slot]} registered")

                def victim_runs(victim_id: str = victim_id) -> bool:
                    if self.started_by(db, victim_id):
                        return True
                    # the other workers took every job: give the victim more
                    if not job_rows(db, state="pending", limit=1):
                        uuids.extend(self.enqueue(db, self.jobs_per_trial))
                    return False
                wait_until(victim_runs, startup, message=f"worker {names[slot]} running jobs")
                time.sleep(self.rng.uniform(0.0, 0.3))  # the random moment of the kill
                # frozen first, so that what it started is read before it is gone: a worker
                # of its host rescues a gone process's jobs at once (worker/liveness.py)
                os.killpg(victims[slot].pid, signal.SIGSTOP)
                self.settle(db)
                seen = self.started_by(db, victim_id)
                os.killpg(victims[slot].pid, signal.SIGKILL)
                killed_at = time.monotonic()
                victims[slot].wait()
                seen.update(self.started_by(db, victim_id))
                trial = Trial(number, victim_id, killed_at, seen)
                report.trials.append(trial)
                with lock:
                    unresolved.append(trial)
                names[slot] = f"victim{generation}"
                generation += 1
                victims[slot] = self.spawn(names[slot])
                self.echo(f"trial {number + 1}/{trials}: killed {victim_id} running "
                          f"{len(trial.started)} job(s)")
            try:
                wait_until(lambda: not unresolved, bound + 30.0, message="the last rescues")
            except AssertionError as exc:  # wait_until's timeout
                report.violations.append(str(exc))

            def finished() -> bool:
                counts = Counter(row["state"] for row in job_rows(
                    db, limit=10**7))
                return not counts.get("pending") and not counts.get("started")
            try:
                wait_until(finished, bound + 120.0, message="every job to finish")
            except AssertionError as exc:  # wait_until's timeout
                report.violations.append(str(exc))
        finally:
            done.set()
            codes = self.stop_all(db)
            watcher.join(5)
        report.violations += [f"worker {self.names[process.pid]} exited with {code}"
                              for process, code in zip(self.processes, codes, strict=True)
                              if code not in (0, -signal.SIGKILL)]
        self.check(db, report, uuids)
        db.close()
        watcher_db.close()
        report.seconds = time.monotonic() - began
        return report

    def check(self, db: queuejob.Database, report: Report, uuids: list[str]) -> None:
        rows = {row["uuid"]: row for row in job_rows(db, limit=10**7)}
        runs = executions(self.execution_log)
        counts = Counter(run[0] for run in runs)
        rescues = Counter(job_uuid for trial in report.trials for job_uuid in trial.started)
        report.jobs = len(uuids)
        report.executions = len(runs)
        report.lost = sum(1 for job_uuid in uuids
                          if job_uuid not in rows or rows[job_uuid]["state"] != "done"
                          or not counts[job_uuid])
        report.reruns = sum(count - 1 for count in counts.values() if count > 1)
        ours = set(uuids)
        report.rescued = sum(row["worker_deaths"] for job_uuid, row in rows.items()
                             if job_uuid in ours)
        violations = report.violations
        for trial in report.trials:
            if trial.rescue_time is None or trial.rescue_time > report.bound:
                violations.append(f"trial {trial.number}: rescue took {trial.rescue_time} s, "
                                  f"over {report.bound:.1f} s")
        # rescues as the database counts them: a killed worker's attempt may still commit
        # after its death (PostgreSQL runs a COMMIT the client sent just before it died),
        # so a job seen started by the dead worker is not always rescued
        for job_uuid in uuids:
            row = rows.get(job_uuid)
            if row is None:
                violations.append(f"job {job_uuid}: gone")
                continue
            deaths = row["worker_deaths"]
            if deaths > rescues[job_uuid]:
                violations.append(f"job {job_uuid}: rescued {deaths} time(s) but seen running "
                                  f"in {rescues[job_uuid]} killed worker(s)")
            if counts[job_uuid] - 1 > deaths:
                violations.append(f"job {job_uuid}: {counts[job_uuid]} runs but rescued "
                                  f"{deaths} time(s)")
            if row["state"] == "done" and row["retry"] != 1 + deaths:
                violations.append(f"job {job_uuid}: retry {row['retry']} after {deaths} "
                                  "rescue(s)")
            retries = sorted(run[1] for run in runs if run[0] == job_uuid)
            if retries and (len(set(retries)) != len(retries) or retries[-1] != 1 + deaths):
                violations.append(f"job {job_uuid}: runs logged retries {retries} after "
                                  f"{deaths} rescue(s)")
        if report.reruns > report.in_flight:
            violations.append(f"{report.reruns} re-runs, more than the {report.in_flight} jobs "
                              "the killed workers were running")
        dead = {row["id"]: row["state"] for row in queuejob.operations.workers(db)}
        for trial in report.trials:
            if dead.get(trial.victim_id) != "dead":
                violations.append(f"worker {trial.victim_id} killed in trial {trial.number} "
                                  f"is {dead.get(trial.victim_id)}, not dead")


# -- command line --------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--trials", type=int, default=100, help="kill -9 trials per backend")
    parser.add_argument("--slots", type=int, default=4,
                        help="victim workers killed in turn (trials overlap their rescues)")
    parser.add_argument("--jobs-per-trial", type=int, default=16)
    parser.add_argument("--fast", action="store_true",
                        help="the test settings (heartbeat 0.2 s, dead after 1 s) instead of "
                             "the real defaults (5 s, 30 s, rescue every 10 s)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--tests", action="store_true",
                        help="then run tests/reliability at the issue's full sizes")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    settings = FAST if args.fast else DEFAULTS
    print(f"soak: seed {seed}, settings {settings}, {args.trials} trial(s) per backend, "
          f"{args.slots} victim slot(s)", flush=True)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    reports = []
    for backend in backends if args.trials > 0 else []:
        with tempfile.TemporaryDirectory(prefix=f"queuejob-soak-{backend}-") as tmp:
            workdir = Path(tmp)
            server = None
            if backend == "sqlite":
                url = f"sqlite:///{workdir}/jobs.db"
            else:
                from tests.pgserver import PostgresServer
                server = PostgresServer(fast=False).start()
                url = server.create_database("queuejob_soak")
            try:
                trials = KillTrials(url, workdir, rng=random.Random(seed), settings=settings,
                                    slots=args.slots, jobs_per_trial=args.jobs_per_trial,
                                    echo=None if args.quiet else
                                    (lambda text: print(f"  {text}", flush=True)))
                report = trials.run(args.trials, backend)
            finally:
                if server is not None:
                    server.stop()
        reports.append(report)
        print(report.summary(), flush=True)
        for line in report.violations[:20]:
            print(f"  VIOLATION {line}", flush=True)
    status = 0 if all(not report.violations and not report.lost for report in reports) else 1
    if args.tests:
        env = dict(os.environ, QUEUEJOB_RELIABILITY_FULL="1", QUEUEJOB_TEST_SEED=str(seed))
        code = subprocess.call([sys.executable, "-m", "pytest", "tests/reliability", "-q",
                                "-p", "no:cacheprovider"], cwd=ROOT, env=env)
        print(f"reliability tests at full size: exit {code}", flush=True)
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
