"""Stored rows as read back: checked before anything trusts them.

queuejob writes only valid rows, but a row may have been written by hand, by another
tool, by an older version, or damaged: SQLite stores any value in any column (a text
priority, a BLOB channel, text that is not UTF-8, which arrives with lone
surrogates). A bad row must cost that one job or that one configuration entry, with
a reason a person can read, never the worker or the page that reads it. The checks
are here, without I/O; the worker fails a job whose row has a problem, and skips a
configuration row that has one.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid as uuid_module
from collections.abc import Mapping
from typing import Any

from . import limits
from .channels import normalize_name
from .errors import ConfigurationError
from .text import describe

_UNDECODABLE = re.compile("[\ud800-\udfff]")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def counted(value: Any) -> int:
    """A count a query returned (a whole number; 0 for anything else, as a sum over
    rows written by hand may give)."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        return 0
    return int(value)


def is_text(value: Any) -> bool:
    """A str that is valid Unicode (stored text that was not UTF-8 holds surrogates)."""
    return isinstance(value, str) and _UNDECODABLE.search(value) is None


def channel_problem(value: Any) -> str | None:
    """Why a stored channel name cannot be used; None when it can."""
    if not is_text(value):
        return f"its channel {describe(value, 80)} is not text"
    try:
        if normalize_name(value) != value:
            raise ConfigurationError("not a full channel name")
    except ConfigurationError:
        return f"its channel {describe(value, 80)} is not a channel name"
    return None


def uuid_problem(value: Any) -> str | None:
    """Why a stored job uuid is not one (in its canonical form); None when it is."""
    if not isinstance(value, str):
        return f"its uuid {describe(value, 80)} is not text"
    try:
        if str(uuid_module.UUID(value)) != value:
            raise ValueError
    except ValueError:
        return f"its uuid {describe(value, 80)} is not a uuid"
    return None


def job_row_problem(row: Mapping[str, Any]) -> str | None:  # noqa: C901, PLR0911 - one check per stored column
    """Why a claimed job's row cannot be run as it is stored; None when it can.

    The arguments and the context are decoded (and checked) when the job is built.
    """
    problem = uuid_problem(row.get("uuid"))
    if problem:
        return problem
    func_name: Any = row.get("func_name")
    if not is_text(func_name) or len(func_name) > limits.FUNC_NAME:
        return f"its function name {describe(func_name, 80)} is not a function name"
    problem = channel_problem(row.get("channel"))
    if problem:
        return problem
    for column in ("priority", "max_retries", "retry", "attempt", "worker_deaths"):
        if not is_int(row.get(column)):
            return f"its {column} {describe(row.get(column), 80)} is not a whole number"
    if row["max_retries"] < 0:
        return f"its max_retries {row['max_retries']} is negative"
    if row.get("user_id") is not None and not is_int(row["user_id"]):
        return f"its user_id {describe(row['user_id'], 80)} is not a whole number"
    for column in ("model_name", "identity_key", "description", "graph_uuid"):
        if row.get(column) is not None and not isinstance(row[column], str):
            return f"its {column} {describe(row[column], 80)} is not text"
    timeout = row.get("timeout")
    if timeout is not None and not (is_number(timeout) and timeout > 0):
        return f"its timeout {describe(timeout, 80)} is not a positive number of seconds"
    for column in ("eta", "date_created"):
        if row.get(column) is not None and not isinstance(row[column], dt.datetime):
            return f"its {column} {describe(row[column], 80)} is not a time"
    for column in ("args", "kwargs"):
        if not isinstance(row.get(column), str | bytes):
            return f"its {column} {describe(row.get(column), 80)} are not stored text"
    context = row.get("context")
    if context is not None and not isinstance(context, str):
        return f"its context {describe(context, 80)} is not stored text"
    return None


def sort_key(row: Mapping[str, Any]) -> tuple[int, Any, Any, Any]:
    """A row's start order ``(priority, date_created, id)``, total whatever the stored
    types: rows with values of another type sort last, among themselves by id."""
    priority, row_id = row.get("priority"), row.get("id")
    created: Any = row.get("date_created")
    if is_int(priority) and (isinstance(created, dt.datetime) or is_number(created)) \
            and is_int(row_id):
        stamp = created.timestamp() if isinstance(created, dt.datetime) else float(created)
        return (0, priority, stamp, row_id)
    return (1, 0, 0.0, row_id if is_int(row_id) else 0)


def as_name(value: Any) -> str:
    """A stored name (channel, function, state...) as text, whatever was stored: text
    as it is (even with the lone surrogates of bytes that were not UTF-8), bytes as
    Python writes them (``b'...'``), anything else as ``str()`` does. Names so made
    compare and sort, whatever rows hold."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return repr(bytes(value))
    return str(value)


def is_channel_name(value: Any) -> bool:
    """Whether a stored value is a channel's full name."""
    return channel_problem(value) is None
