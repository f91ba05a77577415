"""Job graphs: chain, group, on_done, and what a parent's end does to its children."""

from __future__ import annotations

import pytest

import queuejob
from queuejob import GraphError, chain, group
from tests import jobs
from tests.helpers import (
    ThreadWorker,
    executions,
    load,
    run_burst,
    spawn_worker,
    states,
    stop_process,
    wait_until,
)


def order(log):
    """Uuids in the order their jobs started."""
    return [run[0] for run in sorted(executions(log), key=lambda run: run[3])]


def test_chain_runs_in_sequence_and_shares_a_graph(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        a, b, c = (jobs.record.delayable(session, "m", str(log)) for _ in range(3))
        chain(a, b, c).delay()
    assert [load(db, d.uuid).state for d in (a, b, c)] == \
        ["pending", "wait_dependencies", "wait_dependencies"]
    graph = {load(db, d.uuid).graph_uuid for d in (a, b, c)}
    assert len(graph) == 1 and None not in graph
    run_burst(db, channels="root:4")
    assert order(log) == [a.uuid, b.uuid, c.uuid]


def test_group_runs_side_by_side_and_on_done_waits_for_all(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        first, second = (jobs.record.delayable(session, "m", str(log), 0.2) for _ in range(2))
        last = jobs.record.delayable(session, "m", str(log))
        group(first, second).on_done(last).delay()
    run_burst(db, channels="root:4")
    runs = {run[0]: run for run in executions(log)}
    assert runs[first.uuid][3] < runs[second.uuid][4] and runs[second.uuid][3] < runs[first.uuid][4]
    assert runs[last.uuid][3] >= max(runs[first.uuid][4], runs[second.uuid][4])


def test_the_composition_of_the_issue(db, tmp_path):
    """group(chain(1, 2), chain(3, 4)).on_done(chain(5, 6))."""
    log = tmp_path / "log"
    with db.session() as session:
        j = [jobs.record.delayable(session, "m", str(log)) for _ in range(7)]
        group(chain(j[1], j[2]), chain(j[3], j[4])).on_done(chain(j[5], j[6])).delay()
    assert j[0].uuid is None  # built, never part of the graph
    run_burst(db, channels="root:4")
    runs = {run[0]: run for run in executions(log)}
    assert len(runs) == 6
    start = {n: runs[j[n].uuid][3] for n in range(1, 7)}
    end = {n: runs[j[n].uuid][4] for n in range(1, 7)}
    assert start[2] >= end[1] and start[4] >= end[3]
    assert start[5] >= max(end[2], end[4]) and start[6] >= end[5]


def test_on_done_makes_several_jobs_wait(db, tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        parent = jobs.record.delayable(session, "m", str(log))
        b, c = (jobs.record.delayable(session, "m", str(log)) for _ in range(2))
        parent.on_done(b, c)
        b.delay()  # any part of the graph stores all of it
    assert load(db, c.uuid).state == "wait_dependencies"
    run_burst(db)
    assert order(log)[0] == parent.uuid and set(order(log)[1:]) == {b.uuid, c.uuid}


def test_a_graph_is_stored_in_the_session_s_transaction(db):
    with pytest.raises(RuntimeError), db.session() as session:
        a, b = (jobs.add.delayable(session, "m", 1, 1) for _ in range(2))
        chain(a, b).delay()
        raise RuntimeError("rolled back")
    assert states(db) == {}


def test_a_job_cannot_depend_on_itself_and_a_cycle_is_refused(db):
    with db.session() as session:
        a = jobs.add.delayable(session, "m", 1, 1)
        with pytest.raises(GraphError, match="itself"):
            a.on_done(a)
        b, c = (jobs.add.delayable(session, "m", 1, 1) for _ in range(2))
        a.on_done(b)
        b.on_done(c)
        c.on_done(a)
        with pytest.raises(GraphError, match="cycle"):
            a.delay()
    assert states(db) == {}


def test_a_failed_parent_holds_its_children_until_requeued_and_done(db, tmp_path):
    flag = tmp_path / "ready"
    with db.session() as session:
        parent = jobs.fail_unless_exists.delayable(session, "m", str(flag))
        child = jobs.add.delayable(session, "m", 1, 1)
        parent.on_done(child).delay()
    run_burst(db)
    assert load(db, parent.uuid).state == "failed"
    assert load(db, child.uuid).state == "wait_dependencies"
    flag.touch()
    with db.session() as session:
        queuejob.requeue(session, parent.uuid)
    with ThreadWorker(db, poll_interval=0.05):
        wait_until(lambda: load(db, child.uuid).state == "done", message="child done")
    assert load(db, parent.uuid).state == "done"


def test_setting_a_failed_parent_done_releases_its_children(db):
    with db.session() as session:
        parent = jobs.fail.delayable(session, "m")
        child = jobs.add.delayable(session, "m", 2, 2)
        parent.on_done(child).delay()
    run_burst(db)
    assert load(db, child.uuid).state == "wait_dependencies"
    with db.session() as session:
        queuejob.set_done(session, parent.uuid)
    assert load(db, child.uuid).state == "pending"
    run_burst(db)
    assert load(db, child.uuid).result == "4"


def test_cancelling_a_parent_cancels_the_jobs_waiting_below_it(db):
    with db.session() as session:
        parent = jobs.fail.delayable(session, "m")
        child, grandchild = (jobs.add.delayable(session, "m", 1, 1) for _ in range(2))
        other_root = jobs.add.delayable(session, "m", 1, 1)
        joined = jobs.add.delayable(session, "m", 1, 1)
        chain(parent, child, grandchild).delay()
        group(other_root).delay()
    run_burst(db)
    with db.session() as session:
        queuejob.cancel(session, parent.uuid)
    assert [load(db, d.uuid).state for d in (parent, child, grandchild)] == ["cancelled"] * 3
    assert load(db, child.uuid).result == "Cancelled: every job it waited for was cancelled"
    assert load(db, child.uuid).date_cancelled is not None
    assert load(db, other_root.uuid).state == "done"
    assert joined.uuid is None


def test_a_waiting_job_is_not_requeued_but_can_be_cancelled_or_set_done(db):
    with db.session() as session:
        parent, child = (jobs.add.delayable(session, "m", 1, 1, eta=3600) for _ in range(2))
        parent.on_done(child).delay()
    with db.session() as session, pytest.raises(queuejob.JobStateError, match="wait"):
        queuejob.requeue(session, child.uuid)
    with db.session() as session:
        queuejob.set_done(session, child.uuid)
    assert load(db, child.uuid).state == "done"


def test_a_graph_is_skipped_only_when_every_keyed_job_exists(db):
    with db.session() as session:
        held = jobs.add.delay(session, "m", 1, 1, identity_key="k1", eta=3600)
    with db.session() as session:
        a = jobs.add.delayable(session, "m", 1, 1, identity_key="k1")
        b = jobs.add.delayable(session, "m", 2, 2, identity_key="k2")
        a.on_done(b).delay()
    assert a.uuid == held and b.uuid != held
    assert load(db, b.uuid).state == "wait_dependencies"  # it waits for the existing job
    with db.session() as session:
        a2 = jobs.add.delayable(session, "m", 1, 1, identity_key="k1")
        b2 = jobs.add.delayable(session, "m", 2, 2, identity_key="k2")
        unkeyed = jobs.add.delayable(session, "m", 3, 3)
        chain(a2, b2, unkeyed).delay()
    assert (a2.uuid, b2.uuid, unkeyed.uuid) == (held, b.uuid, None)
    assert states(db) == {"pending": 1, "wait_dependencies": 1}


def test_many_parents_ending_on_several_workers_release_their_child_once(db, db_url, job_env,
                                                                       tmp_path):
    log = tmp_path / "log"
    with db.session() as session:
        parents = [jobs.record.delayable(session, "m", str(log), 0.01) for _ in range(40)]
        child = jobs.record.delayable(session, "m", str(log))
        group(*parents).on_done(child).delay()
    workers = [spawn_worker(db_url, job_env, "--poll", "0.05")
               for _ in range(3)]
    try:
        wait_until(lambda: states(db) == {"done": 41}, timeout=60, message="all done")
    finally:
        for worker in workers:
            stop_process(worker)
    runs = {run[0]: run for run in executions(log)}
    assert len(executions(log)) == 41
    assert runs[child.uuid][3] >= max(runs[p.uuid][4] for p in parents)


def test_the_cli_prints_a_job_s_graph_as_a_tree(db, db_url):
    from click.testing import CliRunner

    from queuejob.cli.app import cli
    with db.session() as session:
        a, b, c = (jobs.add.delayable(session, "m", 1, 1) for _ in range(3))
        a.on_done(b, c).delay()
    result = CliRunner().invoke(cli, ["jobs", b.uuid, "--db", db_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    graph_at = next(index for index, line in enumerate(lines) if line.startswith("graph "))
    tree = "\n".join(lines[graph_at:])
    assert f"pending {a.uuid[:8]} tests.jobs.add" in tree
    assert f"wait_dependencies {b.uuid[:8]} tests.jobs.add ◀ this job" in tree
    assert f"wait_dependencies {c.uuid[:8]}" in tree
