"""The dashboard's pages and actions. Reads and writes go through queuejob.operations.

Pages are plain functions (Starlette runs them in its thread pool: the database calls
block); actions are coroutines that read their form, check its origin and CSRF token,
then run the operation in the thread pool and redirect to the page that shows the
result (303, with a one-time message).

What a stored row holds and what a person types is data. A row's bad value (written by
hand, by another tool, damaged) costs that one row — shown escaped, cut, or as what it
is, through ``display`` — never the page; a bad query or form value is a 400 that says
which value, never a 500.
"""

from __future__ import annotations

import datetime as dt
import pprint
import re
import urllib.parse
from collections import defaultdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from .. import metrics as metrics_module
from .. import operations
from ..core import codec, limits, states
from ..core.channels import (
    MAX_CAPACITY,
    MAX_REMOVAL_INTERVAL,
    MAX_THROTTLE,
    format_rate,
    normalize_name,
)
from ..core.errors import ConfigurationError, JobStateError, NoSuchJobError
from ..core.job import canonical_uuid
from ..core.rows import as_name, is_channel_name
from ..core.text import describe
from ..store import reads
from . import charts, display, forms, graphs
from .forms import MAX_EXC_NAME, MAX_SEARCH
from .forms import UNUSABLE as _UNUSABLE
from .forms import bad as _bad
from .forms import decimal as _decimal
from .forms import field as _field
from .forms import whole as _whole
from .security import CSRF_COOKIE, CSRF_FIELD, FLASH_COOKIE, same_origin

#: the words of the manual actions, as the dashboard's buttons and messages show them
VERBS = {name: action.verb.capitalize() for name, action in states.ACTIONS.items()}
PAST = {name: action.past.capitalize() for name, action in states.ACTIONS.items()}
#: the words of an edit of jobs (priority, eta, channel), on the bulk form and its messages
VERBS_ALL = {**VERBS, "edit": "Edit"}
PAST_ALL = {**PAST, "edit": "Edited"}
#: the longest text of arguments or results shown on a job page
MAX_TEXT = 100_000
#: the most exception names offered by the jobs page's filter and shown on the overview
MAX_FAILURE_GROUPS = 50


def _dashboard(request: Request) -> Any:
    return request.app.state.dashboard


def _user(request: Request) -> str:
    """Who acts, written in the jobs' results ("Cancelled by ...")."""
    user = _dashboard(request).user
    return f"{user} (dashboard)" if user else "dashboard"


# -- filters of the jobs page -------------------------------------------------------------
FILTER_KEYS = ("state", "channel", "function", "model", "user", "exception", "q", "all")
SORTS = frozenset({*operations.JOB_SORTS, *(f"-{key}" for key in operations.JOB_SORTS)})


def _filters(params: Any) -> operations.JobFilter:
    """The jobs page's filter from a query or a form: 400 for a value that is not one."""
    state = _field(params, "state", 40) or None
    if state is not None and state not in states.STATES:
        raise _bad("state", state, f"one of {', '.join(states.STATES)} is needed")
    channel = _field(params, "channel", limits.CHANNEL) or None
    if channel is not None:
        try:
            channel = normalize_name(channel)
        except ConfigurationError as exc:
            raise HTTPException(400, f"bad channel: {exc}") from None
    user = _field(params, "user", 40)
    return operations.JobFilter(
        state=state, channel=channel,
        func_name=_field(params, "function", limits.FUNC_NAME) or None,
        model_name=_field(params, "model", limits.MODEL_NAME) or None,
        exc_name=_field(params, "exception", MAX_EXC_NAME) or None,
        user_id=_whole(user, "user") if user else None,
        search=_field(params, "q", MAX_SEARCH) or None,
        show_all=params.get("all") == "1")


def _filter_params(filters: operations.JobFilter) -> dict[str, str]:
    out = {"state": filters.state, "channel": filters.channel, "function": filters.func_name,
           "model": filters.model_name, "exception": filters.exc_name,
           "user": None if filters.user_id is None else str(filters.user_id),
           "q": filters.search, "all": "1" if filters.show_all else None}
    return {key: value for key, value in out.items() if value}


def _query(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urllib.parse.urlencode({key: value for key, value in merged.items()
                                   if value not in (None, "")})


def _describe(filters: operations.JobFilter) -> str:
    parts = [f"state {filters.state}" if filters.state else
             ("every state" if filters.show_all else "not done nor cancelled")]
    for label, value in (("channel", filters.channel), ("function", filters.func_name),
                         ("model", filters.model_name), ("exception", filters.exc_name),
                         ("user", filters.user_id),
                         ("search", filters.search)):
        if value not in (None, ""):
            parts.append(f"{label} {display.text(value, 100, one_line=True)}")
    return ", ".join(parts)


# -- pages ----------------------------------------------------------------------------------
def _channel_view(entry: dict[str, Any]) -> dict[str, Any]:
    """A channel of the tree for a template: its name as text, a link (and forms) only
    for a channel name."""
    usable = not entry.get("bad_name")
    return {**entry, "name": display.text(
        entry["name"], limits.CHANNEL if usable else limits.LISTED, one_line=True),
        "link": entry["name"] if usable else None,
        "paused_by": display.text(entry.get("paused_by"), limits.CHANNEL, one_line=True),
        "capacity": display.whole_number(entry.get("capacity")),
        "throttle": display.number(entry.get("throttle")),
        "removal_interval": display.number(entry.get("removal_interval")),
        "declared_by": [display.text(worker, limits.LISTED, one_line=True)
                        for worker in entry.get("declared_by") or []],
        "disagreeing": [display.text(worker, limits.LISTED, one_line=True)
                        for worker in entry.get("disagreeing") or []],
        "rate": display.text(entry.get("rate"), display.SHORT, one_line=True),
        "rate_used": display.whole_number(entry.get("rate_used")),
        "key_capacity": display.whole_number(entry.get("key_capacity")),
        # keys are data (a tenant's name, a row written by hand): shown as text, cut (the
        # query read a prefix of a long one)
        "busiest_keys": [(_key_text(item.get("key")), display.whole_number(item.get("running")))
                         for item in entry.get("busiest_keys") or []],
        "waiting_keys": [(_key_text(item.get("key")), display.whole_number(item.get("pending")))
                         for item in entry.get("waiting_keys") or []]}


def _key_text(key: Any) -> str:
    return display.text(key, limits.CONCURRENCY_KEY, one_line=True, whole=False)


def overview(request: Request) -> Response:
    dashboard = _dashboard(request)
    db = dashboard.db
    span = request.query_params.get("range", "hour")
    if span not in charts.RANGES:
        raise _bad("range", span, "hour or day is needed")
    counts = operations.stats(db)
    by_state: dict[str, int] = defaultdict(int)
    for by_channel in counts.values():
        for state, count in by_channel.items():
            by_state[state] += count
    tree = operations.channels(db)
    chart = charts.throughput_chart(operations.throughput(db, charts.RANGES[span]), span)
    return dashboard.render(request, "overview.html", {
        "nav": "overview", "states": [str(state) for state in states.STATES],
        "by_state": by_state, "total": sum(by_state.values()),
        "queue": _queue(operations.queue_state(db)),
        "failures": failure_groups(db),
        "channels": [_channel_view(entry) for entry in tree],
        "counts": [(display.text(channel, limits.LISTED, one_line=True), by_channel)
                   for channel, by_channel in sorted(counts.items())],
        "chart": chart, "range": span, "refresh": dashboard.refresh})


def _queue(queue: dict[str, Any]) -> dict[str, Any]:
    return {"due": display.whole_number(queue.get("due")),
            "scheduled": display.whole_number(queue.get("scheduled")),
            "oldest_due_age": display.number(queue.get("oldest_due_age"))}


def exception_link(name: Any) -> str | None:
    """An exception name (``exc_name``) the jobs page's filter can take: a value stored
    by hand may be none (shown, not linked)."""
    if isinstance(name, str) and name and len(name) <= MAX_EXC_NAME \
            and not _UNUSABLE.search(name) and name == name.strip():
        return name
    return None


def failure_groups(db: Any) -> list[dict[str, Any]]:
    """The failed jobs by exception, the most frequent first: each group's name as
    text, the filter of its jobs (None: a name no filter takes, or none recorded), its
    count, those of the last hour and day, and its last failure."""
    groups = []
    for row in operations.failures_by_exception(db, MAX_FAILURE_GROUPS):
        name = row.get("exc_name")
        groups.append({
            "name": "" if name is None else display.text(name, limits.LISTED, one_line=True),
            "link": exception_link(name), "jobs": display.whole_number(row.get("jobs")),
            "last_hour": display.whole_number(row.get("last_hour")),
            "last_day": display.whole_number(row.get("last_day")),
            "last_failed": display.moment(row.get("last_failed"))})
    return groups


def jobs(request: Request) -> Response:
    return jobs_page(request, request.query_params)


def _bulk_actions(filters: operations.JobFilter) -> list[str]:
    """The actions on every matching job that may change some: all of them, or those
    that apply to the state filtered by."""
    return [action for action in operations.ACTIONS
            if filters.state is None or filters.state in states.applies_to(action)]


def jobs_page(request: Request, params: Any, *, form_error: str | None = None,
              typed: dict[str, str] | None = None, status_code: int = 200) -> Response:
    """The jobs page of the filter, sort and page in ``params`` (a query, or the form of
    a refused bulk edit: shown again with its error and what was typed)."""
    dashboard = _dashboard(request)
    db = dashboard.db
    filters = _filters(params)
    sort = _field(params, "sort", 20) or "-created"
    if sort not in SORTS:
        raise _bad("sort", sort, "one of " + ", ".join(sorted(SORTS)) + " is needed")
    limit_text = _field(params, "limit", 40)
    limit = min(max(_whole(limit_text, "limit"), 1), 500) if limit_text \
        else dashboard.page_size
    after = _field(params, "after", reads.MAX_CURSOR) or None
    before = _field(params, "before", reads.MAX_CURSOR) or None
    try:
        page = operations.find_jobs(db, filters, sort=sort, after=after, before=before,
                                   limit=limit)
    except ValueError as exc:  # ConfigurationError is a ValueError
        raise HTTPException(400, str(exc)) from None
    channels, functions = dashboard.suggestions()
    base = {**_filter_params(filters), "sort": sort if sort != "-created" else None,
            "limit": str(limit) if limit != dashboard.page_size else None}
    sorts = {}
    for key in operations.JOB_SORTS:
        # a click on the column sorting by it flips the direction
        flipped = key if sort == f"-{key}" else f"-{key}"
        sorts[key] = {"query": _query(base, sort=flipped),
                      "mark": "▼" if sort == f"-{key}" else "▲" if sort == key else ""}
    rows = []
    for row in page.rows:
        # the texts are prefixes the query cut (LISTED_READ characters)
        view = display.job_row(row, listed=True, whole=False)
        view["exc_line"] = display.last_line(row.get("exc_info")) \
            if row.get("state") == "failed" else ""
        view["exc_link"] = exception_link(row.get("exc_name"))
        # a started job's bar (the query reads the report of started jobs only)
        view["progress"] = display.progress(row, whole=False) \
            if row.get("state") == "started" else None
        rows.append(view)
    return dashboard.render(request, "jobs.html", {
        "nav": "jobs", "filters": filters, "rows": rows, "sorts": sorts,
        "states": [str(state) for state in states.STATES],
        "channels": channels, "functions": functions, "exceptions": dashboard.exceptions(),
        "previous": _query(base, before=page.previous) if page.previous else None,
        "next": _query(base, after=page.next) if page.next else None,
        "filter_query": _query(_filter_params(filters)),
        "filter_fields": _filter_params(filters),
        "description": _describe(filters), "verbs": VERBS,
        "bulk_actions": _bulk_actions(filters),
        "editable": filters.state is None or filters.state in states.EDITABLE,
        "typed": typed or {}, "form_error": form_error}, status_code=status_code)


def confirm(request: Request) -> Response:
    """How many jobs an action on every job matching a filter changes; its form. An
    edit's values are checked first: a bad one shows the jobs page again, with its
    error."""
    dashboard = _dashboard(request)
    params = request.query_params
    action = params.get("action", "")
    if action not in VERBS_ALL:
        raise _bad("action", action, "requeue, done, cancel or edit is needed")
    filters = _filters(params)
    edit = None
    if action == "edit":
        try:
            edit = forms.edit_values(params)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            return jobs_page(request, params, form_error=exc.detail,
                             typed=forms.typed(params, forms.EDIT_FIELDS), status_code=400)
    upto = operations.last_job_id(dashboard.db)
    try:
        count = operations.count_matching(dashboard.db, filters, action, upto)
    except ValueError as exc:  # a bad channel name, for one
        raise HTTPException(400, str(exc)) from None
    allowed = sorted(str(state) for state in states.applies_to(action))
    return dashboard.render(request, "confirm.html", {
        "nav": "jobs", "action": action, "verb": VERBS_ALL[action], "count": count,
        "upto": upto, "fields": _filter_params(filters), "allowed": allowed,
        "changes": edit.fields if edit else {},
        "change_text": edit.describe() if edit else "",
        "description": _describe(filters),
        "back": _query(_filter_params(filters))})


def job(request: Request) -> Response:
    return job_page(request, str(request.path_params["uuid"]))


def job_page(request: Request, job_uuid: str, *, form_error: str | None = None,
             typed: dict[str, str] | None = None, status_code: int = 200) -> Response:
    """A job's page (with the error of a refused edit and what was typed, if any)."""
    dashboard = _dashboard(request)
    db = dashboard.db
    try:
        row = operations.load_job(db, job_uuid)
    except NoSuchJobError:
        raise HTTPException(404, f"no job {job_uuid}") from None
    view = display.job_row(row, listed=False, text_limit=MAX_TEXT)
    view["channel_link"] = row["channel"] if is_channel_name(
        row.get("channel")) else None
    view["exc_link"] = exception_link(row.get("exc_name"))
    state = row.get("state")
    actions = [action for action in operations.ACTIONS
               if isinstance(state, str) and states.refusal(action, state) is None]
    progress = display.progress(row)
    # the time of the last report shown (a report of an earlier attempt is not)
    view["date_progress"] = display.moment(row.get("date_progress")) if progress else None
    logs, log_problem = _logs(db, job_uuid)
    return dashboard.render(request, "job.html", {
        "nav": "jobs", "job": view, "arguments": _arguments(db, row),
        "related": _related(db, row), "timeline": _timeline(view), "actions": actions,
        "verbs": VERBS, "result": view.get("result"), "exc_info": view.get("exc_info"),
        "editable": isinstance(state, str) and state in states.EDITABLE,
        "typed": typed or {}, "form_error": form_error,
        "graph": _graph(db, row), "progress": progress,
        "logs": [_log_view(entry, row) for entry in logs], "log_problem": log_problem,
        "running_attempt": _running_attempt(row, logs),
        "live": {"uuid": canonical_uuid(job_uuid), "marker": log_marker(logs),
                 "ended": state in states.ENDED,
                 "interval": dashboard.live_interval}}, status_code=status_code)


# -- watching a job run: its progress and its log, live -----------------------------------
def _logs(db: Any, job_uuid: str) -> tuple[list[dict[str, Any]], str | None]:
    """What the job's attempts logged (``operations.job_logs``), and why none can be
    shown when a stored log breaks its reader (JSON nested thousands deep, written by
    hand): that costs the log, never the page."""
    try:
        return operations.job_logs(db, job_uuid), None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        return [], f"the stored log cannot be read here: {_reason(exc)}"


def _running_attempt(row: dict[str, Any], logs: list[dict[str, Any]]) -> int | None:
    """The attempt a started job runs, when it has no stored log yet (a running
    attempt's lines are stored as it logs them, at most once a second)."""
    attempt = row.get("attempt")
    if row.get("state") != "started" or not display.is_int(attempt):
        return None
    return None if any(entry.get("attempt") == attempt for entry in logs) else attempt


def log_marker(logs: list[dict[str, Any]]) -> str:
    """What changes when the job's stored log does: each attempt's number, lines,
    dropped lines and whether some could not be read (the job page fetches its log
    again when the live state's marker differs from its own)."""
    return ",".join(
        f"{display.text(entry.get('attempt'), 20, one_line=True)}:{len(entry['lines'])}"
        f":{entry['dropped']}:{1 if entry['problem'] else 0}" for entry in logs)


def _log_view(entry: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """One attempt's log for the job page: its lines as text (each cut to the limit a
    worker keeps, its own line breaks kept), at most limits.LOG_LINES of them; when it
    was logged; and, for the job's current attempt, when it started and ended."""
    lines = entry["lines"]
    shown = [{"at": display.log_time(line.at),
              "level": display.text(line.level, 20, one_line=True),
              "level_class": display.LOG_LEVELS.get(line.level, "other"),
              "logger": display.text(line.logger, 200, one_line=True),
              "message": display.text(line.message, limits.LOG_LINE)}
             for line in lines[:limits.LOG_LINES]]
    attempt = display.whole_number(entry.get("attempt"))
    current = display.is_int(attempt) and attempt == row.get("attempt")
    state = row.get("state")
    ended = {"done": "date_done", "failed": "date_failed",
             "cancelled": "date_cancelled"}.get(state) if isinstance(state, str) else None
    times = [line.at for line in lines]
    return {"attempt": attempt, "lines": shown, "count": len(lines),
            "not_shown": len(lines) - len(shown), "dropped": max(entry["dropped"], 0),
            "problem": display.text(entry["problem"], 300, one_line=True)
            if entry["problem"] else None,
            "first": display.log_time(min(times)) if times else "",
            "last": display.log_time(max(times)) if times else "",
            "current": current,
            "started": display.time(row.get("date_started")) if current else None,
            "ended_label": state if current and ended else None,
            "ended": display.time(row.get(ended)) if current and ended else None}


def live_state(row: dict[str, Any], logs: list[dict[str, Any]], log_problem: str | None
               ) -> dict[str, Any]:
    """What a job page polls while the job has not ended (``/jobs/UUID/live.json``):
    its state, progress, the lines of each attempt's log (counts, not the lines) and
    its dates (ISO 8601, UTC; null when none or not a time). Every value text or a
    number, whatever was stored."""
    progress = display.progress(row)
    state = row.get("state")
    dates = {}
    for key in ("date_created", "eta", "date_enqueued", "date_started", "date_done",
                "date_failed", "date_cancelled", "date_progress"):
        dates[key] = display.iso(display.moment(row.get(key))) or None
    return {
        "uuid": display.job_uuid(row.get("uuid"))
        or display.text(row.get("uuid"), limits.LISTED, one_line=True),
        "state": display.text(state, 40, one_line=True),
        "ended": state in states.ENDED, "attempt": display.whole_number(row.get("attempt")),
        "retry": display.whole_number(row.get("retry")),
        "max_retries": display.whole_number(row.get("max_retries")),
        "progress": progress, "dates": dates,
        "logs": [{"attempt": display.whole_number(entry.get("attempt")),
                  "lines": len(entry["lines"]), "dropped": entry["dropped"],
                  "problem": display.text(entry["problem"], 300, one_line=True)
                  if entry["problem"] else None} for entry in logs],
        "log_problem": log_problem, "log_marker": log_marker(logs)}


def job_live(request: Request) -> Response:
    """A job's live state as JSON (``live_state``); 404 when there is no such job."""
    db = _dashboard(request).db
    job_uuid = str(request.path_params["uuid"])
    try:
        row = operations.load_job(db, job_uuid)
    except NoSuchJobError:
        return JSONResponse({"error": f"no job {job_uuid}"}, status_code=404)
    logs, log_problem = _logs(db, job_uuid)
    return JSONResponse(live_state(row, logs, log_problem))


#: the most jobs of other graphs (stood in for keyed jobs) loaded for a graph's drawing
MAX_OUTSIDE = 20


def _graph_job(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A job of a graph for its drawing and table: texts cut, the uuid the stored one
    when it is a uuid (edges refer to it), else its text."""
    view = display.job_row(row, listed=True, whole=False)
    view["uuid"] = view["link"] or view["uuid"]
    view.update(extra)
    return view


def _graph(db: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    """The job's graph: its drawing and its table (graphs.graph_view). A job whose
    identity key was held when the graph was stored waits for the job holding it, which
    may belong to no graph or another one: such parents are shown too, marked."""
    graph_uuid = row.get("graph_uuid")
    if not graph_uuid or not isinstance(graph_uuid, str) or _UNUSABLE.search(graph_uuid):
        return None  # a value written by hand that names no graph (and cannot be sent)
    jobs, edges = operations.graph(db, graph_uuid)
    jobs = [_graph_job(job) for job in jobs]
    if not jobs:
        return None
    inside = {job["uuid"] for job in jobs}
    pairs = []
    for edge in edges:
        parent = as_name(edge["parent_uuid"])
        child = as_name(edge["child_uuid"])
        # an edge written by hand may name anything: only jobs are drawn
        if child in inside and (parent in inside or display.job_uuid(parent)):
            pairs.append((parent, child))
    outside = sorted({parent for parent, _ in pairs if parent not in inside})
    for parent in outside[:MAX_OUTSIDE]:
        try:
            jobs.append(_graph_job(operations.load_job(db, parent), uuid=parent,
                                   external=True))
        except NoSuchJobError:  # removed since (done jobs are cleaned up)
            jobs.append({"uuid": parent, "state": "removed", "func_name": "",
                         "description": "(removed)", "external": True})
    current = display.job_uuid(row.get("uuid")) or display.text(
        row.get("uuid"), limits.LISTED, one_line=True)
    view = graphs.graph_view(jobs, pairs, current)
    view["uuid"] = display.text(graph_uuid, limits.LISTED, one_line=True)
    view["outside"] = len(outside)
    return view


def _reason(exc: BaseException) -> str:
    """Why stored arguments cannot be shown decoded, in one line."""
    if isinstance(exc, RecursionError):
        return "they are nested too deeply to be shown"
    return display.text(str(exc) or type(exc).__name__, 200, one_line=True)


def _arguments(db: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The job's call and its arguments pretty-printed; when they cannot be decoded or
    printed here (a row written by hand, arguments nested hundreds of levels deep), the
    stored text, cut, with the reason in one line. Always shown as text."""
    try:
        args, kwargs = codec.decode_arguments(row.get("args"), row.get("kwargs"),
                                              db.max_args_size)
    except Exception as exc:  # DecodeError; whatever else a stored value may raise
        return _raw_arguments(row, f"Cannot decode the arguments here: {_reason(exc)}")
    try:
        # the stored arguments begin with the model name (the original's convention)
        parts = [repr(arg) for arg in args]
        parts += [f"{key}={value!r}" for key, value in kwargs.items()]
        call = f"{as_name(row.get('func_name'))}({', '.join(parts)})"
        args_text = pprint.pformat(list(args), width=100, sort_dicts=False)
        kwargs_text = pprint.pformat(kwargs, width=100, sort_dicts=False)
    except Exception as exc:  # RecursionError, a repr that fails
        return _raw_arguments(row, f"Cannot show the decoded arguments here: {_reason(exc)}")
    return {"call": display.text(call, MAX_TEXT), "args": display.text(args_text, MAX_TEXT),
            "kwargs": display.text(kwargs_text, MAX_TEXT)}


def _raw_arguments(row: dict[str, Any], reason: str) -> dict[str, Any]:
    """The arguments as stored (cut to MAX_TEXT characters), and why they are."""
    return {"error": reason, "raw": {key: display.text(row.get(key), MAX_TEXT)
                                     for key in ("args", "kwargs")}}


#: the longest related action URL made a link
MAX_URL = 8192
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f\\]")


def related_link(value: str) -> str | None:
    """The URL a related action returned, if it may be a link: an http(s) URL with a
    host, or a path of this site (one leading "/"). Nothing with a backslash, a blank
    or a control character: browsers read "/\\host" and "/<tab>/host" as another host."""
    url = value.strip()
    if not url or len(url) > MAX_URL or _NOT_IN_URL.search(url) or _UNUSABLE.search(url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # a bad IPv6 host, a bad port
        return None
    if parts.scheme in ("http", "https"):
        return url if host else None
    if not parts.scheme and not parts.netloc and url.startswith("/") \
            and not url.startswith("//"):
        return url
    return None


def _related(db: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    """The related action's result: a link when it is an http(s) or same-site URL, text
    otherwise (a javascript: URL stays text)."""
    func_name = row.get("func_name")
    if not isinstance(func_name, str) or not operations.has_related_action(db, func_name):
        return None
    try:
        value = operations.related_action(db, row["uuid"])
    except Exception as exc:
        return {"error": display.text(f"{type(exc).__name__}: {exc}", 500, one_line=True)}
    if isinstance(value, str):
        url = related_link(value)
        return {"url": url} if url else {"text": display.text(value, MAX_TEXT)}
    if value is None:
        return {"text": "(no related action for this job)"}
    try:
        text = pprint.pformat(value, width=100)
    except Exception as exc:
        text = f"(cannot show the related action's result: {_reason(exc)})"
    return {"text": display.text(text, MAX_TEXT)}


def _timeline(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's dates in order, each with its offset from the first; a stored value
    that is not a time comes last, as it is, without an offset."""
    cancelled = job.get("state") == "cancelled"
    labels = (("date_created", "created"), ("eta", "due (eta)"), ("date_enqueued", "enqueued"),
              ("date_started", "started"), ("date_failed", "failed"),
              ("date_cancelled", "cancelled"),
              ("date_done", "cancelled" if cancelled else "done"),
              ("date_progress", "last progress report"))
    events = [{"label": label, "when": job[key]} for key, label in labels if job.get(key)
              # a cancelled job's date_done is its date_cancelled (rows stored before
              # there was one have only the former)
              and not (key == "date_done" and cancelled and job.get("date_cancelled"))]
    times = sorted((event for event in events if isinstance(event["when"], dt.datetime)),
                   key=lambda event: event["when"])
    others = [event for event in events if not isinstance(event["when"], dt.datetime)]
    first = times[0]["when"] if times else None
    for event in times:
        event["offset"] = (event["when"] - first).total_seconds() if first else 0.0
    for event in others:
        event["offset"] = None
    return times + others


def channels(request: Request) -> Response:
    dashboard = _dashboard(request)
    return dashboard.render(request, "channels.html", {
        "nav": "channels",
        "channels": [_channel_view(entry) for entry in operations.channels(dashboard.db)]})


def workers(request: Request) -> Response:
    dashboard = _dashboard(request)
    running: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in operations.running_jobs(dashboard.db):
        view = display.job_row(row, listed=True, whole=False)
        view["running_for"] = display.number(row.get("running_for"))
        view["progress"] = display.progress(row, whole=False)
        running[row.get("worker_id")].append(view)
    rows = []
    for worker in operations.workers(dashboard.db):
        rows.append({
            "id": display.text(worker.get("id"), limits.LISTED, one_line=True),
            "state": display.text(worker.get("state"), 40, one_line=True),
            "hostname": display.text(worker.get("hostname"), limits.LISTED, one_line=True),
            "pid": display.whole_number(worker.get("pid")),
            "heartbeat_age": display.number(worker.get("heartbeat_age")),
            "running": display.whole_number(worker.get("running")),
            "channels": display.text(worker.get("channels"), limits.LISTED, one_line=True),
            "date_started": display.time(worker.get("date_started")),
            "jobs": running.get(worker.get("id"), [])})
    return dashboard.render(request, "workers.html", {
        "nav": "workers", "workers": rows, "refresh": dashboard.refresh})


def metrics(request: Request) -> Response:
    return Response(metrics_module.render(_dashboard(request).db),
                    headers={"content-type": metrics_module.CONTENT_TYPE})


def healthz(request: Request) -> Response:
    db = _dashboard(request).db
    try:
        operations.workers_alive(db)
    except Exception as exc:
        return PlainTextResponse(f"database unreachable: {type(exc).__name__}",
                                 status_code=503)
    return PlainTextResponse("ok")


# -- actions --------------------------------------------------------------------------------
async def _form(request: Request) -> Any:
    """The form of a POST from a dashboard page: same origin and a valid CSRF token."""
    dashboard = _dashboard(request)
    if not same_origin(request, dashboard.origins):
        raise HTTPException(403, "cross-origin request refused (Origin/Referer mismatch)")
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not dashboard.signer.check_csrf(request.cookies.get(CSRF_COOKIE),
                                       token if isinstance(token, str) else None):
        raise HTTPException(403, "missing or bad CSRF token: reload the page")
    return form


def _back(request: Request, path: str, kind: str, text: str) -> Response:
    """The answer to a POST, once its action is done: back to ``path`` with a message."""
    _dashboard(request).forget_suggestions()  # the action may have changed them
    response = RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)
    response.set_cookie(FLASH_COOKIE, _dashboard(request).signer.flash_cookie(
        kind, display.text(text, 1000, one_line=True)), httponly=True, samesite="strict",
        path="/", secure=request.url.scheme == "https")
    return response


async def job_action(request: Request) -> Response:
    form = await _form(request)
    action = request.path_params["action"]
    job_uuid = str(request.path_params["uuid"])
    if action == "edit":
        return await _edit_job(request, job_uuid, form)
    if action not in operations.ACTIONS:
        raise HTTPException(404, f"no action {describe(action, 40)}")
    db = _dashboard(request).db
    user = _user(request)

    def act() -> list[str]:
        with db.session(context={"user": user}) as session:
            return operations.ACTIONS[action](session, job_uuid)

    path = f"/jobs/{job_uuid}"
    try:
        await run_in_threadpool(act)
    except NoSuchJobError as exc:
        return _back(request, "/jobs", "error", str(exc))
    except JobStateError as exc:
        return _back(request, path, "error", str(exc))
    return _back(request, path, "ok", f"{PAST[action]} job {job_uuid}.")


async def _edit_job(request: Request, job_uuid: str, form: Any) -> Response:
    """Change a job's priority, eta and channel (a job that has not started): a bad
    value shows the job's page again with its error and what was typed."""
    path = f"/jobs/{job_uuid}"

    async def refused(message: str) -> Response:
        return await run_in_threadpool(
            lambda: job_page(request, job_uuid, form_error=message, status_code=400,
                             typed=forms.typed(form, forms.EDIT_FIELDS)))
    try:
        edit = forms.edit_values(form)
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return await refused(exc.detail)
    db = _dashboard(request).db

    def act() -> list[str]:
        with db.session() as session:
            return operations.edit(session, job_uuid, **edit.options())
    try:
        await run_in_threadpool(act)
    except NoSuchJobError as exc:
        return _back(request, "/jobs", "error", str(exc))
    except JobStateError as exc:  # started meanwhile
        return _back(request, path, "error", str(exc))
    except (ValueError, TypeError) as exc:  # refused by the core's rules
        return await refused(display.text(str(exc), 500, one_line=True))
    return _back(request, path, "ok", f"Edited job {job_uuid}: {edit.describe()}.")


async def bulk_action(request: Request) -> Response:
    form = await _form(request)
    action = _field(form, "action", 40)
    if action not in VERBS_ALL:
        raise _bad("action", action, "requeue, done, cancel or edit is needed")
    filters = _filters(form)
    upto = _whole(_field(form, "upto", 40), "upto", 0)
    # the confirmation checked the edit's values: a form sent otherwise is a 400 here
    edit = forms.edit_values(form) if action == "edit" else None
    db = _dashboard(request).db
    try:
        if edit is not None:
            changed, skipped = await run_in_threadpool(lambda: operations.edit_matching(
                db, filters, upto=upto, **edit.options()))
        else:
            changed, skipped = await run_in_threadpool(
                operations.act_on_matching, db, action, filters, user=_user(request),
                upto=upto)
    except ValueError as exc:
        return _back(request, "/jobs", "error", str(exc))
    text = f"{PAST_ALL[action]} {changed} job(s) matching {_describe(filters)}" + (
        f": {edit.describe()}." if edit is not None else ".")
    if skipped:
        text += f" {skipped} job(s) had changed state meanwhile and were left alone."
    return _back(request, "/jobs?" + _query(_filter_params(filters)), "ok", text)


def _channel_row(db: Any, name: str) -> dict[str, Any]:
    name = normalize_name(name)
    for row in operations.channels(db):
        if row["name"] == name:
            return row
    return {"name": name, "capacity": None, "sequential": False, "throttle": 0.0,
            "removal_interval": None, "paused": False, "rate": None, "key_capacity": None,
            "fair": False}


async def channel_set(request: Request) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _field(form, "name", limits.CHANNEL)
    capacity_text = _field(form, "capacity", 40)
    capacity = _whole(capacity_text, "capacity", 1, MAX_CAPACITY) if capacity_text else None
    throttle_text = _field(form, "throttle", 40)
    throttle = _decimal(throttle_text, "throttle", 0, MAX_THROTTLE) if throttle_text else 0.0
    # absent (a form without the field): the stored one is kept; empty: the default
    removal: Any = ...
    if "removal_interval" in form:
        removal_text = _field(form, "removal_interval", 40)
        removal = _decimal(removal_text, "removal_interval", 0, MAX_REMOVAL_INTERVAL) \
            if removal_text else None
    # flow control, likewise: a form without the fields keeps what is stored (the fair
    # checkbox is sent only when ticked: "flow_fields" says the form has it)
    rate: Any = forms.rate(_field(form, "rate", 40)) if "rate" in form else ...
    key_capacity: Any = ...
    if "key_capacity" in form:
        key_capacity_text = _field(form, "key_capacity", 40)
        key_capacity = _whole(key_capacity_text, "key_capacity", 1, MAX_CAPACITY) \
            if key_capacity_text else None
    fair: Any = form.get("fair") == "on" if "flow_fields" in form else ...
    try:
        current = await run_in_threadpool(_channel_row, db, name)
        spec = await run_in_threadpool(
            lambda: operations.set_channel(
                db, name, capacity, sequential=form.get("sequential") == "on",
                throttle=throttle, paused=current["paused"],
                removal_interval=current["removal_interval"] if removal is ... else removal,
                rate=current["rate"] if rate is ... else rate,
                key_capacity=current["key_capacity"] if key_capacity is ... else key_capacity,
                fair=current["fair"] if fair is ... else fair))
    except ValueError as exc:
        return _back(request, "/channels", "error", f"channel {describe(name, 80)}: {exc}")
    capacity_text = "unlimited" if spec.capacity is None else str(spec.capacity)
    return _back(request, "/channels", "ok", f"Channel {spec.name}: capacity {capacity_text}"
                 + (", sequential" if spec.sequential else "")
                 + (f", throttle {spec.throttle:g} s" if spec.throttle else "")
                 + (f", rate {format_rate(spec.rate)}" if spec.rate else "")
                 + (f", key capacity {spec.key_capacity}"
                    if spec.key_capacity is not None else "")
                 + (", fair" if spec.fair else "")
                 + (f", done jobs kept {spec.removal_interval:g} days"
                    if spec.removal_interval is not None else "") + ".")


async def _set_paused(request: Request, paused: bool) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _field(form, "name", limits.CHANNEL)
    try:
        current = await run_in_threadpool(_channel_row, db, name)
        spec = await run_in_threadpool(lambda: operations.set_channel(
            db, name, current["capacity"], sequential=current["sequential"],
            throttle=current["throttle"], removal_interval=current["removal_interval"],
            paused=paused, rate=current["rate"], key_capacity=current["key_capacity"],
            fair=current["fair"]))
    except ValueError as exc:
        return _back(request, "/channels", "error", f"channel {describe(name, 80)}: {exc}")
    return _back(request, "/channels", "ok",
                 f"Channel {spec.name} {'paused' if paused else 'resumed'}.")


async def channel_pause(request: Request) -> Response:
    return await _set_paused(request, True)


async def channel_resume(request: Request) -> Response:
    return await _set_paused(request, False)


async def channel_delete(request: Request) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _field(form, "name", limits.CHANNEL)
    try:
        await run_in_threadpool(operations.delete_channel, db, name)
    except ValueError as exc:
        return _back(request, "/channels", "error", f"channel {describe(name, 80)}: {exc}")
    return _back(request, "/channels", "ok", f"Channel {name}: configuration removed.")
