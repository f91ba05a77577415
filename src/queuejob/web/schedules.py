"""The dashboard's schedules page: the periodic jobs of the modules this dashboard
imported (``@job(cron=...)``), and the schedules defined at run time, in the database,
with their forms (add, edit, pause, resume, remove, run now). Reads and writes go
through queuejob.operations.

The page and its forms are at one address: each form posts to the page, its ``op``
saying what it does, with the dashboard's origin check and CSRF token. A bad value
shows the form again with a one-line error and what was typed (a 400), and stores
nothing. A stored schedule that does not make sense costs that row only (shown with
its problem).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import operations
from ..core import limits, registry
from ..core import schedules as schedule_rules
from ..core.errors import ConfigurationError
from . import display, forms
from .forms import UNUSABLE
from .views import _back, _dashboard, _form

#: the fields of the form adding or editing a schedule, shown again as typed when refused
FIELDS = ("name", "cron", "function", "args", "kwargs", "channel", "timezone", "missed",
          "missed_window")
#: the longest JSON text of arguments the form takes (larger ones: the CLI or the API)
MAX_JSON = 100_000
#: what each operation of a row's buttons does, in the page's message
DONE = {"pause": "paused", "resume": "resumed from its next slot", "remove": "removed",
        "run": "run requested: a worker that registers its function delays the job"}
OPERATIONS = {"pause": operations.pause_schedule, "resume": operations.resume_schedule,
              "remove": operations.remove_schedule, "run": operations.run_schedule_now}


def _code_schedule_view(row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    next_run = display.time(row.get("next_run"))
    return {
        "name": display.text(row.get("name"), limits.LISTED, one_line=True),
        "function": display.text(row.get("function"), limits.FUNC_NAME, one_line=True),
        "cron": display.text(row.get("cron"), limits.LISTED, one_line=True),
        "catch_up": bool(row.get("catch_up")),
        "last_slot": display.time(row.get("last_slot")), "next_run": next_run,
        "next_in": (next_run - now).total_seconds()
        if isinstance(next_run, dt.datetime) else None}


def _form_name(name: Any) -> str | None:
    """The name a row's forms send: only a name that can be typed back."""
    if isinstance(name, str) and name and len(name) <= limits.LISTED \
            and not UNUSABLE.search(name) and name == name.strip():
        return name
    return None


def _window(value: Any) -> str:
    return schedule_rules.window_text(value) if isinstance(value, float) else (
        "" if value is None else display.text(value, 40, one_line=True))


def _run_time_view(row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    next_run = display.time(row.get("next_run"))
    problem = row.get("problem")
    return {
        "name": display.text(row.get("name"), limits.LISTED, one_line=True),
        "form_name": _form_name(row.get("name")),
        "cron": display.text(row.get("cron"), limits.LISTED, one_line=True),
        "timezone": display.text(row.get("timezone"), limits.LISTED, one_line=True),
        "function": display.text(row.get("func_name"), limits.FUNC_NAME, one_line=True),
        "args": display.text(row.get("args"), limits.LISTED, one_line=True),
        "kwargs": display.text(row.get("kwargs"), limits.LISTED, one_line=True),
        "channel": display.text(row.get("channel"), limits.CHANNEL, one_line=True),
        "missed": display.text(row.get("missed"), 40, one_line=True),
        "missed_window": _window(row.get("missed_window")),
        "paused": row.get("paused") is True,
        "run_requested": bool(row.get("run_requested")),
        "last_slot": display.time(row.get("last_slot")), "next_run": next_run,
        "next_in": (next_run - now).total_seconds()
        if isinstance(next_run, dt.datetime) else None,
        "problem": display.text(problem, 500, one_line=True) if problem else None,
        "registered": bool(row.get("registered"))}


def _typed_from(entry: dict[str, Any]) -> dict[str, str]:
    """What the edit form of a stored schedule holds: its values as stored (as text)."""
    def text(key: str) -> str:
        value = entry.get(key)
        return value if isinstance(value, str) and not UNUSABLE.search(value) else ""
    window = entry.get("missed_window")
    return {"name": text("name"), "cron": text("cron"), "function": text("func_name"),
            "args": text("args"), "kwargs": text("kwargs"), "channel": text("channel"),
            "timezone": text("timezone"), "missed": text("missed") or "once",
            "missed_window": f"{window:g}" if isinstance(window, float) else ""}


def schedules_page(request: Request, *, form_error: str | None = None,
                   typed: dict[str, str] | None = None, editing: str | None = None,
                   status_code: int = 200) -> Response:
    dashboard = _dashboard(request)
    db = dashboard.db
    now = dt.datetime.now(dt.UTC)
    stored = operations.run_time_schedules(db)
    if editing is None and typed is None:
        name = forms.field(request.query_params, "edit", limits.LISTED) or None
        entry = next((row for row in stored if row.get("name") == name), None) \
            if name else None
        if name and entry is None:
            form_error, status_code = f"no schedule {display.text(name, 80)}", 404
        elif entry is not None:
            editing, typed = name, _typed_from(entry)
    return dashboard.render(request, "schedules.html", {
        "nav": "schedules",
        "schedules": [_code_schedule_view(row, now)
                      for row in operations.schedules(db)],
        "run_time": [_run_time_view(row, now) for row in stored],
        "functions": sorted(name for name in registry.job_functions()
                            if len(name) <= limits.FUNC_NAME),
        "policies": schedule_rules.MISSED_POLICIES,
        "typed": typed or {"timezone": "UTC", "missed": "once", "args": "[]",
                           "kwargs": "{}"},
        "editing": editing, "form_error": form_error}, status_code=status_code)


async def schedules(request: Request) -> Response:
    """The schedules (GET), and the forms of the run-time ones (POST, ``op``)."""
    if request.method != "POST":
        return await run_in_threadpool(schedules_page, request)
    form = await _form(request)
    op = forms.field(form, "op", 20)
    if op in ("add", "edit"):
        return await _write(request, form, op)
    if op in OPERATIONS:
        return await _row_operation(request, form, op)
    raise forms.bad("op", op, "add, edit, pause, resume, remove or run is needed")


def _values(form: Any) -> dict[str, Any]:
    """The definition typed in the form (each field checked as text: 400 otherwise)."""
    window_text = forms.field(form, "missed_window", 40)
    return {
        "cron": forms.field(form, "cron", schedule_rules.CRON),
        "function": forms.field(form, "function", limits.FUNC_NAME),
        "args": forms.field(form, "args", MAX_JSON) or "[]",
        "kwargs": forms.field(form, "kwargs", MAX_JSON) or "{}",
        "channel": forms.field(form, "channel", limits.CHANNEL) or None,
        "timezone": forms.field(form, "timezone", schedule_rules.TIMEZONE) or "UTC",
        "missed": forms.field(form, "missed", 20) or "once",
        "missed_window": forms.decimal(window_text, "missed window", 1,
                                       schedule_rules.MAX_WINDOW) if window_text else None}


async def _write(request: Request, form: Any, op: str) -> Response:
    db = _dashboard(request).db
    name = ""
    try:
        name = forms.field(form, "name", schedule_rules.NAME)
        if not name:
            raise HTTPException(400, "bad name: the schedule's name is needed")
        values = _values(form)
        if not values["cron"]:
            raise HTTPException(400, "bad cron: a cron expression is needed, e.g. */5 * * * *")
        if not values["function"]:
            raise HTTPException(400, "bad function: a job function's module.name is needed")
        if op == "add":
            await run_in_threadpool(lambda: operations.add_schedule(db, name, **values))
        else:
            await run_in_threadpool(lambda: operations.edit_schedule(db, name, **values))
    except (HTTPException, ValueError, TypeError) as exc:  # ConfigurationError: ValueError
        if isinstance(exc, HTTPException) and exc.status_code != 400:
            raise
        message = display.text(exc.detail if isinstance(exc, HTTPException) else str(exc),
                               1000, one_line=True)
        typed = forms.typed(form, FIELDS)
        return await run_in_threadpool(lambda: schedules_page(
            request, form_error=message, typed=typed,
            editing=name if op == "edit" else None, status_code=400))
    verb = "added" if op == "add" else "edited"
    return _back(request, "/schedules", "ok", f"Schedule {name} {verb}.")


async def _row_operation(request: Request, form: Any, op: str) -> Response:
    db = _dashboard(request).db
    name = forms.field(form, "name", limits.LISTED)
    if not name:
        raise HTTPException(400, "bad name: the schedule's name is needed")
    try:
        await run_in_threadpool(OPERATIONS[op], db, name)
    except ConfigurationError as exc:  # removed meanwhile; a row that cannot run
        return _back(request, "/schedules", "error", str(exc))
    return _back(request, "/schedules", "ok", f"Schedule {name}: {DONE[op]}.")
