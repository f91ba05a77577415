"""The dashboard's ASGI application: ``create_app(db)``.

Pages are rendered on the server (Jinja2, autoescaped); a small static script refreshes
the live pages. Every job operation goes through ``queuejob.operations``, as the CLI's.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import operations
from ..core import limits
from ..core.rows import is_channel_name
from ..core.text import displayable
from ..operations import Database
from . import batches, display, schedules, settings, views
from .security import (
    CSRF_COOKIE,
    FLASH_COOKIE,
    Credentials,
    SecurityMiddleware,
    Signer,
    new_nonce,
)


def _urlencode(value: Any) -> str:
    """Jinja's urlencode for a stored name, whatever it holds (text that is not UTF-8
    has no URL: its escaped form is used)."""
    if isinstance(value, str):
        return urllib.parse.quote(displayable(value), safe="/")
    return urllib.parse.quote(display.text(value, display.MAX_RENDERED), safe="/")


def make_templates() -> jinja2.Environment:
    # autoescape everything: job data (arguments, results, tracebacks, names) is text;
    # finalize makes every rendered value text a page can hold, whatever was stored
    env = jinja2.Environment(loader=jinja2.PackageLoader("queuejob.web", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True,
                             finalize=display.finalize)
    env.filters.update(when=display.when, seconds=display.seconds,
                       last_line=display.last_line, iso=display.iso, short=display.short,
                       urlencode=_urlencode)
    return env


@dataclass
class Dashboard:
    """What the views share: the database, templates, secrets and settings."""

    db: Database
    signer: Signer
    templates: jinja2.Environment
    #: other origins allowed to POST (a reverse proxy's public https://host), exact
    origins: tuple[str, ...] = ()
    #: seconds between refreshes of the live pages
    refresh: float = 5.0
    #: seconds between two looks of a job's page at its live state, while it has not ended
    live_interval: float = 1.0
    page_size: int = 50
    #: the user of the credentials, named in the results of manual actions
    user: str | None = None
    #: seconds the jobs page's channel and function suggestions are kept: each reads
    #: every unfinished job (tens of milliseconds on a big queue)
    suggestions_ttl: float = 10.0
    _suggestions: tuple[float, list[str], list[str]] | None = field(default=None, repr=False)
    _exceptions: tuple[float, list[str]] | None = field(default=None, repr=False)

    def suggestions(self) -> tuple[list[str], list[str]]:
        """The channels and job functions offered by the jobs page's filters."""
        cached = self._suggestions
        if cached is None or time.monotonic() >= cached[0]:
            # offered: the names a filter can take (a name stored by hand may be none)
            cached = (time.monotonic() + self.suggestions_ttl,
                      [name for name in operations.job_channels(self.db)
                       if is_channel_name(name)],
                      [name for name in operations.job_function_names(self.db)
                       if isinstance(name, str) and name == displayable(name)
                       and len(name) <= limits.FUNC_NAME])
            self._suggestions = cached
        return cached[1], cached[2]

    def exceptions(self) -> list[str]:
        """The exceptions of failed jobs, offered by the jobs page's exception filter
        (the most frequent first; kept as the other suggestions are)."""
        cached = self._exceptions
        if cached is None or time.monotonic() >= cached[0]:
            names = [views.exception_link(row.get("exc_name"))
                     for row in operations.failures_by_exception(
                         self.db, views.MAX_FAILURE_GROUPS)]
            cached = (time.monotonic() + self.suggestions_ttl,
                      [name for name in names if name is not None])
            self._exceptions = cached
        return cached[1]

    def forget_suggestions(self) -> None:
        """After a change made here (a channel set, jobs cancelled): read them again."""
        self._suggestions = None
        self._exceptions = None

    def render(self, request: Request, template: str, context: dict[str, Any],
               status_code: int = 200) -> HTMLResponse:
        cookie = request.cookies.get(CSRF_COOKIE)
        fresh = not cookie or len(cookie) != 32
        nonce = new_nonce() if fresh or cookie is None else cookie
        flash = self.signer.read_flash(request.cookies.get(FLASH_COOKIE))
        html = self.templates.get_template(template).render(
            base=request.scope.get("root_path", ""), csrf_token=self.signer.csrf_token(nonce),
            **{"flash": flash, "refresh": 0, "nav": "", "form_error": None, **context})
        response = HTMLResponse(html, status_code=status_code)
        secure = request.url.scheme == "https"
        if fresh:
            response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="strict",
                                secure=secure, path="/")
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response


def create_app(db: Database, *, credentials: Credentials | None = None,
               loopback_only: bool = True, origins: Iterable[str] = (),
               refresh: float = 5.0, secret: bytes | None = None) -> Starlette:
    """The dashboard of ``db`` as an ASGI application.

    ``loopback_only``: the server listens on loopback (requests must then name a
    loopback host unless credentials are set). ``origins``: other exact origins allowed
    to POST, such as a reverse proxy's ``https://jobs.example.com``.
    """
    dashboard = Dashboard(db=db, signer=Signer(secret), templates=make_templates(),
                          origins=tuple(origins), refresh=refresh,
                          user=credentials.user if credentials else None)
    routes = [
        Route("/", views.overview, name="overview"),
        Route("/jobs", views.jobs, name="jobs"),
        Route("/jobs/confirm", views.confirm, name="confirm"),
        Route("/jobs/bulk", views.bulk_action, methods=["POST"], name="bulk_action"),
        Route("/jobs/{uuid:uuid}", views.job, name="job"),
        Route("/jobs/{uuid:uuid}/live.json", views.job_live, name="job_live"),
        # a job's actions: requeue, done, cancel, and edit (priority, eta, channel)
        Route("/jobs/{uuid:uuid}/{action}", views.job_action, methods=["POST"],
              name="job_action"),
        Route("/channels", views.channels, name="channels"),
        Route("/channels/set", views.channel_set, methods=["POST"], name="channel_set"),
        Route("/channels/pause", views.channel_pause, methods=["POST"],
              name="channel_pause"),
        Route("/channels/resume", views.channel_resume, methods=["POST"],
              name="channel_resume"),
        Route("/channels/delete", views.channel_delete, methods=["POST"],
              name="channel_delete"),
        Route("/workers", views.workers, name="workers"),
        Route("/functions", settings.functions, name="functions"),
        Route("/functions/edit", settings.function_edit, name="function_edit"),
        Route("/functions/set", settings.function_set, methods=["POST"], name="function_set"),
        # the page and its form (add, remove) at one address: the form posts to its page
        Route("/subscriptions", settings.subscriptions, methods=["GET", "POST"],
              name="subscriptions"),
        Route("/schedules", schedules.schedules, methods=["GET", "POST"], name="schedules"),
        Route("/batches", batches.batches, name="batches"),
        Route("/batches/{uuid:uuid}", batches.batch, name="batch"),
        Route("/metrics", views.metrics, name="metrics"),
        Route("/healthz", views.healthz, name="healthz"),
        Mount("/static", StaticFiles(packages=[("queuejob.web", "static")]), name="static"),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405 or request.url.path.startswith("/static"):
            return PlainTextResponse(exc.detail, status_code=exc.status_code,
                                     headers=exc.headers)
        return dashboard.render(request, "error.html", {"status": exc.status_code,
                                                        "message": exc.detail},
                                status_code=exc.status_code)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error},
                    middleware=[Middleware(SecurityMiddleware, credentials=credentials,
                                           loopback_only=loopback_only)])
    app.state.dashboard = dashboard
    return app
