"""``queuejob`` commands. Bad input is one line on stderr and a non-zero exit.

What a stored row holds and what a person types is data: it is printed with its control
characters escaped (``queuejob.core.text.printable``) and never read as markup. Only
``worker``, ``migrate`` and ``demo`` create or update the queue's tables; every other
command opens the database as it is and refuses, in one line, one that holds no queue
or a queue of another schema version.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .. import operations
from ..core import states
from ..core.channels import GRAMMAR, parse_channels
from ..operations import default_user
from ..store import JobFilter
from . import batches, settings, web
from .common import Failure, db_option, friendly, open_db, safe_line
from .logs import configure as configure_logs
from .logs import log_format_option
from .schedules import register as register_schedules


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="queuejob")
def cli() -> None:
    """queuejob: database-backed jobs with channels, retries and identity keys.

    Only worker, migrate and demo create or update the queue's tables; the other
    commands refuse a database without a queue of this queuejob's schema."""


# -- worker -----------------------------------------------------------------------------
@cli.command()
@db_option
@click.option("--channels", default="",
              help="Channel rules for all workers while this one runs (stored rules "
                   f"win): {GRAMMAR}; e.g. root:4,root.export:1,root.crm:0:rate=100/m.")
@click.option("--concurrency", type=click.IntRange(0, 10_000), default=None,
              help="Jobs this process runs at once (0: none) [default: root's capacity "
                   "in --channels, else 4].")
@click.option("--module", "modules", multiple=True, required=True, metavar="MODULE",
              help="Module with @job functions (repeatable). Only these run.")
@click.option("--burst", is_flag=True, help="Return when nothing is runnable.")
@click.option("--grace", type=float, default=30.0, show_default=True,
              help="Seconds running jobs get to finish after SIGTERM/Ctrl-C.")
@click.option("--heartbeat", type=float, default=5.0, show_default=True,
              help="Seconds between heartbeats.")
@click.option("--dead-after", type=float, default=30.0, show_default=True,
              help="A worker silent this long is dead; its jobs are rescued.")
@click.option("--rescue-interval", type=float, default=10.0, show_default=True,
              help="Seconds between looks for dead workers' jobs.")
@click.option("--poll", type=float, default=3.0, show_default=True,
              help="Seconds between looks for due jobs when no notification arrives "
                   "(jobs whose eta came; every new job with --no-listen).")
@click.option("--listen-url", envvar="QUEUEJOB_LISTEN_URL", default=None, metavar="URL",
              help="PostgreSQL: where to LISTEN for new jobs, direct to the server or "
                   "through a session-mode pool, when --db goes through a pooler in "
                   "transaction mode [env QUEUEJOB_LISTEN_URL].")
@click.option("--no-listen", is_flag=True,
              help="Never LISTEN: find new jobs by polling every --poll seconds.")
@click.option("--job-connections", type=click.IntRange(1, 10_000), default=None,
              help="The most database connections the sessions of this process's jobs "
                   "hold at once [default: its job threads].")
@click.option("--processes", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes on this host under one supervisor (one LISTEN "
                   "connection for all).")
@click.option("--hostname", default=None, help="Host name recorded for this worker "
              "(default: the machine's).")
@click.option("--wait-for-db", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Seconds to keep trying at start-up while the database cannot be "
                   "reached (a server starting or restarting).")
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@log_format_option
@friendly
def worker(db_url: str | None, channels: str, concurrency: int | None,
           modules: tuple[str, ...], burst: bool, grace: float, heartbeat: float,
           dead_after: float, rescue_interval: float, poll: float, listen_url: str | None,
           no_listen: bool, job_connections: int | None, processes: int,
           hostname: str | None, wait_for_db: float, log_level: str,
           log_format: str) -> None:
    """Run jobs. Creates the queue's tables, or updates them, first."""
    configure_logs(log_format, log_level)
    from ..worker import Worker
    from ..worker.startup import import_job_modules, migrate_when_reachable
    from ..worker.wakeup import SUPERVISOR_PID_ENV, WAKE_FD_ENV
    # bad channels and modules fail before the database is opened (or created)
    parse_channels(channels)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    import_job_modules(modules)
    wake_fd = os.environ.get(WAKE_FD_ENV)
    supervisor_pid = os.environ.get(SUPERVISOR_PID_ENV)
    db = open_db(db_url, check=False, listen_url=listen_url)
    try:
        if listen_url and db.dialect != "postgresql":
            raise Failure("--listen-url (QUEUEJOB_LISTEN_URL) is for PostgreSQL: SQLite's "
                          "workers see other processes' commits without it")
        migrate_when_reachable(db, wait_for_db)
        if processes > 1:  # N worker processes under one supervisor, one listener
            from ..worker.supervisor import Supervisor, child_arguments
            raise click.exceptions.Exit(Supervisor(
                db, processes, child_arguments(sys.argv), grace=grace,
                listen=not no_listen).run())
        Worker(db, channels=channels, modules=modules, concurrency=concurrency,
               grace_period=grace,
               heartbeat_interval=heartbeat, dead_after=dead_after,
               rescue_interval=rescue_interval, poll_interval=poll,
               hostname=hostname, listen=not no_listen,
               wake_fd=int(wake_fd) if wake_fd and wake_fd.isdigit() else None,
               job_connections=job_connections,
               supervisor_pid=int(supervisor_pid) if supervisor_pid and supervisor_pid.isdigit()
               else None).run(burst=burst)
    finally:
        db.close()


@cli.command()
@db_option
@friendly
def migrate(db_url: str | None) -> None:
    """Create the queue's tables, or update them to this queuejob's schema.

    The other commands, but worker and demo, never do: they refuse a database that
    holds no queue, or a queue of an older schema, and say to run this."""
    db = open_db(db_url, check=False)
    try:
        applied = db.migrate()
        latest = db.connector.latest_version
        moved = operations.move_history(db, progress=lambda moved, left: click.echo(
            f"moved {moved} finished job(s) into the history partition, about {left} "
            "to go"))
    finally:
        db.close()
    if moved:
        click.echo(f"moved {moved} finished job(s) into the history partition: done")
    if applied:
        click.echo(f"applied migration(s) {', '.join(map(str, applied))}: "
                   f"the queue is at schema version {latest}")
    else:
        click.echo(f"up to date: the queue is at schema version {latest}")


# -- jobs -------------------------------------------------------------------------------
state_choice = click.Choice([state.value for state in states.STATES])


@cli.command()
@db_option
@click.argument("job_uuid", required=False)
@click.option("--state", type=state_choice, help="Only jobs in this state.")
@click.option("--channel", help="Only jobs of this channel (and its subchannels).")
@click.option("--function", "func_name", help="Only jobs of this function (module.name).")
@click.option("--exception", "exc_name", metavar="MODULE.CLASS",
              help="Only jobs that failed with this exception (see 'queuejob failures').")
@click.option("--all", "show_all", is_flag=True, help="Include done and cancelled jobs.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@friendly
def jobs(db_url: str | None, job_uuid: str | None, state: str | None, channel: str | None,
         func_name: str | None, exc_name: str | None, show_all: bool, limit: int,
         as_json: bool) -> None:
    """List jobs, or show one job in full."""
    from . import output
    db = open_db(db_url)
    try:
        if job_uuid:
            row = operations.load_job(db, job_uuid)
            output.show_job(row, as_json, operations.job_logs(db, job_uuid))
            if row.get("graph_uuid") and not as_json:
                output.graph_tree(*operations.graph(db, row["graph_uuid"]), mark=row["uuid"])
            return
        page = operations.find_jobs(db, JobFilter(state=state, channel=channel,
                                                  func_name=func_name, exc_name=exc_name,
                                                  show_all=show_all), limit=limit)
        output.jobs_table(page.rows, as_json)
    finally:
        db.close()


#: the help of the commands that write: what they do with a database without a queue
WRITES_NO_SCHEMA = ("Never creates nor updates the queue's tables: a database without a "
                    "queue of this queuejob's schema (a mistyped --db, another "
                    "application's file) is refused and left as it is; 'queuejob "
                    "migrate' creates or updates the queue.")


def _action_command(action: str, help_text: str) -> click.Command:
    @click.command(name=action, help=f"{help_text}\n\n{WRITES_NO_SCHEMA}")
    @db_option
    @click.argument("uuids", nargs=-1)
    @click.option("--state", type=state_choice, help="Act on every job in this state.")
    @click.option("--channel", help="Act on every job of this channel (with --state/--function).")
    @click.option("--function", "func_name", help="Act on every job of this function.")
    @click.option("--user", default=default_user, show_default="login name",
                  help="Who acts (written in the job's result).")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation (filters).")
    @friendly
    def command(db_url: str | None, uuids: tuple[str, ...], state: str | None,
                channel: str | None, func_name: str | None, user: str, yes: bool) -> None:
        from . import output
        if uuids and (state or channel or func_name):
            raise Failure("give uuids or a filter (--state/--channel/--function), not both")
        if not uuids and not (state or channel or func_name):
            raise Failure("give one or more job uuids, or a filter "
                          "(--state/--channel/--function)")
        db = open_db(db_url)
        act = states.ACTIONS[action]
        try:
            if uuids:
                with db.session(context={"user": user}) as session:
                    done = operations.ACTIONS[action](session, *uuids)
                click.echo(f"{act.past} {len(done)} job(s)")
                return
            if state and state not in act.applies_to:
                raise Failure(f"cannot {act.verb} {state} jobs")
            filters = JobFilter(state=state, channel=channel, func_name=func_name)
            upto = operations.last_job_id(db)
            count = operations.count_matching(db, filters, action, upto)
            if not count:
                click.echo("no job matches")
                return
            if not yes and sys.stdin.isatty():
                click.confirm(f"{act.verb.capitalize()} {count} job(s)?", abort=True)
            changed, skipped = output.with_progress(
                act.past, count, lambda advance: operations.act_on_matching(
                    db, action, filters, user=user, upto=upto, progress=advance))
            click.echo(f"{act.past} {changed} job(s)" + (
                f"; {skipped} changed state meanwhile and were left alone" if skipped else ""))
        finally:
            db.close()
    return command


cli.add_command(_action_command(
    "requeue", "Put jobs back to pending (retry reset to 0): failed, unfinished, done or "
               "cancelled ones (as the successor's requeue), not those waiting for their "
               "parents."))
cli.add_command(_action_command("done", "Set pending, enqueued or failed jobs to done."))
cli.add_command(_action_command("cancel", "Cancel pending, enqueued or failed jobs."))


def parse_eta(text: str) -> Any:
    """``now``, ``+SECONDS`` (from now), or an ISO date and time (UTC unless it says)."""
    import datetime as dt
    text = text.strip()
    if text == "now":
        return None
    if text.startswith("+"):
        try:
            return float(text[1:])
        except ValueError:
            raise Failure(f"bad eta {text!r}: +SECONDS, now, or 2026-12-24T10:00") from None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise Failure(f"bad eta {text!r}: +SECONDS, now, or 2026-12-24T10:00") from None


@cli.command()
@db_option
@click.argument("uuids", nargs=-1)
@click.option("--set-priority", "priority", type=int, help="The new priority.")
@click.option("--set-eta", "eta", metavar="WHEN",
              help="The new eta: now, +SECONDS, or an ISO date and time (UTC unless it "
                   "says).")
@click.option("--set-channel", "new_channel", metavar="CHANNEL", help="The new channel.")
@click.option("--state", type=click.Choice(sorted(str(s) for s in states.EDITABLE)),
              help="Edit every job in this state (with --channel/--function).")
@click.option("--channel", help="Edit every job of this channel (and its subchannels).")
@click.option("--function", "func_name", help="Edit every job of this function.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (filters).")
@friendly
def edit(db_url: str | None, uuids: tuple[str, ...], priority: int | None, eta: str | None,
         new_channel: str | None, state: str | None, channel: str | None,
         func_name: str | None, yes: bool) -> None:
    """Change the priority, eta or channel of jobs that have not started.

    By uuids (all or none: one that has started refuses the call), or every pending or
    waiting job matching a filter. Never creates nor updates the queue's tables."""
    from .. import store
    from . import output
    if uuids and (state or channel or func_name):
        raise Failure("give uuids or a filter (--state/--channel/--function), not both")
    if not uuids and not (state or channel or func_name):
        raise Failure("give one or more job uuids, or a filter (--state/--channel/--function)")
    changes: dict[str, Any] = {"priority": priority, "channel": new_channel}
    if eta is not None:
        changes["eta"] = parse_eta(eta)
    db = open_db(db_url)
    try:
        if uuids:
            with db.session() as session:
                done = operations.edit(session, *uuids, **changes)
            click.echo(f"edited {len(done)} job(s)")
            return
        filters = store.JobFilter(state=state, channel=channel, func_name=func_name)
        upto = operations.last_job_id(db)
        count = operations.count_matching(db, filters, "edit", upto)
        if not count:
            click.echo("no job matches")
            return
        if not yes and sys.stdin.isatty():
            click.confirm(f"Edit {count} job(s)?", abort=True)
        changed, skipped = output.with_progress("edited", count, lambda advance: (
            operations.edit_matching(db, filters, upto=upto, progress=advance, **changes)))
        click.echo(f"edited {changed} job(s)" + (
            f"; {skipped} started meanwhile and were left alone" if skipped else ""))
    finally:
        db.close()


AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``: seconds."""
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    try:
        seconds = float(value) * AGE_UNITS[unit]
    except (KeyError, ValueError):
        raise Failure(f"bad age {safe_line(text)!r}: a number and a unit, e.g. 90s, 30m, "
                      "12h, 7d") from None
    if not 0 <= seconds < 1e11:
        raise Failure(f"bad age {safe_line(text)!r}: 0 or more, under 3,000 years")
    return seconds


@cli.command()
@db_option
@click.option("--older-than", "older_than", metavar="AGE",
              help="Only jobs finished more than this long ago: 90s, 30m, 12h, 7d.")
@click.option("--channel", help="Only jobs of this channel (and its subchannels).")
@click.option("--function", "func_name", help="Only jobs of this function (module.name).")
@click.option("--state", type=click.Choice(["done", "cancelled"]),
              help="Only done, or only cancelled, jobs (default: both).")
@click.option("--dry-run", is_flag=True, help="Count them, remove nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def purge(db_url: str | None, older_than: str | None, channel: str | None,
          func_name: str | None, state: str | None, dry_run: bool, yes: bool) -> None:
    """Remove finished (done and cancelled) jobs now, with their logs: counted first,
    then removed a thousand per transaction, pausing between batches (15% of the
    time removing) so that workers keep the database. Failed and unfinished jobs are never
    removed. The workers remove each channel's finished jobs after its removal interval
    anyway; this is for the history you want gone sooner."""
    from . import output
    # an empty --older-than is a bad age, not no age at all
    age = 0.0 if older_than is None else parse_age(older_than)
    criteria = operations.Purge(older_than=age, channel=channel, func_name=func_name,
                                state=state)
    db = open_db(db_url)
    try:
        count = operations.count_purgeable(db, criteria)
        click.echo(f"{count} finished job(s) match")
        if not count or dry_run:
            return
        if not yes and sys.stdin.isatty():
            click.confirm(f"Remove {count} job(s)?", abort=True)
        removed = output.with_progress("removed", count, lambda advance: (
            operations.purge_jobs(db, criteria, progress=advance)))
        click.echo(f"removed {removed} job(s)")
    finally:
        db.close()


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def failures(db_url: str | None, as_json: bool) -> None:
    """Failed jobs grouped by the exception they failed with, the most frequent first."""
    from . import output
    db = open_db(db_url)
    try:
        output.failures_table(operations.failures_by_exception(db), as_json)
    finally:
        db.close()


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def stats(db_url: str | None, as_json: bool) -> None:
    """Jobs per channel and state (reads only: never creates nor updates the queue)."""
    from . import output
    db = open_db(db_url)
    try:
        output.stats_table(operations.stats(db), as_json)
    finally:
        db.close()


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True)
@friendly
def workers(db_url: str | None, as_json: bool) -> None:
    """Live and dead workers."""
    from . import output
    db = open_db(db_url)
    try:
        output.workers_table(operations.workers(db), as_json)
    finally:
        db.close()


@cli.command()
@click.option("--db", "db_url", default=None, metavar="URL",
              help="Database (default: a fresh queuejob-demo.db in this folder).")
@click.option("--jobs", "count", type=click.IntRange(10, 1_000_000), default=3000,
              show_default=True)
@click.option("--workers", "processes", type=click.IntRange(1, 16), default=2,
              show_default=True, help="Worker processes.")
@friendly
def demo(db_url: str | None, count: int, processes: int) -> None:
    """Enqueue a few thousand jobs over several channels and run them."""
    from .demo import run_demo
    run_demo(db_url, count, processes)


def main() -> None:
    try:
        cli.main(prog_name="queuejob", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("queuejob: aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        # one line, as for every other bad input (click would print the usage too)
        command = exc.ctx.command_path if exc.ctx else "queuejob"
        click.echo(f"queuejob: error: {safe_line(exc.format_message())} "
                   f"(see '{command} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


web.register(cli)  # queuejob web, queuejob metrics
settings.register(cli)  # queuejob channels, functions, subscriptions
register_schedules(cli)  # queuejob schedules
batches.register(cli)  # queuejob batches
