"""Django for the tests of this package only: settings configured from the test project
(tests/django_project) without touching the environment, and per test a database of
the backend under test (SQLite or PostgreSQL, from the suite's fixtures) made by
Django's own ``migrate``."""

from __future__ import annotations

import pytest
from asgiref.local import Local
from django.apps import apps
from django.conf import settings

import queuejob

if not settings.configured:
    from tests.django_project import settings as project_settings

    settings.configure(**{name: getattr(project_settings, name)
                          for name in dir(project_settings) if name.isupper()})
    apps.populate(settings.INSTALLED_APPS)

from django.core.management import call_command
from django.db import connections

from queuejob.contrib.django import close_databases
from tests.django_project.settings import databases_for

TASKS_MODULE = "tests.django_project.shop.tasks"


def use_databases(databases: dict) -> None:
    """Point Django at other DATABASES (connections of every thread start anew)."""
    connections.close_all()
    settings.DATABASES = databases
    connections.__dict__.pop("settings", None)
    connections._settings = None
    connections._connections = Local(connections.thread_critical)


@pytest.fixture
def django_db(db_url):
    """Django's DATABASES on a fresh database of the backend under test, migrated by
    ``manage.py migrate`` (queuejob's tables come from the app's migration)."""
    saved = settings.DATABASES
    use_databases(databases_for(db_url))
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield db_url
    finally:
        connections.close_all()
        close_databases()
        use_databases(saved)


@pytest.fixture
def queue(django_db):
    """The queuejob Database of the project (opened without migrating: its tables must
    come from Django's migrate)."""
    database = queuejob.Database(django_db, migrate=False)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def client(django_db):
    from django.test import Client
    return Client()
