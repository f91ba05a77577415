"""Channels: their configuration string and the tree they form.

Channels are named with dots under ``root`` (``root.export.invoices``). The
configuration string is the original's: entries ``name:capacity:key=value``
separated by commas or newlines; ``root.`` may be left out of names; capacity
is 1 when left out; keys are ``sequential`` and ``throttle=N`` (seconds), and
queuejob's ``removal_interval=N`` (days before done jobs are deleted).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from . import limits
from .errors import ConfigurationError

ROOT = "root"
DEFAULT_REMOVAL_INTERVAL_DAYS = 30
#: the longest throttle (seconds) and removal interval (days): a year and a century
MAX_THROTTLE = 366 * 86400.0
MAX_REMOVAL_INTERVAL = 36525.0
#: the largest capacity (capacities are stored as 32-bit integers)
MAX_CAPACITY = 2**31 - 1
_PART = re.compile(r"[A-Za-z0-9_\-]+")


def _number(name: str, key: str, value: object, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"channel {name}: {key} must be a number, not {value!r}")
    if not math.isfinite(value) or not 0 <= value <= maximum:
        raise ConfigurationError(f"channel {name}: {key} must be a number from 0 to "
                                 f"{maximum:g}, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class ChannelSpec:
    """One configured channel. ``capacity=None`` means no limit."""

    name: str
    capacity: int | None = None
    sequential: bool = False
    throttle: float = 0.0
    removal_interval: float | None = None
    paused: bool = False

    def __post_init__(self) -> None:
        """Every value is checked here, where any face writes a configuration."""
        if not isinstance(self.name, str) or normalize_name(self.name) != self.name:
            raise ConfigurationError(f"bad channel name {self.name!r}")
        if self.capacity is not None and (
                isinstance(self.capacity, bool) or not isinstance(self.capacity, int)
                or not 1 <= self.capacity <= MAX_CAPACITY):
            raise ConfigurationError(f"channel {self.name}: capacity must be a whole number "
                                     f"from 1 to {MAX_CAPACITY}, not {self.capacity!r}")
        if self.sequential and self.capacity not in (None, 1):
            raise ConfigurationError(
                f"channel {self.name}: a sequential channel must have capacity 1, "
                f"not {self.capacity}")
        object.__setattr__(self, "throttle",
                           _number(self.name, "throttle", self.throttle, MAX_THROTTLE))
        if self.removal_interval is not None:
            object.__setattr__(self, "removal_interval", _number(
                self.name, "removal_interval", self.removal_interval, MAX_REMOVAL_INTERVAL))


@functools.lru_cache(maxsize=4096)
def normalize_name(name: str) -> str:
    """Full dotted name of a channel: ``export`` -> ``root.export``.

    Raises ConfigurationError for names with characters other than letters,
    digits, ``_`` and ``-`` between the dots.
    """
    if not isinstance(name, str):
        raise ConfigurationError(f"a channel name is text, not {type(name).__name__}")
    name = name.strip()
    if name != ROOT and not name.startswith(ROOT + "."):
        name = f"{ROOT}.{name}"
    if len(name) > limits.CHANNEL:
        raise ConfigurationError(f"bad channel name: {len(name)} characters, over the limit "
                                 f"of {limits.CHANNEL}")
    parts = name.split(".")
    if not all(_PART.fullmatch(part) for part in parts):
        from .text import describe
        raise ConfigurationError(
            f"bad channel name {describe(name, 80)}: use letters, digits, '_' and '-' "
            "between dots")
    return name


def parent(name: str) -> str | None:
    return name.rsplit(".", 1)[0] if "." in name else None


def ancestors(name: str) -> list[str]:
    """``name`` and every ancestor up to root: ``root.a.b`` -> [root.a.b, root.a, root]."""
    out = [name]
    while "." in name:
        name = name.rsplit(".", 1)[0]
        out.append(name)
    return out


def parse_channels(text: str) -> list[ChannelSpec]:
    """Parse a channel configuration string; ConfigurationError names a bad entry."""
    if not isinstance(text, str):
        raise ConfigurationError("channels must be a string like 'root:4,root.export:1'")
    specs: dict[str, ChannelSpec] = {}
    for raw in re.split(r"[,\n]", text):
        entry = raw.strip()
        if not entry:
            continue
        try:
            spec = _parse_entry(entry)
        except ConfigurationError as exc:
            raise ConfigurationError(f"bad channel entry {entry!r}: {exc}") from None
        if spec.name in specs:
            raise ConfigurationError(f"bad channel entry {entry!r}: channel {spec.name} "
                                     "is configured twice")
        specs[spec.name] = spec
    return list(specs.values())


def _parse_entry(entry: str) -> ChannelSpec:
    parts = [part.strip() for part in entry.split(":")]
    name = normalize_name(parts[0]) if parts[0] else None
    if name is None:
        raise ConfigurationError("missing channel name")
    capacity = 1
    if len(parts) > 1 and parts[1]:
        try:
            capacity = int(parts[1])
        except ValueError:
            raise ConfigurationError(f"capacity {parts[1]!r} is not a whole number") from None
        if capacity < 1:
            raise ConfigurationError("capacity must be at least 1")
    options: dict[str, object] = {}
    for option in parts[2:]:
        if not option:
            continue
        key, _, value = (piece.strip() for piece in option.partition("="))
        if key == "sequential":
            if value not in ("", "1", "true", "True"):
                raise ConfigurationError(f"sequential takes no value, not {value!r}")
            options["sequential"] = True
        elif key in ("throttle", "removal_interval"):
            try:
                number = float(value)
            except ValueError:
                raise ConfigurationError(f"{key} needs a number, not {value!r}") from None
            if number < 0:
                raise ConfigurationError(f"{key} must not be negative")
            options[key] = number
        else:
            raise ConfigurationError(f"unknown key {key!r} (known: sequential, throttle, "
                                     "removal_interval)")
    return ChannelSpec(name=name, capacity=capacity, **options)  # type: ignore[arg-type]


def format_spec(spec: ChannelSpec) -> str:
    out = spec.name
    out += f":{spec.capacity}" if spec.capacity is not None else ""
    if spec.sequential:
        out += ":sequential"
    if spec.throttle:
        out += f":throttle={spec.throttle:g}"
    if spec.removal_interval is not None:
        out += f":removal_interval={spec.removal_interval:g}"
    return out


class ChannelTree:
    """Configured channels; a job's channel runs in its nearest configured ancestor.

    ``root`` is always present (unlimited unless configured).
    """

    def __init__(self, specs: Iterable[ChannelSpec] = ()) -> None:
        self.specs: dict[str, ChannelSpec] = {ROOT: ChannelSpec(ROOT)}
        for spec in specs:
            self.specs[spec.name] = spec
        self._resolved: dict[str, str] = {}

    @classmethod
    def from_string(cls, text: str) -> ChannelTree:
        return cls(parse_channels(text))

    def resolve(self, channel: str) -> str:
        """The configured channel a job of ``channel`` runs in."""
        found = self._resolved.get(channel)
        if found is None:
            found = ROOT
            for name in ancestors(channel):
                if name in self.specs:
                    found = name
                    break
            self._resolved[channel] = found
        return found

    def path(self, channel: str) -> list[str]:
        """Configured channels whose capacity a job of ``channel`` counts against."""
        return [name for name in ancestors(self.resolve(channel)) if name in self.specs]

    def aggregate(self, counts: Mapping[str, int]) -> dict[str, int]:
        """Running jobs per configured channel (each counts against all ancestors)."""
        totals: dict[str, int] = dict.fromkeys(self.specs, 0)
        for channel, count in counts.items():
            for name in self.path(channel):
                totals[name] += count
        return totals

    def with_specs(self, specs: Iterable[ChannelSpec]) -> ChannelTree:
        merged = dict(self.specs)
        for spec in specs:
            merged[spec.name] = spec
        return ChannelTree(merged.values())

    def removal_interval_days(self, channel: str) -> float:
        for name in self.path(channel):
            value = self.specs[name].removal_interval
            if value is not None:
                return value
        return DEFAULT_REMOVAL_INTERVAL_DAYS

    def to_string(self) -> str:
        return ",".join(format_spec(spec) for spec in self.specs.values()
                        if spec.name != ROOT or spec != ChannelSpec(ROOT))


def spec_with(spec: ChannelSpec, **changes: object) -> ChannelSpec:
    return replace(spec, **changes)  # type: ignore[arg-type]
