"""The backend seam: how to run queuejob's named queries on one database engine.

``connector_for_url`` picks the dialect from the URL. Each dialect is a folder
with its connector, its ``queries.sql`` (the same query names in every dialect)
and its numbered ``migrations/``. The connectors are internal: users see
``queuejob.open`` and the Database.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ConfigurationError, require_extra
from .base import Connector


def connector_for_url(url: str, **options: Any) -> Connector:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"bad database URL {url!r}: expected sqlite:///path/to/file.db or "
            "postgresql://user:password@host:port/dbname")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteConnector
        return SQLiteConnector(url, **options)
    if scheme in ("postgresql", "postgres"):
        require_extra("postgres", "PostgreSQL", "psycopg", "psycopg_pool")
        from .postgres import PostgresConnector
        return PostgresConnector(url, **options)
    raise ConfigurationError(
        f"bad database URL: unknown scheme {scheme!r} (use sqlite:// or postgresql://)")


__all__ = ["Connector", "connector_for_url"]
