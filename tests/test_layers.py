"""The layers hold: both dialects define the same named queries, every query is used by
the one owner of SQL (the store), and nothing else names a query."""

from __future__ import annotations

import re
from pathlib import Path

from queuejob.backends.base import load_queries

SRC = Path(__file__).resolve().parent.parent / "src" / "queuejob"
DIALECTS = ("sqlite", "postgres")
#: queries the connectors run themselves (migrations, savepoints, composed templates)
RUN_BY_CONNECTORS = {"create_migration_table", "lock_migrations", "applied_migrations",
                     "record_migration", "savepoint", "rollback_to_savepoint",
                     "release_savepoint"}


def queries(dialect: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted((SRC / "backends" / dialect).glob("*.sql")):
        out.update(load_queries(path.read_text()))
    return out


def python_source(*folders: str) -> str:
    return "\n".join(path.read_text() for folder in folders
                     for path in sorted((SRC / folder).rglob("*.py")))


def test_both_dialects_define_the_same_queries():
    names = {dialect: set(queries(dialect)) for dialect in DIALECTS}
    assert names["sqlite"] == names["postgres"], (
        f"only in SQLite: {sorted(names['sqlite'] - names['postgres'])}; "
        f"only in PostgreSQL: {sorted(names['postgres'] - names['sqlite'])}")


def test_every_query_is_used_by_the_store_or_a_connector():
    store = python_source("store")
    connectors = python_source("backends")
    for name in queries("sqlite"):
        if name in RUN_BY_CONNECTORS:
            assert f'"{name}"' in connectors, f"query {name} is not run by the connectors"
            continue
        # the read models name dashboard fragments by their suffix (dashboard_<name>)
        used = f'"{name}"' in store or (
            name.startswith("dashboard_") and re.search(
                rf'"{re.escape(name.removeprefix("dashboard_"))}"|f"(?:sort|filter|keyset)_',
                store))
        assert used, f"query {name} is defined but never used"


def test_no_module_outside_the_store_names_a_query():
    names = set(queries("sqlite")) - RUN_BY_CONNECTORS
    outside = {path: path.read_text() for path in SRC.rglob("*.py")
               if "store" not in path.relative_to(SRC).parts[:1]
               and "backends" not in path.relative_to(SRC).parts[:1]}
    for path, text in outside.items():
        for name in names:
            for call in ("execute(", "execute_many(", "execute_composed(", "copy(",
                         "execute_many_and_commit(", "insert_alone("):
                assert not re.search(rf'{re.escape(call)}[^)]*"{name}"', text), \
                    f"{path.relative_to(SRC)} runs query {name} itself"
