"""Periodic jobs: each slot delays one job across workers and machines."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from itertools import pairwise

import pytest

import queuejob
from queuejob.core.cron import Schedule, due_slots, latest_slot, next_slot
from tests import jobs
from tests.helpers import job_rows, spawn_worker, stop_process, wait_until


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_slots_of_a_cron_expression():
    every_five = Schedule("s", jobs.noop, "*/5 * * * *")
    assert latest_slot("*/5 * * * *", utc(2026, 1, 1, 10, 7)) == utc(2026, 1, 1, 10, 5)
    assert latest_slot("*/5 * * * *", utc(2026, 1, 1, 10, 5)) == utc(2026, 1, 1, 10, 5)
    assert next_slot("*/5 * * * *", utc(2026, 1, 1, 10, 5)) == utc(2026, 1, 1, 10, 10)
    # missed slots are not piled up: only the latest
    assert due_slots(every_five, utc(2026, 1, 1, 9, 0), utc(2026, 1, 1, 10, 7)) == \
        [utc(2026, 1, 1, 10, 5)]
    assert due_slots(every_five, utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 10, 7)) == []
    catching_up = Schedule("c", jobs.noop, "*/5 * * * *", catch_up=True)
    assert due_slots(catching_up, utc(2026, 1, 1, 9, 50), utc(2026, 1, 1, 10, 7)) == \
        [utc(2026, 1, 1, 9, 55), utc(2026, 1, 1, 10, 0), utc(2026, 1, 1, 10, 5)]


def test_a_bad_cron_expression_is_refused():
    with pytest.raises(ValueError, match="bad cron expression"):
        queuejob.schedule(jobs.noop, cron="every tuesday")


def test_each_slot_runs_once_with_four_workers_on_two_machines(db, db_url, job_env, tmp_path):
    log = tmp_path / "cron"
    env = dict(job_env, QUEUEJOB_TEST_CRON_LOG=str(log))
    workers = [spawn_worker(db_url, env, "--module", "tests.cron_jobs", "--poll", "0.1",
                            "--hostname", f"machine{n % 2}", log=tmp_path / f"w{n}.log")
               for n in range(4)]

    def slots():
        if not log.exists():
            return []
        return [line.split() for line in log.read_text().splitlines()]
    try:
        wait_until(lambda: len({s[0] for s in slots()}) >= 4, timeout=60,
                   message="four slots run")
    finally:
        for worker in workers:
            stop_process(worker)
    runs = slots()
    per_slot = Counter(slot for slot, _, _ in runs)
    assert max(per_slot.values()) == 1, per_slot
    times = sorted(float(slot) for slot in per_slot)
    # consecutive slots, none skipped
    assert all(later - earlier == pytest.approx(2.0) for earlier, later in pairwise(times))
    named = [row for row in job_rows(db, limit=1000, func_name=
             "tests.cron_jobs.report")]
    assert named and all(row["priority"] == 3 and row["model_name"] == "account.report"
                         for row in named)
    states = {row["name"]: row for row in db.read(db.store.schedule_states)}
    assert {"tests.cron_jobs.every_two_seconds", "daily-report"} <= set(states)


def test_operations_list_the_next_runs(db):
    import tests.cron_jobs  # noqa: F401 - registers its schedules in this process
    rows = {row["name"]: row for row in queuejob.operations.schedules(db)}
    entry = rows["daily-report"]
    assert entry["cron"] == "* * * * * */3" and entry["function"] == "tests.cron_jobs.report"
    now = dt.datetime.now(dt.UTC)
    assert now < entry["next_run"] <= now + dt.timedelta(seconds=3.5)
