"""Read models: what the dashboard, the metrics and the command line show, as named
queries of each dialect's ``dashboard.sql`` (and a few of ``queries.sql``).

With the store, the one place that names queries. The jobs page's statements are
templates filled with the fragments of the filters in use: a filter not in use is not in
the statement, so that the planner uses the index of those that are. Values are always
bound, never spliced.

What they read is data: a row written by hand or by another tool may hold anything
(SQLite stores any value in any column, and text that is not UTF-8 arrives with lone
surrogates). A bad value costs its row, never the read: callers turn stored names into
text with ``core.rows.as_name`` before they sort or compare them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backends.base import Connector, Row
from ..core import states, tallies
from ..core.channels import normalize_name
from ..core.errors import ConfigurationError, NoSuchJobError
from ..core.job import canonical_uuid
from ..core.joblog import stored_lines
from ..core.rows import as_name, counted
from ..core.text import describe, displayable

#: attempts whose logs a job's page and ``queuejob jobs UUID`` show
LOGGED_ATTEMPTS = 20

#: the sort keys of the jobs page (a "-" before one sorts descending)
JOB_SORTS = ("created", "priority", "eta", "started", "done")
_TEMPLATE = re.compile(r"/\* TEMPLATE: (\w+) \*/")
#: the range of the database's whole numbers (ids, user ids, cursors)
INT64 = (-(2**63), 2**63 - 1)
#: the longest page cursor read
MAX_CURSOR = 100
#: characters of each text of a job a list page reads (one more than it shows, so
#: that it knows when a text was longer)
LISTED_READ = 301
#: the most concurrency keys of a channel shown (and exported as metric labels)
TOP_KEYS = 10
#: the most jobs of a channel read to count its running, and its pending, jobs per key:
#: the count stays cheap whatever the backlog (a larger one is counted in part)
KEY_SCAN = 10_000


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
    #: the exception a job failed with (``exc_name``, ``module.Class``)
    exc_name: str | None = None


@dataclass
class JobPage:
    rows: list[dict[str, Any]]
    #: cursors of the previous and the next page (None: there is none)
    previous: str | None
    next: str | None


@dataclass
class KeyLoad:
    """The concurrency keys of a channel's subtree: (key, running jobs), the busiest
    first, and (key, pending jobs), the most waiting first. ``*_partial``: more jobs
    than KEY_SCAN were there, and only the first KEY_SCAN (in key order) were counted."""

    running: list[tuple[Any, int]] = field(default_factory=list)
    pending: list[tuple[Any, int]] = field(default_factory=list)
    running_partial: bool = False
    pending_partial: bool = False



class JobReads:
    """The read models of one connector; every method takes the connection (a reading
    transaction: on SQLite it takes no write lock)."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.dialect = connector.dialect

    def _query(self, conn: Any, name: str, params: dict[str, Any] | None = None,
               **parts: str) -> list[Row]:
        """Run a named query, its /* TEMPLATE: x */ markers replaced by ``parts`` (SQL
        made of dashboard.sql fragments only)."""
        if parts:
            return self.connector.execute_composed(conn, name, parts, params or {})
        return self.connector.execute(conn, name, params or {})

    def _fragment(self, name: str) -> str:
        return self.connector.queries[f"dashboard_{name}"]

    def _where(self, terms: list[str]) -> str:
        return " AND ".join(self._fragment(term) for term in terms) or "1 = 1"

    # -- one job, and graphs ---------------------------------------------------------------
    def load(self, conn: Any, job_uuid: str) -> Row | None:
        """A job's whole row (None when there is none)."""
        rows = self.connector.execute(conn, "load_job", {"uuid": canonical_uuid(job_uuid)})
        return rows[0] if rows else None

    def job_logs(self, conn: Any, job_uuid: str, limit: int = LOGGED_ATTEMPTS
                 ) -> list[dict[str, Any]]:
        """What the job's last ``limit`` attempts logged, the last first: ``attempt``,
        ``lines`` (``core.joblog.LogLine``), ``dropped`` (lines over the limits) and
        ``problem`` (why some stored lines could not be read, or None)."""
        out = []
        for row in self.connector.execute(conn, "job_logs", {
                "uuid": canonical_uuid(job_uuid), "limit": limit}):
            lines, problem = stored_lines(row["lines"])
            out.append({"attempt": row["attempt"], "lines": lines,
                        "dropped": counted(row["dropped"]), "problem": problem})
        return out

    def graph(self, conn: Any, graph_uuid: str) -> tuple[list[Row], list[Row]]:
        """The jobs of a graph (texts read up to LISTED_READ characters) and its
        (parent_uuid, child_uuid) edges."""
        params = {"graph_uuid": graph_uuid, "text_read": LISTED_READ}
        return (self._query(conn, "dashboard_graph_jobs", params),
                self._query(conn, "dashboard_graph_edges", params))

    # -- pages of jobs ---------------------------------------------------------------------
    def page(self, conn: Any, filters: JobFilter, *, sort: str = "-created",
                 after: str | None = None, before: str | None = None, limit: int = 50
                 ) -> JobPage:
        """One page of the jobs matching ``filters`` in ``sort`` order (keyset pagination:
        ``after``/``before`` are cursors of JobPage.next/previous). Each text of a row is
        read up to LISTED_READ characters (the exception: its last ones), never whole."""
        descending = sort.startswith("-")
        key = sort[1:] if descending else sort
        if key not in JOB_SORTS:
            raise ConfigurationError(f"unknown sort {describe(sort, 40)} "
                                     f"(one of {', '.join(JOB_SORTS)})")
        found = self._filter_terms(filters)
        assert found is not None
        terms, params = found
        backwards = before is not None
        cursor = before if backwards else after
        where = [self._fragment(term) for term in terms]
        # reading forwards in display order: after the cursor; backwards: before it, in the
        # reverse order, then flipped
        greater = descending == backwards
        if cursor is not None:
            value, last_id = self._parse_cursor(key, cursor)
            if key == "created":
                where.append(self._fragment("filter_after_id" if greater else "filter_before_id"))
                params["after_id" if greater else "before_id"] = last_id
            else:
                key_sql = self._fragment(f"sort_{key}")
                where.append(_TEMPLATE.sub(lambda _: key_sql, self._fragment(
                    "keyset_after" if greater else "keyset_before")))
                params.update(cursor_key=value, cursor_id=last_id)
        direction = "DESC" if descending != backwards else "ASC"
        key_sql = self._fragment(f"sort_{key}")
        order = f"{key_sql} {direction}" + (f", id {direction}" if key != "created" else "")
        params["limit"] = limit + 1
        params["text_read"] = LISTED_READ
        rows = self._query(conn, "dashboard_jobs", params,
                           where=" AND ".join(where) or "1 = 1", order=order, key=key_sql)
        more = len(rows) > limit
        rows = rows[:limit]
        if backwards:
            rows.reverse()
        if not rows:
            return JobPage([], None, None)
        first, last = self._cursor_text(key, rows[0]), self._cursor_text(key, rows[-1])
        if backwards:
            return JobPage(rows, first if more else None, last)
        return JobPage(rows, first if cursor is not None else None, last if more else None)


    def count(self, conn: Any, filters: JobFilter, action: str | None = None,
              upto: int | None = None) -> int:
        """Jobs matching ``filters`` (and that ``action`` applies to), up to job id
        ``upto``."""
        found = self._filter_terms(filters, action)
        if found is None:
            return 0
        terms, params = found
        if upto is not None:
            terms.append("filter_upto")
            params["upto"] = _whole(upto, "upto")
        return self._query(conn, "dashboard_count_jobs", params,
                           where=self._where(terms))[0]["jobs"]

    def matching(self, conn: Any, filters: JobFilter, action: str, *, upto: int,
                 after_id: int, limit: int) -> list[Row] | None:
        """The next ``limit`` jobs (id, uuid) after ``after_id`` matching ``filters`` that
        ``action`` applies to, up to job id ``upto``; None when none ever can."""
        found = self._filter_terms(filters, action)
        if found is None:
            return None
        terms, params = found
        terms += ["filter_upto", "filter_after_id"]
        params.update(upto=_whole(upto, "upto"), after_id=after_id, limit=limit)
        return self._query(conn, "dashboard_job_uuids", params, where=self._where(terms))

    def last_id(self, conn: Any) -> int:
        """The id of the newest job: actions on a filter act on the jobs up to it."""
        return self._query(conn, "dashboard_last_id")[0]["id"]

    # -- counts and summaries --------------------------------------------------------------
    def counts(self, conn: Any) -> list[Row]:
        """Jobs per (stored) channel and state."""
        return self.connector.execute(conn, "count_jobs")

    def job_channels(self, conn: Any) -> list[Any]:
        """The channels of unfinished jobs and the configured ones (as stored)."""
        return [row["name"] for row in self._query(conn, "dashboard_distinct_channels")]

    def job_functions(self, conn: Any) -> list[Any]:
        """The job functions of unfinished jobs and of stored settings (as stored)."""
        return [row["name"] for row in self._query(conn, "dashboard_distinct_functions")]

    def throughput(self, conn: Any, seconds: float) -> list[Row]:
        """Jobs done and failed per minute (since the epoch) over the last ``seconds``
        (whole minutes, ``core.tallies``), and the current minute (``kind`` "now")."""
        return self._query(conn, "dashboard_throughput", _window(seconds))

    def queue(self, conn: Any) -> Row:
        """Pending jobs due and scheduled, and the wait of the oldest due one."""
        return self._query(conn, "dashboard_queue")[0]

    def running(self, conn: Any, limit: int) -> list[Row]:
        """Started jobs, the longest running first (texts read up to LISTED_READ)."""
        return self._query(conn, "dashboard_running_jobs",
                           {"limit": limit, "text_read": LISTED_READ})

    def function_counts(self, conn: Any) -> list[Row]:
        """Unfinished jobs per function and state."""
        return self._query(conn, "dashboard_function_counts")

    def function_durations(self, conn: Any, seconds: float) -> list[Row]:
        """Jobs done per function in the last ``seconds`` (whole minutes,
        ``core.tallies``), and their average run time."""
        return self._query(conn, "dashboard_function_durations", _window(seconds))

    def failures_by_exception(self, conn: Any, limit: int = 50) -> list[Row]:
        """Failed jobs per exception (``exc_name``), the most frequent first."""
        return self._query(conn, "dashboard_failures_by_exception", {"limit": limit})

    def metric_totals(self, conn: Any) -> list[Row]:
        return self._query(conn, "dashboard_metric_totals")

    def metric_timings(self, conn: Any, seconds: float) -> list[Row]:
        return self._query(conn, "dashboard_metric_timings", _window(seconds))

    def workers_alive(self, conn: Any) -> int:
        return self._query(conn, "dashboard_workers_alive")[0]["workers"]

    def workers(self, conn: Any, limit: int = 200) -> list[Row]:
        """Workers, the live ones first, with their running jobs."""
        return self.connector.execute(conn, "list_workers", {"limit": limit})

    # -- flow control: rate use, keys ------------------------------------------------------
    def rate_used(self, conn: Any, rated: Mapping[str, float]) -> dict[str, int]:
        """For each rate-limited channel (name -> period in seconds): the starts within
        its window, counted as the claims count it (SQLite: one statement per channel)."""
        if not rated:
            return {}
        rows = self.connector.execute_many(conn, "rate_window", [
            {"channel": name, "period": float(period)} for name, period in rated.items()])
        return {row["channel"]: counted(row["used"]) for row in rows
                if isinstance(row.get("channel"), str)}

    def channel_keys(self, conn: Any, channels: Sequence[str], limit: int = TOP_KEYS
                     ) -> dict[str, KeyLoad]:
        """For each channel: the concurrency keys of its subtree's running jobs, the
        busiest first, and of its pending jobs, the most waiting first (at most ``limit``
        of each, counted from at most KEY_SCAN jobs each). Keys are as stored (any value,
        read up to LISTED_READ characters)."""
        if not channels:
            return {}
        params = [{"channel": name, "channel_prefix": name + ".",
                   "channel_prefix_end": name + "/", "scan": KEY_SCAN, "limit": limit,
                   "text_read": LISTED_READ} for name in channels]
        out = {name: KeyLoad() for name in channels}
        for query, running in (("dashboard_running_keys", True),
                               ("dashboard_waiting_keys", False)):
            for row in self.connector.execute_many(conn, query, params):
                load = out.get(row["channel"])
                if load is None:
                    continue
                found = (row["key"], counted(row["jobs"]))
                (load.running if running else load.pending).append(found)
                if counted(row["scanned"]) >= KEY_SCAN:
                    if running:
                        load.running_partial = True
                    else:
                        load.pending_partial = True
        return out

    # -- configuration ---------------------------------------------------------------------
    def channel_configs(self, conn: Any) -> list[Row]:
        """The stored channel rows (as stored: ``mapping.channel_specs`` checks them)."""
        return self.connector.execute(conn, "channel_configs")

    def declared_channels(self, conn: Any) -> list[Row]:
        """The channel rules live workers declare: rows of ``id`` and ``channels``, as
        stored (``mapping.declared_specs`` checks them)."""
        return self.connector.execute(conn, "declared_channels")

    def function_configs(self, conn: Any) -> list[Row]:
        """The stored job function rows (as stored)."""
        return self.connector.execute(conn, "function_overrides")

    def schedule_states(self, conn: Any) -> list[Row]:
        return self.connector.execute(conn, "schedule_states")

    def database_now(self, conn: Any) -> dt.datetime:
        return self.connector.execute(conn, "database_now")[0]["now"]

    def _filter_terms(  # noqa: C901 - one term per filter of the jobs page
            self, filters: JobFilter, action: str | None = None
                      ) -> tuple[list[str], dict[str, Any]] | None:
        """The WHERE fragments and parameters of a filter; None when nothing can match."""
        terms: list[str] = []
        params: dict[str, Any] = {}
        if filters.state is not None and filters.state not in states.STATES:
            raise ConfigurationError(f"unknown state {filters.state!r} "
                                     f"(one of {', '.join(states.STATES)})")
        if action is not None:
            allowed = sorted(states.applies_to(action))
            if filters.state is not None and filters.state not in allowed:
                return None
            chosen = [filters.state] if filters.state else allowed
            if not states.FINISHED & set(chosen):
                # the unfinished term lets the database read the (partial) index of
                # unfinished jobs
                terms.append("filter_unfinished")
            terms.append("filter_action_states")
            params.update({f"state_{index + 1}": chosen[min(index, len(chosen) - 1)]
                           for index in range(len(states.STATES))})
        elif filters.state:
            terms.append("filter_state")
            params["state"] = filters.state
            if filters.state not in states.FINISHED:
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
        if filters.exc_name:
            terms.append("filter_exception")
            params["exc_name"] = filters.exc_name
        if filters.user_id is not None:
            terms.append("filter_user")
            params["user_id"] = _whole(filters.user_id, "user")
        search = (filters.search or "").strip()
        if search:
            if _is_uuid(search):
                params["uuid"] = canonical_uuid(search)
                terms.append("filter_uuid")
            else:
                escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                params["pattern"] = f"%{escaped}%"
                terms.append("filter_text")
        return terms, params

    def _cursor_text(self, sort: str, row: dict[str, Any]) -> str:
        """A page's cursor: its sort key and id. A key of another type than the sort's (a
        row written by hand) gives a cursor that is refused when followed (400), nothing
        worse."""
        value = row["sort_key"]
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        return displayable(f"{as_name(value)[:MAX_CURSOR]}~{row['id']}")

    def _parse_cursor(self, sort: str, text: str) -> tuple[Any, int]:
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
            if self.dialect == "sqlite":
                # the stored float itself, so that no job is skipped or shown twice
                return _finite(value), last_id
            parsed = dt.datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("naive time")
            return parsed, last_id
        except (ValueError, OverflowError):
            raise ConfigurationError(f"bad page cursor {describe(text, 60)}") from None


def _whole(value: Any, what: str, low: int = INT64[0], high: int = INT64[1]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{what} must be a whole number from {low} to {high}")
    return value


def _is_uuid(text: str | None) -> bool:
    try:
        canonical_uuid(text or "")
    except NoSuchJobError:
        return False
    return True


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
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def _window(seconds: float) -> dict[str, Any]:
    """A window's parameters: its whole minutes (the done jobs' tally) and its seconds."""
    minutes = tallies.window_minutes(seconds)
    return {"minutes": minutes, "seconds": minutes * 60.0}
