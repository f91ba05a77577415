"""What a page shows of the values it reads: stored rows and what people type.

A stored row may hold anything: text that is not UTF-8 (SQLite hands it over with lone
surrogates, which no page can be encoded with), NUL and other control characters, a
text of 20 MB, a BLOB or a number where text belongs, text where a number or a time
belongs. The rule: where such a value is read, it costs that one value — shown
escaped, cut with a marker, or as what it is — never the page. Every helper here
accepts any value and returns text a page can hold.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid as uuid_module
from collections.abc import Mapping
from typing import Any

from ..core import limits
from ..core.progress import progress_of
from ..core.text import describe, displayable, printable

#: the most characters of one value that any template renders: a last line of defence
#: (the pages cut their texts well below it)
MAX_RENDERED = 200_000
#: the widest text of a stored value that stands for a number, a flag or a time
SHORT = 80

#: the columns of a job row, by kind: one-line names, texts, whole numbers, times
JOB_NAMES = ("uuid", "state", "func_name", "model_name", "channel", "identity_key",
             "worker_id", "graph_uuid", "exc_name")
JOB_TEXTS = ("description", "context", "result", "exc_info", "exc_message")
JOB_INTEGERS = ("id", "priority", "max_retries", "retry", "attempt", "worker_deaths",
                "user_id", "worker_pid")
JOB_TIMES = ("eta", "date_created", "date_enqueued", "date_started", "date_done",
             "date_failed", "date_cancelled")
#: columns of seconds (a number, or what was stored, as text)
JOB_NUMBERS = ("timeout", "exec_time")
#: what a job's page shows of each name (a list page: limits.LISTED)
NAME_LIMITS = {"func_name": limits.FUNC_NAME, "model_name": limits.MODEL_NAME,
               "channel": limits.CHANNEL, "identity_key": limits.IDENTITY_KEY,
               "exc_name": limits.FUNC_NAME}


def clean(text: str, one_line: bool = False) -> str:
    """``text`` a page can hold and a person can read: lone surrogates, NUL and other
    control characters (and, with ``one_line``, line breaks) written as escapes."""
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to escape, whatever the rules
    if "\r\n" in text and not one_line:
        text = text.replace("\r\n", "\n")
    # displayable first (what a page must not hold), then printable (what it should
    # not show raw: terminal escapes, bidirectional overrides)
    return printable(displayable(text), one_line=one_line)


def text(value: Any, limit: int = limits.LISTED, *, one_line: bool = False,
         whole: bool = True) -> str:
    """Any stored value as text for a page, from at most ``limit`` of its characters;
    a longer one is cut, with a marker (saying how long it was when ``whole``: the
    value is the stored text itself, not a prefix a query cut). None is ""."""
    if value is None:
        return ""
    if type(value) is str and len(value) <= limit and value.isascii() \
            and value.isprintable():
        return value  # the common case, quickly
    if isinstance(value, bytes | bytearray | memoryview):
        return _blob(value, limit)
    if not isinstance(value, str):
        try:
            value = str(value)
        except Exception:
            return describe(value, limit)
    if len(value) <= limit:
        return clean(value, one_line)
    shown = clean(value[:limit], one_line)
    if whole:
        return f"{shown} [... truncated: {len(value)} characters in all]"
    return f"{shown} [... truncated]"


def _blob(value: bytes | bytearray | memoryview, limit: int) -> str:
    """Bytes (a BLOB where text belongs) as Python writes them: b'\\xff...'."""
    size = len(value)
    shown = repr(bytes(value[:limit]))
    return shown if size <= limit else f"{shown} [... truncated: {size} bytes in all]"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def whole_number(value: Any) -> int | str | None:
    """A stored whole number as it is; anything else as text (shown, never counted)."""
    if value is None or is_int(value):
        return value
    return text(value, SHORT, one_line=True)


def number(value: Any) -> float | int | str | None:
    if value is None or is_number(value):
        return value
    return text(value, SHORT, one_line=True)


def time(value: Any) -> dt.datetime | str | None:
    """A stored time: an aware datetime, else the stored value as text."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return text(value, SHORT, one_line=True)


def moment(value: Any) -> dt.datetime | str | None:
    """A time a query computed (``max(date_failed)``): SQLite hands it over as seconds
    since the epoch, PostgreSQL as a time; anything else as text."""
    if is_number(value):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (ValueError, OverflowError, OSError):
            return text(value, SHORT, one_line=True)
    return time(value)


def job_uuid(value: Any) -> str | None:
    """The uuid of a job's page link: a stored uuid in its canonical form, else None
    (a row written by hand may hold anything there: it is listed, not linked)."""
    if isinstance(value, uuid_module.UUID):
        return str(value)
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        canonical = str(uuid_module.UUID(value))
    except ValueError:
        return None
    return canonical if canonical == value else None


def job_row(  # noqa: C901 - one conversion per column of a stored row
        row: Mapping[str, Any], *, listed: bool = True, whole: bool = True,
            text_limit: int | None = None) -> dict[str, Any]:
    """A job row for a template: each value fit for a page, whatever was stored.

    ``listed``: for a list page (every text at most limits.LISTED characters); else for
    the job's own page (names up to their limits, texts up to ``text_limit``).
    ``whole``: the row's texts are the stored ones, not prefixes a query cut.
    ``link`` is the uuid to link the job's page with (None: no link)."""
    out: dict[str, Any] = dict(row)
    long_text = limits.LISTED if listed else (text_limit or limits.RESULT)
    for key in JOB_NAMES:
        if key in row:
            limit = limits.LISTED if listed else NAME_LIMITS.get(key, limits.LISTED)
            out[key] = text(row[key], limit, one_line=True, whole=whole)
    for key in JOB_TEXTS:
        if key in row and row[key] is not None:
            out[key] = text(row[key], long_text, whole=whole)
    for key in JOB_INTEGERS:
        if key in row:
            out[key] = whole_number(row[key])
    for key in JOB_TIMES:
        if key in row:
            out[key] = time(row[key])
    for key in JOB_NUMBERS:
        if key in row:
            out[key] = number(row[key])
    if "has_dependents" in row:
        out["has_dependents"] = row["has_dependents"] in (True, 1)
    for key in ("args", "kwargs"):
        if key in row:
            out[key] = text(row[key], long_text, whole=whole)
    out["link"] = job_uuid(row.get("uuid"))
    return out


def progress(row: Mapping[str, Any], *, whole: bool = True) -> dict[str, Any] | None:
    """The progress a job row holds for its current attempt, for a page: ``done``,
    ``total``, ``percent`` (rounded down but when done: 99.9 is not 100), ``text``
    (``40 / 100 (40%)``) and ``message``; None when it holds none. Stored values that
    are not a report cost the bar; a message that is not one (too long, not text)
    costs only itself: shown as text, cut."""
    found = progress_of({key: row.get(key) for key in (
        "attempt", "progress_attempt", "progress_done", "progress_total")})
    if found is None:
        return None
    percent = 100 if found.done == found.total else min(math.floor(found.percent), 99)
    return {"done": found.done, "total": found.total, "percent": percent,
            "text": f"{found.done} / {found.total} ({percent}%)",
            "message": text(row.get("progress_message"), limits.PROGRESS_MESSAGE,
                            one_line=True, whole=whole)}


#: the class of a log line by its level (any other level: "other")
LOG_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error",
              "CRITICAL": "critical"}


def log_time(at: float) -> str:
    """A logged line's time (seconds since the epoch) as UTC ``YYYY-MM-DD
    HH:MM:SS.mmm``; one that is not a time as the number it is."""
    try:
        return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (TypeError, ValueError, OverflowError, OSError):
        return text(at, SHORT, one_line=True)


def seconds(value: Any) -> str:
    """A duration for people: 850 ms, 12.3 s, 4 min 5 s, 2 h 10 min, 3 d 4 h; a stored
    value that is not a number of seconds as it is."""
    if value is None:
        return ""
    if not is_number(value):
        return text(value, SHORT, one_line=True)
    value = max(float(value), 0.0)
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def when(value: Any) -> str:
    """A time as UTC ``YYYY-MM-DD HH:MM:SS``; a stored value that is not one as it is."""
    if not value:
        return ""
    if isinstance(value, dt.datetime):
        try:
            return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        except (ValueError, OverflowError, OSError):
            return text(value, SHORT, one_line=True)
    return text(value, SHORT, one_line=True)


def iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        try:
            return value.astimezone(dt.UTC).isoformat()
        except (ValueError, OverflowError, OSError):
            return ""
    return ""


def last_line(value: Any, limit: int = 160) -> str:
    """The last non-blank line of a text (an exception's message), at most ``limit``
    characters."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return text(value, limit, one_line=True)
    # only the end matters: a traceback of megabytes is not split whole
    tail = value[-max(limit * 8, 2000):]
    lines = [line for line in tail.strip().splitlines() if line.strip()]
    line = lines[-1].strip() if lines else ""
    return text(line, limit, one_line=True, whole=False) if len(line) > limit \
        else clean(line, one_line=True)


def short(value: Any) -> str:
    """The first 8 characters (of a job uuid)."""
    if isinstance(value, str):
        return clean(value[:8], one_line=True)
    return text(value, 8, one_line=True)


def finalize(value: Any) -> Any:
    """Jinja's hook on every value a template renders: text a page can hold (valid
    Unicode, no NUL, control characters escaped), at most MAX_RENDERED characters,
    whatever the value. Markup (made by the templates themselves) is left alone."""
    if type(value) is str:
        return text(value, MAX_RENDERED)
    if isinstance(value, str) and hasattr(value, "__html__"):
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    return text(value, MAX_RENDERED)
