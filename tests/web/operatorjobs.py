"""Job functions of the operator pages' tests (workers import them as
tests.web.operatorjobs): failures of two kinds, a related action people can name in a
function's settings, and a job a subscription to failures can make."""

from __future__ import annotations

from queuejob import job, register_related_action


@register_related_action
def open_in_crm(session, job, base="https://crm.example.com", kind="record"):
    """A link to the job's record in a CRM: where it points is its keyword arguments."""
    return f"{base}/{kind}/{job.args[1]}"


@job
def missing_key(session, model_name, key):
    """Look a key up in an empty mapping (KeyError)."""
    return {}[key]


@job
def wrong_value(session, model_name, message):
    """Raise ValueError(message)."""
    raise ValueError(message)


@job
def on_failure(session, failed_uuid):
    """What a subscription to failures delays: the failed job's uuid."""
    return failed_uuid
