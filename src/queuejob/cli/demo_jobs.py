"""Job functions of ``queuejob demo``: imports, exports, mails and reports."""

from __future__ import annotations

import random
import time

from ..core.errors import FailedJobError, RetryableJobError
from ..jobfunction import job


def _work(seconds: float) -> None:
    time.sleep(seconds * random.random())


@job(default_channel="root.import")
def import_record(session, model_name, record_id):
    """Import a record from the partner's system."""
    _work(0.004)
    return f"imported {model_name} {record_id}"


@job(default_channel="root.export", retry_pattern={1: 1, 3: 2})
def export_record(session, model_name, record_id):
    """Export a record; the remote service is busy now and then."""
    _work(0.006)
    if record_id % 7 == 0 and session.context.get("attempts", 0) == 0:
        # busy the first time: retried by the pattern (1 s, then 2 s from the third retry)
        raise RetryableJobError("remote service busy")
    return f"exported {model_name} {record_id}"


@job(default_channel="root.mail")
def send_mail(session, model_name, record_id, address):
    """Send a notification mail."""
    _work(0.003)
    if address.endswith(".invalid"):
        raise FailedJobError(f"mail to {address} bounced")
    return f"sent to {address}"


@job(default_channel="root.reports")
def compute_report(session, model_name, period):
    """Compute a monthly report (one at a time)."""
    _work(0.02)
    return f"report {period} ready"
