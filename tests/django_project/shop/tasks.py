"""The shop's tasks (found by the worker's autodiscovery: an installed app's tasks module)."""

from __future__ import annotations

try:  # Django 6
    from django.tasks import task
except ImportError:  # the django-tasks backport
    from django_tasks import task

from queuejob import NothingToDoJob, RetryableJobError

from .models import Event, Order


class OutOfStock(Exception):
    pass


@task
def confirm_order(order_id):
    """Confirm an order."""
    order = Order.objects.get(pk=order_id)
    order.confirmed = True
    order.save()
    Event.objects.create(name=f"confirmed {order_id}")
    return {"order": order_id, "status": "confirmed"}


@task(queue_name="reports")
def order_report(order_id, *, fmt="text"):
    Event.objects.create(name=f"report {order_id}")
    return f"report of order {order_id} ({fmt})"


@task
def record(name):
    Event.objects.create(name=name)
    return name


@task(takes_context=True)
def flaky(context, succeed_at):
    Event.objects.create(name=f"flaky attempt {context.attempt}")
    if context.attempt < succeed_at:
        raise RetryableJobError(f"attempt {context.attempt}: not yet")
    return {"attempts": context.attempt, "id": context.task_result.id}


@task
def always_busy():
    Event.objects.create(name="busy")
    raise RetryableJobError("the warehouse is busy", seconds=0.05)


@task
def boom(item):
    raise OutOfStock(f"no {item} left\nnot even one")


@task
def not_json():
    return {1, 2}


@task
def nothing_to_do():
    raise NothingToDoJob("already done")


@task
def echo(*args, session=None, model_name=None, priority=None, eta=None, channel=None,
         max_retries=None):
    """Its keyword arguments are named like queuejob's reserved keywords."""
    return {"args": list(args), "session": session, "model_name": model_name,
            "priority": priority, "eta": eta, "channel": channel, "max_retries": max_retries}


@task
def exits(code):
    """Ends the process, were it run in the process's main thread."""
    raise SystemExit(code)


@task
def quits():
    exit(5)  # the site builtin (closes stdin, raises SystemExit), as a script would


@task
def interrupted():
    raise KeyboardInterrupt
