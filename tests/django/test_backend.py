"""The Django task backend: enqueue in the project's transaction, the mapping of a task's
priority, queue and run_after, results read back through Django's API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.utils import timezone

import queuejob
from queuejob.contrib.django import QueueJobBackend, to_django_priority, to_queuejob_priority
from queuejob.contrib.django._compat import (
    InvalidTaskError,
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    task_backends,
    task_enqueued,
)
from queuejob.contrib.django.backend import url_for
from queuejob.contrib.django.jobs import CONTEXT_KEY, exception_class_path
from queuejob.store.mapping import job_from_row
from tests.django_project.shop import tasks
from tests.django_project.shop.models import Order

try:  # what refresh() copies from get_result()
    from django.tasks.base import TASK_REFRESH_ATTRS
except ImportError:
    from django_tasks.base import TASK_REFRESH_ATTRS

FLAKY = "tests.django_project.shop.tasks.flaky"


def stored(queue: queuejob.Database, job_uuid: str):
    """The job's row read on queuejob's own connection (what workers see), or None."""
    return queue.read(lambda conn: queue.store.load(conn, job_uuid))


def all_jobs(queue: queuejob.Database) -> int:
    return sum(sum(by_state.values()) for by_state in queuejob.operations.stats(queue).values())


# -- transactions -----------------------------------------------------------------------
def test_a_view_whose_transaction_rolls_back_leaves_no_job(queue, client):
    response = client.post("/orders/", {"customer": "ann", "total": 30, "refuse": True},
                           content_type="application/json")
    assert response.status_code == 402
    task_id = response.json()["task_id"]
    assert task_id
    assert Order.objects.count() == 0
    assert all_jobs(queue) == 0
    assert stored(queue, task_id) is None
    with pytest.raises(TaskResultDoesNotExist):
        tasks.confirm_order.get_result(task_id)
    assert client.get(f"/tasks/{task_id}/").status_code == 404


def test_a_view_whose_transaction_commits_stores_its_job_with_its_data(queue, client):
    response = client.post("/orders/", {"customer": "bob", "total": 12},
                           content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    row = stored(queue, body["task_id"])
    assert row["state"] == "pending"
    assert row["func_name"] == "tests.django_project.shop.tasks.confirm_order"
    assert Order.objects.get(pk=body["order"]).customer == "bob"
    result = tasks.confirm_order.get_result(body["task_id"])
    assert result.status == TaskResultStatus.READY
    assert result.args == [body["order"]] and result.kwargs == {}
    assert result.task.func is tasks.confirm_order.func
    assert not result.is_finished and result.attempts == 0
    with pytest.raises(ValueError, match="not finished"):
        _ = result.return_value
    assert client.get(f"/tasks/{body['task_id']}/").json()["status"] == "READY"


def test_the_job_is_written_in_the_current_transaction(queue):
    with transaction.atomic():
        Order.objects.create(customer="cid", total=1)
        result = tasks.record.enqueue("inside")
        # visible in the transaction (get_result reads on Django's connection) ...
        assert tasks.record.get_result(result.id).status == TaskResultStatus.READY
        # ... and nowhere else until it commits
        assert stored(queue, result.id) is None
    assert stored(queue, result.id)["state"] == "pending"

    with pytest.raises(RuntimeError), transaction.atomic():
        dropped = tasks.record.enqueue("dropped")
        raise RuntimeError("roll back")
    assert stored(queue, dropped.id) is None
    with pytest.raises(TaskResultDoesNotExist):
        tasks.record.get_result(dropped.id)
    assert all_jobs(queue) == 1


def test_outside_a_transaction_the_job_is_committed_at_once(queue, client):
    response = client.post("/orders/1/report/?priority=5")
    assert response.status_code == 202
    row = stored(queue, response.json()["task_id"])
    assert row["state"] == "pending"
    assert row["channel"] == "root.reports"
    assert row["priority"] == 5
    assert not connections["default"].in_atomic_block


def test_a_savepoint_rolled_back_drops_the_jobs_enqueued_in_it(queue):
    with transaction.atomic():
        kept = tasks.record.enqueue("kept")
        try:
            with transaction.atomic():
                dropped = tasks.record.enqueue("dropped")
                raise RuntimeError("inner")
        except RuntimeError:
            pass
    assert stored(queue, kept.id) is not None
    assert stored(queue, dropped.id) is None


def test_arguments_must_be_json_and_nothing_is_stored_otherwise(queue):
    with pytest.raises(TypeError):
        tasks.record.enqueue(dt.datetime.now(dt.UTC))
    assert all_jobs(queue) == 0
    result = tasks.echo.enqueue((1, 2), b"bytes", session="s", model_name="m", priority=3,
                                eta="tomorrow", channel="c", max_retries=7)
    # Django normalizes arguments to JSON; queuejob's reserved keywords are the task's own
    assert result.args == [[1, 2], "bytes"]
    assert result.kwargs == {"session": "s", "model_name": "m", "priority": 3,
                             "eta": "tomorrow", "channel": "c", "max_retries": 7}
    row = stored(queue, result.id)
    assert row["priority"] == 10 and row["channel"] == "root" and row["max_retries"] == 3
    again = tasks.echo.get_result(result.id)
    assert again.args == result.args and again.kwargs == result.kwargs


def test_task_enqueued_is_sent_with_the_stored_result(queue):
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((sender, task_result.id, task_result.status))

    task_enqueued.connect(receiver, weak=False)
    try:
        result = tasks.record.enqueue("signal")
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [(QueueJobBackend, result.id, TaskResultStatus.READY)]


def test_enqueue_and_get_result_from_async_code(queue):
    async def scenario():
        result = await tasks.record.aenqueue("async")
        again = await tasks.record.aget_result(result.id)
        await sync_to_async(connections.close_all)()
        return result, again

    result, again = asyncio.run(scenario())
    assert again.id == result.id and again.status == TaskResultStatus.READY
    assert stored(queue, result.id)["state"] == "pending"


# -- the result enqueue returns ---------------------------------------------------------
def assert_same_result(one, other) -> None:
    """Field by field (a TaskResult is a dataclass: == compares them all, in order, and
    would not say which one differs), then as a whole."""
    for field in dataclasses.fields(one):
        assert getattr(one, field.name) == getattr(other, field.name), field.name
    assert one == other


def creation_time(queue: queuejob.Database, job_uuid: str) -> dt.datetime:
    """The job's creation time as stored, read on queuejob's own connection."""
    row = stored(queue, job_uuid)
    meta = job_from_row(row, decode=False).context[CONTEXT_KEY]
    return meta.get("enqueued_at") or row["date_created"]


@pytest.mark.parametrize("in_transaction", [False, True])
def test_enqueue_returns_the_result_that_get_result_reads(queue, in_transaction):
    soon = timezone.now().replace(microsecond=123456) + dt.timedelta(hours=1)
    sent = []

    def receiver(sender, task_result, **kwargs):
        sent.append(task_result)

    task_enqueued.connect(receiver, weak=False)
    try:
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            results = [
                tasks.record.enqueue("plain"),
                tasks.echo.enqueue([1, [2.5, None]], {"k": True}, model_name="m"),
                tasks.order_report.using(priority=-7, queue_name="mail").enqueue(3, fmt="csv"),
                tasks.record.using(run_after=soon, priority=42).enqueue("deferred"),
                tasks.record.using(run_after=timezone.now() - dt.timedelta(minutes=5)
                                   ).enqueue("overdue"),
            ]
    finally:
        task_enqueued.disconnect(receiver)
    assert [result.id for result in sent] == [result.id for result in results]
    for result, signalled in zip(results, sent, strict=True):
        assert isinstance(result.id, str)
        again = result.task.get_result(result.id)
        assert_same_result(result, again)
        assert_same_result(signalled, again)
        # the job's creation time as the database stored it, not a time of this process
        assert result.enqueued_at == creation_time(queue, result.id)
        assert result.enqueued_at.tzinfo is not None  # USE_TZ
        before = {name: getattr(result, name) for name in TASK_REFRESH_ATTRS}
        result.refresh()
        assert {name: getattr(result, name) for name in TASK_REFRESH_ATTRS} == before
        assert_same_result(result, again)
    deferred = results[3]
    assert deferred.task == tasks.record.using(run_after=soon, priority=42)
    assert deferred.enqueued_at < soon
    # its place in line is its run_after (test_worker: an earlier run_after runs first)
    row = stored(queue, deferred.id)
    assert row["date_created"] == row["eta"] == soon


def test_enqueue_and_get_result_agree_with_naive_times(queue):
    from django.test import override_settings

    # USE_TZ = False: naive times in the project's time zone, on both sides
    with override_settings(USE_TZ=False):
        connections.close_all()
        run_after = dt.datetime.now().replace(microsecond=654321) + dt.timedelta(hours=1)
        results = [tasks.record.enqueue("naive"),
                   tasks.record.using(run_after=run_after).enqueue("naive later")]
        for result in results:
            assert result.enqueued_at.tzinfo is None
            assert_same_result(result, tasks.record.get_result(result.id))
        assert results[1].task.run_after == run_after
        connections.close_all()


# -- mapping ----------------------------------------------------------------------------
def test_priorities_map_monotonically_and_back():
    assert to_queuejob_priority(0) == 10  # Django's default is queuejob's default
    assert to_queuejob_priority(100) == -90 and to_queuejob_priority(-100) == 110
    values = [to_queuejob_priority(p) for p in range(-100, 101)]
    assert values == sorted(values, reverse=True)  # higher Django priority: runs first
    assert all(to_django_priority(to_queuejob_priority(p)) == p for p in range(-100, 101))
    assert to_django_priority(-1000) == 100 and to_django_priority(1000) == -100


def test_priority_queue_and_run_after_are_stored_and_read_back(queue):
    run_after = timezone.now().replace(microsecond=0) + dt.timedelta(hours=2)
    result = tasks.record.using(priority=50, queue_name="reports",
                                run_after=run_after).enqueue("later")
    row = stored(queue, result.id)
    assert row["priority"] == -40
    assert row["channel"] == "root.reports"
    assert row["eta"] == run_after
    again = tasks.record.get_result(result.id)
    assert again.task.priority == 50
    assert again.task.queue_name == "reports"
    assert again.task.run_after == run_after
    assert again.task.func is tasks.record.func

    mail = tasks.record.using(queue_name="mail", priority=-100).enqueue("mail")
    assert stored(queue, mail.id)["channel"] == "root.outgoing.mail"  # OPTIONS channels
    assert stored(queue, mail.id)["priority"] == 110
    assert tasks.record.get_result(mail.id).task.priority == -100


def test_the_default_queue_goes_to_the_channel_stored_for_the_task(queue):
    assert stored(queue, tasks.record.enqueue("a").id)["channel"] == "root"
    queuejob.operations.set_function(queue, "tests.django_project.shop.tasks.record",
                                     channel="root.slow")
    assert stored(queue, tasks.record.enqueue("b").id)["channel"] == "root.slow"
    # a queue given explicitly wins, as delay(channel=...) does
    reports = tasks.record.using(queue_name="reports").enqueue("c")
    assert stored(queue, reports.id)["channel"] == "root.reports"


def test_django_validates_tasks_before_anything_is_stored(queue):
    with pytest.raises(InvalidTaskError):
        tasks.record.using(queue_name="unknown").enqueue("x")
    with pytest.raises(InvalidTaskError):
        tasks.record.using(priority=101).enqueue("x")
    with pytest.raises(InvalidTaskError):
        tasks.record.using(run_after=dt.datetime(2030, 1, 1)).enqueue("x")  # naive
    assert all_jobs(queue) == 0


# -- results ----------------------------------------------------------------------------
def test_get_result_of_unknown_ids_and_of_other_tasks(queue):
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("not a uuid")
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("0b4f6b8e-2a6c-4a51-9d5e-111111111111")
    plain = None
    with queue.session() as session:  # a plain queuejob job is no Django task
        from tests.jobs import add
        plain = add.delay(session, None, 1, 2)
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result(plain)
    result = tasks.record.enqueue("mine")
    with pytest.raises(TaskResultMismatch):
        tasks.boom.get_result(result.id)


def test_a_cancelled_job_is_a_failed_task(queue):
    from queuejob.contrib.django import TaskCancelled
    result = tasks.record.enqueue("never")
    with queue.session() as session:
        queuejob.cancel(session, result.id)
    again = tasks.record.get_result(result.id)
    assert again.status == TaskResultStatus.FAILED
    assert again.errors[0].exception_class is TaskCancelled
    assert "Cancelled by" in again.errors[0].traceback
    with pytest.raises(ValueError, match="failed"):
        _ = again.return_value


def test_the_exception_class_is_read_from_the_traceback():
    one = ('Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
           "    raise OutOfStock('no')\nshop.tasks.OutOfStock: no widget\nsecond line\n")
    assert exception_class_path(one) == "shop.tasks.OutOfStock"
    chained = (one + "\nDuring handling of the above exception, another exception "
               "occurred:\n\n" + 'Traceback (most recent call last):\n  File "y.py", '
               "line 2, in g\nValueError\n")
    assert exception_class_path(chained) == "builtins.ValueError"
    assert exception_class_path("worker died while running this job (3 times)") \
        == "queuejob.core.errors.FailedJobError"
    cut = 'Traceback (most recent call last):\n  File "x.py"\n[... truncated: 99 characters]'
    assert exception_class_path(cut) == "queuejob.core.errors.FailedJobError"


# -- configuration ----------------------------------------------------------------------
def test_database_urls_from_django_settings(tmp_path):
    assert url_for("sqlite", {"NAME": tmp_path / "db.sqlite3"}) == \
        f"sqlite:///{tmp_path}/db.sqlite3"
    url = url_for("postgresql", {"NAME": "shop", "USER": "app", "PASSWORD": "p@ss:/x",
                                 "HOST": "db.internal", "PORT": 5433,
                                 "OPTIONS": {"sslmode": "require", "pool": True}})
    assert url == "postgresql://app:p%40ss%3A%2Fx@db.internal:5433/shop?sslmode=require"
    assert url_for("postgresql", {"NAME": "shop", "HOST": "/run/postgresql"}) == \
        "postgresql:///shop?host=%2Frun%2Fpostgresql"
    for name in (":memory:", "file:memorydb_default?mode=memory&cache=shared", ""):
        with pytest.raises(ImproperlyConfigured, match="file"):
            url_for("sqlite", {"NAME": name})
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        url_for("mysql", {"NAME": "shop"})


def test_bad_options_and_the_system_checks():
    with pytest.raises(ImproperlyConfigured, match="max_retry"):
        QueueJobBackend("x", {"OPTIONS": {"max_retry": 3}})
    with pytest.raises(ImproperlyConfigured, match="channel"):
        QueueJobBackend("x", {"OPTIONS": {"channels": {"mail": "bad name"}}})
    with pytest.raises(ImproperlyConfigured, match="max_retries"):
        QueueJobBackend("x", {"OPTIONS": {"max_retries": -1}})
    assert QueueJobBackend("x", {}).check() == []
    old = QueueJobBackend("x", {"ENQUEUE_ON_COMMIT": True})
    assert [message.id for message in old.check()] == ["queuejob.W002"]
    queues = QueueJobBackend("x", {"QUEUES": ["bad queue", "ok"],
                                   "OPTIONS": {"channels": {"ok": "root.fine"}}})
    with pytest.raises(InvalidTaskError, match="channel"):
        queues.channel_for("bad queue")
    assert queues.channel_for("ok") == "root.fine"
    assert queues.channel_for("default") is None
    assert queues.channel_for("other.sub") == "root.other.sub"


def test_trap_jobs_catches_django_tasks_and_runs_them_in_the_transaction(queue):
    from queuejob.testing import trap_jobs
    from tests.django_project.shop.models import Event
    with trap_jobs() as trap, transaction.atomic():
        result = tasks.record.enqueue("trapped")
        trap.assert_jobs_count(1, only="tests.django_project.shop.tasks.record")
        assert trap.enqueued_jobs[0].uuid == result.id
        trap.perform_enqueued_jobs()
        # the task ran in this thread, on the request's connection, in its transaction
        assert connections["default"].in_atomic_block
        assert Event.objects.filter(name="trapped").exists()
    assert all_jobs(queue) == 0
    assert Event.objects.count() == 1


def test_a_bad_timeout_option_is_refused():
    with pytest.raises(ImproperlyConfigured, match="timeout"):
        QueueJobBackend("x", {"OPTIONS": {"timeout": -1}})
    assert QueueJobBackend("x", {"OPTIONS": {"timeout": 30}}).timeout == 30.0


def test_times_follow_use_tz():
    from django.test import override_settings

    from queuejob.contrib.django.jobs import aware, django_time
    noon = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    assert django_time(noon) == noon and django_time(None) is None
    # (TIME_ZONE is not overridden: Django would leave the process's TZ changed)
    with override_settings(USE_TZ=False):
        # naive times in the project's time zone (Europe/Brussels), both ways
        assert django_time(noon) == dt.datetime(2026, 1, 15, 13)
        assert aware(dt.datetime(2026, 1, 15, 13)) == noon
