"""The dashboard's defences: where it may listen, credentials, CSRF, response headers.

Dashboards of job queues get attacked (Flower was open by default and had no CSRF
protection; several dashboards ran scripts stored in job arguments). So:

- it listens on loopback unless credentials are set, and then every route but the
  health check needs them (HTTP Basic, compared in constant time);
- on loopback without credentials, requests must name a loopback host, so that a web
  page cannot reach the dashboard through a DNS name rebound to 127.0.0.1;
- mutations are POST only, with a same-origin check (the Origin header, else the
  Referer, equal to the dashboard's own origin or one configured: exact matches, no
  patterns) and a CSRF token: an HMAC of a random cookie under a secret of the process;
- every response carries a Content-Security-Policy without 'unsafe-inline' (scripts
  and styles come from /static only), and templates autoescape everything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..core.errors import ConfigurationError
from ..core.text import printable

log = logging.getLogger("queuejob.web")

ENV_AUTH = "QUEUEJOB_WEB_AUTH"
CSRF_COOKIE = "queuejob_csrf"
FLASH_COOKIE = "queuejob_flash"
CSRF_FIELD = "csrf_token"
#: routes reachable without credentials (a load balancer's health check)
PUBLIC_PATHS = frozenset({"/healthz"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin: our own POSTs carry a Referer (the fallback of the origin check),
    # links to related actions do not leak the dashboard's URLs
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Credentials:
    """The user and password every request must present (HTTP Basic)."""

    user: str
    password: str

    @classmethod
    def parse(cls, text: str) -> Credentials:
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            raise ConfigurationError("credentials must be user:password, both non-empty")
        return cls(user, password)

    def check(self, header: str | None) -> bool:
        """Whether an Authorization header presents these credentials. Both parts are
        compared in constant time, as fixed-length digests, always both."""
        user, password = "", ""
        if header and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
        same_user = hmac.compare_digest(_digest(user), _digest(self.user))
        same_password = hmac.compare_digest(_digest(password), _digest(self.password))
        return same_user & same_password


def credentials_from(auth: str | None, auth_file: str | None = None) -> Credentials | None:
    """``--auth user:password``, else the first line of ``--auth-file``, else the
    QUEUEJOB_WEB_AUTH environment variable (the file and the variable keep the password
    out of the process list)."""
    if auth is not None and auth_file is not None:
        raise ConfigurationError("give --auth or --auth-file, not both")
    if auth_file is not None:
        return credentials_from_file(auth_file)
    text = auth if auth is not None else os.environ.get(ENV_AUTH)
    return Credentials.parse(text) if text else None


#: the longest first line read from a credentials file
MAX_AUTH_LINE = 64 * 1024


def credentials_from_file(path: str) -> Credentials:
    """The credentials on the first line of a file: ``user:password``."""
    try:
        with open(path, encoding="utf-8") as handle:
            line = handle.readline(MAX_AUTH_LINE)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the credentials file {printable(path, one_line=True)}: "
            f"{exc.strerror or type(exc).__name__}") from None
    except (UnicodeDecodeError, ValueError):
        raise ConfigurationError(f"the credentials file {printable(path, one_line=True)} "
                                 "is not UTF-8 text") from None
    try:
        return Credentials.parse(line.rstrip("\r\n"))
    except ConfigurationError:
        raise ConfigurationError(
            f"the credentials file {printable(path, one_line=True)} must hold "
            "user:password on its first line, both non-empty") from None


def is_loopback(host: str) -> bool:
    """Whether a listening address is loopback only (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, credentials: Credentials | None) -> None:
    """Refuse to listen beyond loopback without credentials."""
    if not is_loopback(host) and credentials is None:
        raise ConfigurationError(
            f"refusing to listen on {host} without credentials: pass --auth-file PATH "
            f"(its first line user:password) or --auth user:password, or set {ENV_AUTH} "
            "(or listen on 127.0.0.1)")


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[:host_header.find("]") + 1]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Signer:
    """HMACs under a secret of this process: CSRF tokens and flash messages."""

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret or secrets.token_bytes(32)

    def sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, nonce: str) -> str:
        return self.sign("csrf", nonce)

    def check_csrf(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.csrf_token(nonce).encode(), token.encode("utf-8",
                                                                                 "replace"))

    def flash_cookie(self, kind: str, text: str) -> str:
        payload = base64.urlsafe_b64encode(json.dumps([kind, text]).encode()).decode()
        return f"{payload}.{self.sign('flash', payload)}"

    def read_flash(self, cookie: str | None) -> tuple[str, str] | None:
        if not cookie or "." not in cookie:
            return None
        payload, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(self.sign("flash", payload).encode(), signature.encode()):
            return None
        try:
            kind, text = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except (ValueError, TypeError):
            return None
        return str(kind), str(text)


def request_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def same_origin(request: Request, allowed: Iterable[str]) -> bool:
    """The request comes from a page of the dashboard: its Origin header (else its
    Referer's origin) is exactly the dashboard's own origin or a configured one."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if not referer:
            return False
        parts = urllib.parse.urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    expected = {request_origin(request), *allowed}
    return any(hmac.compare_digest(origin.encode(), one.encode()) for one in expected)


def new_nonce() -> str:
    return secrets.token_hex(16)


ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


class SecurityMiddleware:
    """Host check, credentials and the security headers of every response; also a
    Server-Timing header with the time the server took until the response started."""

    def __init__(self, app: ASGIApp, *, credentials: Credentials | None,
                 loopback_only: bool) -> None:
        self.app = app
        self.credentials = credentials
        # without credentials the dashboard listens on loopback: only loopback names
        self.check_host = loopback_only and credentials is None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["server-timing"] = \
                    f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            await send(message)

        headers = Headers(scope=scope)
        response: Response | None = None
        if self.check_host and _host_name(headers.get("host", "")) not in LOOPBACK_NAMES:
            response = PlainTextResponse("bad Host header: this dashboard answers to "
                                         "loopback names only", status_code=400)
        elif self.credentials is not None and scope["path"] not in PUBLIC_PATHS \
                and not self.credentials.check(headers.get("authorization")):
            response = PlainTextResponse(
                "credentials needed", status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="queuejob", charset="UTF-8"'})
        if response is not None:
            await response(scope, receive, send_with_headers)
            return
        started_response = False

        async def send_tracked(message: dict[str, Any]) -> None:
            nonlocal started_response
            if message["type"] == "http.response.start":
                started_response = True
            await send_with_headers(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            if started_response:
                raise  # nothing to answer with: the server closes the connection
            # an error no page expected: said in the log with its traceback, answered
            # here, so that the answer carries the security headers too (Starlette's
            # ServerErrorMiddleware, outside this one, would answer without them)
            log.exception("error answering %s %s", scope.get("method"),
                          printable(scope.get("path", ""), one_line=True)[:200])
            await PlainTextResponse("Internal Server Error", status_code=500)(
                scope, receive, send_with_headers)
