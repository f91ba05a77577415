"""Watching a job run: the progress it reports and what it logs, per attempt, on SQLite
and PostgreSQL, with real workers."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import operations
from queuejob.cli.app import cli
from queuejob.core import limits
from queuejob.core.joblog import AttemptLog, stored_lines
from queuejob.core.progress import Progress, check_progress, progress_of
from queuejob.worker.progress import ProgressReports
from tests import jobs
from tests.helpers import (
    ThreadWorker,
    row,
    run_burst,
    spawn_worker,
    stop_process,
    wait_until,
)
from tests.reliability.common import sql


# -- progress --------------------------------------------------------------------------------
def test_progress_is_seen_from_another_process_while_the_job_runs(db, db_url, job_env,
                                                                   tmp_path):
    gate = tmp_path / "gate"
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 3, gate=str(gate))
    worker = spawn_worker(db_url, job_env, "--poll", "0.05", log=tmp_path / "worker.log")
    try:
        # this process reads what the worker process stored while the job waits
        wait_until(lambda: progress_of(row(db, uuid)) == Progress(1, 3, "step 1 of 3"),
                   timeout=60, message="the first report stored")
        # so is what it logged so far
        wait_until(lambda: [line.message for entry in operations.job_logs(db, uuid)
                            for line in entry["lines"]] == ["did step 1"], timeout=60,
                   message="the running attempt's first line stored")
        assert row(db, uuid)["state"] == "started"
        result = CliRunner().invoke(cli, ["jobs", "--db", db.url, uuid])
        assert result.exit_code == 0, result.output
        assert "1/3 (33%) step 1 of 3" in result.output
        gate.touch()
        status = db.wait(uuid, timeout=60)
    finally:
        assert stop_process(worker) == 0
    # the last report is stored with the end of the attempt, whatever the interval
    assert status.state == "done" and status.progress == Progress(3, 3, "step 3 of 3")


def test_wait_streams_progress_reports_to_a_callback(db, tmp_path):
    gate = tmp_path / "gate"
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 2, gate=str(gate))
    seen: list[Progress] = []
    done: list[queuejob.JobStatus] = []
    waiter = threading.Thread(target=lambda: done.append(
        db.wait(uuid, timeout=60, on_progress=seen.append)), daemon=True)
    with ThreadWorker(db, poll_interval=0.05):
        waiter.start()
        wait_until(lambda: Progress(1, 2, "step 1 of 2") in seen, timeout=30,
                   message="the callback heard the first report")
        gate.touch()
        waiter.join(60)
    assert done and done[0].state == "done"
    assert seen[0] == Progress(1, 2, "step 1 of 2") and seen[-1] == Progress(2, 2, "step 2 of 2")
    assert done[0].progress == Progress(2, 2, "step 2 of 2")


def test_a_report_of_an_earlier_attempt_is_not_shown_for_the_next(db):
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 2)
    run_burst(db)
    assert progress_of(row(db, uuid)) == Progress(2, 2, "step 2 of 2")
    with db.session() as session:
        operations.requeue(session, uuid)
    assert progress_of(row(db, uuid)) == Progress(2, 2, "step 2 of 2")  # same attempt
    sql(db, "UPDATE queue_job SET attempt = attempt + 1 WHERE uuid = ?", (uuid,))
    assert progress_of(row(db, uuid)) is None


def test_a_bad_report_fails_the_job_with_a_one_line_reason(db):
    with db.session() as session:
        bad = jobs.bad_progress.delay(session, "m", 5, 3)
        good = jobs.progressing.delay(session, "m", 2)
    run_burst(db)
    failed = row(db, bad)
    assert failed["state"] == "failed"
    assert failed["exc_message"] == "progress done (5) is more than its total (3)"
    assert row(db, good)["state"] == "done"


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(st.integers(-5, 2**64), st.floats(allow_nan=True), st.text(max_size=3),
                 st.none(), st.booleans()),
       st.one_of(st.integers(-5, 2**64), st.floats(allow_nan=True), st.none()),
       st.one_of(st.none(), st.text(max_size=600), st.integers()))
def test_any_report_is_taken_or_refused_in_one_line(done, total, message):
    try:
        report = check_progress(done, total, message)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert 0 <= report.done <= report.total <= 2**63 - 1
    assert report.message is None or len(report.message) <= limits.PROGRESS_MESSAGE * 4


def test_reports_are_written_at_most_once_an_interval_and_the_last_at_the_end():
    woken: list[bool] = []
    reports = ProgressReports(lambda: woken.append(True), interval=3600)
    key = ("u", 1)
    reports.report(key, Progress(1, 10))
    assert woken == [True]  # the first report wakes the loop
    assert reports.due() == [(key, Progress(1, 10))]
    for done in range(2, 6):
        reports.report(key, Progress(done, 10))
    assert reports.due() == []  # within the interval: kept, not written
    assert len(woken) == 1
    # the attempt ends: its last report goes with the next batch
    assert reports.due(ended=[key]) == [(key, Progress(5, 10))]
    assert reports.due() == [] and reports.next_at == float("inf")


def test_a_report_a_failed_write_lost_is_written_next_unless_a_newer_came():
    reports = ProgressReports(lambda: None, interval=0.0)
    key = ("u", 1)
    reports.report(key, Progress(1, 10))
    lost = reports.due()
    reports.put_back(lost)
    assert reports.due() == lost
    reports.report(key, Progress(2, 10))
    reports.put_back(lost)
    assert reports.due() == [(key, Progress(2, 10))]


@pytest.mark.parametrize(("column", "value"), [("progress_total", 0),
                                               ("progress_done", "lots"),
                                               ("progress_message", 7)])
def test_a_progress_written_by_hand_costs_only_itself(db, column, value):
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 2)
    run_burst(db)
    if db.dialect == "postgresql" and column != "progress_total":
        value = None if column == "progress_done" else "x" * 10_000
    sql(db, f"UPDATE queue_job SET {column} = ? WHERE uuid = ?", (value, uuid))
    shown = progress_of(row(db, uuid))
    assert shown is None or shown.total >= 1
    result = CliRunner().invoke(cli, ["jobs", "--db", db.url, uuid])
    assert result.exit_code == 0, result.output


# -- the job's own log -----------------------------------------------------------------------
def test_what_a_job_logs_is_kept_per_attempt_and_shown(db, caplog):
    with db.session() as session:
        uuid = jobs.chatty.delay(session, "m", ["first", "second"], fail=True, max_retries=1)
        async_uuid = jobs.chatty_async.delay(session, "m", "hi")
    with caplog.at_level(logging.INFO):
        run_burst(db)
    [attempt] = operations.job_logs(db, uuid)
    assert attempt["attempt"] == 1 and attempt["dropped"] == 0
    lines = attempt["lines"]
    assert [(line.level, line.logger, line.message.splitlines()[0]) for line in lines] == [
        ("WARNING", "tests.jobs.chatty", "first"), ("WARNING", "tests.jobs.chatty", "second"),
        ("ERROR", "tests.jobs.chatty", "it failed")]
    assert "ValueError: boom" in lines[2].message  # the logged traceback
    # queuejob's own lines are the worker's, not the job's
    assert all(not line.logger.startswith("queuejob") for line in lines)
    assert [line.message for line in operations.job_logs(db, async_uuid)[0]["lines"]] == [
        "async says hi"]
    result = CliRunner().invoke(cli, ["jobs", "--db", db.url, uuid])
    assert result.exit_code == 0, result.output
    assert "log of attempt 1" in result.output and "WARNING tests.jobs.chatty: second" \
        in result.output
    shown = json.loads(CliRunner().invoke(cli, ["jobs", "--db", db.url, uuid, "--json"]).output)
    assert [line["message"] for line in shown["logs"][0]["lines"]][:2] == ["first", "second"]


def test_each_attempt_keeps_its_own_log(db):
    with db.session() as session:
        uuid = jobs.chatty_then_retry.delay(session, "m")
    run_burst(db)
    with db.session() as session:
        operations.requeue(session, uuid)
    run_burst(db)
    logs = operations.job_logs(db, uuid)
    assert [entry["attempt"] for entry in logs] == [2, 1]  # the last attempt first
    assert [entry["lines"][0].message for entry in logs] == ["attempt 2", "attempt 1"]


def test_a_log_over_the_limits_keeps_the_first_lines_and_counts_the_others(db):
    count = limits.LOG_LINES + 37
    with db.session() as session:
        uuid = jobs.chatty.delay(session, "m", [f"line {n}" for n in range(count)])
    run_burst(db)
    [attempt] = operations.job_logs(db, uuid)
    assert len(attempt["lines"]) == limits.LOG_LINES and attempt["dropped"] == 37
    assert attempt["lines"][-1].message == f"line {limits.LOG_LINES - 1}"


def test_a_job_that_logs_nothing_stores_no_log(db):
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 0)
    run_burst(db)
    assert row(db, uuid)["state"] == "done"
    assert operations.job_logs(db, uuid) == []
    assert sql(db, "SELECT count(*) FROM queue_job_log")[0][0] == 0


def test_a_log_goes_with_its_job(db):
    with db.session() as session:
        uuid = jobs.chatty.delay(session, "m", ["x"])
    run_burst(db)
    sql(db, "DELETE FROM queue_job WHERE uuid = ?", (uuid,))
    assert sql(db, "SELECT count(*) FROM queue_job_log")[0][0] == 0


@pytest.mark.parametrize("lines", ["not json", "{}", '[[1, "INFO"], "x", [1e400, 1, 2, 3]]',
                                   "[" * 100_000 + "]" * 100_000,
                                   '[["soon", "INFO", "a", "b"], [5, "INFO", "a", "kept"]]'])
def test_a_log_written_by_hand_costs_only_its_lines(db, lines):
    with db.session() as session:
        uuid = jobs.chatty.delay(session, "m", ["x"])
    run_burst(db)
    sql(db, "UPDATE queue_job_log SET lines = ? WHERE job_uuid = ?", (lines, uuid))
    [attempt] = operations.job_logs(db, uuid)
    assert attempt["problem"]
    assert [line.message for line in attempt["lines"]] in ([], ["kept"])
    result = CliRunner().invoke(cli, ["jobs", "--db", db.url, uuid])
    assert result.exit_code == 0 and attempt["problem"] in result.output, result.output


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=3000), min_size=1, max_size=5))
def test_any_logged_text_is_stored_and_read_back_as_text(db, messages):
    """Whatever a job logs (control characters, NUL, lone surrogates, long lines), its
    attempt's log is stored and read back as text within the limits."""
    with db.session() as session:
        uuid = jobs.chatty_repr.delay(session, "m", [ascii(text) for text in messages])
    run_burst(db)
    assert row(db, uuid)["state"] == "done"
    [attempt] = operations.job_logs(db, uuid)
    assert attempt["problem"] is None
    assert len(attempt["lines"]) == len(messages)
    for line in attempt["lines"]:
        assert len(line.message) <= limits.LOG_LINE + 100
        line.message.encode("utf-8")  # storable: no lone surrogate, no NUL left


def test_an_attempt_log_stays_within_its_limits():
    log = AttemptLog()
    for _ in range(limits.LOG_LINES * 2):
        log.add(0.0, "INFO", "a", "x" * (limits.LOG_LINE * 3))
    assert log.chars <= limits.LOG_CHARS and log.dropped > 0
    assert len(log.lines) + log.dropped == limits.LOG_LINES * 2
    assert stored_lines(log.to_json()) == (log.lines, None)


def test_queuejob_never_logs_a_jobs_arguments(db, caplog):
    """A job's arguments may hold secrets: queuejob's own log lines (the worker's, at
    any level) never show them, whatever becomes of the job."""
    secret = "s3cr3t-token-" + "x" * 8
    with db.session() as session:
        failing = jobs.chatty.delay(session, "m", [], fail=True, max_retries=1,
                                    description="no secret here")
        fine = jobs.progressing.delay(session, secret, 1)
        retried = jobs.always_retry.delay(session, secret, max_retries=2)
    with caplog.at_level(logging.DEBUG, logger="queuejob"):
        run_burst(db)
    ours = [record for record in caplog.records if record.name.startswith("queuejob")]
    assert ours  # the worker did log (started, retried, failed, stopped)
    assert not [record.getMessage() for record in ours if secret in record.getMessage()]
    assert {row(db, uuid)["state"] for uuid in (failing, fine)} == {"failed", "done"}
    assert row(db, retried)["state"] in ("pending", "failed")
