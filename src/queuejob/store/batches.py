"""Batches as stored (``queue_batch``, ``queue_batch_job``): the named queries of each
dialect's ``batches.sql``. Callers pass the connection, and so decide the transaction;
the rules (what a callback holds, what concludes a batch) are in
``queuejob.core.batches``. Rows are handed back as stored.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from ..backends.base import Connector, Row
from ..core.batches import Callback
from .mapping import new_row


def _uuids(connector: Connector, uuids: Sequence[str]) -> Any:
    """A list of uuids as a parameter: an array on PostgreSQL, JSON text on SQLite."""
    return list(uuids) if connector.dialect == "postgresql" else json.dumps(list(uuids))


class BatchStore:
    """The batches' reads and writes on one connector."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self._run = connector.execute

    # -- written with the jobs ---------------------------------------------------------
    def insert(self, conn: Any, batch_uuid: str, name: str, on_done: Callback | None,
               on_failure: Callback | None) -> None:
        self._run(conn, "insert_batch", {
            "uuid": batch_uuid, "name": name,
            "on_done": None if on_done is None else on_done.to_text(),
            "on_failure": None if on_failure is None else on_failure.to_text()})

    def add_jobs(self, conn: Any, batch_uuid: str, uuids: Sequence[str]) -> list[str]:
        """Make the stored jobs of ``uuids`` members of the batch; the uuids that joined
        (a uuid of no stored job joins nothing)."""
        if not uuids:
            return []
        rows = self._run(conn, "add_batch_jobs", {
            "batch_uuid": batch_uuid, "uuids": _uuids(self.connector, uuids)})
        return [str(row["job_uuid"]) for row in rows]

    # -- concluded by the workers --------------------------------------------------------
    def open_batches(self, conn: Any, limit: int, after: tuple[Any, str] | None
                     ) -> list[Row]:
        """Open batches, oldest first, after the cursor ``after`` (date_created, uuid)."""
        created, uuid = after if after is not None else (None, None)
        return self._run(conn, "open_batches", {
            "limit": limit, "after_created": created, "after_uuid": uuid})

    def counts(self, conn: Any, uuids: Sequence[str]) -> dict[str, dict[str, int]]:
        """The jobs of each batch of ``uuids`` counted per state."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        if not uuids:
            return out
        for row in self._run(conn, "batch_counts", {"uuids": _uuids(self.connector, uuids)}):
            out[str(row["batch_uuid"])][str(row["state"])] = int(row["jobs"])
        return out

    def conclude(self, conn: Any, batch_uuid: str, state: str, error: str | None) -> bool:
        """Compare-and-set: conclude an open batch; False when another worker did."""
        return bool(self._run(conn, "conclude_batch", {
            "uuid": batch_uuid, "state": state, "error": error}))

    def set_callback(self, conn: Any, batch_uuid: str, callback_uuid: str) -> None:
        self._run(conn, "batch_callback", {"uuid": batch_uuid,
                                           "callback_uuid": callback_uuid})

    def callback_row(self, callback: Callback) -> dict[str, Any]:
        """The ``insert_job`` parameters of a callback's job (a new uuid), its arguments as
        they were encoded when the batch was created."""
        row = new_row(callback.job())
        row.update(args=callback.args, kwargs=callback.kwargs, context=callback.context,
                   default_channel=callback.default_channel)
        return row

    # -- read by the operations ----------------------------------------------------------
    def all(self, conn: Any, state: str | None, limit: int) -> list[Row]:
        return self._run(conn, "batches", {"state": state, "limit": limit})

    def one(self, conn: Any, batch_uuid: str) -> Row | None:
        rows = self._run(conn, "batch", {"uuid": batch_uuid})
        return rows[0] if rows else None

    def jobs(self, conn: Any, batch_uuid: str, limit: int) -> list[Row]:
        return self._run(conn, "batch_jobs", {"uuid": batch_uuid, "limit": limit})
