"""Batches (the successor's ``queue_job_batch``): the pure part.

A batch is a named group of jobs delayed together, tracked as one: its name, the
callbacks stored with it (a job's function name, its arguments encoded by the codec and
its options, as JSON text: never a pickle), and the rule that concludes it from the
states of its jobs. ``queuejob.batch`` writes batches, a worker service concludes them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import codec, limits, states
from .channels import normalize_name
from .job import MAX_INT, Job, as_utc
from .text import printable

OPEN = "open"
DONE = "done"
FAILED = "failed"
#: the states of a batch: open until its jobs conclude it
BATCH_STATES = (OPEN, DONE, FAILED)
#: the longest batch name
NAME = 200
#: job states that end a batch as failed: a job that failed for good (its retries spent)
#: or was cancelled will never be done
FAILING: frozenset[str] = frozenset({states.FAILED, states.CANCELLED})


def check_name(name: Any) -> str:
    """A batch name: one line of printable text, 1 to ``NAME`` characters."""
    if not isinstance(name, str):
        raise TypeError(f"a batch name is a str, not {type(name).__name__}")
    if not name.strip() or len(name) > NAME or printable(name, one_line=True) != name:
        raise ValueError(f"a batch name is one line of printable text of 1 to {NAME} "
                         "characters")
    return name


def conclusion(counts: Mapping[str, int]) -> str | None:
    """What the states of a batch's jobs (counted per state) conclude: ``failed`` when one
    failed for good or was cancelled, ``done`` when all are done (a batch whose jobs were
    all removed, or that had none, too), None while some are still to run (pending,
    enqueued, started, waiting for their parents: a job put back for a retry is pending)."""
    if any(counts.get(state, 0) for state in FAILING):
        return FAILED
    if any(number for state, number in counts.items() if state != states.DONE):
        return None
    return DONE


@dataclass(frozen=True)
class Callback:
    """A callback as stored with its batch: what its job is made of."""

    func_name: str
    model_name: str | None
    #: the arguments as the codec encoded them (JSON text of a list, of an object)
    args: str
    kwargs: str
    description: str
    #: the channel given to delayable() (None: the function's, as the database sets it)
    channel: str | None
    default_channel: str
    priority: int
    max_retries: int
    timeout: float | None
    identity_key: str | None
    concurrency_key: str
    #: an absolute eta, or seconds from the batch's conclusion
    eta: dt.datetime | None
    eta_delay: float | None
    user_id: int | None
    #: the creator's context, encoded by the codec (None: none)
    context: str | None

    def job(self) -> Job:
        """The callback's Job (a new uuid each time), its options checked as ``delay()``
        checks them; its arguments stay encoded (``args``, ``kwargs``)."""
        job = Job(priority=self.priority, max_retries=self.max_retries,
                  description=self.description, channel=self.channel,
                  timeout=self.timeout, identity_key=self.identity_key,
                  concurrency_key=self.concurrency_key,
                  eta=self.eta if self.eta_delay is None else self.eta_delay)
        job.func_name = limits.check("func_name", self.func_name)
        job.model_name = limits.check("model_name", self.model_name)
        job.user_id = self.user_id
        return job

    def to_text(self) -> str:
        return json.dumps({
            "func_name": self.func_name, "model_name": self.model_name, "args": self.args,
            "kwargs": self.kwargs, "description": self.description, "channel": self.channel,
            "default_channel": self.default_channel, "priority": self.priority,
            "max_retries": self.max_retries, "timeout": self.timeout,
            "identity_key": self.identity_key, "concurrency_key": self.concurrency_key,
            "eta": None if self.eta is None else self.eta.isoformat(),
            "eta_delay": self.eta_delay, "user_id": self.user_id, "context": self.context,
        }, ensure_ascii=False, allow_nan=False)


def callback_of(job: Job, max_args_size: int = codec.MAX_ARGS_SIZE) -> Callback:
    """The callback of a job built by ``fn.delayable(...)`` (and its session's user and
    context): its arguments encoded now (TypeError, ArgumentsTooLargeError before
    anything is written)."""
    args, kwargs = codec.encode_arguments(job.args, job.kwargs, max_args_size)
    context = {key: value for key, value in job.context.items() if key != "job_uuid"}
    return Callback(
        func_name=str(job.func_name), model_name=job.model_name, args=args, kwargs=kwargs,
        description=job.description, channel=job.channel if job.channel_given else None,
        default_channel=job.channel, priority=job.priority, max_retries=job.max_retries,
        timeout=job.timeout, identity_key=job.identity_key,
        concurrency_key=job.concurrency_key,
        eta=job.eta if job.eta_delay is None else None, eta_delay=job.eta_delay,
        user_id=job.user_id,
        context=limits.check("context", codec.dumps(context)) if context else None)


def _text(data: Mapping[str, Any], key: str, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a text")
    return value


def _number(data: Mapping[str, Any], key: str, kind: type, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or (kind is int and not isinstance(value, int)) or not math.isfinite(value) \
            or abs(value) > MAX_INT * 1e6:
        raise ValueError(f"{key} is not a number")
    return value


def _json_of(text: str, kind: type, key: str) -> None:
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"{key} is not JSON") from None
    if not isinstance(value, kind):
        raise ValueError(f"{key} is not a JSON {'list' if kind is list else 'object'}")


def read_callback(text: Any) -> Callback:
    """A stored callback; ValueError (one line) for one that does not make sense (written
    by hand): it costs its batch only."""
    if not isinstance(text, str):
        raise ValueError("the stored callback is not a text")
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("the stored callback is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the stored callback is not a JSON object")
    try:
        args, kwargs = _text(data, "args"), _text(data, "kwargs")
        _json_of(args, list, "args")
        _json_of(kwargs, dict, "kwargs")
        eta_text = _text(data, "eta", optional=True)
        eta = as_utc(dt.datetime.fromisoformat(eta_text)) if eta_text is not None else None
        channel = _text(data, "channel", optional=True)
        callback = Callback(
            func_name=_text(data, "func_name"),
            model_name=_text(data, "model_name", optional=True),
            args=args, kwargs=kwargs, description=_text(data, "description"),
            channel=None if channel is None else normalize_name(channel),
            default_channel=normalize_name(_text(data, "default_channel")),
            priority=_number(data, "priority", int),
            max_retries=_number(data, "max_retries", int),
            timeout=_number(data, "timeout", float, optional=True),
            identity_key=_text(data, "identity_key", optional=True),
            concurrency_key=_text(data, "concurrency_key"), eta=eta,
            eta_delay=_number(data, "eta_delay", float, optional=True),
            user_id=_number(data, "user_id", int, optional=True),
            context=_text(data, "context", optional=True))
        if not callback.func_name.strip():
            raise ValueError("func_name is empty")
        if callback.context is not None:
            _json_of(callback.context, dict, "context")
        callback.job()  # every option checked as delay() checks it
    except (ValueError, TypeError, OverflowError) as exc:
        message = printable(str(exc), one_line=True)[:300]
        raise ValueError(f"the stored callback does not make sense: {message}") from None
    return callback
