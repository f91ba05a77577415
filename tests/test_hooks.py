"""Hooks and subscriptions to failures, as the worker delivers them.

``@job(on_failure=..., on_retry=..., on_done=...)``: each hook runs once per outcome,
with a session of the job's user and the job as that outcome left it (even when the
hook runs late); a hook that raises is logged and the worker goes on; a slow hook never
holds up the jobs.

Subscriptions (``queuejob subscriptions``, ``operations.add_subscription``): a job that
fails for good is POSTed as JSON to a webhook (a real HTTP server of the test), or
makes a job of the subscriber's function with the failed job's uuid; only the
subscriptions that match the job are told. Bad input is refused in one line, and a
subscription row that does not make sense (written by hand) costs only that row.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import queuejob
from queuejob import ConfigurationError, RetryableJobError, job, operations
from queuejob.core import registry
from queuejob.core import subscriptions as rules
from queuejob.core.channels import normalize_name
from queuejob.worker.hooks import post_json
from tests import jobs
from tests.helpers import ThreadWorker, load, refused, wait_until
from tests.reliability.common import sql

HERE = __name__
MODULES = [HERE, "tests.jobs"]
ENV_DB = "QUEUEJOB_DATABASE_URL"


# -- hooks and job functions of these tests ---------------------------------------------
@dataclass(frozen=True)
class Call:
    """One call of a hook: what it was given."""

    hook: str
    uuid: str
    state: str
    retry: int
    session_user: int | None
    session_job_uuid: str | None
    exc_name: str | None
    result: str | None


CALLS: list[Call] = []
_calls_lock = threading.Lock()
#: the slow hook says it started, then waits for the test to release it
SLOW_HOOK_ENTERED = threading.Event()
SLOW_HOOK_RELEASE = threading.Event()


def _note(hook: str, session: Any, job: Any) -> None:
    with _calls_lock:
        CALLS.append(Call(hook, job.uuid, job.state, job.retry, session.user_id,
                          session.context.get("job_uuid"), job.exc_name, job.result))


def calls(job_uuid: str) -> list[tuple[str, str]]:
    with _calls_lock:
        return [(call.hook, call.state) for call in CALLS if call.uuid == job_uuid]


def note_failure(session, job):
    _note("on_failure", session, job)


def note_retry(session, job):
    _note("on_retry", session, job)


def note_done(session, job):
    _note("on_done", session, job)
    placeholder = "?" if session.db.dialect == "sqlite" else "%s"
    session.execute(f"INSERT INTO hook_log (uuid) VALUES ({placeholder})", (job.uuid,))


def explode(session, job):
    _note("explode", session, job)
    placeholder = "?" if session.db.dialect == "sqlite" else "%s"
    session.execute(f"INSERT INTO hook_log (uuid) VALUES ({placeholder})", (job.uuid,))
    raise RuntimeError(f"hook exploded on {job.uuid}")


def three_arguments(session, job, extra):
    """Not a hook: it needs a third argument."""


def slow(session, job):
    SLOW_HOOK_ENTERED.set()
    if not SLOW_HOOK_RELEASE.wait(30):
        raise RuntimeError("the test never released the slow hook")
    _note("slow", session, job)


@job(on_failure=note_failure, on_retry=note_retry, on_done=note_done)
def hooked(session, model_name, failures=0, then="done"):
    """Retry ``failures`` times, then end done or fail."""
    if session.job.retry <= failures:
        raise RetryableJobError(f"attempt {session.job.retry}", seconds=0.01)
    if then == "fail":
        raise LookupError("the partner is gone")
    return "ok"


@job(on_done=explode, on_failure=explode)
def hooked_explodes(session, model_name, fail=False):
    if fail:
        raise ValueError("failed on purpose")
    return "fine"


@job(on_done=slow)
def hooked_slow(session, model_name):
    return "slow hook"


@job(default_channel="root.export")
def export_fails(session, model_name, message="export refused"):
    raise PermissionError(message)


@job
def handle_failure(session, model_name, failed_uuid):
    """The target of a job subscription: delayed with the failed job's uuid."""
    return f"handled {model_name} {failed_uuid} as user {session.user_id}"


@job
def failing_handler(session, model_name, failed_uuid):
    """A subscriber's job that fails too."""
    raise RuntimeError(f"could not handle {failed_uuid}")


@job
def other_failing_handler(session, model_name, failed_uuid):
    """Another subscriber's job that fails too."""
    raise RuntimeError(f"could not handle {failed_uuid} either")


@pytest.fixture(autouse=True)
def _fresh_hooks():
    with _calls_lock:
        CALLS.clear()
    SLOW_HOOK_ENTERED.clear()
    SLOW_HOOK_RELEASE.clear()
    yield
    SLOW_HOOK_RELEASE.set()  # never leave a hook thread waiting


def hook_log_table(db: queuejob.Database) -> None:
    with db.session() as session:
        session.execute("CREATE TABLE hook_log (uuid varchar(64))")


def hook_log(db: queuejob.Database) -> list[str]:
    with db.session() as session:
        return sorted(row[0] for row in session.execute("SELECT uuid FROM hook_log").fetchall())


def burst(db: queuejob.Database, channels: str = "root:4") -> None:
    """A burst run: it returns once its hooks and notifications are delivered."""
    queuejob.Worker(db, channels=channels, modules=MODULES).run(burst=True)


def delay(db: queuejob.Database, func: Any, *args: Any, user_id: int | None = None,
          **options: Any) -> str:
    with db.session(user_id=user_id) as session:
        return func.delay(session, "res.partner", *args, **options)


# -- hooks --------------------------------------------------------------------------------
def test_each_hook_runs_once_per_outcome_as_the_jobs_user(db):
    hook_log_table(db)
    done = delay(db, hooked, user_id=7)
    retried = delay(db, hooked, 2, user_id=8)
    failed = delay(db, hooked, 0, "fail", user_id=9)
    given_up = delay(db, hooked, 5, max_retries=2)  # the second retry is one too many
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05):
        wait_until(lambda: {load(db, u).state for u in (done, retried, failed, given_up)}
                   <= {"done", "failed"}, message="every job ended")
    # the worker delivered what was queued before it stopped
    assert calls(done) == [("on_done", "done")]
    assert calls(retried) == [("on_retry", "pending"), ("on_retry", "pending"),
                              ("on_done", "done")]
    assert calls(failed) == [("on_failure", "failed")]
    assert calls(given_up) == [("on_retry", "pending"), ("on_failure", "failed")]
    with _calls_lock:
        by_uuid = {call.uuid: call for call in CALLS if call.hook != "on_retry"}
    # (session, job): a session of the job's user, bound to the job
    for job_uuid, user in ((done, 7), (retried, 8), (failed, 9)):
        assert by_uuid[job_uuid].session_user == user
        assert by_uuid[job_uuid].session_job_uuid == job_uuid
    assert by_uuid[failed].exc_name == "builtins.LookupError"
    assert by_uuid[retried].retry == 3
    # what on_done wrote through its session is committed
    assert hook_log(db) == sorted([done, retried])


def test_a_job_without_hooks_calls_none(db):
    plain = delay(db, jobs.add, 1, 2)
    failing = delay(db, jobs.fail)
    burst(db)
    assert (load(db, plain).state, load(db, failing).state) == ("done", "failed")
    with _calls_lock:
        assert CALLS == []


def test_a_raising_hook_is_logged_and_the_worker_carries_on(db, caplog):
    hook_log_table(db)
    exploding = [delay(db, hooked_explodes) for _ in range(3)]
    exploding_failure = delay(db, hooked_explodes, fail=True)
    others = [delay(db, hooked) for _ in range(3)]
    with caplog.at_level(logging.ERROR, logger="queuejob.hooks"):
        burst(db, channels="root:1")
    assert [load(db, u).state for u in exploding] == ["done"] * 3
    assert load(db, exploding_failure).state == "failed"
    assert [load(db, u).state for u in others] == ["done"] * 3
    # every hook ran, each once, the ones after a raising hook too
    for job_uuid in exploding:
        assert calls(job_uuid) == [("explode", "done")]
    assert calls(exploding_failure) == [("explode", "failed")]
    for job_uuid in others:
        assert calls(job_uuid) == [("on_done", "done")]
    logged = [record.getMessage() for record in caplog.records
              if record.name == "queuejob.hooks" and record.levelno >= logging.ERROR]
    for job_uuid in [*exploding, exploding_failure]:
        assert any(job_uuid in message and "hook exploded" in message for message in logged)
    # a hook that raises has its writes rolled back; the others' are committed
    assert hook_log(db) == sorted(others)
    # the outcome itself was written before the hook ran, and stays
    assert load(db, exploding[0]).result == "fine"


def test_a_slow_hook_does_not_stop_the_worker_from_finishing_other_jobs(db):
    hook_log_table(db)
    slow_job = delay(db, hooked_slow)
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05) as worker:
        assert SLOW_HOOK_ENTERED.wait(20), "the slow hook never started"
        assert load(db, slow_job).state == "done"
        others = [delay(db, hooked) for _ in range(5)]
        failing = delay(db, jobs.fail)
        wait_until(lambda: all(load(db, u).state == "done" for u in others)
                   and load(db, failing).state == "failed",
                   message="the other jobs finished while the hook is blocked")
        assert worker.thread.is_alive()
        assert calls(slow_job) == []  # still blocked
        SLOW_HOOK_RELEASE.set()
        wait_until(lambda: calls(slow_job) == [("slow", "done")], message="slow hook ended")
        # the other jobs' hooks were only queued behind it: they run once it returns
        wait_until(lambda: all(calls(u) == [("on_done", "done")] for u in others),
                   message="the hooks queued behind the slow one")
    assert hook_log(db) == sorted(others)


def test_a_hook_run_late_sees_the_job_as_its_outcome_left_it(db):
    """Hooks run after the outcomes, on their own thread: a retry's hook that runs once
    the job has failed meanwhile is still given the retry (state, count, message)."""
    hook_log_table(db)
    slow_job = delay(db, hooked_slow)
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05):
        assert SLOW_HOOK_ENTERED.wait(20), "the slow hook never started"
        job_uuid = delay(db, hooked, 5, max_retries=2)
        wait_until(lambda: load(db, job_uuid).state == "failed", message="retries used up")
        SLOW_HOOK_RELEASE.set()
        wait_until(lambda: len(calls(job_uuid)) == 2, message="the hooks behind the slow one")
    assert calls(slow_job) == [("slow", "done")]
    with _calls_lock:
        seen = [(call.hook, call.state, call.retry, call.exc_name, call.result)
                for call in CALLS if call.uuid == job_uuid]
    assert seen == [("on_retry", "pending", 1, None, "attempt 1"),
                    ("on_failure", "failed", 2, "queuejob.core.errors.FailedJobError",
                     None)]


def test_a_hook_blocked_at_shutdown_holds_the_worker_only_so_long(db, monkeypatch):
    from queuejob.worker import worker as worker_module
    monkeypatch.setattr(worker_module, "HOOKS_AT_SHUTDOWN", 0.5)
    slow_job = delay(db, hooked_slow)
    finished = threading.Event()

    def run() -> None:
        burst(db)
        finished.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert SLOW_HOOK_ENTERED.wait(20), "the slow hook never started"
    assert finished.wait(20), "the worker waited for a blocked hook without end"
    assert load(db, slow_job).state == "done"
    SLOW_HOOK_RELEASE.set()
    thread.join(5)
    # the hook, left running at shutdown, ends once released
    wait_until(lambda: calls(slow_job) == [("slow", "done")], message="slow hook ended")


def test_hooks_must_be_module_level_functions_taking_session_and_job():
    def local_hook(session, job):
        pass

    with pytest.raises(TypeError, match="module-level"):
        job(on_done=local_hook)(handle_failure.func)
    with pytest.raises(TypeError, match="on_failure"):
        job(on_failure="not callable")(handle_failure.func)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="signature"):
        job(on_retry=three_arguments)(handle_failure.func)


# -- a real webhook receiver ---------------------------------------------------------------
class Receiver:
    """An HTTP server on the loopback: records each POST; ``/broken`` answers 500."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append({
                        "path": self.path, "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body)})
                self.send_response(500 if self.path == "/broken" else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def messages(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [entry["body"] for entry in self.received
                    if path is None or entry["path"] == path]


@pytest.fixture
def receiver(monkeypatch) -> Iterator[Receiver]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        server.thread.join(5)


# -- subscriptions -------------------------------------------------------------------------
def test_a_webhook_is_sent_each_job_of_its_channel_that_fails_for_good(db, receiver):
    subscription = operations.add_subscription(db, channel="root.export",
                                               webhook=receiver.url + "/failures")
    matching = delay(db, export_fails, "CRM refused the partner", user_id=3)
    in_subchannel = delay(db, export_fails, channel="root.export.crm")
    elsewhere = delay(db, export_fails, channel="root.import")
    done = delay(db, jobs.add, 1, 2, channel="root.export")
    retried = delay(db, jobs.always_retry, channel="root.export")  # pending again, not failed
    burst(db)
    assert load(db, retried).state == "pending"
    assert load(db, done).state == "done"
    assert load(db, elsewhere).state == "failed"
    messages = receiver.messages("/failures")
    assert sorted(message["uuid"] for message in messages) == sorted([matching, in_subchannel])
    assert all(entry["content_type"] == "application/json" for entry in receiver.received)
    [message] = [m for m in messages if m["uuid"] == matching]
    assert message == {
        "event": "job.failed", "subscription": subscription, "uuid": matching,
        "func_name": f"{HERE}.export_fails", "channel": "root.export",
        "description": "Function export_fails", "exc_name": "builtins.PermissionError",
        "exc_message": "CRM refused the partner", "attempts": 1, "max_retries": 5}


def test_a_function_subscription_hears_only_that_functions_failures(db, receiver):
    operations.add_subscription(db, func_name="tests.jobs.fail", webhook=receiver.url + "/fn")
    operations.add_subscription(db, func_name="tests.jobs.fail", channel="root.other",
                                webhook=receiver.url + "/fn-and-channel")
    operations.add_subscription(db, webhook=receiver.url + "/all")
    wanted = delay(db, jobs.fail, "wanted")
    both = delay(db, jobs.fail, "both", channel="root.other.deep")
    other = delay(db, export_fails)
    burst(db)
    assert sorted(m["uuid"] for m in receiver.messages("/fn")) == sorted([wanted, both])
    assert [m["uuid"] for m in receiver.messages("/fn-and-channel")] == [both]
    assert sorted(m["uuid"] for m in receiver.messages("/all")) == sorted([wanted, both, other])


def test_a_job_that_gives_up_retrying_is_a_failure_for_its_subscriptions(db, receiver):
    operations.add_subscription(db, webhook=receiver.url)
    job_uuid = delay(db, hooked, 5, max_retries=2)
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05):
        wait_until(lambda: load(db, job_uuid).state == "failed", message="retries used up")
    [message] = receiver.messages()
    assert (message["uuid"], message["attempts"], message["max_retries"]) == (job_uuid, 2, 2)
    assert message["exc_name"].endswith(".FailedJobError")
    assert "Max. retries (2) reached" in message["exc_message"]


def test_a_job_subscription_delays_the_named_function_with_the_failed_jobs_uuid(db):
    operations.add_subscription(db, func_name=f"{HERE}.export_fails",
                                job=f"{HERE}.handle_failure")
    failed = delay(db, export_fails, user_id=4)
    ignored = delay(db, jobs.fail)
    burst(db)
    handlers = [row for row in operations.find_jobs(
        db, queuejob.operations.JobFilter(func_name=f"{HERE}.handle_failure",
                                          show_all=True)).rows]
    assert len(handlers) == 1
    handler = load(db, handlers[0]["uuid"])
    assert (handler.model_name, handler.args, handler.kwargs) == (
        "queue.job", ("queue.job", failed), {})
    assert handler.user_id == 4  # as the failed job's user
    assert load(db, ignored).state == "failed"
    burst(db)
    assert load(db, handler.uuid).result == f"handled queue.job {failed} as user 4"


def test_a_failing_subscribers_job_does_not_make_failures_without_end(db, receiver):
    """A subscription to every failure whose job fails: its failure is not sent to it
    again (which would make one more failing job after another); webhooks still hear."""
    operations.add_subscription(db, job=f"{HERE}.failing_handler")
    operations.add_subscription(db, webhook=receiver.url)
    failed = delay(db, jobs.fail)
    for _ in range(3):
        burst(db)
    handlers = operations.find_jobs(db, operations.JobFilter(
        func_name=f"{HERE}.failing_handler", show_all=True)).rows
    assert len(handlers) == 1
    handler = load(db, handlers[0]["uuid"])
    assert (handler.state, handler.args) == ("failed", ("queue.job", failed))
    assert sorted(m["uuid"] for m in receiver.messages()) == sorted([failed, handler.uuid])


def test_two_failing_subscribers_jobs_do_not_feed_each_other_without_end(db):
    """Each catch-all job subscription hears the other's failures: still a bounded
    number of jobs, however many runs."""
    operations.add_subscription(db, job=f"{HERE}.failing_handler")
    operations.add_subscription(db, job=f"{HERE}.other_failing_handler")
    failed = delay(db, jobs.fail)
    for _ in range(4):
        burst(db)
    made = operations.find_jobs(db, operations.JobFilter(show_all=True), limit=100).rows
    handlers = [row for row in made if row["uuid"] != failed]
    assert sorted(row["func_name"] for row in handlers) == [
        f"{HERE}.failing_handler", f"{HERE}.other_failing_handler"]


def test_a_job_whose_worker_died_once_too_often_is_a_failure_for_hooks_and_subscriptions(
        db, receiver):
    from queuejob.core.channels import ChannelTree
    from tests.helpers import claim
    operations.add_subscription(db, webhook=receiver.url)
    job_uuid = delay(db, hooked, max_retries=1, priority=0)
    # a worker that claimed it, then died
    db.run(lambda conn: db.store.register_worker(conn, "ghost", "nowhere", 1, "root:1"))
    [claimed] = db.run(lambda conn: claim(db, conn, "ghost", ChannelTree.from_string("root:1"),
                                          {}, 1))
    assert claimed["uuid"] == job_uuid
    sql(db, "UPDATE queue_worker SET state = 'dead' WHERE id = 'ghost'")
    with ThreadWorker(db, modules=MODULES, poll_interval=0.05, heartbeat_interval=0.1,
                      dead_after=0.5, rescue_interval=0.1):
        wait_until(lambda: load(db, job_uuid).state == "failed", message="rescue failed it")
    assert calls(job_uuid) == [("on_failure", "failed")]
    [message] = receiver.messages()
    assert (message["uuid"], message["exc_name"]) == (job_uuid, "queuejob.WorkerDied")


def test_a_failing_webhook_is_logged_and_the_other_subscriptions_still_hear(db, receiver,
                                                                           caplog):
    broken = operations.add_subscription(db, webhook=receiver.url + "/broken")
    closed = operations.add_subscription(db, webhook="http://127.0.0.1:1/nobody-listens")
    operations.add_subscription(db, webhook=receiver.url + "/ok")
    failed = delay(db, jobs.fail)
    with caplog.at_level(logging.ERROR, logger="queuejob.hooks"):
        burst(db)
    assert [m["uuid"] for m in receiver.messages("/ok")] == [failed]
    assert [m["uuid"] for m in receiver.messages("/broken")] == [failed]
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert f"subscription {broken} " in logged and f"subscription {closed} " in logged


def test_subscriptions_on_the_command_line(db, db_url, receiver, invoke):
    assert invoke("subscriptions", "--db", db_url).stdout.strip() == "no subscriptions"
    added = invoke("subscriptions", "add", "--db", db_url, "--channel", "root.export",
                   "--webhook", receiver.url + "/cli")
    assert added.stdout.strip() == "subscription 1 added"
    invoke("subscriptions", "add", "--db", db_url, "--function", "tests.jobs.fail",
           "--job", f"{HERE}.handle_failure", "--module", HERE)
    listed = json.loads(invoke("subscriptions", "--db", db_url, "--json").stdout)
    assert [(s["id"], s["channel"], s["func_name"], s["target_kind"], s["target"],
             s["problem"]) for s in listed] == [
        (1, "root.export", None, "webhook", receiver.url + "/cli", None),
        (2, None, "tests.jobs.fail", "job", f"{HERE}.handle_failure", None)]
    table = invoke("subscriptions", "--db", db_url).stdout
    assert receiver.url + "/cli" in table and f"{HERE}.handle_failure" in table
    delay(db, export_fails)
    burst(db)
    assert len(receiver.messages("/cli")) == 1
    assert invoke("subscriptions", "remove", "--db", db_url, "1").stdout.strip() \
        == "subscription 1 removed"
    assert [s["id"] for s in operations.subscriptions(db)] == [2]
    delay(db, export_fails)
    burst(db)
    assert len(receiver.messages("/cli")) == 1  # removed: not told again


BAD_ADDS = [
    (["--webhook", "ftp://example.com/x"], "bad webhook URL"),
    (["--webhook", "file:///etc/passwd"], "bad webhook URL"),
    (["--webhook", "http://"], "bad webhook URL"),
    (["--webhook", "http://example.com:99999/"], "bad webhook URL"),
    (["--webhook", "http://exa mple.com/"], "bad webhook URL"),
    (["--webhook", "http://[::1/"], "bad webhook URL"),
    (["--webhook", "not a url"], "bad webhook URL"),
    (["--webhook", "http://x/" + "a" * 3000], "bad webhook URL"),
    (["--webhook", "http://127.0.0.1/caf\u00e9"], "ASCII only"),  # never sendable as is
    (["--webhook", "http://b\u00fccher.example/"], "ASCII only"),
    (["--webhook", "http://user:secret@example.com/"], "credentials"),
    (["--webhook", "http://example.com:0/"], "port 0"),
    (["--webhook", "http://example.com/", "--job", f"{HERE}.handle_failure"], "one of"),
    ([], "one of"),
    (["--job", "tests.nowhere.nothing"], "not a registered job function"),
    (["--job", "has space"], "bad job function name"),
    (["--webhook", "http://example.com/", "--function", "tests.nowhere.nothing"],
     "unknown job function"),
    (["--webhook", "http://example.com/", "--channel", "root..x"], "bad channel name"),
    (["--webhook", "http://example.com/", "--channel", "root.x'; DROP TABLE queue_job"],
     "bad channel name"),
]


def test_bad_subscriptions_are_refused_in_one_line(db, db_url, invoke):
    for args, says in BAD_ADDS:
        result = invoke("subscriptions", "add", "--db", db_url, "--module", HERE, *args,
                        exit_code=1)
        assert says in refused(result), args
    assert operations.subscriptions(db) == []


def test_removing_a_subscription_that_is_not_there_is_refused(db, db_url, invoke):
    assert "no subscription 5" in refused(
        invoke("subscriptions", "remove", "--db", db_url, "5", exit_code=1))
    invoke("subscriptions", "remove", "--db", db_url, "0", exit_code=2)  # click's range
    with pytest.raises(ConfigurationError, match="no subscription"):
        operations.remove_subscription(db, 5)
    with pytest.raises(ConfigurationError, match="bad subscription id"):
        operations.remove_subscription(db, "1")  # type: ignore[arg-type]


def test_a_bad_stored_subscription_costs_only_that_row(db, db_url, receiver, invoke, caplog):
    now = "0" if db.dialect == "sqlite" else "now()"
    garbage = [  # (channel, func_name, target_kind, target)
        ("Not A Channel!", None, "webhook", receiver.url + "/bad-channel"),
        (None, None, "webhook", "gopher://127.0.0.1/x"),
        (None, None, "webhook", "not a url at all"),
        (None, "has space", "webhook", receiver.url + "/bad-function"),
        (None, None, "job", "tests.nowhere.nothing"),  # not registered in the worker
        (None, None, "job", "bad name\n"),
    ]
    if db.dialect == "sqlite":  # what the PostgreSQL schema's constraints refuse
        garbage += [(None, None, "carrier-pigeon", receiver.url + "/pigeon"),
                    (7, None, "webhook", receiver.url + "/int-channel"),
                    (None, None, "webhook", b"http://127.0.0.1/blob")]
    for values in garbage:
        sql(db, "INSERT INTO queue_subscription (channel, func_name, target_kind, target, "
                f"date_created) VALUES (?, ?, ?, ?, {now})", values)
    good = operations.add_subscription(db, webhook=receiver.url + "/good")
    failed = delay(db, jobs.fail)
    with caplog.at_level(logging.ERROR):
        burst(db)
    assert [m["uuid"] for m in receiver.messages("/good")] == [failed]
    assert [entry["path"] for entry in receiver.received] == ["/good"]
    # each bad row is said in the log; the job target the worker cannot find too
    logged = [record.getMessage() for record in caplog.records]
    skipped = [message for message in logged
               if message.startswith("skipping the stored subscription configuration")]
    assert len(skipped) == len(garbage) - 1
    assert any("tests.nowhere.nothing" in message and failed in message
               for message in logged)
    listed = operations.subscriptions(db)
    assert len(listed) == len(garbage) + 1
    problems = {entry["id"]: entry["problem"] for entry in listed}
    assert problems.pop(good) is None
    # each bad row says why, except the job target only a worker can find missing
    unresolved = [entry for entry in listed if entry["target"] == "tests.nowhere.nothing"]
    assert all(problem for entry_id, problem in problems.items()
               if entry_id not in {entry["id"] for entry in unresolved})
    # the command line lists them all, the bad ones with their problem
    table = invoke("subscriptions", "--db", db_url).stdout
    assert receiver.url + "/good" in table and "not a url at all" in table
    as_json = json.loads(invoke("subscriptions", "--db", db_url, "--json").stdout)
    assert len(as_json) == len(listed)
    # the bad rows can be removed like any other
    for entry in listed:
        if entry["id"] != good:
            operations.remove_subscription(db, entry["id"])
    assert [entry["id"] for entry in operations.subscriptions(db)] == [good]


# -- generated input -----------------------------------------------------------------------
ODD = st.sampled_from(["", " ", "\x00", "\n", "\t", "\u2028", "\x85", "\ud800", "\udcff",
                       "\u202e", "é", "🙂", "%00", "..", ".", ":", "@", "#", "?", "[", "]",
                       "\\", "'", '"', ";", "--"])
HOSTS = st.one_of(
    st.from_regex(r"[a-z0-9.\-]{0,20}", fullmatch=True),
    st.sampled_from(["127.0.0.1", "[::1]", "[::1", "bücher.example", "user:pw@host",
                     "host:99999", "host:abc", "host:-1", "host:0", "h" * 300]),
    st.text(max_size=12))
URL_TEXT = st.text(alphabet="abcXYZ019-._~/%?=&#+:@!$'()*,;éü", max_size=30)
PLAUSIBLE_URLS = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.one_of(st.from_regex(r"[a-z0-9-]{1,10}(\.[a-z]{2,5}){0,2}", fullmatch=True), HOSTS),
    st.sampled_from(["", ":80", ":8080", ":0", ":65535", ":65536", ":x", ":"]),
    st.one_of(st.just(""), URL_TEXT.map(lambda t: "/" + t), URL_TEXT.map(lambda t: "/" + t),
              st.text(max_size=20).map(lambda t: "/" + t),
              st.lists(ODD, max_size=3).map(lambda parts: "/" + "".join(parts))))
URLS = st.one_of(
    PLAUSIBLE_URLS, PLAUSIBLE_URLS,
    st.builds(lambda scheme, host, path: f"{scheme}://{host}{path}",
              st.sampled_from(["ftp", "file", "javascript", "", "http:", "data"]), HOSTS,
              st.text(max_size=10)),
    st.text(max_size=40),
    st.builds(lambda size: "http://h/" + "x" * size, st.integers(2030, 2060)),
    st.none(), st.integers(), st.binary(max_size=10), st.lists(st.text(max_size=3)))
CHANNELS = st.one_of(
    st.none(), st.just(""),
    st.from_regex(r"(root\.)?[A-Za-z0-9_-]{1,8}(\.[A-Za-z0-9_-]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["root", " export ", "root.", "Root.x", "root..x", "root.x.", "a" * 600]))
NAMES = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_.]{0,30}", fullmatch=True), st.text(max_size=30),
    st.builds(lambda a, b: a + b, st.text(max_size=10), ODD),
    st.builds(lambda size: "m." + "n" * size, st.integers(505, 520)),
    st.none(), st.integers(), st.binary(max_size=5))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(url=URLS, channel=st.one_of(CHANNELS, CHANNELS, NAMES))
def test_generated_webhook_subscriptions_are_stored_as_given_or_refused(db, receiver, url,
                                                                        channel):
    before = operations.subscriptions(db)
    try:
        subscription = operations.add_subscription(db, channel=channel, webhook=url)
    except ConfigurationError:
        event("refused")
        assert operations.subscriptions(db) == before
        return
    event("accepted")
    assert isinstance(url, str)
    expected_channel = None if channel in (None, "") else normalize_name(channel)
    [entry] = [e for e in operations.subscriptions(db) if e["id"] == subscription]
    assert (entry["target_kind"], entry["target"], entry["channel"], entry["problem"]) == (
        "webhook", url, expected_channel, None)
    # what a worker reads back is the same subscription
    [row] = [r for r in db.read(db.store.subscriptions) if r["id"] == subscription]
    assert rules.from_row(row) == rules.Subscription(subscription, expected_channel, None,
                                                     "webhook", url)
    operations.remove_subscription(db, subscription)
    # an accepted URL can be sent to: its path and query, POSTed to the test's server
    parts = urllib.parse.urlsplit(url)
    assert parts.port != 0 and "@" not in parts.netloc
    count = len(receiver.received)
    post_json(urllib.parse.urlunsplit(("http", receiver.url.split("//", 1)[1],
                                       parts.path[:1900], parts.query, "")), {"probe": url})
    assert len(receiver.received) == count + 1
    assert receiver.received[-1]["body"] == {"probe": url}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(func_name=NAMES, target=NAMES)
def test_generated_function_names_are_stored_as_given_or_refused(db, func_name, target):
    """The names' rules (``check_func_name``) admit only what both databases store and
    read back as the same subscription."""
    checked = {}
    for key, value in (("func_name", func_name), ("target", target)):
        try:
            checked[key] = rules.check_func_name(value)
        except ConfigurationError:
            event(f"{key} refused")
            return
    if checked["target"] is None:
        with pytest.raises(ConfigurationError):
            rules.check_target(rules.JOB, target)
        return
    event("accepted")
    subscription = db.run(lambda conn: db.store.add_subscription(
        conn, None, checked["func_name"], rules.JOB, checked["target"]))
    [entry] = [e for e in operations.subscriptions(db) if e["id"] == subscription]
    assert (entry["func_name"], entry["target"], entry["problem"]) == (
        checked["func_name"], checked["target"], None)
    operations.remove_subscription(db, subscription)
    # through the operations, a function not registered here is refused, never stored
    if registry.job_function(checked["target"]) is None:
        with pytest.raises(ConfigurationError):
            operations.add_subscription(db, job=target)
    assert operations.subscriptions(db) == []
