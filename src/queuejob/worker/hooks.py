"""Hooks and notifications, run after outcomes are committed: a job function's
``on_failure``, ``on_retry`` and ``on_done`` (``@job(on_failure=...)``), and the
database's subscriptions to failures (a webhook, or a job of the subscriber's choice).

They run on a thread of their own, never on the worker's loop: the loop only hands
over (kind, job uuid, function) for outcomes it has committed, and never waits. Each
is delivered at most once per outcome, by the worker that wrote it: a worker that dies
before delivering one loses it (the job's outcome itself is never lost). A hook that
raises, a webhook that does not answer (``WEBHOOK_TIMEOUT``) or a subscription row that
does not make sense is logged, never fatal. A hook runs in a session of its own,
committed when it returns (rolled back when it raises), as the job's user.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Iterable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ..core import codec, registry, states
from ..core import subscriptions as rules
from ..core.errors import ConfigurationError
from ..core.outcome import Outcome
from ..core.rows import is_int, is_text, uuid_problem
from ..core.text import describe

if TYPE_CHECKING:
    from ..database import Database

log = logging.getLogger("queuejob.hooks")

#: seconds a webhook has to answer
WEBHOOK_TIMEOUT = 5.0
#: outcomes waiting for their hooks, at most (more are dropped, said in the log)
BACKLOG = 10_000
#: seconds the stored subscriptions are reused before they are read again
SUBSCRIPTIONS_TTL = 10.0

#: the model name a subscription's job is delayed with: ``fn(session, "queue.job", uuid)``
MODEL_NAME = "queue.job"

#: the context key of a job a subscription made (its id): that job's failure is sent to
#: webhooks, never to job subscriptions (two failing subscribers would feed each other)
MADE_BY = "queuejob_subscription"


def made_by_subscription(job: Any) -> bool:
    """Whether ``job`` was made by a job subscription (``MADE_BY`` in its context)."""
    context = getattr(job, "context", None)
    return isinstance(context, dict) and MADE_BY in context


#: an outcome's state -> the hook it calls
HOOK_OF: dict[str, str] = {states.FAILED: "on_failure", states.PENDING: "on_retry",
                           states.DONE: "on_done"}

#: (hook name, job uuid, job function name or None when not known, the outcome or None
#: when there is none: a job the rescue failed)
Event = tuple[str, str, str | None, Outcome | None]


def wanted(outcome: Outcome) -> Event | None:
    """The event an outcome leads to, if anything may listen to it: failures always
    (subscriptions may want them), retries and dones when the job's function has the
    hook. A release (shutdown) or a supersession is no outcome of the job's own."""
    hook = HOOK_OF.get(outcome.state)
    if hook is None:
        return None
    if hook != "on_failure":
        func = registry.job_function(outcome.func_name) if outcome.func_name else None
        if func is None or getattr(func, hook, None) is None:
            return None
    return hook, outcome.uuid, outcome.func_name, outcome


def as_of(job: Any, outcome: Outcome | None) -> Any:
    """``job`` as ``outcome`` left it: its hook is about that outcome, even when the job
    has moved on by the time the hook runs (retried again, failed, requeued)."""
    if outcome is None:
        return job
    job.state, job.retry = outcome.state, outcome.retry
    if outcome.result is not None:
        job.result = outcome.result
    # a retry or a done clears the failure's fields; a failure writes its own (a failure
    # without a traceback was written another way: the row says it)
    if outcome.state != states.FAILED or outcome.exc_info is not None:
        job.exc_info = outcome.exc_info
        job.exc_name, job.exc_message = outcome.exc_name, outcome.exc_message
    return job


class Hooks:
    """The worker's thread of hooks and notifications."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name
        self._events: queue.Queue[Event | None] = queue.Queue(BACKLOG)
        self._thread: threading.Thread | None = None
        self._subscriptions: list[rules.Subscription] = []
        self._read_at = float("-inf")
        self._dropped = 0
        #: events delivered so far (hooks called and messages sent or tried)
        self.delivered = 0

    # -- the loop's side -----------------------------------------------------------------
    def committed(self, outcomes: Iterable[Outcome]) -> None:
        """Outcomes now committed: queue their hooks. Never blocks; when the backlog is
        full, the event is dropped and the log says so."""
        for outcome in outcomes:
            event = wanted(outcome)
            if event is not None:
                self.put(event)

    def rescued_failed(self, job_uuids: Iterable[str]) -> None:
        """Jobs the rescue failed (their worker died once too often; a row whose uuid
        is not one cannot be loaded, so it has no hook)."""
        for job_uuid in job_uuids:
            if uuid_problem(job_uuid) is None:
                self.put(("on_failure", job_uuid, None, None))

    def put(self, event: Event) -> None:
        if self._thread is None:
            self.start()
        try:
            self._events.put_nowait(event)
        except queue.Full:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.error("%d hook(s) dropped: more than %d outcomes wait for theirs",
                          self._dropped, BACKLOG)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"{self.name}-hooks",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Deliver what is queued, for up to ``timeout`` seconds; the rest is dropped."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._events.put(None, timeout=timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("hooks still running at shutdown: %d event(s) not delivered",
                        self._events.qsize())

    # -- the hooks' thread ---------------------------------------------------------------
    def _run(self) -> None:
        while True:
            event = self._events.get()
            if event is None:
                return
            try:
                self.deliver(*event)
            except Exception as exc:  # never the end of the thread
                log.error("hooks of job %s failed: %s", describe(event[1], 60),
                          describe(exc, 300), exc_info=exc)
            self.delivered += 1

    def deliver(self, hook: str, job_uuid: str, func_name: str | None,
                outcome: Outcome | None = None) -> None:
        """Call the job function's hook, then (for a failure) notify the subscriptions
        that match the job (the job as the outcome left it)."""
        from ..storage import DatabaseJobStorage
        func = registry.job_function(func_name) if func_name else None
        subscriptions = self.subscriptions() if hook == "on_failure" else []
        if (func is None or getattr(func, hook, None) is None) and not subscriptions \
                and func_name is not None:
            return
        try:
            with self.db.session() as session:
                job: Any = DatabaseJobStorage(session).load(job_uuid)
        except Exception as exc:  # a row that cannot be loaded: its failure still counts
            if hook != "on_failure":
                raise
            log.error("job %s cannot be loaded for its hooks (%s): only its subscriptions "
                      "are told", describe(job_uuid, 60), describe(exc, 300))
            job = self._as_stored(job_uuid)
            func = None
        job = as_of(job, outcome)
        func = func or getattr(job, "func", None)
        callback = getattr(func, hook, None) if func is not None else None
        if callback is not None:
            self._call(hook, callback, job)
        for subscription in subscriptions:
            if subscription.matches(job.channel, job.func_name):
                self._notify(subscription, job)

    def _as_stored(self, job_uuid: str) -> Any:
        """What a subscription's message says of a job, from its row as stored."""
        row = self.db.read(lambda conn: self.db.reads.load(conn, job_uuid)) or {}
        fields = ("uuid", "func_name", "channel", "description", "exc_name", "exc_message")
        job = SimpleNamespace(**{key: row.get(key) if is_text(row.get(key)) else None
                                 for key in fields})
        for key in ("retry", "max_retries", "user_id"):  # numbers, or nothing
            setattr(job, key, row.get(key) if is_int(row.get(key)) else None)
        try:
            job.context = codec.loads(row.get("context") or "{}")
        except Exception:  # the context is part of what could not be loaded
            job.context = {}
        return job

    def _call(self, hook: str, callback: Any, job: Any) -> None:
        try:
            with self.db.session(user_id=job.user_id) as session:
                callback(session.for_job(job), job)
        except Exception as exc:
            log.error("%s hook of job %s (%s) failed: %s", hook, job.uuid, job.func_name,
                      describe(exc, 300), exc_info=exc)

    def subscriptions(self) -> list[rules.Subscription]:
        """The stored subscriptions (read again every ``SUBSCRIPTIONS_TTL`` seconds); a
        row that does not make sense is skipped, said once in the log."""
        now = time.monotonic()
        if now - self._read_at < SUBSCRIPTIONS_TTL:
            return self._subscriptions
        rows = self.db.read(self.db.store.subscriptions)
        found = []
        for row in rows:
            try:
                found.append(rules.from_row(row))
            except ConfigurationError as exc:
                self.db.store.bad_row("subscription", row.get("id"), exc)
        self._subscriptions, self._read_at = found, now
        return found

    def _notify(self, subscription: rules.Subscription, job: Any) -> None:
        try:
            if subscription.target_kind == rules.WEBHOOK:
                post_json(subscription.target, rules.message(job, subscription))
            else:
                target = registry.job_function(subscription.target)
                if target is None:
                    raise ConfigurationError(
                        f"{subscription.target} is not a job function registered in this "
                        "worker (import its module with --module)")
                if job.func_name == target.func_name or made_by_subscription(job):
                    # its own failure would start another, and so on for ever (two
                    # subscriptions' jobs would start each other's)
                    log.warning("subscription %d: job %s of %s failed; a subscription's "
                                "job is not run for failures of its own function, nor "
                                "of another subscription's job", subscription.id,
                                job.uuid, job.func_name)
                    return
                with self.db.session(user_id=job.user_id,
                                     context={MADE_BY: subscription.id}) as session:
                    target.delay(session, MODEL_NAME, job.uuid)
        except Exception as exc:
            log.error("subscription %d (%s %s) about failed job %s: %s", subscription.id,
                      subscription.target_kind, describe(subscription.target, 120),
                      job.uuid, describe(exc, 300))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx: following it would send a GET without
    the message (and could lead anywhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_json(url: str, payload: dict[str, Any]) -> None:
    """POST ``payload`` as JSON; an error for anything but a 2xx answer in time
    (redirects included)."""
    body = json.dumps(payload).encode()
    rules.check_webhook(url)  # only http and https: never file:// or the like
    request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310
        "Content-Type": "application/json", "User-Agent": "queuejob"})
    with _OPENER.open(request, timeout=WEBHOOK_TIMEOUT) as answer:
        answer.read(65536)
