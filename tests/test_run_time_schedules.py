"""Schedules defined at run time (in the database): one job per slot across three
workers, the missed-run policies, 'run now', the command line's round trips and
refusals, rows written by hand with garbage, and functions no worker registers."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from queuejob import operations
from queuejob.core import schedules as rules
from queuejob.core.channels import WorkerChannels
from queuejob.core.errors import ConfigurationError
from queuejob.storage import RESERVED
from queuejob.worker.context import WorkerContext, WorkerSettings
from queuejob.worker.periodic import ScheduleRunner
from tests import jobs
from tests.helpers import job_rows, spawn_worker, stop_process, wait_until

ZONES = ("UTC", "Europe/Brussels", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
CRONS = ("*/5 * * * *", "0 2 * * *", "30 2 * * 0", "0 */3 * * *", "* * * * * */7",
         "15 1 1 * *")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def schedule(cron: str = "*/5 * * * *", timezone: str = "UTC", missed: str = "once",
             window: float | None = None) -> rules.RunSchedule:
    return rules.check("s", cron, "tests.jobs.noop", "[]", "{}", None, timezone, missed,
                       window)


# -- the pure rules --------------------------------------------------------------------------
moments = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1),
                       timezones=st.just(dt.UTC))


@settings(max_examples=150, deadline=None)
@given(cron=st.sampled_from(CRONS), zone=st.sampled_from(ZONES), now=moments)
@example(cron="30 2 * * 0", zone="Europe/Brussels",  # 02:30 that a change of offset skips
         now=dt.datetime(2020, 3, 29, 1, 0, tzinfo=dt.UTC))
def test_the_latest_and_next_slots_frame_now(cron, zone, now):
    latest = rules.latest_slot(cron, zone, now)
    following = rules.next_slot(cron, zone, now)
    assert latest <= now < following
    # nothing between them: the slot after the latest is the next one
    assert rules.next_slot(cron, zone, latest) == following
    # a slot, read in its time zone, is a time the cron expression names; a time the
    # clock skipped (a change to summer time) runs as the clock jumps, as cron does
    local = latest.astimezone(rules._zone(zone))
    just_before = (latest - dt.timedelta(seconds=1)).astimezone(rules._zone(zone))
    fields = cron.split()
    if fields[0].isdigit() and just_before.utcoffset() == local.utcoffset():
        assert local.minute == int(fields[0])


@settings(max_examples=150, deadline=None)
@given(cron=st.sampled_from(CRONS), zone=st.sampled_from(ZONES), now=moments,
       back=st.integers(0, 40 * 86400), missed=st.sampled_from(rules.MISSED_POLICIES),
       window=st.one_of(st.none(), st.floats(1, 30 * 86400)))
def test_the_missed_run_policy(cron, zone, now, back, missed, window):
    if len(cron.split()) == 6:  # a slot every few seconds: hours of them at most
        back %= 3 * 3600
    last = rules.whole_second(now - dt.timedelta(seconds=back))
    entry = schedule(cron, zone, missed, window)
    plan = rules.plan(entry, last, now)
    latest = rules.latest_slot(cron, zone, now)
    assert list(plan.run) == sorted(set(plan.run))
    assert all(last < slot <= now for slot in plan.run)
    if latest <= last:  # nothing missed, nothing due
        assert plan == rules.Plan(last=None)
        return
    assert plan.last is not None and last < plan.last <= latest
    if missed == rules.ONCE:
        assert plan.run == (latest,)
    elif missed == rules.SKIP:
        grace = window if window is not None else rules.SKIP_GRACE
        late = (now - latest).total_seconds()
        assert plan.run == ((latest,) if late <= grace else ())
    else:
        assert len(plan.run) <= rules.CATCH_UP_LIMIT
        expected = rules.slots_after(cron, zone, last, latest, limit=10_000)
        if window is not None:
            expected = [slot for slot in expected if (now - slot).total_seconds() <= window]
        assert list(plan.run) == expected[:rules.CATCH_UP_LIMIT]
        # a look that ran the limit goes on from its last slot; else from the latest
        assert plan.last == (plan.run[-1] if len(expected) > rules.CATCH_UP_LIMIT else latest)


def test_slots_in_a_time_zone_and_a_fresh_schedule():
    # 02:00 in Brussels is 01:00 UTC in winter, 00:00 UTC in summer
    assert rules.latest_slot("0 2 * * *", "Europe/Brussels", utc(2026, 1, 10, 12)) == \
        utc(2026, 1, 10, 1)
    assert rules.latest_slot("0 2 * * *", "Europe/Brussels", utc(2026, 7, 10, 12)) == \
        utc(2026, 7, 10, 0)
    # never run (or a last slot that is not a time): it starts at the latest, runs nothing
    now = utc(2026, 1, 10, 12, 7)
    assert rules.plan(schedule(), None, now) == rules.Plan(last=utc(2026, 1, 10, 12, 5))
    assert rules.plan(schedule(), "garbage", now) == rules.Plan(last=utc(2026, 1, 10, 12, 5))


@pytest.mark.parametrize(("values", "message"), [
    ({"cron": "every tuesday"}, "bad cron expression"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"args": '{"a": 1}'}, "a JSON list is needed"),
    ({"args": "[1,"}, "not JSON"),
    ({"args": "[NaN]"}, "not JSON"),
    ({"kwargs": "[1]"}, "a JSON object is needed"),
    ({"kwargs": '{"channel": "x"}'}, "option of delay()"),
    ({"channel": "root..x"}, "bad channel"),
    ({"func_name": "not a name"}, "bad job function"),
    ({"name": "has space"}, "bad schedule name"),
    ({"name": "x" * 201}, "bad schedule name"),
    ({"missed": "sometimes"}, "bad missed-run policy"),
    ({"missed_window": 0}, "bad missed-run window"),
    ({"args": json.dumps(["x" * (1024 * 1024)])}, "over the limit"),
    ({"args": "[" * 150 + "]" * 150}, "nest deeper"),
])
def test_bad_definitions_are_refused_in_one_line(values, message):
    row = {"name": "s", "cron": "* * * * *", "func_name": "tests.jobs.noop", "args": "[]",
           "kwargs": "{}", "channel": None, "timezone": "UTC", "missed": "once",
           "missed_window": None, "paused": False, **values}
    with pytest.raises(ConfigurationError, match=re.escape(message)) as caught:
        rules.from_row(row, RESERVED)
    assert "\n" not in str(caught.value)


# -- a worker's look at the stored schedules, in this process ---------------------------------
def runner(db) -> ScheduleRunner:
    context = WorkerContext(db, "test-worker", "test-host", 1, WorkerChannels.parse(""), 1,
                            WorkerSettings())
    # the worker's modules: tests.jobs
    return ScheduleRunner(context, lambda func: func.func.__module__ == jobs.__name__)


def look(db) -> int:
    """One look of a worker at the schedules (its transaction)."""
    return db.run(runner(db).run_once)


def sql(db, text: str, *params: Any) -> None:
    if db.dialect != "sqlite":
        text = text.replace("?", "%s")
    db.run(lambda conn: db.connector.execute_sql(conn, text, params))


def set_last_slot(db, name: str, when: dt.datetime) -> None:
    sql(db, "UPDATE queue_run_schedule SET last_slot = ? WHERE name = ?",
        when.timestamp() if db.dialect == "sqlite" else when, name)


def jobs_of(db, func_name: str = "tests.jobs.noop") -> list[dict[str, Any]]:
    return job_rows(db, func_name=func_name, limit=10_000)


def add_garbage(db) -> None:
    """Rows written by hand: a bad cron, bad JSON, an unknown zone, args of another shape."""
    now = dt.datetime.now(dt.UTC).timestamp() if db.dialect == "sqlite" \
        else dt.datetime.now(dt.UTC)
    for name, cron, args, zone in (("g-cron", "every day at noon", "[]", "UTC"),
                                   ("g-json", "* * * * *", "[1, 2", "UTC"),
                                   ("g-zone", "* * * * *", "[]", "Nowhere/Atlantis"),
                                   ("g-args", "* * * * *", '{"a": 1}', "UTC")):
        sql(db, "INSERT INTO queue_run_schedule (name, cron, func_name, args, kwargs, "
                "timezone, missed, last_slot, date_created, date_updated) "
                "VALUES (?, ?, 'tests.jobs.noop', ?, '{}', ?, 'once', ?, ?, ?)",
            name, cron, args, zone, now, now, now)


def test_the_missed_run_policies_on_the_database(db):
    # a daily slot (noon), missed for five days
    now = dt.datetime.now(dt.UTC)
    last = rules.whole_second(now - dt.timedelta(days=5, hours=1))
    for name, missed, window, zone in (("skip", "skip", None, "UTC"),
                                       ("once", "once", None, "Europe/Brussels"),
                                       ("all", "all", None, "UTC"),
                                       ("window", "all", 2.5 * 86400, "UTC")):
        operations.add_schedule(db, name, cron="0 12 * * *", function="tests.jobs.noop",
                                args=json.dumps(["res.partner", name]), timezone=zone,
                                missed=missed, missed_window=window)
        set_last_slot(db, name, last)
    look(db)
    etas: dict[str, list[dt.datetime]] = {}
    for row in jobs_of(db):
        etas.setdefault(json.loads(row["args"])[1] if isinstance(row["args"], str)
                        else row["args"][1], []).append(row["eta"])
    noons = [dt.datetime.combine(now.date() - dt.timedelta(days=days), dt.time(12),
                                 tzinfo=dt.UTC) for days in range(7, -1, -1)]
    missed_noons = [slot for slot in noons if last < slot <= now]
    newest = missed_noons[-1]
    assert "skip" not in etas  # missed slots skipped
    # once: the latest missed slot, at noon in the schedule's zone
    [once] = etas["once"]
    assert once.astimezone(rules._zone("Europe/Brussels")).hour == 12
    assert now - dt.timedelta(days=1) < once <= now
    assert sorted(etas["all"]) == missed_noons and len(missed_noons) >= 5
    assert sorted(etas["window"]) == [slot for slot in missed_noons
                                      if now - slot <= dt.timedelta(days=2.5)]
    # the last slots moved: a second look delays nothing more
    count = len(jobs_of(db))
    look(db)
    assert len(jobs_of(db)) == count
    listed = {entry["name"]: entry for entry in operations.run_time_schedules(db)}
    assert listed["all"]["last_slot"] == newest and listed["all"]["problem"] is None


def test_run_now_pause_and_resume(db):
    operations.add_schedule(db, "nightly", cron="0 3 * * *", function="tests.jobs.noop",
                            args='["res.partner", 7]', kwargs='{"flag": true}',
                            channel="root.night")
    operations.pause_schedule(db, "nightly")
    operations.run_schedule_now(db, "nightly")
    operations.run_schedule_now(db, "nightly")  # asked twice before a look: one job
    assert look(db) == 1
    assert look(db) == 0
    [job] = jobs_of(db)
    assert job["channel"] == "root.night" and job["identity_key"] is None
    assert json.loads(job["kwargs"]) == {"flag": True} if isinstance(job["kwargs"], str) \
        else job["kwargs"] == {"flag": True}
    # paused: a missed slot gives nothing; resumed: it starts from its next slot
    set_last_slot(db, "nightly", dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    assert look(db) == 0
    operations.resume_schedule(db, "nightly")
    assert look(db) == 0
    [entry] = operations.run_time_schedules(db)
    assert entry["paused"] is False and entry["next_run"] is not None
    assert entry["last_slot"] > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)


def test_garbage_rows_and_unregistered_functions_cost_only_their_schedule(db, tmp_path):
    marker = tmp_path / "must-not-exist"
    add_garbage(db)
    operations.add_schedule(db, "system", cron="* * * * * *", function="os.system",
                            args=json.dumps([f"touch {marker}"]))
    operations.add_schedule(db, "other-module", cron="* * * * * *",
                            function="tests.cron_jobs.report", args='["a", "b"]')
    operations.add_schedule(db, "good", cron="* * * * * *", function="tests.jobs.noop",
                            args='["res.partner"]')
    operations.run_schedule_now(db, "system")
    if db.dialect == "sqlite":  # SQLite keeps any value in any column
        sql(db, "UPDATE queue_run_schedule SET last_slot = 'yesterday', paused = 'maybe', "
                "run_requested = 'x' WHERE name = 'g-cron'")
    wait_until(lambda: look(db) and jobs_of(db), timeout=10, message="the good schedule")
    assert not marker.exists()
    assert job_rows(db, func_name="os.system") == []
    assert job_rows(db, func_name="tests.cron_jobs.report") == []
    listed = {entry["name"]: entry for entry in operations.run_time_schedules(db)}
    assert ("bad paused value" if db.dialect == "sqlite" else "bad cron expression") \
        in listed["g-cron"]["problem"]
    assert "not JSON" in listed["g-json"]["problem"]
    assert "unknown time zone" in listed["g-zone"]["problem"]
    assert "a JSON list is needed" in listed["g-args"]["problem"]
    assert "not registered here" in listed["system"]["problem"]
    assert listed["good"]["problem"] is None
    with pytest.raises(ConfigurationError, match="cannot run"):
        operations.run_schedule_now(db, "g-json")
    operations.remove_schedule(db, "g-json")  # a bad row can be removed
    assert "g-json" not in {entry["name"] for entry in operations.run_time_schedules(db)}


# -- the command line ------------------------------------------------------------------------
def test_the_command_line_round_trip(db, db_url, invoke):
    added = invoke("schedules", "add", "report", "--db", db_url, "--cron", "*/5 * * * *",
                   "--function", "tests.jobs.noop", "--args", '["res.partner", 1]',
                   "--channel", "root.reports", "--timezone", "Europe/Brussels",
                   "--missed", "all", "--missed-window", "3600").stdout
    assert "schedule report: cron */5 * * * *, in Europe/Brussels" in added
    assert "missed all within 3600s" in added
    listing = invoke("schedules", "--db", db_url).stdout
    assert re.search(r"report\s+\*/5 \* \* \* \*\s+Europe/Brussels\s+tests\.jobs\.noop", listing)
    invoke("schedules", "edit", "report", "--db", db_url, "--cron", "0 8 * * 1-5",
           "--kwargs", '{"flag": 1}', "--function-channel", "--no-missed-window")
    invoke("schedules", "pause", "report", "--db", db_url)
    invoke("schedules", "run", "report", "--db", db_url)
    [entry] = json.loads(invoke("schedules", "--db", db_url, "--json").stdout)
    assert entry["cron"] == "0 8 * * 1-5" and entry["kwargs"] == '{"flag":1}'
    assert entry["channel"] is None and entry["missed_window"] is None
    assert entry["paused"] is True and entry["run_requested"] == 1
    assert entry["args"] == '["res.partner",1]' and entry["timezone"] == "Europe/Brussels"
    invoke("schedules", "resume", "report", "--db", db_url)
    assert json.loads(invoke("schedules", "--db", db_url, "--json").stdout)[0]["paused"] \
        is False
    invoke("schedules", "remove", "report", "--db", db_url)
    assert "no schedules defined" in invoke("schedules", "--db", db_url).stdout


@pytest.mark.parametrize(("args", "message"), [
    (("add", "x", "--cron", "bad cron", "--function", "a.b"), "bad cron expression"),
    (("add", "x", "--cron", "* * * * *", "--function", "a.b", "--timezone", "Mars/Base"),
     "unknown time zone"),
    (("add", "x", "--cron", "* * * * *", "--function", "a.b", "--args", "{}"),
     "a JSON list is needed"),
    (("add", "x", "--cron", "* * * * *", "--function", "a.b", "--kwargs", "[]"),
     "a JSON object is needed"),
    (("add", "x", "--cron", "* * * * *", "--function", "a.b", "--channel", "a..b"),
     "bad channel"),
    (("add", "taken", "--cron", "* * * * *", "--function", "a.b"), "already taken"),
    (("add", "x", "--cron", "* * * * *", "--function", "a.b", "--args",
      json.dumps(["x" * (1024 * 1024)])), "over the limit"),
    (("add", "x", "--function", "a.b"), "--cron is needed"),
    (("edit", "taken"), "nothing to edit"),
    (("edit", "nope", "--cron", "* * * * *"), "no schedule 'nope'"),
    (("pause", "nope"), "no schedule"),
    (("run", "nope"), "no schedule"),
    (("remove", "nope"), "no schedule"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(db, db_url, invoke, args, message):
    operations.add_schedule(db, "taken", cron="* * * * *", function="a.b")
    before = operations.run_time_schedules(db)
    result = invoke("schedules", args[0], "--db", db_url, *args[1:], exit_code=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("queuejob: error: "), result.stderr
    assert message in lines[0]
    assert operations.run_time_schedules(db) == before


def test_the_listing_shows_garbage_rows_with_their_problem(db, db_url, invoke):
    add_garbage(db)
    operations.add_schedule(db, "fine", cron="* * * * *", function="tests.jobs.noop")
    listing = invoke("schedules", "--db", db_url).stdout
    for name, problem in (("g-cron", "bad cron expression"), ("g-json", "not JSON"),
                          ("g-zone", "unknown time zone"), ("g-args", "JSON list")):
        line = next(line for line in listing.splitlines() if line.split()[:1] == [name])
        assert problem in line
    entries = {entry["name"]: entry for entry in
               json.loads(invoke("schedules", "--db", db_url, "--json").stdout)}
    assert entries["fine"]["problem"] is None and entries["fine"]["registered"] is True


# -- one job per slot, three workers ---------------------------------------------------------
def test_each_slot_runs_once_with_three_workers(db, db_url, job_env, tmp_path):
    marker = tmp_path / "must-not-exist"
    add_garbage(db)
    operations.add_schedule(db, "system", cron="* * * * * *", function="os.system",
                            args=json.dumps([f"touch {marker}"]))
    operations.add_schedule(db, "every-second", cron="* * * * * *",
                            function="tests.jobs.record",
                            args=json.dumps(["res.partner", str(tmp_path / "runs")]),
                            channel="root.cron", missed="skip")
    logs = [tmp_path / f"w{n}.log" for n in range(3)]
    workers = [spawn_worker(db_url, job_env, "--poll", "0.1", "--hostname", f"m{n}",
                            log=logs[n]) for n in range(3)]

    def done() -> list[dict[str, Any]]:
        return job_rows(db, state="done", func_name="tests.jobs.record", limit=1000)
    try:
        wait_until(lambda: len(done()) >= 5, timeout=40, message="five slots run")
        operations.run_schedule_now(db, "every-second")
        wait_until(lambda: any(row["identity_key"] is None for row in done()), timeout=20,
                   message="the job asked to run now")
    finally:
        for worker in workers:
            stop_process(worker)
    rows = job_rows(db, func_name="tests.jobs.record", limit=1000)
    slots = Counter(row["eta"] for row in rows if row["identity_key"] is not None)
    assert max(slots.values()) == 1, slots
    assert all(row["channel"] == "root.cron" for row in rows)
    assert sum(row["identity_key"] is None for row in rows) == 1  # run now: once
    times = sorted(slots)
    assert len(times) >= 5
    # the slots delayed by all three workers, each by one worker only (the logs say so)
    delayed = Counter()
    for log in logs:
        for found in re.findall(r"schedule every-second: delayed the job of (\S+)",
                                log.read_text()):
            delayed[found] += 1
    assert delayed and max(delayed.values()) == 1, delayed
    # consecutive slots, none skipped after the first
    assert all((later - earlier).total_seconds() == pytest.approx(1.0)
               for earlier, later in pairwise(times)), times
    assert not marker.exists() and job_rows(db, func_name="os.system") == []
    for log in logs:
        assert "Traceback" not in log.read_text()
