"""Old done and cancelled jobs are removed by workers; failed jobs are kept."""

from __future__ import annotations

import queuejob
from tests import jobs
from tests.helpers import ThreadWorker, run_burst, states, wait_until


def age_jobs(db, days: float, channel: str | None = None) -> None:
    """Move the end date of finished jobs ``days`` into the past."""
    if db.dialect == "sqlite":
        sql = f"UPDATE queue_job SET date_done = date_done - {days * 86400}"
    else:
        sql = f"UPDATE queue_job SET date_done = date_done - interval '{days} days'"
    sql += " WHERE date_done IS NOT NULL"
    if channel:
        sql += f" AND channel = '{channel}'"
    db.run(lambda conn: db.connector.execute_sql(conn, sql))


def test_done_and_cancelled_jobs_past_30_days_are_removed(db):
    with db.session() as session:
        for _ in range(3):
            jobs.add.delay(session, "m", 1, 1)
        jobs.fail.delay(session, "m")
        cancelled = jobs.add.delay(session, "m", 1, 1, eta=3600)
        queuejob.cancel(session, cancelled)
    run_burst(db)
    age_jobs(db, 31)
    with db.session() as session:
        recent = jobs.add.delay(session, "m", 2, 2)
    run_burst(db)
    assert states(db) == {"done": 4, "failed": 1, "cancelled": 1}
    with ThreadWorker(db, cleanup_interval=0.05):
        wait_until(lambda: states(db) == {"done": 1, "failed": 1}, message="old jobs removed")
    assert queuejob.operations.load_job(db, recent)["state"] == "done"


def test_removal_interval_per_channel(db):
    with db.session() as session:
        for _ in range(2):
            jobs.add.delay(session, "m", 1, 1, channel="root.short")
            jobs.add.delay(session, "m", 1, 1, channel="root.keep")
            jobs.add.delay(session, "m", 1, 1, channel="root.worker")
    run_burst(db)
    age_jobs(db, 3)
    queuejob.operations.set_channel(db, "root.short", removal_interval=2)
    with ThreadWorker(db, channels="root:4,root.worker:2:removal_interval=1",
                      cleanup_interval=0.05):
        wait_until(lambda: {channel for channel in queuejob.operations.stats(db)}
                   == {"root.keep"}, message="short-lived channels emptied")
    assert queuejob.operations.stats(db) == {"root.keep": {"done": 2}}


def test_rows_of_workers_stopped_or_dead_for_a_week_are_pruned(db):
    """Worker rows no longer grow forever: the cleanup removes those of workers stopped
    or dead for a week, never a live worker's nor a recent one's."""
    for worker_id in ("old-stopped", "old-dead", "recent-stopped", "alive"):
        db.run(lambda conn, worker_id=worker_id: db.store.register_worker(
            conn, worker_id, "host", 1, "root:1"))
    shift = ("heartbeat - 8 * 86400" if db.dialect == "sqlite"
             else "heartbeat - interval '8 days'")
    db.run(lambda conn: db.connector.execute_sql(
        conn, f"UPDATE queue_worker SET heartbeat = {shift}, "
              "state = CASE id WHEN 'old-dead' THEN 'dead' ELSE 'stopped' END "
              "WHERE id IN ('old-stopped', 'old-dead')"))
    db.run(lambda conn: db.store.stop_worker(conn, "recent-stopped"))
    with ThreadWorker(db, cleanup_interval=0.05):
        wait_until(lambda: not {"old-stopped", "old-dead"} & {
            row["id"] for row in queuejob.operations.workers(db)}, message="old rows pruned")
    left = {row["id"] for row in queuejob.operations.workers(db)}
    assert {"recent-stopped", "alive"} <= left
