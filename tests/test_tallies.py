"""The figures users see are exact, whatever happened to the jobs.

Statistics (``queuejob stats``, the dashboard's counts), the Prometheus metrics (the
totals per channel, the duration and latency histograms), the dashboard's throughput
chart and the functions page (jobs done recently, their average run time) count every
job the database holds, exactly: after jobs are stored, run, failed, cancelled, set
done, requeued and run again, deleted, purged or removed by the workers' cleaner, and
after a job's row is changed by hand with SQL (its channel, function, attempts, dates).
Here every figure is compared with counts made directly with SQL over ``queue_job``,
independently of the product's own reads.

A window of ``seconds`` (the histograms, the functions page) covers the last
``ceil(seconds / 60)`` whole minutes by the database's clock, the current one included:
a done job counts when ``floor(date_done / 60) >= floor(now / 60) - ceil(seconds / 60)
+ 1`` (epoch seconds). Dates are set at the middle of a minute (or deliberately half a
second from its edge), so that no count depends on where the clock stands within the
current minute; a reading is taken again when the minute changes during it.

Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import time
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import operations
from queuejob.operations import Purge
from tests import jobs
from tests.helpers import ThreadWorker, wait_until
from tests.helpers import run_burst as burst
from tests.reliability.common import sql

#: upper bounds (seconds) of the histogram buckets: a value's bucket is how many are <= it
BOUNDS = (0.005, 0.025, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600)
#: the windows (seconds) and throughput spans (minutes) every check reads
WINDOWS = (300.0, 3600.0, 86400.0)
SPANS = (10, 60)
FAR = 24 * 3600  # an eta that keeps a job pending through any burst run
DAY = 86400
#: minutes ago a finished job is placed at: none next to a window's edge in minutes
#: (5, 60, 1440), so the current code's seconds-based windows agree with the new ones
AGO = (1, 2, 10, 30, 100, 600, 3000)
#: run times and queue latencies (seconds), none near a bucket bound; None: never started
DURATIONS = (None, 0.002, 0.01, 0.05, 0.3, 0.7, 2.5, 12.0, 45.0, 120.0, 900.0, 2400.0,
             7200.0)
LATENCIES = (0.001, 0.01, 0.05, 0.3, 0.7, 3.0, 20.0, 45.0, 100.0, 1000.0, 2500.0, 5000.0)
#: eta relative to date_created: None (no eta), before it (date_created counts), a little
#: after it (latency - 0.4 s, or 0), long after it (a start before the eta: latency 0)
ETAS = (None, -30.0, 0.4, 10_000.0)
CHANNELS = ("root", "root.a", "root.a.b", "root.b")
FUNCTIONS = ("tests.jobs.add", "tests.jobs.chatty", "tests.jobs.noop")
#: a function name no job function has (a row changed by hand)
UNKNOWN_FUNCTION = "tests.jobs.renamed"


# -- the clock -------------------------------------------------------------------------------
def now_minute(db: queuejob.Database) -> int:
    """The current minute (since the epoch) by the clock the product reads: PostgreSQL's
    now(), the process's clock on SQLite."""
    if db.dialect == "sqlite":
        return math.floor(time.time() / 60)
    [(minute,)] = sql(db, "SELECT floor(extract(epoch FROM now()) / 60)::bigint")
    return int(minute)


def within_one_minute(db: queuejob.Database, read: Any) -> Any:
    """``read()``, taken again while the clock crossed a minute during it."""
    for _ in range(5):
        before = now_minute(db)
        value = read()
        if now_minute(db) == before:
            return value
    raise AssertionError("the clock crossed a minute during every reading")


def window_minutes(seconds: float) -> int:
    return math.ceil(seconds / 60)


# -- the direct counts (plain SQL over queue_job) ----------------------------------------------
def direct_states(db: queuejob.Database) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for channel, state, count in sql(
            db, "SELECT channel, state, count(*) FROM queue_job GROUP BY channel, state"):
        out[channel][state] = int(count)
    return dict(out)


def direct_totals(db: queuejob.Database) -> dict[str, tuple[int, int, int, int]]:
    """Per channel: jobs stored, sum of their attempts, jobs done, jobs that failed."""
    return {channel: (int(count), int(attempts), int(done), int(failed))
            for channel, count, attempts, done, failed in sql(
                db, "SELECT channel, count(*), coalesce(sum(attempt), 0), "
                    "sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN date_failed IS NULL THEN 0 ELSE 1 END) "
                    "FROM queue_job GROUP BY channel")}


def direct_done(db: queuejob.Database) -> list[tuple[str, int | None, float | None, float | None]]:
    """Every done job: (function, minute of date_done, run time, queue latency); the run
    time and the latency are None when it never started."""
    if db.dialect == "sqlite":
        found = sql(db, "SELECT func_name, date_done, date_done - date_started, "
                        "CASE WHEN date_started IS NULL THEN NULL "
                        "WHEN eta IS NOT NULL AND eta > date_created THEN date_started - eta "
                        "ELSE date_started - date_created END "
                        "FROM queue_job WHERE state = 'done'")
        return [(func, None if done is None else math.floor(done / 60), duration,
                 None if late is None else max(late, 0.0))
                for func, done, duration, late in found]
    found = sql(db, "SELECT func_name, floor(extract(epoch FROM date_done) / 60)::bigint, "
                    "extract(epoch FROM date_done - date_started)::float8, "
                    "CASE WHEN date_started IS NULL THEN NULL "
                    "WHEN eta IS NOT NULL AND eta > date_created "
                    "THEN extract(epoch FROM date_started - eta)::float8 "
                    "ELSE extract(epoch FROM date_started - date_created)::float8 END "
                    "FROM queue_job WHERE state = 'done'")
    return [(func, None if minute is None else int(minute), duration,
             None if late is None else max(late, 0.0))
            for func, minute, duration, late in found]


def direct_per_minute(db: queuejob.Database) -> dict[str, dict[int, int]]:
    """Jobs done per minute of their date_done; jobs that failed per minute of their
    date_failed (whatever their state now)."""
    if db.dialect == "sqlite":
        done = sql(db, "SELECT date_done FROM queue_job "
                       "WHERE state = 'done' AND date_done IS NOT NULL")
        failed = sql(db, "SELECT date_failed FROM queue_job WHERE date_failed IS NOT NULL")
        minutes = {"done": [math.floor(value / 60) for (value,) in done],
                   "failed": [math.floor(value / 60) for (value,) in failed]}
    else:
        minutes = {kind: [int(value) for (value,) in sql(
            db, f"SELECT floor(extract(epoch FROM {column}) / 60)::bigint FROM queue_job "
                f"WHERE {column} IS NOT NULL" + (" AND state = 'done'" if kind == "done"
                                                  else ""))]
            for kind, column in (("done", "date_done"), ("failed", "date_failed"))}
    out: dict[str, dict[int, int]] = {"done": defaultdict(int), "failed": defaultdict(int)}
    for kind, values in minutes.items():
        for minute in values:
            out[kind][minute] += 1
    return out


def direct_unfinished(db: queuejob.Database) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for func, state, count in sql(
            db, "SELECT func_name, state, count(*) FROM queue_job "
                "WHERE state NOT IN ('done', 'cancelled') GROUP BY func_name, state"):
        out[func][state] = int(count)
    return dict(out)


def close(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-6)


def approximately(value: Any) -> Any:
    """``value`` with each float in it compared approximately."""
    if isinstance(value, dict):
        return {key: approximately(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(approximately(item) for item in value)
    return close(value) if isinstance(value, float) else value


def number(value: Any) -> int | float:
    """A figure of the metrics as Prometheus shows it (queuejob.metrics reads what is not
    an int or a float, None included, as 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return value


def expected(db: queuejob.Database, windows: tuple[float, ...] = WINDOWS,
             spans: tuple[int, ...] = SPANS) -> dict[Any, Any]:
    """Every figure, counted directly."""
    states = direct_states(db)
    out: dict[Any, Any] = {"stats": states, "counts": {
        (channel, state): count for channel, by_state in states.items()
        for state, count in by_state.items()}, "totals": direct_totals(db)}
    done = direct_done(db)
    unfinished = direct_unfinished(db)
    per_minute = direct_per_minute(db)
    now = now_minute(db)
    for window in windows:
        first = now - window_minutes(window) + 1
        recent = [row for row in done if row[1] is not None and row[1] >= first]
        timings: dict[tuple[str, str, int], list[Any]] = defaultdict(lambda: [0, 0.0])
        durations: dict[str, list[Any]] = defaultdict(lambda: [0, []])
        for func, _, duration, latency in recent:
            durations[func][0] += 1
            if duration is None:
                continue
            durations[func][1].append(duration)
            for measure, value in (("duration", duration), ("latency", latency)):
                entry = timings[(func, measure, bisect.bisect_right(BOUNDS, value))]
                entry[0] += 1
                entry[1] += value
        out[("timings", window)] = {key: (count, close(seconds))
                                    for key, (count, seconds) in timings.items()}
        out[("functions", window)] = {
            func: (count, close(sum(values) / len(values)) if values else None)
            for func, (count, values) in durations.items()}
    out["unfinished"] = unfinished
    for span in spans:
        first = now - span + 1
        out[("throughput", span)] = {
            "first_minute": first, "minutes": span,
            **{kind: [per_minute[kind].get(minute, 0) for minute in range(first, now + 1)]
               for kind in ("done", "failed")}}
    return out


# -- what users see --------------------------------------------------------------------------
def shown(db: queuejob.Database, windows: tuple[float, ...] = WINDOWS,
          spans: tuple[int, ...] = SPANS) -> dict[Any, Any]:
    """Every figure as the product gives it, in the shape of ``expected``: rows of a
    metric that count nothing are left out (a series at 0 is not a wrong figure)."""
    out: dict[Any, Any] = {"stats": operations.stats(db)}
    for window in windows:
        data = operations.metric_data(db, window)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for row in data["counts"]:
            counts[(row["channel"], row["state"])] += row["jobs"]
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        for row in data["totals"]:
            for index, column in enumerate(("jobs", "attempts", "done", "failed")):
                totals[row["channel"]][index] += number(row[column])
        timings: dict[tuple[str, str, int], list[Any]] = defaultdict(lambda: [0, 0.0])
        for row in data["timings"]:
            entry = timings[(row["func_name"], row["measure"], row["bucket"])]
            entry[0] += number(row["jobs"])
            entry[1] += number(row["seconds"])
        for key, value in (
                ("counts", {key: count for key, count in counts.items() if count}),
                ("totals", {channel: tuple(values) for channel, values in totals.items()
                            if any(values)})):
            assert out.setdefault(key, value) == value, f"{key} differ between readings"
        out[("timings", window)] = {key: tuple(value) for key, value in timings.items()
                                    if value[0]}
        entries = operations.functions(db, window)
        out[("functions", window)] = {entry["name"]: (entry["done_recently"],
                                                      entry["avg_duration"])
                                      for entry in entries if entry["done_recently"]}
        assert all(entry["avg_duration"] is None for entry in entries
                   if not entry["done_recently"])
        unfinished = {entry["name"]: entry["counts"] for entry in entries if entry["counts"]}
        assert out.setdefault("unfinished", unfinished) == unfinished
        listed = {entry["name"] for entry in entries}
        assert set(FUNCTIONS) <= listed
        assert out.setdefault("listed", listed) == listed
    for span in spans:
        out[("throughput", span)] = operations.throughput(db, span)
    return out


def check(db: queuejob.Database, when: str, windows: tuple[float, ...] = WINDOWS,
          spans: tuple[int, ...] = SPANS) -> dict[Any, Any]:
    """Every figure shown equals its direct count (read within one minute of the clock);
    the figures shown."""
    got, want = within_one_minute(db, lambda: (shown(db, windows, spans),
                                               expected(db, windows, spans)))
    # the functions page lists the job functions known here, configured, or of unfinished
    # jobs: a function renamed by hand whose jobs are all finished may not be listed
    listed = got.pop("listed")
    for window in windows:
        want[("functions", window)] = {name: value for name, value
                                       in want[("functions", window)].items()
                                       if name in listed}
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == value, f"{when}: {key} shown {got[key]!r}, counted {value!r}"
    return got


# -- making a history ------------------------------------------------------------------------
def run_burst(db: queuejob.Database) -> None:
    burst(db, listen=False)


def ids(db: queuejob.Database, *states: str) -> list[str]:
    """The uuids of the jobs in ``states`` (any state: none given), oldest first."""
    rows = sql(db, "SELECT uuid, state FROM queue_job ORDER BY id")
    return [str(uuid) for uuid, state in rows if not states or state in states]


def act(db: queuejob.Database, action: Any, *uuids: str, **options: Any) -> None:
    with db.session(context={"user": "tester"}) as session:
        action(session, *uuids, **options)


def stamp(db: queuejob.Database, value: float | None) -> tuple[str, tuple[Any, ...]]:
    """An SQL value for an epoch time (``?``: the parameter)."""
    return ("?" if db.dialect == "sqlite" else "to_timestamp(?::float8)"), (value,)


def place(db: queuejob.Database, job_uuid: str, minute: int, *, into: float = 30.0,
          duration: float | None = 2.5, latency: float = 0.3,
          eta: float | None = None) -> None:
    """Set a job's dates by SQL: done ``into`` seconds into ``minute`` (since the epoch),
    started ``duration`` seconds before (None: never started), created ``latency``
    seconds before it started, its eta ``eta`` seconds after its creation (None: none)."""
    done = minute * 60 + into
    started = None if duration is None else done - duration
    created = (started if started is not None else done - 1.0) - latency
    values = (done, started, created, None if eta is None else created + eta)
    marks = [stamp(db, value)[0] for value in values]
    sql(db, f"UPDATE queue_job SET date_done = {marks[0]}, date_started = {marks[1]}, "
            f"date_created = {marks[2]}, eta = {marks[3]} WHERE uuid = ?",
        (*values, job_uuid))


def set_failed_at(db: queuejob.Database, job_uuid: str, minute: int | None) -> None:
    mark, _ = stamp(db, None)
    sql(db, f"UPDATE queue_job SET date_failed = {mark} WHERE uuid = ?",
        (None if minute is None else minute * 60 + 30.0, job_uuid))


def delete(db: queuejob.Database, *uuids: str) -> None:
    for job_uuid in uuids:
        sql(db, "DELETE FROM queue_job_log WHERE job_uuid = ?", (job_uuid,))
        sql(db, "DELETE FROM queue_job WHERE uuid = ?", (job_uuid,))


def purge(db: queuejob.Database, **criteria: Any) -> int:
    return operations.purge_jobs(db, Purge(**criteria), batch=2, duty=1.0)


def make_jobs(db: queuejob.Database, func_name: str, channel: str, outcome: str,
              count: int) -> list[str]:
    """``count`` jobs of a function in a channel that will be done, fail or stay pending
    when a worker runs (delay_many for add and noop, delay for chatty)."""
    eta = FAR if outcome == "pending" else None
    with db.session() as session:
        if func_name == "tests.jobs.chatty":
            return [jobs.chatty.delay(session, "m", [f"{outcome} {n}"],
                                      fail=outcome == "failed", channel=channel, eta=eta,
                                      max_retries=1) for n in range(count)]
        if func_name == "tests.jobs.add":
            # a bad argument makes it fail
            return jobs.add.delay_many(
                session, [("m", n, "x" if outcome == "failed" else 1) for n in range(count)],
                channel=channel, eta=eta, max_retries=1)
        outcome_eta = eta if outcome != "failed" else FAR  # noop never fails: pending
        return jobs.noop.delay_many(session, [("m", n) for n in range(count)],
                                    channel=channel, eta=outcome_eta)


# -- a history built with the product's own operations --------------------------------------
def test_every_figure_is_exact_through_a_jobs_history(db):
    check(db, "an empty queue")
    with db.session() as session:
        added = jobs.add.delay_many(session, [("m", n, n) for n in range(6)],
                                    channel="root.a")
        broken = jobs.add.delay_many(session, [("m", n, "x") for n in range(2)],
                                     channel="root.a.b", max_retries=1)
        chatty = [jobs.chatty.delay(session, "m", ["hello"], channel="root.b"),
                  jobs.chatty.delay(session, "m", ["bye"], channel="root.b")]
        failing = jobs.chatty.delay(session, "m", ["no"], fail=True, channel="root.b",
                                    max_retries=1)
        noops = jobs.noop.delay_many(session, [("m",), ("m",)])
        later = jobs.noop.delay_many(session, [("m", n) for n in range(3)],
                                     channel="root.b", eta=FAR)
        failed_once = jobs.fail.delay(session, "m", channel="root.a", max_retries=1)
    check(db, "stored, none run")
    run_burst(db)
    assert {state for job_uuid, state in sql(db, "SELECT uuid, state FROM queue_job")
            if str(job_uuid) in [*broken, failing, failed_once]} == {"failed"}
    check(db, "run")

    # finished at various times, some of them outside every window
    minute = now_minute(db)
    for n, job_uuid in enumerate([*added, *chatty, *noops]):
        place(db, job_uuid, minute - AGO[n % len(AGO)], duration=DURATIONS[n % len(DURATIONS)],
              latency=LATENCIES[n % len(LATENCIES)], eta=ETAS[n % len(ETAS)])
    set_failed_at(db, broken[0], minute - 2)
    set_failed_at(db, failing, minute - 600)
    check(db, "dates set")

    # manual actions
    act(db, operations.cancel, later[0], broken[1])
    act(db, operations.set_done, later[1], failed_once)
    check(db, "cancelled and set done")
    act(db, operations.requeue, added[0], added[3], later[0], failing)
    act(db, operations.edit, later[0], eta=None)
    check(db, "requeued")
    run_burst(db)
    check(db, "requeued jobs run again")

    # rows changed by hand
    sql(db, "UPDATE queue_job SET channel = 'root.c' WHERE uuid = ?", (added[1],))
    sql(db, "UPDATE queue_job SET func_name = 'tests.jobs.noop' WHERE uuid = ?", (added[2],))
    sql(db, "UPDATE queue_job SET func_name = ? WHERE uuid = ?", (UNKNOWN_FUNCTION, chatty[0]))
    sql(db, "UPDATE queue_job SET attempt = attempt + 3 WHERE uuid IN (?, ?)",
        (added[3], broken[0]))
    set_failed_at(db, added[4], minute - 1)
    set_failed_at(db, broken[0], None)
    check(db, "rows changed by SQL")

    # removals
    delete(db, added[5], broken[0], later[2])
    check(db, "deleted")
    assert purge(db, older_than=3600, channel="root.a") > 0
    check(db, "purged: root.a finished over an hour ago")
    purge(db, state="cancelled")
    check(db, "purged: cancelled")

    # the workers' cleaner removes what finished over 30 days ago
    expired = ids(db, "done")[:2]
    assert len(expired) == 2
    for job_uuid in expired:
        place(db, job_uuid, now_minute(db) - 40 * 24 * 60)
    check(db, "expired")
    with ThreadWorker(db, cleanup_interval=0.05, listen=False):
        wait_until(lambda: not set(expired) & set(ids(db)), message="expired jobs removed")
    check(db, "the cleaner removed the expired jobs")

    purge(db)
    check(db, "every finished job purged")
    delete(db, *ids(db))
    got = check(db, "every job deleted")
    assert got["stats"] == {} and got["totals"] == {}


# -- the window: whole minutes by the database's clock ----------------------------------------
@pytest.mark.parametrize("window", [60.0, 90.0, 120.0, 3600.0])
def test_a_window_counts_whole_minutes_the_current_one_included(db, window):
    """A window of ``seconds`` covers the last ceil(seconds / 60) whole minutes: a job
    done half a second into its oldest minute counts, one done half a second before it
    does not (wherever the clock stands in the current minute)."""
    with db.session() as session:
        made = jobs.noop.delay_many(session, [("m", n) for n in range(4)])
    run_burst(db)
    span = window_minutes(window)

    def read() -> tuple[dict[Any, Any], dict[Any, Any]]:
        minute = now_minute(db)
        place(db, made[0], minute, into=0.0, duration=0.3)  # the current minute
        place(db, made[1], minute - span + 1, into=0.5, duration=2.5)  # its oldest minute
        place(db, made[2], minute - span, into=59.5, duration=45.0)  # just before
        place(db, made[3], minute - span - 1, duration=900.0)  # before that
        return shown(db, (window,), (span,)), expected(db, (window,), (span,))
    got, want = within_one_minute(db, read)
    for key, value in want.items():
        assert got[key] == value, f"{key} shown {got[key]!r}, counted {value!r}"
    assert got[("functions", window)] == {"tests.jobs.noop": (2, close((0.3 + 2.5) / 2))}
    assert got[("timings", window)] == {
        ("tests.jobs.noop", "duration", 3): (1, close(0.3)),
        ("tests.jobs.noop", "duration", 5): (1, close(2.5)),
        ("tests.jobs.noop", "latency", 3): (2, close(0.6))}
    assert got[("throughput", span)]["done"] == (
        [1, *[0] * (span - 2), 1] if span > 1 else [2])


# -- a generated history ---------------------------------------------------------------------
picks = st.integers(min_value=0, max_value=1000)
creations = st.tuples(st.just("create"), st.sampled_from(FUNCTIONS), st.sampled_from(CHANNELS),
                      st.sampled_from(("done", "failed", "pending")), st.integers(1, 3))
steps = st.one_of(
    creations,
    st.tuples(st.just("run")),
    st.tuples(st.just("place"), picks, st.sampled_from(AGO), st.sampled_from(DURATIONS),
              st.sampled_from(LATENCIES), st.sampled_from(ETAS)),
    st.tuples(st.just("cancel"), picks),
    st.tuples(st.just("set_done"), picks),
    st.tuples(st.just("requeue"), picks),
    st.tuples(st.just("move"), picks, st.sampled_from(CHANNELS)),
    st.tuples(st.just("delete"), picks),
    st.tuples(st.just("purge"), st.sampled_from((0, 3600, 3 * DAY)),
              st.sampled_from((None, "root.a", "root.b")),
              st.sampled_from((None, "done", "cancelled"))),
    st.tuples(st.just("channel"), picks, st.sampled_from((*CHANNELS, "root.z"))),
    st.tuples(st.just("function"), picks, st.sampled_from((*FUNCTIONS, UNKNOWN_FUNCTION))),
    st.tuples(st.just("attempt"), picks, st.integers(0, 7)),
    st.tuples(st.just("failed_at"), picks, st.sampled_from((None, *AGO))),
)


def pick(db: queuejob.Database, index: int, *states: str) -> str | None:
    found = ids(db, *states)
    return found[index % len(found)] if found else None


def apply(db: queuejob.Database, step: tuple[Any, ...]) -> None:
    kind, *args = step
    if kind == "create":
        make_jobs(db, *args)
    elif kind == "run":
        run_burst(db)
    elif kind == "place":
        index, ago, duration, latency, eta = args
        if (job_uuid := pick(db, index, "done")) is not None:
            place(db, job_uuid, now_minute(db) - ago, duration=duration, latency=latency,
                  eta=eta)
    elif kind in ("cancel", "set_done"):
        if (job_uuid := pick(db, args[0], "pending", "failed")) is not None:
            act(db, operations.cancel if kind == "cancel" else operations.set_done, job_uuid)
    elif kind == "requeue":
        if (job_uuid := pick(db, args[0], "done", "cancelled", "failed")) is not None:
            act(db, operations.requeue, job_uuid)
    elif kind == "move":
        if (job_uuid := pick(db, args[0], "pending")) is not None:
            with db.session(context={"user": "tester"}) as session:
                operations.edit(session, job_uuid, channel=args[1])
    elif kind == "delete":
        if (job_uuid := pick(db, args[0])) is not None:
            delete(db, job_uuid)
    elif kind == "purge":
        older_than, channel, state = args
        purge(db, older_than=older_than, channel=channel, state=state)
    elif kind in ("channel", "function"):
        # a finished or failed job: a pending one would run as another function
        if (job_uuid := pick(db, args[0], "done", "cancelled", "failed")) is not None:
            column = "channel" if kind == "channel" else "func_name"
            sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (args[1], job_uuid))
    elif kind == "attempt":
        if (job_uuid := pick(db, args[0])) is not None:
            sql(db, "UPDATE queue_job SET attempt = ? WHERE uuid = ?", (args[1], job_uuid))
    elif kind == "failed_at":
        if (job_uuid := pick(db, args[0])) is not None:
            set_failed_at(db, job_uuid, None if args[1] is None else now_minute(db) - args[1])
    else:  # pragma: no cover
        raise AssertionError(kind)


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(made=st.lists(creations, min_size=1, max_size=4),
       history=st.lists(steps, min_size=1, max_size=12))
def test_every_figure_is_exact_after_any_history(db, made, history):
    # the previous example's jobs are deleted (row by row: a write like any other)
    sql(db, "DELETE FROM queue_job_log")
    sql(db, "DELETE FROM queue_job")
    check(db, "emptied")
    for step in made:
        apply(db, step)
    run_burst(db)
    check(db, f"made and run {made}")
    for number, step in enumerate(history, start=1):
        apply(db, step)
        if number % 4 == 0:
            check(db, f"after step {number} {step}")
    check(db, f"after {history}")
    run_burst(db)
    check(db, "after a last run")


# -- compaction ------------------------------------------------------------------------------
def test_compacting_the_tallies_changes_no_figure(db):
    """The tallies kept by the triggers can be compacted at any time: every figure stays
    exact, before and after, and as new jobs come and go."""
    for func_name, channel, outcome, count in (
            ("tests.jobs.add", "root.a", "done", 5), ("tests.jobs.noop", "root", "done", 4),
            ("tests.jobs.chatty", "root.b", "failed", 2),
            ("tests.jobs.add", "root.a.b", "pending", 2)):
        make_jobs(db, func_name, channel, outcome, count)
    run_burst(db)
    minute = now_minute(db)
    for n, job_uuid in enumerate(ids(db, "done")):
        place(db, job_uuid, minute - AGO[n % len(AGO)], duration=DURATIONS[-1 - n],
              latency=LATENCIES[n], eta=ETAS[n % len(ETAS)])
    act(db, operations.cancel, ids(db, "pending")[0])
    act(db, operations.requeue, ids(db, "done")[0])
    run_burst(db)
    before = check(db, "before compaction")

    db.run(db.store.compact_tallies)
    assert check(db, "after compaction") == approximately(before)
    db.run(db.store.compact_tallies)
    assert check(db, "compacted twice") == approximately(before)

    # the compacted tallies keep following the jobs
    make_jobs(db, "tests.jobs.noop", "root.b", "done", 3)
    run_burst(db)
    act(db, operations.requeue, ids(db, "done")[1])
    delete(db, ids(db, "done")[2])
    sql(db, "UPDATE queue_job SET channel = 'root.c' WHERE uuid = ?", (ids(db, "done")[3],))
    set_failed_at(db, ids(db, "done")[4], now_minute(db) - 2)
    purge(db, state="cancelled")
    check(db, "changes after compaction")
    db.run(db.store.compact_tallies)
    check(db, "compacted again")
    if db.dialect == "postgresql":  # the deltas merged: one row per key
        [(rows, keys)] = sql(db, "SELECT count(*), count(DISTINCT (minute, func_name, "
                                 "duration, latency)) FROM queue_job_minute")
        assert rows == keys
        [(rows, keys)] = sql(db, "SELECT count(*), count(DISTINCT (channel, state)) "
                                 "FROM queue_job_tally")
        assert rows == keys


def test_a_working_worker_keeps_the_tallies_merged(db):
    """PostgreSQL adds a delta row per statement that finishes jobs; a running worker
    merges them, so that the reads sum a few rows, whatever the jobs done."""
    make_jobs(db, "tests.jobs.noop", "root", "done", 60)
    with ThreadWorker(db, channels="root:2", poll_interval=0.05):
        wait_until(lambda: direct_states(db) == {"root": {"done": 60}}, timeout=30,
                   message="all done")
        if db.dialect == "postgresql":
            wait_until(lambda: not sql(db, "SELECT 1 FROM queue_job_minute WHERE fresh"),
                       timeout=30, message="the deltas merged")
            [(rows,)] = sql(db, "SELECT count(*) FROM queue_job_tally")
            assert rows == 1
    check(db, "after the worker")


# -- an upgraded queue -----------------------------------------------------------------------
def tallies_version(connector: Any) -> int:
    [version] = [migration.version for migration in connector.migrations
                 if migration.name.endswith("tallies")]
    return version


def test_a_queue_upgraded_with_its_history_shows_exact_figures(db_url, tmp_path, pg_server):
    """A queue from before the tallies: the migration counts the history there is (the
    minutes of the last two days), and the figures are exact at once."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = pg_server.create_database("queuejob_tallies_upgrade")
    old = queuejob.open(url, migrate=False)
    try:
        before = tallies_version(old.connector) - 1
        old.connector.migrations = [migration for migration in old.connector.migrations
                                    if migration.version <= before]
        assert old.connector.migrate()[-1] == before
        minute = now_minute(old)
        columns = ("uuid, state, func_name, model_name, args, kwargs, channel, priority, "
                   "max_retries, retry, attempt, date_created, date_started, date_done, "
                   "date_failed")
        # done jobs over three days (some beyond the two days of minutes kept), cancelled,
        # failed and pending ones, in two channels and two functions
        for n in range(60):
            state = ("done", "done", "done", "cancelled", "failed", "pending")[n % 6]
            done_at = (minute - (n * 83) % 4400) * 60 + 30.0
            started = done_at - DURATIONS[1 + n % (len(DURATIONS) - 1)]
            created = started - LATENCIES[n % len(LATENCIES)]
            values = [f"00000000-0000-4000-8000-{n:012d}", state,
                      FUNCTIONS[n % 2], "m", '["m"]', "{}", CHANNELS[n % 3], 10, 5,
                      n % 3, n % 4, created,
                      started if state in ("done", "failed") else None,
                      done_at if state in ("done", "cancelled") else None,
                      done_at if state == "failed" or n % 5 == 0 else None]
            if old.dialect == "postgresql":
                values[11:] = [None if value is None else dt.datetime.fromtimestamp(
                    value, dt.UTC) for value in values[11:]]
            sql(old, f"INSERT INTO queue_job ({columns}) VALUES "
                     f"({', '.join('?' * len(values))})", tuple(values))
    finally:
        old.close()
    db = queuejob.open(url)  # the migration to the tallies
    try:
        assert db.schema_status().state == "current"
        figures = check(db, "upgraded")
        assert figures
        assert sum(direct_states(db).get(channel, {}).get("done", 0)
                   for channel in CHANNELS) == 30
        # and they follow the jobs from then on
        make_jobs(db, "tests.jobs.add", "root", "done", 3)
        run_burst(db)
        check(db, "run after the upgrade")
    finally:
        db.close()


def test_a_metrics_window_longer_than_the_minutes_kept_is_refused(db, invoke):
    """The histograms read the minutes kept (two days): a longer window is refused, not
    answered with part of it."""
    make_jobs(db, "tests.jobs.noop", "root", "done", 2)
    run_burst(db)
    shown_text = invoke("metrics", "--db", db.url, "--window", "172800").stdout
    assert 'queuejob_job_duration_seconds_gcount{function="tests.jobs.noop"} 2.0' in shown_text
    assert "in the last 2880 minutes" in shown_text
    result = invoke("metrics", "--db", db.url, "--window", "172801", exit_code=2)
    assert "172801" in result.stderr and "Traceback" not in result.output
