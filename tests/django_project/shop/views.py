import json

from django.db import transaction
from django.http import JsonResponse

try:
    from django.tasks import TaskResultStatus, default_task_backend
    from django.tasks.exceptions import TaskResultDoesNotExist
except ImportError:
    from django_tasks import TaskResultStatus, default_task_backend
    from django_tasks.exceptions import TaskResultDoesNotExist

from . import tasks
from .models import Order


class PaymentRefused(Exception):
    pass


def create_order(request):
    """An order and its confirmation task, in one transaction: both or neither."""
    payload = json.loads(request.body)
    try:
        with transaction.atomic():
            order = Order.objects.create(customer=payload["customer"], total=payload["total"])
            result = tasks.confirm_order.enqueue(order.id)
            if payload.get("refuse"):
                raise PaymentRefused(result.id)
    except PaymentRefused as exc:
        return JsonResponse({"error": "payment refused", "task_id": exc.args[0]}, status=402)
    return JsonResponse({"order": order.id, "task_id": result.id}, status=201)


def order_report(request, order_id):
    """A task enqueued outside any transaction (autocommit): stored at once."""
    priority = int(request.GET.get("priority", 0))
    result = tasks.order_report.using(priority=priority).enqueue(order_id, fmt="pdf")
    return JsonResponse({"task_id": result.id}, status=202)


def task_result(request, task_id):
    try:
        result = default_task_backend.get_result(task_id)
    except TaskResultDoesNotExist:
        return JsonResponse({"error": "no such task"}, status=404)
    body = {"task": result.task.module_path, "status": str(result.status),
            "attempts": result.attempts,
            "errors": [{"exception": error.exception_class_path,
                        "traceback": error.traceback} for error in result.errors]}
    if result.status == TaskResultStatus.SUCCESSFUL:
        body["return_value"] = result.return_value
    return JsonResponse(body)
