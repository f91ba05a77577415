"""Finished jobs and their history: on PostgreSQL done and cancelled jobs live in a
partition of their own (queue_job_history, the unfinished ones in queue_job_live), which
users never see: a finished job is still loaded, listed and requeued, and identity keys
mean what they meant. A queue from before the partition keeps working at once, its
finished jobs moved afterwards (``queuejob migrate``, or the workers' cleaner). And
``queuejob purge`` removes finished jobs now, by age, channel, function and state, with
their log lines and batch memberships; failed and unfinished jobs never.

Every test runs on SQLite and on PostgreSQL, but the upgrade (PostgreSQL's alone).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import NoSuchJobError, operations
from queuejob.operations import JobFilter, Purge
from tests import jobs
from tests.helpers import ThreadWorker, refused, wait_until
from tests.helpers import run_burst as burst
from tests.reliability.common import sql

FAR = 24 * 3600  # an eta that keeps a job pending through any burst run
DAY = 86400
FINISHED = ("done", "cancelled")


# -- helpers ---------------------------------------------------------------------------------
def run_burst(db: queuejob.Database) -> None:
    """Run what is due, then return (the worker polls: no listener to start and stop)."""
    burst(db, listen=False)


def jobs_by_uuid(db: queuejob.Database) -> dict[str, str]:
    """Every job of the queue: {uuid: state}."""
    return {str(uuid): state for uuid, state in sql(db, "SELECT uuid, state FROM queue_job")}


def logged(db: queuejob.Database) -> set[str]:
    """The jobs that have log rows."""
    return {str(uuid) for (uuid,) in sql(db, "SELECT DISTINCT job_uuid FROM queue_job_log")}


def in_batches(db: queuejob.Database) -> set[str]:
    return {str(uuid) for (uuid,) in sql(db, "SELECT job_uuid FROM queue_batch_job")}


def partition(db: queuejob.Database, job_uuid: str) -> str:
    """The partition holding the job (PostgreSQL)."""
    [(name,)] = sql(db, "SELECT tableoid::regclass::text FROM queue_job WHERE uuid = ?",
                    (job_uuid,))
    return name


def finished_ago(db: queuejob.Database, ages: dict[str, float]) -> None:
    """Set the end date of finished jobs: {uuid: seconds ago}."""
    now = time.time()

    def run(conn: Any) -> None:
        for job_uuid, age in ages.items():
            if db.dialect == "sqlite":
                db.connector.execute_sql(
                    conn, "UPDATE queue_job SET date_done = ? WHERE uuid = ?",
                    (now - age, job_uuid))
            else:
                db.connector.execute_sql(
                    conn, "UPDATE queue_job SET date_done = now() - make_interval(secs => %s) "
                          "WHERE uuid = %s", (float(age), job_uuid))
    db.run(run)


def listed(db: queuejob.Database, **filters: Any) -> list[str]:
    return [row["uuid"] for row in operations.find_jobs(db, JobFilter(**filters),
                                                        limit=500).rows]


def delay(db: queuejob.Database, func: Any, *args: Any, **options: Any) -> str:
    with db.session() as session:
        return func.delay(session, "m", *args, **options)


def cancel(db: queuejob.Database, *uuids: str) -> None:
    if not uuids:
        return
    with db.session(context={"user": "tester"}) as session:
        operations.cancel(session, *uuids)


def pg_rows(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


# -- a finished job is still one of the queue's ------------------------------------------------
def test_a_done_job_is_still_loaded_listed_requeued_and_run_again(db):
    done = delay(db, jobs.add, 20, 22)
    run_burst(db)
    row = operations.load_job(db, done)
    assert (row["state"], row["result"]) == ("done", "42")
    assert done in listed(db, show_all=True)
    assert done in listed(db, state="done")
    assert done not in listed(db)  # finished jobs are hidden unless asked for
    if db.dialect == "postgresql":
        assert partition(db, done) == "queue_job_history"

    with db.session(context={"user": "tester"}) as session:
        assert operations.requeue(session, done) == [done]
    assert operations.load_job(db, done)["state"] == "pending"
    assert done in listed(db) and done in listed(db, state="pending")
    assert done not in listed(db, state="done")
    if db.dialect == "postgresql":
        assert partition(db, done) == "queue_job_live"

    run_burst(db)
    row = operations.load_job(db, done)
    assert (row["state"], row["result"]) == ("done", "42")
    assert listed(db, state="done") == [done]
    if db.dialect == "postgresql":
        assert partition(db, done) == "queue_job_history"


def test_a_new_job_stored_done_keeps_its_result_and_holds_no_identity_key(db):
    """JobStorage.store of a Job set done before it was ever stored (the seed's storage
    API): stored finished, result and dates included; its identity key blocks nothing."""
    job = queuejob.Job(func=jobs.add, args=("m", 1, 2), identity_key="stored-done")
    job.set_done(result="3")
    with db.session() as session:
        queuejob.DatabaseJobStorage(session).store(job)
    row = operations.load_job(db, job.uuid)
    assert (row["state"], row["result"]) == ("done", "3") and row["date_done"] is not None
    if db.dialect == "postgresql":
        assert partition(db, job.uuid) == "queue_job_history"
    again = delay(db, jobs.add, 1, 2, identity_key="stored-done", eta=FAR)
    assert again != job.uuid and operations.load_job(db, again)["state"] == "pending"


def test_a_cancelled_job_is_listed_and_requeued_and_runs(db):
    job_uuid = delay(db, jobs.add, 1, 2, eta=FAR)
    cancel(db, job_uuid)
    assert operations.load_job(db, job_uuid)["state"] == "cancelled"
    assert listed(db, state="cancelled") == [job_uuid]
    if db.dialect == "postgresql":
        assert partition(db, job_uuid) == "queue_job_history"
    with db.session(context={"user": "tester"}) as session:
        operations.requeue(session, job_uuid)
        operations.edit(session, job_uuid, eta=None)
    if db.dialect == "postgresql":
        assert partition(db, job_uuid) == "queue_job_live"
    run_burst(db)
    assert operations.load_job(db, job_uuid)["result"] == "3"
    assert listed(db, state="done") == [job_uuid]


def test_identity_keys_hold_while_pending_and_are_free_once_done(db):
    first = delay(db, jobs.add, 1, 2, identity_key="nightly")
    assert delay(db, jobs.add, 3, 4, identity_key="nightly") == first
    assert jobs_by_uuid(db) == {first: "pending"}
    run_burst(db)
    assert operations.load_job(db, first)["state"] == "done"

    second = delay(db, jobs.add, 5, 6, identity_key="nightly")
    assert second != first
    assert jobs_by_uuid(db) == {first: "done", second: "pending"}
    assert operations.load_job(db, second)["identity_key"] == "nightly"
    # the new one holds the key now
    assert delay(db, jobs.add, 7, 8, identity_key="nightly") == second
    assert len(jobs_by_uuid(db)) == 2
    if db.dialect == "postgresql":
        assert (partition(db, first), partition(db, second)) == \
            ("queue_job_history", "queue_job_live")
    run_burst(db)
    assert operations.load_job(db, second)["result"] == "11"


def test_moving_history_has_nothing_to_do_on_a_new_queue(db, invoke):
    delay(db, jobs.add, 1, 1)
    run_burst(db)
    assert operations.move_history(db) == 0
    assert operations.move_history(db) == 0
    out = invoke("migrate", "--db", db.url).stdout
    assert "moved" not in out and out.startswith("up to date"), out
    if db.dialect == "postgresql":
        assert sql(db, "SELECT to_regclass('queue_job_legacy') IS NULL") == [(True,)]


# -- the upgrade of a queue from before the history partition (PostgreSQL) ----------------
OLD_VERSION = 16
OLD_PENDING = 3


def old_queue(pg_server: Any, name: str, finished: int) -> dict[str, Any]:
    """A queue at schema 16 as a previous queuejob left it, filled with plain SQL: three
    pending jobs holding identity keys, a failed one, and ``finished`` done jobs (one in
    a thousand cancelled instead), finished 1 to ``finished`` seconds ago; the one
    finished 1 second ago has two attempt logs."""
    url = pg_server.create_database(name)
    old = queuejob.open(url, migrate=False)
    try:
        old.connector.migrations = [migration for migration in old.connector.migrations
                                    if migration.version <= OLD_VERSION]
        assert old.connector.migrate() == list(range(1, OLD_VERSION + 1))
    finally:
        old.close()
    with psycopg.connect(url, autocommit=True) as conn:
        pending = [str(uuid) for (uuid,) in conn.execute(
            "INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, "
            "channel, priority, max_retries, identity_key, date_created) "
            "SELECT gen_random_uuid(), 'pending', 'tests.jobs.add', 'm', "
            "format('[\"m\",%%s,100]', n), '{}', 'root', 10, 5, 'old-key-' || n, now() "
            "FROM generate_series(1, %s) AS n ORDER BY n RETURNING uuid", (OLD_PENDING,))]
        [(failed,)] = conn.execute(
            "INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, "
            "channel, priority, max_retries, retry, attempt, exc_info, exc_name, "
            "date_created, date_failed) VALUES (gen_random_uuid(), 'failed', "
            "'tests.jobs.fail', 'm', '[\"m\"]', '{}', 'root', 10, 5, 1, 1, "
            "'Traceback: ValueError: boom', 'builtins.ValueError', now(), now()) "
            "RETURNING uuid").fetchall()
        conn.execute(
            "INSERT INTO queue_job (uuid, state, func_name, model_name, args, kwargs, "
            "description, channel, priority, max_retries, retry, attempt, result, "
            "date_created, date_enqueued, date_started, date_done, date_cancelled) "
            "SELECT gen_random_uuid(), CASE WHEN n % 1000 = 0 THEN 'cancelled' ELSE 'done' "
            "END, 'tests.jobs.add', 'm', format('[\"m\",%s,1]', n), '{}', 'Add two numbers.', "
            "'root.old', 10, 5, 1, 1, (n + 1)::text, now() - make_interval(secs => n + 60), "
            "now() - make_interval(secs => n + 30), now() - make_interval(secs => n + 30), "
            "now() - make_interval(secs => n), CASE WHEN n % 1000 = 0 THEN "
            "now() - make_interval(secs => n) END "
            f"FROM generate_series(1, {int(finished)}) AS n ORDER BY n DESC")
        [(newest,)] = conn.execute(
            "SELECT uuid FROM queue_job WHERE args = '[\"m\",1,1]'").fetchall()
        for attempt, message in ((1, "first try"), (2, "second try")):
            conn.execute("INSERT INTO queue_job_log (job_uuid, attempt, lines) "
                         "VALUES (%s, %s, %s)", (newest, attempt, json.dumps(
                             [[1700000000.0 + attempt, "WARNING", "tests.jobs.add", message]])))
        conn.execute("ANALYZE queue_job")  # as autovacuum did, long ago
        [(max_id,)] = conn.execute("SELECT max(id) FROM queue_job").fetchall()
        sample = [str(uuid) for (uuid,) in conn.execute(
            "SELECT uuid FROM queue_job WHERE state IN ('done', 'cancelled') "
            "ORDER BY id LIMIT 3").fetchall()]
    return {"url": url, "pending": pending, "failed": str(failed), "newest": str(newest),
            "max_id": max_id, "sample": sample, "finished": finished}


def legacy_left(url: str) -> int | None:
    """Rows of the old table (None: it is gone)."""
    try:
        return pg_rows(url, "SELECT count(*) FROM queue_job_legacy")[0][0]
    except psycopg.errors.UndefinedTable:
        return None


def check_upgraded_at_once(db: queuejob.Database, old: dict[str, Any]) -> str:
    """What works right after the upgrade, before any history moved: unfinished jobs are
    in the live partition, shown, and their identity keys held; new ids come after the
    old ones. Returns the uuid of a new job."""
    url = old["url"]
    for job_uuid in old["pending"]:
        assert partition(db, job_uuid) == "queue_job_live"
        assert operations.load_job(db, job_uuid)["state"] == "pending"
    assert partition(db, old["failed"]) == "queue_job_live"
    assert listed(db, state="failed") == [old["failed"]]
    assert set(listed(db, state="pending")) == set(old["pending"])
    # a delay with the key of a migrated pending job gets that job, stores nothing
    for n, job_uuid in enumerate(old["pending"], start=1):
        assert delay(db, jobs.add, 0, 0, identity_key=f"old-key-{n}") == job_uuid
    assert len(jobs_by_uuid(db)) == OLD_PENDING + 1
    # the finished ones wait in the old table, not listed yet
    assert legacy_left(url) == old["finished"]
    assert listed(db, state="done") == [] and listed(db, state="cancelled") == []
    assert "root.old" not in operations.stats(db)
    new = delay(db, jobs.add, 2, 2)
    assert operations.load_job(db, new)["id"] > old["max_id"]
    assert partition(db, new) == "queue_job_live"
    return new


def check_history_moved(db: queuejob.Database, old: dict[str, Any]) -> None:
    """Every finished job of the old table is in the history partition, loadable with its
    logs, listed; the old table is gone."""
    url = old["url"]
    assert legacy_left(url) is None
    assert pg_rows(url, "SELECT count(*) FROM queue_job_history WHERE channel = 'root.old'"
                   ) == [(old["finished"],)]
    assert pg_rows(url, "SELECT count(*) FROM queue_job_live WHERE state IN "
                        "('done', 'cancelled')") == [(0,)]
    cancelled = old["finished"] // 1000
    assert pg_rows(url, "SELECT state, count(*) FROM queue_job WHERE id <= %s "
                        "AND channel = 'root.old' GROUP BY state ORDER BY state",
                   (old["max_id"],)) == \
        ([("cancelled", cancelled)] if cancelled else []) + \
        [("done", old["finished"] - cancelled)]
    newest = operations.load_job(db, old["newest"])
    assert (newest["state"], newest["result"], newest["channel"]) == ("done", "2", "root.old")
    assert [[line.message for line in attempt["lines"]]
            for attempt in operations.job_logs(db, old["newest"])] == \
        [["second try"], ["first try"]]
    for job_uuid in old["sample"]:
        assert operations.load_job(db, job_uuid)["state"] in FINISHED
    assert listed(db, state="done", channel="root.old")[0] == old["newest"]
    assert len(listed(db, state="done", channel="root.old")) == 500  # a full page
    # counted as they moved (statistics and metrics read tallies, not the history)
    assert operations.stats(db)["root.old"] == (
        {"cancelled": cancelled} if cancelled else {}) | {"done": old["finished"] - cancelled}


def test_an_older_queue_upgrades_and_migrate_moves_its_history(pg_server, invoke):
    old = old_queue(pg_server, "queuejob_history_upgrade", finished=25_000)
    db = queuejob.open(old["url"])  # migrates to the latest schema
    try:
        assert db.schema_status().state == "current"
        new = check_upgraded_at_once(db, old)

        result = invoke("migrate", "--db", old["url"])
        lines = result.stdout.strip().splitlines()
        assert lines[-2:] == [
            "moved 25000 finished job(s) into the history partition: done",
            f"up to date: the queue is at schema version {db.connector.latest_version}"], lines
        # a line per batch of 10,000, with about how many are left
        progress = [re.fullmatch(r"moved (\d+) finished job\(s\) into the history "
                                 r"partition, about (\d+) to go", line) for line in lines[:-2]]
        assert all(progress), lines
        counts = [(int(match[1]), int(match[2])) for match in progress]
        assert [moved for moved, _ in counts] == [10_000, 20_000, 25_000], lines
        assert 13_000 <= counts[0][1] <= 17_000 and counts[-1][1] < 100, lines
        assert counts[0][1] > counts[1][1] > counts[2][1], lines
        check_history_moved(db, old)
        # the migrated pending jobs still hold their keys, and run
        assert delay(db, jobs.add, 0, 0, identity_key="old-key-1") == old["pending"][0]
        run_burst(db)
        for n, job_uuid in enumerate(old["pending"], start=1):
            row = operations.load_job(db, job_uuid)
            assert (row["state"], row["result"]) == ("done", str(n + 100))
            assert partition(db, job_uuid) == "queue_job_history"
        assert operations.load_job(db, new)["result"] == "4"
        # done now: the key is free for a new job
        again = delay(db, jobs.add, 0, 0, identity_key="old-key-1")
        assert again not in old["pending"]
        assert operations.load_job(db, again)["id"] > old["max_id"]
        # nothing is left to move
        assert "moved" not in invoke("migrate", "--db", old["url"]).stdout
        assert operations.move_history(db) == 0
    finally:
        db.close()


def test_move_history_moves_the_newest_first_then_has_nothing_to_do(pg_server):
    old = old_queue(pg_server, "queuejob_history_move", finished=21_000)
    db = queuejob.open(old["url"])
    try:
        check_upgraded_at_once(db, old)
        seen: list[tuple[int, int, int]] = []

        def progress(moved: int, left: int) -> None:
            # what moved is the newest: every job still to move is older
            [(oldest_moved,)] = sql(db, "SELECT min(id) FROM queue_job_history")
            [(newest_left,)] = sql(db, "SELECT max(id) FROM queue_job_legacy")
            assert newest_left is None or newest_left < oldest_moved
            seen.append((moved, left, len(listed(db, state="done"))))

        assert operations.move_history(db, progress=progress) == 21_000
        assert [moved for moved, _, _ in seen] == [10_000, 20_000, 21_000]
        assert seen[0][1] > seen[1][1] > seen[2][1] and seen[2][1] < 100  # about
        assert seen[0][2] == 500  # listed from the first batch on
        check_history_moved(db, old)
        assert operations.move_history(db) == 0
    finally:
        db.close()


def test_the_workers_cleaner_moves_the_history_of_an_upgraded_queue(pg_server):
    old = old_queue(pg_server, "queuejob_history_cleaner", finished=12_000)
    db = queuejob.open(old["url"])
    try:
        new = check_upgraded_at_once(db, old)
        with ThreadWorker(db, cleanup_interval=0.05):
            wait_until(lambda: legacy_left(old["url"]) is None, timeout=60,
                       message="the cleaner to move the history")
            wait_until(lambda: all(operations.load_job(db, job_uuid)["state"] == "done"
                                   for job_uuid in [*old["pending"], new]),
                       message="the old pending jobs to run")
        check_history_moved(db, old)
        assert operations.load_job(db, old["failed"])["state"] == "failed"
        assert operations.move_history(db) == 0
    finally:
        db.close()


# -- queuejob purge --------------------------------------------------------------------------
def purge_scene(db: queuejob.Database) -> dict[str, str]:
    """Jobs of every kind around root.export; the old ones finished 10 days ago."""
    scene: dict[str, str] = {}
    with db.session() as session:
        with queuejob.batch(session, "exports") as batch:
            scene["old_export"] = jobs.chatty.delay(session, "m", ["export"],
                                                    channel="root.export")
        scene["old_daily"] = jobs.chatty.delay(session, "m", ["daily"],
                                               channel="root.export.daily")
        scene["old_sibling"] = jobs.chatty.delay(session, "m", ["x"], channel="root.exportx")
        scene["old_other"] = jobs.chatty.delay(session, "m", ["other"], channel="root.other")
        scene["new_export"] = jobs.chatty.delay(session, "m", ["new"], channel="root.export")
        scene["old_add"] = jobs.add.delay(session, "m", 1, 2, channel="root.export")
        scene["old_cancelled"] = jobs.add.delay(session, "m", 1, 2, channel="root.export",
                                                eta=FAR)
        scene["failed"] = jobs.chatty.delay(session, "m", ["failing"], fail=True,
                                            channel="root.export", max_retries=1)
        scene["pending"] = jobs.chatty.delay(session, "m", ["later"],
                                             channel="root.export", eta=FAR)
    assert set(batch.jobs) == {scene["old_export"]}
    cancel(db, scene["old_cancelled"])
    run_burst(db)
    finished_ago(db, {job_uuid: 10 * DAY for key, job_uuid in scene.items()
                      if key.startswith("old_")})
    finished_ago(db, {scene["new_export"]: 3600})
    assert jobs_by_uuid(db) == {
        **{scene[key]: "done" for key in ("old_export", "old_daily", "old_sibling",
                                          "old_other", "new_export", "old_add")},
        scene["old_cancelled"]: "cancelled", scene["failed"]: "failed",
        scene["pending"]: "pending"}
    assert {scene["old_export"], scene["failed"], scene["new_export"]} <= logged(db)
    assert in_batches(db) == {scene["old_export"]}
    return scene


def test_purge_dry_run_counts_and_removes_nothing(db, invoke):
    scene = purge_scene(db)
    before = (jobs_by_uuid(db), logged(db))
    out = invoke("purge", "--db", db.url, "--older-than", "7d", "--channel", "root.export",
                 "--dry-run").stdout
    # old_export, old_daily (a subchannel), old_add, old_cancelled
    assert out.strip() == "4 finished job(s) match"
    assert (jobs_by_uuid(db), logged(db)) == before
    out = invoke("purge", "--db", db.url, "--older-than", "30d", "--dry-run").stdout
    assert out.strip() == "0 finished job(s) match"
    assert (jobs_by_uuid(db), logged(db)) == before
    assert operations.load_job(db, scene["old_export"])["state"] == "done"
    assert [attempt["lines"][0].message
            for attempt in operations.job_logs(db, scene["old_export"])] == ["export"]


def test_purge_removes_only_the_matching_finished_jobs_with_their_logs(db, invoke):
    scene = purge_scene(db)
    everything = set(jobs_by_uuid(db))

    def purge(*options: str) -> list[str]:
        return invoke("purge", "--db", db.url, *options, "--yes").stdout.strip().splitlines()

    # a channel with its subchannels, not root.exportx; one function; done only
    assert purge("--older-than", "7d", "--channel", "root.export",
                 "--function", "tests.jobs.chatty", "--state", "done") == \
        ["2 finished job(s) match", "removed 2 job(s)"]
    gone = {scene["old_export"], scene["old_daily"]}
    assert set(jobs_by_uuid(db)) == everything - gone
    assert not gone & logged(db) and in_batches(db) == set()
    for job_uuid in gone:
        with pytest.raises(NoSuchJobError):
            operations.load_job(db, job_uuid)
        assert operations.job_logs(db, job_uuid) == []

    # cancelled only, a channel written without root.
    assert purge("--older-than", "7d", "--channel", "export", "--state", "cancelled") == \
        ["1 finished job(s) match", "removed 1 job(s)"]
    gone.add(scene["old_cancelled"])
    assert set(jobs_by_uuid(db)) == everything - gone

    # younger than the age: kept; older, of any channel
    assert purge("--older-than", "2h", "--function", "tests.jobs.add") == \
        ["1 finished job(s) match", "removed 1 job(s)"]
    gone.add(scene["old_add"])
    assert purge("--older-than", "12h") == ["2 finished job(s) match", "removed 2 job(s)"]
    gone |= {scene["old_sibling"], scene["old_other"]}
    assert set(jobs_by_uuid(db)) == everything - gone
    assert operations.load_job(db, scene["new_export"])["state"] == "done"

    # no criteria: every finished job, never a failed or pending one
    assert purge() == ["1 finished job(s) match", "removed 1 job(s)"]
    assert jobs_by_uuid(db) == {scene["failed"]: "failed", scene["pending"]: "pending"}
    assert purge() == ["0 finished job(s) match"]
    # no log row is left without its job
    assert logged(db) == {scene["failed"]}
    assert set(listed(db, show_all=True)) == {scene["failed"], scene["pending"]}


@pytest.mark.parametrize(("options", "says"), [
    (("--older-than", "5"), "bad age '5'"),
    (("--older-than", "-3d"), "bad age '-3d'"),
    (("--older-than", "soon"), "bad age 'soon'"),
    (("--older-than", ""), "bad age ''"),  # an empty variable: not "any age"
    (("--channel", "bad name!"), "bad channel name"),
    (("--channel", ""), "bad channel name"),
    (("--state", "failed"), "'failed' is not one of"),
])
def test_purge_refuses_bad_input_in_one_line_and_removes_nothing(db, invoke, options, says):
    purge_scene(db)
    before = (jobs_by_uuid(db), logged(db))
    for extra in ((), ("--dry-run",)):
        result = invoke("purge", "--db", db.url, *options, *extra, "--yes",
                        exit_code=2 if options[0] == "--state" else 1)
        if options[0] == "--state":  # click's own usage error
            assert says in result.stderr and "Traceback" not in result.output
        else:
            assert says in refused(result), result.stderr
        assert "removed" not in result.stdout
        assert (jobs_by_uuid(db), logged(db)) == before


# -- purge, generated ------------------------------------------------------------------------
CHANNELS = ("root", "root.a", "root.a.b", "root.ab", "root.b")
FUNCTIONS = ("add", "chatty")
KINDS = ("done", "cancelled", "failed", "pending")
#: seconds ago a job finished; the purge ages lie well apart from them
AGES = (10, 600, 7200, 3 * DAY, 40 * DAY)
THRESHOLDS = (0, 60, 3600, DAY, 10 * DAY)

job_specs = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(CHANNELS),
                               st.sampled_from(FUNCTIONS), st.sampled_from(AGES)),
                     min_size=0, max_size=8)
purges = st.tuples(st.sampled_from(THRESHOLDS),
                   st.sampled_from((None, "root", "root.a", "a", "root.a.b", "root.b", "c")),
                   st.sampled_from((None, "tests.jobs.add", "tests.jobs.chatty",
                                    "tests.jobs.noop")),
                   st.sampled_from((None, "done", "cancelled")),
                   st.integers(min_value=1, max_value=4))


def make_job(session: Any, kind: str, channel: str, function: str) -> str:
    eta = FAR if kind in ("pending", "cancelled") else None
    if function == "add":
        # a bad argument makes it fail
        return jobs.add.delay(session, "m", 1, "x" if kind == "failed" else 2,
                              channel=channel, eta=eta, max_retries=1)
    return jobs.chatty.delay(session, "m", [f"{kind} in {channel}"], fail=kind == "failed",
                             channel=channel, eta=eta, max_retries=1)


def matches(purge: tuple[Any, ...], kind: str, channel: str, function: str, age: float
            ) -> bool:
    older_than, wanted_channel, func_name, state, _ = purge
    if wanted_channel is not None and not wanted_channel.startswith("root"):
        wanted_channel = f"root.{wanted_channel}"
    return (kind in FINISHED and age > older_than
            and (state is None or kind == state)
            and (wanted_channel is None or channel == wanted_channel
                 or channel.startswith(wanted_channel + "."))
            and (func_name is None or func_name == f"tests.jobs.{function}"))


@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=job_specs, purge=purges)
def test_purge_removes_exactly_the_matching_finished_jobs(db, specs, purge):
    sql(db, "DELETE FROM queue_job_log")
    sql(db, "DELETE FROM queue_job")
    with db.session() as session:
        made = [make_job(session, kind, channel, function)
                for kind, channel, function, _ in specs]
    cancel(db, *[job_uuid for job_uuid, (kind, *_) in zip(made, specs, strict=True)
                 if kind == "cancelled"])
    run_burst(db)
    finished_ago(db, {job_uuid: age for job_uuid, (kind, _, _, age) in zip(made, specs,
                                                                          strict=True)
                      if kind in FINISHED})
    before = jobs_by_uuid(db)
    assert before == {job_uuid: kind for job_uuid, (kind, *_) in zip(made, specs, strict=True)}
    logs_before = logged(db)
    expected = {job_uuid for job_uuid, spec in zip(made, specs, strict=True)
                if matches(purge, *spec)}

    criteria = Purge(older_than=purge[0], channel=purge[1], func_name=purge[2],
                     state=purge[3])
    assert operations.count_purgeable(db, criteria) == len(expected)
    steps: list[int] = []
    assert operations.purge_jobs(db, criteria, batch=purge[4], progress=steps.append) == \
        len(expected)
    assert sum(steps) == len(expected) and all(0 < step <= purge[4] for step in steps)

    after = jobs_by_uuid(db)
    assert after == {job_uuid: state for job_uuid, state in before.items()
                     if job_uuid not in expected}
    assert {job_uuid for job_uuid, state in after.items() if state not in FINISHED} == \
        {job_uuid for job_uuid, state in before.items() if state not in FINISHED}
    assert logged(db) == logs_before - expected
    assert operations.count_purgeable(db, criteria) == 0
    if db.dialect == "postgresql":
        for job_uuid, state in after.items():
            assert partition(db, job_uuid) == (
                "queue_job_history" if state in FINISHED else "queue_job_live")


# -- a claim racing a job that moves partitions ----------------------------------------------
def test_a_claim_that_meets_a_job_moved_meanwhile_claims_again_at_once(pg_server, caplog):
    """PostgreSQL cannot skip a row that another transaction moved to the history partition
    after the claim's statement began (a pending job cancelled in that millisecond): the
    claim fails with a serialization error. The worker runs its cycle again at once, on
    the same connection, without the warning and back-off of a database failure; past
    a few in a row it backs off as for any failure."""
    db = queuejob.open(pg_server.create_database("queuejob_claim_conflict"))
    try:
        job_uuid = delay(db, jobs.add, 1, 2)
        worker = queuejob.Worker(db, modules=["tests.jobs"], listen=False)
        claim = worker.claimer.claim
        connections: list[Any] = []
        failures = [psycopg.errors.SerializationFailure(
            "tuple to be locked was already moved to another partition due to concurrent "
            "update")] * 2

        def conflicted(conn: Any, *args: Any) -> Any:
            connections.append(conn)
            if failures:
                raise failures.pop()
            return claim(conn, *args)
        worker.claimer.claim = conflicted  # type: ignore[method-assign]
        with caplog.at_level("DEBUG", logger="queuejob.worker"):
            worker.run(burst=True)
        assert operations.load_job(db, job_uuid)["state"] == "done"
        assert len(connections) >= 3 and len(set(map(id, connections))) == 1
        said = [record for record in caplog.records if "concurrent change" in record.message]
        assert len(said) == 2 and all(record.levelname == "DEBUG" for record in said)
        assert not [record for record in caplog.records if record.levelname == "WARNING"]

        # always conflicting: after CONFLICT_RETRIES, the back-off of a database failure
        job_uuid = delay(db, jobs.add, 3, 4)
        worker = queuejob.Worker(db, modules=["tests.jobs"], listen=False)
        claim = worker.claimer.claim
        failures = [psycopg.errors.SerializationFailure("again")] * 5
        worker.claimer.claim = conflicted  # type: ignore[method-assign]
        caplog.clear()
        worker.run(burst=True)
        assert operations.load_job(db, job_uuid)["state"] == "done"
        assert [record for record in caplog.records if "retrying in" in record.message]
    finally:
        db.close()


# -- a claim's reads do not grow with the backlog or the history -----------------------------
def claim_reads(db: queuejob.Database, name: str, params: dict[str, Any]) -> tuple[int, int]:
    """The pages a claim statement reads to find the jobs it takes (EXPLAIN ANALYZE of
    the scan its update reads, after the claim lock as a worker takes it, rolled back),
    and the jobs it took."""
    def explain(conn: Any) -> tuple[int, int]:
        with conn.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(db.connector.queries["lock_claims"])
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                           + db.connector.queries[name], params)
            [row] = cursor.fetchall()
            cursor.execute("ROLLBACK")
        [plan] = next(iter(row.values()))
        [scan] = [node for node in plan["Plan"]["Plans"]
                  if node["Parent Relationship"] == "Outer"]
        return (int(scan["Shared Hit Blocks"] + scan["Shared Read Blocks"]),
                int(plan["Plan"]["Actual Rows"]))
    reads: tuple[int, int] = db.read(explain)
    return reads


def test_a_claim_reads_a_few_pages_whatever_the_statistics_say(pg_server):
    """Statistics taken while the queue was empty (as after a burst of delays that
    autovacuum has not analyzed yet) make the pending jobs look like a handful. A claim
    still finds the jobs it takes by id, and counts the started jobs from their index in
    order, passing the entries finished jobs left: a few dozen pages, with thousands of
    jobs pending and hundreds run, and all 8 jobs taken. (With the state checked where a
    partial index could serve it, and bitmap scans, such statistics made the planner read
    the whole pending index at every claim, and the count visit the table for every job
    run since the last vacuum: half the drain rate of a worker.)"""
    db = queuejob.open(pg_server.create_database("queuejob_claim_reads"))
    try:
        sql(db, "ALTER TABLE queue_job_live SET (autovacuum_enabled = false)")
        sql(db, "ANALYZE queue_job")
        with db.session() as session:
            jobs.noop.delay_many(session, [("m",)] * 600)
        run_burst(db)  # 600 started and finished: their entries stay until a vacuum
        with db.session() as session:
            jobs.noop.delay_many(session, [("m",)] * 4000)
        [(version,)] = sql(db, "SELECT coalesce((SELECT version FROM queue_config), 0)")
        taken = claim_reads(db, "claim_next", {
            "worker_id": "w", "worker_pid": 1, "limit": 8, "config_version": version,
            "capacity": 8})
        ids = [row_id for (row_id,) in sql(
            db, "SELECT id FROM queue_job WHERE state = 'pending' ORDER BY id DESC LIMIT 8")]
        chosen = claim_reads(db, "start_jobs", {"ids": ids, "worker_id": "w",
                                                "worker_pid": 1})
        assert taken[1] == chosen[1] == 8, (taken, chosen)
        # (claim_next's scan counts the reads of its pick and count too: 38 and 17 here)
        assert taken[0] <= 60 and chosen[0] <= 30, (taken, chosen)
    finally:
        db.close()
