"""Subscriptions to failures: which failed jobs a subscription is about, where its
message goes, and what the message says. Pure rules; the worker's hooks deliver.

A subscription names a channel (its jobs and those of its subchannels), a job function,
both (jobs of that function in that channel) or neither (every failure). Its target is
a webhook (``http``/``https`` URL, sent a JSON message by POST) or a job function (its
``module.name``; a job of it is delayed with the failed job's uuid as its argument).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from . import limits
from .channels import normalize_name
from .errors import ConfigurationError
from .rows import is_channel_name
from .text import bounded, describe, printable, storable

WEBHOOK = "webhook"
JOB = "job"
TARGET_KINDS = (WEBHOOK, JOB)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    channel: str | None
    func_name: str | None
    target_kind: str
    target: str

    def matches(self, channel: Any, func_name: Any) -> bool:
        """Whether a failed job of ``channel`` and ``func_name`` is this one's concern."""
        if self.func_name is not None and func_name != self.func_name:
            return False
        if self.channel is None:
            return True
        return isinstance(channel, str) and (
            channel == self.channel or channel.startswith(self.channel + "."))


def check_channel(channel: Any) -> str | None:
    if channel is None or channel == "":
        return None
    return normalize_name(channel)


def check_func_name(func_name: Any) -> str | None:
    if func_name is None or func_name == "":
        return None
    if not isinstance(func_name, str) or len(func_name) > limits.FUNC_NAME \
            or printable(func_name, one_line=True) != func_name or " " in func_name:
        raise ConfigurationError(f"bad job function name {describe(func_name, 80)}")
    return func_name


def check_webhook(url: Any) -> str:
    """An ``http``/``https`` URL with a host, on one line, within its limit, that the
    sender can send to (ASCII, no credentials, a port other than 0)."""
    if not isinstance(url, str) or not url or len(url) > limits.TARGET \
            or printable(url, one_line=True) != url or any(c.isspace() for c in url):
        raise ConfigurationError(f"bad webhook URL {describe(url, 80)}: one line of at most "
                                 f"{limits.TARGET} characters, without spaces")
    if not url.isascii():  # what an HTTP request line and Host header can carry
        raise ConfigurationError(f"bad webhook URL {describe(url, 80)}: ASCII only "
                                 "(percent-encode other characters, write a host in its "
                                 "xn-- form)")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigurationError(f"bad webhook URL {describe(url, 80)}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"bad webhook URL {describe(url, 80)}: an http:// or "
                                 "https:// URL with a host")
    if "@" in parts.netloc:  # the sender would take user:password@host for a host name
        raise ConfigurationError(f"bad webhook URL {describe(url, 80)}: credentials "
                                 "(user:password@) are not supported in the URL")
    if port == 0:
        raise ConfigurationError(f"bad webhook URL {describe(url, 80)}: port 0")
    return url


def check_target(kind: Any, target: Any) -> tuple[str, str]:
    """(kind, target) checked: a webhook URL, or a job function's name (whether it is
    registered is the caller's check: it depends on what is imported)."""
    if kind == WEBHOOK:
        return WEBHOOK, check_webhook(target)
    if kind == JOB:
        name = check_func_name(target)
        if name is None:
            raise ConfigurationError("a job target is a job function's module.name")
        return JOB, name
    raise ConfigurationError(f"unknown target kind {describe(kind, 40)} "
                             f"(one of {', '.join(TARGET_KINDS)})")


def from_row(row: Any) -> Subscription:
    """The subscription a stored row holds; ConfigurationError for a row that does not
    make sense (written by hand): that subscription is skipped, the others are used."""
    subscription_id = row.get("id")
    if not isinstance(subscription_id, int) or isinstance(subscription_id, bool):
        raise ConfigurationError(f"bad subscription id {describe(subscription_id, 40)}")
    channel = row.get("channel")
    if channel is not None and not is_channel_name(channel):
        raise ConfigurationError(f"bad channel {describe(channel, 60)}")
    kind, target = check_target(row.get("target_kind"), row.get("target"))
    return Subscription(subscription_id, channel or None,
                        check_func_name(row.get("func_name")), kind, target)


def message(job: Any, subscription: Subscription) -> dict[str, Any]:
    """The JSON a webhook is sent for a failed job: what a person or a chat bot needs
    to say what failed and why (no arguments: they may hold private data). Every text
    is valid JSON text, cut to its limit."""
    def text(value: Any, limit: int = limits.LISTED) -> str | None:
        if value is None:
            return None
        return bounded(storable(value if isinstance(value, str) else str(value)), limit)

    return {
        "event": "job.failed",
        "subscription": subscription.id,
        "uuid": text(job.uuid),
        "func_name": text(job.func_name),
        "channel": text(job.channel),
        "description": text(job.description),
        "exc_name": text(job.exc_name),
        "exc_message": text(job.exc_message, 1000),
        "attempts": job.retry,
        "max_retries": job.max_retries,
    }
