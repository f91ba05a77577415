"""PostgreSQL helpers of the benchmark (psycopg 3, autocommit connections)."""

from __future__ import annotations

import psycopg

PG_SETTINGS = ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
               "full_page_writes", "shared_buffers", "max_connections", "max_wal_size",
               "checkpoint_timeout", "autovacuum")


def ensure_database(url: str) -> None:
    """CREATE DATABASE for the URL's database if it does not exist."""
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def pg_settings(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)",
                            (list(PG_SETTINGS),)).fetchall()
    return {name: f"{setting} {unit}" if unit else setting for name, setting, unit in rows}


def truncate_all(url: str) -> None:
    """Empty every table of the URL's database, then CHECKPOINT (peers' reset)."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()")]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute("CHECKPOINT")


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()
