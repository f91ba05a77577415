"""How the long-running commands (``worker``, ``web``) log: ``--log-format text``
(lines for people) or ``json`` (one JSON object a line, for a log collector:
``time``, ``level``, ``logger``, ``message``, and ``job_uuid`` when the line is about a
job), written by python-json-logger (the extra ``queuejob[json-logs]``)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..core.errors import require_extra

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log_format_option = click.option(
    "--log-format", type=click.Choice(FORMATS, case_sensitive=False), default="text",
    show_default=True,
    help="text: lines for people; json: one JSON object a line (time, level, logger, "
         "message, job_uuid when about a job), for log collectors.")


class JobUuid(logging.Filter):
    """Gives a record about a job (queuejob's ``"job %s..."`` messages, or a record
    logged with ``extra={"job_uuid": ...}``) its ``job_uuid``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_uuid", None) is None:
            message, args = record.msg, record.args
            if (isinstance(message, str) and message.startswith("job %s")
                    and isinstance(args, tuple) and args):
                record.job_uuid = str(args[0])
        return True


def json_formatter(**_uvicorn: Any) -> logging.Formatter:
    """One JSON object a line: time (ISO 8601, UTC), level, logger, message; a record's
    extra fields (job_uuid) and its exception (exc_info) when it has them. (uvicorn may
    pass its own options, such as ``use_colors``: they mean nothing here.)"""
    from pythonjsonlogger.json import JsonFormatter
    return JsonFormatter("{levelname}{name}{message}", style="{", timestamp="time",
                         rename_fields={"levelname": "level", "name": "logger"})


def handler(log_format: str, stream: Any = None) -> logging.Handler:
    """A handler writing to ``stream`` (stderr) in ``log_format``."""
    if log_format.lower() == "json":
        require_extra("json-logs", "--log-format json", "pythonjsonlogger")
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if log_format.lower() == "json":
        out.setFormatter(json_formatter())
        out.addFilter(JobUuid())
    else:
        out.setFormatter(logging.Formatter(TEXT_FORMAT))
    return out


def configure(log_format: str, level: str) -> None:
    """The process's logging: the root logger at ``level``, to stderr in ``log_format``
    (as ``logging.basicConfig``: left alone when the application configured it)."""
    logging.basicConfig(level=level.upper(), handlers=[handler(log_format)])


def uvicorn_config(log_format: str) -> dict[str, Any] | None:
    """The logging configuration uvicorn gets for ``log_format``: None for text (its
    own); for json, its loggers (server and access lines) written as JSON objects, to
    stderr."""
    if log_format.lower() != "json":
        return None
    formatter = {"()": f"{__name__}.json_formatter"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # uvicorn names its formatters default and access (it may set their colours)
        "formatters": {"default": dict(formatter), "access": dict(formatter)},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default",
                        "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access",
                       "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
