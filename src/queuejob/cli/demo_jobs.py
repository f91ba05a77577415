"""Job functions of ``queuejob demo``: imports, exports, mails and reports."""

from __future__ import annotations

import random
import time
from typing import Any

from ..core.errors import FailedJobError, RetryableJobError
from ..jobfunction import job


def _work(seconds: float) -> None:
    time.sleep(seconds * random.random())


@job(default_channel="root.import")
def import_record(session, model_name, record_id):
    """Import a record from the partner's system."""
    _work(0.004)
    return f"imported {model_name} {record_id}"


@job(default_channel="root.export", retry_pattern={1: 0.5, 3: 1})
def export_record(session, model_name, record_id):
    """Export a record; the remote service is busy now and then."""
    _work(0.006)
    if random.random() < 0.3:
        # retried by the pattern: 0.5 s, then 1 s from the third attempt; after
        # max_retries (5) busy answers in a row, the job fails
        raise RetryableJobError("remote service busy")
    return f"exported {model_name} {record_id} (attempt {session.job.retry})"


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


def delay_demo_jobs(session: Any, count: int, bounce_every: int = 100) -> None:
    """Delay ``count`` jobs of the demo's mix: 40 % imports, 40 % exports (some with a
    higher priority), 10 % mails (one in ``bounce_every`` jobs bounces), 10 % reports
    (one per month: the identity key drops the duplicates)."""
    for index in range(count):
        kind = index % 10
        if kind < 4:
            import_record.delay(session, "res.partner", index)
        elif kind < 8:
            export_record.delay(session, "sale.order", index,
                                priority=5 if index % 3 == 0 else 10)
        elif kind == 8:
            domain = "example.invalid" if index % bounce_every == 8 else "example.com"
            send_mail.delay(session, "res.partner", index, f"customer{index}@{domain}")
        else:
            period = f"2026-{index % 12 + 1:02d}"
            compute_report.delay(session, "account.report", period,
                                 identity_key=f"report-{period}")
