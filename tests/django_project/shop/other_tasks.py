"""A task module that is no app's ``tasks`` module: workers that autodiscover do not
run its tasks."""

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task


@task
def elsewhere():
    return "ran"
