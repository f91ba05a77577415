"""The dashboard's settings pages: job functions (channel, retry pattern, related action)
and subscriptions to failures. Reads and writes go through queuejob.operations.

A form changes only the settings it holds: the functions table's row holds a channel
and a retry pattern, a function's own page every setting; a setting left out keeps what
is stored, and an empty one goes back to the decorator's. A bad value (or an unknown
function) shows the form again with a one-line error and what was typed (a 400), and
stores nothing. A stored row that does not make sense costs that row only.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import operations
from ..core import limits, registry, related
from ..core import subscriptions as subscription_rules
from ..core.errors import ConfigurationError
from ..core.retry import format_retry_pattern, parse_retry_pattern
from ..core.text import describe
from . import display, forms
from .forms import MAX_FIELD, UNUSABLE
from .views import _back, _dashboard, _form

#: the fields of a job function's settings form, shown again as typed when refused
FUNCTION_FIELDS = ("channel", "retry_pattern", "related_func_name", "related_kwargs")
#: the fields of the form adding a subscription
SUBSCRIPTION_FIELDS = ("channel", "func_name", "target_kind", "target")


def _refused_text(exc: BaseException) -> str:
    """A refusal in one line, from an HTTPException (400) or an operation's error."""
    text = exc.detail if isinstance(exc, HTTPException) else str(exc)
    return display.text(text, 1000, one_line=True)


# -- job functions ------------------------------------------------------------------------------
def _delay_text(delay: Any) -> str:
    if display.is_number(delay):
        return f"{delay:g}"
    if isinstance(delay, tuple | list) and len(delay) == 2 \
            and all(display.is_number(bound) for bound in delay):
        return f"{delay[0]:g}-{delay[1]:g}"
    return display.text(delay, 40, one_line=True)


def pattern_text(pattern: Any) -> str:
    """A retry pattern as people write it: ``1: 60, 5: 300, 10: 30-45``."""
    try:
        return ", ".join(f"{count}: {_delay_text(delay)}"
                         for count, delay in sorted(pattern.items()))
    except Exception:  # a pattern of another shape than expected
        return display.text(pattern, limits.LISTED, one_line=True)


def _form_name(name: str) -> str | None:
    """The name a form sends for a function: only a name that can be typed."""
    return name if len(name) <= limits.FUNC_NAME and not UNUSABLE.search(name) else None


def _related_text(row: dict[str, Any]) -> str:
    """The related action a function's jobs have, in words: its name, ``off``, and
    whether it was set here rather than by the decorator."""
    setting = row.get("related_action_setting")
    if isinstance(setting, dict) and setting.get("enable") is False:
        return "off (set here)"
    name = row.get("related_action")
    if not name:
        return ""
    shown = display.text(name, limits.FUNC_NAME, one_line=True)
    return f"{shown} (set here)" if row.get("related_action_overridden") else shown


def _function_view(row: dict[str, Any]) -> dict[str, Any]:
    name = row["name"]
    return {
        **row, "name": display.text(name, limits.FUNC_NAME, one_line=True),
        "form_name": _form_name(name),
        "channel": display.text(row["channel"], limits.CHANNEL, one_line=True),
        "default_channel": display.text(row["default_channel"], limits.CHANNEL,
                                        one_line=True),
        "pattern_text": pattern_text(row["retry_pattern"]),
        "related_text": _related_text(row),
        "counts": {display.text(state, 40, one_line=True): count
                   for state, count in row["counts"].items()},
        "avg_duration": display.number(row["avg_duration"]),
        "done_recently": display.whole_number(row["done_recently"])}


def functions(request: Request) -> Response:
    return functions_page(request)


def functions_page(request: Request, *, form_error: str | None = None,
                   status_code: int = 200) -> Response:
    """The job functions and their settings (with the error of a refused row's form)."""
    dashboard = _dashboard(request)
    rows = [_function_view(row) for row in operations.functions(dashboard.db)]
    return dashboard.render(request, "functions.html", {
        "nav": "functions", "functions": rows, "form_error": form_error},
        status_code=status_code)


def _stored_values(entry: dict[str, Any] | None) -> dict[str, Any]:
    """What a function's settings form holds: its stored settings (empty: the
    decorator's)."""
    if entry is None:
        return {"related_enable": True}
    setting = entry.get("related_action_setting")
    setting = setting if isinstance(setting, dict) else None
    return {
        "channel": entry["channel"] if entry.get("channel_overridden") else "",
        "retry_pattern": pattern_text(entry["retry_pattern"])
        if entry.get("retry_pattern_overridden") else "",
        "related_enable": setting is None or setting.get("enable") is not False,
        "related_func_name": (setting or {}).get("func_name") or "",
        "related_kwargs": forms.setting_kwargs_text(setting)}


def _decorator_settings(name: str) -> dict[str, str]:
    """What the decorator of a function registered here says (the placeholders)."""
    func = registry.job_function(name) if name else None
    if func is None:
        return {"channel": "", "retry_pattern": "", "related_action": ""}
    try:
        action = related.name_of(getattr(func, "related_action", None)) or ""
    except Exception:  # a related action without a name a person can read
        action = ""
    return {"channel": func.default_channel or "root",
            "retry_pattern": format_retry_pattern(func.retry_pattern) or "none",
            "related_action": action or "none"}


def _unknown(name: str) -> str:
    return (f"unknown job function {describe(name, 80)}: no module imported here registers "
            "it and the database holds no job of it (start the dashboard with --module)")


def function_edit(request: Request) -> Response:
    """A job function's settings form: every setting (``?name=``), or an empty form to
    type a function's name in."""
    name = forms.field(request.query_params, "name", limits.FUNC_NAME)
    return function_page(request, name)


def function_page(request: Request, name: str, *, form_error: str | None = None,
                  typed: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    dashboard = _dashboard(request)
    db = dashboard.db
    entries = operations.functions(db)
    entry = next((row for row in entries if row["name"] == name), None) if name else None
    if name and entry is None and form_error is None and not operations.find_jobs(
            db, operations.JobFilter(func_name=name, show_all=True), limit=1).rows:
        form_error, status_code = _unknown(name), 404
    view = _function_view(entry) if entry is not None else None
    return dashboard.render(request, "function.html", {
        "nav": "functions", "name": name, "function": view,
        "values": typed if typed is not None else _stored_values(entry),
        "defaults": _decorator_settings(name),
        "known": [row["name"] for row in entries if _form_name(row["name"])],
        "form_error": form_error}, status_code=status_code)


def _function_changes(form: Any) -> dict[str, Any]:
    """The settings a function's form changes: those it holds (a form without a
    setting's field keeps the stored one; an empty field is the decorator's)."""
    changes: dict[str, Any] = {}
    if "channel" in form:
        changes["channel"] = forms.field(form, "channel", limits.CHANNEL) or None
    if "retry_pattern" in form:
        text = forms.field(form, "retry_pattern", MAX_FIELD)
        try:
            changes["retry_pattern"] = parse_retry_pattern(text) if text else None
        except ConfigurationError as exc:
            raise HTTPException(400, str(exc)) from None
    setting = forms.related_setting(form)
    if setting is not operations.UNCHANGED:
        changes["related_action"] = setting
    return changes


def _changes_text(changes: dict[str, Any]) -> str:
    parts = []
    for key, label in (("channel", "channel"), ("retry_pattern", "retry pattern"),
                       ("related_action", "related action")):
        if key not in changes:
            continue
        value = changes[key]
        if value is None:
            parts.append(f"{label} the decorator's")
        elif key == "retry_pattern":
            parts.append(f"{label} {format_retry_pattern(value) or 'none'}")
        elif key == "related_action":
            parts.append(f"{label} " + ("off" if not value["enable"] else
                                        value["func_name"] or "the decorator's, with kwargs"))
        else:
            parts.append(f"{label} {value}")
    return ", ".join(parts)


async def function_set(request: Request) -> Response:
    """Store a job function's settings (a row of the functions table, or its own
    page), or reset them all (``reset``)."""
    form = await _form(request)
    db = _dashboard(request).db
    own_page = form.get("page") == "edit"
    name = ""

    async def refused(message: str) -> Response:
        if own_page:
            typed = {**forms.typed(form, FUNCTION_FIELDS),
                     "related_enable": form.get("related_enable") is not None}
            return await run_in_threadpool(lambda: function_page(
                request, name, form_error=message, typed=typed, status_code=400))
        return await run_in_threadpool(lambda: functions_page(
            request, form_error=message, status_code=400))

    try:
        name = forms.field(form, "name", limits.FUNC_NAME)
        if not name:
            raise HTTPException(400, "bad name: the function's name is needed")
        back = f"/functions/edit?name={urllib.parse.quote(name, safe='')}" if own_page \
            else "/functions"
        if form.get("reset") is not None:
            await run_in_threadpool(operations.reset_function, db, name)
            return _back(request, back, "ok", f"Function {name}: back to its decorator's "
                         "channel, retry pattern and related action.")
        changes = _function_changes(form)
        await run_in_threadpool(lambda: operations.set_function(db, name, **changes))
    except HTTPException as exc:
        if exc.status_code != 400:
            raise
        return await refused(_refused_text(exc))
    except (ValueError, TypeError) as exc:  # ConfigurationError is a ValueError
        text = _refused_text(exc)
        return await refused(text if name in text else f"function {name}: {text}")
    if set(changes) == {"channel", "retry_pattern"} and changes["channel"] is None \
            and changes["retry_pattern"] is None:
        return _back(request, back, "ok", f"Function {name}: back to its decorator's "
                     "channel and retry pattern.")
    return _back(request, back, "ok", f"Function {name}: updated ({_changes_text(changes)}).")


# -- subscriptions to failures -----------------------------------------------------------------
def _subscription_view(entry: dict[str, Any]) -> dict[str, Any]:
    """A stored subscription for the page: each value text, whatever was stored; a
    remove button only for an id that is one."""
    subscription_id = entry.get("id")
    problem = entry.get("problem")
    return {
        "id": display.whole_number(subscription_id),
        "remove_id": subscription_id if display.is_int(subscription_id) else None,
        "channel": display.text(entry.get("channel"), limits.CHANNEL, one_line=True),
        "func_name": display.text(entry.get("func_name"), limits.FUNC_NAME, one_line=True),
        "kind": display.text(entry.get("target_kind"), 40, one_line=True),
        "target": display.text(entry.get("target"), limits.TARGET, one_line=True),
        "date_created": display.time(entry.get("date_created")),
        "problem": display.text(problem, 500, one_line=True) if problem else None}


def subscriptions_page(request: Request, *, form_error: str | None = None,
                       typed: dict[str, str] | None = None, status_code: int = 200
                       ) -> Response:
    dashboard = _dashboard(request)
    channels, functions = dashboard.suggestions()
    return dashboard.render(request, "subscriptions.html", {
        "nav": "subscriptions",
        "subscriptions": [_subscription_view(entry)
                          for entry in operations.subscriptions(dashboard.db)],
        "channels": channels, "functions": functions,
        "kinds": subscription_rules.TARGET_KINDS,
        "typed": typed or {"target_kind": subscription_rules.WEBHOOK},
        "form_error": form_error}, status_code=status_code)


async def subscriptions(request: Request) -> Response:
    """The subscriptions to failures (GET), and adding or removing one (POST, ``op``)."""
    if request.method != "POST":
        return await run_in_threadpool(subscriptions_page, request)
    form = await _form(request)
    op = forms.field(form, "op", 20)
    if op == "add":
        return await _add_subscription(request, form)
    if op == "remove":
        return await _remove_subscription(request, form)
    raise forms.bad("op", op, "add or remove is needed")


def _scope_text(channel: str | None, func_name: str | None) -> str:
    if channel and func_name:
        return f"the jobs of {func_name} in {channel}"
    if channel:
        return f"the jobs of {channel}"
    return f"the jobs of {func_name}" if func_name else "every job"


async def _add_subscription(request: Request, form: Any) -> Response:
    db = _dashboard(request).db
    try:
        channel = forms.field(form, "channel", limits.CHANNEL) or None
        func_name = forms.field(form, "func_name", limits.FUNC_NAME) or None
        kind = forms.field(form, "target_kind", 20)
        target = forms.field(form, "target", limits.TARGET)
        if kind not in subscription_rules.TARGET_KINDS:
            raise forms.bad("target kind", kind, "webhook or job is needed")
        if not target:
            raise HTTPException(400, "bad target: a webhook URL or a job function's "
                                     "module.name is needed")
        new_id = await run_in_threadpool(lambda: operations.add_subscription(
            db, channel=channel, func_name=func_name, **{kind: target}))
    except (HTTPException, ValueError, TypeError) as exc:
        if isinstance(exc, HTTPException) and exc.status_code != 400:
            raise
        typed, message = forms.typed(form, SUBSCRIPTION_FIELDS), _refused_text(exc)
        return await run_in_threadpool(lambda: subscriptions_page(
            request, form_error=message, typed=typed, status_code=400))
    where = "the webhook" if kind == subscription_rules.WEBHOOK else "a job of"
    return _back(request, "/subscriptions", "ok", f"Subscription {new_id}: failures of "
                 f"{_scope_text(channel, func_name)} go to {where} {target}.")


async def _remove_subscription(request: Request, form: Any) -> Response:
    subscription_id = forms.whole(forms.field(form, "id", 40), "id")
    db = _dashboard(request).db
    try:
        await run_in_threadpool(operations.remove_subscription, db, subscription_id)
    except ConfigurationError as exc:  # removed meanwhile
        return _back(request, "/subscriptions", "error", str(exc))
    return _back(request, "/subscriptions", "ok", f"Subscription {subscription_id} removed.")
