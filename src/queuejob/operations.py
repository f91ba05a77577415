"""Job operations for people: one function per user action, for the Python API, the
command line and the dashboard alike.

Manual actions (requeue, set done, cancel) by uuid or on every job matching a filter;
listings and one job in full; channels and job functions, read and configured;
statistics, workers and schedules. Each is one transaction through the store (writes) or
the read models (reads); the rules are in ``queuejob.core``.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .core import registry, related, removal
from .core import subscriptions as subscription_rules
from .core.channels import (
    ChannelSpec,
    ancestors,
    combine,
    format_rate,
    normalize_name,
    parse_rate,
)
from .core.cron import next_slot
from .core.errors import ConfigurationError, JobStateError, NoSuchJobError
from .core.job import check_priority, eta_parts
from .core.retry import Delay
from .core.rows import as_name, is_channel_name
from .core.text import describe
from .database import BaseSession, Database, Session, default_user
from .database import open as open_database
from .store import JOB_SORTS, JobFilter, JobPage
from .store.jobs import UNCHANGED
from .store.mapping import (
    channel_specs,
    declared_specs,
    spec_from_row,
    stored_related_action,
    stored_retry_pattern,
)
from .store.reads import INT64, LISTED_READ

if TYPE_CHECKING:
    from .aio import AsyncSession

__all__ = [
    "ACTIONS",
    "JOB_SORTS",
    "LISTED_READ",
    "UNCHANGED",
    "Database",
    "JobFilter",
    "JobPage",
    "Purge",
    "Session",
    "act_on_matching",
    "add_schedule",
    "add_subscription",
    "batch",
    "batches",
    "cancel",
    "cancel_async",
    "channels",
    "check_related_action",
    "count_matching",
    "count_purgeable",
    "default_user",
    "delete_channel",
    "edit",
    "edit_async",
    "edit_matching",
    "edit_schedule",
    "failures_by_exception",
    "find_jobs",
    "functions",
    "graph",
    "has_related_action",
    "job_channels",
    "job_function_names",
    "job_logs",
    "last_job_id",
    "load_job",
    "load_job_async",
    "metric_data",
    "move_history",
    "open_database",
    "pause_schedule",
    "purge_jobs",
    "queue_state",
    "related_action",
    "remove_schedule",
    "remove_subscription",
    "requeue",
    "requeue_async",
    "reset_function",
    "resume_schedule",
    "run_schedule_now",
    "run_time_schedule",
    "run_time_schedules",
    "running_jobs",
    "schedules",
    "set_channel",
    "set_done",
    "set_done_async",
    "set_function",
    "stats",
    "subscriptions",
    "throughput",
    "workers",
    "workers_alive",
]


# -- manual actions ---------------------------------------------------------------------------
def _user_of(session: BaseSession) -> str:
    user = session.context.get("user") if session.context else None
    if user:
        return str(user)
    if session.user_id is not None:
        return f"user {session.user_id}"
    return default_user()


def _change(action: str, session: Session, uuids: Sequence[str]) -> list[str]:
    if getattr(session, "is_async", False):
        raise TypeError(f"{action}() in a session of db.session_async(): await "
                        f"{_ASYNC_NAMES[action]}(session, ...) instead")
    return session.db.store.change_state(session.write_connection(), action, uuids,
                                         _user_of(session))


#: the asyncio form of each manual action
_ASYNC_NAMES = {"requeue": "requeue_async", "done": "set_done_async",
                "cancel": "cancel_async"}


async def _change_async(action: str, session: AsyncSession, uuids: Sequence[str]
                        ) -> list[str]:
    from .aio import check_session
    session = check_session(session, f"{_ASYNC_NAMES[action]}()")
    return await session.run(session.db.store.change_state_steps(action, uuids,
                                                                 _user_of(session)))


async def requeue_async(session: AsyncSession, *uuids: str) -> list[str]:
    """``requeue()`` in an asyncio session (``db.session_async()``)."""
    return await _change_async("requeue", session, uuids)


async def set_done_async(session: AsyncSession, *uuids: str) -> list[str]:
    """``set_done()`` in an asyncio session (``db.session_async()``)."""
    return await _change_async("done", session, uuids)


async def cancel_async(session: AsyncSession, *uuids: str) -> list[str]:
    """``cancel()`` in an asyncio session (``db.session_async()``)."""
    return await _change_async("cancel", session, uuids)


async def edit_async(session: AsyncSession, *uuids: str, priority: int | None = None,
                     eta: Any = UNCHANGED, channel: str | None = None) -> list[str]:
    """``edit()`` in an asyncio session (``db.session_async()``)."""
    from .aio import check_session
    session = check_session(session, "edit_async()")
    priority, channel = _edit_values(priority, eta, channel)
    return await session.run(session.db.store.edit_steps(uuids, priority=priority, eta=eta,
                                                         channel=channel))


def requeue(session: Session, *uuids: str) -> list[str]:
    """Put jobs back to pending, their retry reset to 0: failed, unfinished, and (as the
    successor) done or cancelled ones; not those waiting for their parents.

    All or nothing: a job in another state refuses the call (JobStateError).
    """
    return _change("requeue", session, uuids)


def set_done(session: Session, *uuids: str) -> list[str]:
    """Set pending, enqueued, failed or waiting jobs to done ("Manually set to done by
    <user>"), as the successor allows."""
    return _change("done", session, uuids)


def cancel(session: Session, *uuids: str) -> list[str]:
    """Cancel pending, enqueued, failed or waiting jobs ("Cancelled by <user>"); the jobs
    waiting below them whose parents are then all cancelled are cancelled too."""
    return _change("cancel", session, uuids)


def edit(session: Session, *uuids: str, priority: int | None = None,
         eta: Any = UNCHANGED, channel: str | None = None) -> list[str]:
    """Change the priority, eta (a datetime, seconds or a timedelta from now; None: due
    now) and channel of jobs that have not started (pending, or waiting for their
    parents). All or nothing: a job in another state refuses the call (JobStateError)."""
    if getattr(session, "is_async", False):
        raise TypeError("edit() in a session of db.session_async(): await "
                        "edit_async(session, ...) instead")
    priority, channel = _edit_values(priority, eta, channel)
    return session.db.store.edit(session.write_connection(), uuids, priority=priority,
                                 eta=eta, channel=channel)


def _edit_values(priority: int | None, eta: Any, channel: str | None
                 ) -> tuple[int | None, str | None]:
    """The edit's values checked by the core's rules (one line each when refused)."""
    if priority is not None:
        priority = check_priority(priority)
    if eta is not UNCHANGED and eta is not None:
        eta_parts(eta)
    if channel is not None:
        channel = normalize_name(channel)
    if priority is None and eta is UNCHANGED and channel is None:
        raise ConfigurationError("nothing to edit: give a priority, an eta or a channel")
    return priority, channel


def edit_matching(db: Database, filters: JobFilter, *, priority: int | None = None,
                  eta: Any = UNCHANGED, channel: str | None = None, upto: int | None = None,
                  chunk: int = 500, progress: Callable[[int], None] | None = None
                  ) -> tuple[int, int]:
    """``edit`` every job matching ``filters`` that has not started, up to job id
    ``upto``, a transaction per ``chunk`` jobs (a refused chunk, one job at a time).
    Returns (jobs changed, jobs skipped because they started meanwhile)."""
    priority, channel = _edit_values(priority, eta, channel)
    return _act_in_chunks(db, "edit", filters, upto, chunk, progress, functools.partial(
        edit, priority=priority, eta=eta, channel=channel))


ACTIONS: dict[str, Callable[..., list[str]]] = {
    "requeue": requeue, "done": set_done, "cancel": cancel}


def act_on_matching(db: Database, action: str, filters: JobFilter, *, user: str,
                    upto: int | None = None, chunk: int = 500,
                    progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Requeue, set done or cancel every job matching ``filters`` that the action applies
    to, up to job id ``upto`` (default: the newest job now), a transaction per ``chunk``
    jobs. A chunk that a job refuses (it changed state meanwhile, taken by a worker for
    instance) is done one job at a time, so that the others are not left undone.
    Returns (jobs changed, jobs skipped); ``progress`` is told of each chunk's size."""
    if action not in ACTIONS:
        raise ConfigurationError(f"unknown action {describe(action, 40)}")
    return _act_in_chunks(db, action, filters, upto, chunk, progress, ACTIONS[action],
                          context={"user": user})


def _act_in_chunks(db: Database, action: str, filters: JobFilter, upto: int | None,
                   chunk: int, progress: Callable[[int], None] | None,
                   act: Callable[..., list[str]],
                   context: dict[str, Any] | None = None) -> tuple[int, int]:
    if upto is None:
        upto = last_job_id(db)
    changed = skipped = after_id = 0
    while True:
        rows = db.read(functools.partial(_matching, db, filters, action, upto, after_id, chunk))
        if not rows:
            return changed, skipped
        after_id = rows[-1]["id"]
        uuids = [row["uuid"] for row in rows]
        try:
            with db.session(context=context) as session:
                changed += len(act(session, *uuids))
        except (JobStateError, NoSuchJobError):
            # all or nothing refused the chunk: one job at a time, skipping those that
            # left the states the action applies to (or whose stored uuid is not one)
            for one in uuids:
                try:
                    with db.session(context=context) as session:
                        changed += len(act(session, one))
                except (JobStateError, NoSuchJobError):
                    skipped += 1
        if progress is not None:
            progress(len(uuids))


def _matching(db: Database, filters: JobFilter, action: str, upto: int, after_id: int,
              limit: int, conn: Any) -> list[dict[str, Any]] | None:
    return db.reads.matching(conn, filters, action, upto=upto, after_id=after_id, limit=limit)


def count_matching(db: Database, filters: JobFilter, action: str | None = None,
                   upto: int | None = None) -> int:
    """Jobs matching ``filters`` (and that ``action`` applies to), up to job id ``upto``."""
    return db.read(lambda conn: db.reads.count(conn, filters, action, upto))


def last_job_id(db: Database) -> int:
    """The id of the newest job: actions on a filter act on the jobs up to it."""
    return db.read(db.reads.last_id)


# -- jobs --------------------------------------------------------------------------------------
def find_jobs(db: Database, filters: JobFilter | None = None, *, sort: str = "-created",
              after: str | None = None, before: str | None = None, limit: int = 50
              ) -> JobPage:
    """One page of the jobs matching ``filters`` in ``sort`` order (keyset pagination:
    ``after``/``before`` are cursors of JobPage.next/previous). Each text of a row is
    read up to LISTED_READ characters (the exception: its last ones), never whole."""
    filters = filters or JobFilter()
    return db.read(lambda conn: db.reads.page(conn, filters, sort=sort, after=after,
                                              before=before, limit=limit))


def load_job(db: Database, job_uuid: str) -> dict[str, Any]:
    """A job's whole row; NoSuchJobError when there is none."""
    row = db.read(lambda conn: db.reads.load(conn, job_uuid))
    if row is None:
        raise NoSuchJobError(f"no job {job_uuid}")
    return row


async def load_job_async(db: Database, job_uuid: str) -> dict[str, Any]:
    """``load_job`` for asyncio code, without blocking the event loop."""
    row = await db.aio.read(db.store.load_steps(job_uuid))
    if row is None:
        raise NoSuchJobError(f"no job {job_uuid}")
    return row


def job_logs(db: Database, job_uuid: str) -> list[dict[str, Any]]:
    """What the job's last attempts logged, the last first (``JobReads.job_logs``)."""
    return db.read(lambda conn: db.reads.job_logs(conn, job_uuid))


def graph(db: Database, graph_uuid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The jobs of a job graph (texts read up to LISTED_READ characters) and its
    (parent_uuid, child_uuid) edges."""
    return db.read(lambda conn: db.reads.graph(conn, graph_uuid))


def related_action(db: Database, job_uuid: str) -> Any:
    """The result of a job's related action: its decorator's, as the function's stored
    setting changes it (None when it has none, or its function is not registered in
    this process)."""
    from .storage import DatabaseJobStorage
    with db.session() as session:
        return DatabaseJobStorage(session).load(job_uuid).related_action(session)


def has_related_action(db: Database, func_name: str) -> bool:
    """Whether jobs of ``func_name`` have a related action here (a setting naming one
    this process has not registered counts: calling it says why)."""
    try:
        return db.related_action_of(func_name) is not None
    except ConfigurationError:
        return True


def running_jobs(db: Database, limit: int = 500) -> list[dict[str, Any]]:
    """Started jobs, the longest running first."""
    return db.read(lambda conn: db.reads.running(conn, limit))


def job_channels(db: Database) -> list[Any]:
    """The channels of unfinished jobs and the configured ones (as stored)."""
    return db.read(db.reads.job_channels)


def job_function_names(db: Database) -> list[Any]:
    """The job functions of unfinished jobs and of stored settings (as stored)."""
    return db.read(db.reads.job_functions)


# -- history ------------------------------------------------------------------------------------
#: finished jobs moved per transaction by move_history
MOVE_BATCH = 10_000


def move_history(db: Database, progress: Callable[[int, int], object] | None = None) -> int:
    """Move the finished jobs of a table from before PostgreSQL's history partition into
    it, a batch per transaction (resumable: what moved stays moved); how many moved.
    ``progress(moved so far, about how many left)`` after each batch. Nothing to do on
    SQLite, or once done."""
    total = 0
    estimate = db.read(db.store.legacy_history_left) or 0
    while True:
        moved = db.run(lambda conn: db.store.move_legacy_history(conn, MOVE_BATCH))
        if not moved:
            return total
        total += moved
        if progress is not None:
            progress(total, max(estimate - total, 0))


@dataclass(frozen=True)
class Purge:
    """Which finished jobs ``purge`` removes: finished more than ``older_than`` seconds
    ago, of ``channel`` (and its subchannels), of ``func_name``, in ``state`` (done or
    cancelled); None: any."""

    older_than: float = 0.0
    channel: str | None = None
    func_name: str | None = None
    state: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.older_than, int | float) and 0 <= self.older_than < 1e11):
            raise ConfigurationError("the age of the jobs to purge is a number of seconds, "
                                     "0 or more, under 3,000 years")
        if self.state not in (None, "done", "cancelled"):
            raise ConfigurationError(f"a purge removes done or cancelled jobs, not "
                                     f"{describe(self.state, 40)}")
        if self.channel is not None:
            object.__setattr__(self, "channel", normalize_name(self.channel))

    def criteria(self) -> dict[str, Any]:
        return {"older_than": float(self.older_than), "channel": self.channel,
                "func_name": self.func_name, "state": self.state}


def _purge_batch(db: Database, criteria: dict[str, Any], after: int, batch: int,
                 conn: Any) -> tuple[int, int | None]:
    return db.store.purge_batch(conn, criteria, after, batch)


def count_purgeable(db: Database, purge: Purge) -> int:
    """How many finished jobs ``purge_jobs`` would remove now."""
    return db.read(lambda conn: db.store.count_purgeable(conn, purge.criteria()))


def purge_jobs(db: Database, purge: Purge, batch: int = 1000,
               progress: Callable[[int], object] | None = None,
               duty: float = removal.DUTY) -> int:
    """Remove the finished jobs ``purge`` names (with their logs), ``batch`` jobs per
    transaction, in id order; how many. ``progress(removed by the batch)`` after each.
    After each batch it waits so that removing takes ``duty`` of its time (1: no wait;
    ``core.removal``)."""
    removed, after = 0, 0
    criteria = purge.criteria()
    while True:
        started = time.monotonic()
        count, position = db.run(functools.partial(
            _purge_batch, db, criteria, after, batch))
        if position is not None:
            time.sleep(removal.pause_after(time.monotonic() - started, duty))
        removed += count
        if count and progress is not None:
            progress(count)
        if position is None:
            return removed
        after = position


# -- statistics ----------------------------------------------------------------------------------
def stats(db: Database) -> dict[str, dict[str, int]]:
    """Jobs per channel and state: ``{channel: {state: count}}``, each stored name
    turned into text (``as_name``): whatever rows hold, the keys compare and sort."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in db.read(db.reads.counts):
        out[as_name(row["channel"])][as_name(row["state"])] += row["jobs"]
    return {channel: dict(by_state) for channel, by_state in out.items()}


def throughput(db: Database, minutes: int) -> dict[str, Any]:
    """Jobs done and jobs failed per minute over the last ``minutes``, oldest first."""
    rows = db.read(lambda conn: db.reads.throughput(conn, minutes * 60))
    now = next(row["minute"] for row in rows if row["kind"] == "now")
    first = now - minutes + 1
    series: dict[str, list[int]] = {"done": [0] * minutes, "failed": [0] * minutes}
    for row in rows:
        minute = row["minute"]
        # a time stored by hand may be text (SQLite): its minute is not one
        if row["kind"] in series and isinstance(minute, int) \
                and 0 <= minute - first < minutes:
            series[row["kind"]][minute - first] += row["jobs"]
    return {"first_minute": first, "minutes": minutes, **series}


def failures_by_exception(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """Failed jobs grouped by the exception they failed with (``exc_name``), with their
    count and the last failure, the most frequent first."""
    return db.read(lambda conn: db.reads.failures_by_exception(conn, limit))


def queue_state(db: Database) -> dict[str, Any]:
    """Pending jobs due and scheduled, and the wait of the oldest due one (seconds)."""
    return db.read(db.reads.queue)


def metric_data(db: Database, window: float) -> dict[str, Any]:
    """What the metrics are made of (queuejob.metrics turns it into metric families)."""
    reads = db.reads

    def read(conn: Any) -> dict[str, Any]:
        return {"counts": reads.counts(conn), "totals": reads.metric_totals(conn),
                "timings": reads.metric_timings(conn, window), "queue": reads.queue(conn),
                "workers_alive": reads.workers_alive(conn),
                "channels": reads.channel_configs(conn),
                "declared": reads.declared_channels(conn)}
    data = db.read(read)
    # the rules all workers follow: stored ones, else what live workers declare
    tree, _ = combine(channel_specs(data.pop("channels"), db.store.bad_row),
                      declared_specs(data.pop("declared"), db.store.bad_row))
    data["rules"] = list(tree.specs.values())
    # flow control: each rate's starts in its window, the top keys of keyed and fair
    # channels (at most reads.TOP_KEYS each: bounded label values)
    rated = {spec.name: spec.rate[1] for spec in data["rules"] if spec.rate is not None}
    keyed = [spec.name for spec in data["rules"] if spec.key_capacity is not None or spec.fair]
    data["rate_used"], data["keys"] = db.read(lambda conn: (
        reads.rate_used(conn, rated), reads.channel_keys(conn, keyed))) \
        if rated or keyed else ({}, {})
    return data


def workers(db: Database) -> list[dict[str, Any]]:
    """Workers, the live ones first, with their running jobs."""
    return db.read(db.reads.workers)


def workers_alive(db: Database) -> int:
    """Workers whose state is alive (the health check reads it: the database answers)."""
    return db.read(db.reads.workers_alive)


def schedules(db: Database) -> list[dict[str, Any]]:
    """Periodic jobs registered in this process, with their last slot run (from the
    database) and their next run."""
    stored = {row["name"]: row for row in db.read(db.reads.schedule_states)}
    now: dt.datetime = db.read(db.reads.database_now)
    out = []
    for name, entry in sorted(registry.schedules().items()):
        last = stored.get(name, {}).get("last_slot")
        out.append({"name": name, "function": entry.func.func_name, "cron": entry.cron,
                    "catch_up": entry.catch_up, "last_slot": last,
                    "next_run": next_slot(entry.cron, now)})
    return out


# -- channels ------------------------------------------------------------------------------------
def channels(db: Database) -> list[dict[str, Any]]:
    """Every channel that is configured or holds jobs, with its ancestors, in tree order:
    its global configuration and the jobs of its subtree by state (the jobs that count
    against its capacity). The rules shown are those all workers follow
    (``core.channels.combine``): ``source`` says where each comes from (``stored``, or
    ``workers`` for the rules live workers declare in their ``--channels``),
    ``declared_by`` the workers declaring the channel and ``disagreeing`` those whose
    declaration differs from what applies. A stored configuration that does not make
    sense is left out, its row saying why (``problem``); names that are not channel
    names come last, each on its own (``bad_name``). Flow control as counted now: a
    rate-limited channel's ``rate_used`` (the starts of its window); for a channel with
    a key capacity or fair turns, its subtree's ``busiest_keys`` (``{key, running}``)
    and ``waiting_keys`` (``{key, pending}``), at most ``reads.TOP_KEYS`` each
    (``*_partial``: counted among the first ``reads.KEY_SCAN`` jobs only)."""
    counts = stats(db)
    specs: dict[str, ChannelSpec] = {}
    problems: dict[str, str] = {}
    for row in db.read(db.reads.channel_configs):
        name = as_name(row.get("name"))
        try:
            spec = spec_from_row(row)
        except Exception as exc:  # ConfigurationError, TypeError... of a stored row
            db.store.bad_row("channel", name, exc)
            problems[name] = f"stored configuration not used: {describe(str(exc), 200)}"
            continue
        if spec is not None:
            specs[spec.name] = spec
    tree, sources = combine(specs.values(),
                            declared_specs(db.read(db.reads.declared_channels),
                                           db.store.bad_row))
    specs = {name: spec for name, spec in tree.specs.items()
             if name in specs or name in sources}
    # flow control: each rate's starts in its window, the top keys of keyed and fair
    # channels (their subtrees: a job counts against its configured ancestors)
    rated = {name: spec.rate[1] for name, spec in specs.items() if spec.rate is not None}
    keyed = sorted(name for name, spec in specs.items()
                   if spec.key_capacity is not None or spec.fair)
    rate_used, keys = db.read(lambda conn: (
        db.reads.rate_used(conn, rated), db.reads.channel_keys(conn, keyed))) \
        if rated or keyed else ({}, {})
    names: set[str] = {"root"}
    bad: set[str] = set()
    for name in set(specs) | set(counts) | set(problems):
        if is_channel_name(name):
            names.update(ancestors(name))
        else:
            bad.add(name)
    out = []
    for name in sorted(names, key=lambda value: value.split(".")):
        totals: dict[str, int] = defaultdict(int)
        for channel, by_state in counts.items():
            if channel == name or channel.startswith(name + "."):
                for state, count in by_state.items():
                    totals[state] += count
        entry = _channel_entry(name, specs.get(name), totals, counts, problems.get(name),
                               rate_used.get(name), keys.get(name))
        source = sources.get(name)
        entry.update(source=source and source.origin,
                     declared_by=list(source.workers) if source else [],
                     disagreeing=list(source.disagreeing) if source else [])
        entry["paused_by"] = next((other for other in ancestors(name)[1:]
                                   if other in specs and specs[other].paused), None)
        out.append(entry)
    for name in sorted(bad):
        entry = _channel_entry(name, None, defaultdict(int, counts.get(name, {})), counts,
                               problems.get(name))
        entry.update(bad_name=True, depth=0)
        out.append(entry)
    return out


def _channel_entry(name: str, spec: ChannelSpec | None, totals: dict[str, int],
                   counts: dict[str, dict[str, int]], problem: str | None,
                   rate_used: int | None = None, keys: Any = None) -> dict[str, Any]:
    """One channel of channels(); ``rate_used``: the starts of its rate's window (None:
    no rate); ``keys``: its busiest keys (a ``store.reads.KeyLoad``, None: neither a
    key capacity nor fair turns)."""
    return {
        "name": name, "depth": name.count("."), "configured": spec is not None,
        "capacity": spec.capacity if spec else None,
        "sequential": bool(spec and spec.sequential),
        "throttle": spec.throttle if spec else 0.0,
        "removal_interval": spec.removal_interval if spec else None,
        "paused": bool(spec and spec.paused), "paused_by": None,
        "rate": format_rate(spec.rate) if spec and spec.rate else None,
        "key_capacity": spec.key_capacity if spec else None,
        "fair": bool(spec and spec.fair),
        # flow control as counted now: the starts of the rate's window, the keys running
        # and waiting the most
        "rate_used": rate_used,
        "busiest_keys": [{"key": key, "running": jobs} for key, jobs in keys.running]
        if keys else [],
        "waiting_keys": [{"key": key, "pending": jobs} for key, jobs in keys.pending]
        if keys else [],
        "busiest_keys_partial": bool(keys and keys.running_partial),
        "waiting_keys_partial": bool(keys and keys.pending_partial),
        "running": totals["started"], "pending": totals["pending"],
        "enqueued": totals["enqueued"], "failed": totals["failed"],
        "own_jobs": sum(counts.get(name, {}).values()), "problem": problem,
        "bad_name": False}


def set_channel(db: Database, name: str, capacity: int | None = None, *,
                sequential: bool = False, throttle: float = 0.0,
                removal_interval: float | None = None, paused: bool = False,
                rate: str | tuple[int, float] | None = None, key_capacity: int | None = None,
                fair: bool = False) -> ChannelSpec:
    """Store a channel's rules for all workers (running workers pick them up at their
    next claim). ``rate``: ``"100/m"`` or (100, 60.0)."""
    spec = ChannelSpec(name=normalize_name(name), capacity=capacity, sequential=sequential,
                       throttle=throttle, removal_interval=removal_interval, paused=paused,
                       rate=parse_rate(rate) if isinstance(rate, str) else rate,
                       key_capacity=key_capacity, fair=fair)
    db.run(lambda conn: db.store.set_channel(conn, spec))
    return spec


def delete_channel(db: Database, name: str) -> None:
    """Remove a channel's global configuration."""
    db.run(lambda conn: db.store.delete_channel(conn, normalize_name(name)))


# -- job functions -------------------------------------------------------------------------------
def functions(db: Database, window: float = 86400.0) -> list[dict[str, Any]]:
    """Job functions (registered here, configured or with stored jobs) with their
    settings, unfinished jobs by state, and the jobs done in the last ``window`` seconds
    with their average run time. A stored setting that does not make sense is not used:
    its row says why (``problem``), and the decorator's setting shows."""
    stored: dict[str, dict[str, Any]] = {}
    reads = db.reads

    def read(conn: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        return (reads.function_configs(conn), reads.job_functions(conn),
                reads.function_counts(conn), reads.function_durations(conn, window))
    configs, names_of_jobs, count_rows, duration_rows = db.read(read)
    for row in configs:
        stored[as_name(row.get("name"))] = row
    names = set(registry.job_functions()) | set(stored) | {
        as_name(name) for name in names_of_jobs}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in count_rows:
        counts[as_name(row["func_name"])][as_name(row["state"])] += row["jobs"]
    durations: dict[str, dict[str, Any]] = {}
    for row in duration_rows:
        durations.setdefault(as_name(row["func_name"]), row)
    return [_function_entry(db, name, stored.get(name), counts.get(name, {}),
                            durations.get(name)) for name in sorted(names)]


def _function_entry(db: Database, name: str, row: dict[str, Any] | None,
                    counts: dict[str, int], done: dict[str, Any] | None) -> dict[str, Any]:
    func = registry.job_function(name)
    problems = []
    pattern: dict[int, Delay] | None = None
    if row is not None and row.get("retry_pattern") is not None:
        try:
            pattern = stored_retry_pattern(row["retry_pattern"])
        except ConfigurationError as exc:
            db.store.bad_row("function", name, exc)
            problems.append(f"stored retry pattern {describe(row['retry_pattern'], 60)} "
                            f"not used: {describe(str(exc), 120)}")
    channel = row.get("channel") if row is not None else None
    if channel is not None and not is_channel_name(channel):
        problems.append(f"stored channel {describe(channel, 60)} is not a channel name")
    decorated = getattr(func, "related_action", None)
    setting = None
    if row is not None and row.get("related_action") is not None:
        try:
            setting = stored_related_action(row["related_action"])
        except ConfigurationError as exc:
            db.store.bad_row("function", name, exc)
            problems.append(f"stored related action {describe(row['related_action'], 60)} "
                            f"not used: {describe(str(exc), 120)}")
    try:
        action = related.name_of(related.effective(decorated, setting, registry.related_action))
    except ConfigurationError as exc:
        action = None
        problems.append(str(exc))
    return {
        "name": name, "registered": func is not None,
        "default_channel": func.default_channel if func else None,
        "channel": channel or (func.default_channel if func else None),
        "channel_overridden": bool(channel),
        "retry_pattern": pattern if pattern is not None
        else (func.retry_pattern if func else {}),
        "retry_pattern_overridden": pattern is not None,
        "timeout": func.timeout if func else None,
        "related_action": action, "related_action_setting": setting,
        "related_action_overridden": setting is not None,
        "description": func.description if func else "",
        "counts": dict(counts), "done_recently": done["jobs"] if done else 0,
        "avg_duration": done["avg_duration"] if done else None,
        "problem": "; ".join(problems) or None}


def set_function(db: Database, name: str, *, channel: Any = UNCHANGED,
                 retry_pattern: Any = UNCHANGED, related_action: Any = UNCHANGED) -> None:
    """Store settings of a job function: they apply to jobs delayed afterwards and to
    every worker (retries, related actions), without a restart. Each setting left out
    keeps what is stored; None puts it back to the decorator's.

    ``channel``: a channel name; ``retry_pattern``: ``{count: seconds or (low, high)}``;
    ``related_action``: ``{"enable": bool, "func_name": "module.action",
    "kwargs": {...}}`` (a related action registered with ``@related_action`` or
    ``queuejob.register_related_action``; ``enable`` False: none). A name that is
    neither a job function of this process nor one the database knows (its jobs or
    settings) is refused: a misspelt name would store settings nobody uses."""
    from .core.retry import validate_retry_pattern
    _check_known_function(db, name)
    if channel not in (UNCHANGED, None):
        channel = normalize_name(channel)
    if retry_pattern not in (UNCHANGED, None):
        retry_pattern = validate_retry_pattern(retry_pattern)
    if related_action not in (UNCHANGED, None):
        related_action = check_related_action(related_action)
    db.run(lambda conn: db.store.set_function(
        conn, name, channel=channel, retry_pattern=retry_pattern,
        related_action=related_action))


def _check_known_function(db: Database, name: Any) -> str:
    """``name`` if it is a job function of this process or one the database knows (its
    jobs or settings): a misspelt name would store settings nobody uses."""
    name = subscription_rules.check_func_name(name)
    if name is None:
        raise ConfigurationError("a job function's module.name is needed")
    if registry.job_function(name) is None and name not in {
            as_name(known) for known in job_function_names(db)} and not db.read(
            lambda conn: db.store.function_known(conn, name)):
        raise ConfigurationError(
            f"unknown job function {describe(name, 80)}: no module imported here registers "
            "it and the database holds no job of it (import it with --module)")
    return name


def reset_function(db: Database, name: str) -> None:
    """Every setting of a job function back to its decorator's."""
    set_function(db, name, channel=None, retry_pattern=None, related_action=None)


def check_related_action(value: Any) -> dict[str, Any]:
    """A related action's setting, checked (``core.related``), its ``func_name`` a
    related action registered in this process."""
    setting = related.check_setting(value)
    name = setting["func_name"]
    if name is not None and registry.related_action(name) is None:
        raise ConfigurationError(
            f"unknown related action {describe(name, 80)}: register it with "
            "@related_action or queuejob.register_related_action (and import its module)")
    return setting


# -- subscriptions to failures -------------------------------------------------------------
def subscriptions(db: Database) -> list[dict[str, Any]]:
    """The subscriptions to failures, as stored; a row that does not make sense (written
    by hand) says why in ``problem`` (workers skip it)."""
    entries = []
    for row in db.read(db.store.subscriptions):
        entry = {key: row.get(key) for key in (
            "id", "channel", "func_name", "target_kind", "target", "date_created")}
        try:
            subscription_rules.from_row(row)
            entry["problem"] = None
        except ConfigurationError as exc:
            entry["problem"] = str(exc)
        entries.append(entry)
    return entries


def add_subscription(db: Database, *, channel: str | None = None,
                     func_name: str | None = None, webhook: str | None = None,
                     job: str | None = None) -> int:
    """Subscribe to the failures of the jobs of ``channel`` (and its subchannels), of
    the job function ``func_name``, of both, or (neither) of every job: each job that
    fails for good is POSTed as JSON to ``webhook``, or makes a job of the job function
    ``job`` (``module.name``, registered here), delayed with the failed job's uuid as
    its one argument. One of ``webhook`` and ``job``. Its id."""
    if (webhook is None) == (job is None):
        raise ConfigurationError("a subscription sends to a webhook or to a job function: "
                                 "give one of them")
    channel = subscription_rules.check_channel(channel)
    func_name = None if func_name in (None, "") else _check_known_function(db, func_name)
    if webhook is not None:
        kind, target = subscription_rules.check_target(subscription_rules.WEBHOOK, webhook)
    else:
        kind, target = subscription_rules.check_target(subscription_rules.JOB, job)
        if registry.job_function(target) is None:
            raise ConfigurationError(
                f"{describe(target, 80)} is not a registered job function (import its "
                "module with --module; workers that notify import it too)")
    return db.run(lambda conn: db.store.add_subscription(conn, channel, func_name, kind,
                                                         target))


def remove_subscription(db: Database, subscription_id: int) -> None:
    """Remove a subscription; ConfigurationError when there is none of that id."""
    if isinstance(subscription_id, bool) or not isinstance(subscription_id, int) \
            or not INT64[0] <= subscription_id <= INT64[1]:
        raise ConfigurationError(f"bad subscription id {describe(subscription_id, 40)}")
    if not db.run(lambda conn: db.store.remove_subscription(conn, subscription_id)):
        raise ConfigurationError(f"no subscription {subscription_id}")


# -- schedules defined at run time ---------------------------------------------------------------
def _schedule_rules() -> Any:
    from .core import schedules as schedule_rules
    return schedule_rules


def _schedule_store(db: Database) -> Any:
    from .store.schedules import ScheduleStore
    return ScheduleStore(db.store.connector)


def _reserved() -> tuple[str, ...]:
    from .storage import RESERVED
    return RESERVED


def _json_text(value: Any) -> Any:
    """Arguments given as JSON text, or as Python values (turned into JSON text)."""
    if value is None or value is UNCHANGED or isinstance(value, str):
        return value
    rules = _schedule_rules()
    try:
        return rules.dump_json(list(value) if isinstance(value, tuple) else value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"arguments that JSON cannot hold: {exc}") from None


def run_time_schedules(db: Database) -> list[dict[str, Any]]:
    """The schedules defined at run time, as stored, with their next run; a row that does
    not make sense (written by hand) says why in ``problem`` and runs nothing. A job
    function not registered in this process (``registered`` False) is said too: only
    workers that register it with @job run the schedule."""
    rules = _schedule_rules()
    store = _schedule_store(db)
    rows, now = db.read(lambda conn: (store.all(conn), db.reads.database_now(conn)))
    out = []
    for row in rows:
        entry: dict[str, Any] = {key: row.get(key) for key in (
            "name", "cron", "func_name", "args", "kwargs", "channel", "timezone", "missed",
            "missed_window", "paused", "run_requested", "last_slot", "date_created",
            "date_updated")}
        entry.update(next_run=None, problem=None, registered=False)
        try:
            schedule = rules.from_row(row, _reserved())
        except ConfigurationError as exc:
            db.store.bad_row("schedule", row.get("name"), exc)
            entry["problem"] = str(exc)
            out.append(entry)
            continue
        entry.update(name=schedule.name, paused=schedule.paused,
                     registered=registry.job_function(schedule.func_name) is not None)
        if not schedule.paused:
            entry["next_run"] = rules.next_slot(schedule.cron, schedule.timezone, now)
        if not entry["registered"]:
            entry["problem"] = (
                f"job function {schedule.func_name} is not registered here: only workers "
                "that register it with @job run this schedule (import its module with "
                "--module)")
        out.append(entry)
    return out


def run_time_schedule(db: Database, name: str) -> dict[str, Any]:
    """One run-time schedule (as ``run_time_schedules`` lists it); ConfigurationError
    when there is none of that name."""
    for entry in run_time_schedules(db):
        if entry["name"] == name:
            return entry
    raise ConfigurationError(f"no schedule {describe(name, 80)}")


def add_schedule(db: Database, name: str, *, cron: str, function: str,
                 args: Any = "[]", kwargs: Any = "{}", channel: str | None = None,
                 timezone: str = "UTC", missed: str = "once",
                 missed_window: float | None = None, paused: bool = False
                 ) -> dict[str, Any]:
    """Store a schedule run by the workers (all of them, no restart): a job of
    ``function`` (a job function's module.name: workers that register it with @job run
    it, nothing else) at every slot of ``cron`` (5 fields, or 6 with seconds last) in
    ``timezone``, called with ``args`` (a JSON list, the model name first by convention)
    and ``kwargs`` (a JSON object), in ``channel`` (default: the function's). ``missed``:
    what the slots missed while no worker ran give (``skip``, ``once``, ``all`` within
    ``missed_window`` seconds, see ``queuejob.core.schedules``). It runs from its next
    slot. Its listing entry; ConfigurationError for a bad value or a name taken."""
    rules = _schedule_rules()
    schedule = rules.check(name, cron, function, _json_text(args) or "[]",
                           _json_text(kwargs) or "{}", channel, timezone, missed,
                           missed_window, paused, _reserved())
    store = _schedule_store(db)

    def add(conn: Any) -> bool:
        start = rules.whole_second(db.store.database_now(conn))
        return store.add(conn, schedule, start)
    if not db.run(add):
        raise ConfigurationError(f"schedule name {schedule.name} is already taken "
                                 "(edit it, or remove it first)")
    return run_time_schedule(db, schedule.name)


def edit_schedule(db: Database, name: str, *, cron: Any = UNCHANGED,
                  function: Any = UNCHANGED, args: Any = UNCHANGED, kwargs: Any = UNCHANGED,
                  channel: Any = UNCHANGED, timezone: Any = UNCHANGED,
                  missed: Any = UNCHANGED, missed_window: Any = UNCHANGED
                  ) -> dict[str, Any]:
    """Change a run-time schedule's definition (the values left out keep what is stored:
    a stored row that does not make sense must be given whole again). A new cron
    expression or time zone starts from its next slot. ``channel=None``: the function's
    channel; ``missed_window=None``: no window."""
    rules = _schedule_rules()
    store = _schedule_store(db)
    changes = {"cron": cron, "func_name": function, "args": _json_text(args),
               "kwargs": _json_text(kwargs), "channel": channel, "timezone": timezone,
               "missed": missed, "missed_window": missed_window}
    changes = {key: value for key, value in changes.items() if value is not UNCHANGED}
    if not changes:
        raise ConfigurationError("nothing to edit: give a cron expression, a function, "
                                 "args, kwargs, a channel, a time zone or a missed-run "
                                 "policy")

    def edit(conn: Any) -> str:
        row = store.one(conn, name)
        if row is None:
            raise ConfigurationError(f"no schedule {describe(name, 80)}")
        # the stored values, checked again with the changes (paused is not edited here)
        schedule = rules.from_row({**row, **changes, "name": name, "paused": False},
                                  _reserved())
        moved = schedule.cron != row.get("cron") or schedule.timezone != row.get("timezone")
        start = rules.whole_second(db.store.database_now(conn)) if moved else None
        store.edit(conn, schedule, start)
        return schedule.name
    return run_time_schedule(db, db.run(edit))


def _pause(db: Database, name: str, paused: bool) -> None:
    rules = _schedule_rules()
    store = _schedule_store(db)

    def pause(conn: Any) -> bool:
        start = None if paused else rules.whole_second(db.store.database_now(conn))
        return store.pause(conn, name, paused, start)
    if not db.run(pause):
        raise ConfigurationError(f"no schedule {describe(name, 80)}")


def pause_schedule(db: Database, name: str) -> None:
    """Pause a run-time schedule: its slots give no job until it is resumed."""
    _pause(db, name, True)


def resume_schedule(db: Database, name: str) -> None:
    """Resume a run-time schedule from its next slot (the slots of the pause never run)."""
    _pause(db, name, False)


def remove_schedule(db: Database, name: str) -> None:
    """Remove a run-time schedule (the jobs it delayed stay)."""
    store = _schedule_store(db)
    if not db.run(lambda conn: store.remove(conn, name)):
        raise ConfigurationError(f"no schedule {describe(name, 80)}")


def run_schedule_now(db: Database, name: str) -> None:
    """Ask for a job of a run-time schedule now (paused or not): the next worker that
    registers its function delays it, within a second or so. A schedule whose stored
    definition does not make sense is refused."""
    rules = _schedule_rules()
    store = _schedule_store(db)

    def request(conn: Any) -> None:
        row = store.one(conn, name)
        if row is None:
            raise ConfigurationError(f"no schedule {describe(name, 80)}")
        try:
            rules.from_row(row, _reserved())
        except ConfigurationError as exc:
            raise ConfigurationError(f"schedule {describe(name, 80)} cannot run: {exc}"
                                     ) from None
        store.request_run(conn, name)
    db.run(request)


# -- batches ---------------------------------------------------------------------------------
#: the most batches a listing shows, the most jobs one batch's view lists
BATCHES_LISTED = 10_000


def _batch_store(db: Database) -> Any:
    from .store.batches import BatchStore
    return BatchStore(db.store.connector)


def _batch_counts(counts: dict[str, int]) -> dict[str, int]:
    """A batch's jobs per state: every state of a job (0 when none), those stored by
    hand too, and ``total``."""
    from .core import states
    out = {str(state): 0 for state in states.STATES}
    out.update(counts)
    out["total"] = sum(counts.values())
    return out


def _callback_summary(text: Any) -> dict[str, Any] | None:
    """What a stored callback delays: its function and its arguments (as encoded); a
    callback that does not make sense says why in ``problem``."""
    from .core import batches as batch_rules
    if text is None:
        return None
    try:
        callback = batch_rules.read_callback(text)
    except ValueError as exc:
        return {"func_name": None, "args": None, "kwargs": None, "problem": str(exc)}
    return {"func_name": callback.func_name, "args": callback.args,
            "kwargs": callback.kwargs, "channel": callback.channel, "problem": None}


def _limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) \
            or not 1 <= limit <= BATCHES_LISTED:
        raise ConfigurationError(f"limit must be a whole number from 1 to {BATCHES_LISTED}")
    return limit


def batches(db: Database, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The batches (``queuejob.batch``), newest first, each with its jobs counted per
    state (``counts``: done, failed, pending, started... and total); ``state``: only
    the open, done or failed ones."""
    from .core.batches import BATCH_STATES
    if state is not None and state not in BATCH_STATES:
        raise ConfigurationError(f"a batch state is one of {', '.join(BATCH_STATES)}, not "
                                 f"{describe(state, 40)}")
    store = _batch_store(db)
    limit = _limit(limit)

    def read(conn: Any) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
        rows = store.all(conn, state, limit)
        return rows, store.counts(conn, [str(row["uuid"]) for row in rows])
    rows, counts = db.read(read)
    return [_batch_entry(row, str(row["uuid"]), counts,
                         on_done=bool(row.get("has_on_done")),
                         on_failure=bool(row.get("has_on_failure"))) for row in rows]


def _batch_entry(row: Any, batch_uuid: str, counts: dict[str, dict[str, int]],
                 **callbacks: Any) -> dict[str, Any]:
    """A batch as ``batches`` and ``batch`` show it (its callbacks as each says)."""
    return {"uuid": batch_uuid, "name": row.get("name"), "state": row.get("state"),
            "date_created": row.get("date_created"),
            "date_concluded": row.get("date_concluded"), **callbacks,
            "callback_uuid": row.get("callback_uuid"),
            "callback_error": row.get("callback_error"),
            "counts": _batch_counts(counts.get(batch_uuid, {}))}


def batch(db: Database, batch_uuid: str, limit: int = 1000) -> dict[str, Any]:
    """One batch: as ``batches`` lists it, with its callbacks (``on_done``,
    ``on_failure``: function and arguments, or why a stored one does not make sense) and
    its jobs (the first ``limit``, in the order they were stored). ConfigurationError
    when there is none of that uuid."""
    from .core.job import canonical_uuid
    try:
        wanted = canonical_uuid(batch_uuid)
    except NoSuchJobError:
        raise ConfigurationError(f"no batch {describe(batch_uuid, 80)}: not a uuid") from None
    store = _batch_store(db)
    limit = _limit(limit)

    def read(conn: Any) -> tuple[Any, list[dict[str, Any]], dict[str, dict[str, int]]]:
        row = store.one(conn, wanted)
        if row is None:
            return None, [], {}
        return row, store.jobs(conn, wanted, limit), store.counts(conn, [wanted])
    row, jobs, counts = db.read(read)
    if row is None:
        raise ConfigurationError(f"no batch {wanted}")
    return {**_batch_entry(row, wanted, counts,
                           on_done=_callback_summary(row.get("on_done")),
                           on_failure=_callback_summary(row.get("on_failure"))),
            "jobs": [{**job, "uuid": str(job["uuid"])} for job in jobs]}
