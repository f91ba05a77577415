"""``queuejob batches``: the batches (``queuejob.batch``), their jobs counted per state;
``queuejob batches UUID``: one batch, its callbacks and its jobs.

Never creates nor updates the queue's tables ('queuejob migrate' does).
"""

from __future__ import annotations

from typing import Any

import click

from .. import operations
from .common import db_option, friendly, open_db

#: the states counted as waiting to run in a listing's "pending" column
_WAITING = ("pending", "enqueued", "wait_dependencies")
_STYLE = {"open": "yellow", "done": "green", "failed": "bold red"}


def _count(counts: Any, *states: str) -> int:
    if not isinstance(counts, dict):
        return 0
    return sum(counts.get(state, 0) for state in states)


def _listing(rows: list[dict[str, Any]], as_json: bool) -> None:
    from .output import cell, listing
    listing(rows, as_json, "no batches",
            ("batch", "name", "state", "done", "failed", "cancelled", "started", "pending",
             "total", "created", "concluded"),
            lambda row: (cell(row.get("uuid")), cell(row.get("name")),
                         cell(row.get("state"), _STYLE.get(str(row.get("state")), "")),
                         cell(_count(row.get("counts"), "done")),
                         cell(_count(row.get("counts"), "failed")),
                         cell(_count(row.get("counts"), "cancelled")),
                         cell(_count(row.get("counts"), "started")),
                         cell(_count(row.get("counts"), *_WAITING)),
                         cell(_count(row.get("counts"), "total")),
                         cell(row.get("date_created")), cell(row.get("date_concluded"))),
            right=("done", "failed", "cancelled", "started", "pending", "total"))


def _callback_line(label: str, callback: dict[str, Any] | None) -> str | None:
    if callback is None:
        return None
    if callback.get("problem"):
        return f"{label}: {callback['problem']}"
    return f"{label}: {callback.get('func_name')}(args {callback.get('args')}, kwargs " \
           f"{callback.get('kwargs')})"


def _one(entry: dict[str, Any], as_json: bool) -> None:
    from .output import _json, cell, listing, plain, styled
    if as_json:
        _json(entry)
        return
    counts = entry.get("counts") or {}
    lines = [f"batch {entry.get('uuid')}: {entry.get('name')}",
             f"state: {entry.get('state')} (created {plain(entry.get('date_created'))}"
             + (f", concluded {plain(entry.get('date_concluded'))}"
                if entry.get("date_concluded") else "") + ")",
             "jobs: " + ", ".join(f"{counts.get(state, 0)} {state}" for state in (
                 "done", "failed", "cancelled", "started", "enqueued", "pending",
                 "wait_dependencies")) + f" (total {counts.get('total', 0)})",
             _callback_line("on done", entry.get("on_done")),
             _callback_line("on failure", entry.get("on_failure"))]
    if entry.get("callback_uuid"):
        lines.append(f"callback job: {entry.get('callback_uuid')}")
    if entry.get("callback_error"):
        lines.append(f"callback not delayed: {entry.get('callback_error')}")
    for line in lines:
        if line is not None:
            click.echo(plain(line))
    listing(entry.get("jobs") or [], False, "no jobs",
            ("job", "state", "function", "description", "created"),
            lambda row: (cell(row.get("uuid")), styled(row.get("state")),
                         cell(row.get("func_name")), cell(row.get("description")),
                         cell(row.get("date_created"))))


@click.command()
@db_option
@click.argument("batch_uuid", metavar="[UUID]", required=False)
@click.option("--state", type=click.Choice(("open", "done", "failed")),
              help="Only the batches in this state.")
@click.option("--limit", type=click.IntRange(1, operations.BATCHES_LISTED), default=100,
              show_default=True, help="The most batches (or, with UUID, jobs) shown.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def batches(db_url: str | None, batch_uuid: str | None, state: str | None, limit: int,
            as_json: bool) -> None:
    """Batches of jobs (queuejob.batch), newest first, their jobs counted per state; with
    UUID, one batch: its callbacks and its jobs."""
    db = open_db(db_url)
    try:
        if batch_uuid is None:
            _listing(operations.batches(db, state=state, limit=limit), as_json)
        else:
            _one(operations.batch(db, batch_uuid, limit=limit), as_json)
    finally:
        db.close()


def register(cli: click.Group) -> None:
    cli.add_command(batches)
