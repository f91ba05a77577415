"""Job functions of the dashboard's tests (workers import them as tests.web.webjobs)."""

from __future__ import annotations

import time

from queuejob import job, related_action


def link_to_partner(session, job):
    return f"https://erp.example.com/partner/{job.args[1]}"


def javascript_link(session, job):
    return "javascript:window.__xss=1"


def describe_partner(session, job):
    return {"model": job.args[0], "id": job.args[1]}


@job
@related_action(action=link_to_partner)
def open_partner(session, model_name, partner_id):
    """Export a partner (its related action is a link to it)."""
    return partner_id


@job
@related_action(action=javascript_link)
def sneaky_action(session, model_name):
    """A related action returning a javascript: URL."""


@job
@related_action(action=describe_partner)
def described(session, model_name, partner_id):
    """A related action returning a dict."""


@job
def echo(session, model_name, text):
    """Return the text given."""
    return text


@job
def explode(session, model_name, message):
    """Raise ValueError(message)."""
    raise ValueError(message)


@job(default_channel="root.web")
def slow(session, model_name, path, seconds=0.2):
    """Sleep, then append 'start end' to path (channel root.web)."""
    start = time.time()
    time.sleep(seconds)
    with open(path, "a") as out:
        out.write(f"{start:.6f} {time.time():.6f}\n")
