"""``--log-format json``: the worker and the dashboard write one JSON object a line
(time, level, logger, message; the job's uuid when the line is about a job)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys

import queuejob
from queuejob.cli import logs
from tests import jobs
from tests.conftest import ROOT
from tests.helpers import spawn_worker, stop_process, wait_until


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as a JSON object (an AssertionError naming one that is not)."""
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\nin:\n{text}") from None
        assert isinstance(value, dict), line
        assert {"time", "level", "logger", "message"} <= set(value), line
        out.append(value)
    return out


def test_the_worker_logs_json_lines(db_url, db, job_env, tmp_path):
    with db.session() as session:
        chatty = jobs.chatty.delay(session, "m", ["hello", "line\nbreak"], fail=True)
        slow = jobs.slow_with_timeout.delay(session, "m", str(tmp_path / "runs"), 1.0,
                                            max_retries=1)
    log = tmp_path / "worker.log"
    worker = spawn_worker(db_url, job_env, "--log-format", "json", "--poll", "0.05", log=log)
    try:
        def about_both():
            lines = json_lines(log.read_text()) if log.exists() else []
            stopped = any(line.get("job_uuid") == slow for line in lines)
            return stopped and any(line["message"] == "it failed" for line in lines)
        wait_until(about_both, timeout=30, message="the worker's lines about both jobs")
    finally:
        assert stop_process(worker) == 0
    lines = json_lines(log.read_text())
    levels = {line["level"] for line in lines}
    assert {"INFO", "WARNING", "ERROR"} <= levels
    assert any(line["logger"] == "queuejob.worker" and "started" in line["message"]
               for line in lines)
    # a job's own lines, their line breaks and traceback inside the object
    assert any(line["message"] == "line\nbreak" for line in lines)
    [failed] = [line for line in lines if line["message"] == "it failed"]
    assert failed["logger"] == "tests.jobs.chatty" and "ValueError: boom" in failed["exc_info"]
    # the time is ISO 8601, in UTC
    assert all(line["time"].endswith("+00:00") and "T" in line["time"] for line in lines)
    assert chatty


def test_records_about_a_job_carry_its_uuid():
    handler = logs.handler("json")
    record = logging.LogRecord("queuejob.worker", logging.WARNING, __file__, 1,
                               "job %s: lost ownership of attempt %d", ("abc", 2), None)
    assert handler.filter(record)
    line = json.loads(handler.format(record))
    assert line["job_uuid"] == "abc" and line["level"] == "WARNING"
    assert line["message"] == "job abc: lost ownership of attempt 2"
    other = logging.LogRecord("queuejob.worker", logging.INFO, __file__, 1, "jobs %s",
                              ("x",), None)
    handler.filter(other)
    assert "job_uuid" not in json.loads(handler.format(other))


def test_the_dashboard_logs_json_lines(tmp_path, job_env):
    url = f"sqlite:///{tmp_path}/jobs.db"
    queuejob.open(url).close()  # a queue to serve
    log = tmp_path / "web.log"
    with open(log, "wb") as out:
        web = subprocess.Popen(
            [sys.executable, "-m", "queuejob", "web", "--db", url, "--port", "0",
             "--log-format", "json"], env=job_env, cwd=ROOT, stdout=out, stderr=out,
            start_new_session=True)
    try:
        wait_until(lambda: "startup complete" in log.read_text(), timeout=30,
                   message="the dashboard to start")
    finally:
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGINT)
        web.wait(20)
    lines = json_lines(log.read_text())
    assert any(line["logger"] == "queuejob.web" and "dashboard on http" in line["message"]
               for line in lines)
    assert any(line["logger"] == "uvicorn.error" for line in lines)


def test_without_python_json_logger_json_logs_name_their_extra(tmp_path, job_env):
    code = f"""
import sys
sys.modules["pythonjsonlogger"] = None  # the extra is not installed
from queuejob.cli import main
sys.argv = ["queuejob", "worker", "--db", "sqlite:///{tmp_path}/jobs.db", "--module",
            "tests.jobs", "--burst", "--log-format", "json"]
main()
"""
    done = subprocess.run([sys.executable, "-c", code], check=False, env=job_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "queuejob: error: --log-format json needs the package 'pythonjsonlogger': "
        "pip install 'queuejob[json-logs]'"]
