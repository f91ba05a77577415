"""queuejob as a backend of Django's Tasks framework (``django.tasks`` on Django 6, the
``django-tasks`` backport before).

Settings::

    INSTALLED_APPS = [..., "queuejob.contrib.django"]     # migrate creates the tables
    TASKS = {"default": {"BACKEND": "queuejob.contrib.django.QueueJobBackend",
                         "QUEUES": ["default", "emails"],
                         "OPTIONS": {"max_retries": 5}}}

Tasks are stored as queuejob jobs in the project's database, in the current
transaction; ``python manage.py queuejob_worker`` runs them. See docs/integrations.md.
"""

from ...core.errors import require_extra

require_extra("django", "queuejob.contrib.django", "django")

# imported after the check of the extra: without Django, the one line above says why
from .backend import (  # noqa: E402
    QueueJobBackend,
    close_databases,
    close_databases_async,
    database_url,
    migrate,
    task_modules,
)
from .jobs import TaskCancelled, to_django_priority, to_queuejob_priority  # noqa: E402

__all__ = [
    "QueueJobBackend",
    "TaskCancelled",
    "close_databases",
    "close_databases_async",
    "database_url",
    "migrate",
    "task_modules",
    "to_django_priority",
    "to_queuejob_priority",
]
