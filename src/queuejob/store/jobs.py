"""The store: every write to the queue, as named queries run through a connector.

The one place, with ``reads`` (the read models of the faces), that names queries; the
SQL is in each dialect's ``queries.sql``, the rules in ``queuejob.core``, the meaning
of columns in ``mapping``. A ``JobStore`` holds no connection and no state of any
worker: callers pass the connection, and so decide the transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import Connector, Copy, Row, Statement, Steps
from ..core import states, tallies
from ..core.channels import ChannelSpec, ChannelTree, RuleSource, combine
from ..core.errors import ConfigurationError, JobStateError, NoSuchJobError
from ..core.job import canonical_uuid, eta_parts
from ..core.joblog import AttemptLog
from ..core.outcome import RELEASED, Outcome
from ..core.progress import Progress
from ..core.retry import Delay, dump_retry_pattern
from ..core.rows import channel_problem, counted, is_int, sort_key, uuid_problem
from ..core.selection import Candidate
from ..core.text import describe
from .mapping import (
    channel_specs,
    declared_specs,
    stored_related_action,
    stored_retry_pattern,
)

#: a job that kills its worker this many times fails, even with max_retries=0
DEATHS_WHEN_RETRYING_FOREVER = 5
#: stopped and dead workers' rows are removed after this many seconds (a week)
WORKER_ROWS_KEPT = 7 * 86400.0

log = logging.getLogger("queuejob.store")

#: an argument left out (None has a meaning of its own)
UNCHANGED: Any = object()


def _json(value: Any) -> Any:
    """JSON columns: parsed by psycopg, text from sqlite3."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class ClaimSnapshot:
    """What a claim reads before choosing jobs (one statement, one snapshot)."""

    #: stored channel configuration rows (checked by ``mapping.channel_specs``)
    configs: list[Row]
    #: running jobs per stored channel name, all workers
    running: dict[str, int]
    #: stored channel names holding pending jobs (when asked for)
    channels: list[Any]
    #: the claiming worker's row says it is alive
    alive: bool
    #: the version of the stored configuration
    config_version: Any
    #: retry patterns stored per job function, as JSON text
    retry_patterns: dict[str, Any]
    #: the channel rules live workers declare: rows of ``id`` and ``channels``
    declared: list[Row]


@dataclass(frozen=True)
class KnownClaim:
    """A claim that needs nothing read first (the configuration was read a moment ago):
    the next jobs in start order, within root's ``capacity`` when it has one (under the
    claim lock), while the configuration stays at ``config_version``."""

    config_version: Any
    capacity: int | None = None


@dataclass
class RescueReport:
    dead_workers: list[Row]
    rescued: list[str]
    failed: list[str]


class JobStore:
    """The queue's writes (and the reads the worker needs) on one connector."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        #: stored configuration rows found bad, each logged once while it stays so
        self._reported: set[tuple[str, str, str]] = set()
        self._run = connector.execute
        self._run_many = connector.execute_many

    def bad_row(self, kind: str, name: Any, exc: Exception) -> None:
        """A stored configuration row that does not make sense is skipped: say so once
        (per row and value) in the log, so that the rest keeps working."""
        key = (kind, describe(name, 80), str(exc))
        if key in self._reported:
            return
        if len(self._reported) > 10_000:
            self._reported.clear()
        self._reported.add(key)
        log.error("skipping the stored %s configuration of %s: %s", kind, key[1],
                  describe(str(exc), 300)[1:-1])

    # -- storing jobs --------------------------------------------------------------------
    def insert_many(self, conn: Any, rows: Sequence[dict[str, Any]], chunk: int = 1000
                    ) -> list[str]:
        """Store many jobs (``mapping.new_row`` rows), a statement per ``chunk`` on
        PostgreSQL; their uuids in order, where a job whose identity key was held
        (by a pending job, or by an earlier job of ``rows``) gets the holder's."""
        return self.connector.drive(conn, self.insert_many_steps(rows, chunk))

    def insert_many_steps(self, rows: Sequence[dict[str, Any]], chunk: int = 1000
                          ) -> Steps[list[str]]:
        """``insert_many``, as steps."""
        if len(rows) > 1 and all(row["identity_key"] is None for row in rows):
            return (yield from self._copy_jobs(rows))
        stored: set[str] = set()
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            written = yield Statement("insert_jobs", part, many=True)
            stored.update(row["uuid"] for row in written)
        out = []
        holders: dict[str, str] = {}
        for row in rows:
            if row["uuid"] in stored:
                out.append(row["uuid"])
                continue
            key = row["identity_key"]
            if key not in holders:
                holder = yield from self.identity_holder_steps(key)
                holders[key] = holder["uuid"] if holder \
                    else (yield from self.insert_one_steps(row))
            out.append(holders[key])
        return out

    def _copy_jobs(self, rows: Sequence[dict[str, Any]]) -> Steps[list[str]]:
        """Stream jobs without identity keys into the table (COPY on PostgreSQL)."""
        value = yield from self._copy_value()
        yield Copy("copy_jobs", [value(row) for row in rows])
        return [row["uuid"] for row in rows]

    def copy_alike_steps(self, row: dict[str, Any],
                         varying: Sequence[tuple[str, str | None, str]]) -> Steps[list[str]]:
        """Stream jobs like ``row`` but for their uuid, model name and encoded positional
        arguments, ``varying`` (``delay_many``'s calls): their uuids."""
        shared = (yield from self._copy_value())(row)
        head, tail = shared[1:3], shared[5:]  # around model_name and args, as in copy_jobs
        yield Copy("copy_jobs", [(job_uuid, *head, model_name, args, *tail)
                                 for job_uuid, model_name, args in varying])
        return [job_uuid for job_uuid, _, _ in varying]

    def _copy_value(self) -> Steps[Callable[[dict[str, Any]], tuple[Any, ...]]]:
        """The values ``copy_jobs`` streams of a ``mapping.new_row`` row: its channel, eta
        and creation date resolved here, as insert_job does in SQL."""
        defaults = yield Statement("copy_defaults")
        now = defaults[0]["now"]
        channels = {row["name"]: row["channel"] for row in defaults if row["name"] is not None}

        def value(row: dict[str, Any]) -> tuple[Any, ...]:
            delay = row["eta_delay"]
            return (
                row["uuid"], row["state"], row["func_name"], row["model_name"], row["args"],
                row["kwargs"], row["description"],
                row["channel"] or channels.get(row["func_name"]) or row["default_channel"],
                row["priority"], row["max_retries"], row["user_id"], row["context"],
                row["eta"] if delay is None else now + dt.timedelta(seconds=delay),
                row["timeout"], row["graph_uuid"], row["has_dependents"], now,
                row.get("concurrency_key") or "", row.get("trace_context"))
        return value

    def insert_held(self, conn: Any, rows: Sequence[dict[str, Any]], *, commit: bool) -> None:
        """Write jobs a session held (rows without identity keys) at its commit:
        with ``commit``, the statement and the COMMIT in one round trip where the engine
        allows; else as a transaction of their own on a connection outside any
        transaction (one statement for one job, without BEGIN nor COMMIT)."""
        if commit:
            self.connector.execute_many_and_commit(conn, "insert_jobs", rows)
        else:
            self.connector.insert_alone(conn, "insert_job", "insert_jobs", rows)

    def insert_one(self, conn: Any, params: dict[str, Any]) -> str:
        return self.connector.drive(conn, self.insert_one_steps(params))

    def insert_one_steps(self, params: dict[str, Any]) -> Steps[str]:
        """Store one job; its uuid, or the uuid of the job that holds its identity key."""
        job_key = params["identity_key"]
        for _ in range(10):
            rows = yield Statement("insert_job", params)
            if rows:
                return str(rows[0]["uuid"])
            holder = yield from self.identity_holder_steps(job_key)
            if holder is not None:
                return str(holder["uuid"])
            # the holder left pending between the two statements: insert again
        raise RuntimeError(f"could not store job with identity key {job_key!r}")

    def insert_debounced_steps(self, params: dict[str, Any], debounce: float,
                               description: str | None = None) -> Steps[str]:
        """Store a debounced job (``params``: its ``mapping.new_row``, with an identity key
        and its eta ``debounce`` seconds from now); its uuid, or the uuid of the job that
        holds its key.

        A pending job of the same function holding the key gets the new arguments (and
        ``description``, when given) and its eta moved to now + ``debounce``, by the
        database's clock: one UPDATE, which waits for a concurrent one on the same row, so
        that the last call's arguments win. Without one, the job is inserted as
        ``insert_one`` does; when the insert finds the key taken meanwhile (a concurrent
        transaction stored it and committed), the UPDATE is tried again on that job. A
        holder that is not pending (waiting for its parents, enqueued) or runs another
        function is left as it is and its uuid returned, as for a plain identity key; a
        holder that started in between no longer holds the key, and the job is inserted
        again.

        The UPDATE comes first, rather than an upsert: ``INSERT ... ON CONFLICT DO
        UPDATE ... WHERE`` would lock a holder it does not change (an enqueued job a
        worker is starting) until the caller's transaction ends."""
        key = params["identity_key"]
        change = {"identity_key": key, "func_name": params["func_name"],
                  "model_name": params["model_name"], "args": params["args"],
                  "kwargs": params["kwargs"], "new_description": description,
                  "debounce": float(debounce)}
        for _ in range(10):
            rows = yield Statement("debounce_job", change)
            if rows:
                return str(rows[0]["uuid"])
            rows = yield Statement("insert_job", params)
            if rows:
                return str(rows[0]["uuid"])
            holder = yield from self.identity_holder_steps(key)
            if holder is None:
                continue  # the holder started in between: the key is free again
            if holder["state"] == "pending" and holder["func_name"] == params["func_name"]:
                continue  # stored by a transaction that committed meanwhile: update it
            return str(holder["uuid"])
        raise RuntimeError(f"could not store the debounced job with identity key {key!r}")

    def identity_holder(self, conn: Any, identity_key: str | None,
                        exclude_uuid: str | None = None) -> Row | None:
        return self.connector.drive(conn, self.identity_holder_steps(identity_key,
                                                                      exclude_uuid))

    def identity_holder_steps(self, identity_key: str | None,
                              exclude_uuid: str | None = None) -> Steps[Row | None]:
        """The pending or enqueued job holding ``identity_key`` (but ``exclude_uuid``)."""
        if identity_key is None:
            return None
        rows = yield Statement("job_by_identity_key",
                               {"identity_key": identity_key, "exclude_uuid": exclude_uuid})
        return rows[0] if rows else None

    def load(self, conn: Any, job_uuid: str) -> Row | None:
        return self.connector.drive(conn, self.load_steps(job_uuid))

    def load_steps(self, job_uuid: str) -> Steps[Row | None]:
        """A job's row, None when there is none."""
        rows = yield Statement("load_job", {"uuid": canonical_uuid(job_uuid)})
        return rows[0] if rows else None

    def exists(self, conn: Any, job_uuid: str) -> bool:
        try:
            return bool(self._run(conn, "job_exists", {"uuid": canonical_uuid(job_uuid)}))
        except NoSuchJobError:
            return False

    def queue_at_eta(self, conn: Any, job_id: int, context: str) -> None:
        """A job just stored with an eta competes from its eta on, as a job stored then
        would (its ``date_created`` becomes its eta; ``context``, the encoded context
        that keeps its creation time)."""
        self.connector.drive(conn, self.queue_at_eta_steps(job_id, context))

    @staticmethod
    def queue_at_eta_steps(job_id: int, context: str) -> Steps[None]:
        """``queue_at_eta``, as steps."""
        yield Statement("queue_at_eta", {"id": job_id, "context": context})

    def update(self, conn: Any, params: Mapping[str, Any]) -> None:
        """Write every field people may change of a stored job (``mapping.update_row``)."""
        self._run(conn, "update_job", params)

    @staticmethod
    def update_steps(params: Mapping[str, Any]) -> Steps[None]:
        """``update``, as steps."""
        yield Statement("update_job", params)

    def insert_graph_steps(self, rows: Sequence[dict[str, Any]],
                           edges: Sequence[tuple[int, int]]) -> Steps[list[str]]:
        """Store the jobs of a graph (``mapping.new_row`` rows, parents first) and its
        edges (indexes into ``rows``: parent, child); their uuids in order.

        A job whose identity key another job holds is not stored: that job stands in
        for it. Its children wait for it; it does not wait for new parents (it is
        pending already)."""
        uuids = yield from self.insert_many_steps(rows)
        stood_in = {index for index, row in enumerate(rows) if uuids[index] != row["uuid"]}
        pairs = [{"parent": uuids[parent], "child": uuids[child]} for parent, child in edges
                 if child not in stood_in]
        if pairs:
            yield Statement("insert_dependency", pairs, many=True)
            parents = sorted({pair["parent"] for pair in pairs})
            yield Statement("mark_has_dependents", [{"uuid": uuid} for uuid in parents],
                            many=True)
        return uuids

    # -- claiming (the worker's Claimer decides; these are its statements) ---------------
    def lock_claims(self, conn: Any) -> None:
        """Serialize claims until this transaction ends (rules across workers); the
        claim's statements then read as after ``claim_settings``."""
        self._run(conn, "lock_claims")

    def claim_settings(self, conn: Any) -> None:
        """Before a claim without the lock: how its statements read (PostgreSQL: through
        indexes, whatever the planner statistics say)."""
        self._run(conn, "claim_settings")

    def claim_snapshot(self, conn: Any, worker_id: str, want_channels: bool) -> ClaimSnapshot:
        """Global channel configuration, running jobs per channel, the channels holding
        pending jobs (when wanted), whether the worker is alive in the database, the
        configuration's version and the stored retry patterns: one statement."""
        row = self._run(conn, "claim_state",
                        {"worker_id": worker_id, "want_channels": want_channels})[0]
        configs = _json(row["configs_json"])
        return ClaimSnapshot(configs=configs, running=_json(row["running_json"]) or {},
                             channels=_json(row["channels_json"]) or [],
                             alive=row["worker_state"] == "alive",
                             config_version=row["config_version"],
                             retry_patterns=_json(row["retry_patterns_json"]) or {},
                             declared=_json(row["declared_json"]) or [])

    def claim_next(self, conn: Any, worker_id: str, limit: int, config_version: Any
                   ) -> list[Row]:
        """Take the first ``limit`` due jobs in start order, whatever their channel, while
        the configuration is at ``config_version`` (one statement)."""
        if limit <= 0:
            return []
        rows = self._run(conn, "claim_next", {"worker_id": worker_id, "limit": limit,
                                              "worker_pid": os.getpid(),
                                              "config_version": config_version,
                                              "capacity": None})
        rows.sort(key=sort_key)
        return rows

    def claim_known(self, conn: Any, worker_id: str, claim: KnownClaim, limit: int
                    ) -> list[Row]:
        """Take up to ``limit`` jobs as ``claim`` says, in the caller's transaction."""
        rows: list[Row] = []
        for statement in self._known_claim(worker_id, claim, limit):
            rows = self._run(conn, statement.name, statement.params)
        rows.sort(key=sort_key)
        return rows

    @staticmethod
    def _known_claim(worker_id: str, claim: KnownClaim, limit: int) -> list[Statement]:
        if limit <= 0:
            return []
        claim_next = Statement("claim_next", {
            "worker_id": worker_id, "limit": limit, "worker_pid": os.getpid(),
            "config_version": claim.config_version, "capacity": claim.capacity})
        # root's capacity: the count of started jobs is read by a statement after the lock's
        first = Statement("claim_settings" if claim.capacity is None else "lock_claims")
        return [first, claim_next]

    @staticmethod
    def plain_finishes(outcomes: Iterable[Outcome]) -> bool:
        """Outcomes that end their jobs and need nothing but their own rows written (no
        graph to release, no log, no identity key to check): ``finish_and_claim``'s."""
        return all(o.state not in (states.PENDING, RELEASED) and not o.has_dependents
                   and o.log is None for o in outcomes)

    def finish_and_claim(self, conn: Any, outcomes: Sequence[Outcome], worker_id: str,
                         claim: KnownClaim | None, limit: int
                         ) -> tuple[list[Outcome], list[Row]]:
        """A worker's turn in one round trip where the engine allows it: write
        ``outcomes`` (``plain_finishes``), claim up to ``limit`` jobs as ``claim`` says
        (none when None), commit. Returns the outcomes not written (their attempts lost
        their jobs) and the claimed rows, in start order."""
        statements = [Statement("finish_job", self._finish_params(outcomes), many=True)]
        if claim is not None:
            statements += self._known_claim(worker_id, claim, limit)
        results = self.connector.execute_all_and_commit(conn, statements)
        written = {row["uuid"] for row in results[0] if row["uuid"]}
        rows = results[-1] if len(statements) > 1 else []
        rows.sort(key=sort_key)
        return [o for o in outcomes if o.uuid not in written], rows

    def channel_candidates(self, conn: Any, rooms: Mapping[str, int]) -> list[Row]:
        """The first due jobs of each channel, up to its room, in start order."""
        if not rooms:
            return []
        return self._run_many(conn, "channel_candidates", [
            {"channel": channel, "limit": room} for channel, room in rooms.items()])

    def channel_heads(self, conn: Any, channels: Iterable[str]) -> list[Row]:
        """The first job of each channel, due or not (sequential channels)."""
        wanted = sorted(channels)
        if not wanted:
            return []
        return self._run_many(conn, "channel_head", [{"channel": c} for c in wanted])

    def failed_channels(self, conn: Any) -> list[Any]:
        """Stored channel names holding failed jobs (they block sequential channels)."""
        return [row["name"] for row in self._run(conn, "failed_channels")]

    def start_jobs(self, conn: Any, worker_id: str, ids: Sequence[int]) -> list[Row]:
        """Take the chosen pending jobs for ``worker_id``, in the order of ``ids``."""
        pid = os.getpid()
        started = self._run(conn, "start_jobs", {
            "ids": self._array(ids), "worker_id": worker_id, "worker_pid": pid})
        order = {job_id: index for index, job_id in enumerate(ids)}
        started.sort(key=lambda row: order[row["id"]])
        return started

    # -- flow control (rate limits, key capacities, fair turns) ----------------------------
    def rate_windows(self, conn: Any, rated: Mapping[str, float], prune: bool = True
                     ) -> dict[str, tuple[int, Any]]:
        """For each rate-limited channel (name -> period in seconds): the starts within
        its window, and the seconds until the oldest of them leaves it (None when there
        is none). With ``prune``, starts that left their window are removed first (the
        count skips them either way)."""
        if not rated:
            return {}
        params = [{"channel": name, "period": period} for name, period in rated.items()]
        if prune:
            self._run_many(conn, "prune_rate_starts", params)
        return {row["channel"]: (counted(row["used"]), row["frees_in"])
                for row in self._run_many(conn, "rate_window", params)}

    def record_rate_starts(self, conn: Any, channels: Iterable[str]) -> None:
        """Jobs started now in these rate-limited channels (one entry per job)."""
        wanted = list(channels)
        if wanted:
            self._run(conn, "record_rate_starts", {"channels": self._array(wanted)})

    def key_running(self, conn: Any) -> dict[tuple[str, str], int]:
        """Running jobs per (stored channel, concurrency key), for the keyed ones."""
        return {(row["channel"], row["concurrency_key"]): int(row["running"])
                for row in self._run(conn, "key_running")
                if isinstance(row["channel"], str) and isinstance(row["concurrency_key"], str)}

    def fair_keys(self, conn: Any, channel: str, after: str, limit: int) -> list[str]:
        """The keys of ``channel``'s pending jobs after ``after``, in key order."""
        return [row["key"] for row in self._run(
            conn, "fair_keys", {"channel": channel, "after": after, "limit": limit})]

    def key_candidates(self, conn: Any, wanted: Sequence[tuple[str, str, int]]
                       ) -> list[Row]:
        """The first due jobs of each (channel, key), up to its room, in start order."""
        if not wanted:
            return []
        return self._run_many(conn, "key_candidates", [
            {"channel": channel, "key": key, "limit": room} for channel, key, room in wanted])

    def keyless_candidates(self, conn: Any, rooms: Mapping[str, int],
                           scans: Mapping[str, int | None]) -> list[Row]:
        """The first due jobs without a key of each channel, up to its room, among the
        channel's first ``scans[channel]`` due jobs (None: all of them)."""
        if not rooms:
            return []
        postgres = self.connector.dialect == "postgresql"
        return self._run_many(conn, "keyless_candidates", [
            {"channel": channel, "limit": room,
             "scan": scan if scan is not None or postgres else -1}
            for channel, room in rooms.items() for scan in [scans.get(channel)]])

    def candidates_without_keys(self, conn: Any, channel: str, blocked: Sequence[str],
                                limit: int) -> list[Row]:
        """The first due jobs of ``channel`` but those of the ``blocked`` keys."""
        return self._run(conn, "candidates_without_keys",
                         {"channel": channel, "blocked": self._array(blocked), "limit": limit})

    def _array(self, values: Iterable[Any]) -> Any:
        """A list as a statement's parameter: an array (PostgreSQL) or a JSON array
        (SQLite, read with json_each)."""
        return list(values) if self.connector.dialect == "postgresql" \
            else json.dumps(list(values))

    def set_fair_cursors(self, conn: Any, cursors: Mapping[str, str]) -> None:
        """Where the turns of fair channels stopped."""
        if cursors:
            self._run_many(conn, "set_fair_cursor", [
                {"name": name, "key": key} for name, key in cursors.items()])

    def touch_throttle(self, conn: Any, names: Iterable[str]) -> None:
        """Throttled channels started a job now."""
        wanted = list(names)
        if wanted:
            self._run_many(conn, "touch_throttle", [{"name": name} for name in wanted])

    def usable_channels(self, conn: Any, channels: Iterable[Any]) -> list[str]:
        """The channels holding pending jobs whose names are channel names; the pending
        jobs of any other (a row written by hand, text that is not UTF-8) end failed,
        each with the reason, so that they never stop the claim."""
        usable = []
        for name in channels:
            problem = channel_problem(name)
            if problem is None:
                usable.append(name)
                continue
            raw = name.encode("utf-8", "surrogateescape") if isinstance(name, str) \
                else str(name).encode()
            failed = self._run(conn, "fail_channel_jobs", {
                "raw": raw, "reason": f"this job cannot run: {problem}"})
            if failed:
                log.error("%d pending job(s) failed: %s", len(failed), problem)
        return usable

    def candidates(self, conn: Any, rows: Iterable[Row]) -> list[Candidate]:
        """Candidates of the claim; a pending row whose priority or creation time is not
        one (a row written by hand) ends failed with the reason."""
        out = []
        for row in rows:
            if sort_key(row)[0] == 0:
                created = row["date_created"]
                key = row.get("concurrency_key")
                out.append(Candidate(
                    priority=row["priority"], id=row["id"], channel=row["channel"],
                    due=bool(row["due"]), date_created=created.timestamp()
                    if isinstance(created, dt.datetime) else float(created),
                    key=key if isinstance(key, str) else "", turn=row.get("turn", 0)))
                continue
            problem = (f"its priority {describe(row['priority'], 60)} is not a whole number"
                       if not is_int(row["priority"]) else
                       f"its date_created {describe(row['date_created'], 60)} is not a time")
            if self._run(conn, "fail_bad_job", {
                    "id": row["id"], "state": states.PENDING, "attempt": None,
                    "reason": f"this job cannot run: {problem}"}):
                log.error("job row %s failed: %s", row["id"], problem)
        return out

    def parse_retry_patterns(self, stored: Mapping[str, Any]) -> dict[str, dict[int, Delay]]:
        """Retry patterns people set for job functions; a malformed one is skipped
        (the decorator's applies), said once in the log."""
        patterns = {}
        for name, text in stored.items():
            try:
                patterns[name] = stored_retry_pattern(text)
            except ConfigurationError as exc:
                self.bad_row("function", name, exc)
        return patterns

    # -- outcomes ------------------------------------------------------------------------
    def record(self, conn: Any, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """Write the outcomes of attempts, fenced on (uuid, attempt, started); returns
        the outcomes that were not written because the attempt lost its job (rescued,
        requeued or cancelled meanwhile)."""
        finish: list[Outcome] = []
        back: list[Outcome] = []
        keyed: list[Outcome] = []
        for outcome in outcomes:
            if outcome.state not in (states.PENDING, RELEASED):
                finish.append(outcome)
            else:
                (keyed if outcome.identity_key is not None else back).append(outcome)
        written: set[str] = set()
        # an attempt going back to pending while another job holds its identity key is
        # superseded: it ends cancelled, so that the key stays unique. One at a time, so
        # that each check sees the attempts put back before it
        for outcome in keyed:
            holder, rows = self._keyed_to_pending(
                conn, outcome.uuid, functools.partial(self._back_to_pending, conn, [outcome]))
            if holder:
                outcome.state = states.CANCELLED
                outcome.result = f"Superseded by {holder}"
                finish.append(outcome)
            else:
                written.update(row["uuid"] for row in rows)
        if finish:
            rows = self._run_many(conn, "finish_job", self._finish_params(finish))
            written.update(row["uuid"] for row in rows if row["uuid"])
            ended = [o for o in finish if o.has_dependents and o.uuid in written]
            self.release_children(conn, [o.uuid for o in ended if o.state == states.DONE])
            self.cancel_children(conn, [o.uuid for o in ended if o.state == states.CANCELLED])
        written.update(row["uuid"] for row in self._back_to_pending(conn, back))
        self.save_job_logs(conn, [((o.uuid, o.attempt), o.log) for o in outcomes
                                  if o.log is not None and o.uuid in written])
        return [o for o in outcomes if o.uuid not in written]

    @staticmethod
    def _finish_params(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
        return [{"uuid": o.uuid, "attempt": o.attempt, "state": o.state, "retry": o.retry,
                 "result": o.result, "exc_info": o.exc_info, "exc_name": o.exc_name,
                 "exc_message": o.exc_message} for o in outcomes]

    def save_job_logs(self, conn: Any, logs: Sequence[tuple[tuple[str, int], AttemptLog]]
                      ) -> None:
        """What attempts logged (each replacing what was written of it before)."""
        if logs:
            self._run_many(conn, "save_job_log", [
                {"uuid": uuid, "attempt": attempt, "lines": log.to_json(),
                 "dropped": log.dropped} for (uuid, attempt), log in logs])

    def save_progress(self, conn: Any, reports: Sequence[tuple[tuple[str, int], Progress]]
                      ) -> None:
        """Running attempts' latest progress reports (fenced on the attempt)."""
        if reports:
            self._run_many(conn, "save_progress", [
                {"uuid": uuid, "attempt": attempt, "done": report.done,
                 "total": report.total, "message": report.message}
                for (uuid, attempt), report in reports])

    def record_one_by_one(self, conn: Any, outcomes: Sequence[Outcome]) -> list[Outcome]:
        """``record``, one outcome at a time, each in a savepoint: after a batch could not
        be written for a reason other than the database itself, so that one job's outcome
        never takes the others with it. An outcome that cannot be written at all ends
        its job failed, with the reason. Returns the outcomes that lost their job."""
        lost: list[Outcome] = []
        for outcome in outcomes:
            try:
                with self.connector.savepoint(conn):
                    lost += self.record(conn, [outcome])
                continue
            except Exception as exc:
                if self.connector.is_transient(exc):
                    raise
                error = exc
            reason = (f"the outcome of this attempt ({outcome.state}) could not be stored: "
                      f"{describe(str(error) or type(error).__name__, 300)[1:-1]}")
            log.error("job %s: %s", describe(outcome.uuid, 60), reason)
            if outcome.id is None or not self._run(conn, "fail_bad_job", {
                    "id": outcome.id, "state": states.STARTED, "attempt": outcome.attempt,
                    "reason": reason}):
                lost.append(outcome)
            else:  # what was written instead (what its hooks hear)
                outcome.state, outcome.exc_name = states.FAILED, "queuejob.JobCannotRun"
        return lost

    def release_children(self, conn: Any, parents: Sequence[str]) -> list[str]:
        return self.connector.drive(conn, self.release_children_steps(parents))

    def release_children_steps(self, parents: Sequence[str]) -> Steps[list[str]]:
        """After ``parents`` are done: their waiting children whose parents are all
        done become pending, in the same transaction."""
        if not parents:
            return []
        children = yield Statement("waiting_children", [{"uuid": u} for u in parents],
                                   many=True)
        if not children:
            return []
        released = yield Statement("release_children",
                                   [{"uuid": row["uuid"]} for row in children], many=True)
        if released:
            yield Statement("notify_jobs")
        return [row["uuid"] for row in released]

    def cancel_children(self, conn: Any, parents: Sequence[str]) -> list[str]:
        return self.connector.drive(conn, self.cancel_children_steps(parents))

    def cancel_children_steps(self, parents: Sequence[str]) -> Steps[list[str]]:
        """After ``parents`` are cancelled: the jobs waiting for them whose parents are
        all cancelled are cancelled too, and so on down the graph (a job with a parent
        still alive keeps waiting for it)."""
        cancelled: list[str] = []
        while parents:
            rows = yield Statement("cancel_waiting_children",
                                   [{"uuid": u} for u in parents], many=True)
            parents = [row["uuid"] for row in rows]
            cancelled += parents
        return cancelled

    def _keyed_to_pending(self, conn: Any, job_uuid: str, write: Callable[[], list[Row]]
                          ) -> tuple[str | None, list[Row]]:
        """Put a job that holds an identity key back to pending with ``write``, unless
        another pending or enqueued job holds the key: (that job's uuid, rows written).

        The check and the write are two statements: on PostgreSQL another transaction
        may make a job with the key pending in between, and the unique index then
        refuses the write. The write runs in a savepoint, and such a refusal means
        superseded, like the check."""
        holder = self._run(conn, "identity_holder", {"uuid": job_uuid})
        if holder:
            return holder[0]["uuid"], []
        try:
            with self.connector.savepoint(conn):
                return None, write()
        except Exception as exc:
            if not self.connector.is_unique_violation(exc):
                raise
            holder = self._run(conn, "identity_holder", {"uuid": job_uuid})
            if not holder:
                raise
            return holder[0]["uuid"], []

    def _back_to_pending(self, conn: Any, outcomes: Sequence[Outcome]) -> list[Row]:
        """Retried attempts (with their eta) and released ones (unchanged) to pending."""
        rows = self._run_many(conn, "retry_job", [
            {"uuid": o.uuid, "attempt": o.attempt, "retry": o.retry, "result": o.result,
             "eta_delay": float(o.eta_delay or 0.0)} for o in outcomes
            if o.state == states.PENDING])
        released = self._run_many(conn, "release_job", [
            {"uuid": o.uuid, "attempt": o.attempt} for o in outcomes if o.state == RELEASED])
        if released:
            self._run(conn, "notify_jobs")
        return rows + released

    # -- workers and rescue --------------------------------------------------------------
    def register_worker(self, conn: Any, worker_id: str, hostname: str, pid: int,
                        channels: str, concurrency: int | None = None, *,
                        supervisor_pid: int | None = None, listener: str | None = None,
                        job_connections: int | None = None,
                        process_space: str | None = None) -> None:
        """A worker's row: ``channels``, the rules it declares for all workers (claims
        look at them again: the configuration's version moves), ``concurrency``, its
        own number of job threads; what it holds (its supervisor, how it is woken
        (``listener``: own, shared or none), its jobs' connections); the
        ``process_space`` its pid means something in (worker/liveness.py)."""
        self._run(conn, "register_worker", {
            "id": worker_id, "hostname": hostname, "pid": pid, "channels": channels,
            "concurrency": concurrency, "supervisor_pid": supervisor_pid,
            "listener": listener, "job_connections": job_connections,
            "process_space": process_space})
        if channels:
            self._run(conn, "bump_config")

    def heartbeat(self, conn: Any, worker_id: str) -> bool:
        """Refresh the heartbeat; False when the worker row is gone or stopped."""
        return bool(self._run(conn, "heartbeat", {"id": worker_id}))

    def worker_look(self, conn: Any, worker_id: str, dead_after: float) -> Row:
        """With a heartbeat: the worker's ``rank`` among the ``workers`` alive that take
        jobs, and whether there are stored ``schedules`` and ``open_batches``."""
        return self._run(conn, "worker_look", {"id": worker_id, "dead_after": dead_after})[0]

    def set_worker_listener(self, conn: Any, worker_id: str, listener: str) -> None:
        """How the worker is woken changed (``none``: it polls)."""
        self._run(conn, "set_worker_listener", {"id": worker_id, "listener": listener})

    def wake_worker(self, conn: Any, payload: str) -> None:
        """A notification naming one worker (core/wakeups.py), sent at commit."""
        self._run(conn, "wake_worker", {"payload": payload})

    def started_by(self, conn: Any, worker_id: str) -> list[Row]:
        """Jobs the database says ``worker_id`` is running."""
        return self._run(conn, "started_by_worker", {"worker_id": worker_id})

    def stop_worker(self, conn: Any, worker_id: str) -> None:
        """The worker stopped: the rules it declared no longer apply."""
        self._run(conn, "stop_worker", {"id": worker_id})
        self._run(conn, "bump_config")

    def workers_in_space(self, conn: Any, space: str, rescuer: str) -> list[Row]:
        """Live workers (``id``, ``pid``) of the process ``space``, ``rescuer`` aside."""
        return self._run(conn, "workers_in_space", {"space": space, "rescuer": rescuer})

    def rescue(self, conn: Any, dead_after: float | None, rescuer: str = "",
               gone: Sequence[Row] = (), space: str | None = None) -> RescueReport:
        """Mark workers silent for ``dead_after`` seconds dead (None: judge none by their
        heartbeat), and the workers ``gone`` of the process ``space`` (rows of
        ``workers_in_space`` whose process no longer exists), and put the started jobs
        of workers that are not alive back to pending, counting a retry; a job whose
        retries are used up ends failed (a job that keeps killing its worker must not
        loop forever: with ``max_retries=0`` it fails after DEATHS_WHEN_RETRYING_FOREVER
        deaths). Idempotent: each write is fenced. The ``rescuer``'s own jobs are left
        alone: it is alive, whatever its row says."""
        dead = [] if dead_after is None else self._run(
            conn, "mark_dead_workers", {"dead_after": dead_after, "rescuer": rescuer})
        if gone and space:
            for row in gone:  # rare: one statement each
                dead += self._run(conn, "mark_gone_worker",
                                  {"id": row["id"], "pid": row["pid"], "space": space})
        if dead:  # the rules they declared no longer apply
            self._run(conn, "bump_config")
        rescued: list[str] = []
        failed: list[str] = []
        for row in self._run(conn, "orphaned_jobs", {"rescuer": rescuer}):
            problem = uuid_problem(row["uuid"]) or next(
                (f"its {key} {describe(row[key], 60)} is not a whole number"
                 for key in ("attempt", "retry", "max_retries", "worker_deaths")
                 if not is_int(row[key])), None)
            if problem is not None:
                # a row written by hand: it cannot be counted, so it cannot be retried
                if self._run(conn, "fail_bad_job", {
                        "id": row["id"], "state": states.STARTED, "attempt": None,
                        "reason": f"its worker died, and this job cannot run: {problem}"}):
                    failed.append(str(row["id"]))
                continue
            deaths = row["worker_deaths"] + 1
            params = {"uuid": row["uuid"], "attempt": row["attempt"]}
            if (row["max_retries"] and row["retry"] + 1 >= row["max_retries"]) or (
                    not row["max_retries"] and deaths >= DEATHS_WHEN_RETRYING_FOREVER):
                times = "once" if deaths == 1 else f"{deaths} times"
                message = f"worker died while running this job ({times})"
                if self._run(conn, "fail_dead_job", {**params, "exc_info": message}):
                    failed.append(row["uuid"])
                    self._run(conn, "notify_outcomes")
                continue
            holder, rows = self._keyed_to_pending(
                conn, row["uuid"], functools.partial(self._run, conn, "rescue_job", params))
            if holder:
                self._run_many(conn, "finish_job", [{
                    **params, "state": states.CANCELLED, "retry": row["retry"] + 1,
                    "result": f"Superseded by {holder}", "exc_info": None, "exc_name": None,
                    "exc_message": None}])
            elif rows:
                rescued.append(row["uuid"])
        rescued += self.requeue_enqueued(conn)
        if rescued:
            self._run(conn, "notify_jobs")
        return RescueReport(dead, rescued, failed)

    def requeue_enqueued(self, conn: Any) -> list[str]:
        """Jobs found in ``enqueued`` (a state with no step of its own here: stored by
        hand, or through ``JobStorage.store``) go back to pending."""
        return [row["uuid"] for row in self._run(conn, "requeue_enqueued")]

    def prune_workers(self, conn: Any, older_than: float = WORKER_ROWS_KEPT) -> int:
        """Remove the rows of workers stopped or dead for ``older_than`` seconds."""
        return len(self._run(conn, "remove_old_workers", {"older_than": older_than}))

    def fail_bad_job(self, conn: Any, job_id: Any, state: str, attempt: int | None,
                     reason: str) -> bool:
        """A job whose row cannot be run (or whose outcome cannot be stored) ends failed
        with ``reason``, by its row id, fenced on ``state`` and ``attempt``."""
        return bool(self._run(conn, "fail_bad_job", {"id": job_id, "state": state,
                                                     "attempt": attempt, "reason": reason}))

    # -- manual actions ------------------------------------------------------------------
    def _locked_jobs(self, wanted: list[str]) -> Steps[dict[str, Row]]:
        """The rows of jobs ``wanted``, locked until the transaction ends; NoSuchJobError
        when any is missing."""
        rows = {row["uuid"]: row for row in (yield Statement(
            "load_job_for_update", [{"uuid": value} for value in wanted], many=True))}
        missing = [value for value in wanted if value not in rows]
        if missing:
            raise NoSuchJobError(f"no job {missing[0]}" + (
                f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        return rows

    def change_state(self, conn: Any, action: str, job_uuids: Iterable[str], user: str
                     ) -> list[str]:
        return self.connector.drive(conn, self.change_state_steps(action, job_uuids, user))

    def change_state_steps(self, action: str, job_uuids: Iterable[str], user: str
                           ) -> Steps[list[str]]:
        """Requeue, set done or cancel jobs, all or none: a job that does not exist or
        whose state the action does not apply to refuses the whole call."""
        wanted = list(dict.fromkeys(canonical_uuid(value) for value in job_uuids))
        if not wanted:
            return []
        rows = yield from self._locked_jobs(wanted)
        act = states.ACTIONS[action]
        refusals: list[str] = []
        updates = []
        # identity keys of the jobs this call puts back to pending
        requeued_keys: dict[str, str] = {}
        for value in wanted:
            update = yield from self._planned_change(act, rows[value], user, requeued_keys)
            if isinstance(update, str):
                refusals.append(update)
            else:
                updates.append(update)
        if refusals:
            more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
            raise JobStateError(refusals[0] + more)
        yield Statement("savepoint")
        try:
            yield Statement("set_job_state", updates, many=True)
        except Exception as exc:
            yield Statement("rollback_to_savepoint")
            if not self.connector.is_unique_violation(exc):
                raise
            # another transaction made a job with one of these keys pending meanwhile
            raise JobStateError(f"cannot {act.verb} these jobs: another job with the same "
                                "identity key became pending meanwhile") from None
        yield Statement("release_savepoint")
        yield from self._after_change(act.target, [rows[value] for value in wanted])
        return wanted

    def edit(self, conn: Any, job_uuids: Iterable[str], *, priority: int | None = None,
             eta: Any = UNCHANGED, channel: str | None = None) -> list[str]:
        return self.connector.drive(conn, self.edit_steps(job_uuids, priority=priority,
                                                          eta=eta, channel=channel))

    def edit_steps(self, job_uuids: Iterable[str], *, priority: int | None = None,
                   eta: Any = UNCHANGED, channel: str | None = None) -> Steps[list[str]]:
        """Change the priority, eta and channel of jobs that have not started, all or
        none: a job that does not exist or has started refuses the call. ``eta``: a
        datetime, seconds or a timedelta from now, None for "due now"; left out, kept.
        The values are checked by the caller (the core's rules)."""
        wanted = list(dict.fromkeys(canonical_uuid(value) for value in job_uuids))
        if not wanted:
            return []
        rows = yield from self._locked_jobs(wanted)
        refused = [f"cannot edit job {value}: it is {rows[value]['state']}"
                   for value in wanted if rows[value]["state"] not in states.EDITABLE]
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise JobStateError(refused[0] + more)
        set_eta = eta is not UNCHANGED
        absolute, delay = eta_parts(eta) if set_eta and eta is not None else (None, None)
        yield Statement("edit_job", [
            {"uuid": value, "priority": priority, "set_eta": set_eta, "eta": absolute,
             "eta_delay": delay, "channel": channel} for value in wanted], many=True)
        yield Statement("notify_jobs")
        return wanted

    def _planned_change(self, act: states.Action, row: Row, user: str,
                        requeued_keys: dict[str, str]) -> Steps[dict[str, Any] | str]:
        """The update a manual action makes to one job's row, or why it refuses."""
        value = row["uuid"]
        if row["state"] not in act.applies_to:
            return f"cannot {act.verb} job {value}: it is {row['state']}"
        result, retry = row["result"], row["retry"]
        if act.name == "requeue":
            retry = 0
            key = row["identity_key"]
            holder = yield from self.identity_holder_steps(key, exclude_uuid=value)
            holder_uuid = holder["uuid"] if holder else requeued_keys.get(key or "")
            if holder_uuid is not None and holder_uuid != value:
                return (f"cannot requeue job {value}: superseded by {holder_uuid}, pending "
                        "with the same identity key")
            if key is not None:
                requeued_keys[key] = value
        elif act.name == "done":
            result = f"Manually set to done by {user}"
        elif act.name == "cancel":
            result = f"Cancelled by {user}"
        return {"uuid": value, "state": str(act.target), "result": result, "retry": retry}

    def _after_change(self, target: str, rows: Sequence[Row]) -> Steps[None]:
        """What follows a manual action: waiters and workers told, children of a graph
        released (done) or cancelled."""
        with_children = [row["uuid"] for row in rows if row["has_dependents"]]
        if target == states.DONE:
            yield from self.release_children_steps(with_children)
        elif target == states.CANCELLED:
            yield from self.cancel_children_steps(with_children)
        yield Statement("notify_jobs" if target == states.PENDING else "notify_outcomes")

    # -- channels ------------------------------------------------------------------------
    def channel_rows(self, conn: Any) -> list[Row]:
        return self._run(conn, "channel_configs")

    def shared_tree(self, conn: Any) -> ChannelTree:
        """The channel rules all workers follow (``core.channels.combine``)."""
        return self.rules(conn)[0]

    def rules(self, conn: Any) -> tuple[ChannelTree, dict[str, RuleSource]]:
        """The channel rules all workers follow: the stored configuration, and the rules
        live workers declare for the channels it leaves out; with each rule's source.
        Bad rows are skipped."""
        return self.combined_rules(self.channel_rows(conn),
                                   self._run(conn, "declared_channels"))

    def combined_rules(self, configs: list[Row], declared: list[Row]
                       ) -> tuple[ChannelTree, dict[str, RuleSource]]:
        return combine(channel_specs(configs, self.bad_row),
                       declared_specs(declared, self.bad_row))

    def set_channel(self, conn: Any, spec: ChannelSpec) -> None:
        self._run(conn, "set_channel", {
            "name": spec.name, "capacity": spec.capacity, "sequential": spec.sequential,
            "throttle": spec.throttle, "removal_interval": spec.removal_interval,
            "paused": spec.paused, "rate_limit": spec.rate[0] if spec.rate else None,
            "rate_period": spec.rate[1] if spec.rate else None,
            "key_capacity": spec.key_capacity, "fair": spec.fair})
        self._run(conn, "bump_config")
        self._run(conn, "notify_jobs")

    def delete_channel(self, conn: Any, name: str) -> None:
        self._run(conn, "delete_channel", {"name": name})
        self._run(conn, "bump_config")
        self._run(conn, "notify_jobs")

    # -- schedules -----------------------------------------------------------------------
    def database_now(self, conn: Any) -> Any:
        """The database's clock (aware UTC datetime)."""
        return self._run(conn, "database_now")[0]["now"]

    def schedule_state(self, conn: Any, name: str) -> tuple[bool, Any]:
        """(whether the schedule has a row, its last slot)."""
        rows = self._run(conn, "schedule_state", {"name": name})
        return (True, rows[0]["last_slot"]) if rows else (False, None)

    def start_schedule(self, conn: Any, name: str, slot: Any) -> None:
        self._run(conn, "start_schedule", {"name": name, "slot": slot})

    def advance_schedule(self, conn: Any, name: str, last: Any, slot: Any) -> bool:
        """Move a schedule from ``last`` to ``slot``; False when another worker did."""
        return bool(self._run(conn, "advance_schedule",
                              {"name": name, "last": last, "slot": slot}))

    def schedule_states(self, conn: Any) -> list[Row]:
        return self._run(conn, "schedule_states")

    # -- job functions -------------------------------------------------------------------
    def function_overrides(self, conn: Any) -> list[Row]:
        return self._run(conn, "function_overrides")

    def function_known(self, conn: Any, name: str) -> bool:
        """The database holds settings of job function ``name``."""
        return bool(self._run(conn, "function_settings", {"name": name}))

    def related_action_setting(self, conn: Any, name: str) -> dict[str, Any] | None:
        """A job function's stored related action setting (``core.related``); None when
        there is none, or when the stored one does not make sense (said once in the
        log: the decorator's applies)."""
        rows = self._run(conn, "function_settings", {"name": name})
        if not rows:
            return None
        try:
            return stored_related_action(rows[0].get("related_action"))
        except ConfigurationError as exc:
            self.bad_row("function", name, exc)
            return None

    def set_function(self, conn: Any, name: str, *, channel: Any = UNCHANGED,
                     retry_pattern: Any = UNCHANGED, related_action: Any = UNCHANGED) -> None:
        """Override settings of a job function: its channel, its retry pattern, its
        related action (``{"enable", "func_name", "kwargs"}``); None puts one back to the
        decorator's, a setting left out keeps what is stored. Checked by the caller."""
        stored = self._run(conn, "function_settings", {"name": name})
        row = stored[0] if stored else {}
        values = {
            "channel": row.get("channel") if channel is UNCHANGED else channel,
            "retry_pattern": row.get("retry_pattern") if retry_pattern is UNCHANGED
            else None if retry_pattern is None else dump_retry_pattern(retry_pattern),
            "related_action": row.get("related_action") if related_action is UNCHANGED
            else None if related_action is None
            else json.dumps(related_action, sort_keys=True)}
        self._run(conn, "bump_config")
        if all(value is None for value in values.values()):
            self._run(conn, "delete_function", {"name": name})
            return
        self._run(conn, "set_function", {"name": name, **values})

    # -- subscriptions to failures ---------------------------------------------------------
    def subscriptions(self, conn: Any) -> list[Row]:
        return self._run(conn, "list_subscriptions")

    def add_subscription(self, conn: Any, channel: str | None, func_name: str | None,
                         target_kind: str, target: str) -> int:
        """Store a subscription (checked by the caller); its id."""
        rows = self._run(conn, "add_subscription", {
            "channel": channel, "func_name": func_name, "target_kind": target_kind,
            "target": target})
        return int(rows[0]["id"])

    def remove_subscription(self, conn: Any, subscription_id: int) -> bool:
        return bool(self._run(conn, "delete_subscription", {"id": subscription_id}))

    # -- waiters of outcomes (db.wait) ---------------------------------------------------
    @staticmethod
    def waiter_steps(job_uuid: str, waiting: bool) -> Steps[None]:
        """A ``db.wait`` announces itself as a waiter of a job's outcome (or leaves)."""
        yield Statement("add_waiter" if waiting else "remove_waiter", {"uuid": job_uuid})

    # -- removal of old jobs -------------------------------------------------------------
    def move_legacy_history(self, conn: Any, limit: int) -> int | None:
        """Move up to ``limit`` finished jobs of a table from before the history partition
        into it (PostgreSQL, after migration 0017); how many, 0 when the table was found
        empty (it is dropped then), None when there is nothing left to do."""
        self._run(conn, "lock_legacy_history")
        if self._run(conn, "legacy_history")[0]["remaining"] is None:
            return None
        moved = int(self._run(conn, "move_legacy_history", {"limit": limit})[0]["moved"])
        if not moved and self._run(conn, "drop_legacy_history")[0]["empty"]:
            self._run(conn, "drop_legacy_table")
        return moved

    def compact_tallies(self, conn: Any) -> None:
        """Merge the tallies' deltas (PostgreSQL writes one per statement) and drop the
        minutes no window reads (``core.tallies.KEEP_MINUTES``)."""
        self._run(conn, "compact_tally")
        self._run(conn, "compact_minutes", {"keep": tallies.KEEP_MINUTES})

    def count_purgeable(self, conn: Any, criteria: dict[str, Any]) -> int:
        """Finished jobs matching ``criteria`` (older_than seconds, channel, func_name,
        state: None for any), as ``queuejob purge`` removes them."""
        return int(self._run(conn, "count_purgeable", criteria)[0]["jobs"])

    def purge_batch(self, conn: Any, criteria: dict[str, Any], after_id: int,
                    limit: int) -> tuple[int, int | None]:
        """Remove up to ``limit`` finished jobs matching ``criteria`` with ids above
        ``after_id``; (how many, the id to go on from, None at the end)."""
        rows = self._run(conn, "purgeable_jobs", {**criteria, "after_id": after_id,
                                                  "limit": limit})
        if rows:
            self._run_many(conn, "delete_job", [{"id": row["id"]} for row in rows])
        return len(rows), (rows[-1]["id"] if len(rows) == limit else None)

    def legacy_history_left(self, conn: Any) -> int | None:
        """About how many finished jobs are still to move (None: none, all moved)."""
        remaining = self._run(conn, "legacy_history")[0]["remaining"]
        return None if remaining is None else int(remaining)

    def remove_old_jobs(self, conn: Any, tree: ChannelTree, limit: int = 500,
                        after: tuple[Any, int] | None = None) -> tuple[int, tuple | None]:
        """Look at up to ``limit`` done or cancelled jobs old enough for the shortest
        removal interval, from ``after`` (a (date_done, id) position) on; delete those
        older than their own channel's interval (days, default 30). Failed jobs are
        kept. Returns (jobs deleted, position to go on from, None at the end), so that
        jobs of channels that keep theirs longer never hide the others'."""
        shortest = min([tree.removal_interval_days(name) for name in tree.specs]
                       + [tree.removal_interval_days("root")])
        after_done, after_id = after or (None, 0)
        rows = self._run(conn, "removable_jobs", {
            "older_than": shortest * 86400.0, "after_done": after_done, "after_id": after_id,
            "limit": limit})
        expired = [{"id": row["id"]} for row in rows
                   if row["age"] > tree.removal_interval_days(row["channel"]) * 86400.0]
        if expired:
            self._run_many(conn, "delete_job", expired)
        position = (rows[-1]["date_done"], rows[-1]["id"]) if len(rows) == limit else None
        return len(expired), position
