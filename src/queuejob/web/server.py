"""Run the dashboard with uvicorn."""

from __future__ import annotations

from collections.abc import Iterable

from ..database import Database
from .app import create_app
from .security import Credentials, check_bind, is_loopback


def serve(db: Database, *, host: str = "127.0.0.1", port: int = 8080,
          credentials: Credentials | None = None, origins: Iterable[str] = (),
          log_level: str = "info") -> None:
    """Serve the dashboard of ``db`` until interrupted. Refuses (ConfigurationError)
    to listen beyond loopback without credentials."""
    import uvicorn
    check_bind(host, credentials)
    app = create_app(db, credentials=credentials, loopback_only=is_loopback(host),
                     origins=origins)
    # one process: the CSRF secret and the database pool live in it
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=False,
                server_header=False)
