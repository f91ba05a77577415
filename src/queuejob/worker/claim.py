"""The claim: which due jobs this worker takes now, checked and taken in one transaction.

Channel rules (capacities, sequential, throttle, paused) bound all workers' running jobs:
those stored in the database, and those live workers declare in their ``--channels``
(``core.channels.combine``); a worker's ``--concurrency`` bounds its own. Rules that hold
across workers need the running counts to stay true until the claim commits: such claims
take the claim lock first. Without them, claims run side by side, each skipping
the rows others have locked.

Three ways to claim, each a method:

- ``claim_known_config``: a queue without per-channel rules, whose configuration was read
  a moment ago: the next jobs in start order, one statement, no read of the configuration
  (the statement claims nothing if the configuration changed meanwhile);
- ``claim_next_jobs``: the same after reading the configuration;
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
from ..core.rows import is_number
from ..core.selection import (
    Limits,
    needs_claim_lock,
    per_channel_limits,
    select,
    sequential_channels,
)
from ..store import ClaimSnapshot, JobStore

log = logging.getLogger("queuejob.worker")

#: seconds between reads of the channel configuration by the workers of a simple queue
RECHECK_INTERVAL = 0.5

Row = dict[str, Any]


def root_capacity_only(tree: ChannelTree) -> bool:
    """Whether the one rule of ``tree`` is a capacity of root."""
    root = tree.specs[ROOT]
    return tree.specs.keys() == {ROOT} and root.capacity is not None \
        and not (root.sequential or root.throttle or root.paused)


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
        self._config_version: Any = -1
        #: the last claim found root's capacity the only rule of all workers
        self.root_only = False
        #: the channel configuration stored for all workers, as the last claim read it
        self.shared_tree = ChannelTree()
        #: retry patterns people set for job functions, as the last claim read them
        self.retry_patterns: dict[str, dict[int, Delay]] = {}

    def claim(self, conn: Any, running: Mapping[str, int], limit: int) -> list[Row]:
        """Start up to ``limit`` jobs, in the transaction the caller opened (and
        commits); ``running``: this worker's running jobs per stored channel."""
        now = time.monotonic()
        recheck = not self.fast or self.short or now >= self._recheck_at
        if self.simple and not self.locked and not recheck:
            rows = self.claim_known_config(conn, limit)
        else:
            rows = self._claim_after_reading(conn, running, limit)
            self._recheck_at = now + self.recheck_interval
        self.short = len(rows) < limit
        return rows

    def claim_known_config(self, conn: Any, limit: int) -> list[Row]:
        """The next due jobs in start order, while the configuration is the one read
        last (no row otherwise: the next claim reads it)."""
        return self.store.claim_next(conn, self.worker_id, limit, self._config_version)

    def claim_next_jobs(self, conn: Any, limit: int) -> list[Row]:
        """The next due jobs in start order, whatever their channel (one statement)."""
        return self.store.claim_next(conn, self.worker_id, limit, self._config_version)

    def _claim_after_reading(self, conn: Any, running: Mapping[str, int], limit: int
                             ) -> list[Row]:
        locked = self.locked
        if locked:
            self.store.lock_claims(conn)
        fast = not locked and self.simple
        wanted = not fast and not self.root_only
        snapshot = self._read(conn, want_channels=wanted)
        if not locked and needs_claim_lock(self.tree, self.shared_tree):
            # the counts just read may change before we commit: read them again locked
            locked, fast = True, False
            self.store.lock_claims(conn)
            wanted = not root_capacity_only(self.shared_tree)
            snapshot = self._read(conn, want_channels=wanted)
        if fast and len(self.shared_tree.specs) > 1:
            fast = False  # a paused channel: look at the channels after all
            wanted = True
            snapshot = self._read(conn, want_channels=True)
        self.locked = needs_claim_lock(self.tree, self.shared_tree)
        self.root_only = root_capacity_only(self.shared_tree)
        self.fast = fast
        if limit <= 0:
            return []
        if fast:
            return self.claim_next_jobs(conn, limit)
        if locked and self.root_only:
            return self.claim_within_root(conn, snapshot, limit)
        if not wanted:  # the configuration changed since the last claim
            snapshot = self._read(conn, want_channels=True)
        return self.claim_by_channel(conn, snapshot, running, limit)

    def claim_within_root(self, conn: Any, snapshot: ClaimSnapshot, limit: int
                          ) -> list[Row]:
        """The one rule is root's capacity (``--channels root:8``): the next jobs in
        start order, as many as root has room for (under the claim lock)."""
        capacity = self.shared_tree.specs[ROOT].capacity or 0
        busy = sum(count for count in snapshot.running.values() if is_number(count))
        return self.claim_next_jobs(conn, min(limit, capacity - int(busy)))

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
                         running: Mapping[str, int], limit: int) -> list[Row]:
        """Candidates per channel, chosen by the selection rules, then taken."""
        local = Limits(self.tree, running)
        shared = Limits(self.shared_tree, snapshot.running)
        trees = (self.tree, self.shared_tree)
        channels = self.store.usable_channels(conn, snapshot.channels)
        rooms = per_channel_limits(channels, limit=limit, local=local, shared=shared)
        if not rooms:
            return []
        sequential = sequential_channels(rooms, trees)
        rows = self.store.channel_candidates(
            conn, {channel: room for channel, room in rooms.items() if channel not in sequential})
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
                           last_started=last_started, now=0.0)
        if not selection.picked:
            return []
        started = self.store.start_jobs(conn, self.worker_id,
                                        [cand.id for cand in selection.picked])
        self.store.touch_throttle(conn, selection.throttled)
        return started
