"""The settings every worker of a database follows, stored in it: ``queuejob channels``,
``queuejob functions`` and ``queuejob subscriptions`` (each lists, sets and removes).

None of them creates nor updates the queue's tables ('queuejob migrate' does).
"""

from __future__ import annotations

from typing import Any

import click

from .. import operations
from ..core.channels import MAX_CAPACITY, format_rate, parse_rate
from .common import Failure, db_option, friendly, open_db, safe_line


# -- channels ---------------------------------------------------------------------------
@click.group(invoke_without_command=True)
@db_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def channels(ctx: click.Context, db_url: str | None, as_json: bool) -> None:
    """Global channel configuration (all workers): list, set, delete. The list shows
    the rules that apply and where they come from, each rate with the starts of its
    window, and the busiest keys of keyed and fair channels (--json)."""
    ctx.obj = {"db_url": db_url}
    if ctx.invoked_subcommand is None:
        from . import output
        db = open_db(db_url)
        try:
            output.channels_table(operations.channels(db), as_json)
        finally:
            db.close()


@channels.command("set")
@db_option
@click.argument("name")
@click.argument("capacity", type=click.IntRange(min=1), required=False)
@click.option("--sequential", is_flag=True, help="One job at a time, blocked by a failed job.")
@click.option("--throttle", type=click.FloatRange(min=0), default=0.0,
              help="At most one job started every N seconds.")
@click.option("--removal-interval", type=click.FloatRange(min=0), default=None,
              help="Days done jobs are kept (default 30).")
@click.option("--paused", is_flag=True, help="Start no job of this channel.")
@click.option("--rate", metavar="N/s|m|h",
              help="At most N jobs started per second, minute or hour (e.g. 100/m).")
@click.option("--key-capacity", "key_capacity", type=click.IntRange(1, MAX_CAPACITY),
              default=None, metavar="N",
              help="At most N running jobs per concurrency key.")
@click.option("--fair", is_flag=True, help="The concurrency keys take turns.")
@click.pass_context
@friendly
def channels_set(ctx: click.Context, db_url: str | None, name: str, capacity: int | None,
                 sequential: bool, throttle: float, removal_interval: float | None,
                 paused: bool, rate: str | None, key_capacity: int | None,
                 fair: bool) -> None:
    """Set a channel's global capacity and options (the options not given are reset).

    Never creates nor updates the queue's tables ('queuejob migrate' does)."""
    parsed = None
    if rate is not None:
        try:
            parsed = parse_rate(rate)
        except ValueError:  # ConfigurationError; int() of thousands of digits
            raise Failure(f"bad --rate {safe_line(rate[:80])!r}: N/s, N/m or N/h is "
                          "needed (e.g. 100/m)") from None
    db = open_db(db_url or ctx.obj["db_url"])
    try:
        spec = operations.set_channel(db, name, capacity, sequential=sequential,
                                      throttle=throttle, removal_interval=removal_interval,
                                      paused=paused, rate=parsed,
                                      key_capacity=key_capacity, fair=fair)
        click.echo(f"channel {safe_line(spec.name)}: capacity "
                   f"{spec.capacity if spec.capacity is not None else 'unlimited'}"
                   + (", sequential" if spec.sequential else "")
                   + (f", throttle {spec.throttle:g}s" if spec.throttle else "")
                   + (f", rate {format_rate(spec.rate)}" if spec.rate else "")
                   + (f", key capacity {spec.key_capacity}"
                      if spec.key_capacity is not None else "")
                   + (", fair" if spec.fair else "")
                   + (", paused" if spec.paused else ""))
    finally:
        db.close()


@channels.command("delete")
@db_option
@click.argument("name")
@click.pass_context
@friendly
def channels_delete(ctx: click.Context, db_url: str | None, name: str) -> None:
    """Remove a channel's global configuration.

    Never creates nor updates the queue's tables ('queuejob migrate' does)."""
    db = open_db(db_url or ctx.obj["db_url"])
    try:
        operations.delete_channel(db, name)
    finally:
        db.close()


@click.group(invoke_without_command=True)
@db_option
@click.option("--module", "modules", multiple=True, metavar="MODULE",
              help="Import this module to list its @job functions (repeatable).")
@click.pass_context
@friendly
def functions(ctx: click.Context, db_url: str | None, modules: tuple[str, ...]) -> None:
    """Job functions: their channel and retry pattern (set, reset)."""
    ctx.obj = {"db_url": db_url}
    if ctx.invoked_subcommand is None:
        from ..worker.startup import import_job_modules
        from . import output
        import_job_modules(modules)
        db = open_db(db_url)
        try:
            output.functions_table(operations.functions(db))
        finally:
            db.close()


@functions.command("set")
@db_option
@click.argument("name")
@click.option("--module", "modules", multiple=True, metavar="MODULE",
              help="Import this module first: its job functions and related actions "
                   "(repeatable).")
@click.option("--channel", help="Channel of the function's jobs delayed from now on.")
@click.option("--retry-pattern", "retry_pattern",
              help="Retry pattern: '1: 60, 5: 300, 10: 30-45' (retry count: seconds, or a "
                   "random delay within low-high), or the same as JSON.")
@click.option("--related-action", "related", metavar="ACTION",
              help="The related action: 'off', 'on' (the decorator's), or a registered "
                   "related action's module.name.")
@click.option("--related-action-kwargs", "related_kwargs", metavar="JSON",
              help="Keyword arguments of the related action, as a JSON object.")
@click.option("--reset", is_flag=True, help="Every setting back to the decorator's.")
@click.option("--reset-channel", is_flag=True, help="The channel back to the decorator's.")
@click.option("--reset-retry-pattern", is_flag=True,
              help="The retry pattern back to the decorator's.")
@click.option("--reset-related-action", is_flag=True,
              help="The related action back to the decorator's.")
@click.pass_context
@friendly
def functions_set(ctx: click.Context, db_url: str | None, name: str, modules: tuple[str, ...],
                  channel: str | None, retry_pattern: str | None, related: str | None,
                  related_kwargs: str | None, reset: bool, reset_channel: bool,
                  reset_retry_pattern: bool, reset_related_action: bool) -> None:
    """Change settings of a job function (all workers, no restart); the settings not
    named keep what is stored. Unknown function names are refused.

    Never creates nor updates the queue's tables ('queuejob migrate' does)."""
    import json

    from ..operations import UNCHANGED
    from ..worker.startup import import_job_modules
    import_job_modules(modules)
    changes: dict[str, Any] = {}
    if channel is not None:
        changes["channel"] = channel
    if retry_pattern is not None:
        from ..core.retry import parse_retry_pattern
        changes["retry_pattern"] = parse_retry_pattern(retry_pattern)
    if related is not None or related_kwargs is not None:
        setting: dict[str, Any] = {"enable": related != "off"}
        if related not in (None, "on", "off"):
            setting["func_name"] = related
        if related_kwargs is not None:
            try:
                setting["kwargs"] = json.loads(related_kwargs)
            except ValueError:
                raise Failure(f"bad --related-action-kwargs {safe_line(related_kwargs)!r}: "
                              "a JSON object is needed") from None
        changes["related_action"] = setting
    resets = {"channel": reset or reset_channel, "retry_pattern": reset or reset_retry_pattern,
              "related_action": reset or reset_related_action}
    for key in (key for key, wanted in resets.items() if wanted):
        if key in changes:
            raise Failure(f"give --{key.replace('_', '-')} or reset it, not both")
        changes[key] = None
    if not changes:
        raise Failure("give --channel, --retry-pattern, --related-action or --reset")
    db = open_db(db_url or ctx.obj["db_url"])
    try:
        operations.set_function(db, name, **{key: changes.get(key, UNCHANGED)
                                            for key in changes})
    finally:
        db.close()
    click.echo(f"function {safe_line(name)}: " + ", ".join(
        f"{key.replace('_', ' ')} {'reset' if value is None else 'set'}"
        for key, value in changes.items()))


# -- subscriptions to failures -------------------------------------------------------------
@click.group(invoke_without_command=True)
@db_option
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def subscriptions(ctx: click.Context, db_url: str | None, as_json: bool) -> None:
    """Subscriptions to failures (all workers): list, add, remove. When a job fails for
    good, each matching subscription POSTs it to a webhook as JSON, or delays a job of
    a job function of yours with the failed job's uuid."""
    ctx.obj = {"db_url": db_url}
    if ctx.invoked_subcommand is None:
        from . import output
        db = open_db(db_url)
        try:
            output.subscriptions_table(operations.subscriptions(db), as_json)
        finally:
            db.close()


@subscriptions.command("add")
@db_option
@click.option("--channel", help="Jobs of this channel and its subchannels (default: all).")
@click.option("--function", "func_name", metavar="MODULE.NAME",
              help="Jobs of this job function (default: all).")
@click.option("--webhook", metavar="URL", help="POST each failure to this http(s) URL.")
@click.option("--job", "job_target", metavar="MODULE.NAME",
              help="Delay a job of this job function with the failed job's uuid.")
@click.option("--module", "modules", multiple=True, metavar="MODULE",
              help="Import this module first: its job functions (repeatable).")
@click.pass_context
@friendly
def subscriptions_add(ctx: click.Context, db_url: str | None, channel: str | None,
                      func_name: str | None, webhook: str | None, job_target: str | None,
                      modules: tuple[str, ...]) -> None:
    """Subscribe to the failures of a channel's jobs, of a job function's, or of all."""
    from ..worker.startup import import_job_modules
    import_job_modules(modules)
    db = open_db(db_url or ctx.obj["db_url"])
    try:
        subscription_id = operations.add_subscription(
            db, channel=channel, func_name=func_name, webhook=webhook, job=job_target)
    finally:
        db.close()
    click.echo(f"subscription {subscription_id} added")


@subscriptions.command("remove")
@db_option
@click.argument("subscription_id", metavar="ID", type=click.IntRange(min=1))
@click.pass_context
@friendly
def subscriptions_remove(ctx: click.Context, db_url: str | None, subscription_id: int
                         ) -> None:
    """Remove a subscription."""
    db = open_db(db_url or ctx.obj["db_url"])
    try:
        operations.remove_subscription(db, subscription_id)
    finally:
        db.close()
    click.echo(f"subscription {subscription_id} removed")


def register(cli: click.Group) -> None:
    for command in (channels, functions, subscriptions):
        cli.add_command(command)
