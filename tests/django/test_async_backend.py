"""The Django task backend from asyncio code: ``aenqueue`` and ``aget_result`` on
queuejob's asyncio client, never through Django's thread (``sync_to_async``), with the
results, the stored jobs and their runs of the synchronous ``enqueue``."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

import queuejob
from queuejob.contrib.django import QueueJobBackend, close_databases_async
from queuejob.contrib.django._compat import (
    BaseTaskBackend,
    TaskResultDoesNotExist,
    TaskResultMismatch,
    TaskResultStatus,
    task_backends,
    task_enqueued,
)
from queuejob.contrib.django.jobs import CONTEXT_KEY
from queuejob.store.mapping import job_from_row
from tests.django.conftest import TASKS_MODULE
from tests.django.test_backend import all_jobs, assert_same_result, creation_time, stored
from tests.django_project.shop import tasks
from tests.django_project.shop.models import Event

#: columns of two jobs stored from the same call that differ (the context: its creation
#: time, compared without it)
VARYING = {"id", "uuid", "date_created", "context"}


def run(coroutine_function: Any, *args: Any) -> Any:
    """Run a body on a fresh event loop, as an ASGI server would; the loop's asyncio
    pools (PostgreSQL) are closed before it ends."""
    async def body() -> Any:
        try:
            return await coroutine_function(*args)
        finally:
            await close_databases_async()
    return asyncio.run(body())


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    meta = dict(job_from_row(row, decode=False).context[CONTEXT_KEY])
    meta.pop("enqueued_at", None)
    return {**{key: value for key, value in row.items() if key not in VARYING}, "meta": meta}


def calls(soon: dt.datetime) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    """Tasks and arguments, each enqueued synchronously and from async code."""
    return [
        (tasks.record, ("plain",), {}),
        (tasks.echo, ([1, [2.5, None]], {"k": True}), {"model_name": "m", "priority": 3}),
        (tasks.order_report.using(priority=-7, queue_name="mail"), (3,), {"fmt": "csv"}),
        (tasks.record.using(run_after=soon, priority=42), ("deferred",), {}),
    ]


def test_aenqueue_returns_what_aget_result_and_get_result_read(queue):
    soon = timezone.now().replace(microsecond=123456) + dt.timedelta(hours=1)
    signalled = []

    def receiver(sender, task_result, **kwargs):
        signalled.append(task_result)

    async def body():
        results = [await task.aenqueue(*args, **kwargs)
                   for task, args, kwargs in calls(soon)]
        return results, [await result.task.aget_result(result.id) for result in results]

    task_enqueued.connect(receiver, weak=False)
    try:
        results, again = run(body)
        sync = [task.enqueue(*args, **kwargs) for task, args, kwargs in calls(soon)]
    finally:
        task_enqueued.disconnect(receiver)
    assert [result.id for result in signalled] == [result.id for result in results + sync]
    for result, read, signal, twin in zip(results, again, signalled, sync, strict=False):
        assert result.status == TaskResultStatus.READY
        assert_same_result(result, read)
        assert_same_result(result, signal)
        # what the synchronous API reads of it, field by field
        assert_same_result(result, result.task.get_result(result.id))
        assert result.enqueued_at == creation_time(queue, result.id)
        assert result.enqueued_at.tzinfo is not None  # USE_TZ
        # the synchronous enqueue of the same call: the same result but for the job's
        # id and creation time, the same row but for them
        assert_same_result(dataclasses.replace(result, id=twin.id,
                                               enqueued_at=twin.enqueued_at), twin)
        assert comparable(stored(queue, result.id)) == comparable(stored(queue, twin.id))
    deferred = stored(queue, results[3].id)
    assert deferred["date_created"] == deferred["eta"] == soon  # its place in line
    assert results[1].kwargs == {"model_name": "m", "priority": 3}  # the task's own
    assert all_jobs(queue) == 8


def test_aenqueued_tasks_are_committed_at_once_and_run(queue):
    async def body():
        kept = await tasks.record.aenqueue("from async")
        report = await tasks.order_report.aenqueue(5, fmt="csv")
        return kept, report

    kept, report = run(body)
    # committed: workers see them (Django has no transaction in async code)
    assert stored(queue, kept.id)["state"] == "pending"
    assert stored(queue, report.id)["channel"] == "root.reports"
    queuejob.Worker(queue, modules=[TASKS_MODULE]).run(burst=True)

    async def read():
        await kept.arefresh()
        return await tasks.order_report.aget_result(report.id)

    ran = run(read)
    assert kept.status == TaskResultStatus.SUCCESSFUL and kept.return_value == "from async"
    assert ran.status == TaskResultStatus.SUCCESSFUL
    assert ran.return_value == "report of order 5 (csv)"
    assert ran.attempts == 1 and ran.started_at <= ran.finished_at
    assert_same_result(ran, tasks.order_report.get_result(report.id))
    assert list(Event.objects.order_by("name").values_list("name", flat=True)) == [
        "from async", "report 5"]


def test_the_async_path_never_goes_through_djangos_thread(queue, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the async path went through Django's thread")

    # the default aenqueue and aget_result run enqueue and get_result in Django's
    # thread: both refuse, and so does the sync_to_async they would go through
    monkeypatch.setattr(QueueJobBackend, "enqueue", refuse)
    monkeypatch.setattr(QueueJobBackend, "get_result", refuse)
    monkeypatch.setattr(sys.modules[BaseTaskBackend.__module__], "sync_to_async", refuse)
    backend = task_backends["default"]
    plain = None
    with queue.session() as session:  # a plain queuejob job is no Django task
        from tests.jobs import add
        plain = add.delay(session, None, 1, 2)

    async def body():
        result = await tasks.record.aenqueue("no hop")
        again = await backend.aget_result(result.id)
        await result.arefresh()
        missing = []
        for result_id in ("not a uuid", "0b4f6b8e-2a6c-4a51-9d5e-111111111111", plain):
            with pytest.raises(TaskResultDoesNotExist):
                await backend.aget_result(result_id)
            missing.append(result_id)
        with pytest.raises(TaskResultMismatch):
            await tasks.boom.aget_result(result.id)
        with pytest.raises(TypeError):  # not JSON: refused before anything is stored
            await tasks.record.aenqueue(dt.datetime.now(dt.UTC))
        return result, again, missing

    result, again, missing = run(body)
    assert result == again and len(missing) == 3
    assert stored(queue, result.id)["state"] == "pending"
    assert all_jobs(queue) == 2  # the task's and the plain job


def test_trap_jobs_catches_tasks_enqueued_from_async_code(queue):
    from queuejob.testing import trap_jobs

    with trap_jobs() as trap:
        result = run(tasks.record.aenqueue, "trapped")
        trap.assert_jobs_count(1, only="tests.django_project.shop.tasks.record")
        assert trap.enqueued_jobs[0].uuid == result.id
        assert result.status == TaskResultStatus.READY and result.enqueued_at is not None
        trap.perform_enqueued_jobs()  # in the test's thread
    assert all_jobs(queue) == 0
    assert Event.objects.filter(name="trapped").exists()


def test_with_no_delay_the_task_runs_at_once_in_djangos_thread(queue, monkeypatch):
    """No-delay runs the task inside enqueue: a task may use the ORM, which async code
    may not, so aenqueue hands it to the synchronous enqueue in Django's thread."""
    monkeypatch.setenv("QUEUE_JOB__NO_DELAY", "1")

    async def body():
        result = await tasks.record.aenqueue("at once")
        await sync_to_async(connections.close_all)()
        return result

    result = run(body)
    assert result.id and result.status == TaskResultStatus.READY
    assert all_jobs(queue) == 0
    assert Event.objects.filter(name="at once").exists()
