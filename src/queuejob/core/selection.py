"""Which pending jobs a worker starts now: the scheduling rules, without I/O.

Every due job competes in one order, ``(priority, date_created, id)``. Walking
that order, a job starts when every configured channel on its path (in the
worker's own tree and in the database's global tree) has room, its sequential
channel is idle and not blocked by a failed job, and its throttled channel has
waited long enough, its rate-limited channels have starts left in their window and
its key is under its key capacity. A job that cannot start is skipped, so a full channel never
blocks another one. This greedy walk is the same as letting each channel offer
its best jobs and each ancestor take the best of its children's offers, since
capacities form a tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .channels import ROOT, ChannelSpec, ChannelTree


@dataclass(frozen=True, order=True)
class Candidate:
    """A pending job as the scheduler sees it; sorts in start order. ``turn``: in a fair
    channel, the job's place among its key's jobs (its key's first job has turn 0):
    every key's first job goes before any key's second one."""

    priority: int
    date_created: float
    id: int
    channel: str = field(compare=False)
    due: bool = field(default=True, compare=False)
    #: its concurrency key ('' for none)
    key: str = field(default="", compare=False)
    turn: int = field(default=0, compare=False)

    def order(self) -> tuple[int, int, float, int]:
        return (self.turn, self.priority, self.date_created, self.id)


@dataclass
class Flow:
    """The flow-control rules of the shared tree and what they count now: the starts
    each rate-limited channel has left in its window, and the running jobs of each
    (channel with a key capacity, key)."""

    tree: ChannelTree
    rate_room: dict[str, int] = field(default_factory=dict)
    key_running: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def counting(cls, tree: ChannelTree, rate_used: Mapping[str, int],
                 key_running: Mapping[tuple[str, str], int]) -> Flow:
        """``rate_used``: starts in the window per rate-limited channel;
        ``key_running``: running jobs per (stored channel, key)."""
        rooms = {name: spec.rate[0] - rate_used.get(name, 0)
                 for name, spec in tree.specs.items() if spec.rate is not None}
        per_key: dict[tuple[str, str], int] = {}
        for (channel, key), count in key_running.items():
            for name in tree.path(channel):
                if tree.specs[name].key_capacity is not None:
                    per_key[(name, key)] = per_key.get((name, key), 0) + count
        return cls(tree, rooms, per_key)

    def room(self, channel: str) -> int | None:
        """How many more jobs of ``channel`` may start in this window (None: no rate)."""
        rooms = [self.rate_room[name] for name in self.tree.path(channel)
                 if name in self.rate_room]
        return min(rooms) if rooms else None

    def allows(self, channel: str, key: str) -> bool:
        room = self.room(channel)
        if room is not None and room <= 0:
            return False
        if not key:
            return True
        return all(self.key_running.get((name, key), 0) < capacity
                   for name in self.tree.path(channel)
                   if (capacity := self.tree.specs[name].key_capacity) is not None)

    def take(self, channel: str, key: str) -> None:
        for name in self.tree.path(channel):
            if name in self.rate_room:
                self.rate_room[name] -= 1
            if key and self.tree.specs[name].key_capacity is not None:
                self.key_running[(name, key)] = self.key_running.get((name, key), 0) + 1

    def key_room(self, channel: str, key: str) -> int | None:
        """How many more jobs of ``key`` may run in ``channel`` (None: no key capacity
        on its path, or no key)."""
        rooms = [capacity - self.key_running.get((name, key), 0)
                 for name in self.tree.path(channel)
                 if (capacity := self.tree.specs[name].key_capacity) is not None]
        return min(rooms) if rooms and key else None

    def keyed(self, channel: str) -> bool:
        """Whether a key capacity applies to ``channel``'s jobs."""
        return any(self.tree.specs[name].key_capacity is not None
                   for name in self.tree.path(channel))

    def blocked_keys(self, channel: str) -> list[str]:
        """Keys at their capacity in a channel with a key capacity on ``channel``'s
        path: their jobs are not worth fetching."""
        out: set[str] = set()
        for name in self.tree.path(channel):
            capacity = self.tree.specs[name].key_capacity
            if capacity is not None:
                out.update(key for (owner, key), count in self.key_running.items()
                           if owner == name and count >= capacity)
        return sorted(out)

    def binds(self, starts: int) -> bool:
        """Whether a rule could refuse one of ``starts`` more jobs, whatever their
        channels and keys: a window with fewer starts left, or a key capacity with less
        room than that for its busiest key (a key not running has the whole capacity)."""
        if any(room < starts for room in self.rate_room.values()):
            return True
        busiest: dict[str, int] = {}
        for (name, _), count in self.key_running.items():
            busiest[name] = max(busiest.get(name, 0), count)
        return any(spec.key_capacity - busiest.get(name, 0) < starts
                   for name, spec in self.tree.specs.items() if spec.key_capacity is not None)

    def rated(self, channel: str) -> list[str]:
        """The rate-limited channels a start in ``channel`` counts against."""
        return [name for name in self.tree.path(channel) if name in self.rate_room]


@dataclass
class Limits:
    """One capacity tree and the running jobs it counts (by stored channel)."""

    tree: ChannelTree
    running: Mapping[str, int]
    totals: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.totals = self.tree.aggregate(self.running)

    def has_room(self, channel: str) -> bool:
        for name in self.tree.path(channel):
            capacity = self.tree.specs[name].capacity
            if capacity is not None and self.totals[name] >= capacity:
                return False
        return True

    def take(self, channel: str) -> None:
        for name in self.tree.path(channel):
            self.totals[name] += 1


@dataclass
class Selection:
    picked: list[Candidate]
    #: configured channels with a throttle that started a job in this selection
    throttled: list[str]


def select(  # noqa: C901 - every selection rule in one walk of the start order
        candidates: Iterable[Candidate], *, limit: int,
           local: Limits, shared: Limits,
           global_running: Mapping[str, int],
           failed_channels: Iterable[str] = (),
           last_started: Mapping[str, float] | None = None,
           now: float = 0.0, flow: Flow | None = None) -> Selection:
    """Pick up to ``limit`` candidates to start.

    ``local`` bounds this worker (its own running jobs), ``shared`` is the
    database's configuration (running jobs of every worker). Sequential and
    throttle rules hold across all workers whichever tree declares them: they
    count ``global_running``, ``failed_channels`` and ``last_started``. ``flow``: the
    rate limits and key capacities of the shared tree, counted as jobs are picked.
    """
    last_started = dict(last_started or {})
    trees = (local.tree, shared.tree)
    blocked: set[tuple[int, str]] = set()
    seq_totals = [tree.aggregate(global_running) for tree in trees]
    failed = list(failed_channels)
    seq_failed = [{tree.resolve(channel) for channel in failed} for tree in trees]
    picked: list[Candidate] = []
    throttled: list[str] = []
    for cand in sorted(candidates, key=Candidate.order):
        if len(picked) >= limit:
            break
        if any(shared.tree.specs[name].paused for name in shared.tree.path(cand.channel)):
            continue
        ok = cand.due
        rules: list[tuple[int, str]] = []
        for index, tree in enumerate(trees):
            name = tree.resolve(cand.channel)
            spec = tree.specs[name]
            if spec.sequential:
                key = (index, name)
                if key in blocked or seq_totals[index].get(name, 0) > 0 \
                        or name in seq_failed[index]:
                    ok = False
                # the first job of a sequential channel in start order decides:
                # when it cannot start (not due yet, or no room), no later job passes it
                blocked.add(key)
            if spec.throttle and now - last_started.get(name, float("-inf")) < spec.throttle:
                ok = False
            rules.append((index, name))
        if not ok or not local.has_room(cand.channel) or not shared.has_room(cand.channel):
            continue
        if flow is not None and not flow.allows(cand.channel, cand.key):
            continue
        picked.append(cand)
        local.take(cand.channel)
        shared.take(cand.channel)
        if flow is not None:
            flow.take(cand.channel, cand.key)
        for index, name in rules:
            tree = trees[index]
            if tree.specs[name].sequential:
                seq_totals[index][name] = seq_totals[index].get(name, 0) + 1
            if tree.specs[name].throttle:
                last_started[name] = now
                if name not in throttled:
                    throttled.append(name)
    return Selection(picked=picked, throttled=throttled)


def per_channel_limits(channels: Sequence[str], *, limit: int, local: Limits,
                       shared: Limits, flow: Flow | None = None) -> dict[str, int]:
    """How many candidates to fetch for each stored channel name: no more than
    its path has room for (capacities, rate limits), and no more than ``limit``."""
    out: dict[str, int] = {}
    for channel in channels:
        room = limit
        rate_room = flow.room(channel) if flow is not None else None
        if rate_room is not None:
            room = min(room, rate_room)
        for limits in (local, shared):
            for name in limits.tree.path(channel):
                capacity = limits.tree.specs[name].capacity
                if capacity is not None:
                    room = min(room, capacity - limits.totals[name])
        if room > 0:
            out[channel] = room
    return out


def has_flow_rules(spec: ChannelSpec) -> bool:
    return spec.rate is not None or spec.key_capacity is not None or spec.fair


def flow_rules_only(tree: ChannelTree) -> bool:
    """Whether the rules of ``tree`` are at most a capacity of root and rules that count
    starts or keys (``rate``, ``key_capacity``): no capacity of another channel, no
    order of their own (sequential, throttle, paused, fair). While those counts leave room
    for a whole claim, its jobs are the next ones in start order."""
    return not any(spec.sequential or spec.throttle or spec.paused or spec.fair
                   or (spec.name != ROOT and spec.capacity is not None)
                   for spec in tree.specs.values())


def needs_claim_lock(local_tree: ChannelTree, shared_tree: ChannelTree) -> bool:
    """Rules that count the running jobs of all workers: global capacities, and
    sequential or throttled channels of either tree."""
    return any(spec.capacity is not None or spec.sequential or spec.throttle
               or has_flow_rules(spec) for spec in shared_tree.specs.values()) \
        or any(spec.sequential or spec.throttle for spec in local_tree.specs.values())


def sequential_channels(channels: Iterable[str], trees: Iterable[ChannelTree]) -> set[str]:
    """Stored channel names that run in a sequential channel of any tree."""
    trees = list(trees)
    return {channel for channel in channels
            for tree in trees if tree.specs[tree.resolve(channel)].sequential}
