"""Channel rules mean one thing everywhere: a worker's ``--channels`` holds across all the
workers of the database (as under the original's single job runner), stored rules win,
disagreeing workers get the most restrictive rule and are shown; ``--concurrency``
bounds one process; the successor's grammar (``paused``, ``name:0``, ``root:0``)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import operations
from queuejob.cli.app import cli
from queuejob.core.channels import (
    ChannelSpec,
    WorkerChannels,
    combine,
    format_spec,
    parse_channels,
)
from queuejob.core.errors import ConfigurationError
from tests import jobs
from tests.helpers import (
    ThreadWorker,
    executions,
    max_overlap,
    spawn_worker,
    states,
    stop_process,
    wait_until,
)


# -- the grammar -----------------------------------------------------------------------------------
def test_the_successors_grammar_is_accepted():
    specs = {spec.name: spec for spec in parse_channels(
        "root:4,export:1:sequential,crm:0:paused,mail:2:throttle=1.5")}
    assert specs["root"].capacity == 4
    assert specs["root.export"] == ChannelSpec("root.export", 1, sequential=True)
    # 0: no capacity of its own (the successor's meaning)
    assert specs["root.crm"] == ChannelSpec("root.crm", None, paused=True)
    assert specs["root.mail"].throttle == 1.5


def test_root_zero_is_a_worker_that_takes_no_jobs_and_declares_nothing():
    parsed = WorkerChannels.parse("root:0,export:1")
    assert parsed.concurrency == 0
    assert [spec.name for spec in parsed.declared] == ["root.export"]
    assert WorkerChannels.parse("root:4").concurrency == 4
    assert WorkerChannels.parse("export:1").concurrency is None
    assert WorkerChannels.parse("").declared == ()


@pytest.mark.parametrize(("text", "said"), [
    ("root:4:sequencial", "unknown key 'sequencial' (known: sequential, throttle, paused"),
    ("root:-1", "capacity must be 0 (no limit of its own) or more"),
    ("root:4:paused=later", "paused takes no value"),
    ("export:3:sequential", "a sequential channel must have capacity 1"),
])
def test_what_the_grammar_refuses_is_said_in_one_line(text, said):
    with pytest.raises(ConfigurationError) as caught:
        parse_channels(text)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_the_worker_command_refuses_an_unknown_key_in_one_line(db_url):
    result = CliRunner().invoke(cli, ["worker", "--db", db_url, "--module", "tests.jobs",
                                      "--channels", "root:4,export:1:sequencial", "--burst"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unknown key 'sequencial'" in lines[0], result.output


SPECS = st.builds(
    lambda name, capacity, sequential, throttle, paused: ChannelSpec(
        name, 1 if sequential else capacity, sequential=sequential, throttle=throttle,
        paused=paused),
    st.sampled_from(["root", "root.export", "root.export.pdf", "root.crm"]),
    st.one_of(st.none(), st.integers(1, 50)), st.booleans(),
    st.sampled_from([0.0, 0.5, 2.0, 60.0]), st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.lists(SPECS, min_size=1, max_size=6))
def test_a_spec_written_out_reads_back_the_same(specs):
    for spec in specs:
        assert parse_channels(format_spec(spec)) == [spec]


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["w1", "w2", "w3"]),
                       st.lists(SPECS, max_size=4, unique_by=lambda spec: spec.name),
                       max_size=3),
       st.lists(SPECS, max_size=2, unique_by=lambda spec: spec.name))
def test_combined_rules_are_stored_ones_else_the_strictest_declared(declared, stored):
    tree, sources = combine(stored, declared)
    stored_names = {spec.name for spec in stored}
    for spec in stored:
        assert tree.specs[spec.name] == spec and sources[spec.name].origin == "stored"
    for worker, specs in declared.items():
        for spec in specs:
            rule = tree.specs[spec.name]
            source = sources[spec.name]
            assert worker in source.workers
            assert (worker in source.disagreeing) == (rule != spec)
            if spec.name in stored_names:
                continue
            assert source.origin == "workers"
            # never looser than any worker asked
            if spec.capacity is not None:
                assert rule.capacity is not None and rule.capacity <= spec.capacity
            assert rule.throttle >= spec.throttle
            assert rule.paused or not spec.paused
            assert rule.sequential or not spec.sequential


# -- across workers ------------------------------------------------------------------------------
@pytest.mark.slow
def test_three_worker_processes_sharing_a_channel_string_run_one_export_at_once(
        db, db_url, job_env, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        exports = {jobs.export.delay(session, "m", str(log), seconds=0.05)
                   for _ in range(24)}
        for _ in range(24):
            jobs.record.delay(session, "m", str(log), seconds=0.05)
    workers = [spawn_worker(db_url, job_env, "--poll", "0.05",
                            channels="root:4,root.export:1", log=tmp_path / f"worker{n}.log")
               for n in range(3)]
    try:
        # every worker started (a process stopped while it starts dies of the signal)
        wait_until(lambda: sum(row["state"] == "alive" for row in operations.workers(db))
                   == len(workers), timeout=60, message="workers started")
        wait_until(lambda: states(db) == {"done": 48}, timeout=120, message="all done")
        live = [row for row in operations.workers(db) if row["state"] == "alive"]
        assert len(live) == 3
    finally:
        assert [stop_process(worker) for worker in workers] == [0] * 3
    runs = executions(log)
    assert len(runs) == 48
    export_runs = [(run[3], run[4]) for run in runs if run[0] in exports]
    assert len(export_runs) == 24
    # one export at a time across the three processes (each could run four)
    assert max_overlap(export_runs) == 1
    # and root:4 holds for all: never more than four jobs at once in all
    assert max_overlap([(run[3], run[4]) for run in runs]) <= 4


def _rows(db) -> dict[str, dict]:
    return {row["name"]: row for row in operations.channels(db)}


def test_workers_that_disagree_get_the_strictest_rule_and_are_shown(db):
    with ThreadWorker(db, channels="root:4,root.export:2", name="wide"), \
            ThreadWorker(db, channels="root.export:1:throttle=0.5", name="narrow") as narrow:
        narrow.worker.ready.wait(10)
        wait_until(lambda: len(_rows(db)["root.export"]["declared_by"]) == 2)
        export = _rows(db)["root.export"]
        assert (export["capacity"], export["throttle"], export["source"]) == (1, 0.5, "workers")
        assert export["declared_by"] == ["narrow", "wide"]
        assert export["disagreeing"] == ["wide"]
        assert _rows(db)["root"]["capacity"] == 4
        output = CliRunner().invoke(cli, ["channels", "--db", db.url]).output
        line = next(line for line in output.splitlines() if "export" in line)
        assert "--channels of 2 worker(s)" in line and "differs: wide" in line
        # a stored rule wins over what the workers declare
        operations.set_channel(db, "root.export", 3)
        export = _rows(db)["root.export"]
        assert (export["capacity"], export["source"]) == (3, "stored")
        assert export["disagreeing"] == ["narrow", "wide"]
    # stopped workers declare nothing any more
    assert _rows(db)["root"]["source"] is None and _rows(db)["root"]["capacity"] is None


def test_a_paused_channel_declared_by_one_worker_holds_for_another(db, tmp_path):
    log = tmp_path / "executions"
    with db.session() as session:
        export = jobs.export.delay(session, "m", str(log))
        other = jobs.record.delay(session, "m", str(log))
    with ThreadWorker(db, channels="root.export:1:paused", concurrency=0) as pauser:
        pauser.worker.ready.wait(10)
        queuejob.Worker(db, modules=["tests.jobs"]).run(burst=True)
    assert operations.load_job(db, other)["state"] == "done"
    assert operations.load_job(db, export)["state"] == "pending"
    # once the pausing worker is gone, the rule is gone
    queuejob.Worker(db, modules=["tests.jobs"]).run(burst=True)
    assert operations.load_job(db, export)["state"] == "done"


def test_root_zero_and_concurrency_zero_take_no_jobs(db, tmp_path):
    with db.session() as session:
        uuid = jobs.record.delay(session, "m", str(tmp_path / "log"))
    queuejob.Worker(db, channels="root:0", modules=["tests.jobs"]).run(burst=True)
    queuejob.Worker(db, concurrency=0, modules=["tests.jobs"]).run(burst=True)
    assert operations.load_job(db, uuid)["state"] == "pending"
    with pytest.raises(ConfigurationError, match="concurrency must be a whole number"):
        queuejob.Worker(db, concurrency=-1)


def test_concurrency_bounds_one_process_only(db, tmp_path):
    """Without rules, each process runs its own number of jobs at once."""
    log = tmp_path / "executions"
    with db.session() as session:
        for _ in range(8):
            jobs.record.delay(session, "m", str(log), seconds=0.1)
    worker = queuejob.Worker(db, concurrency=2, modules=["tests.jobs"])
    assert worker.capacity == 2
    worker.run(burst=True)
    runs = executions(log)
    assert len(runs) == 8 and max_overlap([(run[3], run[4]) for run in runs]) <= 2
    assert queuejob.Worker(db, channels="root:3,export:1").capacity == 3
    assert queuejob.Worker(db, channels="export:1").capacity == 4
