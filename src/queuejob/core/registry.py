"""In-process registries: job functions and whitelisted argument types.

Stored data names functions and classes by their qualified name; decoding and
running look the name up here and nowhere else. Nothing named by stored data is
ever imported: a name that no code of this process registered is refused.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_job_functions: dict[str, Any] = {}
_globals: dict[str, Any] = {}
_schedules: dict[str, Any] = {}
_related_actions: dict[str, Any] = {}


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of a function or class (the stored name)."""
    return f"{obj.__module__}.{obj.__qualname__}"


def register_job_function(name: str, job_function: Any) -> None:
    with _lock:
        _job_functions[name] = job_function


def job_function(name: str) -> Any | None:
    """The registered job function stored as ``name``, or None."""
    return _job_functions.get(name)


def job_functions() -> dict[str, Any]:
    with _lock:
        return dict(_job_functions)


def whitelist(obj: Any) -> Any:
    """Admit a function or class as a job argument (see ``whitelist_unpickle_global``)."""
    if not callable(obj) or not hasattr(obj, "__qualname__"):
        raise TypeError(f"whitelist_unpickle_global() takes a function or a class, not {obj!r}")
    if "<locals>" in obj.__qualname__ or "<lambda>" in obj.__qualname__:
        raise TypeError(
            f"{obj.__qualname__} cannot be whitelisted: only module-level functions and classes "
            "have a stable name to store")
    with _lock:
        _globals[qualified_name(obj)] = obj
    return obj


def whitelisted(name: str) -> Any | None:
    return _globals.get(name)


def is_whitelisted(obj: Any) -> bool:
    try:
        return _globals.get(qualified_name(obj)) is obj
    except AttributeError:
        return False


def register_related_action(action: Any) -> None:
    """A related action people may name in a job function's stored settings."""
    with _lock:
        _related_actions[qualified_name(action)] = action


def related_action(name: str) -> Any | None:
    """The related action registered under ``name``, or None."""
    return _related_actions.get(name)


def register_schedule(schedule: Any) -> None:
    with _lock:
        _schedules[schedule.name] = schedule


def schedules() -> dict[str, Any]:
    with _lock:
        return dict(_schedules)
