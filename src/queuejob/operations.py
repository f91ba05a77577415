"""Job operations for people: manual actions, listings, statistics, channels.

The library functions (``queuejob.requeue`` ...), the CLI and the dashboard all
call these; each is one transaction through the manager.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from .core import states
from .core.channels import ChannelSpec, ChannelTree, normalize_name
from .core.errors import ConfigurationError, JobStateError, NoSuchJobError
from .database import Database, Session, default_user


def _user_of(session: Session) -> str:
    user = session.context.get("user") if session.context else None
    if user:
        return str(user)
    if session.user_id is not None:
        return f"user {session.user_id}"
    return default_user()


def _change(action: str, session: Session, uuids: tuple[str, ...]) -> list[str]:
    return session.db.manager.change_state(session._statement_connection(), action, uuids,
                                           _user_of(session))


def requeue(session: Session, *uuids: str) -> list[str]:
    """Put failed or unfinished jobs back to pending, their retry reset to 0.

    All or nothing: a job in another state refuses the call (JobStateError).
    """
    return _change("requeue", session, uuids)


def set_done(session: Session, *uuids: str) -> list[str]:
    """Set pending, enqueued or failed jobs to done ("Manually set to done by <user>")."""
    return _change("done", session, uuids)


def cancel(session: Session, *uuids: str) -> list[str]:
    """Cancel pending, enqueued or failed jobs ("Cancelled by <user>")."""
    return _change("cancel", session, uuids)


ACTIONS = {"requeue": requeue, "done": set_done, "cancel": cancel}


def load_row(db: Database, job_uuid: str) -> dict[str, Any]:
    row = db.read(lambda conn: db.manager.load(conn, job_uuid))
    if row is None:
        raise NoSuchJobError(f"no job {job_uuid}")
    return row


def graph(db: Database, graph_uuid: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The jobs of a job graph and its (parent_uuid, child_uuid) edges."""
    return db.read(lambda conn: db.manager.graph(conn, graph_uuid))


def schedules(db: Database) -> list[dict[str, Any]]:
    """Periodic jobs registered in this process, with their last slot run (from the
    database) and their next run."""
    from .core import registry
    from .core.schedule import next_slot
    stored = {row["name"]: row for row in db.read(db.manager.schedule_states)}
    now = db.read(db.manager.database_now)
    out = []
    for name, entry in sorted(registry.schedules().items()):
        last = stored.get(name, {}).get("last_slot")
        out.append({"name": name, "function": entry.func.func_name, "cron": entry.cron,
                    "catch_up": entry.catch_up, "last_slot": last,
                    "next_run": next_slot(entry.cron, now)})
    return out


def list_jobs(db: Database, **filters: Any) -> list[dict[str, Any]]:
    if filters.get("channel"):
        filters["channel"] = normalize_name(filters["channel"])
    if filters.get("state") and filters["state"] not in states.STATES:
        raise ConfigurationError(f"unknown state {filters['state']!r} "
                                 f"(one of {', '.join(states.STATES)})")
    return db.read(lambda conn: db.manager.list_jobs(conn, **filters))


def select_uuids(db: Database, **filters: Any) -> list[str]:
    if filters.get("channel"):
        filters["channel"] = normalize_name(filters["channel"])
    return db.read(lambda conn: db.manager.select_uuids(conn, **filters))


def stats(db: Database) -> dict[str, dict[str, int]]:
    """Jobs per channel and state: ``{channel: {state: count}}``."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for row in db.read(db.manager.count_jobs):
        out[row["channel"]][row["state"]] = row["jobs"]
    return dict(out)


def channels(db: Database) -> list[dict[str, Any]]:
    """The global channel configuration, with running, pending and failed counts."""
    rows = db.read(db.manager.channel_rows)
    counts = stats(db)
    tree = ChannelTree(spec for spec in (_spec(row) for row in rows) if spec is not None)
    totals: dict[str, dict[str, int]] = {name: defaultdict(int) for name in tree.specs}
    for channel, by_state in counts.items():
        for name in tree.path(channel):
            for state, count in by_state.items():
                totals[name][state] += count
    out = []
    for name, spec in sorted(tree.specs.items()):
        out.append({"name": name, "capacity": spec.capacity, "sequential": spec.sequential,
                    "throttle": spec.throttle, "removal_interval": spec.removal_interval,
                    "paused": spec.paused, "running": totals[name].get("started", 0),
                    "pending": totals[name].get("pending", 0),
                    "failed": totals[name].get("failed", 0)})
    return out


def _spec(row: dict[str, Any]) -> ChannelSpec | None:
    from .manager import spec_from_row
    return spec_from_row(row)


def set_channel(db: Database, name: str, capacity: int | None = None, *,
                sequential: bool = False, throttle: float = 0.0,
                removal_interval: float | None = None, paused: bool = False) -> ChannelSpec:
    """Store a channel's global configuration (running workers pick it up)."""
    spec = ChannelSpec(name=normalize_name(name), capacity=capacity, sequential=sequential,
                       throttle=throttle, removal_interval=removal_interval, paused=paused)
    if capacity is not None and capacity < 1:
        raise ConfigurationError("capacity must be at least 1")
    db.run(lambda conn: db.manager.set_channel(conn, spec))
    return spec


def delete_channel(db: Database, name: str) -> None:
    db.run(lambda conn: db.manager.delete_channel(conn, normalize_name(name)))


def workers(db: Database) -> list[dict[str, Any]]:
    return db.read(db.manager.list_workers)


def functions(db: Database) -> list[dict[str, Any]]:
    """Job functions: those registered in this process (their decorator's settings)
    and those with settings stored in the database, which override the decorator's."""
    from .core import registry
    from .manager import parse_retry_pattern
    overrides = {row["name"]: row for row in db.read(db.manager.function_overrides)}
    out = []
    for name in sorted(set(registry.job_functions()) | set(overrides)):
        func = registry.job_function(name)
        stored = overrides.get(name)
        pattern = parse_retry_pattern(stored["retry_pattern"]) \
            if stored and stored["retry_pattern"] else None
        out.append({
            "name": name, "registered": func is not None,
            "default_channel": func.default_channel if func else None,
            "channel": (stored["channel"] if stored and stored["channel"]
                        else func.default_channel if func else None),
            "channel_overridden": bool(stored and stored["channel"]),
            "retry_pattern": pattern if pattern is not None
            else (func.retry_pattern if func else {}),
            "retry_pattern_overridden": pattern is not None,
            "timeout": func.timeout if func else None,
            "related_action": bool(func and func.related_action),
            "description": func.description if func else "",
        })
    return out


def set_function(db: Database, name: str, *, channel: str | None = None,
                 retry_pattern: dict[int, float] | None = None) -> None:
    """Store a job function's channel and retry pattern; they apply to jobs delayed
    afterwards and to every worker's retries (None for both: back to the decorator)."""
    from .core.retry import validate_retry_pattern
    if channel is not None:
        channel = normalize_name(channel)
    if retry_pattern is not None:
        retry_pattern = validate_retry_pattern(retry_pattern)
    db.run(lambda conn: db.manager.set_function(conn, name, channel, retry_pattern))


# -- the dashboard and the metrics (queuejob web, queuejob metrics) ---------------------
# Their queries are in each dialect's dashboard.sql. The jobs page's statements are
# templates filled with the fragments of the filters in use: a filter not in use is not
# in the statement, so that the planner uses the index of those that are.


#: the sort keys of the jobs page (a "-" before one sorts descending)
JOB_SORTS = ("created", "priority", "eta", "started", "done")
_TEMPLATE = re.compile(r"/\* TEMPLATE: (\w+) \*/")
_EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class JobFilter:
    """Which jobs the jobs page shows. With no state, done and cancelled jobs are hidden
    unless ``show_all`` (as in the original's views). ``search`` is a job uuid, or words
    looked for in the description, the call (function, model, arguments) and the
    exception; ``channel`` includes its subchannels."""

    state: str | None = None
    channel: str | None = None
    func_name: str | None = None
    model_name: str | None = None
    user_id: int | None = None
    search: str | None = None
    show_all: bool = False


@dataclass
class JobPage:
    rows: list[dict[str, Any]]
    #: cursors of the previous and the next page (None: there is none)
    previous: str | None
    next: str | None


def _query(db: Database, conn: Any, name: str, params: dict[str, Any] | None = None,
           **parts: str) -> list[dict[str, Any]]:
    """Run a named query of dashboard.sql, its /* TEMPLATE: x */ markers replaced by
    ``parts`` (SQL made of dashboard.sql fragments only); the filled statement is kept
    beside the named queries, under a name of its own."""
    if parts:
        return db.connector.execute_composed(conn, name, parts, params or {})
    return db.connector.execute(conn, name, params or {})


def _fragment(db: Database, name: str) -> str:
    return db.connector.queries[f"dashboard_{name}"]


def job_channels(db: Database) -> list[str]:
    """The channels that hold jobs."""
    return [row["name"] for row in db.read(
        lambda conn: _query(db, conn, "dashboard_distinct_channels"))]


def job_function_names(db: Database) -> list[str]:
    """The job functions of stored jobs."""
    return [row["name"] for row in db.read(
        lambda conn: _query(db, conn, "dashboard_distinct_functions"))]


def _filter_terms(db: Database, filters: JobFilter, action: str | None = None
                  ) -> tuple[list[str], dict[str, Any]] | None:
    """The WHERE fragments and parameters of a filter; None when nothing can match."""
    terms: list[str] = []
    params: dict[str, Any] = {}
    if filters.state is not None and filters.state not in states.STATES:
        raise ConfigurationError(f"unknown state {filters.state!r} "
                                 f"(one of {', '.join(states.STATES)})")
    if action is not None:
        allowed = sorted(states.MANUAL_ACTIONS[action][0])
        if filters.state is not None and filters.state not in allowed:
            return None
        chosen = [filters.state] if filters.state else allowed
        # the action's states are all unfinished: the unfinished term lets the database
        # read the (partial) index of unfinished jobs
        terms += ["filter_unfinished", "filter_action_states"]
        params.update({f"state_{index + 1}": chosen[min(index, len(chosen) - 1)]
                       for index in range(4)})
    elif filters.state:
        terms.append("filter_state")
        params["state"] = filters.state
        if filters.state not in states.FINAL_STATES:
            terms.append("filter_unfinished")
    elif not filters.show_all and not _is_uuid(filters.search):
        # a job looked up by its uuid shows, whatever its state
        terms.append("filter_unfinished")
    if filters.channel:
        channel = normalize_name(filters.channel)
        params.update(channel=channel, channel_prefix=channel + ".",
                      channel_prefix_end=channel + "/")
        terms.append("filter_channel_tree")
    if filters.func_name:
        terms.append("filter_func")
        params["func_name"] = filters.func_name
    if filters.model_name:
        terms.append("filter_model")
        params["model_name"] = filters.model_name
    if filters.user_id is not None:
        terms.append("filter_user")
        params["user_id"] = int(filters.user_id)
    search = (filters.search or "").strip()
    if search:
        if _is_uuid(search):
            from .manager import canonical_uuid
            params["uuid"] = canonical_uuid(search)
            terms.append("filter_uuid")
        else:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["pattern"] = f"%{escaped}%"
            terms.append("filter_text")
    return terms, params


def _is_uuid(text: str | None) -> bool:
    from .manager import canonical_uuid
    try:
        canonical_uuid(text or "")
    except NoSuchJobError:
        return False
    return True


def _where(db: Database, terms: list[str]) -> str:
    return " AND ".join(_fragment(db, term) for term in terms) or "1 = 1"


def _cursor_text(db: Database, sort: str, row: dict[str, Any]) -> str:
    value = row["sort_key"]
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return f"{value}~{row['id']}"


def _parse_cursor(db: Database, sort: str, text: str) -> tuple[Any, int]:
    try:
        value, _, last_id = text.rpartition("~")
        if sort in ("created", "priority"):
            return int(value), int(last_id)
        if db.dialect == "sqlite":
            # the stored float itself, so that no job is skipped or shown twice
            return float(value), int(last_id)
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed, int(last_id)
    except ValueError:
        raise ConfigurationError(f"bad page cursor {text[:40]!r}") from None


def job_page(db: Database, filters: JobFilter, *, sort: str = "-created",
             after: str | None = None, before: str | None = None, limit: int = 50
             ) -> JobPage:
    """One page of the jobs matching ``filters`` in ``sort`` order (keyset pagination:
    ``after``/``before`` are cursors of JobPage.next/previous)."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in JOB_SORTS:
        raise ConfigurationError(f"unknown sort {sort!r} (one of {', '.join(JOB_SORTS)})")
    found = _filter_terms(db, filters)
    assert found is not None
    terms, params = found
    backwards = before is not None
    cursor = before if backwards else after
    where = [_fragment(db, term) for term in terms]
    # reading forwards in display order: after the cursor; backwards: before it, in the
    # reverse order, then flipped
    greater = descending == backwards
    if cursor is not None:
        value, last_id = _parse_cursor(db, key, cursor)
        if key == "created":
            where.append(_fragment(db, "filter_after_id" if greater else "filter_before_id"))
            params["after_id" if greater else "before_id"] = last_id
        else:
            key_sql = _fragment(db, f"sort_{key}")
            where.append(_TEMPLATE.sub(lambda _: key_sql, _fragment(
                db, "keyset_after" if greater else "keyset_before")))
            params.update(cursor_key=value, cursor_id=last_id)
    direction = "DESC" if descending != backwards else "ASC"
    key_sql = _fragment(db, f"sort_{key}")
    order = f"{key_sql} {direction}" + (f", id {direction}" if key != "created" else "")
    params["limit"] = limit + 1
    rows = db.read(lambda conn: _query(
        db, conn, "dashboard_jobs", params, where=" AND ".join(where) or "1 = 1",
        order=order, key=key_sql))
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    if not rows:
        return JobPage([], None, None)
    first, last = _cursor_text(db, key, rows[0]), _cursor_text(db, key, rows[-1])
    if backwards:
        return JobPage(rows, first if more else None, last)
    return JobPage(rows, first if cursor is not None else None, last if more else None)


def last_job_id(db: Database) -> int:
    """The id of the newest job: actions on a filter act on the jobs counted up to it."""
    return db.read(lambda conn: _query(db, conn, "dashboard_last_id"))[0]["id"]


def count_matching(db: Database, filters: JobFilter, action: str | None = None,
                   upto: int | None = None) -> int:
    """Jobs matching ``filters`` (and that ``action`` applies to), up to job id ``upto``."""
    found = _filter_terms(db, filters, action)
    if found is None:
        return 0
    terms, params = found
    if upto is not None:
        terms.append("filter_upto")
        params["upto"] = upto
    return db.read(lambda conn: _query(db, conn, "dashboard_count_jobs", params,
                                       where=_where(db, terms)))[0]["jobs"]


def act_on_matching(db: Database, action: str, filters: JobFilter, *, user: str,
                    upto: int, chunk: int = 500) -> tuple[int, int]:
    """Requeue, set done or cancel every job matching ``filters`` that the action applies
    to, up to job id ``upto``, a transaction per ``chunk`` jobs. Returns (jobs changed,
    jobs skipped because they changed meanwhile, a job taken by a worker for instance)."""
    if action not in ACTIONS:
        raise ConfigurationError(f"unknown action {action!r}")
    found = _filter_terms(db, filters, action)
    if found is None:
        return 0, 0
    terms, params = found
    terms += ["filter_upto", "filter_after_id"]
    params["upto"] = upto
    params["limit"] = chunk
    where = _where(db, terms)
    changed = skipped = 0
    params["after_id"] = 0
    while True:
        rows = db.read(lambda conn: _query(db, conn, "dashboard_job_uuids", params,
                                           where=where))
        if not rows:
            return changed, skipped
        params["after_id"] = rows[-1]["id"]
        uuids = [row["uuid"] for row in rows]
        try:
            with db.session(context={"user": user}) as session:
                changed += len(ACTIONS[action](session, *uuids))
        except (JobStateError, NoSuchJobError):
            # all or nothing refused the chunk: one job at a time, skipping those that
            # left the states the action applies to
            for one in uuids:
                try:
                    with db.session(context={"user": user}) as session:
                        changed += len(ACTIONS[action](session, one))
                except (JobStateError, NoSuchJobError):
                    skipped += 1


def throughput(db: Database, minutes: int) -> dict[str, Any]:
    """Jobs done and jobs failed per minute over the last ``minutes``, oldest first."""
    rows = db.read(lambda conn: _query(db, conn, "dashboard_throughput",
                                       {"seconds": minutes * 60}))
    now = next(row["minute"] for row in rows if row["kind"] == "now")
    first = now - minutes + 1
    series: dict[str, list[int]] = {"done": [0] * minutes, "failed": [0] * minutes}
    for row in rows:
        if row["kind"] in series and 0 <= row["minute"] - first < minutes:
            series[row["kind"]][row["minute"] - first] += row["jobs"]
    return {"first_minute": first, "minutes": minutes, **series}


def queue_state(db: Database) -> dict[str, Any]:
    """Pending jobs due and scheduled, and the wait of the oldest due one (seconds)."""
    return db.read(lambda conn: _query(db, conn, "dashboard_queue"))[0]


def channel_tree(db: Database, counts: dict[str, dict[str, int]] | None = None
                 ) -> list[dict[str, Any]]:
    """Every channel that is configured or holds jobs, with its ancestors, in tree order:
    its global configuration and the jobs of its subtree by state (the jobs that count
    against its capacity)."""
    from .core.channels import ancestors
    counts = stats(db) if counts is None else counts
    specs = {spec.name: spec for spec in (_spec(row) for row in db.read(
        db.manager.channel_rows)) if spec is not None}
    names: set[str] = {"root"}
    for name in set(specs) | set(counts):
        names.update(ancestors(name))
    out = []
    for name in sorted(names, key=lambda value: value.split(".")):
        totals: dict[str, int] = defaultdict(int)
        for channel, by_state in counts.items():
            if channel == name or channel.startswith(name + "."):
                for state, count in by_state.items():
                    totals[state] += count
        spec = specs.get(name)
        out.append({
            "name": name, "depth": name.count("."), "configured": spec is not None,
            "capacity": spec.capacity if spec else None,
            "sequential": bool(spec and spec.sequential),
            "throttle": spec.throttle if spec else 0.0,
            "removal_interval": spec.removal_interval if spec else None,
            "paused": bool(spec and spec.paused),
            "paused_by": next((other for other in ancestors(name)[1:]
                               if other in specs and specs[other].paused), None),
            "running": totals["started"], "pending": totals["pending"],
            "enqueued": totals["enqueued"], "failed": totals["failed"],
            "own_jobs": sum(counts.get(name, {}).values())})
    return out


def running_jobs(db: Database, limit: int = 500) -> list[dict[str, Any]]:
    """Started jobs, the longest running first."""
    return db.read(lambda conn: _query(db, conn, "dashboard_running_jobs", {"limit": limit}))


def function_rows(db: Database, window: float = 86400.0) -> list[dict[str, Any]]:
    """Job functions (registered here, configured or with stored jobs) with their
    settings, unfinished jobs by state, and the jobs done in the last ``window`` seconds
    with their average run time."""
    rows = {row["name"]: row for row in functions(db)}
    for name in job_function_names(db):
        rows.setdefault(name, {
            "name": name, "registered": False, "default_channel": None, "channel": None,
            "channel_overridden": False, "retry_pattern": {},
            "retry_pattern_overridden": False, "timeout": None, "related_action": False,
            "description": ""})
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for row in db.read(lambda conn: _query(db, conn, "dashboard_function_counts")):
        counts[row["func_name"]][row["state"]] = row["jobs"]
    durations = {row["func_name"]: row for row in db.read(lambda conn: _query(
        db, conn, "dashboard_function_durations", {"seconds": window}))}
    out = []
    for name in sorted(rows):
        done = durations.get(name)
        out.append({**rows[name], "counts": counts.get(name, {}),
                    "done_recently": done["jobs"] if done else 0,
                    "avg_duration": done["avg_duration"] if done else None})
    return out


def metric_rows(db: Database, window: float) -> dict[str, Any]:
    """What the metrics are made of (queuejob.metrics turns it into metric families)."""
    def read(conn: Any) -> dict[str, Any]:
        return {
            "counts": db.manager.count_jobs(conn),
            "totals": _query(db, conn, "dashboard_metric_totals"),
            "timings": _query(db, conn, "dashboard_metric_timings", {"seconds": window}),
            "queue": _query(db, conn, "dashboard_queue")[0],
            "workers_alive": _query(db, conn, "dashboard_workers_alive")[0]["workers"],
            "channels": db.manager.channel_rows(conn),
        }
    return db.read(read)


def related_action(db: Database, job_uuid: str) -> Any:
    """The result of a job's related action (None when its function has none, or is not
    registered in this process)."""
    from .storage import DatabaseJobStorage
    with db.session() as session:
        return DatabaseJobStorage(session).load(job_uuid).related_action(session)


def workers_alive(db: Database) -> int:
    """Workers whose state is alive (the health check reads it: the database answers)."""
    return db.read(lambda conn: _query(db, conn, "dashboard_workers_alive"))[0]["workers"]
