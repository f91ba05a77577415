"""``python manage.py queuejob_worker``: run the Django tasks of a queuejob backend."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from queuejob.contrib.django._compat import DEFAULT_TASK_BACKEND_ALIAS, task_backends
from queuejob.contrib.django.backend import (
    QueueJobBackend,
    import_task_modules,
    worker_channels,
)
from queuejob.core.channels import GRAMMAR
from queuejob.core.errors import ConfigurationError, QueueJobError

LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}


class Command(BaseCommand):
    help = ("Run the Django tasks of a queuejob task backend: imports the task modules "
            "(the backend's 'modules' option and the installed apps' tasks modules), "
            "applies queuejob's migrations and works until SIGTERM or Ctrl-C.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--backend", default=DEFAULT_TASK_BACKEND_ALIAS,
                            help="Alias of the task backend in TASKS (default: %(default)s).")
        parser.add_argument("--channels", default=None,
                            help="Channel rules for all workers while this one runs "
                                 f"(stored rules win): {GRAMMAR}")
        parser.add_argument("--concurrency", type=int, default=None,
                            help="Tasks this process runs at once (0: none; default: "
                                 "root's capacity in --channels, else 4).")
        parser.add_argument("--queue-name", dest="queue_names", action="append", default=[],
                            metavar="QUEUE[:CAPACITY[:sequential][:throttle=N]]",
                            help="A Django queue of the backend, as a --channels entry of "
                                 "the channel it maps to (the backend's 'channels' option, "
                                 "root.QUEUE, root for the default queue); repeatable, or "
                                 "separated by commas. Without a capacity, the queue runs "
                                 "within the workers' capacities. Every queuejob worker runs "
                                 "every queue: this sets capacities, it excludes nothing.")
        parser.add_argument("--module", dest="modules", action="append", default=[],
                            metavar="MODULE", help="Another module of tasks (repeatable).")
        parser.add_argument("--burst", action="store_true",
                            help="Return when nothing is runnable.")
        parser.add_argument("--grace", type=float, default=30.0,
                            help="Seconds running tasks get after SIGTERM (default 30).")
        parser.add_argument("--heartbeat", type=float, default=5.0)
        parser.add_argument("--dead-after", type=float, default=30.0)
        parser.add_argument("--rescue-interval", type=float, default=10.0)
        parser.add_argument("--poll", type=float, default=3.0,
                            help="Seconds between looks for due tasks when no notification "
                                 "arrives (default 3).")
        parser.add_argument("--listen-url", default=None, metavar="URL",
                            help="PostgreSQL: where to LISTEN (direct, or a session-mode "
                                 "pool) when the database goes through a pooler in "
                                 "transaction mode [env QUEUEJOB_LISTEN_URL].")
        parser.add_argument("--no-listen", action="store_true",
                            help="Never LISTEN: find new tasks by polling.")
        parser.add_argument("--job-connections", type=int, default=None,
                            help="The most connections this process's tasks hold at once "
                                 "(default: its task threads).")
        parser.add_argument("--hostname", default=None)
        parser.add_argument("--wait-for-db", type=float, default=60.0,
                            help="Seconds to keep trying at start-up while the database "
                                 "cannot be reached.")

    def handle(self, *args: Any, **options: Any) -> None:
        import queuejob
        from queuejob.worker import Worker
        from queuejob.worker.startup import migrate_when_reachable
        from queuejob.worker.worker import check_concurrency

        if not logging.getLogger().handlers and not logging.getLogger("queuejob").handlers:
            logging.basicConfig(level=LEVELS.get(options["verbosity"], logging.INFO),
                                stream=sys.stderr,
                                format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        backend = task_backends[options["backend"]]
        if not isinstance(backend, QueueJobBackend):
            raise CommandError(f"TASKS[{options['backend']!r}] is not a queuejob backend "
                               f"({type(backend).__module__}.{type(backend).__name__})")
        try:
            channels = worker_channels(backend, options["channels"], options["queue_names"])
            if options["concurrency"] is not None:
                check_concurrency(options["concurrency"])
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
        modules = list(dict.fromkeys(backend.task_modules() + options["modules"]))
        import_task_modules(modules)
        if not modules:
            self.stderr.write("queuejob_worker: no task modules (no installed app has a "
                              "tasks module, and the backend's 'modules' option is empty)")
        try:
            db = queuejob.open(backend.database_url(), migrate=False,
                               listen_url=options["listen_url"])
        except QueueJobError as exc:
            raise CommandError(str(exc)) from None
        try:
            migrate_when_reachable(db, options["wait_for_db"])
            worker = Worker(db, channels=channels, modules=modules,
                            concurrency=options["concurrency"],
                            grace_period=options["grace"],
                            heartbeat_interval=options["heartbeat"],
                            dead_after=options["dead_after"],
                            rescue_interval=options["rescue_interval"],
                            poll_interval=options["poll"], hostname=options["hostname"],
                            listen=not options["no_listen"],
                            job_connections=options["job_connections"])
            worker.run(burst=options["burst"])
        except QueueJobError as exc:
            raise CommandError(str(exc)) from None
        finally:
            db.close()
            connections.close_all()
