"""Job operations for people: manual actions, listings, statistics, channels.

The library functions (``queuejob.requeue`` ...), the CLI and the dashboard all
call these; each is one transaction through the manager.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .core import states
from .core.channels import ChannelSpec, ChannelTree, normalize_name
from .core.errors import ConfigurationError, NoSuchJobError
from .database import Database, Session, default_user


def _user_of(session: Session) -> str:
    user = session.context.get("user") if session.context else None
    if user:
        return str(user)
    if session.user_id is not None:
        return f"user {session.user_id}"
    return default_user()


def _change(action: str, session: Session, uuids: tuple[str, ...]) -> list[str]:
    return session.db.manager.change_state(session._writable(), action, uuids,
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
