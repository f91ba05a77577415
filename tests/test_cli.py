"""The command line, as a user runs it: every command, and bad input.

Exit statuses and bad input run ``python -m queuejob`` as a real subprocess;
the rest runs in the test process through click's CliRunner. Every test with a
database runs on SQLite and on PostgreSQL (the ``db`` and ``db_url`` fixtures).
Bad input must be one line on stderr, a non-zero exit, no traceback, and must
leave the database as it was.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import Result

import queuejob
from queuejob import operations
from queuejob.database import default_user
from tests import jobs
from tests.helpers import ROOT, job_rows, row, run_burst

UNKNOWN_UUID = "0b9c1f5e-6a57-4d1c-9a4e-2f7d8c3b1a60"
MALFORMED_UUID = "not-a-uuid"
EVIL_CHANNEL = "root.x'; DROP TABLE queue_job; --"
UNREACHABLE_PG = "postgresql://u@127.0.0.1:1/x"
ENV_DB = "QUEUEJOB_DATABASE_URL"
FAR = 24 * 3600  # an eta that keeps a job pending through any burst run


# -- running the command line ----------------------------------------------------------------
def run_cli(env: dict[str, str], *args: str, cwd: Path = ROOT, timeout: float = 120.0
            ) -> subprocess.CompletedProcess[str]:
    """``python -m queuejob ARGS`` as a real process (wide output, no terminal)."""
    return subprocess.run([sys.executable, "-m", "queuejob", *args], check=False, cwd=cwd,
                          env={**env, "COLUMNS": "250"}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a refused command (asserting it is one, and not 0)."""
    where = f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}"
    assert proc.returncode != 0, where
    assert "Traceback" not in proc.stderr, where
    assert len(proc.stderr.strip().splitlines()) == 1, where
    return proc.stderr.strip()


@pytest.fixture
def env(job_env: dict[str, str]) -> dict[str, str]:
    """Subprocess environment without a database URL of the caller's."""
    out = dict(job_env)
    out.pop(ENV_DB, None)
    return out


# -- database helpers ------------------------------------------------------------------------
def delay(db: queuejob.Database, func: Any, *args: Any, **options: Any) -> str:
    with db.session(user_id=7) as session:
        return func.delay(session, "res.partner", *args, **options)


def snapshot(db: queuejob.Database) -> dict[str, Any]:
    """Everything a command could have written: jobs, workers, channel configuration."""
    jobs_now = job_rows(db, limit=100_000)
    return {
        "jobs": sorted((r["uuid"], r["state"], r["retry"], r["result"], r["channel"],
                        r["exc_info"]) for r in jobs_now),
        "workers": sorted(w["id"] for w in operations.workers(db)),
        "channels": operations.channels(db),
    }


def queue_job_count(db: queuejob.Database) -> int:
    return db.run(lambda conn: db.connector.execute_sql(
        conn, "SELECT count(*) FROM queue_job").fetchone()[0])


def json_uuids(result: Result) -> set[str]:
    return {item["uuid"] for item in json.loads(result.stdout)}


def field(text: str, name: str) -> str:
    """The value of ``name`` in the two-column output of ``queuejob jobs UUID``."""
    lines = [line.strip() for line in text.splitlines() if line.split()[:1] == [name]]
    assert len(lines) == 1, f"field {name!r} on {len(lines)} lines of:\n{text}"
    return lines[0][len(name):].strip()


def line_of(text: str, needle: str) -> str:
    lines = [line for line in text.splitlines() if needle in line]
    assert len(lines) == 1, f"{needle!r} on {len(lines)} lines of:\n{text}"
    return lines[0]


def row_of(text: str, first: str) -> str:
    """The line of a table whose first column is ``first``."""
    lines = [line for line in text.splitlines() if line.split()[:1] == [first]]
    assert len(lines) == 1, f"{first!r} first on {len(lines)} lines of:\n{text}"
    return lines[0]


@pytest.fixture
def scene(db):
    """One job in each situation: done, failed, pending, cancelled, and two export jobs."""
    done = delay(db, jobs.add, 2, 3)
    failed = delay(db, jobs.fail, "kaboom")
    run_burst(db)
    pending = delay(db, jobs.noop, "p", eta=FAR)
    export = delay(db, jobs.export, "/dev/null", eta=FAR)
    sub = delay(db, jobs.export, "/dev/null", eta=FAR, channel="root.export.sub")
    cancelled = delay(db, jobs.noop, "c", eta=FAR)
    with db.session() as session:
        queuejob.cancel(session, cancelled)
    assert row(db, done)["state"] == "done" and row(db, failed)["state"] == "failed"
    return SimpleNamespace(done=done, failed=failed, pending=pending, export=export, sub=sub,
                           cancelled=cancelled,
                           unfinished={failed, pending, export, sub},
                           every={done, failed, pending, export, sub, cancelled})


# -- worker ----------------------------------------------------------------------------------
def test_worker_burst_runs_the_enqueued_jobs_and_exits_0(db, db_url, env):
    added = delay(db, jobs.add, 1, 2)
    exported = delay(db, jobs.export, "/dev/null")
    later = delay(db, jobs.noop, eta=FAR)
    proc = run_cli(env, "worker", "--db", db_url, "--channels", "root:4,root.export:1",
                   "--module", "tests.jobs", "--burst")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (row(db, added)["state"], row(db, added)["result"]) == ("done", "3")
    assert row(db, exported)["state"] == "done"
    assert row(db, later)["state"] == "pending"


def test_worker_exit_status_does_not_depend_on_failing_jobs(db, db_url, env):
    failing = [delay(db, jobs.fail, "boom"), delay(db, jobs.fail_hard),
               delay(db, jobs.fail, "again", max_retries=1)]
    proc = run_cli(env, "worker", "--db", db_url, "--channels", "root:4",
                   "--module", "tests.jobs", "--burst")
    assert proc.returncode == 0, proc.stderr
    assert [row(db, uuid)["state"] for uuid in failing] == ["failed"] * 3
    assert "ValueError: boom" in row(db, failing[0])["exc_info"]


# -- jobs ------------------------------------------------------------------------------------
def test_jobs_lists_unfinished_jobs_and_hides_done_and_cancelled(db_url, scene, invoke):
    table = invoke("jobs", "--db", db_url).stdout
    for uuid in scene.unfinished:
        assert uuid in table
    assert scene.done not in table and scene.cancelled not in table
    failed_line = line_of(table, scene.failed)
    assert "failed" in failed_line and "tests.jobs.fail" in failed_line
    assert "root.export.sub" in line_of(table, scene.sub)
    assert json_uuids(invoke("jobs", "--db", db_url, "--json")) == scene.unfinished


def test_jobs_all_shows_done_and_cancelled_jobs(db_url, scene, invoke):
    table = invoke("jobs", "--db", db_url, "--all").stdout
    for uuid in scene.every:
        assert uuid in table
    assert "done" in line_of(table, scene.done)
    assert "cancelled" in line_of(table, scene.cancelled)
    assert json_uuids(invoke("jobs", "--db", db_url, "--all", "--json")) == scene.every


def test_jobs_state_filter_shows_done_jobs_with_state_done(db_url, scene, invoke):
    def listed(state: str) -> set[str]:
        return json_uuids(invoke("jobs", "--db", db_url, "--state", state, "--json"))
    assert listed("done") == {scene.done}
    assert listed("failed") == {scene.failed}
    assert listed("pending") == {scene.pending, scene.export, scene.sub}
    assert listed("cancelled") == {scene.cancelled}
    assert listed("started") == set()
    table = invoke("jobs", "--db", db_url, "--state", "done").stdout
    assert scene.done in table and scene.failed not in table


def test_jobs_channel_filter_includes_subchannels(db_url, scene, invoke):
    def listed(*options: str) -> set[str]:
        return json_uuids(invoke("jobs", "--db", db_url, "--json", *options))
    assert listed("--channel", "root.export") == {scene.export, scene.sub}
    assert listed("--channel", "export") == {scene.export, scene.sub}  # root. is optional
    assert listed("--channel", "root.export.sub") == {scene.sub}
    assert listed("--channel", "root", "--all") == scene.every
    assert listed("--channel", "root.nothing") == set()
    table = invoke("jobs", "--db", db_url, "--channel", "root.export").stdout
    assert scene.export in table and scene.sub in table and scene.pending not in table


def test_jobs_function_filter(db_url, scene, invoke):
    def listed(*options: str) -> set[str]:
        return json_uuids(invoke("jobs", "--db", db_url, "--json", *options))
    assert listed("--function", "tests.jobs.export") == {scene.export, scene.sub}
    assert listed("--function", "tests.jobs.noop") == {scene.pending}
    assert listed("--function", "tests.jobs.noop", "--all") == {scene.pending, scene.cancelled}
    assert listed("--function", "tests.jobs.add", "--all") == {scene.done}
    assert listed("--function", "tests.jobs.noop", "--channel", "root.export") == set()
    assert invoke("jobs", "--db", db_url, "--function", "tests.jobs.add").stdout.strip() \
        == "no jobs"


def test_jobs_json_describes_each_job(db_url, scene, invoke):
    items = {item["uuid"]: item for item in json.loads(
        invoke("jobs", "--db", db_url, "--all", "--json").stdout)}
    failed = items[scene.failed]
    assert (failed["state"], failed["channel"], failed["func_name"]) == \
        ("failed", "root", "tests.jobs.fail")
    assert (failed["priority"], failed["retry"], failed["max_retries"]) == (10, 1, 5)
    assert failed["description"] == "Function fail"
    assert items[scene.done]["description"] == "Add two numbers."
    assert items[scene.export]["eta"] is not None and failed["eta"] is None
    assert items[scene.sub]["channel"] == "root.export.sub"


def test_jobs_uuid_shows_a_failed_job_in_full_with_its_traceback(db_url, scene, invoke):
    shown = invoke("jobs", "--db", db_url, scene.failed).stdout
    assert scene.failed in shown
    assert field(shown, "state") == "failed"
    assert field(shown, "func_name") == "tests.jobs.fail"
    assert field(shown, "args") == "'res.partner', 'kaboom'"
    assert "Traceback (most recent call last)" in shown
    assert "ValueError: kaboom" in shown
    data = json.loads(invoke("jobs", "--db", db_url, scene.failed, "--json").stdout)
    assert (data["uuid"], data["state"]) == (scene.failed, "failed")
    assert data["arguments"] == {"args": ["'res.partner'", "'kaboom'"], "kwargs": {}}
    assert "ValueError: kaboom" in data["exc_info"]


def test_jobs_uuid_shows_args_and_result_of_a_done_job(db_url, scene, invoke):
    shown = invoke("jobs", "--db", db_url, scene.done).stdout
    assert field(shown, "args") == "'res.partner', 2, 3"
    assert field(shown, "result") == "5"
    assert field(shown, "user_id") == "7"
    assert "Traceback" not in shown
    data = json.loads(invoke("jobs", "--db", db_url, scene.done, "--json").stdout)
    assert (data["state"], data["result"], data["exc_info"]) == ("done", "5", None)
    assert data["arguments"] == {"args": ["'res.partner'", "2", "3"], "kwargs": {}}
    # a uuid in capitals names the same job
    upper = json.loads(invoke("jobs", "--db", db_url, scene.done.upper(), "--json").stdout)
    assert upper["uuid"] == scene.done


# -- manual actions --------------------------------------------------------------------------
def test_done_and_cancel_by_uuid_write_who_did_it(db, db_url, invoke):
    first = delay(db, jobs.noop, 1, eta=FAR)
    second = delay(db, jobs.noop, 2, eta=FAR)
    failed = delay(db, jobs.fail)
    run_burst(db)
    assert invoke("done", "--db", db_url, first, "--user", "alice").stdout.strip() \
        == "set done 1 job(s)"
    assert (row(db, first)["state"], row(db, first)["result"]) == \
        ("done", "Manually set to done by alice")
    assert invoke("cancel", "--db", db_url, second, failed, "--user", "bob").stdout.strip() \
        == "cancelled 2 job(s)"
    for uuid in (second, failed):
        assert (row(db, uuid)["state"], row(db, uuid)["result"]) == \
            ("cancelled", "Cancelled by bob")


def test_the_user_defaults_to_the_login_name(db, db_url, invoke):
    first = delay(db, jobs.noop, 1, eta=FAR)
    second = delay(db, jobs.noop, 2, eta=FAR)
    invoke("done", "--db", db_url, first)
    invoke("cancel", "--db", db_url, second)
    assert row(db, first)["result"] == f"Manually set to done by {default_user()}"
    assert row(db, second)["result"] == f"Cancelled by {default_user()}"


def test_requeue_by_uuid_puts_failed_jobs_back_to_pending(db, db_url, invoke):
    failed = [delay(db, jobs.fail, "one"), delay(db, jobs.fail, "two")]
    run_burst(db)
    assert [row(db, uuid)["retry"] for uuid in failed] == [1, 1]
    assert invoke("requeue", "--db", db_url, *failed).stdout.strip() == "requeued 2 job(s)"
    for uuid in failed:
        assert (row(db, uuid)["state"], row(db, uuid)["retry"]) == ("pending", 0)
    run_burst(db)  # they run again
    assert [(row(db, uuid)["state"], row(db, uuid)["retry"]) for uuid in failed] == \
        [("failed", 1), ("failed", 1)]


def test_requeue_by_state_filter(db, db_url, invoke):
    failed = {delay(db, jobs.fail), delay(db, jobs.fail, channel="root.a"),
              delay(db, jobs.fail_hard, channel="root.b.c")}
    done = delay(db, jobs.add, 1, 1)
    run_burst(db)
    pending = delay(db, jobs.noop, eta=FAR)
    result = invoke("requeue", "--db", db_url, "--state", "failed", "--yes")
    assert result.stdout.strip() == "requeued 3 job(s)"
    for uuid in failed:
        assert (row(db, uuid)["state"], row(db, uuid)["retry"]) == ("pending", 0)
    assert row(db, done)["state"] == "done"
    assert row(db, pending)["state"] == "pending"


def test_cancel_and_done_by_channel_and_function_filters(db, db_url, invoke):
    exports = {delay(db, jobs.export, "/dev/null", eta=FAR),
               delay(db, jobs.export, "/dev/null", eta=FAR, channel="root.export.sub")}
    other = delay(db, jobs.noop, eta=FAR)
    failed = {delay(db, jobs.fail), delay(db, jobs.fail, channel="root.a")}
    finished = delay(db, jobs.export, "/dev/null", channel="root.export")
    run_burst(db)
    assert row(db, finished)["state"] == "done"
    result = invoke("cancel", "--db", db_url, "--channel", "root.export", "--yes",
                    "--user", "carol")
    assert result.stdout.strip() == "cancelled 2 job(s)"
    for uuid in exports:
        assert (row(db, uuid)["state"], row(db, uuid)["result"]) == \
            ("cancelled", "Cancelled by carol")
    assert row(db, finished)["state"] == "done"  # a done job is not selected
    assert row(db, other)["state"] == "pending"
    result = invoke("done", "--db", db_url, "--function", "tests.jobs.fail", "--yes",
                    "--user", "dave")
    assert result.stdout.strip() == "set done 2 job(s)"
    for uuid in failed:
        assert (row(db, uuid)["state"], row(db, uuid)["result"]) == \
            ("done", "Manually set to done by dave")
    assert row(db, other)["state"] == "pending"
    assert invoke("cancel", "--db", db_url, "--function", "tests.jobs.add", "--yes"
                  ).stdout.strip() == "no job matches"


def test_a_refused_action_is_one_line_and_changes_nothing(db, db_url, env):
    done = delay(db, jobs.add, 1, 2)
    run_burst(db)
    pending = delay(db, jobs.noop, eta=FAR)
    cancelled = delay(db, jobs.noop, "c", eta=FAR)
    with db.session() as session:
        queuejob.cancel(session, cancelled)
    before = snapshot(db)
    refusals = [(["cancel", done], done, "done"), (["done", done], done, "done"),
                (["cancel", cancelled], cancelled, "cancelled"),
                (["done", cancelled], cancelled, "cancelled"),
                # all or nothing: the pending job given with the done one stays pending
                (["cancel", pending, done], done, "done"),
                (["done", pending, cancelled], cancelled, "cancelled")]
    for args, culprit, state in refusals:
        message = one_line_error(run_cli(env, *args, "--db", db_url, "--user", "eve"))
        assert culprit in message and state in message, (args, message)
        assert snapshot(db) == before, args


def test_a_refused_action_by_filter_is_one_line_and_changes_nothing(db, db_url, env):
    done = delay(db, jobs.add, 1, 2)
    run_burst(db)
    delay(db, jobs.noop, eta=FAR)
    assert row(db, done)["state"] == "done"
    before = snapshot(db)
    for action in ("cancel", "done"):  # (a done job may be requeued, as in the successor)
        message = one_line_error(run_cli(env, action, "--db", db_url, "--state", "done",
                                         "--yes"))
        assert "done" in message, message
        assert snapshot(db) == before
    message = one_line_error(run_cli(env, "requeue", "--db", db_url, "--state",
                                     "wait_dependencies", "--yes"))
    assert "wait_dependencies" in message, message
    assert snapshot(db) == before


def test_actions_need_uuids_or_a_filter_but_not_both(env, tmp_path):
    url = f"sqlite:///{tmp_path}/never.db"
    for args in (["cancel"], ["requeue"], ["done"],
                 ["cancel", UNKNOWN_UUID, "--function", "tests.jobs.noop"]):
        message = one_line_error(run_cli(env, *args, "--db", url))
        assert "uuid" in message, message
    assert not (tmp_path / "never.db").exists()


# -- stats, channels, workers ----------------------------------------------------------------
def test_stats_counts_jobs_by_channel_and_state(db_url, scene, invoke):
    data = json.loads(invoke("stats", "--db", db_url, "--json").stdout)
    assert data == {"root": {"done": 1, "failed": 1, "pending": 1, "cancelled": 1},
                    "root.export": {"pending": 1}, "root.export.sub": {"pending": 1}}
    table = invoke("stats", "--db", db_url).stdout
    header = line_of(table, "enqueued").split()
    assert header == ["channel", "waiting", "pending", "enqueued", "started", "done", "failed",
                      "cancelled"]
    assert line_of(table, "total").split() == ["total", "0", "3", "0", "0", "1", "1", "1"]
    assert line_of(table, "root.export.sub").split() == \
        ["root.export.sub", "0", "1", "0", "0", "0", "0", "0"]


def test_channels_set_then_channels_lists_it(db, db_url, invoke):
    delay(db, jobs.export, "/dev/null", eta=FAR)
    delay(db, jobs.export, "/dev/null", eta=FAR, channel="root.export.sub")
    result = invoke("channels", "set", "root.export", "2", "--db", db_url)
    assert result.stdout.strip() == "channel root.export: capacity 2"
    table = invoke("channels", "--db", db_url).stdout
    assert row_of(table, "root.export").split() == ["root.export", "2", "stored", "0", "2", "0"]
    # a channel holding jobs without a rule of its own shows in the tree, under its parent
    assert row_of(table, "root.export.sub").split() == ["root.export.sub", "-", "0", "1", "0"]
    assert line_of(table, "unlimited").split()[:2] == ["root", "unlimited"]
    stored = {item["name"]: item for item in operations.channels(db)}
    assert stored["root.export"]["capacity"] == 2
    # the database may also be given to the group, and root. left out
    result = invoke("channels", "--db", db_url, "set", "mail", "1", "--sequential",
                    "--throttle", "2")
    assert result.stdout.strip() == "channel root.mail: capacity 1, sequential, throttle 2s"
    table = invoke("channels", "--db", db_url).stdout
    assert "sequential, throttle 2s" in line_of(table, "root.mail")
    invoke("channels", "delete", "root.mail", "--db", db_url)
    assert "root.mail" not in invoke("channels", "--db", db_url).stdout


def test_workers_lists_the_workers_that_ran(db, db_url, env, invoke):
    assert invoke("workers", "--db", db_url).stdout.strip() == "no workers"
    assert json.loads(invoke("workers", "--db", db_url, "--json").stdout) == []
    delay(db, jobs.noop)
    proc = run_cli(env, "worker", "--db", db_url, "--channels", "root:2,root.export:1",
                   "--module", "tests.jobs", "--burst")
    assert proc.returncode == 0, proc.stderr
    [worker] = json.loads(invoke("workers", "--db", db_url, "--json").stdout)
    assert worker["state"] == "stopped"
    assert worker["channels"] == "root:2,root.export:1"
    assert worker["running"] == 0
    table = invoke("workers", "--db", db_url).stdout
    assert "stopped" in line_of(table, str(worker["pid"]))


# -- the database from the environment ------------------------------------------------------
def test_the_database_url_comes_from_the_environment(db, db_url, env):
    uuid = delay(db, jobs.add, 20, 22)
    with_env = {**env, ENV_DB: db_url}
    listed = run_cli(with_env, "jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [item["uuid"] for item in json.loads(listed.stdout)] == [uuid]
    worker = run_cli(with_env, "worker", "--module", "tests.jobs", "--burst")
    assert worker.returncode == 0, worker.stderr
    assert (row(db, uuid)["state"], row(db, uuid)["result"]) == ("done", "42")
    stats = run_cli(with_env, "stats", "--json")
    assert json.loads(stats.stdout) == {"root": {"done": 1}}
    # --db wins over the environment
    overridden = run_cli({**env, ENV_DB: "foo://x"}, "jobs", "--all", "--json", "--db", db_url)
    assert overridden.returncode == 0, overridden.stderr
    assert [item["uuid"] for item in json.loads(overridden.stdout)] == [uuid]


def test_the_database_url_from_the_environment_in_process(db, db_url, invoke):
    uuid = delay(db, jobs.noop, eta=FAR)
    result = invoke("cancel", uuid, "--user", "env", env={ENV_DB: db_url})
    assert result.stdout.strip() == "cancelled 1 job(s)"
    assert row(db, uuid)["result"] == "Cancelled by env"


def test_no_database_at_all_is_one_line(env):
    for args in (["jobs"], ["stats"], ["worker", "--module", "tests.jobs", "--burst"]):
        message = one_line_error(run_cli(env, *args))
        assert ENV_DB in message and "--db" in message


# -- bad input -------------------------------------------------------------------------------
COMMANDS = [
    ["jobs"], ["jobs", UNKNOWN_UUID], ["stats"], ["workers"], ["channels"],
    ["channels", "set", "root.a", "2"], ["cancel", UNKNOWN_UUID],
    ["requeue", "--function", "tests.jobs.add", "--yes"],
    ["worker", "--module", "tests.jobs", "--burst", "--wait-for-db", "0"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: "-".join(args[:2]))
@pytest.mark.parametrize(("url", "named"), [("foo://x", "foo"),
                                            ("sqlite:///nonexistent-dir/x.db",
                                             "nonexistent-dir")])
def test_a_bad_url_is_one_line_and_writes_nothing(env, tmp_path, args, url, named):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    message = one_line_error(run_cli(env, *args, "--db", url, cwd=cwd))
    assert named in message, message
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: "-".join(args[:2]))
def test_an_unreachable_postgresql_is_one_line(env, args):
    message = one_line_error(run_cli(env, *args, "--db", UNREACHABLE_PG, timeout=60))
    assert "127.0.0.1" in message, message


@pytest.mark.parametrize("given", [UNKNOWN_UUID, MALFORMED_UUID])
@pytest.mark.parametrize("command", ["jobs", "requeue", "cancel", "done"])
def test_an_unknown_or_malformed_uuid_is_one_line_and_changes_nothing(db, db_url, env,
                                                                      command, given):
    delay(db, jobs.fail)
    run_burst(db)
    delay(db, jobs.noop, eta=FAR)
    before = snapshot(db)
    message = one_line_error(run_cli(env, command, given, "--db", db_url))
    assert given in message, message
    assert snapshot(db) == before


@pytest.mark.parametrize("command", ["requeue", "cancel", "done"])
def test_an_unknown_uuid_among_known_ones_changes_nothing(db, db_url, env, command):
    pending = delay(db, jobs.noop, eta=FAR)
    before = snapshot(db)
    message = one_line_error(run_cli(env, command, pending, UNKNOWN_UUID, "--db", db_url))
    assert UNKNOWN_UUID in message, message
    assert snapshot(db) == before
    assert row(db, pending)["state"] == "pending"


@pytest.mark.parametrize(("channels", "entry"), [
    ("root:4,root.export:x", "root.export:x"),
    ("root:4,bad name:2", "bad name:2"),
    ("root:4,root.seq:2:sequential", "root.seq:2:sequential"),
    ("root:4,root.a:1:colour=blue", "root.a:1:colour=blue"),
    ("root:-1", "root:-1"),
    ("root:4,root.a:1:throttle=soon", "root.a:1:throttle=soon"),
    ("root:4\nroot:2", "root:2"),
])
def test_a_malformed_channel_string_names_the_bad_entry(db, db_url, env, channels, entry):
    pending = delay(db, jobs.noop)
    before = snapshot(db)
    message = one_line_error(run_cli(env, "worker", "--db", db_url, "--channels", channels,
                                     "--module", "tests.jobs", "--burst"))
    assert entry in message, message
    assert snapshot(db) == before
    assert row(db, pending)["state"] == "pending"


@pytest.mark.parametrize("modules", [["tests.no_such_jobs"],
                                     ["tests.jobs", "no_such_package.jobs"]])
def test_an_unknown_module_is_one_line_and_runs_nothing(db, db_url, env, modules):
    pending = delay(db, jobs.noop)
    before = snapshot(db)
    options = [item for module in modules for item in ("--module", module)]
    message = one_line_error(run_cli(env, "worker", "--db", db_url, *options, "--burst"))
    assert modules[-1] in message, message
    assert snapshot(db) == before
    assert row(db, pending)["state"] == "pending"


def test_an_unknown_module_creates_no_database(env, tmp_path):
    path = tmp_path / "fresh.db"
    message = one_line_error(run_cli(env, "worker", "--db", f"sqlite:///{path}",
                                     "--module", "tests.no_such_jobs", "--burst"))
    assert "tests.no_such_jobs" in message, message
    assert not path.exists(), "a worker refused for its configuration created the database"


@pytest.mark.parametrize("args", [
    ["channels", "set", EVIL_CHANNEL, "2"],
    ["channels", "delete", EVIL_CHANNEL],
    ["jobs", "--channel", EVIL_CHANNEL],
    ["cancel", "--channel", EVIL_CHANNEL, "--yes"],
    ["worker", "--channels", f"root:4,{EVIL_CHANNEL}:1", "--module", "tests.jobs", "--burst"],
], ids=["channels-set", "channels-delete", "jobs", "cancel", "worker"])
def test_channel_names_with_sql_metacharacters_are_refused(db, db_url, env, args):
    pending = delay(db, jobs.noop, eta=FAR)
    before = snapshot(db)
    message = one_line_error(run_cli(env, *args, "--db", db_url))
    assert "channel" in message, message
    assert queue_job_count(db) == 1  # the table is still there, with its job
    assert snapshot(db) == before
    assert row(db, pending)["state"] == "pending"


def test_a_locked_sqlite_database_is_one_line_and_changes_nothing(env, tmp_path):
    path = tmp_path / "locked.db"
    db = queuejob.open(f"sqlite:///{path}")
    try:
        pending = delay(db, jobs.noop, eta=FAR)
        failed = delay(db, jobs.fail)
        run_burst(db)
        before = snapshot(db)
        url = f"sqlite:///{path}?busy_timeout=0.2"
        holder = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            for args in (["cancel", pending], ["done", pending], ["requeue", failed],
                         ["cancel", "--function", "tests.jobs.noop", "--yes"],
                         ["channels", "set", "root.a", "2"],
                         ["worker", "--module", "tests.jobs", "--burst"]):
                message = one_line_error(run_cli(env, *args, "--db", url, timeout=60))
                assert "locked" in message, (args, message)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert snapshot(db) == before
    finally:
        db.close()


# -- demo ------------------------------------------------------------------------------------
def test_demo_runs_to_the_end_and_prints_a_summary(env, tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    proc = run_cli(env, "demo", "--jobs", "200", "--db", url, cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Jobs by channel" in proc.stdout
    finished = re.search(r"(\d+) jobs finished in", proc.stdout)
    assert finished, proc.stdout
    db = queuejob.open(url)
    try:
        counts: dict[str, int] = {}
        for by_state in operations.stats(db).values():
            for state, count in by_state.items():
                counts[state] = counts.get(state, 0) + count
    finally:
        db.close()
    total = sum(counts.values())
    assert int(finished.group(1)) == total
    assert counts.get("done", 0) + counts.get("failed", 0) + counts.get("cancelled", 0) == total
    assert counts.get("done", 0) > 0 and counts.get("failed", 0) > 0  # some fail, by design
