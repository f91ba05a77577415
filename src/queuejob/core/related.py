"""Related actions and their stored settings: a job function's related action is the
one its ``@related_action`` decorator gives, unless people changed it (``queuejob
functions set NAME --related-action ...``, the dashboard, ``operations.set_function``):

- ``{"enable": False}``: none;
- ``{"func_name": "module.action"}``: that registered related action instead, called
  with the setting's ``kwargs`` only;
- ``{"kwargs": {...}}`` alone: the decorator's action, its keyword arguments updated
  with these.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from .errors import ConfigurationError
from .registry import qualified_name
from .text import describe

KEYS = frozenset({"enable", "func_name", "kwargs"})


def check_setting(value: Any) -> dict[str, Any]:
    """A related action's setting, checked for its shape (whether ``func_name`` is a
    registered related action is the caller's check: it depends on what is imported)."""
    if not isinstance(value, dict) or not set(value) <= KEYS:
        raise ConfigurationError("a related action is {'enable': bool, 'func_name': "
                                 "'module.action', 'kwargs': {...}}")
    enable = value.get("enable", True)
    if not isinstance(enable, bool):
        raise ConfigurationError("a related action's enable is true or false")
    func_name = value.get("func_name")
    if func_name is not None and (not isinstance(func_name, str) or not func_name):
        raise ConfigurationError(f"bad related action name {describe(func_name, 80)}")
    kwargs = value.get("kwargs")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise ConfigurationError("a related action's kwargs are a dict of names")
    # stored as JSON text (and read back by any tool): plain JSON values only, the same
    # once read back (no tuples, dates, NaN, or keys that are not text)
    try:
        same = json.loads(json.dumps(kwargs, allow_nan=False)) == kwargs
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigurationError(f"a related action's kwargs are JSON values: "
                                 f"{describe(str(exc), 120)[1:-1]}") from None
    if not same:
        raise ConfigurationError("a related action's kwargs are JSON values (lists, not "
                                 "tuples; text keys)")
    return {"enable": enable, "func_name": func_name, "kwargs": kwargs}


def effective(decorated: Callable[..., Any] | None, setting: dict[str, Any] | None,
              lookup: Callable[[str], Any]) -> Callable[..., Any] | None:
    """The related action to call: the decorator's (``decorated``), as ``setting`` (a
    checked one, or None) changes it; ``lookup`` finds a registered related action by
    name. ConfigurationError when the setting names one that is not registered, or
    gives keyword arguments the action does not take (calling it would fail)."""
    if setting is None:
        return decorated
    if not setting.get("enable", True):
        return None
    kwargs = setting.get("kwargs") or {}
    name = setting.get("func_name")
    if name:
        action = lookup(name)
        if action is None:
            raise ConfigurationError(f"the related action {name} is not registered in this "
                                     "process (import its module)")
        return _with_kwargs(functools.partial(action, **kwargs)) if kwargs else action
    if decorated is None or not kwargs:
        return decorated
    if isinstance(decorated, functools.partial):
        return _with_kwargs(functools.partial(decorated.func, *decorated.args,
                                              **{**decorated.keywords, **kwargs}))
    return _with_kwargs(functools.partial(decorated, **kwargs))


def _with_kwargs(action: functools.partial[Any]) -> functools.partial[Any]:
    """``action``, its stored keyword arguments given, if it can be called as
    ``action(session, job)``; ConfigurationError when they do not fit its signature
    (one it does not take, or one named like its session or job)."""
    try:
        signature = inspect.signature(action.func)
    except (TypeError, ValueError):  # no signature to read: trusted as it is
        return action
    try:
        signature.bind(*action.args, None, None, **action.keywords)
    except TypeError as exc:
        raise ConfigurationError(
            f"the related action {name_of(action)} does not take the stored kwargs "
            f"{describe(sorted(action.keywords), 120)}: {exc}") from None
    return action


def name_of(action: Callable[..., Any] | None) -> str | None:
    """A related action's ``module.name``, for a person to read."""
    if action is None:
        return None
    while isinstance(action, functools.partial):
        action = action.func
    return qualified_name(action)
