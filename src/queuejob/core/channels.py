"""Channels: their configuration string and the tree they form.

Channels are named with dots under ``root`` (``root.export.invoices``). The
configuration string is the original's: entries ``name:capacity:key=value``
separated by commas or newlines; ``root.`` may be left out of names; capacity
is 1 when left out, and 0 means no capacity of its own (for ``root`` in a
worker's string: that worker takes no jobs); keys are ``sequential``,
``throttle=N`` (seconds) and the successor's ``paused``, and queuejob's
``removal_interval=N`` (days before done jobs are deleted) and flow control:
``rate=N/s|m|h`` (starts per window), ``key_capacity=N`` (running jobs per
concurrency key) and ``fair`` (keys take turns). Unknown keys are
refused, not ignored: a misspelt rule would silently do nothing.

Rules hold across all workers of a database, as under the original's single job
runner: the configuration stored in the database (``queuejob channels set``) wins
per channel, and for a channel without a stored row, the rules that live workers
declare in their ``--channels`` apply, the most restrictive when they disagree
(``combine``).
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
#: the keys of a channel entry
KEYS = ("sequential", "throttle", "paused", "removal_interval", "rate", "key_capacity",
        "fair")
#: the periods of a rate limit (``rate=100/m``), in seconds
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: the channel string, as help texts show it
GRAMMAR = ("name:capacity[:sequential][:throttle=N][:paused][:rate=N/s|m|h]"
           "[:key_capacity=N][:fair], ...")
_FLAGS = ("sequential", "paused", "fair")
_RATE = re.compile(r"(\d+)\s*/\s*([smh])")


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
    #: at most ``rate[0]`` jobs of the channel (its sub-channels included) start in any
    #: ``rate[1]`` seconds, across all workers
    rate: tuple[int, float] | None = None
    #: at most this many jobs of one concurrency key of the channel run at once
    key_capacity: int | None = None
    #: the channel's keys take turns: a key with many due jobs cannot hold back others
    fair: bool = False

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
        if self.rate is not None:
            object.__setattr__(self, "rate", check_rate(self.name, self.rate))
        if self.key_capacity is not None and (
                isinstance(self.key_capacity, bool) or not isinstance(self.key_capacity, int)
                or not 1 <= self.key_capacity <= MAX_CAPACITY):
            raise ConfigurationError(f"channel {self.name}: key_capacity must be a whole "
                                     f"number from 1 to {MAX_CAPACITY}, not "
                                     f"{self.key_capacity!r}")
        if not isinstance(self.fair, bool):
            raise ConfigurationError(f"channel {self.name}: fair is true or false")
        if self.fair and self.sequential:
            raise ConfigurationError(f"channel {self.name}: a sequential channel runs its "
                                     "jobs in order, it cannot be fair")
        if self.removal_interval is not None:
            object.__setattr__(self, "removal_interval", _number(
                self.name, "removal_interval", self.removal_interval, MAX_REMOVAL_INTERVAL))


def check_rate(name: str, rate: object) -> tuple[int, float]:
    """A rate limit: (jobs, seconds), at least one job in a period of 1 s to 1 h."""
    if not isinstance(rate, tuple | list) or len(rate) != 2:
        raise ConfigurationError(f"channel {name}: a rate is N/PERIOD, e.g. 100/m")
    count, period = rate
    if isinstance(count, bool) or not isinstance(count, int) \
            or not 1 <= count <= MAX_CAPACITY:
        raise ConfigurationError(f"channel {name}: a rate's number of jobs must be a whole "
                                 f"number from 1 to {MAX_CAPACITY}, not {count!r}")
    if period not in PERIODS.values():
        raise ConfigurationError(f"channel {name}: a rate's period is 1 s, 1 m or 1 h "
                                 f"(s, m, h), not {period!r}")
    return count, float(period)


def parse_rate(text: str) -> tuple[int, float]:
    """``100/m`` -> (100, 60.0); ConfigurationError otherwise."""
    found = _RATE.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ConfigurationError(f"rate {text!r} is not N/s, N/m or N/h (e.g. 100/m)")
    return int(found.group(1)), PERIODS[found.group(2)]


def format_rate(rate: tuple[int, float]) -> str:
    unit = next(key for key, seconds in PERIODS.items() if seconds == rate[1])
    return f"{rate[0]}/{unit}"


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
    if not parts[0]:
        raise ConfigurationError("missing channel name")
    name = normalize_name(parts[0])
    capacity: int | None = 1
    if len(parts) > 1 and ("=" in parts[1] or parts[1] in _FLAGS):
        parts.insert(1, "")  # name:key=value, the capacity left out (1)
    if len(parts) > 1 and parts[1]:
        try:
            capacity = int(parts[1])
        except ValueError:
            raise ConfigurationError(f"capacity {parts[1]!r} is not a whole number") from None
        if capacity < 0:
            raise ConfigurationError("capacity must be 0 (no limit of its own) or more")
        capacity = capacity or None
    options = dict(_parse_option(option) for option in parts[2:] if option)
    return ChannelSpec(name=name, capacity=capacity, **options)  # type: ignore[arg-type]


def _parse_option(option: str) -> tuple[str, object]:
    key, _, value = (piece.strip() for piece in option.partition("="))
    if key in _FLAGS:
        if value not in ("", "1", "true", "True"):
            raise ConfigurationError(f"{key} takes no value, not {value!r}")
        return key, True
    if key in ("throttle", "removal_interval"):
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(f"{key} needs a number, not {value!r}") from None
        if number < 0:
            raise ConfigurationError(f"{key} must not be negative")
        return key, number
    if key == "rate":
        return key, parse_rate(value)
    if key == "key_capacity":
        try:
            return key, int(value)
        except ValueError:
            raise ConfigurationError(f"key_capacity needs a whole number, not {value!r}"
                                     ) from None
    raise ConfigurationError(f"unknown key {key!r} (known: {', '.join(KEYS)})")


def format_spec(spec: ChannelSpec) -> str:
    out = spec.name
    out += f":{spec.capacity}" if spec.capacity is not None else ":0"
    if spec.sequential:
        out += ":sequential"
    if spec.throttle:
        out += f":throttle={spec.throttle:g}"
    if spec.paused:
        out += ":paused"
    if spec.rate is not None:
        out += f":rate={format_rate(spec.rate)}"
    if spec.key_capacity is not None:
        out += f":key_capacity={spec.key_capacity}"
    if spec.fair:
        out += ":fair"
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


# -- one set of rules for all workers ------------------------------------------------------------
@dataclass(frozen=True)
class WorkerChannels:
    """A worker's ``--channels`` string: the rules it declares for all workers, and how
    many jobs this process runs at once as the string says (root's capacity; 0 for
    ``root:0``, a worker that takes no jobs; None when the string gives root none)."""

    declared: tuple[ChannelSpec, ...]
    concurrency: int | None

    @classmethod
    def parse(cls, text: str | None) -> WorkerChannels:
        specs = parse_channels(text or "")
        concurrency = None
        for entry in re.split(r"[,\n]", text or ""):
            parts = [part.strip() for part in entry.split(":")]
            if parts[0] and normalize_name(parts[0]) == ROOT:
                concurrency = int(parts[1]) if len(parts) > 1 and parts[1] else 1
        # root:0 bounds this process only: it declares no rule
        declared = tuple(spec for spec in specs if spec != ChannelSpec(ROOT))
        return cls(declared, concurrency)

    def to_string(self) -> str:
        return ",".join(format_spec(spec) for spec in self.declared)


@dataclass(frozen=True)
class RuleSource:
    """Where a channel's rules come from: ``stored`` (the database's configuration) or
    ``workers`` (the ``--channels`` of the live ``workers`` that declare the channel);
    the workers whose declaration differs from the rules that apply: ``disagreeing``."""

    origin: str
    workers: tuple[str, ...] = ()
    disagreeing: tuple[str, ...] = ()


def most_restrictive(specs: Iterable[ChannelSpec]) -> ChannelSpec:
    """One channel's rules as several workers declare them: the smallest capacity, rate
    and key capacity, the longest throttle and removal interval, sequential, paused or
    fair if any says so (sequential over fair)."""
    specs = list(specs)
    capacities = [spec.capacity for spec in specs if spec.capacity is not None]
    sequential = any(spec.sequential for spec in specs)
    removals = [spec.removal_interval for spec in specs if spec.removal_interval is not None]
    rates = [spec.rate for spec in specs if spec.rate is not None]
    key_capacities = [spec.key_capacity for spec in specs if spec.key_capacity is not None]
    return ChannelSpec(
        name=specs[0].name,
        capacity=1 if sequential else (min(capacities) if capacities else None),
        sequential=sequential,
        throttle=max(spec.throttle for spec in specs),
        removal_interval=max(removals) if removals else None,
        paused=any(spec.paused for spec in specs),
        # the fewest starts per second (then the longest period)
        rate=min(rates, key=lambda rate: (rate[0] / rate[1], -rate[1])) if rates else None,
        key_capacity=min(key_capacities) if key_capacities else None,
        fair=any(spec.fair for spec in specs) and not sequential)


def combine(stored: Iterable[ChannelSpec], declared: Mapping[str, Iterable[ChannelSpec]]
            ) -> tuple[ChannelTree, dict[str, RuleSource]]:
    """The rules all workers follow: ``stored`` ones win per channel; a channel without a
    stored row takes the most restrictive of the rules live workers declare
    (``declared``: worker id -> its specs). Returns the tree and each rule's source."""
    stored_specs = {spec.name: spec for spec in stored}
    by_channel: dict[str, dict[str, ChannelSpec]] = {}
    for worker, specs in sorted(declared.items()):
        for spec in specs:
            by_channel.setdefault(spec.name, {})[worker] = spec
    applied: dict[str, ChannelSpec] = dict(stored_specs)
    sources: dict[str, RuleSource] = {}
    for name, workers in by_channel.items():
        rule = stored_specs.get(name)
        origin = "stored"
        if rule is None:
            applied[name] = rule = most_restrictive(workers.values())
            origin = "workers"
        sources[name] = RuleSource(origin, tuple(workers), tuple(
            worker for worker, theirs in workers.items() if theirs != rule))
    for name in stored_specs.keys() - sources.keys():
        sources[name] = RuleSource("stored")
    return ChannelTree(applied.values()), sources
