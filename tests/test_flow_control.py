"""Flow control held in the database, for all workers: rate limits, per-key capacities
and fair turns between keys, with worker processes on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

import queuejob
from queuejob import operations
from queuejob.cli.app import cli
from queuejob.core.channels import parse_channels
from queuejob.core.errors import ConfigurationError
from tests import jobs
from tests.helpers import (
    ThreadWorker,
    executions,
    max_overlap,
    row,
    spawn_worker,
    states,
    stop_process,
    wait_until,
)
from tests.reliability.common import sql


def _seconds(value) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def started_at(db, uuids) -> list[float]:
    """When each job started, by the database's clock (the claim's time)."""
    return sorted(_seconds(row(db, uuid)["date_started"]) for uuid in uuids)


# -- the grammar -----------------------------------------------------------------------------------
def test_the_flow_options_of_the_channel_grammar():
    [spec] = parse_channels("root.crm:4:rate=100/m:key_capacity=2:fair")
    assert (spec.capacity, spec.rate, spec.key_capacity, spec.fair) == (4, (100, 60.0), 2, True)
    [spec] = parse_channels("crm:rate=3/s")  # the capacity left out: 1, as always
    assert (spec.capacity, spec.rate) == (1, (3, 1.0))


@pytest.mark.parametrize(("text", "said"), [
    ("crm:4:rate=100", "rate '100' is not N/s, N/m or N/h"),
    ("crm:4:rate=100/d", "is not N/s, N/m or N/h"),
    ("crm:4:rate=0/m", "a rate's number of jobs must be a whole number from 1"),
    ("crm:4:key_capacity=0", "key_capacity must be a whole number from 1"),
    ("crm:4:key_capacity=two", "key_capacity needs a whole number"),
    ("crm:1:sequential:fair", "cannot be fair"),
    ("crm:4:fair=yes", "fair takes no value"),
])
def test_malformed_flow_options_are_refused_in_one_line(text, said):
    with pytest.raises(ConfigurationError) as caught:
        parse_channels(text)
    assert said in str(caught.value) and "\n" not in str(caught.value)


# -- rate limits -------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_rate_limit_holds_across_worker_processes(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log), channel="root.crm")
                 for _ in range(16)]
        others = [jobs.record.delay(session, "m", str(log)) for _ in range(8)]
    workers = [spawn_worker(db_url, job_env, "--poll", "0.05",
                            channels="root.crm:4:rate=5/s", log=tmp_path / f"w{n}.log")
               for n in range(3)]
    try:
        # every worker started (a process stopped while it starts dies of the signal)
        wait_until(lambda: sum(row["state"] == "alive" for row in operations.workers(db))
                   == len(workers), timeout=60, message="workers started")
        wait_until(lambda: states(db) == {"done": 24}, timeout=120, message="all done")
    finally:
        assert [stop_process(worker) for worker in workers] == [0] * 3
    starts = started_at(db, uuids)
    # any 6 consecutive starts span more than the window: never 6 within one second
    assert all(later - first >= 1.0 - 1e-6
               for first, later in zip(starts, starts[5:], strict=False))
    # the limit slows the channel down, not the others
    assert max(started_at(db, others)) < starts[-1]


def test_a_burst_run_waits_for_the_rate_window_instead_of_returning(db, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log), channel="root.crm")
                 for _ in range(5)]
    queuejob.Worker(db, channels="root.crm:4:rate=2/s", modules=["tests.jobs"]).run(burst=True)
    assert states(db) == {"done": 5}
    starts = started_at(db, uuids)
    assert starts[4] - starts[0] >= 2.0 - 1e-6 and starts[2] - starts[0] >= 1.0 - 1e-6


@pytest.mark.parametrize("rule", ["root.crm:0:rate=10/h", "root:8,root.crm:0:rate=10/h"])
def test_claims_a_rate_leaves_room_for_count_every_start(db, tmp_path, rule):
    """While a window has room for whole claims, claims take the next jobs in start order
    (no look at channels); every start still counts: the 10 of an hour start, then the
    worker waits for the window with the other 6 pending."""
    log = tmp_path / "executions"
    with db.session() as session:
        uuids = [jobs.record.delay(session, "m", str(log), channel="root.crm")
                 for _ in range(16)]
    with ThreadWorker(db, rule, concurrency=4, poll_interval=0.05) as worker:
        wait_until(lambda: states(db).get("done") == 10
                   and worker.worker.claimer.retry_in is not None, timeout=30,
                   message="the window's 10 jobs done, the worker waiting for the window")
    assert states(db) == {"done": 10, "pending": 6}
    assert worker.worker.claimer.retry_in > 3000
    # one row per claim and channel, counting its starts (the first claim took 4)
    [(used, rows)] = sql(db, "SELECT sum(starts), count(*) FROM queue_rate_start")
    assert used == 10 and rows < 10
    assert sorted(row(db, uuid)["state"] for uuid in uuids[:10]) == ["done"] * 10


def test_a_stored_rate_is_shown_with_its_use(db, tmp_path):
    operations.set_channel(db, "root.crm", 4, rate="3/m")
    [entry] = [row for row in operations.channels(db) if row["name"] == "root.crm"]
    assert entry["rate"] == "3/m" and entry["source"] == "stored"
    result = CliRunner().invoke(cli, ["channels", "--db", db.url])
    assert "rate 3/m" in result.output, result.output


# -- key capacities ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_key_capacity_holds_across_worker_processes(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    by_key: dict[str, set[str]] = {"acme": set(), "globex": set(), "initech": set()}
    with db.session() as session:
        for _ in range(6):
            for key, uuids in by_key.items():
                uuids.add(jobs.record.delay(session, "m", str(log), seconds=0.05,
                                            channel="root.tenants", concurrency_key=key))
    workers = [spawn_worker(db_url, job_env, "--poll", "0.05",
                            channels="root.tenants:8:key_capacity=1", log=tmp_path / f"w{n}.log")
               for n in range(3)]
    try:
        # every worker started (a process stopped while it starts dies of the signal)
        wait_until(lambda: sum(row["state"] == "alive" for row in operations.workers(db))
                   == len(workers), timeout=60, message="workers started")
        wait_until(lambda: states(db) == {"done": 18}, timeout=120, message="all done")
    finally:
        assert [stop_process(worker) for worker in workers] == [0] * 3
    runs = executions(log)
    for key, uuids in by_key.items():
        assert max_overlap([(run[3], run[4]) for run in runs if run[0] in uuids]) == 1, key
    # other keys ran beside it
    assert max_overlap([(run[3], run[4]) for run in runs]) > 1


def test_a_key_at_its_capacity_does_not_hold_back_other_keys(db, tmp_path):
    """The first due jobs in start order all belong to one key: the claim still finds
    the other keys' jobs behind them."""
    log = tmp_path / "executions"
    with db.session() as session:
        crowd = [jobs.record.delay(session, "m", str(log), seconds=0.2, priority=1,
                                   channel="root.tenants", concurrency_key="acme")
                 for _ in range(10)]
        alone = jobs.record.delay(session, "m", str(log), priority=9, channel="root.tenants",
                                  concurrency_key="globex")
    worker = queuejob.Worker(db, channels="root.tenants:4:key_capacity=1", concurrency=4,
                             modules=["tests.jobs"])
    worker.run(burst=True)
    runs = {run[0]: run for run in executions(log)}
    # globex started while acme's first job ran
    assert runs[alone][3] < runs[crowd[0]][4]


# -- fair turns ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fair", [True, False])
def test_fair_turns_let_a_small_key_pass_a_flood(db, tmp_path, fair):
    log = tmp_path / "executions"
    with db.session() as session:
        flood = [jobs.record.delay(session, "m", str(log), channel="root.tenants",
                                   concurrency_key="flood") for _ in range(40)]
        small = [jobs.record.delay(session, "m", str(log), channel="root.tenants",
                                   concurrency_key="small") for _ in range(3)]
    rule = "root.tenants:1:fair" if fair else "root.tenants:1"
    queuejob.Worker(db, channels=rule, concurrency=1, modules=["tests.jobs"]).run(burst=True)
    order = [run[0] for run in executions(log)]
    assert len(order) == 43
    places = sorted(order.index(uuid) for uuid in small)
    if fair:  # the keys take turns: small's three jobs start among the first six
        assert places[-1] < 6, places
        # within a key, the start order stays priority then creation
        assert [uuid for uuid in order if uuid in flood] == flood
    else:  # the original's order: creation
        assert places == [40, 41, 42]


def test_fair_turns_go_round_every_key(db, tmp_path):
    log = tmp_path / "executions"
    keys = [f"tenant{n:02}" for n in range(12)]
    with db.session() as session:
        first = {key: jobs.record.delay(session, "m", str(log), channel="root.tenants",
                                        concurrency_key=key) for key in keys}
        for key in keys:
            jobs.record.delay(session, "m", str(log), channel="root.tenants",
                              concurrency_key=key)
    queuejob.Worker(db, channels="root.tenants:2:fair", concurrency=2,
                    modules=["tests.jobs"]).run(burst=True)
    order = [run[0] for run in executions(log)]
    assert len(order) == 24
    # every key's first job before any key's second one
    assert {order.index(uuid) for uuid in first.values()} == set(range(12))


def test_jobs_without_a_key_take_turns_with_the_keys_of_a_fair_channel(db, tmp_path):
    """Jobs without a key queued behind a flood of one key are one more key: they start
    among the first starts, not after the flood."""
    log = tmp_path / "executions"
    with db.session() as session:
        flood = [jobs.record.delay(session, "m", str(log), channel="root.tenants",
                                   concurrency_key="flood") for _ in range(300)]
        keyless = [jobs.record.delay(session, "m", str(log), channel="root.tenants")
                   for _ in range(3)]
    queuejob.Worker(db, channels="root.tenants:1:fair", concurrency=1,
                    modules=["tests.jobs"]).run(burst=True)
    order = [run[0] for run in executions(log)]
    assert len(order) == 303
    # turns: flood, without a key, flood, ... (the first turn after the cursor's start)
    assert sorted(order.index(uuid) for uuid in keyless) == [0, 2, 4], order[:8]
    assert [uuid for uuid in order if uuid in flood] == flood


def test_a_job_without_a_key_delayed_during_a_flood_of_a_fair_channel_soon_runs(db, tmp_path):
    """A fair channel whose look for jobs without a key found none looks again through
    all its due jobs a second later: one queued behind the flood in the meantime starts
    long before the flood ends."""
    log = tmp_path / "executions"
    with db.session() as session:
        flood = [jobs.record.delay(session, "m", str(log), seconds=0.01,
                                   channel="root.tenants", concurrency_key="flood")
                 for _ in range(600)]
    with ThreadWorker(db, "root.tenants:2:fair", concurrency=2, poll_interval=0.05):
        wait_until(lambda: len(executions(log)) >= 20, timeout=60, message="the flood runs")
        with db.session() as session:
            late = jobs.record.delay(session, "m", str(log), channel="root.tenants")
        wait_until(lambda: late in {run[0] for run in executions(log)}, timeout=60,
                   message="the job without a key ran")
        ran = len(executions(log))
    # with 2 threads of 10 ms jobs the flood lasts 3 s; the job came within about 1 s
    assert ran < len(flood), ran


# -- the claim stays on an index -----------------------------------------------------------------
def test_the_flow_queries_read_their_indexes(db):
    with db.session() as session:
        jobs.noop.delay_many(session, [{"args": ("m",), "concurrency_key": f"k{n % 30}"}
                                        for n in range(3000)], channel="root.tenants")
    if db.dialect == "postgresql":
        sql(db, "ANALYZE queue_job")
        queries = db.connector.queries
        plans = []
        for name, params in (
                ("fair_keys", {"channel": "root.tenants", "after": "", "limit": 10}),
                ("key_candidates", {"channel": ["root.tenants"], "key": ["k1"],
                                    "limit": [5]})):
            def explain(conn, name=name, params=params):
                with conn.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_seqscan = off")
                    cursor.execute("EXPLAIN " + queries[name], params)
                    return "\n".join(str(next(iter(line.values())))
                                     for line in cursor.fetchall())
            plans.append(db.read(explain))
        assert all("queue_job_pending_by_key" in plan for plan in plans), plans
        assert all("Seq Scan on queue_job" not in plan for plan in plans), plans
        # statistics of a flood of one key (an equality on the key looks unselective):
        # another key's candidates still come from the key index, and the jobs without a
        # key from the channel's head, never from a walk of the table
        sql(db, "UPDATE queue_job SET concurrency_key = 'flood'")
        sql(db, "ANALYZE queue_job")

        def plan_of(name, params):
            def explain(conn):
                with conn.cursor() as cursor:
                    cursor.execute("EXPLAIN " + queries[name], params)
                    return "\n".join(str(next(iter(line.values())))
                                     for line in cursor.fetchall())
            return db.read(explain)
        small = plan_of("key_candidates", {"channel": ["root.tenants"], "key": ["small"],
                                           "limit": [5]})
        assert "queue_job_pending_by_key" in small, small
        for scan in (32, None):
            keyless = plan_of("keyless_candidates", {"channel": ["root.tenants"],
                                                     "limit": [5], "scan": [scan]})
            assert "Seq Scan on queue_job" not in keyless, keyless
    else:
        queries = db.connector.queries
        for name, params in (
                ("fair_keys", {"channel": "root.tenants", "after": "", "limit": 10}),
                ("key_candidates", {"channel": "root.tenants", "key": "k1", "limit": 5,
                                    "now": 0.0})):
            plan = db.read(lambda conn, name=name, params=params: conn.execute(
                "EXPLAIN QUERY PLAN " + queries[name], params).fetchall())
            text = "\n".join(str(step["detail"]) for step in plan)
            assert "queue_job_pending_by_key" in text, text
            assert "SCAN queue_job\n" not in text + "\n", text


@pytest.mark.slow
def test_fair_turns_hold_across_worker_processes(db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        flood = [jobs.record.delay(session, "m", str(log), seconds=0.02,
                                   channel="root.tenants", concurrency_key="flood")
                 for _ in range(30)]
        small = [jobs.record.delay(session, "m", str(log), seconds=0.02,
                                   channel="root.tenants", concurrency_key="small")
                 for _ in range(3)]
    workers = [spawn_worker(db_url, job_env, "--poll", "0.05", "--concurrency", "1",
                            channels="root.tenants:2:fair", log=tmp_path / f"w{n}.log")
               for n in range(2)]
    try:
        wait_until(lambda: sum(row["state"] == "alive" for row in operations.workers(db))
                   == len(workers), timeout=60, message="workers started")
        wait_until(lambda: states(db) == {"done": 33}, timeout=120, message="all done")
    finally:
        assert [stop_process(worker) for worker in workers] == [0] * 2
    starts = started_at(db, flood + small)
    small_starts = started_at(db, small)
    # the small key's three jobs start among the first eight, not after the flood
    assert small_starts[-1] <= starts[7], (small_starts, starts[:8])
