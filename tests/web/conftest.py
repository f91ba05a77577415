"""Fixtures of the dashboard's tests: a real uvicorn server on a free loopback port,
serving the dashboard of the test's database (SQLite and PostgreSQL), and Debian's
chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import base64
import http.client
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from queuejob.web import create_app
from queuejob.web.security import Credentials
from tests.helpers import wait_until

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "admin", "s3cret pass:word"


class LiveServer:
    """uvicorn serving ``app`` in a thread, on a socket bound before it starts."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        wait_until(lambda: self.server.started, message="uvicorn to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive(), "uvicorn did not stop"
        self.sock.close()


@dataclass
class Web:
    """The dashboard under test: its database, server and credentials."""

    db: Any
    server: LiveServer
    credentials: Credentials | None = None
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def app(self) -> Any:
        return self.server.app

    def auth_header(self) -> dict[str, str]:
        if self.credentials is None:
            return {}
        token = base64.b64encode(
            f"{self.credentials.user}:{self.credentials.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict[str, str] | None = None, auth: bool = True
                ) -> tuple[int, dict[str, str], str]:
        """One HTTP request (no redirects followed): status, headers (lower-case), body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            all_headers = {**(self.auth_header() if auth else {}), **(headers or {})}
            if body is not None:
                all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
            conn.request(method, path, body=body, headers=all_headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, text
        finally:
            conn.close()


def _serve(db: Any, credentials: Credentials | None = None, refresh: float = 5.0
           ) -> Iterator[Web]:
    app = create_app(db, credentials=credentials, refresh=refresh)
    server = LiveServer(app).start()
    try:
        yield Web(db, server, credentials)
    finally:
        server.stop()


@pytest.fixture
def web(db) -> Iterator[Web]:
    """The dashboard on loopback, without credentials."""
    yield from _serve(db)


@pytest.fixture
def fast_web(db) -> Iterator[Web]:
    """The dashboard refreshing its live pages every 0.3 s."""
    yield from _serve(db, refresh=0.3)


@pytest.fixture
def secured_web(db) -> Iterator[Web]:
    """The dashboard with credentials (as when it listens beyond loopback)."""
    yield from _serve(db, Credentials(USER, PASSWORD))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS,
                                             headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """What a page did that it must not: dialogs, script errors, CSP violations."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.console.append(
            f"{message.type}: {message.text}") if message.type == "error" else None)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.watch = Watch(page)
    try:
        yield page
    finally:
        context.close()
