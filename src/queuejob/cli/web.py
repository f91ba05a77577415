"""``queuejob web`` (the dashboard) and ``queuejob metrics`` (its Prometheus text)."""

from __future__ import annotations

import logging
import os
import sys

import click

from ..core.errors import require_extra
from ..core.tallies import MAX_WINDOW
from . import logs
from .common import Failure, db_option, friendly, open_db
from .logs import log_format_option

#: what the dashboard and the metrics need (the extra queuejob[web])
WEB_PACKAGES = ("starlette", "jinja2", "uvicorn", "prometheus_client", "multipart")


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Beyond loopback, credentials are required.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--auth", default=None, metavar="USER:PASSWORD",
              help="HTTP Basic credentials every route but /healthz requires "
                   "(default: $QUEUEJOB_WEB_AUTH). Any local user sees them in ps: "
                   "--auth-file or $QUEUEJOB_WEB_AUTH keep the password out of it.")
@click.option("--auth-file", default=None, metavar="PATH",
              help="A file whose first line is USER:PASSWORD: the credentials, kept out "
                   "of ps (instead of --auth).")
@click.option("--origin", "origins", multiple=True, metavar="URL",
              help="Another exact origin allowed to post actions, as a reverse proxy's "
                   "https://jobs.example.com (repeatable).")
@click.option("--module", "modules", multiple=True, metavar="MODULE",
              help="Import this module's @job functions: their settings and related "
                   "actions show (repeatable).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
@log_format_option
@friendly
def web(db_url: str | None, host: str, port: int, auth: str | None, auth_file: str | None,
        origins: tuple[str, ...], modules: tuple[str, ...], log_level: str,
        log_format: str) -> None:
    """Serve the dashboard: jobs, channels, workers, functions, metrics."""
    require_extra("web", "queuejob web", *WEB_PACKAGES)
    json_logs = use_log_format(log_format, log_level)
    from ..web.security import check_bind, credentials_from
    from ..worker.startup import import_job_modules
    credentials = credentials_from(auth, auth_file)
    # refuse a bad address before the database is opened (or created)
    check_bind(host, credentials)
    for origin in origins:
        if origin.rstrip("/") != origin or "://" not in origin:
            raise Failure(f"bad origin {origin!r}: write it as https://host[:port]")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    import_job_modules(modules)
    db = open_db(db_url)
    try:
        from ..web import serve
        banner = (f"queuejob dashboard on http://{host}:{port}/"
                  + (" (credentials required)" if credentials else ""))
        if json_logs:
            logging.getLogger("queuejob.web").info("%s", banner)
        else:
            click.echo(banner, err=True)
        serve(db, host=host, port=port, credentials=credentials, origins=origins,
              log_level=log_level.lower())
    finally:
        db.close()


@click.command()
@db_option
@click.option("--window", type=click.FloatRange(min=1, max=MAX_WINDOW), default=3600.0,
              show_default=True,
              help="Seconds of done jobs the duration and latency histograms cover, "
                   "counted in whole minutes (at most two days).")
@friendly
def metrics(db_url: str | None, window: float) -> None:
    """Print the Prometheus metrics of the database (the text of /metrics)."""
    require_extra("web", "queuejob metrics", "prometheus_client")
    from .. import metrics as metrics_module
    db = open_db(db_url)
    try:
        click.echo(metrics_module.render(db, window).decode(), nl=False)
    finally:
        db.close()


def use_log_format(log_format: str, log_level: str) -> bool:
    """Set up the dashboard's logs in ``log_format``; whether they are JSON."""
    config = logs.uvicorn_config(log_format)
    if config is None:
        return False
    logs.configure(log_format, log_level)
    import uvicorn.config
    # uvicorn.run() configures its loggers from this dict (its default log_config):
    # its lines become JSON objects too
    uvicorn.config.LOGGING_CONFIG.clear()
    uvicorn.config.LOGGING_CONFIG.update(config)
    return True


def register(group: click.Group) -> None:
    """Add ``web`` and ``metrics`` to the ``queuejob`` command."""
    group.add_command(web)
    group.add_command(metrics)
