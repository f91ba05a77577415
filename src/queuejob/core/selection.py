"""Which pending jobs a worker starts now: the scheduling rules, without I/O.

Every due job competes in one order, ``(priority, date_created, id)``. Walking
that order, a job starts when every configured channel on its path (in the
worker's own tree and in the database's global tree) has room, its sequential
channel is idle and not blocked by a failed job, and its throttled channel has
waited long enough. A job that cannot start is skipped, so a full channel never
blocks another one. This greedy walk is the same as letting each channel offer
its best jobs and each ancestor take the best of its children's offers, since
capacities form a tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .channels import ChannelTree


@dataclass(frozen=True, order=True)
class Candidate:
    """A pending job as the scheduler sees it; sorts in start order."""

    priority: int
    date_created: float
    id: int
    channel: str = field(compare=False)
    due: bool = field(default=True, compare=False)


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
           now: float = 0.0) -> Selection:
    """Pick up to ``limit`` candidates to start.

    ``local`` bounds this worker (its own running jobs), ``shared`` is the
    database's configuration (running jobs of every worker). Sequential and
    throttle rules hold across all workers whichever tree declares them: they
    count ``global_running``, ``failed_channels`` and ``last_started``.
    """
    last_started = dict(last_started or {})
    trees = (local.tree, shared.tree)
    blocked: set[tuple[int, str]] = set()
    seq_totals = [tree.aggregate(global_running) for tree in trees]
    failed = list(failed_channels)
    seq_failed = [{tree.resolve(channel) for channel in failed} for tree in trees]
    picked: list[Candidate] = []
    throttled: list[str] = []
    for cand in sorted(candidates):
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
        picked.append(cand)
        local.take(cand.channel)
        shared.take(cand.channel)
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
                       shared: Limits) -> dict[str, int]:
    """How many candidates to fetch for each stored channel name: no more than
    its path has room for, and no more than ``limit``."""
    out: dict[str, int] = {}
    for channel in channels:
        room = limit
        for limits in (local, shared):
            for name in limits.tree.path(channel):
                capacity = limits.tree.specs[name].capacity
                if capacity is not None:
                    room = min(room, capacity - limits.totals[name])
        if room > 0:
            out[channel] = room
    return out


def needs_claim_lock(local_tree: ChannelTree, shared_tree: ChannelTree) -> bool:
    """Rules that count the running jobs of all workers: global capacities, and
    sequential or throttled channels of either tree."""
    return any(spec.capacity is not None or spec.sequential or spec.throttle
               for spec in shared_tree.specs.values()) \
        or any(spec.sequential or spec.throttle for spec in local_tree.specs.values())


def sequential_channels(channels: Iterable[str], trees: Iterable[ChannelTree]) -> set[str]:
    """Stored channel names that run in a sequential channel of any tree."""
    trees = list(trees)
    return {channel for channel in channels
            for tree in trees if tree.specs[tree.resolve(channel)].sequential}
