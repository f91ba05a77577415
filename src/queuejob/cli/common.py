"""What every ``queuejob`` command shares: the database option, opening the database
(never creating a queue but where asked), and errors as one line."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..core.errors import NoSuchJobError, QueueJobError
from ..core.text import printable
from ..operations import Database, open_database

ENV_DB = "QUEUEJOB_DATABASE_URL"


class Failure(click.ClickException):
    """An error shown as one line: ``queuejob: error: ...``."""

    def show(self, file: Any = None) -> None:
        click.echo(f"queuejob: error: {safe_line(self.format_message())}", err=True)


def safe_line(text: str) -> str:
    """``text`` as one line for a terminal: blanks folded, control characters escaped."""
    return printable(" ".join(text.split()), one_line=True)


def one_line(exc: BaseException) -> str:
    return safe_line(str(exc)) or type(exc).__name__


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures (bad URL, unreachable database, bad input) into one line."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except (QueueJobError, NoSuchJobError) as exc:
            raise Failure(one_line(exc)) from None
        except (ValueError, TypeError, OSError) as exc:
            raise Failure(one_line(exc)) from None
        except Exception as exc:
            module = type(exc).__module__ or ""
            if module.startswith(("sqlite3", "psycopg")):
                raise Failure(f"database error: {one_line(exc)}") from None
            raise
    return wrapper



def open_db(url: str | None, *, migrate: bool = False, check: bool = True,
            **options: Any) -> Database:
    """The database of a command.

    ``migrate``: create or update the queue's tables (``worker``, ``migrate``, ``demo``).
    Otherwise, with ``check``, the database is opened as it is and must hold a queue of
    this queuejob's schema: a missing SQLite file, a database without the queue's tables
    or a queue of an older or newer schema is refused in one line, and nothing is
    created nor changed. Without either, nothing is read yet (the worker migrates
    itself, waiting for a database that is starting).
    """
    if not url:
        raise Failure(f"no database: pass --db URL or set {ENV_DB}")
    db = open_database(url, migrate=migrate, **options)
    if check and not migrate:
        try:
            db.require_queue()
        except BaseException:
            db.close()
            raise
    return db


db_option = click.option("--db", "db_url", envvar=ENV_DB, metavar="URL",
                         help=f"Database URL (sqlite:///jobs.db, postgresql://...); "
                              f"default ${ENV_DB}.")
