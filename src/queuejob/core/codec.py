"""Safe argument storage: JSON with type tags, never pickle.

Plain JSON values are stored as they are; every other admitted type is a small
object ``{"__qj__": tag, ...}``. Decoding builds values only from the tags
below and from names found in the in-process registries: a payload cannot make
this process import a module or call anything that was not registered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import limits, registry
from .errors import ArgumentsTooLargeError, DecodeError

TAG = "__qj__"
_UNDECODABLE = re.compile("[\udc80-\udcff]")

#: Default limit on the size of a job's encoded arguments (bytes of UTF-8).
MAX_ARGS_SIZE = limits.ARGUMENTS

ALLOWED = ("str, int, float, bool, None, list, tuple, dict, datetime.datetime, datetime.date, "
           "datetime.timedelta, Decimal, UUID, @job functions")


def _refuse(value: Any) -> TypeError:
    kind = type(value)
    return TypeError(
        f"cannot store an argument of type {kind.__module__}.{kind.__qualname__} in a job "
        f"(allowed: {ALLOWED}, and what whitelist_unpickle_global() admits)")


#: the types a list's items may all be for the list to be stored as it is (what JSON
#: holds without a tag; floats aside, whose infinities and NaN take one)
_PLAIN = frozenset({str, int, bool, type(None)})


def _encode(value: Any, depth: int = 0) -> Any:  # noqa: C901, PLR0911, PLR0912 - one branch per admitted type, in one place to be read at a glance
    if depth > limits.NESTING:
        raise TypeError(f"cannot store job arguments nested more than {limits.NESTING} "
                        "levels deep")
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return {TAG: "float", "v": repr(value)}
    if kind is list:
        if all(type(item) in _PLAIN for item in value):
            return value  # the usual arguments: nothing to tag, no call per item
        return [_encode(item, depth + 1) for item in value]
    if kind is tuple:
        return {TAG: "tuple", "v": [_encode(item, depth + 1) for item in value]}
    if kind is dict:
        if TAG not in value and all(type(key) is str for key in value):
            return {key: _encode(item, depth + 1) for key, item in value.items()}
        return {TAG: "dict", "v": [[_encode(key, depth + 1), _encode(item, depth + 1)]
                                   for key, item in value.items()]}
    if kind is dt.datetime:
        if isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key:
            # the wall-clock time, its zone and fold: rebuilt as they were (no trip
            # through UTC, which overflows near year 1 and 9999 and moves times that a
            # clock change skipped)
            encoded: dict[str, Any] = {TAG: "datetime",
                                       "v": value.replace(tzinfo=None).isoformat(),
                                       "tz": value.tzinfo.key}
            if value.fold:
                encoded["fold"] = 1
            return encoded
        return {TAG: "datetime", "v": value.isoformat()}
    if kind is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is Decimal:
        return {TAG: "decimal", "v": str(value)}
    if kind is UUID:
        return {TAG: "uuid", "v": str(value)}
    func_name = getattr(value, "func_name", None)
    if func_name and registry.job_function(func_name) is value:
        return {TAG: "job", "v": func_name}
    if registry.is_whitelisted(value):
        return {TAG: "global", "v": registry.qualified_name(value)}
    if registry.is_whitelisted(kind):
        name = registry.qualified_name(kind)
        if isinstance(value, enum.Enum):
            return {TAG: "enum", "cls": name, "v": _encode(value.value, depth + 1)}
        if dataclasses.is_dataclass(value):
            state = {field.name: getattr(value, field.name)
                     for field in dataclasses.fields(value)}
        elif hasattr(value, "__dict__"):
            state = dict(vars(value))
        else:
            raise _refuse(value)
        return {TAG: "object", "cls": name, "v": _encode(state, depth + 1)}
    raise _refuse(value)


#: canonical JSON: compact, sorted keys, ASCII with escapes (one encoder for every call)
_JSON = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=True,
                         allow_nan=False)


def dumps(value: Any) -> str:
    """Canonical JSON text of ``value`` (sorted keys: equal values, equal text)."""
    # ASCII with escapes: any str round-trips, lone surrogates (os.fsdecode) included
    try:
        return _JSON.encode(_encode(value))
    except RecursionError:
        # a whitelisted object whose state refers to itself, or a stack already deep
        raise TypeError("cannot store job arguments: they are nested too deeply (or refer "
                        "to themselves)") from None


def encode_arguments(args: tuple | list, kwargs: dict, max_size: int = MAX_ARGS_SIZE
                     ) -> tuple[str, str]:
    """Encode a job's positional and keyword arguments; raise TypeError or
    ArgumentsTooLargeError before anything is stored."""
    if type(kwargs) is not dict or not all(type(key) is str for key in kwargs):
        raise TypeError("job keyword arguments must be a dict with str keys")
    args_text = dumps(list(args)) if args else "[]"
    kwargs_text = dumps(kwargs) if kwargs else "{}"
    size = len(args_text) + len(kwargs_text)  # ASCII (escaped): one byte a character
    if size > max_size:
        raise ArgumentsTooLargeError(
            f"job arguments are {size} bytes encoded, over the limit of {max_size} bytes")
    return args_text, kwargs_text


def _object_from_state(cls: Any, state: dict) -> Any:
    obj = cls.__new__(cls)
    for key, item in state.items():
        object.__setattr__(obj, key, item)
    return obj


def _lookup(name: Any, what: str) -> Any:
    if not isinstance(name, str):
        raise DecodeError(f"bad {what} name in stored arguments")
    found = registry.whitelisted(name)
    if found is None:
        raise DecodeError(f"{what} {name!r} in stored arguments is not whitelisted")
    return found


def _decode_tagged(obj: dict) -> Any:  # noqa: C901, PLR0911, PLR0912 - one branch per type tag, the whole list of what decoding builds
    tag = obj.get(TAG)
    if tag is None:
        return obj
    value: Any = obj.get("v")
    try:
        if tag == "tuple":
            return tuple(value)
        if tag == "dict":
            return {_hashable(key): item for key, item in value}
        if tag == "float":
            number = float(value)
            if math.isfinite(number):
                raise ValueError("only nan and infinities are tagged floats")
            return number
        if tag == "datetime":
            parsed = dt.datetime.fromisoformat(value)
            if "tz" in obj:
                if parsed.tzinfo is not None:
                    raise ValueError("a zoned datetime is stored as its wall-clock time")
                parsed = parsed.replace(tzinfo=ZoneInfo(obj["tz"]), fold=obj.get("fold", 0))
            return parsed
        if tag == "date":
            return dt.date.fromisoformat(value)
        if tag == "timedelta":
            days, seconds, microseconds = value
            return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
        if tag == "decimal":
            return Decimal(value)
        if tag == "uuid":
            return UUID(value)
        if tag == "job":
            found = registry.job_function(value) if isinstance(value, str) else None
            if found is None:
                raise DecodeError(f"job function {value!r} in stored arguments is not registered")
            return found
        if tag == "global":
            return _lookup(value, "function or class")
        if tag == "enum":
            cls = _lookup(obj.get("cls"), "class")
            # only an Enum's own lookup runs: decoding never calls a stored callable
            if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):
                raise DecodeError(f"{obj.get('cls')!r} in stored arguments is not an Enum")
            return cls(value)
        if tag == "object":
            cls = _lookup(obj.get("cls"), "class")
            if not isinstance(cls, type) or not isinstance(value, dict):
                raise DecodeError(f"bad stored object of {obj.get('cls')!r}")
            return _object_from_state(cls, value)
    except DecodeError:
        raise
    except (TypeError, ValueError, KeyError, InvalidOperation, ZoneInfoNotFoundError,
            OverflowError) as exc:
        raise DecodeError(f"bad stored value with tag {str(tag)[:40]!r}: "
                          f"{_one_line(exc)}") from None
    raise DecodeError(f"unknown type tag {str(tag)[:40]!r} in stored arguments")


def _one_line(exc: BaseException) -> str:
    """An exception's text as one line (stored data may hold newlines)."""
    return repr(str(exc))[1:-1][:200] or type(exc).__name__


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        raise DecodeError("a list cannot be a dict key in stored arguments")
    return key


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"invalid JSON constant {name} in stored arguments")


def loads(text: str | bytes | None, max_size: int = MAX_ARGS_SIZE) -> Any:
    """Decode a payload written by ``dumps``; any problem is a one-line DecodeError."""
    if text is None:
        raise DecodeError("stored arguments are missing")
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("stored arguments are not valid UTF-8") from None
    if not isinstance(text, str):
        raise DecodeError(f"stored arguments have type {type(text).__name__}, not text")
    if _UNDECODABLE.search(text):
        # dumps() writes ASCII only; bytes that were not UTF-8 come as lone surrogates
        raise DecodeError("stored arguments are not valid UTF-8")
    if len(text) > max_size:
        raise DecodeError(f"stored arguments are {len(text)} characters, over the limit of "
                          f"{max_size}")
    if text == "[]":
        return []
    if text == "{}":
        return {}
    try:
        return _DECODER.decode(text)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("stored arguments are nested too deeply") from None
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"stored arguments are not valid JSON: {_one_line(exc)}") from None


_DECODER = json.JSONDecoder(object_hook=_decode_tagged, parse_constant=_reject_constant)


def decode_arguments(args_text: str | None, kwargs_text: str | None,
                     max_size: int = MAX_ARGS_SIZE) -> tuple[tuple, dict]:
    args = loads(args_text, max_size)
    kwargs = loads(kwargs_text, max_size)
    if not isinstance(args, list):
        raise DecodeError("stored positional arguments are not a list")
    if not isinstance(kwargs, dict) or not all(isinstance(key, str) for key in kwargs):
        raise DecodeError("stored keyword arguments are not a dict of names")
    return tuple(args), kwargs
