"""Concurrency keys of Django tasks: the backend's ``concurrency_key`` option, a function
of the task and its arguments called at every enqueue."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings

import queuejob
from queuejob.contrib.django import QueueJobBackend
from queuejob.contrib.django._compat import task_backends
from tests.django_project.settings import TASKS
from tests.django_project.shop import tasks

PATH = f"{__name__}.customer_key"


def customer_key(task, args, kwargs):
    """The key of the shop's tasks: the customer of ``record``, none for the others."""
    if task.name == "record":
        return f"customer:{args[0]}"
    if task.name == "echo":
        return kwargs.get("model_name")
    return None


def bad_key(task, args, kwargs):
    return args[0]


def with_key(option):
    """The test project's TASKS with ``concurrency_key`` set to ``option``."""
    default = TASKS["default"]
    return {"default": {**default, "OPTIONS": {**default["OPTIONS"],
                                               "concurrency_key": option}}}


def stored(queue: queuejob.Database, job_uuid: str):
    return queue.read(lambda conn: queue.store.load(conn, job_uuid))


def jobs_count(queue: queuejob.Database) -> int:
    return sum(sum(by_state.values()) for by_state in queuejob.operations.stats(queue).values())


@pytest.mark.parametrize("option", [PATH, customer_key], ids=["dotted path", "function"])
def test_the_option_gives_each_task_its_concurrency_key(queue, option):
    with override_settings(TASKS=with_key(option)):
        backend = task_backends["default"]
        assert isinstance(backend, QueueJobBackend) and backend.check() == []
        with transaction.atomic():
            ann = tasks.record.enqueue("ann")
        bob = tasks.record.using(queue_name="mail").enqueue("bob")
        echoed = tasks.echo.enqueue(1, model_name="tenant-3")
        unkeyed = tasks.echo.enqueue(2)
        order = tasks.confirm_order.enqueue(12)
        assert stored(queue, ann.id)["concurrency_key"] == "customer:ann"
        assert stored(queue, bob.id)["concurrency_key"] == "customer:bob"
        assert stored(queue, echoed.id)["concurrency_key"] == "tenant-3"
        assert stored(queue, unkeyed.id)["concurrency_key"] == ""
        assert stored(queue, order.id)["concurrency_key"] == ""
        # the task gets its arguments as given: the key is queuejob's, not the task's
        assert tasks.echo.get_result(echoed.id).kwargs == {"model_name": "tenant-3"}
        assert tasks.record.get_result(ann.id).args == ["ann"]


def test_without_the_option_tasks_have_no_concurrency_key(queue):
    result = tasks.record.enqueue("ann")
    assert stored(queue, result.id)["concurrency_key"] == ""
    assert task_backends["default"].concurrency_key_function() is None


@pytest.mark.parametrize(("argument", "error", "words"), [
    (42, TypeError, "must be a str, not int"),
    ("two\nlines", ValueError, "one line"),
    ("x" * 256, ValueError, "over the limit of 255"),
])
def test_a_bad_key_from_the_function_is_refused_in_one_line(queue, argument, error, words):
    with override_settings(TASKS=with_key(f"{__name__}.bad_key")):
        with pytest.raises(error, match=words) as raised:
            tasks.record.enqueue(argument)
        message = str(raised.value)
        assert "\n" not in message
        assert "TASKS['default']['OPTIONS']['concurrency_key']" in message
        assert "record" in message
    assert jobs_count(queue) == 0


def test_a_bad_option_is_refused():
    with pytest.raises(ImproperlyConfigured, match="concurrency_key"):
        QueueJobBackend("x", {"OPTIONS": {"concurrency_key": 42}})
    with pytest.raises(ImproperlyConfigured, match="dotted path"):
        QueueJobBackend("x", {"OPTIONS": {"concurrency_key": "no_dots"}})
    missing = QueueJobBackend("x", {"OPTIONS": {"concurrency_key": "tests.nowhere.key"}})
    assert [message.id for message in missing.check()] == ["queuejob.E002"]
    with pytest.raises(ImproperlyConfigured, match=r"cannot import 'tests\.nowhere\.key'"):
        missing.concurrency_key_function()
    not_callable = QueueJobBackend("x", {"OPTIONS": {"concurrency_key": f"{__name__}.PATH"}})
    with pytest.raises(ImproperlyConfigured, match="is not a function"):
        not_callable.concurrency_key_function()


def test_an_unimportable_option_refuses_the_enqueue_and_stores_nothing(queue):
    with override_settings(TASKS=with_key("tests.nowhere.key")), \
            pytest.raises(ImproperlyConfigured, match="cannot import"):
        tasks.record.enqueue("ann")
    assert jobs_count(queue) == 0
