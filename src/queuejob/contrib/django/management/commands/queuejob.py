"""``python manage.py queuejob ...``: the ``queuejob`` command line on the project's
queue (its database URL from the settings, its tasks imported), e.g.::

    python manage.py queuejob jobs --state failed
    python manage.py queuejob functions set shop.tasks.send_invoice --retry-pattern '{"1": 60}'
    python manage.py queuejob web
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from queuejob.contrib.django.backend import import_task_modules, queuejob_backends, task_modules


class Command(BaseCommand):
    help = ("The queuejob command line on this project's queue: "
            "manage.py queuejob [--backend ALIAS] COMMAND [ARGS]... (queuejob --help).")

    def run_from_argv(self, argv: list[str]) -> None:
        from queuejob.cli import main

        rest = _without_django_options(argv[2:])
        alias = None
        if len(rest) >= 2 and rest[0] == "--backend":
            alias, rest = rest[1], rest[2:]
        backends = [backend for backend in queuejob_backends()
                    if alias is None or backend.alias == alias]
        if not backends:
            self.stderr.write(f"no queuejob task backend{f' {alias!r}' if alias else ''} "
                              "in TASKS")
            sys.exit(2)
        import_task_modules(task_modules(backends))
        saved_argv, saved_url = sys.argv, os.environ.get("QUEUEJOB_DATABASE_URL")
        os.environ["QUEUEJOB_DATABASE_URL"] = backends[0].database_url()
        sys.argv = ["queuejob", *rest]
        try:
            main()
        finally:
            sys.argv = saved_argv
            if saved_url is None:
                os.environ.pop("QUEUEJOB_DATABASE_URL", None)
            else:
                os.environ["QUEUEJOB_DATABASE_URL"] = saved_url

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER,
                            help="[--backend ALIAS] a queuejob command and its arguments")

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("queuejob", "jobs", "--state", "failed")``."""
        self.run_from_argv(["manage.py", "queuejob", *args])


def _without_django_options(args: list[str]) -> list[str]:
    """The arguments less Django's own --settings and --pythonpath (manage.py applied
    them already; queuejob does not know them)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--settings", "--pythonpath"):
            skip = True
        elif not arg.startswith(("--settings=", "--pythonpath=")):
            out.append(arg)
    return out
