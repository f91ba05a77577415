"""Run the dashboard with uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..operations import Database
from .app import create_app
from .security import Credentials, check_bind, is_loopback

#: seconds a connection may take to send a complete request head (request line and
#: headers): from the connection for its first request, from the first byte of each
#: following one
HEAD_TIMEOUT = 5.0


def head_timeout_protocol(  # noqa: C901 - a protocol class with its timer, counted as one function
        head_timeout: float = HEAD_TIMEOUT) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection that has not sent a complete request
    head within ``head_timeout`` seconds.

    uvicorn (0.55) starts no timer before the first request of a connection, and stops
    its keep-alive timer at the first byte of the next one: a client that never
    finishes its headers (a slowloris) would hold its connection, and a file descriptor
    of the dashboard, forever. This protocol starts a timer when the connection is made,
    and again at the first byte of each following request; a request whose head is
    complete (h11 yields it, and uvicorn starts its request-response cycle) stops it.
    Request bodies and responses are not timed here. (uvicorn is imported when serving.)
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeadTimeoutProtocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)  # stops uvicorn's keep-alive timer
            if self.cycle is cycle and (cycle is None or cycle.response_complete):
                # bytes of a request head, not complete yet: the timer runs from the
                # first of them (later bytes do not restart it)
                self._arm_head_timer()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:
                self._cancel_head_timer()  # a request started (a pipelined one too)

        def _arm_head_timer(self) -> None:
            if self._head_timer is None and not self.transport.is_closing():
                self._head_timer = self.loop.call_later(head_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or (
                    self.cycle is not None and not self.cycle.response_complete):
                return
            self.logger.debug("closing a connection that sent no complete request head "
                              "in %g s", head_timeout)
            self.transport.close()

    return HeadTimeoutProtocol


def serve(db: Database, *, host: str = "127.0.0.1", port: int = 8080,
          credentials: Credentials | None = None, origins: Iterable[str] = (),
          log_level: str = "info", head_timeout: float = HEAD_TIMEOUT) -> None:
    """Serve the dashboard of ``db`` until interrupted. Refuses (ConfigurationError)
    to listen beyond loopback without credentials. A connection that sends no complete
    request head within ``head_timeout`` seconds is closed."""
    import uvicorn
    check_bind(host, credentials)
    app = create_app(db, credentials=credentials, loopback_only=is_loopback(host),
                     origins=origins)
    # one process: the CSRF secret and the database pool live in it
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False,
                server_header=False, http=head_timeout_protocol(head_timeout))
