"""Tables and progress for the command line (rich)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import operations
from ..core import codec
from ..core.errors import DecodeError
from ..database import Database

PAST = {"requeue": "requeued", "done": "set done", "cancel": "cancelled"}
STATE_STYLE = {"failed": "bold red", "started": "cyan", "pending": "yellow", "done": "green",
               "cancelled": "dim", "enqueued": "blue", "wait_dependencies": "magenta"}


def styled(state: str) -> str:
    """A job state with its colour (rich markup)."""
    style = STATE_STYLE.get(state)
    return f"[{style}]{escape(state)}[/]" if style else escape(state)

# piped output is not folded at 80 columns: lines stay whole for grep and logs
console = Console(highlight=False, width=None if sys.stdout.isatty() else 250)


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _json(value: Any) -> None:
    click.echo(json.dumps(value, default=str, indent=2))


def jobs_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _json([{key: row[key] for key in ("uuid", "state", "channel", "func_name", "priority",
                                          "retry", "max_retries", "date_created", "eta",
                                          "description")} for row in rows])
        return
    if not rows:
        click.echo("no jobs")
        return
    table = Table(box=None, header_style="bold")
    for column in ("uuid", "state", "channel", "function", "prio", "tries", "created", "eta"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="ellipsis", no_wrap=True)
    for row in rows:
        table.add_row(row["uuid"], styled(row["state"]), escape(row["channel"]),
                      escape(row["func_name"]), str(row["priority"]),
                      f"{row['retry']}/{row['max_retries'] or '∞'}", _when(row["date_created"]),
                      _when(row["eta"]), escape(row["description"] or ""))
    console.print(table)


def show_job(row: dict[str, Any], as_json: bool) -> None:
    try:
        args, kwargs = codec.decode_arguments(row["args"], row["kwargs"])
        arguments: Any = {"args": [repr(arg) for arg in args],
                          "kwargs": {key: repr(value) for key, value in kwargs.items()}}
    except DecodeError as exc:
        arguments = f"(cannot decode: {exc}) args={row['args'][:200]!r}"
    if as_json:
        _json({**row, "arguments": arguments})
        return
    fields = ["uuid", "state", "func_name", "model_name", "channel", "priority", "retry",
              "max_retries", "identity_key", "user_id", "worker_id", "description",
              "date_created", "eta", "date_enqueued", "date_started", "date_done"]
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in fields:
        value = row[key]
        table.add_row(key, escape(_when(value) if isinstance(value, dt.datetime)
                                  else "" if value is None else str(value)))
    if isinstance(arguments, dict):
        table.add_row("args", escape(", ".join(arguments["args"])))
        table.add_row("kwargs", escape(", ".join(f"{k}={v}" for k, v in
                                                  arguments["kwargs"].items())))
    else:
        table.add_row("arguments", escape(arguments))
    table.add_row("result", escape(row["result"] or ""))
    console.print(table)
    if row["exc_info"]:
        console.print("[bold]exc_info[/]")
        click.echo(row["exc_info"])


def stats_table(stats: dict[str, dict[str, int]], as_json: bool) -> None:
    if as_json:
        _json(stats)
        return
    columns = ["wait_dependencies", "pending", "enqueued", "started", "done", "failed",
               "cancelled"]
    table = Table(box=None, header_style="bold")
    table.add_column("channel")
    for column in columns:
        # jobs of a graph waiting for their parents
        table.add_column("waiting" if column == "wait_dependencies" else column, justify="right")
    totals = dict.fromkeys(columns, 0)
    for channel in sorted(stats):
        counts = stats[channel]
        for column in columns:
            totals[column] += counts.get(column, 0)
        table.add_row(escape(channel), *(str(counts.get(column, 0)) for column in columns))
    table.add_row("[bold]total[/]", *(f"[bold]{totals[column]}[/]" for column in columns))
    console.print(table)


def channels_table(rows: list[dict[str, Any]]) -> None:
    table = Table(box=None, header_style="bold")
    for column in ("channel", "capacity", "options", "running", "pending", "failed"):
        table.add_column(column, justify="left" if column in ("channel", "options") else "right")
    for row in rows:
        options = ", ".join(filter(None, [
            "sequential" if row["sequential"] else "",
            f"throttle {row['throttle']:g}s" if row["throttle"] else "",
            f"removal {row['removal_interval']:g}d" if row["removal_interval"] is not None
            else "",
            "paused" if row["paused"] else ""]))
        table.add_row(escape(row["name"]),
                      "unlimited" if row["capacity"] is None else str(row["capacity"]),
                      options, str(row["running"]), str(row["pending"]), str(row["failed"]))
    console.print(table)


def workers_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _json(rows)
        return
    if not rows:
        click.echo("no workers")
        return
    table = Table(box=None, header_style="bold")
    for column in ("worker", "state", "host", "pid", "heartbeat age", "running", "channels",
                   "started"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        style = {"alive": "green", "dead": "bold red"}.get(row["state"], "dim")
        table.add_row(escape(row["id"]), f"[{style}]{row['state']}[/]", escape(row["hostname"]),
                      str(row["pid"]), f"{row['heartbeat_age']:.1f}s", str(row["running"]),
                      escape(row["channels"] or ""), _when(row["date_started"]))
    console.print(table)


def in_chunks(db: Database, action: str, uuids: list[str], user: str, size: int = 1000) -> int:
    """Apply a manual action to many jobs, a transaction per chunk, with progress."""
    from rich.progress import Progress
    done = 0
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(PAST[action], total=len(uuids))
        for start in range(0, len(uuids), size):
            chunk = uuids[start:start + size]
            with db.session(context={"user": user}) as session:
                done += len(operations.ACTIONS[action](session, *chunk))
            progress.advance(task, len(chunk))
    return done


def functions_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no job functions (pass --module to list a module's)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("function", "channel", "retry pattern", "timeout", "related action"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        pattern = ", ".join(f"{count}: {delay:g}s" for count, delay in
                            sorted(row["retry_pattern"].items())) or "-"
        mark = " (set)"
        table.add_row(escape(row["name"]) + ("" if row["registered"] else " (not imported)"),
                      escape(row["channel"] or "-") + (mark if row["channel_overridden"] else ""),
                      pattern + (mark if row["retry_pattern_overridden"] else ""),
                      f"{row['timeout']:g}s" if row["timeout"] else "-",
                      "yes" if row["related_action"] else "")
    console.print(table)


def graph_tree(jobs: list[dict[str, Any]], edges: list[dict[str, Any]], mark: str = "") -> None:
    """A job graph as a tree from its first jobs; a job with several parents is shown
    under each, its children once."""
    from rich.tree import Tree
    by_uuid = {job["uuid"]: job for job in jobs}
    children: dict[str, list[str]] = {}
    has_parent: set[str] = set()
    for edge in edges:
        children.setdefault(edge["parent_uuid"], []).append(edge["child_uuid"])
        has_parent.add(edge["child_uuid"])
    tree = Tree(f"[bold]graph {escape(jobs[0]['graph_uuid']) if jobs else ''}[/]")
    shown: set[str] = set()

    def label(job_uuid: str) -> str:
        job = by_uuid.get(job_uuid)
        if job is None:
            return f"{job_uuid} (another graph's job)"
        here = " [bold]◀ this job[/]" if job_uuid == mark else ""
        return (f"{styled(job['state'])} {job_uuid[:8]} "
                f"{escape(job['func_name'])}{here}")

    def add(node: Any, job_uuid: str) -> None:
        if job_uuid in shown:
            node.add(label(job_uuid) + " [dim](above)[/]")
            return
        shown.add(job_uuid)
        branch = node.add(label(job_uuid))
        for child in children.get(job_uuid, []):
            add(branch, child)

    roots = [job["uuid"] for job in jobs if job["uuid"] not in has_parent]
    roots += [parent for parent in children if parent not in by_uuid]
    for root in roots:
        add(tree, root)
    console.print(tree)
