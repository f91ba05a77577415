"""Crashes and rescue (issue 5, items 1-7): real processes killed with SIGKILL, paused
with SIGSTOP, jobs that kill their worker or run over their time.

Test settings: heartbeat 0.2 s, dead after 1 s, rescue every 0.2 s (the real defaults,
5 s, 30 s and 10 s, are measured by ``python -m bench.soak``).
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter

import pytest
from bench.soak import FAST as FAST_SETTINGS
from bench.soak import KillTrials

import queuejob
from tests import jobs
from tests.helpers import claim, executions, max_overlap, stop_process, wait_until
from tests.reliability import jobs as rjobs
from tests.reliability.common import (
    DEAD_AFTER,
    FAST,
    RESCUE_INTERVAL,
    VERY_FAST,
    age_heartbeat,
    freeze,
    kill,
    read_log,
    rescued_in_logs,
    row,
    rows,
    seeded,
    spawn,
    sql,
    state_counts,
    wait_exit,
    worker_ids,
)

pytestmark = pytest.mark.slow

KILL_TRIALS = 20  # the number for CI; python -m bench.soak runs 100


def delay(db, func, *args, **options):
    with db.session() as session:
        return func.delay(session, "m", *args, **options)


# -- 1. kill -9 at random moments ------------------------------------------------------------
def test_kill_9_at_random_moments_loses_no_job(db, db_url, job_env, tmp_path):
    """20 trials: a worker is killed with SIGKILL while it runs jobs and restarted. No
    job is lost, re-runs are bounded by the jobs the dead worker had started, each
    rescue adds one to ``retry``, and the rescue comes within dead-after + rescue
    interval + 1 s."""
    rng = seeded("kill -9 trials")
    trials = KillTrials(db_url, tmp_path, rng=rng, settings=FAST_SETTINGS, slots=2,
                        jobs_per_trial=12, env=job_env, echo=print)
    report = trials.run(KILL_TRIALS, db.dialect)
    print(report.summary())
    assert report.violations == []
    assert len(report.trials) == KILL_TRIALS
    assert report.lost == 0
    assert report.in_flight >= KILL_TRIALS, "the victims were killed while running jobs"
    assert report.reruns <= report.in_flight
    assert report.worst_rescue <= DEAD_AFTER + RESCUE_INTERVAL + 1.0
    assert state_counts(db) == {"done": report.jobs}
    # while its worker lived, no job ran twice at once
    runs = executions(tmp_path / "executions")
    by_job: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        by_job.setdefault(run[0], []).append((run[3], run[4]))
    assert max(max_overlap(intervals) for intervals in by_job.values()) == 1


# -- 2. deterministic crash points -----------------------------------------------------------
POINTS = ["claim_before_commit", "claim_after_commit", "mid_job", "job_before_outcome",
          "outcome_after_commit"]


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_each_point_ends_as_it_must(db, db_url, job_env, tmp_path, point):
    log = tmp_path / "executions"
    job_uuid = delay(db, rjobs.sleep_first_attempt, str(log), 60.0 if point == "mid_job" else 0.0)
    env = dict(job_env)
    if point != "mid_job":
        env["QUEUEJOB_TEST_CRASH_AT"] = point
    victim = spawn(db_url, env, *FAST, "--hostname", "victim", "--concurrency", "1",
                   log=tmp_path / "victim.log")
    try:
        if point == "mid_job":
            wait_until(lambda: row(db, job_uuid)["state"] == "started", message="job started")
            time.sleep(0.2)  # well inside the job's first attempt (60 s)
            kill(victim)
        assert wait_exit(victim, 30) == -signal.SIGKILL
    finally:
        stop_process(victim)
    [victim_id] = worker_ids(db, "victim")
    crashed = row(db, job_uuid)
    runs = executions(log)
    if point == "claim_before_commit":
        # the claim never committed: the job is untouched
        assert (crashed["state"], crashed["attempt"], crashed["retry"]) == ("pending", 0, 0)
        assert crashed["worker_id"] is None and runs == []
    elif point == "outcome_after_commit":
        assert (crashed["state"], crashed["attempt"], crashed["retry"]) == ("done", 1, 1)
        assert len(runs) == 1
    else:
        assert (crashed["state"], crashed["attempt"], crashed["worker_id"]) == \
            ("started", 1, victim_id)
        assert len(runs) == (1 if point == "job_before_outcome" else 0)

    rescuer = spawn(db_url, job_env, *VERY_FAST, "--hostname", "rescuer",
                    log=tmp_path / "rescuer.log")
    try:
        # the rescuer marks the victim dead in the transaction that rescues its jobs
        wait_until(lambda: {w["id"]: w["state"] for w in queuejob.operations.workers(db)}
                   [victim_id] == "dead", timeout=20, message="victim marked dead")
        wait_until(lambda: row(db, job_uuid)["state"] == "done", timeout=20, message="done")
    finally:
        assert stop_process(rescuer) == 0
    final = row(db, job_uuid)
    runs = executions(log)
    if point == "claim_before_commit":
        assert (final["retry"], final["worker_deaths"], len(runs)) == (1, 0, 1)
    elif point == "outcome_after_commit":
        # done and never run again
        assert {key: final[key] for key in ("state", "attempt", "retry", "result")} == \
            {key: crashed[key] for key in ("state", "attempt", "retry", "result")}
        assert final["worker_deaths"] == 0 and len(runs) == 1
    else:
        # rescued once (a counted retry), then done; a job that had finished before the
        # crash runs again: at-least-once
        assert (final["retry"], final["worker_deaths"], final["attempt"]) == (2, 1, 2)
        assert [run[1] for run in runs] == ([1, 2] if point == "job_before_outcome" else [2])
        assert rescued_in_logs(tmp_path / "rescuer.log") == 1


# -- 3. no false rescue ----------------------------------------------------------------------
def test_jobs_three_times_longer_than_dead_after_are_never_rescued(db, db_url, job_env,
                                                                   tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        session.execute("CREATE TABLE job_commits (value integer)")
    seconds = 3 * DEAD_AFTER + 0.5
    long_jobs = [delay(db, jobs.record, str(log), seconds),       # sleeping
                 delay(db, jobs.spin, str(log), seconds),         # pure-Python CPU-bound
                 delay(db, rjobs.commit_repeatedly, str(log), seconds, "job_commits")]
    runner = spawn(db_url, job_env, *FAST, "--hostname", "runner", log=tmp_path / "runner.log")
    watcher = None
    try:
        wait_until(lambda: state_counts(db).get("started") == 3, message="long jobs started")
        watcher = spawn(db_url, job_env, *FAST, "--hostname", "watcher",
                        log=tmp_path / "watcher.log")
        wait_until(lambda: state_counts(db) == {"done": 3}, timeout=30, message="all done")
    finally:
        codes = [stop_process(runner)] + ([stop_process(watcher)] if watcher else [])
    assert codes == [0, 0]
    runs = executions(log)
    assert Counter(run[0] for run in runs) == Counter(long_jobs)
    assert all(run[4] - run[3] >= seconds - 0.01 for run in runs)
    for job_uuid in long_jobs:
        job = row(db, job_uuid)
        assert (job["retry"], job["attempt"], job["worker_deaths"]) == (1, 1, 0)
    assert sql(db, "SELECT count(*) FROM job_commits")[0][0] >= 20
    logs = read_log(tmp_path / "runner.log") + read_log(tmp_path / "watcher.log")
    assert "missed its heartbeats" not in logs and "rescued" not in logs


# -- 3b. a dead process seen on its own host --------------------------------------------------
#: heartbeats that would take two minutes to judge: only the process check explains a rescue
SLOW_SILENCE = ("--heartbeat", "1", "--dead-after", "120", "--rescue-interval", "0.25",
                "--poll", "0.05")


def test_a_worker_restarted_on_its_host_rescues_the_killed_one_at_once(db, db_url, job_env,
                                                                        tmp_path):
    """A worker killed with SIGKILL and restarted on the same host: the jobs it held, and
    the capacity they took, come back as the new worker starts, not after dead_after, and
    run at once, not at its next poll."""
    log = tmp_path / "executions"
    held = [delay(db, rjobs.sleep_first_attempt, str(log), 60.0) for _ in range(2)]
    victim = spawn(db_url, job_env, *SLOW_SILENCE, "--hostname", "host", channels="root:2",
                   log=tmp_path / "victim.log")
    successor = None
    try:
        wait_until(lambda: state_counts(db).get("started") == 2, message="jobs started")
        behind = delay(db, rjobs.sleep_first_attempt, str(log), 0.0)  # waits for room
        kill(victim)
        assert wait_exit(victim, 30) == -signal.SIGKILL
        # a poll of a minute: the rescued jobs start because the rescuer claims at once
        successor = spawn(db_url, job_env, *SLOW_SILENCE, "--poll", "60", "--hostname", "host",
                          channels="root:2", log=tmp_path / "successor.log")
        wait_until(lambda: state_counts(db) == {"done": 3}, timeout=40,
                   message="the killed worker's jobs rescued and everything done")
    finally:
        stop_process(victim)
        code = stop_process(successor) if successor else None
    assert code == 0
    [victim_id] = [worker["id"] for worker in queuejob.operations.workers(db)
                   if worker["pid"] == victim.pid]
    assert {w["id"]: w["state"] for w in queuejob.operations.workers(db)}[victim_id] == "dead"
    for job_uuid in held:
        job = row(db, job_uuid)
        assert (job["worker_deaths"], job["attempt"], job["result"]) == (1, 2, "quick")
    assert row(db, behind)["worker_deaths"] == 0
    successor_log = read_log(tmp_path / "successor.log")
    assert f"worker {victim_id} (pid {victim.pid} on host) is gone: marked dead" in successor_log
    assert "missed its heartbeats" not in successor_log


def test_only_a_gone_process_of_the_same_host_is_judged_by_its_pid(db, db_url, job_env,
                                                                   tmp_path):
    """Hand-written workers, each holding a job, heartbeats fresh: only the one of this
    host's process space whose pid has no process is marked dead and rescued; a live pid,
    another host's (or container's) space, or no space at all leave the heartbeat to judge."""
    from queuejob.core.channels import ChannelTree
    from queuejob.worker import liveness
    space = liveness.process_space()
    assert space is not None, "this host's kernel tells its boot id and pid namespace"
    log = tmp_path / "executions"
    for _ in range(4):
        delay(db, rjobs.sleep_first_attempt, str(log), 0.0)
    sleeper = subprocess.Popen(["sleep", "120"])
    ended = subprocess.Popen(["true"])
    ended.wait()
    workers = {"same-space-alive": (sleeper.pid, space),
               "other-space": (ended.pid, "another-boot/4026531836"),
               "no-space": (ended.pid, None),
               "same-space-gone": (ended.pid, space)}
    held: dict[str, str] = {}

    def register(conn):
        for worker_id, (pid, worker_space) in workers.items():
            db.store.register_worker(conn, worker_id, "host", pid, "", None,
                                     process_space=worker_space)
            [claimed] = claim(db, conn, worker_id, ChannelTree.from_string("root:20"), {}, 1)
            held[worker_id] = claimed["uuid"]
    db.run(register)
    watcher = spawn(db_url, job_env, *SLOW_SILENCE, "--hostname", "watcher",
                    log=tmp_path / "watcher.log")
    try:
        wait_until(lambda: row(db, held["same-space-gone"])["state"] == "done", timeout=30,
                   message="the gone worker's job rescued and done")
        states = {w["id"]: w["state"] for w in queuejob.operations.workers(db)}
        jobs_now = {worker_id: row(db, job_uuid)["state"] for worker_id, job_uuid in held.items()}
    finally:
        sleeper.kill()
        sleeper.wait()
        assert stop_process(watcher) == 0
    assert {worker_id: states[worker_id] for worker_id in workers} == {
        "same-space-alive": "alive", "other-space": "alive", "no-space": "alive",
        "same-space-gone": "dead"}
    assert jobs_now == {"same-space-alive": "started", "other-space": "started",
                        "no-space": "started", "same-space-gone": "done"}


# -- 4. fencing ------------------------------------------------------------------------------
def test_a_paused_worker_s_late_completion_changes_nothing(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    first_attempt = 2.0
    job_uuid = delay(db, rjobs.sleep_first_attempt, str(log), first_attempt)
    paused = spawn(db_url, job_env, *FAST, "--hostname", "paused", "--concurrency", "1",
                   log=tmp_path / "paused.log")
    other = None
    try:
        wait_until(lambda: row(db, job_uuid)["state"] == "started", message="started")
        started = time.monotonic()
        freeze(paused, db)
        other = spawn(db_url, job_env, *FAST, "--hostname", "other", log=tmp_path / "other.log")
        wait_until(lambda: row(db, job_uuid)["state"] == "done", timeout=20,
                   message="rescued and finished elsewhere")
        finished = row(db, job_uuid)
        assert (finished["attempt"], finished["retry"], finished["result"]) == (2, 2, "quick")
        # the paused attempt's sleep is over: once resumed, it completes at once
        wait_until(lambda: time.monotonic() - started > first_attempt + 0.2,
                   message="the paused attempt's time")
        kill(paused, signal.SIGCONT)
        wait_until(lambda: "lost ownership" in read_log(tmp_path / "paused.log"), timeout=20,
                   message="the late completion logged as lost ownership")
        wait_until(lambda: len(executions(log)) == 2, message="both runs logged")
        assert row(db, job_uuid) == finished
    finally:
        if paused.poll() is None:
            kill(paused, signal.SIGCONT)
        codes = [stop_process(paused)] + ([stop_process(other)] if other else [])
    assert codes == [0, 0]
    assert row(db, job_uuid) == finished
    assert sorted(run[1] for run in executions(log)) == [1, 2]
    assert f"job {job_uuid}: lost ownership of attempt 1" in read_log(tmp_path / "paused.log")


# -- 5. poison job ---------------------------------------------------------------------------
def test_a_job_that_kills_its_worker_fails_after_max_retries(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    normal_log = tmp_path / "normal"
    poison = delay(db, jobs.kill_worker, str(log), max_retries=3)
    with db.session() as session:
        normal = [jobs.record.delay(session, "m", str(normal_log)) for _ in range(200)]
    deaths = 0
    deadline = time.monotonic() + 120
    while row(db, poison)["state"] != "failed":
        assert time.monotonic() < deadline, "the poison job never failed"
        worker = spawn(db_url, job_env, *VERY_FAST, log=tmp_path / "workers.log")
        try:
            wait_until(lambda worker=worker: worker.poll() is not None
                       or row(db, poison)["state"] == "failed", timeout=30,
                       message="the worker killed by its job, or the poison job failed")
        finally:
            stop_process(worker)
        deaths += worker.returncode == -signal.SIGKILL
    assert deaths == 3
    assert len(executions(log)) == 3
    job = row(db, poison)
    assert (job["state"], job["retry"], job["worker_deaths"]) == ("failed", 3, 3)
    assert job["exc_info"] == "worker died while running this job (3 times)"
    # the normal jobs of the last victim are rescued too; a worker finishes them all
    worker = spawn(db_url, job_env, *VERY_FAST, log=tmp_path / "last.log")
    try:
        wait_until(lambda: all(rows(db)[u]["state"] == "done" for u in normal), timeout=60,
                   message="the 200 normal jobs done")
    finally:
        assert stop_process(worker) == 0
    assert set(Counter(run[0] for run in executions(normal_log))) == set(normal)
    assert state_counts(db) == {"done": 200, "failed": 1}


# -- 6. many rescuers ------------------------------------------------------------------------
def test_workers_rescuing_at_once_rescue_each_job_once(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log)) for _ in range(20)]
    from queuejob.core.channels import ChannelTree
    db.run(lambda conn: db.store.register_worker(conn, "ghost", "nowhere", 1, "root:20"))
    claimed = db.run(lambda conn: claim(db,
        conn, "ghost", ChannelTree.from_string("root:20"), {}, 20))
    assert len(claimed) == 20
    age_heartbeat(db, "ghost", 600)  # went silent ten minutes ago
    logs = [tmp_path / f"rescuer{n}.log" for n in range(4)]
    rescuers = [spawn(db_url, job_env, *VERY_FAST, log=path) for path in logs]
    try:
        wait_until(lambda: state_counts(db) == {"done": 20}, timeout=30, message="all done")
    finally:
        codes = [stop_process(rescuer) for rescuer in rescuers]
    assert codes == [0] * 4
    assert rescued_in_logs(*logs) == 20
    assert Counter(run[0] for run in executions(log)) == Counter(uuids)
    for job in rows(db).values():
        assert (job["retry"], job["worker_deaths"], job["attempt"]) == (2, 1, 2)


# -- 7. per-job timeouts ---------------------------------------------------------------------
def test_jobs_over_their_timeout_are_stopped_and_retried_while_others_go_on(
        db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    # the decorator's timeout (0.3 s) on a sleeping job, a .delay() timeout on a CPU-bound
    # one: both stopped each time, then failed once their retries are used up
    by_decorator = delay(db, jobs.slow_with_timeout, str(log), 30.0, max_retries=2)
    by_delay = delay(db, jobs.spin, str(log), 60.0, timeout=0.3, max_retries=2)
    # stopped once, retried, then succeeds: handled like any retryable failure
    once = delay(db, rjobs.time_out_first_attempt, str(log), 30.0, timeout=0.5)
    assert (row(db, by_decorator)["timeout"], row(db, by_delay)["timeout"]) == (0.3, 0.3)
    with db.session() as session:
        others = [jobs.record.delay(session, "m", str(log), 0.05, priority=20)
                  for _ in range(30)]
    worker = spawn(db_url, job_env, "--poll", "0.05", "--concurrency", "2",
                   log=tmp_path / "worker.log")
    try:
        wait_until(lambda: row(db, by_decorator)["state"] == "failed"
                   and row(db, by_delay)["state"] == "failed"
                   and row(db, once)["state"] == "done", timeout=60, message="outcomes")
        wait_until(lambda: all(row(db, u)["state"] == "done" for u in others), timeout=30,
                   message="the other jobs done")
        assert worker.poll() is None, "the worker exited"
    finally:
        assert stop_process(worker) == 0
    for job_uuid in (by_decorator, by_delay):
        job = row(db, job_uuid)
        assert job["retry"] == 2
        assert "Max. retries (2) reached: timed out after 0.3 s" in job["exc_info"]
    job = row(db, once)
    assert (job["retry"], job["result"]) == (2, "attempt 2")
    ran = Counter(run[0] for run in executions(log))
    assert ran == Counter([once, *others])  # the stopped attempts never reached their end
    assert read_log(tmp_path / "worker.log").count("stopping it") >= 5
