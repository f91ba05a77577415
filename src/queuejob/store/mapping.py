"""Rows and jobs: a stored row turned into a ``Job`` and a ``Job`` into the row it is
stored as; stored configuration rows turned into the core's channel specs and retry
patterns. The one place that knows the columns' meaning (the store runs the SQL)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core import codec, limits, registry, related, states
from ..core.channels import ChannelSpec, WorkerChannels
from ..core.errors import ConfigurationError
from ..core.job import Job, check_max_retries, check_priority, check_user_id
from ..core.retry import Delay, parse_retry_pattern
from ..core.text import describe

Row = dict[str, Any]


def new_row(job: Job, max_args_size: int = codec.MAX_ARGS_SIZE,
            trace_context: str | None = None) -> Row:
    """The parameters of ``insert_job`` for a new job: its arguments and context encoded
    (TypeError or JobDataTooLargeError before anything is written); ``trace_context``,
    the OpenTelemetry context it was stored in (``queuejob.tracing``), None outside
    any span."""
    user_id = check_user_id(job.user_id)
    args, kwargs = codec.encode_arguments(job.args, job.kwargs, max_args_size)
    context_text = None
    if job.context:
        context = {key: value for key, value in job.context.items() if key != "job_uuid"}
        context_text = limits.check("context", codec.dumps(context)) if context else None
    eta_delay = job.eta_delay
    return {
        "uuid": job.uuid, "func_name": job.func_name, "model_name": job.model_name,
        "args": args, "kwargs": kwargs, "description": job.description,
        "channel": job.channel if job.channel_given else None,
        "default_channel": job.channel,
        # checked again: a Job's fields may have been set after it was made, and a
        # binary COPY would store an int past 32 bits wrapped
        "priority": check_priority(job.priority),
        "max_retries": check_max_retries(job.max_retries),
        "timeout": None if job.timeout is None else float(job.timeout),
        "state": str(job.state), "graph_uuid": job.graph_uuid,
        "has_dependents": bool(job.has_dependents),
        "identity_key": job.identity_key, "user_id": user_id,
        "context": context_text,
        "concurrency_key": job.concurrency_key,
        "eta": job.eta if eta_delay is None else None,
        "eta_delay": None if eta_delay is None else float(eta_delay),
        "trace_context": trace_context,
    }


def update_row(job: Job) -> Row:
    """The parameters of ``update_job``: every field of a stored job people may change."""
    return {
        "uuid": job.uuid, "state": str(job.state), "retry": job.retry,
        "max_retries": job.max_retries, "priority": job.priority,
        "description": job.description, "channel": job.channel,
        "identity_key": job.identity_key, "result": job.result, "exc_info": job.exc_info,
        "eta": job.eta, "date_enqueued": job.date_enqueued,
        "date_started": job.date_started, "date_done": job.date_done,
        "worker_id": job.worker_id, "exc_name": job.exc_name, "exc_message": job.exc_message,
        "exec_time": job.exec_time, "date_cancelled": job.date_cancelled,
        "worker_pid": job.worker_pid}


def job_from_row(row: Row, decode: bool = True,
                 max_size: int = codec.MAX_ARGS_SIZE) -> Job:
    """A Job from a stored row. Its function is the registered one (None when this
    process has not registered it); arguments are decoded unless ``decode`` is off."""
    func = registry.job_function(row["func_name"])
    job = Job.__new__(Job)
    job.func = func
    job.func_name = row["func_name"]
    job.model_name = row["model_name"]
    if decode:
        try:
            job.args, job.kwargs = codec.decode_arguments(row["args"], row["kwargs"],
                                                          max_size)
        except codec.DecodeError as exc:
            raise codec.DecodeError(f"cannot decode the stored arguments: {exc}") from None
    else:
        job.args, job.kwargs = (), {}
    job.priority = row["priority"]
    job.max_retries = row["max_retries"]
    job.uuid = row["uuid"]
    job.state = states.State(row["state"])
    job.retry = row["retry"]
    job.description = row["description"] or ""
    job.channel = row["channel"]
    job.channel_given = True
    job.timeout = row.get("timeout")
    job.graph_uuid = row.get("graph_uuid")
    job.has_dependents = bool(row.get("has_dependents"))
    job.retry_pattern_override = None
    job.date_created = row["date_created"]
    job.date_enqueued = row["date_enqueued"]
    job.date_started = row["date_started"]
    job.date_done = row["date_done"]
    job.result = row["result"]
    job.exc_info = row["exc_info"]
    job.exc_name = row.get("exc_name")
    job.exc_message = row.get("exc_message")
    job.exec_time = row.get("exec_time")
    job.date_cancelled = row.get("date_cancelled")
    job.worker_pid = row.get("worker_pid")
    job.user_id = row["user_id"]
    try:
        job.context = _decode_context(row.get("context"))
    except codec.DecodeError:
        if decode:
            raise
        job.context = {}  # a look at the job's fields only
    job.worker_id = row["worker_id"]
    job.id = row.get("id")
    job.attempt = row["attempt"]
    job.worker_deaths = row["worker_deaths"]
    job._eta = row["eta"]
    job._eta_delay = None
    job._identity_key = row["identity_key"]
    job._identity_key_func = None
    key = row.get("concurrency_key")
    job.concurrency_key = key if isinstance(key, str) else ""
    return job


def _decode_context(text: str | None) -> dict[str, Any]:
    """The stored session context; DecodeError when it is not one (a job must not run
    without the context its creator gave it)."""
    if not text:
        return {}
    try:
        value = codec.loads(text, limits.CONTEXT * 4)
    except codec.DecodeError as exc:
        raise codec.DecodeError(f"cannot decode the stored context: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise codec.DecodeError("cannot decode the stored context: it is not a dict of "
                                "names")
    return value


def spec_from_row(row: Mapping[str, Any]) -> ChannelSpec | None:
    """The global configuration stored for a channel, None for bookkeeping-only rows.
    ConfigurationError, naming the value, for a row that does not make sense."""
    def flag(key: str) -> bool:
        value = row.get(key)
        if value in (None, 0, 1, False, True):
            return bool(value)
        raise ConfigurationError(f"{key} {describe(value, 40)} is not 0 or 1")
    rate_limit, rate_period = row.get("rate_limit"), row.get("rate_period")
    if (rate_limit is None) != (rate_period is None):
        raise ConfigurationError("a rate needs both its number of jobs and its period")
    rate: Any = None if rate_limit is None else (rate_limit, rate_period)  # checked by the spec
    configured = (row["capacity"] is not None or flag("sequential") or row["throttle"]
                  or row["removal_interval"] is not None or flag("paused")
                  or rate is not None or row.get("key_capacity") is not None
                  or flag("fair"))
    if not configured:
        return None
    return ChannelSpec(name=row["name"], capacity=row["capacity"],
                       sequential=flag("sequential"), throttle=row["throttle"] or 0.0,
                       removal_interval=row["removal_interval"], paused=flag("paused"),
                       rate=rate, key_capacity=row.get("key_capacity"), fair=flag("fair"))


def channel_specs(rows: Iterable[Mapping[str, Any]],
                  bad: Callable[[str, Any, Exception], None] | None = None
                  ) -> list[ChannelSpec]:
    """The specs of stored channel rows; a row that does not make sense is skipped
    (and given to ``bad``), so that it never stops the others."""
    specs = []
    for row in rows:
        try:
            spec = spec_from_row(row)
        except (ConfigurationError, TypeError, ValueError, KeyError) as exc:
            if bad is not None:
                bad("channel", row.get("name"), exc)
            continue
        if spec is not None:
            specs.append(spec)
    return specs


def declared_specs(rows: Iterable[Mapping[str, Any]],
                   bad: Callable[[str, Any, Exception], None] | None = None
                   ) -> dict[str, tuple[ChannelSpec, ...]]:
    """The channel rules live workers declare (rows of ``id`` and ``channels``, the
    string each was started with), by worker; a string that does not parse (a row
    written by hand) is skipped and given to ``bad``."""
    out: dict[str, tuple[ChannelSpec, ...]] = {}
    for row in rows:
        worker, text = row.get("id"), row.get("channels")
        try:
            if not isinstance(worker, str) or not isinstance(text, str):
                raise ConfigurationError("not text")
            out[worker] = _declared(text)
        except ConfigurationError as exc:
            if bad is not None:
                bad("worker", worker, exc)
    return out


@functools.lru_cache(maxsize=256)
def _declared(text: str) -> tuple[ChannelSpec, ...]:
    return WorkerChannels.parse(text).declared


def stored_retry_pattern(text: Any) -> dict[int, Delay]:
    """A retry pattern as the database stores it (JSON); ConfigurationError if it is
    not one."""
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        raise ConfigurationError(f"stored retry pattern {describe(text, 60)} is not JSON")
    return parse_retry_pattern(text)


def stored_related_action(text: Any) -> dict[str, Any] | None:
    """A related action setting as the database stores it (JSON; None: the
    decorator's); ConfigurationError if it is not one."""
    if text is None:
        return None
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if value is None:
        raise ConfigurationError(f"stored related action {describe(text, 60)} is not JSON")
    return related.check_setting(value)
