"""The dashboard's pages and actions. Reads and writes go through queuejob.operations.

Pages are plain functions (Starlette runs them in its thread pool: the database calls
block); actions are coroutines that read their form, check its origin and CSRF token,
then run the operation in the thread pool and redirect to the page that shows the
result (303, with a one-time message).
"""

from __future__ import annotations

import datetime as dt
import json
import pprint
import urllib.parse
from collections import defaultdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from .. import metrics as metrics_module
from .. import operations
from ..core import codec, states
from ..core.errors import ConfigurationError, DecodeError, JobStateError, NoSuchJobError
from ..core.retry import validate_retry_pattern
from . import charts, graphs
from .security import CSRF_COOKIE, CSRF_FIELD, FLASH_COOKIE, same_origin

PAST = {"requeue": "Requeued", "done": "Set to done", "cancel": "Cancelled"}
VERBS = {"requeue": "Requeue", "done": "Set done", "cancel": "Cancel"}
#: the longest text of arguments or results shown on a job page
MAX_TEXT = 100_000


def _dashboard(request: Request) -> Any:
    return request.app.state.dashboard


def _user(request: Request) -> str:
    """Who acts, written in the jobs' results ("Cancelled by ...")."""
    user = _dashboard(request).user
    return f"{user} (dashboard)" if user else "dashboard"


# -- filters of the jobs page -------------------------------------------------------------
FILTER_KEYS = ("state", "channel", "function", "model", "user", "q", "all")


def _filters(params: Any) -> operations.JobFilter:
    state = params.get("state") or None
    if state is not None and state not in states.STATES:
        raise HTTPException(400, f"unknown state {state[:40]!r}")
    user = (params.get("user") or "").strip()
    if user and not user.lstrip("-").isdigit():
        raise HTTPException(400, "user must be a user id (a whole number)")
    return operations.JobFilter(
        state=state, channel=(params.get("channel") or "").strip() or None,
        func_name=(params.get("function") or "").strip() or None,
        model_name=(params.get("model") or "").strip() or None,
        user_id=int(user) if user else None,
        search=(params.get("q") or "").strip() or None,
        show_all=params.get("all") == "1")


def _filter_params(filters: operations.JobFilter) -> dict[str, str]:
    out = {"state": filters.state, "channel": filters.channel, "function": filters.func_name,
           "model": filters.model_name,
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
                         ("model", filters.model_name), ("user", filters.user_id),
                         ("search", filters.search)):
        if value not in (None, ""):
            parts.append(f"{label} {value}")
    return ", ".join(parts)


# -- pages ----------------------------------------------------------------------------------
def overview(request: Request) -> Response:
    dashboard = _dashboard(request)
    db = dashboard.db
    span = request.query_params.get("range", "hour")
    if span not in charts.RANGES:
        raise HTTPException(400, "range is hour or day")
    counts = operations.stats(db)
    by_state: dict[str, int] = defaultdict(int)
    for by_channel in counts.values():
        for state, count in by_channel.items():
            by_state[state] += count
    tree = operations.channel_tree(db, counts)
    chart = charts.throughput_chart(operations.throughput(db, charts.RANGES[span]), span)
    return dashboard.render(request, "overview.html", {
        "nav": "overview", "states": [str(state) for state in states.STATES],
        "by_state": by_state, "total": sum(by_state.values()),
        "queue": operations.queue_state(db), "channels": tree, "counts": counts,
        "chart": chart, "range": span, "refresh": dashboard.refresh})


def jobs(request: Request) -> Response:
    dashboard = _dashboard(request)
    db = dashboard.db
    params = request.query_params
    filters = _filters(params)
    sort = params.get("sort", "-created")
    try:
        limit = min(max(int(params.get("limit", dashboard.page_size)), 1), 500)
        page = operations.job_page(db, filters, sort=sort, after=params.get("after"),
                                   before=params.get("before"), limit=limit)
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
    return dashboard.render(request, "jobs.html", {
        "nav": "jobs", "filters": filters, "page": page, "sorts": sorts,
        "states": [str(state) for state in states.STATES],
        "channels": channels, "functions": functions,
        "previous": _query(base, before=page.previous) if page.previous else None,
        "next": _query(base, after=page.next) if page.next else None,
        "filter_query": _query(_filter_params(filters)),
        "description": _describe(filters), "verbs": VERBS})


def confirm(request: Request) -> Response:
    """How many jobs an action on every job matching a filter changes; its form."""
    dashboard = _dashboard(request)
    action = request.query_params.get("action", "")
    if action not in operations.ACTIONS:
        raise HTTPException(400, "action is requeue, done or cancel")
    filters = _filters(request.query_params)
    upto = operations.last_job_id(dashboard.db)
    try:
        count = operations.count_matching(dashboard.db, filters, action, upto)
    except ValueError as exc:  # a bad channel name, for one
        raise HTTPException(400, str(exc)) from None
    allowed = sorted(str(state) for state in states.MANUAL_ACTIONS[action][0])
    return dashboard.render(request, "confirm.html", {
        "nav": "jobs", "action": action, "verb": VERBS[action], "count": count,
        "upto": upto, "fields": _filter_params(filters), "allowed": allowed,
        "description": _describe(filters),
        "back": _query(_filter_params(filters))})


def job(request: Request) -> Response:
    dashboard = _dashboard(request)
    db = dashboard.db
    job_uuid = str(request.path_params["uuid"])
    try:
        row = operations.load_row(db, job_uuid)
    except NoSuchJobError:
        raise HTTPException(404, f"no job {job_uuid}") from None
    arguments = _arguments(db, row)
    related = _related(db, row)
    timeline = _timeline(row)
    actions = [action for action in operations.ACTIONS
               if states.refusal(action, row["state"]) is None]
    return dashboard.render(request, "job.html", {
        "nav": "jobs", "job": row, "arguments": arguments, "related": related,
        "timeline": timeline, "actions": actions, "verbs": VERBS,
        "result": _clip(row["result"]), "exc_info": _clip(row["exc_info"]),
        "graph": _graph(db, row)})


#: the most jobs of other graphs (stood in for keyed jobs) loaded for a graph's drawing
MAX_OUTSIDE = 20


def _graph(db: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    """The job's graph: its drawing and its table (graphs.graph_view). A job whose
    identity key was held when the graph was stored waits for the job holding it, which
    may belong to no graph or another one: such parents are shown too, marked."""
    if not row.get("graph_uuid"):
        return None
    graph_uuid = str(row["graph_uuid"])
    jobs, edges = operations.graph(db, graph_uuid)
    jobs = [{**job, "uuid": str(job["uuid"])} for job in jobs]
    pairs = [(str(edge["parent_uuid"]), str(edge["child_uuid"])) for edge in edges]
    inside = {job["uuid"] for job in jobs}
    outside = sorted({parent for parent, _ in pairs if parent not in inside})
    for parent in outside[:MAX_OUTSIDE]:
        try:
            jobs.append({**operations.load_row(db, parent), "uuid": parent, "external": True})
        except NoSuchJobError:  # removed since (done jobs are cleaned up)
            jobs.append({"uuid": parent, "state": "removed", "func_name": "",
                         "description": "(removed)", "external": True})
    view = graphs.graph_view(jobs, pairs, str(row["uuid"]))
    view["uuid"] = graph_uuid
    view["outside"] = len(outside)
    return view


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… ({len(text) - MAX_TEXT} more characters)"


def _arguments(db: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The job's call and its arguments pretty-printed, or the stored JSON when they
    cannot be decoded here (always shown as text)."""
    try:
        args, kwargs = codec.decode_arguments(row["args"], row["kwargs"], db.max_args_size)
    except DecodeError as exc:
        raw = {}
        for key in ("args", "kwargs"):
            try:
                raw[key] = json.dumps(json.loads(row[key]), indent=2, ensure_ascii=False)
            except ValueError:
                raw[key] = row[key]
        return {"error": str(exc), "raw": raw}
    parts = [repr(row["model_name"])] if row["model_name"] is not None else []
    parts += [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return {"call": _clip(f"{row['func_name']}({', '.join(parts)})"),
            "args": _clip(pprint.pformat(list(args), width=100, sort_dicts=False)),
            "kwargs": _clip(pprint.pformat(kwargs, width=100, sort_dicts=False))}


def _related(db: Any, row: dict[str, Any]) -> dict[str, Any] | None:
    """The related action's result: a link when it is an http(s) or same-site URL, text
    otherwise (a javascript: URL stays text)."""
    from ..core import registry
    func = registry.job_function(row["func_name"])
    if func is None or getattr(func, "related_action", None) is None:
        return None
    try:
        value = operations.related_action(db, row["uuid"])
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if isinstance(value, str):
        parts = urllib.parse.urlsplit(value.strip())
        if (parts.scheme in ("http", "https") and parts.netloc) or (
                not parts.scheme and not parts.netloc and value.startswith("/")
                and not value.startswith("//")):
            return {"url": value.strip()}
        return {"text": value}
    if value is None:
        return {"text": "(no related action for this job)"}
    return {"text": pprint.pformat(value, width=100)}


def _timeline(row: dict[str, Any]) -> list[dict[str, Any]]:
    labels = (("date_created", "created"), ("eta", "due (eta)"), ("date_enqueued", "enqueued"),
              ("date_started", "started"), ("date_failed", "failed"),
              ("date_done", "cancelled" if row["state"] == "cancelled" else "done"))
    events = [{"label": label, "when": row[key]} for key, label in labels if row.get(key)]
    events.sort(key=lambda event: event["when"])
    first = events[0]["when"] if events else None
    for event in events:
        event["offset"] = (event["when"] - first).total_seconds() if first else 0.0
    return events


def channels(request: Request) -> Response:
    dashboard = _dashboard(request)
    return dashboard.render(request, "channels.html", {
        "nav": "channels", "channels": operations.channel_tree(dashboard.db)})


def workers(request: Request) -> Response:
    dashboard = _dashboard(request)
    running: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in operations.running_jobs(dashboard.db):
        running[row["worker_id"] or ""].append(row)
    return dashboard.render(request, "workers.html", {
        "nav": "workers", "workers": operations.workers(dashboard.db), "running": running,
        "refresh": dashboard.refresh})


def functions(request: Request) -> Response:
    dashboard = _dashboard(request)
    rows = operations.function_rows(dashboard.db)
    for row in rows:
        row["pattern_text"] = ", ".join(f"{count}: {delay:g}" for count, delay in
                                        sorted(row["retry_pattern"].items()))
    return dashboard.render(request, "functions.html", {"nav": "functions", "functions": rows})


def schedules(request: Request) -> Response:
    """The periodic jobs registered in this process (the modules of --module), their
    last slot run and their next run."""
    dashboard = _dashboard(request)
    rows = operations.schedules(dashboard.db)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        row["next_in"] = (row["next_run"] - now).total_seconds() if row["next_run"] else None
    return dashboard.render(request, "schedules.html", {"nav": "schedules",
                                                        "schedules": rows})


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
    response.set_cookie(FLASH_COOKIE, _dashboard(request).signer.flash_cookie(kind, text),
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


def _text(form: Any, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


async def job_action(request: Request) -> Response:
    await _form(request)
    action = request.path_params["action"]
    job_uuid = str(request.path_params["uuid"])
    if action not in operations.ACTIONS:
        raise HTTPException(404, f"no action {action[:40]!r}")
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


async def bulk_action(request: Request) -> Response:
    form = await _form(request)
    action = _text(form, "action")
    if action not in operations.ACTIONS:
        raise HTTPException(400, "action is requeue, done or cancel")
    filters = _filters(form)
    try:
        upto = int(_text(form, "upto"))
    except ValueError:
        raise HTTPException(400, "upto must be a job id") from None
    db = _dashboard(request).db
    try:
        changed, skipped = await run_in_threadpool(
            operations.act_on_matching, db, action, filters, user=_user(request), upto=upto)
    except ValueError as exc:
        return _back(request, "/jobs", "error", str(exc))
    text = f"{PAST[action]} {changed} job(s) matching {_describe(filters)}."
    if skipped:
        text += f" {skipped} job(s) had changed state meanwhile and were left alone."
    return _back(request, "/jobs?" + _query(_filter_params(filters)), "ok", text)


def _channel_row(db: Any, name: str) -> dict[str, Any]:
    from ..core.channels import normalize_name
    name = normalize_name(name)
    for row in operations.channel_tree(db):
        if row["name"] == name:
            return row
    return {"name": name, "capacity": None, "sequential": False, "throttle": 0.0,
            "removal_interval": None, "paused": False}


async def channel_set(request: Request) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _text(form, "name")
    try:
        capacity_text = _text(form, "capacity")
        capacity = int(capacity_text) if capacity_text else None
        throttle = float(_text(form, "throttle") or 0)
        if throttle < 0:
            raise ConfigurationError("throttle must not be negative")
        current = await run_in_threadpool(_channel_row, db, name)
        spec = await run_in_threadpool(
            lambda: operations.set_channel(
                db, name, capacity, sequential=form.get("sequential") == "on",
                throttle=throttle, removal_interval=current["removal_interval"],
                paused=current["paused"]))
    except ValueError as exc:
        return _back(request, "/channels", "error", f"channel {name}: {exc}")
    capacity_text = "unlimited" if spec.capacity is None else str(spec.capacity)
    return _back(request, "/channels", "ok", f"Channel {spec.name}: capacity {capacity_text}"
                 + (", sequential" if spec.sequential else "")
                 + (f", throttle {spec.throttle:g} s" if spec.throttle else "") + ".")


async def _set_paused(request: Request, paused: bool) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _text(form, "name")
    try:
        current = await run_in_threadpool(_channel_row, db, name)
        spec = await run_in_threadpool(lambda: operations.set_channel(
            db, name, current["capacity"], sequential=current["sequential"],
            throttle=current["throttle"], removal_interval=current["removal_interval"],
            paused=paused))
    except ValueError as exc:
        return _back(request, "/channels", "error", f"channel {name}: {exc}")
    return _back(request, "/channels", "ok",
                 f"Channel {spec.name} {'paused' if paused else 'resumed'}.")


async def channel_pause(request: Request) -> Response:
    return await _set_paused(request, True)


async def channel_resume(request: Request) -> Response:
    return await _set_paused(request, False)


async def channel_delete(request: Request) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _text(form, "name")
    try:
        await run_in_threadpool(operations.delete_channel, db, name)
    except ValueError as exc:
        return _back(request, "/channels", "error", f"channel {name}: {exc}")
    return _back(request, "/channels", "ok", f"Channel {name}: configuration removed.")


def parse_retry_pattern(text: str) -> dict[int, float] | None:
    """``1: 60, 5: 300`` or JSON ``{"1": 60, "5": 300}``; None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        if text.startswith("{"):
            pairs = json.loads(text).items()
        else:
            pairs = [part.split(":", 1) for part in text.split(",") if part.strip()]
        pattern = {int(str(key).strip()): float(str(value).strip()) for key, value in pairs}
    except (ValueError, AttributeError, TypeError):
        raise ConfigurationError(f"bad retry pattern {text[:60]!r}: write it as "
                                 "'1: 60, 5: 300' (retry count: seconds)") from None
    return validate_retry_pattern(pattern)


async def function_set(request: Request) -> Response:
    form = await _form(request)
    db = _dashboard(request).db
    name = _text(form, "name")
    if not name:
        raise HTTPException(400, "name is needed")
    reset = form.get("reset") is not None
    try:
        channel = None if reset else (_text(form, "channel") or None)
        pattern = None if reset else parse_retry_pattern(_text(form, "retry_pattern"))
        await run_in_threadpool(lambda: operations.set_function(
            db, name, channel=channel, retry_pattern=pattern))
    except ValueError as exc:
        return _back(request, "/functions", "error", f"function {name}: {exc}")
    if channel is None and pattern is None:
        return _back(request, "/functions", "ok", f"Function {name}: back to its decorator's "
                     "channel and retry pattern.")
    return _back(request, "/functions", "ok", f"Function {name}: updated.")
