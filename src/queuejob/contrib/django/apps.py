"""The Django app: its migration creates queuejob's tables (``manage.py migrate``)."""

from django.apps import AppConfig


class QueueJobConfig(AppConfig):
    name = "queuejob.contrib.django"
    label = "queuejob"
    verbose_name = "queuejob"
