"""Tables and progress for the command line (rich).

Every value that comes from the database is data: a cell is a rich ``Text`` (never
markup) holding the value with its control characters escaped
(``queuejob.core.text.printable``), one line per cell; only the traceback block keeps
its lines. A value of an unexpected type (SQLite stores what it is given) is printed
as text, never formatted as the number it should have been. ``--json`` output is
ASCII, and valid JSON whatever a stored text holds.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core import codec
from ..core.progress import Progress, progress_of
from ..core.text import printable

T = TypeVar("T")

STATE_STYLE = {"failed": "bold red", "started": "cyan", "pending": "yellow", "done": "green",
               "cancelled": "dim", "enqueued": "blue", "wait_dependencies": "magenta"}
WORKER_STYLE = {"alive": "green", "dead": "bold red"}

# piped output is not folded at 80 columns: lines stay whole for grep and logs
console = Console(highlight=False, width=None if sys.stdout.isatty() else 250)

_SURROGATE = re.compile("[\ud800-\udfff]")


def plain(value: Any, one_line: bool = True) -> str:
    """A stored value as text a terminal may show: control characters, lone surrogates
    and (``one_line``) line breaks written as escapes; None as nothing."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        text = _when(value)
    elif isinstance(value, bytes | bytearray | memoryview):
        text = bytes(value).decode("utf-8", "surrogateescape")
    else:
        text = str(value)
    return printable(text, one_line=one_line)


def cell(value: Any, style: str = "") -> Text:
    """A table cell of a stored value: plain text on one line, never markup."""
    return Text(plain(value), style=style)


def _style_of(styles: dict[str, str], value: Any, default: str = "") -> str:
    return styles.get(value, default) if isinstance(value, str) else default


def styled(state: Any) -> Text:
    """A job state with its colour."""
    return cell(state, _style_of(STATE_STYLE, state))


def _when(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return "" if value is None else str(value)


def _number(value: Any, spec: str, unit: str = "") -> str:
    """``value`` formatted as a number when it is one, else as the text it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:{spec}}{unit}"
    return plain(value)


def _jsonable(value: Any) -> Any:
    """``value`` that ``json.dumps`` writes as valid JSON: keys as text, bytes decoded,
    lone surrogates (which no UTF-8 JSON parser accepts) written as visible escapes,
    infinities and NaN (which JSON has not) as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", value)
    if isinstance(value, dict):
        return {key if isinstance(key, int | float | bool) or key is None
                else _jsonable(key if isinstance(key, str) else str(key)):
                _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return _jsonable(bytes(value).decode("utf-8", "surrogateescape"))
    return value


def _json(value: Any) -> None:
    # ensure_ascii (the default): every control character is written as \uXXXX
    click.echo(json.dumps(_jsonable(value), default=lambda item: _jsonable(str(item)),
                          indent=2, ensure_ascii=True, allow_nan=False))


def jobs_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _json([{key: row.get(key) for key in ("uuid", "state", "channel", "func_name",
                                              "priority", "retry", "max_retries",
                                              "date_created", "eta", "description",
                                              "exc_name", "exc_message", "exec_time",
                                              "worker_pid", "date_cancelled")}
               for row in rows])
        return
    if not rows:
        click.echo("no jobs")
        return
    table = Table(box=None, header_style="bold")
    # the uuid is what every other command takes: long stored texts in the other columns
    # never squeeze it
    table.add_column("uuid", no_wrap=True, min_width=36)
    for column in ("state", "channel", "function", "prio", "tries", "created", "eta"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="ellipsis", no_wrap=True)
    for row in rows:
        tries = f"{plain(row.get('retry'))}/{plain(row.get('max_retries') or '∞')}"
        table.add_row(cell(row.get("uuid")), styled(row.get("state")), cell(row.get("channel")),
                      cell(row.get("func_name")), cell(row.get("priority")), Text(tries),
                      cell(row.get("date_created")), cell(row.get("eta")),
                      cell(row.get("description")))
    console.print(table)


def progress_text(progress: Progress | None) -> str:
    """``40/100 (40%) message``, or "" when the job reported none."""
    if progress is None:
        return ""
    text = f"{progress.done}/{progress.total} ({progress.percent:.0f}%)"
    return f"{text} {progress.message}" if progress.message else text


def _log_json(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"attempt": entry["attempt"], "dropped": entry["dropped"],
             "problem": entry["problem"],
             "lines": [{"at": line.at, "level": line.level, "logger": line.logger,
                        "message": line.message} for line in entry["lines"]]}
            for entry in logs]


def show_job(row: dict[str, Any], as_json: bool, logs: list[dict[str, Any]] | None = None
             ) -> None:
    logs = logs or []
    progress = progress_of(row)
    try:
        args, kwargs = codec.decode_arguments(row["args"], row["kwargs"])
        arguments: Any = {"args": [repr(arg) for arg in args],
                          "kwargs": {key: repr(value) for key, value in kwargs.items()}}
    except Exception as exc:  # stored data never breaks the command: it is shown as is
        arguments = f"(cannot decode: {exc}) args={str(row.get('args'))[:200]!r}"
    if as_json:
        _json({**row, "arguments": arguments, "progress": None if progress is None else {
            "done": progress.done, "total": progress.total, "message": progress.message},
            "logs": _log_json(logs)})
        return
    fields = ["uuid", "state", "func_name", "model_name", "channel", "priority", "retry",
              "max_retries", "identity_key", "user_id", "worker_id", "worker_pid",
              "description", "date_created", "eta", "date_enqueued", "date_started",
              "date_done", "date_cancelled", "exec_time", "exc_name", "exc_message"]
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key in fields:
        table.add_row(key, cell(row.get(key)))
    if isinstance(arguments, dict):
        table.add_row("args", cell(", ".join(arguments["args"])))
        table.add_row("kwargs", cell(", ".join(f"{k}={v}" for k, v in
                                               arguments["kwargs"].items())))
    else:
        table.add_row("arguments", cell(arguments))
    table.add_row("result", cell(row.get("result")))
    if progress is not None:
        table.add_row("progress", cell(progress_text(progress)))
    console.print(table)
    if row.get("exc_info"):
        console.print(Text("exc_info", style="bold"))
        # the traceback keeps its lines (its tabs as spaces); anything else a terminal
        # would act on is escaped
        click.echo(plain(row["exc_info"], one_line=False).expandtabs(8))
    for entry in logs:  # the last attempt first
        dropped = f", {entry['dropped']} more line(s) dropped" if entry["dropped"] else ""
        console.print(Text(f"log of attempt {plain(entry['attempt'])}{dropped}", style="bold"))
        if entry["problem"]:
            click.echo(f"  ({entry['problem']})")
        for line in entry["lines"]:
            # each line's own line breaks (a traceback) stay; anything else escaped
            at = dt.datetime.fromtimestamp(line.at, dt.UTC) if abs(line.at) < 1e11 else None
            message = plain(line.message, one_line=False).expandtabs(8)
            click.echo(f"  {_when(at)} {plain(line.level)} {plain(line.logger)}: "
                       + message.replace("\n", "\n    "))


def stats_table(stats: dict[Any, dict[str, int]], as_json: bool) -> None:
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
    # a channel is whatever the row holds: sorted as text (None and numbers included)
    for channel in sorted(stats, key=lambda name: (name is None, str(name))):
        counts = stats[channel]
        for column in columns:
            count = counts.get(column, 0)
            totals[column] += count if isinstance(count, int) else 0
        table.add_row(cell(channel), *(cell(counts.get(column, 0)) for column in columns))
    table.add_row(Text("total", style="bold"),
                  *(Text(str(totals[column]), style="bold") for column in columns))
    console.print(table)


def channels_table(rows: list[dict[str, Any]], as_json: bool = False) -> None:
    """The channel tree: each channel indented under its parent, the rules all workers
    follow and where they come from (a rate with the starts of its window), and the
    jobs of its subtree (those that count against its capacity). ``as_json``: every
    field, the busiest keys of keyed and fair channels included."""
    if as_json:
        _json(rows)
        return
    table = Table(box=None, header_style="bold")
    for column in ("channel", "capacity", "options", "source", "running", "pending",
                   "failed"):
        table.add_column(column, justify="left" if column in ("channel", "options", "source")
                         else "right")
    for row in rows:
        options = ", ".join(filter(None, [
            "sequential" if row.get("sequential") else "",
            f"throttle {_number(row['throttle'], 'g', 's')}" if row.get("throttle") else "",
            f"removal {_number(row['removal_interval'], 'g', 'd')}"
            if row.get("removal_interval") is not None else "",
            _rate(row),
            f"key capacity {plain(row['key_capacity'])}"
            if row.get("key_capacity") is not None else "",
            "fair" if row.get("fair") else "",
            "paused" if row.get("paused") else "",
            f"paused by {plain(row['paused_by'])}" if row.get("paused_by") else "",
            "not a channel name" if row.get("bad_name") else "",
            plain(row["problem"]) if row.get("problem") else ""]))
        if not row.get("configured", True) and row.get("name") != "root":
            capacity = Text("-")  # runs within its nearest configured ancestor
        elif row.get("capacity") is None:
            capacity = Text("unlimited")
        else:
            capacity = cell(row["capacity"])
        indent = "  " * (row.get("depth") or 0) if isinstance(row.get("depth"), int) else ""
        table.add_row(Text(indent + plain(row.get("name"))), capacity,
                      Text(options), Text(_rule_source(row)), cell(row.get("running")),
                      cell(row.get("pending")), cell(row.get("failed")))
    console.print(table)


def _rate(row: dict[str, Any]) -> str:
    """``rate 100/m (37 used)``: a channel's rate and the starts of its window."""
    if not row.get("rate"):
        return ""
    used = row.get("rate_used")
    return f"rate {plain(row['rate'])}" + (
        f" ({plain(used)} used)" if used is not None else "")


def _rule_source(row: dict[str, Any]) -> str:
    """``stored``, or ``workers`` (how many declare it), and who disagrees."""
    source, declared = row.get("source"), row.get("declared_by") or []
    if source not in ("stored", "workers"):
        return ""
    out = "stored" if source == "stored" else f"--channels of {len(declared)} worker(s)"
    disagreeing = row.get("disagreeing") or []
    if disagreeing:
        out += "; differs: " + ", ".join(plain(worker) for worker in disagreeing)
    return out


def listing(rows: list[dict[str, Any]], as_json: bool, empty: str, columns: Sequence[str],
            cells: Callable[[dict[str, Any]], Sequence[Text]],
            right: Sequence[str] = ()) -> None:
    """Rows as JSON, or as a table of ``columns`` (each row's ``cells``), or ``empty``."""
    if as_json:
        _json(rows)
        return
    if not rows:
        click.echo(empty)
        return
    table = Table(box=None, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True,
                         justify="right" if column in right else "left")
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)


def workers_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Workers by host, then by supervisor (the processes of one ``worker --processes``
    together; a worker alone is its own group), live ones first within a group; each
    with the connections it may hold. ``--json``: the rows as they are."""
    listeners = {"own": "listener", "shared": "shared listener", "none": "no listener"}

    def connections(row: dict[str, Any]) -> str:
        """``1 + listener + up to K`` (its own connection, how it is woken, its jobs'
        K); blank for a row that does not say (a worker of an older queuejob)."""
        listener, most = row.get("listener"), row.get("job_connections")
        if listener is None and most is None:
            return ""
        how = listeners.get(listener, "") if isinstance(listener, str) else ""
        return f"1 + {how or plain(listener) or '?'} + up to {plain(most) or '?'}"

    def ordered(value: Any) -> tuple[int, float, str]:
        """A sort key for a stored value of any type: numbers by value, else text."""
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and not (isinstance(value, float) and math.isnan(value)):
            return 0, float(value), ""
        return 1, 0.0, plain(value)

    def group(row: dict[str, Any]) -> tuple[str, tuple[int, float, str]]:
        supervisor = row.get("supervisor_pid")
        return plain(row.get("hostname")), ordered(
            row.get("pid") if supervisor is None else supervisor)

    listing(rows if as_json else sorted(rows, key=group), as_json, "no workers",
            ("worker", "state", "host", "pid", "supervisor", "connections", "heartbeat age",
             "running", "channels", "started"),
            lambda row: (cell(row.get("id")),
                         cell(row.get("state"),
                              _style_of(WORKER_STYLE, row.get("state"), "dim")),
                         cell(row.get("hostname")), cell(row.get("pid")),
                         cell(row.get("supervisor_pid")), Text(connections(row)),
                         Text(_number(row.get("heartbeat_age"), ".1f", "s")),
                         cell(row.get("running")), cell(row.get("channels")),
                         cell(row.get("date_started"))))


def subscriptions_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Subscriptions to failures; a stored one that does not make sense says why."""
    listing(rows, as_json, "no subscriptions",
            ("id", "channel", "function", "sends to", "target", "problem"),
            lambda row: (cell(row.get("id")), cell(row.get("channel") or "(all)"),
                         cell(row.get("func_name") or "(all)"), cell(row.get("target_kind")),
                         cell(row.get("target")),
                         cell(row.get("problem") or "", "red")))


def with_progress(label: str, total: int, work: Callable[[Callable[[int], None]], T]) -> T:
    """``work(advance)`` with a progress bar on stderr that ``advance(n)`` moves."""
    from rich.progress import Progress
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        return work(lambda count: progress.advance(task, count))


def failures_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    """Failed jobs per exception, the most frequent first."""
    listing(rows, as_json, "no failed jobs",
            ("exception", "failed jobs", "last failure", "last hour", "last 24 h"),
            lambda row: (cell(row.get("exc_name") or "(none)"), cell(row.get("jobs")),
                         cell(row.get("last_failed")), cell(row.get("last_hour")),
                         cell(row.get("last_day"))),
            right=("failed jobs", "last hour", "last 24 h"))


def functions_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no job functions (pass --module to list a module's)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("function", "channel", "retry pattern", "timeout", "related action"):
        table.add_column(column, no_wrap=True)
    mark = " (set)"
    for row in rows:
        retry_pattern = row.get("retry_pattern") or {}
        pattern = ", ".join(f"{plain(count)}: {_number(delay, 'g', 's')}" for count, delay in
                            sorted(retry_pattern.items(), key=lambda item: str(item[0]))) \
            or "-"
        table.add_row(
            Text(plain(row.get("name")) + ("" if row.get("registered") else " (not imported)")),
            Text((plain(row.get("channel")) or "-")
                 + (mark if row.get("channel_overridden") else "")),
            Text(pattern + (mark if row.get("retry_pattern_overridden") else "")),
            Text(_number(row["timeout"], "g", "s") if row.get("timeout") else "-"),
            Text((plain(row.get("related_action")) or
                  ("off" if row.get("related_action_overridden") else "-"))
                 + (mark if row.get("related_action_overridden") else "")))
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
    tree = Tree(Text(f"graph {plain(jobs[0].get('graph_uuid')) if jobs else ''}",
                     style="bold"))
    shown: set[str] = set()

    def label(job_uuid: str) -> Text:
        job = by_uuid.get(job_uuid)
        if job is None:
            return Text(f"{plain(job_uuid)} (another graph's job)")
        text = Text.assemble(styled(job.get("state")), " ", plain(str(job_uuid)[:8]), " ",
                             plain(job.get("func_name")))
        if job_uuid == mark:
            text.append(" ◀ this job", style="bold")
        return text

    def add(node: Any, job_uuid: str) -> None:
        if job_uuid in shown:
            node.add(label(job_uuid).append(" (above)", style="dim"))
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
