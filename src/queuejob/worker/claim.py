"""The claim: which due jobs this worker takes now, checked and taken in one transaction.

Channel rules (capacities, sequential, throttle, paused) bound all workers' running jobs:
those stored in the database, and those live workers declare in their ``--channels``
(``core.channels.combine``); a worker's ``--concurrency`` bounds its own. Rules that hold
across workers need the running counts to stay true until the claim commits: such claims
take the claim lock first. Without them, claims run side by side, each skipping
the rows others have locked.

Three ways to claim, each a method:

- ``claim_next_jobs``: a queue without per-channel rules: the next jobs in start order,
  one statement (claiming nothing if the configuration changed since it was read; while
  it was read a moment ago, the claim does not read it again: a ``known_claim``, which
  the worker may send with its outcomes, in one round trip; so is a claim whose only
  rule is root's capacity, counted by the claim's statement under the claim lock);
- ``claim_within_root``: no rule but root's capacity and flow rules that count starts or
  keys (rate, key_capacity): while their counts leave room for the whole claim, the same
  within root's room, the starts then recorded; otherwise:
- ``claim_by_channel``: channels with rules: candidates per channel, the selection rules
  of ``core.selection``, then the chosen jobs taken.

The ``Claimer`` keeps what the last claim learnt (whether the lock was needed, the stored
configuration, its version, the stored retry patterns); it belongs to the worker loop's
thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from ..core.channels import ROOT, ChannelTree
from ..core.retry import Delay
from ..core.rows import is_number, sort_key
from ..core.selection import (
    Flow,
    Limits,
    flow_rules_only,
    has_flow_rules,
    needs_claim_lock,
    per_channel_limits,
    select,
    sequential_channels,
)
from ..store import ClaimSnapshot, JobStore, KnownClaim

log = logging.getLogger("queuejob.worker")

#: rounds of candidates a channel under a key capacity reads at most in one claim
KEY_ROUNDS = 4

#: seconds between reads of the channel configuration by the workers of a simple queue
RECHECK_INTERVAL = 0.5

#: fair channels: due jobs looked through for jobs without a key, and seconds between
#: looks through all of them, once a whole look found none
KEYLESS_SCAN = 32
KEYLESS_RECHECK = 1.0

#: seconds between removals of the starts that left their rate windows, by one worker
PRUNE_INTERVAL = 1.0

Row = dict[str, Any]


class Claimer:
    def __init__(self, store: JobStore, worker_id: str, tree: ChannelTree,
                 recheck_interval: float = RECHECK_INTERVAL) -> None:
        self.store = store
        self.worker_id = worker_id
        self.tree = tree
        self.recheck_interval = recheck_interval
        #: the worker's tree is root alone: no per-channel rule of its own
        self.simple = tree.specs.keys() == {ROOT}
        #: the last claim needed the claim lock (take it before reading, next time)
        self.locked = True
        #: the last claim took the next jobs whatever their channel
        self.fast = False
        #: the last claim took fewer jobs than asked (an empty queue, or a change)
        self.short = True
        self._recheck_at = 0.0
        self._prune_at = 0.0
        #: fair channels whose last whole look for jobs without a key found none: when
        #: to look through all their due jobs again
        self._keyless_look_at: dict[str, float] = {}
        self._config_version: Any = -1
        #: the last claim found no rule but root's capacity and flow rules (rate,
        #: key_capacity): while those leave room, the next jobs in start order
        self.root_only = False
        #: ... and root has no capacity: claims may skip reading the configuration
        self.flow_known = False
        #: root's capacity when it is the only rule (no flow rule either): claims may
        #: skip reading the configuration and count root's room in their own statement
        self.capacity_known: int | None = None
        #: seconds until a rate-limited channel that holds due jobs may start one again
        #: (None: no channel waits for its window)
        self.retry_in: float | None = None
        #: the channel configuration stored for all workers, as the last claim read it
        self.shared_tree = ChannelTree()
        #: retry patterns people set for job functions, as the last claim read them
        self.retry_patterns: dict[str, dict[int, Delay]] = {}

    def claim(self, conn: Any, running: Mapping[str, int], limit: int) -> list[Row]:
        """Start up to ``limit`` jobs, in the transaction the caller opened (and
        commits); ``running``: this worker's running jobs per stored channel."""
        now = time.monotonic()
        self.retry_in = None
        recheck = self.short or now >= self._recheck_at
        known = None if recheck else self.known_claim()
        if known is not None:
            rows = self.store.claim_known(conn, self.worker_id, known, limit)
            self.known_claimed(known, rows, limit)
            return rows
        if self.flow_known and not recheck:
            rows = self._claim_flow_known(conn, running, limit)
        else:
            rows = self._claim_after_reading(conn, running, limit)
            self._recheck_at = now + self.recheck_interval
        self.short = len(rows) < limit
        return rows

    def known_claim(self) -> KnownClaim | None:
        """The next claim when it needs nothing read first (the configuration was read
        a moment ago and says the next jobs in start order, within root's capacity if
        any), for the worker to send with its outcomes; None when it must read."""
        if self.short or time.monotonic() >= self._recheck_at:
            return None
        if self.simple and not self.locked and self.fast:
            return KnownClaim(self._config_version)
        if self.capacity_known is not None:
            return KnownClaim(self._config_version, self.capacity_known)
        return None

    def known_claimed(self, claim: KnownClaim, rows: list[Row], limit: int) -> None:
        """What a ``known_claim`` took. Fewer jobs than asked: the queue ran dry or the
        configuration changed (the next claim reads it again); within root's capacity,
        other workers holding places is the usual reason, and only a claim that took
        nothing reads again (workers sharing a capacity would otherwise read at every
        claim)."""
        self.retry_in = None
        self.short = not rows if claim.capacity is not None else len(rows) < limit

    def _claim_flow_known(self, conn: Any, running: Mapping[str, int], limit: int
                          ) -> list[Row]:
        """Flow rules only, root without a capacity, the configuration read a moment
        ago: under the claim lock, the flow counts and the next jobs in start order
        (nothing if the configuration changed meanwhile: the next claim reads it); when
        a flow rule could refuse one of them, the claim that reads everything."""
        self.store.lock_claims(conn)
        counted = self._flow(conn)
        rows = self.claim_within_root(conn, None, limit, counted[0])
        if rows is None:
            rows = self._claim_after_reading(conn, running, limit)
            self._recheck_at = time.monotonic() + self.recheck_interval
        return rows

    def claim_next_jobs(self, conn: Any, limit: int) -> list[Row]:
        """The next due jobs in start order, whatever their channel (one statement),
        while the configuration is the one read last (no row otherwise: the next claim
        reads it)."""
        return self.store.claim_next(conn, self.worker_id, limit, self._config_version)

    def _claim_after_reading(self, conn: Any, running: Mapping[str, int], limit: int
                             ) -> list[Row]:
        locked = self.locked
        if locked:
            self.store.lock_claims(conn)
        else:
            self.store.claim_settings(conn)
        fast = not locked and self.simple
        wanted = not fast and not self.root_only
        snapshot = self._read(conn, want_channels=wanted)
        if not locked and needs_claim_lock(self.tree, self.shared_tree):
            # the counts just read may change before we commit: read them again locked
            locked, fast = True, False
            self.store.lock_claims(conn)
            wanted = not self._start_order_rules()
            snapshot = self._read(conn, want_channels=wanted)
        if fast and len(self.shared_tree.specs) > 1:
            fast = False  # a paused channel: look at the channels after all
            wanted = True
            snapshot = self._read(conn, want_channels=True)
        self.locked = needs_claim_lock(self.tree, self.shared_tree)
        self.root_only = self._start_order_rules()
        self.fast = fast
        #: the next claims may skip reading the configuration (see _claim_flow_known)
        root = self.shared_tree.specs[ROOT]
        self.flow_known = self.locked and self.root_only and root.capacity is None
        self.capacity_known = root.capacity if self.locked and self.root_only and not any(
            has_flow_rules(spec) for spec in self.shared_tree.specs.values()) else None
        if limit <= 0:
            return []
        if fast:
            return self.claim_next_jobs(conn, limit)
        counted: tuple[Flow | None, dict[str, float]] | None = None
        if locked and self.root_only:
            counted = self._flow(conn)
            rows = self.claim_within_root(conn, snapshot, limit, counted[0])
            if rows is not None:
                return rows
        if not wanted:  # the configuration changed since the last claim, or a flow rule binds
            snapshot = self._read(conn, want_channels=True)
        return self.claim_by_channel(conn, snapshot, running, limit, counted)

    def _start_order_rules(self) -> bool:
        """Whether both trees hold at most root's capacity and flow rules."""
        return flow_rules_only(self.shared_tree) and flow_rules_only(self.tree)

    def claim_within_root(self, conn: Any, snapshot: ClaimSnapshot | None, limit: int,
                          flow: Flow | None) -> list[Row] | None:
        """No rule but root's capacity (``--channels root:8``) and rate limits or key
        capacities (counted in ``flow``): the next jobs in start order, as many as root
        has room for (under the claim lock), when the flow rules cannot refuse any of
        them; None when they could (the claim then looks at channels and keys)."""
        capacity = self.shared_tree.specs[ROOT].capacity
        if capacity is not None:
            assert snapshot is not None  # a capacity is counted from a snapshot
            busy = sum(count for count in snapshot.running.values() if is_number(count))
            limit = min(limit, capacity - int(busy))
        if limit <= 0:
            return []
        if flow is not None and flow.binds(limit):
            return None
        rows = self.claim_next_jobs(conn, limit)
        if flow is not None:
            self.store.record_rate_starts(conn, [
                name for row in rows if isinstance(row.get("channel"), str)
                for name in flow.rated(row["channel"])])
        return rows

    def _read(self, conn: Any, want_channels: bool) -> ClaimSnapshot:
        """Read the claim's snapshot and keep what it says of the configuration."""
        snapshot = self.store.claim_snapshot(conn, self.worker_id, want_channels)
        if not snapshot.alive:
            # marked dead while alive (a long pause): be alive again before claiming, in
            # this transaction, so that no rescuer takes the jobs claimed now
            self.store.heartbeat(conn, self.worker_id)
        self.shared_tree = self.store.combined_rules(snapshot.configs, snapshot.declared)[0]
        self.retry_patterns = self.store.parse_retry_patterns(snapshot.retry_patterns)
        self._config_version = snapshot.config_version
        return snapshot

    def claim_by_channel(self, conn: Any, snapshot: ClaimSnapshot,
                         running: Mapping[str, int], limit: int,
                         counted: tuple[Flow | None, dict[str, float]] | None = None
                         ) -> list[Row]:
        """Candidates per channel, chosen by the selection rules, then taken
        (``counted``: the flow rules' counts, when this claim read them already)."""
        local = Limits(self.tree, running)
        shared = Limits(self.shared_tree, snapshot.running)
        trees = (self.tree, self.shared_tree)
        flow, frees_in = counted if counted is not None else self._flow(conn)
        channels = self.store.usable_channels(conn, snapshot.channels)
        rooms = per_channel_limits(channels, limit=limit, local=local, shared=shared,
                                   flow=flow)
        # a rate-limited channel with due jobs and no start left: look again when its
        # window frees one (a burst run waits for it)
        self.retry_in = min((frees_in[name] for name in frees_in
                             if any(name in flow.rated(channel) for channel in channels)),
                            default=None) if flow is not None else None
        if not rooms:
            return []
        sequential = sequential_channels(rooms, trees)
        fair = {channel for channel in rooms if channel not in sequential
                and self.shared_tree.specs[self.shared_tree.resolve(channel)].fair}
        keyed = {channel for channel in rooms if flow is not None and channel not in fair
                 and channel not in sequential and flow.keyed(channel)}
        rows = self.store.channel_candidates(
            conn, {channel: room for channel, room in rooms.items()
                   if channel not in sequential and channel not in fair
                   and channel not in keyed})
        for channel in sorted(keyed):
            assert flow is not None
            rows += self._keyed_candidates(conn, channel, rooms[channel], flow)
        places: dict[str, dict[str, int]] = {}
        if fair:
            fair_rows, places = self._fair_candidates(conn, fair, rooms, snapshot, flow)
            rows += fair_rows
        failed: list[Any] = []
        if sequential:
            rows += self.store.channel_heads(conn, sequential)
            failed = self.store.failed_channels(conn)
        candidates = self.store.candidates(conn, rows)
        # throttle: seconds since the last start, by the database's clock, as "-since"
        last_started = {row["name"]: -row["since_last_start"] for row in snapshot.configs
                        if is_number(row.get("since_last_start"))
                        and isinstance(row.get("name"), str)}
        selection = select(candidates, limit=limit, local=local, shared=shared,
                           global_running=snapshot.running, failed_channels=failed,
                           last_started=last_started, now=0.0, flow=flow)
        if not selection.picked:
            return []
        started = self.store.start_jobs(conn, self.worker_id,
                                        [cand.id for cand in selection.picked])
        self.store.touch_throttle(conn, selection.throttled)
        if flow is not None:
            self.store.record_rate_starts(conn, [
                name for cand in selection.picked for name in flow.rated(cand.channel)])
        # each fair channel's turns go on after the last key (in turn order) that started
        last: dict[str, tuple[int, str]] = {}
        for cand in selection.picked:
            place = places.get(cand.channel, {}).get(cand.key)
            if place is not None:
                name = self.shared_tree.resolve(cand.channel)
                last[name] = max(last.get(name, (place, cand.key)), (place, cand.key))
        self.store.set_fair_cursors(conn, {name: key for name, (_, key) in last.items()})
        return started

    def _flow(self, conn: Any) -> tuple[Flow | None, dict[str, float]]:
        """The rate limits and key capacities of the shared tree, counted now (None
        when it has none); and, for each rate-limited channel, the seconds until its
        window frees a start."""
        specs = self.shared_tree.specs.values()
        if not any(spec.rate is not None or spec.key_capacity is not None for spec in specs):
            return None, {}
        now = time.monotonic()
        prune = now >= self._prune_at
        if prune:
            self._prune_at = now + PRUNE_INTERVAL
        windows = self.store.rate_windows(conn, {
            spec.name: spec.rate[1] for spec in specs if spec.rate is not None}, prune)
        key_running = self.store.key_running(conn) if any(
            spec.key_capacity is not None for spec in specs) else {}
        flow = Flow.counting(self.shared_tree, {name: used for name, (used, _) in
                                                windows.items()}, key_running)
        frees_in = {name: max(float(seconds), 0.0) for name, (_, seconds) in windows.items()
                    if flow.rate_room.get(name, 1) <= 0 and is_number(seconds)}
        return flow, frees_in

    def _keyed_candidates(self, conn: Any, channel: str, room: int, flow: Flow
                          ) -> list[Row]:
        """A channel under a key capacity: its first due jobs, but those of keys at their
        capacity; when the jobs found are mostly of keys that can take fewer, again
        without those keys (a few rounds), so that one busy key cannot hold back the
        others."""
        blocked = set(flow.blocked_keys(channel))
        found: dict[Any, Row] = {}
        for _ in range(KEY_ROUNDS):
            rows = self.store.candidates_without_keys(conn, channel, sorted(blocked), room)
            fresh = [row for row in rows if row["id"] not in found]
            found.update((row["id"], row) for row in fresh)
            per_key: dict[str, int] = {}
            for row in found.values():
                key = row.get("concurrency_key") or ""
                per_key[key] = per_key.get(key, 0) + 1
            usable = per_key.pop("", 0)
            full = set()
            for key, count in per_key.items():
                key_room = flow.key_room(channel, key)
                usable += count if key_room is None else min(count, max(key_room, 0))
                if key_room is not None and count >= key_room:
                    full.add(key)
            if usable >= room or len(rows) < room or full <= blocked:
                break
            blocked |= full
        return list(found.values())

    def _fair_candidates(self, conn: Any, fair: set[str], rooms: Mapping[str, int],
                         snapshot: ClaimSnapshot, flow: Flow | None
                         ) -> tuple[list[Row], dict[str, dict[str, int]]]:
        """Fair channels: their keys take turns, the jobs without a key being one more
        key (``""``, first in the order of keys). The claim's keys are the next ones after
        where the turns stopped (wrapping around), at most one per place in the room,
        each with its share of the room, so that one key alone fills the claim; within a
        key, its first due jobs in start order. Returns the candidates (each with its
        turn among its key's jobs) and, per channel, each key's place in this round.

        Jobs without a key are looked for among all the channel's due jobs; when such a
        look finds none (a fair channel's jobs usually all have keys, and the look walks
        all of them), the next ones only look among the first few (``KEYLESS_SCAN``, or
        twice the room) for ``KEYLESS_RECHECK`` seconds."""
        cursors = {row["name"]: row.get("fair_cursor") for row in snapshot.configs
                   if isinstance(row.get("name"), str)}
        now = time.monotonic()
        keys_of: dict[str, tuple[str | None, list[str], list[str]]] = {}
        scans: dict[str, int | None] = {}
        for channel in sorted(fair):
            room = rooms[channel]
            after = cursors.get(self.shared_tree.resolve(channel))
            after = after if isinstance(after, str) else None
            blocked = set(flow.blocked_keys(channel)) if flow is not None else set()
            keys = self.store.fair_keys(conn, channel, after or "", room)
            again = self.store.fair_keys(conn, channel, "", room) \
                if len(keys) < room and after else []  # the keys before, after the wrap
            keys_of[channel] = (after, [key for key in keys if key not in blocked],
                                [key for key in again if key not in blocked and key not in keys])
            scans[channel] = None if now >= self._keyless_look_at.get(channel, 0.0) \
                else max(KEYLESS_SCAN, 2 * room)
        keyless: dict[str, list[Row]] = {channel: [] for channel in fair}
        for row in self.store.keyless_candidates(conn, {c: rooms[c] for c in fair}, scans):
            keyless[row["channel"]].append(row)
        wanted: list[tuple[str, str, int]] = []
        rows: list[Row] = []
        places: dict[str, dict[str, int]] = {}
        for channel, (after, keys, again) in keys_of.items():
            found = sorted(keyless[channel], key=sort_key)
            if scans[channel] is None and not found:
                self._keyless_look_at[channel] = now + KEYLESS_RECHECK
            none = [""] if found else []  # the jobs without a key, as a key
            order = none + keys if after is None else keys + none + again
            order = order[:rooms[channel]]
            per_key = -(-rooms[channel] // max(len(order), 1))  # a share, rounded up
            places[channel] = {key: place for place, key in enumerate(order)}
            wanted += [(channel, key, per_key) for key in order if key]
            rows += found[:per_key] if "" in places[channel] else []
        rows = sorted(rows + self.store.key_candidates(conn, wanted), key=sort_key)
        turns: dict[tuple[str, str], int] = {}
        for row in rows:  # in start order within each key
            place = (row["channel"], row.get("concurrency_key") or "")
            row["turn"] = turns.get(place, 0)
            turns[place] = row["turn"] + 1
        return rows, places
