"""``queuejob schedules``: periodic jobs defined at run time, in the database (all
workers, no restart): list, add, edit, pause, resume, remove, run (now).

A schedule runs a job function registered with ``@job`` in the workers' modules, and
nothing else: a schedule naming a function no worker registers runs nothing. None of
these commands creates nor updates the queue's tables ('queuejob migrate' does).
"""

from __future__ import annotations

from typing import Any

import click

from .. import operations
from ..core.schedules import MISSED_POLICIES, window_text
from .common import Failure, db_option, friendly, open_db, safe_line

_MODULES = click.option("--module", "modules", multiple=True, metavar="MODULE",
                        help="Import this module first: its job functions (repeatable).")


def _definition_options(func: Any) -> Any:
    for option in reversed((
        click.option("--cron", metavar="EXPR",
                     help="Cron expression: 5 fields (minute hour day month weekday), or 6 "
                          "with seconds last."),
        click.option("--function", "function", metavar="MODULE.NAME",
                     help="The job function (registered with @job in the workers' "
                          "modules)."),
        click.option("--args", metavar="JSON",
                     help="Positional arguments, a JSON list (the model name first, by "
                          "convention)."),
        click.option("--kwargs", metavar="JSON", help="Keyword arguments, a JSON object."),
        click.option("--channel", help="Channel of its jobs (default: the function's)."),
        click.option("--timezone", metavar="ZONE",
                     help="Time zone the cron expression is read in (IANA name; "
                          "default UTC)."),
        click.option("--missed", type=click.Choice(MISSED_POLICIES),
                     help="Slots missed while no worker ran: skip them, run once (the "
                          "default), or run all (within --missed-window)."),
        click.option("--missed-window", "missed_window", type=float, metavar="SECONDS",
                     help="How late a slot may still run (skip: default 60; all: default "
                          "no limit)."),
    )):
        func = option(func)
    return func


def _open(ctx: click.Context, db_url: str | None) -> operations.Database:
    return open_db(db_url or (ctx.obj or {}).get("db_url"))


def _import(modules: tuple[str, ...]) -> None:
    if modules:
        from ..worker.startup import import_job_modules
        import_job_modules(modules)


def _summary(entry: dict[str, Any]) -> str:
    parts = [f"cron {entry.get('cron')}", f"in {entry.get('timezone')}",
             f"function {entry.get('func_name')}"]
    if entry.get("channel"):
        parts.append(f"channel {entry.get('channel')}")
    missed = f"missed {entry.get('missed')}"
    window = entry.get("missed_window")
    if isinstance(window, float):
        missed += f" within {window_text(window)}"
    parts.append(missed)
    if entry.get("paused"):
        parts.append("paused")
    text = f"schedule {entry.get('name')}: " + ", ".join(str(part) for part in parts)
    if entry.get("problem"):
        text += f" (note: {entry['problem']})"
    return safe_line(text)


def schedules_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    """The run-time schedules (their arguments and last slot: --json)."""
    from .output import cell, listing
    listing(rows, as_json, "no schedules defined at run time (queuejob schedules add)",
            ("name", "cron", "time zone", "function", "channel", "missed", "state",
             "next run", "problem"),
            lambda row: (
                cell(row.get("name")), cell(row.get("cron")), cell(row.get("timezone")),
                cell(row.get("func_name")),
                cell(row.get("channel") or "-"),
                cell(f"{row.get('missed')}"
                     + (f" {window_text(row['missed_window'])}"
                        if isinstance(row.get("missed_window"), float) else "")),
                cell(("paused" if row.get("paused") is True else "active")
                     + (", run requested" if row.get("run_requested") else ""),
                     "yellow" if row.get("paused") is True else ""),
                cell(row.get("next_run") or "-"),
                cell(row.get("problem") or "", "red")))


@click.group(invoke_without_command=True)
@db_option
@click.option("--json", "as_json", is_flag=True)
@_MODULES
@click.pass_context
@friendly
def schedules(ctx: click.Context, db_url: str | None, as_json: bool,
              modules: tuple[str, ...]) -> None:
    """Periodic jobs defined at run time (all workers, no restart): list, add, edit,
    pause, resume, remove, run. Each slot gives one job across all workers; a schedule
    runs only a job function the workers register with @job (pass --module to see
    whether it is registered: the list names the ones this command does not know)."""
    ctx.obj = {"db_url": db_url}
    if ctx.invoked_subcommand is None:
        _import(modules)
        db = open_db(db_url)
        try:
            schedules_table(operations.run_time_schedules(db), as_json)
        finally:
            db.close()


@schedules.command("add")
@db_option
@click.argument("name")
@_definition_options
@click.option("--paused", is_flag=True, help="Add it paused.")
@_MODULES
@click.pass_context
@friendly
def schedules_add(ctx: click.Context, db_url: str | None, name: str, cron: str | None,
                  function: str | None, args: str | None, kwargs: str | None,
                  channel: str | None, timezone: str | None, missed: str | None,
                  missed_window: float | None, paused: bool, modules: tuple[str, ...]
                  ) -> None:
    """Add a schedule: a job of --function at every slot of --cron, from its next slot."""
    if not cron:
        raise Failure("--cron is needed (e.g. --cron '*/5 * * * *')")
    if not function:
        raise Failure("--function is needed (a job function's module.name)")
    _import(modules)
    db = _open(ctx, db_url)
    try:
        entry = operations.add_schedule(
            db, name, cron=cron, function=function, args=args or "[]",
            kwargs=kwargs or "{}", channel=channel or None, timezone=timezone or "UTC",
            missed=missed or "once", missed_window=missed_window, paused=paused)
    finally:
        db.close()
    click.echo(_summary(entry) + " (added)")


@schedules.command("edit")
@db_option
@click.argument("name")
@_definition_options
@click.option("--function-channel", "function_channel", is_flag=True,
              help="Its jobs go to the function's channel again.")
@click.option("--no-missed-window", "no_window", is_flag=True,
              help="Remove the missed-run window.")
@_MODULES
@click.pass_context
@friendly
def schedules_edit(ctx: click.Context, db_url: str | None, name: str, cron: str | None,
                   function: str | None, args: str | None, kwargs: str | None,
                   channel: str | None, timezone: str | None, missed: str | None,
                   missed_window: float | None, function_channel: bool, no_window: bool,
                   modules: tuple[str, ...]) -> None:
    """Change a schedule (the values not given keep what is stored). A new cron
    expression or time zone starts from its next slot."""
    changes: dict[str, Any] = {key: value for key, value in (
        ("cron", cron), ("function", function), ("args", args), ("kwargs", kwargs),
        ("channel", channel), ("timezone", timezone), ("missed", missed),
        ("missed_window", missed_window)) if value is not None}
    for flag, key, label in ((function_channel, "channel", "--channel"),
                             (no_window, "missed_window", "--missed-window")):
        if flag:
            if key in changes:
                raise Failure(f"give {label} or reset it, not both")
            changes[key] = None
    if not changes:
        raise Failure("nothing to edit: give --cron, --function, --args, --kwargs, "
                      "--channel, --timezone, --missed or --missed-window")
    _import(modules)
    db = _open(ctx, db_url)
    try:
        entry = operations.edit_schedule(db, name, **changes)
    finally:
        db.close()
    click.echo(_summary(entry) + " (edited)")


def _simple(command: str, operation: Any, done: str, help_text: str) -> None:
    @schedules.command(command, help=help_text)
    @db_option
    @click.argument("name")
    @click.pass_context
    @friendly
    def run(ctx: click.Context, db_url: str | None, name: str) -> None:
        db = _open(ctx, db_url)
        try:
            operation(db, name)
        finally:
            db.close()
        click.echo(safe_line(f"schedule {name}: {done}"))


_simple("pause", operations.pause_schedule, "paused",
        "Pause a schedule: its slots give no job until it is resumed.")
_simple("resume", operations.resume_schedule, "resumed (from its next slot)",
        "Resume a schedule from its next slot (the slots of the pause never run).")
_simple("remove", operations.remove_schedule, "removed",
        "Remove a schedule (the jobs it delayed stay).")
_simple("run", operations.run_schedule_now,
        "run requested (a worker that registers its function delays the job within a "
        "second or so)",
        "Run a schedule now, paused or not: a worker that registers its function delays "
        "one job.")


def register(cli: click.Group) -> None:
    cli.add_command(schedules)
