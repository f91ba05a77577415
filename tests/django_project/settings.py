"""Settings of the test project. The database comes from ``SHOP_DATABASE_URL`` (a
queuejob URL: sqlite:///path or postgresql://...); the tests switch it per test."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent


def databases_for(url: str) -> dict[str, dict[str, Any]]:
    """Django's DATABASES for a queuejob database URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "sqlite":
        path = urllib.parse.unquote(parts.path)[1:]
        # IMMEDIATE: a transaction takes SQLite's write lock at BEGIN, so that it waits
        # for a busy worker instead of failing when its first read turns into a write
        return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": path,
                            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
                            "TEST": {"NAME": path}}}
    return {"default": {"ENGINE": "django.db.backends.postgresql",
                        "NAME": parts.path.lstrip("/"), "USER": parts.username or "",
                        "PASSWORD": parts.password or "", "HOST": parts.hostname or "",
                        "PORT": str(parts.port or "")}}


SECRET_KEY = "queuejob-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
INSTALLED_APPS = [
    "django_tasks",
    "queuejob.contrib.django",
    "tests.django_project.shop",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.django_project.urls"
USE_TZ = True
TIME_ZONE = "Europe/Brussels"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = databases_for(os.environ.get("SHOP_DATABASE_URL",
                                         f"sqlite:///{BASE_DIR / 'shop.sqlite3'}"))
TASKS = {
    "default": {
        "BACKEND": "queuejob.contrib.django.QueueJobBackend",
        "QUEUES": ["default", "reports", "mail"],
        "OPTIONS": {"max_retries": 3, "channels": {"mail": "root.outgoing.mail"}},
    },
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
