"""What people type into the dashboard: query and form values, checked.

Every value arrives as text. A value that is not what its field takes is refused with
a one-line reason naming the field (an HTTPException 400: the page that sent it shows
it again with that line), never a 500; nothing is stored. The rules of what a value
may be (a priority's range, a channel's name, a retry pattern, a related action's
setting) are the core's: these helpers turn text into the values the operations take.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from starlette.exceptions import HTTPException

from .. import operations
from ..core.channels import MAX_CAPACITY, check_rate, normalize_name, parse_rate
from ..core.errors import ConfigurationError
from ..core.job import MAX_ETA_DELAY, MAX_INT
from ..core.text import describe
from ..store import reads

#: the longest search (q=) and the longest value of other query fields
MAX_SEARCH = 500
MAX_FIELD = 2000
#: the longest JSON text of a related action's keyword arguments
MAX_KWARGS = 20_000
#: the longest exception name (``module.Class``) a filter takes
MAX_EXC_NAME = 512
INT64 = reads.INT64
_WHOLE = re.compile(r"[+-]?[0-9]{1,20}")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
#: a time as people type it (UTC unless it says otherwise): 2026-12-01 08:30[:00]
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}"
                   r"(?:\.[0-9]{1,6})?)?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?")
#: what no query value may hold: PostgreSQL refuses NUL in text, and lone surrogates
#: cannot be encoded
UNUSABLE = re.compile("[\x00\ud800-\udfff]")
#: the fields of an edit of jobs (named apart from the jobs page's filter fields, which
#: the bulk form carries too)
EDIT_FIELDS = ("new_priority", "new_eta", "new_channel")


def bad(name: str, value: Any, rule: str) -> HTTPException:
    return HTTPException(400, f"bad {name} {describe(value, 60)}: {rule}")


def field(source: Any, key: str, limit: int = MAX_FIELD) -> str:
    """A query or form value as text, stripped ("" when missing): 400 when it is not
    text, longer than ``limit`` characters, or holds NUL."""
    value = source.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HTTPException(400, f"bad {key}: it must be text, not a file")
    if len(value) > limit:
        raise HTTPException(400, f"bad {key}: {len(value)} characters, over the limit of "
                                 f"{limit}")
    if UNUSABLE.search(value):
        raise bad(key, value, "it holds a NUL character or text that is not Unicode")
    return value.strip()


def whole(text: str, name: str, low: int = INT64[0], high: int = INT64[1]) -> int:
    """A whole number typed in ASCII digits, from ``low`` to ``high``; 400 otherwise."""
    rule = f"a whole number from {low} to {high} is needed"
    if not _WHOLE.fullmatch(text):
        raise bad(name, text, rule)
    value = int(text)
    if not low <= value <= high:
        raise bad(name, text, rule)
    return value


def decimal(text: str, name: str, low: float, high: float) -> float:
    """A finite number (no inf, no nan) from ``low`` to ``high``; 400 otherwise."""
    rule = f"a number from {low:g} to {high:g} is needed"
    if not _DECIMAL.fullmatch(text):
        raise bad(name, text, rule)
    value = float(text)
    if not math.isfinite(value) or not low <= value <= high:
        raise bad(name, text, rule)
    return value


def rate(text: str, name: str = "rate") -> tuple[int, float] | None:
    """A channel's rate limit typed as ``N/s``, ``N/m`` or ``N/h`` ("" is none); 400
    otherwise."""
    if not text:
        return None
    try:
        return check_rate("", parse_rate(text))
    except ValueError:  # ConfigurationError; int() of thousands of digits
        raise bad(name, text, f"N/s, N/m or N/h (N from 1 to {MAX_CAPACITY}) is needed, "
                              "e.g. 100/m") from None


def typed(source: Any, keys: tuple[str, ...]) -> dict[str, str]:
    """What was typed in ``keys`` (text only, each cut to MAX_FIELD characters), to show
    a refused form again as it was sent."""
    out = {}
    for key in keys:
        value = source.get(key)
        if isinstance(value, str):
            out[key] = value[:MAX_FIELD]
    return out


# -- an edit of jobs: priority, eta, channel -------------------------------------------------
ETA_RULE = ("'now', seconds from now, or a UTC time such as 2026-12-01 08:30 is needed")


def eta(text: str, name: str = "eta") -> Any:
    """A job's new eta as typed: "" leaves it (UNCHANGED); ``now`` makes the job due at
    once (None); a number is seconds from now; a time is UTC unless it gives its
    offset. 400 for anything else, or a time further than the core allows."""
    if not text:
        return operations.UNCHANGED
    if text.lower() == "now":
        return None
    if _DECIMAL.fullmatch(text):
        return decimal(text, name, 0, MAX_ETA_DELAY)
    if not _TIME.fullmatch(text):
        raise bad(name, text, ETA_RULE)
    try:
        when = dt.datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        when = when.astimezone(dt.UTC)
        away = abs((when - dt.datetime.now(dt.UTC)).total_seconds())
    except (ValueError, OverflowError) as exc:
        raise bad(name, text, f"{exc}; {ETA_RULE}") from None
    if away > MAX_ETA_DELAY:
        raise bad(name, text, f"a time within {MAX_ETA_DELAY // (365 * 86400)} years of now "
                              "is needed")
    return when


@dataclass
class Edit:
    """An edit of jobs that have not started: each value None (priority, channel) or
    UNCHANGED (eta) when left out."""

    priority: int | None = None
    eta: Any = dataclass_field(default_factory=lambda: operations.UNCHANGED)
    channel: str | None = None
    #: the fields as typed (hidden fields of a confirmation)
    fields: dict[str, str] = dataclass_field(default_factory=dict)

    def describe(self) -> str:
        """The edit in words: ``priority 3, due now, channel root.mail``."""
        parts = []
        if self.priority is not None:
            parts.append(f"priority {self.priority}")
        if self.eta is None:
            parts.append("due now")
        elif isinstance(self.eta, dt.datetime):
            parts.append(f"eta {self.eta.strftime('%Y-%m-%d %H:%M:%S')} UTC")
        elif self.eta is not operations.UNCHANGED:
            parts.append(f"eta in {self.eta:g} s")
        if self.channel is not None:
            parts.append(f"channel {self.channel}")
        return ", ".join(parts)

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``operations.edit`` and ``edit_matching``."""
        return {"priority": self.priority, "eta": self.eta, "channel": self.channel}


def edit_values(source: Any) -> Edit:
    """The edit typed in a form (``new_priority``, ``new_eta``, ``new_channel``; empty
    ones are left as they are): 400 for a bad value, or for nothing to change."""
    priority_text = field(source, "new_priority", 40)
    eta_text = field(source, "new_eta", 80)
    channel_text = field(source, "new_channel", 600)
    edit = Edit(fields={key: value for key, value in zip(
        EDIT_FIELDS, (priority_text, eta_text, channel_text), strict=True) if value})
    if priority_text:
        edit.priority = whole(priority_text, "priority", -MAX_INT, MAX_INT)
    edit.eta = eta(eta_text)
    if channel_text:
        try:
            edit.channel = normalize_name(channel_text)
        except ConfigurationError as exc:
            raise HTTPException(400, f"bad channel: {exc}") from None
    if not edit.fields:
        raise HTTPException(400, "nothing to edit: give a priority, an eta or a channel")
    return edit


# -- a job function's related action ---------------------------------------------------------
def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value here")


def related_kwargs(text: str) -> dict[str, Any]:
    """A related action's keyword arguments typed as a JSON object ("" is none)."""
    if not text:
        return {}
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise bad("related action kwargs", text,
                  f"a JSON object such as {{\"mode\": \"form\"}} is needed ({reason})"
                  ) from None
    if not isinstance(value, dict):
        raise bad("related action kwargs", text,
                  "a JSON object such as {\"mode\": \"form\"} is needed")
    return value


def related_setting(source: Any) -> Any:
    """A related action's setting from a form that has its fields (``related`` marks
    them: a form without them leaves the stored setting, UNCHANGED). Enabled with no
    other action and no keyword arguments is the decorator's own (None)."""
    if source.get("related") is None:
        return operations.UNCHANGED
    enable = source.get("related_enable") is not None
    func_name = field(source, "related_func_name", 600) or None
    kwargs = related_kwargs(field(source, "related_kwargs", MAX_KWARGS))
    if enable and func_name is None and not kwargs:
        return None
    return {"enable": enable, "func_name": func_name, "kwargs": kwargs}


def setting_kwargs_text(setting: Any) -> str:
    """A stored setting's keyword arguments as the form shows them (JSON)."""
    kwargs = setting.get("kwargs") if isinstance(setting, dict) else None
    if not kwargs:
        return ""
    try:
        return json.dumps(kwargs, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return ""
