"""OpenTelemetry traces across processes (the extra ``queuejob[otel]``).

When a job is stored inside an active span, a PRODUCER span ``send FUNCTION`` is
started as its child, and that span's context (as the API's propagator writes it: W3C
``traceparent`` / ``tracestate`` by default) is stored with the job as JSON, in the
``trace_context`` column. Each attempt of the job then runs in a CONSUMER span
``process FUNCTION``, child of the stored context and linked to it, in whichever process
runs the job, with the attributes of the messaging semantic conventions and queuejob's
own (job uuid, function, channel, attempt, final state; the exception on failure).
The attempt's span is the current span while the job runs: its own spans, and the jobs
it delays, continue the same trace.

Without ``opentelemetry-api`` installed nothing here does anything (one boolean tested
per call); with the API but no tracer provider, a job stored outside any span costs
nothing more, and a job stored inside one carries its context to the jobs it runs.
A stored context that is not one (written by hand) is ignored: the attempt gets a root
span of its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

try:  # the optional extra
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError:  # pragma: no cover - the extra is installed in the tests
    ENABLED = False
else:
    ENABLED = True

log = logging.getLogger("queuejob.tracing")

#: the instrumentation scope of queuejob's spans
SCOPE = "queuejob"
#: a stored context longer than this (a huge baggage) is not stored
MAX_CONTEXT = 4096
#: ``messaging.system`` of queuejob's spans
SYSTEM = "queuejob"
#: the final state of an attempt, by the state its outcome writes
_STATES = {"done": "done", "failed": "failed", "pending": "retry", "released": "released"}


class _Nothing:
    """What tracing does when it is off: nothing, shared by every call."""

    __slots__ = ()
    carrier: str | None = None

    def __enter__(self) -> _Nothing:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def ended(self, result: Any) -> Any:
        return result


NOTHING = _Nothing()

_tracer_of: tuple[Any, Any] = (None, None)


def _tracer() -> Any:
    """queuejob's tracer of the global provider; None when no provider is configured
    (the API's proxy or no-op one)."""
    global _tracer_of
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    if _tracer_of[0] is not provider:  # the application may set another one (tests do)
        _tracer_of = (provider, provider.get_tracer(SCOPE))
    return _tracer_of[1]


# -- storing jobs --------------------------------------------------------------------------
class Sending:
    """The PRODUCER span of jobs being stored; ``carrier``, the context stored with
    them (JSON text)."""

    __slots__ = ("_span", "carrier")

    def __init__(self, span: Any, carrier: str | None) -> None:
        self._span = span
        self.carrier = carrier

    def __enter__(self) -> Sending:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        if self._span is None:
            return
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(trace.Status(trace.StatusCode.ERROR,
                                               f"{type(error).__name__}: {error}"))
        self._span.end()


def sending(func_name: str | None, count: int = 1, channel: str | None = None
            ) -> Sending | _Nothing:
    """Around storing ``count`` jobs of ``func_name`` (use as a context manager):
    inside an active span, a PRODUCER span and its context to store (``carrier``);
    else nothing, at no cost."""
    if not ENABLED:
        return NOTHING
    try:
        if not trace.get_current_span().get_span_context().is_valid:
            return NOTHING
        tracer = _tracer()
        span = None
        if tracer is not None:
            attributes: dict[str, Any] = {
                "messaging.system": SYSTEM, "messaging.operation.type": "send",
                "messaging.operation.name": "send"}
            if func_name:
                attributes["queuejob.job.function"] = func_name
            if channel:
                attributes["messaging.destination.name"] = channel
            if count != 1:
                attributes["messaging.batch.message_count"] = count
            span = tracer.start_span(f"send {func_name}", kind=trace.SpanKind.PRODUCER,
                                     attributes=attributes)
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span) if span else None)
        text: str | None = json.dumps(carrier, separators=(",", ":"), sort_keys=True)
        if "traceparent" not in carrier or len(text or "") > MAX_CONTEXT:
            text = None
        return Sending(span, text)
    except Exception:  # tracing never stops a job from being stored
        log.debug("no trace context stored", exc_info=True)
        return NOTHING


# -- running jobs --------------------------------------------------------------------------
def stored_context(text: Any) -> Any:
    """The OpenTelemetry context of a stored ``trace_context``; None when there is none
    or it is not one (a value written by hand)."""
    if not isinstance(text, str) or not text or len(text) > MAX_CONTEXT:
        return None
    try:
        carrier = json.loads(text)
        if not isinstance(carrier, Mapping) or not all(
                isinstance(key, str) and isinstance(value, str)
                for key, value in carrier.items()):
            return None
        parent = propagate.extract(carrier)
    except Exception:
        return None
    if not trace.get_current_span(parent).get_span_context().is_valid:
        return None
    return parent


class Attempt:
    """The CONSUMER span of one attempt, current while the job runs (use as a context
    manager); ``ended`` records the attempt's outcome."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Any) -> None:
        self._span = span
        self._token: Any = None

    def __enter__(self) -> Attempt:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        try:
            if error is not None:  # the worker's own error, not the job's outcome
                self._span.record_exception(error)
                self._span.set_status(trace.Status(trace.StatusCode.ERROR,
                                                   f"{type(error).__name__}: {error}"))
            self._span.end()
        finally:
            otel_context.detach(self._token)

    def ended(self, result: Any) -> Any:
        """Record the attempt's outcome (``result``: an ``(Outcome, written)`` pair):
        its final state, and on failure or retry the exception, as the semantic
        conventions' ``exception`` event; returns ``result``."""
        try:
            outcome = result[0]
            state = _STATES.get(outcome.state, str(outcome.state))
            span = self._span
            span.set_attribute("queuejob.job.state", state)
            if state == "failed":
                kind = outcome.exc_name or "queuejob.JobFailed"
                span.add_event("exception", {
                    "exception.type": kind, "exception.message": outcome.exc_message or "",
                    "exception.stacktrace": outcome.exc_info or ""})
                span.set_attribute("error.type", kind)
                span.set_status(trace.Status(trace.StatusCode.ERROR,
                                             outcome.exc_message or kind))
            elif state == "retry":
                # the attempt failed, the job goes on: an error of this attempt
                span.add_event("exception", {
                    "exception.type": "queuejob.RetryableJobError",
                    "exception.message": outcome.result or ""})
                span.set_attribute("error.type", "queuejob.RetryableJobError")
                span.set_status(trace.Status(trace.StatusCode.ERROR, outcome.result or "retry"))
        except Exception:  # tracing never changes what a job did
            log.debug("the attempt's span could not be completed", exc_info=True)
        return result


def attempt(row: Mapping[str, Any]) -> Attempt | _Nothing:
    """Around one attempt of a claimed job ``row`` (its stored columns): its CONSUMER
    span, continuing the stored trace context (without a tracer provider, that context
    alone is made current, for the job's own spans and the jobs it delays)."""
    if not ENABLED:
        return NOTHING
    stored = row.get("trace_context")
    try:
        tracer = _tracer()
        if tracer is None and stored is None:
            return NOTHING
        parent = stored_context(stored) if stored is not None else None
        if tracer is None:
            if parent is None:
                return NOTHING
            # no provider: the enqueuer's span goes on being the current one
            return Attempt(trace.NonRecordingSpan(
                trace.get_current_span(parent).get_span_context()))
        func_name, channel = row.get("func_name"), row.get("channel")
        attributes = {
            "messaging.system": SYSTEM, "messaging.operation.type": "process",
            "messaging.operation.name": "process", "messaging.message.id": row.get("uuid"),
            "messaging.destination.name": channel, "queuejob.job.uuid": row.get("uuid"),
            "queuejob.job.function": func_name, "queuejob.job.channel": channel,
            "queuejob.job.attempt": row.get("attempt"), "queuejob.job.retry": row.get("retry")}
        links = None
        if parent is not None:
            links = [trace.Link(trace.get_current_span(parent).get_span_context(),
                                {"queuejob.link": "enqueued"})]
        span = tracer.start_span(
            f"process {func_name}", kind=trace.SpanKind.CONSUMER,
            # a job stored outside any span starts a trace of its own, whatever the
            # worker's current context
            context=parent if parent is not None else otel_context.Context(),
            attributes={key: value for key, value in attributes.items()
                        if value is not None},
            links=links)
        return Attempt(span)
    except Exception:  # tracing never stops a job from running
        log.debug("no span for job %s", row.get("uuid"), exc_info=True)
        return NOTHING
