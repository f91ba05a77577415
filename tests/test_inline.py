"""Short jobs run on the worker loop's own thread once their function earned it (a run
of short attempts), never jobs with a timeout nor async ones; a function whose inline
attempt turned slow goes back to job threads and must earn it again, twice as long."""

from __future__ import annotations

from queuejob.worker import inline
from queuejob.worker.inline import MAX_STREAK, STREAK, ShortJobs
from tests import jobs
from tests.helpers import ThreadWorker, states, wait_until

JOB_THREAD = "-job-"  # in the names of job threads, never in the loop's


def threads_of(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- the rule ---------------------------------------------------------------------------
def test_a_function_runs_inline_after_a_streak_of_short_attempts():
    short = ShortJobs()
    for _ in range(STREAK - 1):
        short.ended("f", inline.SHORT / 2, inline=False)
    assert not short.inline("f")
    short.ended("f", inline.SHORT / 2, inline=False)
    assert short.inline("f") and not short.inline("g")
    short.ended("f", inline.SHORT * 2, inline=False)  # one slow attempt: the streak again
    assert not short.inline("f")


def test_a_slow_inline_attempt_doubles_the_streak_needed_up_to_a_bound():
    short = ShortJobs()
    needed = STREAK
    for _ in range(12):
        for _ in range(needed):
            short.ended("f", 0.0, inline=False)
        assert short.inline("f")
        short.ended("f", inline.LONG, inline=True)
        assert not short.inline("f")
        needed = min(needed * 2, MAX_STREAK)
    for _ in range(MAX_STREAK - 1):
        short.ended("f", 0.0, inline=False)
    assert not short.inline("f")
    short.ended("f", 0.0, inline=False)
    assert short.inline("f")


def test_a_slow_attempt_on_a_job_thread_only_resets_the_streak():
    short = ShortJobs()
    short.ended("f", inline.LONG * 10, inline=False)
    for _ in range(STREAK):
        short.ended("f", 0.0, inline=False)
    assert short.inline("f")


# -- in a worker --------------------------------------------------------------------------
def run_in_order(db, calls, tmp_path, channels="root:1"):
    """Delay ``calls`` (keyword arguments of on_thread's delay) in that order, run them
    one at a time; the thread names they logged, in order."""
    path = tmp_path / "threads"
    with db.session() as session:
        for priority, options in enumerate(calls):
            jobs.on_thread.delay(session, "m", str(path), priority=priority, **options)
    with ThreadWorker(db, channels=channels, poll_interval=0.05):
        wait_until(lambda: len(threads_of(path)) == len(calls), timeout=60,
                   message="every job ran")
    return threads_of(path)


def test_short_jobs_run_on_the_loop_thread_once_their_function_earned_it(db, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(inline, "SHORT", 1.0)  # any attempt of these tests is short
    names = run_in_order(db, [{}] * (STREAK + 10), tmp_path)
    assert all(JOB_THREAD in name for name in names[:STREAK]), names
    assert not any(JOB_THREAD in name for name in names[STREAK:]), names


def test_jobs_with_a_timeout_never_run_on_the_loop_thread(db, tmp_path, monkeypatch):
    monkeypatch.setattr(inline, "SHORT", 1.0)
    names = run_in_order(db, [{}] * STREAK + [{"timeout": 30}] * 5 + [{}], tmp_path)
    assert all(JOB_THREAD in name for name in names[:STREAK + 5]), names
    assert JOB_THREAD not in names[-1]  # the function had earned it all along


def test_an_inline_job_that_turned_slow_sends_its_function_back_to_job_threads(
        db, tmp_path, monkeypatch):
    monkeypatch.setattr(inline, "SHORT", 0.5)
    monkeypatch.setattr(inline, "LONG", 0.6)
    calls = [{}] * (STREAK + 2) + [{"seconds": 0.7}] + [{}] * (2 * STREAK + 1)
    names = run_in_order(db, calls, tmp_path)
    slow = STREAK + 2
    assert JOB_THREAD not in names[slow]  # it ran inline, and took LONG
    # twice the streak on job threads, then back on the loop's thread
    assert all(JOB_THREAD in name for name in names[slow + 1:slow + 1 + 2 * STREAK]), names
    assert JOB_THREAD not in names[-1]


def test_short_jobs_inline_beside_job_threads_all_run_once(db, tmp_path, monkeypatch):
    monkeypatch.setattr(inline, "SHORT", 1.0)
    # a loaded machine may make an attempt slow: it must not send the function back
    monkeypatch.setattr(inline, "LONG", 5.0)
    names = run_in_order(db, [{}] * 200, tmp_path, channels="root:8")
    assert len(names) == 200
    # the streak earned on job threads, and at most root's capacity started on them
    # meanwhile
    assert sum(JOB_THREAD not in name for name in names) >= 200 - STREAK - 8
    assert states(db) == {"done": 200}
