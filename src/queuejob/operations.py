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

from .core import limits, states
from .core.channels import ChannelSpec, ChannelTree, normalize_name
from .core.errors import ConfigurationError, JobStateError, NoSuchJobError
from .core.text import describe, printable
from .database import Database, Session, default_user
from .manager import channel_specs


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
    tree = ChannelTree(channel_specs(rows, db.manager.bad_row))
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
    """The configuration of a stored channel row; None when it configures nothing or
    does not make sense (a row written by hand: skipped, said once in the log)."""
    found = channel_specs([row])
    return found[0] if found else None


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
    from .manager import stored_retry_pattern
    overrides = {row["name"]: row for row in db.read(db.manager.function_overrides)
                 if isinstance(row["name"], str)}
    out = []
    for name in sorted(set(registry.job_functions()) | set(overrides)):
        func = registry.job_function(name)
        stored = overrides.get(name)
        pattern = None
        invalid = None
        if stored and stored["retry_pattern"] is not None:
            try:
                pattern = stored_retry_pattern(stored["retry_pattern"])
            except ConfigurationError as exc:
                # shown as it is stored, with why workers skip it
                invalid = str(exc)
                db.manager.bad_row("function", name, exc)
        out.append({
            "name": name, "registered": func is not None,
            "default_channel": func.default_channel if func else None,
            "channel": (stored["channel"] if stored and stored["channel"]
                        else func.default_channel if func else None),
            "channel_overridden": bool(stored and stored["channel"]),
            "retry_pattern": pattern if pattern is not None
            else (func.retry_pattern if func else {}),
            "retry_pattern_overridden": pattern is not None,
            "retry_pattern_invalid": invalid,
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
    if not isinstance(name, str) or not name or len(name) > limits.FUNC_NAME \
            or printable(name, one_line=True) != name:
        raise ConfigurationError(f"bad job function name {describe(name, 80)}")
    if channel is not None:
        channel = normalize_name(channel)
    if retry_pattern is not None:
        retry_pattern = validate_retry_pattern(retry_pattern)
    db.run(lambda conn: db.manager.set_function(conn, name, channel, retry_pattern))


# -- the dashboard and the metrics (queuejob web, queuejob metrics) ---------------------
# Their queries are in each dialect's dashboard.sql. The jobs page's statements are
# templates filled with the fragments of the filters in use: a filter not in use is not
# in the statement, so that the planner uses the index of those that are.
#
# What they read is data: a row written by hand or by another tool may hold anything
# (SQLite stores any value in any column, and text that is not UTF-8 arrives with lone
# surrogates). A bad value costs its row — listed with what it holds, its problem said
# — never the page: names are turned into text before they are sorted or compared.


#: the sort keys of the jobs page (a "-" before one sorts descending)
JOB_SORTS = ("created", "priority", "eta", "started", "done")
_TEMPLATE = re.compile(r"/\* TEMPLATE: (\w+) \*/")
_EARLIEST = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
#: the range of the database's whole numbers (ids, user ids, cursors)
INT64 = (-(2**63), 2**63 - 1)
#: the longest page cursor read
MAX_CURSOR = 100
#: characters of each text of a job a list page reads (one more than it shows, so
#: that it knows when a text was longer)
LISTED_READ = 301


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


def name_of(value: Any) -> str:
    """A stored name (channel, function, state...) as text, whatever was stored: text
    as it is (even with the lone surrogates of bytes that were not UTF-8), bytes as
    Python writes them (``b'...'``), anything else as ``str()`` does."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return repr(bytes(value))
    return str(value)


def is_channel_name(value: Any) -> bool:
    """Whether a stored value is a channel's full name."""
    if not isinstance(value, str):
        return False
    try:
        return normalize_name(value) == value
    except Exception:  # ConfigurationError, and whatever a stored value may raise
        return False


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


def job_channels(db: Database) -> list[Any]:
    """The channels that hold jobs (as stored: a row written by hand may hold a value
    that is not a channel name)."""
    return [row["name"] for row in db.read(
        lambda conn: _query(db, conn, "dashboard_distinct_channels"))]


def job_function_names(db: Database) -> list[Any]:
    """The job functions of stored jobs (as stored)."""
    return [row["name"] for row in db.read(
        lambda conn: _query(db, conn, "dashboard_distinct_functions"))]


def _whole(value: Any, what: str, low: int = INT64[0], high: int = INT64[1]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{what} must be a whole number from {low} to {high}")
    return value


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
        params["user_id"] = _whole(filters.user_id, "user")
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
    """A page's cursor: its sort key and id. A key of another type than the sort's (a
    row written by hand) gives a cursor that is refused when followed (400), nothing
    worse."""
    from .core.text import displayable
    value = row["sort_key"]
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    return displayable(f"{name_of(value)[:MAX_CURSOR]}~{row['id']}")


def _parse_cursor(db: Database, sort: str, text: str) -> tuple[Any, int]:
    try:
        if len(text) > MAX_CURSOR:
            raise ValueError("too long")
        value, _, last_id_text = text.rpartition("~")
        last_id = _int64(last_id_text)
        if sort == "created":
            return _int64(value), last_id
        if sort == "priority":
            try:
                return _int64(value), last_id
            except ValueError:  # a priority stored as a real number (SQLite)
                return _finite(value), last_id
        if db.dialect == "sqlite":
            # the stored float itself, so that no job is skipped or shown twice
            return _finite(value), last_id
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive time")
        return parsed, last_id
    except (ValueError, OverflowError):
        from .core.text import describe
        raise ConfigurationError(f"bad page cursor {describe(text, 60)}") from None


def _int64(text: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise ValueError("not a whole number")
    value = int(text)
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError("out of range")
    return value


def _finite(text: str) -> float:
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", text):
        raise ValueError("not a number")
    import math
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def job_page(db: Database, filters: JobFilter, *, sort: str = "-created",
             after: str | None = None, before: str | None = None, limit: int = 50
             ) -> JobPage:
    """One page of the jobs matching ``filters`` in ``sort`` order (keyset pagination:
    ``after``/``before`` are cursors of JobPage.next/previous). Each text of a row is
    read up to LISTED_READ characters (the exception: its last ones), never whole."""
    descending = sort.startswith("-")
    key = sort[1:] if descending else sort
    if key not in JOB_SORTS:
        from .core.text import describe
        raise ConfigurationError(f"unknown sort {describe(sort, 40)} "
                                 f"(one of {', '.join(JOB_SORTS)})")
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
    params["text_read"] = LISTED_READ
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
        params["upto"] = _whole(upto, "upto")
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
    params["upto"] = _whole(upto, "upto")
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
            # left the states the action applies to (or whose stored uuid is not one)
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
        minute = row["minute"]
        # a time stored by hand may be text (SQLite): its minute is not one
        if row["kind"] in series and isinstance(minute, int) \
                and 0 <= minute - first < minutes:
            series[row["kind"]][minute - first] += row["jobs"]
    return {"first_minute": first, "minutes": minutes, **series}


def queue_state(db: Database) -> dict[str, Any]:
    """Pending jobs due and scheduled, and the wait of the oldest due one (seconds)."""
    return db.read(lambda conn: _query(db, conn, "dashboard_queue"))[0]


def channel_counts(db: Database) -> dict[str, dict[str, int]]:
    """Jobs per channel and state, as ``stats``, each stored name turned into text
    (name_of): whatever rows hold, the keys compare and sort."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for channel, by_state in stats(db).items():
        for state, count in by_state.items():
            out[name_of(channel)][name_of(state)] += count
    return {channel: dict(by_state) for channel, by_state in out.items()}


def channel_tree(db: Database, counts: dict[str, dict[str, int]] | None = None
                 ) -> list[dict[str, Any]]:
    """Every channel that is configured or holds jobs, with its ancestors, in tree order:
    its global configuration and the jobs of its subtree by state (the jobs that count
    against its capacity). A stored configuration that does not make sense is left out,
    its row saying why (``problem``); names that are not channel names come last, each
    on its own (``bad_name``)."""
    from .core.channels import ancestors
    from .core.text import describe
    from .manager import spec_from_row
    counts = channel_counts(db) if counts is None else counts
    specs: dict[str, ChannelSpec] = {}
    problems: dict[str, str] = {}
    for row in db.read(db.manager.channel_rows):
        name = name_of(row.get("name"))
        try:
            spec = spec_from_row(row)
        except Exception as exc:  # ConfigurationError, TypeError... of a stored row
            problems[name] = f"stored configuration not used: {describe(str(exc), 200)}"
            continue
        if spec is not None:
            specs[spec.name] = spec
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
        out.append(_channel_entry(name, specs, totals, counts, problems.get(name)))
        out[-1]["paused_by"] = next((other for other in ancestors(name)[1:]
                                     if other in specs and specs[other].paused), None)
    for name in sorted(bad):
        entry = _channel_entry(name, {}, defaultdict(int, counts.get(name, {})), counts,
                               problems.get(name))
        entry.update(bad_name=True, depth=0)
        out.append(entry)
    return out


def _channel_entry(name: str, specs: dict[str, ChannelSpec], totals: dict[str, int],
                   counts: dict[str, dict[str, int]], problem: str | None) -> dict[str, Any]:
    spec = specs.get(name)
    return {
        "name": name, "depth": name.count("."), "configured": spec is not None,
        "capacity": spec.capacity if spec else None,
        "sequential": bool(spec and spec.sequential),
        "throttle": spec.throttle if spec else 0.0,
        "removal_interval": spec.removal_interval if spec else None,
        "paused": bool(spec and spec.paused), "paused_by": None,
        "running": totals["started"], "pending": totals["pending"],
        "enqueued": totals["enqueued"], "failed": totals["failed"],
        "own_jobs": sum(counts.get(name, {}).values()), "problem": problem,
        "bad_name": False}


def running_jobs(db: Database, limit: int = 500) -> list[dict[str, Any]]:
    """Started jobs, the longest running first (their texts read up to LISTED_READ
    characters)."""
    return db.read(lambda conn: _query(db, conn, "dashboard_running_jobs",
                                       {"limit": limit, "text_read": LISTED_READ}))


def function_rows(db: Database, window: float = 86400.0) -> list[dict[str, Any]]:
    """Job functions (registered here, configured or with stored jobs) with their
    settings, unfinished jobs by state, and the jobs done in the last ``window`` seconds
    with their average run time. A stored setting that does not make sense is not used:
    its row says why (``problem``), and the decorator's setting shows."""
    from .core import registry
    from .core.text import describe
    stored: dict[str, dict[str, Any]] = {}
    for row in db.read(db.manager.function_overrides):
        stored[name_of(row.get("name"))] = row
    names = set(registry.job_functions()) | set(stored) | {
        name_of(name) for name in job_function_names(db)}
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in db.read(lambda conn: _query(db, conn, "dashboard_function_counts")):
        counts[name_of(row["func_name"])][name_of(row["state"])] += row["jobs"]
    durations: dict[str, dict[str, Any]] = {}
    for row in db.read(lambda conn: _query(db, conn, "dashboard_function_durations",
                                           {"seconds": window})):
        durations.setdefault(name_of(row["func_name"]), row)
    out = []
    for name in sorted(names):
        func = registry.job_function(name)
        row = stored.get(name)
        problems = []
        pattern = None
        if row is not None and row.get("retry_pattern"):
            try:
                pattern = _stored_retry_pattern(row["retry_pattern"])
            except Exception as exc:
                problems.append(f"stored retry pattern {describe(row['retry_pattern'], 60)} "
                                f"not used: {describe(str(exc), 120)}")
        channel = row.get("channel") if row is not None else None
        if channel is not None and not is_channel_name(channel):
            problems.append(f"stored channel {describe(channel, 60)} is not a channel name")
        done = durations.get(name)
        out.append({
            "name": name, "registered": func is not None,
            "default_channel": func.default_channel if func else None,
            "channel": channel or (func.default_channel if func else None),
            "channel_overridden": bool(channel),
            "retry_pattern": pattern if pattern is not None
            else (func.retry_pattern if func else {}),
            "retry_pattern_overridden": pattern is not None,
            "timeout": func.timeout if func else None,
            "related_action": bool(func and func.related_action),
            "description": func.description if func else "",
            "counts": dict(counts.get(name, {})),
            "done_recently": done["jobs"] if done else 0,
            "avg_duration": done["avg_duration"] if done else None,
            "problem": "; ".join(problems) or None})
    return out


def _stored_retry_pattern(text: Any) -> dict[int, Any]:
    """A retry pattern as stored (JSON ``{"1": 60, "5": 300}``)."""
    import json

    from .core.retry import validate_retry_pattern
    data = json.loads(text) if isinstance(text, str) else text
    if not isinstance(data, dict):
        raise ConfigurationError("not a JSON object")
    return validate_retry_pattern({int(key): value for key, value in data.items()})


def graph_rows(db: Database, graph_uuid: str
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The jobs of a graph (what a job's page shows of them, texts read up to
    LISTED_READ characters) and its (parent_uuid, child_uuid) edges."""
    params = {"graph_uuid": graph_uuid, "text_read": LISTED_READ}
    return db.read(lambda conn: (_query(db, conn, "dashboard_graph_jobs", params),
                                 _query(db, conn, "dashboard_graph_edges", params)))


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
