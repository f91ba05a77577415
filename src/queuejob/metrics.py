"""Prometheus metrics of a job database (``/metrics`` of ``queuejob web``, ``queuejob metrics``).

Everything is read from the database when the metrics are collected, so that any
number of dashboards (and the ``queuejob metrics`` command) report the same numbers
and no worker needs to expose anything. Hence:

- the "counters" (jobs enqueued, attempts started, jobs done, jobs failed) are totals
  over the jobs the database holds, exposed as gauges (``queuejob_jobs_enqueued``,
  ``queuejob_attempts_started``, ``queuejob_jobs_done``, ``queuejob_jobs_failed``): they
  drop when old done jobs are removed (``removal_interval``), which a Prometheus counter
  must never do;
- the run time and queue latency histograms cover the jobs done in the last
  ``window`` seconds (one hour by default), exposed as gauge histograms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, exposition, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import operations
from .core import states
from .database import Database
from .manager import spec_from_row

#: upper bounds (seconds) of the histogram buckets; dashboard.sql counts jobs per bucket
BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
DEFAULT_WINDOW = 3600.0
#: the classic text format (0.0.4), which every Prometheus reads
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", CONTENT_TYPE_LATEST)


class QueueJobCollector(Collector):
    """Collects the metrics of one job database (register it in a CollectorRegistry)."""

    def __init__(self, db: Database, window: float = DEFAULT_WINDOW) -> None:
        self.db = db
        self.window = window

    def collect(self) -> Iterator[Metric]:
        data = operations.metric_rows(self.db, self.window)
        jobs = GaugeMetricFamily("queuejob_jobs", "Jobs in the database by state and channel.",
                                 labels=["state", "channel"])
        seen = {(row["state"], row["channel"]) for row in data["counts"]}
        channels = sorted({row["channel"] for row in data["counts"]})
        for row in data["counts"]:
            jobs.add_metric([row["state"], row["channel"]], row["jobs"])
        # every state of every channel, so that a state that empties drops to 0
        for channel in channels:
            for state in states.STATES:
                if (state, channel) not in seen:
                    jobs.add_metric([str(state), channel], 0)
        yield jobs

        totals = {
            "queuejob_jobs_enqueued": ("jobs", "Jobs enqueued that the database holds."),
            "queuejob_attempts_started": ("attempts", "Attempts started, over the jobs the "
                                                      "database holds."),
            "queuejob_jobs_done": ("done", "Jobs done that the database holds."),
            "queuejob_jobs_failed": ("failed", "Jobs that failed at least once, over the "
                                               "jobs the database holds."),
        }
        for name, (column, text) in totals.items():
            family = GaugeMetricFamily(
                name,
                text + " A total read from the database, exposed as a gauge: it drops when "
                "old jobs are removed.", labels=["channel"])
            for row in data["totals"]:
                family.add_metric([row["channel"]], row[column] or 0)
            yield family

        yield from self._histograms(data["timings"])

        queue = data["queue"]
        yield GaugeMetricFamily("queuejob_queue_depth",
                                "Pending jobs that are due (their eta has passed).",
                                value=queue["due"] or 0)
        yield GaugeMetricFamily("queuejob_jobs_scheduled",
                                "Pending jobs whose eta is in the future.",
                                value=queue["scheduled"] or 0)
        yield GaugeMetricFamily("queuejob_oldest_due_job_age_seconds",
                                "How long the oldest due pending job has waited since it "
                                "became due.", value=queue["oldest_due_age"] or 0.0)
        yield GaugeMetricFamily("queuejob_workers_alive", "Workers whose state is alive.",
                                value=data["workers_alive"])
        capacity = GaugeMetricFamily("queuejob_channel_capacity",
                                     "Global capacity of the configured channels.",
                                     labels=["channel"])
        for row in data["channels"]:
            spec = spec_from_row(row)
            if spec is not None and spec.capacity is not None:
                capacity.add_metric([spec.name], spec.capacity)
        yield capacity

    def _histograms(self, rows: list[dict[str, Any]]) -> Iterator[Metric]:
        texts = {
            "duration": ("queuejob_job_duration_seconds",
                         "Run time (started to done) of the jobs done in the last "
                         f"{self.window:g} seconds, by function."),
            "latency": ("queuejob_job_queue_latency_seconds",
                        "Queue latency (due to started) of the jobs done in the last "
                        f"{self.window:g} seconds, by function."),
        }
        per: dict[str, dict[str, list[Any]]] = {measure: defaultdict(
            lambda: [[0] * (len(BUCKETS) + 1), 0.0]) for measure in texts}
        for row in rows:
            entry = per[row["measure"]][row["func_name"]]
            entry[0][min(int(row["bucket"]), len(BUCKETS))] += row["jobs"]
            entry[1] += float(row["seconds"] or 0.0)
        for measure, (name, text) in texts.items():
            family = GaugeHistogramMetricFamily(name, text, labels=["function"])
            for function, (counts, total) in sorted(per[measure].items()):
                cumulative, buckets = 0, []
                for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                    cumulative += count
                    buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}",
                                    cumulative))
                family.add_metric([function], buckets, gsum_value=total)
            yield family


def render(db: Database, window: float = DEFAULT_WINDOW) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueJobCollector(db, window))
    return generate_latest(registry)
