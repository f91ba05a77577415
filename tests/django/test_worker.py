"""Workers running Django tasks: results, retries by the pattern stored for a task,
failures and their errors, priorities, only registered tasks, and the commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import types

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

import queuejob
from queuejob.contrib.django import QueueJobBackend
from queuejob.contrib.django._compat import (
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_finished,
    task_started,
)
from queuejob.contrib.django.jobs import CONTEXT_KEY
from queuejob.core.errors import FailedJobError
from tests.django.conftest import TASKS_MODULE
from tests.django_project.shop import tasks
from tests.django_project.shop.models import Event, Order
from tests.helpers import ROOT, ThreadWorker

MANAGE = ROOT / "tests" / "django_project" / "manage.py"


@pytest.fixture
def worker(queue):
    # polls every 0.1 s: retried jobs come back when their eta is due, without a wake-up
    with ThreadWorker(queue, modules=[TASKS_MODULE], channels="root:2",
                      poll_interval=0.1) as running:
        yield running


def finish(queue: queuejob.Database, task, task_id: str):
    """Wait for the job's outcome, then read the result through Django's API."""
    queue.wait(task_id, timeout=30)
    return task.get_result(task_id)


def events() -> list[str]:
    return list(Event.objects.order_by("id").values_list("name", flat=True))


def test_a_committed_order_is_confirmed_by_the_worker(queue, client, worker):
    response = client.post("/orders/", {"customer": "dan", "total": 40},
                           content_type="application/json")
    body = response.json()
    result = finish(queue, tasks.confirm_order, body["task_id"])
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"order": body["order"], "status": "confirmed"}
    assert result.errors == []
    assert result.attempts == 1 and result.worker_ids == [worker.worker.id]
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert Order.objects.get(pk=body["order"]).confirmed
    view = client.get(f"/tasks/{body['task_id']}/").json()
    assert view["status"] == "SUCCESSFUL"
    assert view["return_value"] == {"order": body["order"], "status": "confirmed"}
    # refresh() reads the same through the backend
    stale = tasks.confirm_order.using(priority=1)  # another Task object, same function
    assert stale.get_result(body["task_id"]).return_value == result.return_value


def test_return_values_come_back_as_json(queue, worker):
    report = tasks.order_report.enqueue(7, fmt="csv")
    nothing = tasks.nothing_to_do.enqueue()
    ran = finish(queue, tasks.order_report, report.id)
    assert ran.return_value == "report of order 7 (csv)"
    report.refresh()
    assert report.status == TaskResultStatus.SUCCESSFUL
    assert report.return_value == "report of order 7 (csv)"
    assert finish(queue, tasks.nothing_to_do, nothing.id).return_value is None


def test_a_task_is_retried_by_the_pattern_stored_for_its_function(queue, worker):
    # the pattern comes from the command line, on the task's module path; without
    # it a retry waits queuejob's RETRY_INTERVAL (10 minutes) and this test times out
    call_command("queuejob", "functions", "set", "tests.django_project.shop.tasks.flaky",
                 "--retry-pattern", '{"1": 0.1, "2": 0.2}')
    [function] = [row for row in queuejob.operations.functions(queue)
                  if row["name"] == "tests.django_project.shop.tasks.flaky"]
    assert function["registered"] and function["retry_pattern"] == {1: 0.1, 2: 0.2}
    result = tasks.flaky.enqueue(succeed_at=3)
    done = finish(queue, tasks.flaky, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == {"attempts": 3, "id": result.id}
    assert done.attempts == 3
    assert events() == ["flaky attempt 1", "flaky attempt 2", "flaky attempt 3"]


def test_a_task_retried_past_max_retries_fails(queue, worker):
    finished = []

    def receiver(sender, task_result, **kwargs):
        finished.append((task_result.id, task_result.status))

    task_finished.connect(receiver, weak=False)
    try:
        result = tasks.always_busy.enqueue()
        failed = finish(queue, tasks.always_busy, result.id)
    finally:
        task_finished.disconnect(receiver)
    assert failed.status == TaskResultStatus.FAILED
    assert events() == ["busy"] * 3  # OPTIONS max_retries
    [error] = failed.errors
    assert error.exception_class is FailedJobError
    assert "Max. retries (3) reached: the warehouse is busy" in error.traceback
    assert finished == [(result.id, TaskResultStatus.FAILED)]


def test_exceptions_fail_the_task_with_their_class_and_traceback(queue, client, worker):
    started, finished = [], []
    task_started.connect(lambda sender, task_result, **kw: started.append(task_result.id),
                         weak=False, dispatch_uid="started")
    task_finished.connect(lambda sender, task_result, **kw: finished.append(
        (task_result.id, task_result.status, [e.exception_class_path
                                              for e in task_result.errors])),
        weak=False, dispatch_uid="finished")
    try:
        boom = tasks.boom.enqueue("widget")
        not_json = tasks.not_json.enqueue()
        failed = finish(queue, tasks.boom, boom.id)
        unstorable = finish(queue, tasks.not_json, not_json.id)
    finally:
        task_started.disconnect(dispatch_uid="started")
        task_finished.disconnect(dispatch_uid="finished")
    assert failed.status == TaskResultStatus.FAILED
    [error] = failed.errors
    assert error.exception_class is tasks.OutOfStock
    assert error.exception_class_path == "tests.django_project.shop.tasks.OutOfStock"
    assert "no widget left\nnot even one" in error.traceback
    assert 'raise OutOfStock(f"no {item} left\\nnot even one")' in error.traceback
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value
    assert failed.finished_at is not None and failed.attempts == 1
    # a return value JSON cannot carry fails the task
    assert unstorable.status == TaskResultStatus.FAILED
    assert unstorable.errors[0].exception_class is TypeError
    view = client.get(f"/tasks/{boom.id}/").json()
    assert view["errors"][0]["exception"] == "tests.django_project.shop.tasks.OutOfStock"
    assert sorted(started) == sorted([boom.id, not_json.id])
    assert sorted(finished) == sorted([
        (boom.id, TaskResultStatus.FAILED, ["tests.django_project.shop.tasks.OutOfStock"]),
        (not_json.id, TaskResultStatus.FAILED, ["builtins.TypeError"])])


@contextlib.contextmanager
def task_signals():
    """What task_started and task_finished were sent with: (signal, id, status, the
    errors' class paths), in the order sent."""
    sent: list[tuple[str, str, str, list[str]]] = []

    def receiver(signal, sender, task_result, **kwargs):
        sent.append(("finished" if signal is task_finished else "started", task_result.id,
                     task_result.status, [e.exception_class_path for e in task_result.errors]))

    task_started.connect(receiver, weak=False, dispatch_uid="test-started")
    task_finished.connect(receiver, weak=False, dispatch_uid="test-finished")
    try:
        yield sent
    finally:
        task_started.disconnect(dispatch_uid="test-started")
        task_finished.disconnect(dispatch_uid="test-finished")


def test_system_exit_exit_and_keyboard_interrupt_fail_the_task(queue, worker):
    with task_signals() as sent:
        failing = {tasks.exits.enqueue(3).id: (tasks.exits, "builtins.SystemExit"),
                   tasks.quits.enqueue().id: (tasks.quits, "builtins.SystemExit"),
                   tasks.interrupted.enqueue().id: (tasks.interrupted,
                                                    "builtins.KeyboardInterrupt")}
        failed = {task_id: finish(queue, task, task_id)
                  for task_id, (task, _) in failing.items()}
        # the worker is still there and takes the next task
        after = finish(queue, tasks.record, tasks.record.enqueue("after").id)
    assert after.status == TaskResultStatus.SUCCESSFUL
    assert worker.thread.is_alive() and worker.error is None
    for task_id, (_, path) in failing.items():
        result = failed[task_id]
        assert result.status == TaskResultStatus.FAILED
        [error] = result.errors
        assert error.exception_class_path == path
        assert "Traceback (most recent call last)" in error.traceback
        assert result.finished_at is not None and result.attempts == 1
        # started once, finished once, FAILED with the error, as the reference backends
        assert [item for item in sent if item[1] == task_id] == [
            ("started", task_id, TaskResultStatus.RUNNING, []),
            ("finished", task_id, TaskResultStatus.FAILED, [path])]
    assert [item[0] for item in sent if item[1] == after.id] == ["started", "finished"]


def test_outside_a_worker_a_keyboard_interrupt_goes_through_without_task_finished(queue):
    from queuejob.testing import trap_jobs

    # run in the caller's thread (trap_jobs, no-delay), as ImmediateBackend runs tasks:
    # SystemExit fails the task (task_finished sent) and goes on to the caller; Ctrl-C
    # goes through at once
    with task_signals() as sent:
        with trap_jobs() as trap:
            exits = tasks.exits.enqueue(2)
        with pytest.raises(SystemExit):
            trap.perform_enqueued_jobs()
        with trap_jobs() as trap:
            interrupted = tasks.interrupted.enqueue()
        with pytest.raises(KeyboardInterrupt):
            trap.perform_enqueued_jobs()
    assert sent == [
        ("started", exits.id, TaskResultStatus.RUNNING, []),
        ("finished", exits.id, TaskResultStatus.FAILED, ["builtins.SystemExit"]),
        ("started", interrupted.id, TaskResultStatus.RUNNING, [])]


def test_higher_django_priority_runs_first_and_run_after_waits(queue):
    now = timezone.now()
    tasks.record.using(priority=-10).enqueue("low")
    tasks.record.enqueue("default")
    tasks.record.using(priority=100).enqueue("top")
    tasks.record.using(priority=10, queue_name="reports").enqueue("high")
    due = tasks.record.using(run_after=now - dt.timedelta(seconds=1)).enqueue("due")
    later = tasks.record.using(run_after=now + dt.timedelta(hours=1)).enqueue("later")
    queuejob.Worker(queue, channels="root:1", modules=[TASKS_MODULE]).run(burst=True)
    # "due" was due a second before "default" was enqueued: it goes first
    assert events() == ["top", "high", "due", "default", "low"]
    assert tasks.record.get_result(due.id).status == TaskResultStatus.SUCCESSFUL
    assert tasks.record.get_result(later.id).status == TaskResultStatus.READY


# the claim of a queue without channel rules (one statement in start order), and the
# claim channel by channel (candidates of each channel, then the selection rules)
@pytest.mark.parametrize("channels", ["root:1", "root:1,root.reports:1"])
def test_an_earlier_run_after_runs_first_among_equal_priorities(queue, channels):
    now = timezone.now()
    ago = {seconds: now - dt.timedelta(seconds=seconds) for seconds in (10, 20, 30, 40)}
    # enqueued in the opposite order of their run_after, in two queues (two channels)
    results = [
        tasks.record.using(run_after=ago[10]).enqueue("due 10 s ago"),
        tasks.record.using(run_after=ago[20], queue_name="reports").enqueue("due 20 s ago"),
        tasks.record.enqueue("no run_after"),
        tasks.record.using(run_after=ago[30]).enqueue("due 30 s ago"),
        tasks.record.using(run_after=ago[40], priority=-1).enqueue("lower priority"),
    ]
    with transaction.atomic():  # one transaction: on PostgreSQL, one now() for all
        results.append(tasks.record.enqueue("no run_after, later"))
        results.append(tasks.record.using(run_after=ago[20] + dt.timedelta(microseconds=1)
                                          ).enqueue("due 20 s ago, 1 us later"))
    queuejob.Worker(queue, channels=channels, modules=[TASKS_MODULE]).run(burst=True)
    assert events() == ["due 30 s ago", "due 20 s ago", "due 20 s ago, 1 us later",
                        "due 10 s ago", "no run_after", "no run_after, later",
                        "lower priority"]
    for result in results:
        done = tasks.record.get_result(result.id)
        assert done.status == TaskResultStatus.SUCCESSFUL
        # its place in line changed nothing of what Django reads
        assert done.enqueued_at == result.enqueued_at
        assert done.task.run_after == result.task.run_after


def test_only_tasks_of_the_worker_modules_run_and_stored_names_are_never_imported(queue):
    from tests.django_project.shop import other_tasks  # registered, not a worker module
    elsewhere = other_tasks.elsewhere.enqueue()
    evil = "tests.django_project.shop.unimported.steal"
    forged = types.SimpleNamespace(func_name=evil, default_channel="root", timeout=None)
    with queue.session(context={CONTEXT_KEY: {"backend": "default"}}) as session:
        forged_id = queuejob.DatabaseJobStorage(session).enqueue(forged)
    queuejob.Worker(queue, modules=[TASKS_MODULE]).run(burst=True)
    for job_id in (elsewhere.id, forged_id):
        row = queue.read(lambda conn, job_id=job_id: queue.store.load(conn, job_id))
        assert row["state"] == "failed"
        assert "not registered as a job in this worker" in row["exc_info"]
    failed = other_tasks.elsewhere.get_result(elsewhere.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class is FailedJobError
    with pytest.raises(TaskResultDoesNotExist, match="not a task"):
        tasks.record.get_backend().get_result(forged_id)
    assert "tests.django_project.shop.unimported" not in sys.modules


def command_env(db_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["DJANGO_SETTINGS_MODULE"] = "tests.django_project.settings"
    env["SHOP_DATABASE_URL"] = db_url
    return env


def test_the_management_command_runs_the_tasks(queue, django_db):
    confirm = tasks.confirm_order.enqueue(Order.objects.create(customer="eve", total=5).pk)
    report = tasks.order_report.enqueue(3)
    process = subprocess.run(
        [sys.executable, str(MANAGE), "queuejob_worker", "--burst", "--channels", "root:2"],
        env=command_env(django_db), cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert process.returncode == 0, process.stderr
    assert "worker" in process.stderr and "started" in process.stderr  # logs on stderr
    assert tasks.confirm_order.get_result(confirm.id).status == TaskResultStatus.SUCCESSFUL
    assert tasks.order_report.get_result(report.id).return_value == "report of order 3 (text)"


def test_queue_names_become_the_worker_channels():
    from queuejob.contrib.django._compat import task_backends
    from queuejob.contrib.django.backend import worker_channels
    from queuejob.core.errors import ConfigurationError

    backend = task_backends["default"]  # QUEUES default, reports, mail (-> root.outgoing.mail)
    assert worker_channels(backend, None) == ""  # no rules: each worker runs 4 at once
    assert worker_channels(backend, None, ["mail:2", "reports:1:sequential"]) == \
        "root.outgoing.mail:2,root.reports:1:sequential"
    # the default queue is root: its capacity holds for all workers
    assert worker_channels(backend, None, ["default:8,mail:1:throttle=0.5"]) == \
        "root:8,root.outgoing.mail:1:throttle=0.5"
    assert worker_channels(backend, "root:2,root.x:1", ["reports:1"]) == \
        "root:2,root.x:1,root.reports:1"
    # a bare queue name is checked and sets nothing: it runs within the worker's capacity
    assert worker_channels(backend, "root:3", ["mail", "default", " reports "]) == "root:3"
    for channels, queues, message in [
        (None, ["emails:2"], "not one of"),
        ("root:2", ["default:4"], "--channels configures"),
        ("root:2,root.outgoing.mail:1", ["mail:3"], "--channels configures"),
        (None, ["mail:1", "mail:2"], "configures already"),
        (None, ["mail:zero"], "bad queue entry 'mail:zero'"),
        ("root:x", [], "capacity"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            worker_channels(backend, channels, queues)
    other = QueueJobBackend("other", {"QUEUES": [], "OPTIONS": {}})  # any queue name
    assert worker_channels(other, None, ["anything:2"]) == "root.anything:2"
    with pytest.raises(ConfigurationError, match="not a queuejob channel name"):
        worker_channels(other, None, ["bad name:1"])


def test_the_worker_command_refuses_an_unknown_queue():
    with pytest.raises(CommandError, match="queue 'emails' is not one of"):
        call_command("queuejob_worker", "--burst", "--queue-name", "emails")


def test_the_worker_command_runs_queues_by_name_and_survives_exit(queue, django_db):
    mail = tasks.record.using(queue_name="mail").enqueue("mail")
    report = tasks.order_report.enqueue(9)
    default = tasks.record.enqueue("default")
    quits = tasks.quits.enqueue()
    after = tasks.record.using(priority=-50).enqueue("after quits")  # claimed last
    process = subprocess.run(
        [sys.executable, str(MANAGE), "queuejob_worker", "--burst",
         "--queue-name", "mail:1", "--queue-name", "reports:1,default:2"],
        env=command_env(django_db), cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert process.returncode == 0, process.stderr
    [row] = queuejob.operations.workers(queue)
    assert row["channels"] == "root:2,root.outgoing.mail:1,root.reports:1"
    for task, result in [(tasks.record, mail), (tasks.order_report, report),
                         (tasks.record, default), (tasks.record, after)]:
        assert task.get_result(result.id).status == TaskResultStatus.SUCCESSFUL
    failed = tasks.quits.get_result(quits.id)
    assert failed.status == TaskResultStatus.FAILED
    assert failed.errors[0].exception_class_path == "builtins.SystemExit"


def test_queuejob_worker_pointed_at_the_django_settings(queue, django_db):
    result = tasks.record.enqueue("by the cli")
    process = subprocess.run(
        [sys.executable, "-m", "queuejob", "worker", "--db", queue.url, "--burst",
         "--module", "queuejob.contrib.django.bootstrap", "--module", TASKS_MODULE],
        env=command_env(django_db), cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False)
    assert process.returncode == 0, process.stderr
    assert tasks.record.get_result(result.id).return_value == "by the cli"
    assert events() == ["by the cli"]


def test_the_queuejob_command_of_manage_py(queue, capsys):
    tasks.record.enqueue("listed")
    call_command("queuejob", "jobs", "--json")
    assert "tests.django_project.shop.tasks.record" in capsys.readouterr().out
    call_command("queuejob", "functions")
    assert "tests.django_project.shop.tasks.flaky" in capsys.readouterr().out


def test_the_queuejob_command_drops_djangos_own_options():
    from queuejob.contrib.django.management.commands.queuejob import _without_django_options
    assert _without_django_options(["--settings", "mysite.settings", "jobs",
                                    "--pythonpath=/srv", "--json"]) == ["jobs", "--json"]
