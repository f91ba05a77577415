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
  ``window`` seconds (one hour by default) counted in whole minutes of the database's
  clock, the current one included (``core.tallies``), exposed as gauge histograms.

Each scrape reads tallies the database keeps as jobs change (``core.tallies``) and the
unfinished jobs: its cost does not grow with the finished jobs kept.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, exposition, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import operations
from .core import states, tallies
from .core.rows import as_name
from .core.text import displayable, printable
from .operations import Database
from .store.reads import TOP_KEYS

#: upper bounds (seconds) of the histogram buckets; dashboard.sql counts jobs per bucket
BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
DEFAULT_WINDOW = 3600.0
#: the longest label value (a channel or function name written by hand may be megabytes)
MAX_LABEL = 512
#: the classic text format (0.0.4), which every Prometheus reads
CONTENT_TYPE = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", CONTENT_TYPE_LATEST)


class QueueJobCollector(Collector):
    """Collects the metrics of one job database (register it in a CollectorRegistry)."""

    def __init__(self, db: Database, window: float = DEFAULT_WINDOW) -> None:
        self.db = db
        self.window = window
        self._minutes = tallies.window_minutes(window)

    def collect(self) -> Iterator[Metric]:
        data = operations.metric_data(self.db, self.window)
        jobs = GaugeMetricFamily("queuejob_jobs", "Jobs in the database by state and channel.",
                                 labels=["state", "channel"])
        counts: dict[tuple[str, str], float] = defaultdict(float)
        for row in data["counts"]:
            counts[(label(row["state"]), label(row["channel"]))] += _count(row["jobs"])
        # every state of every channel, so that a state that empties drops to 0
        for channel in {channel for _, channel in counts}:
            for one in states.STATES:
                counts.setdefault((str(one), channel), 0)
        for (state, channel), value in sorted(counts.items()):
            jobs.add_metric([state, channel], value)
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
            per_channel: dict[str, float] = defaultdict(float)
            for row in data["totals"]:
                per_channel[label(row["channel"])] += _count(row[column])
            for channel, value in sorted(per_channel.items()):
                family.add_metric([channel], value)
            yield family

        yield from self._histograms(data["timings"])

        queue = data["queue"]
        yield GaugeMetricFamily("queuejob_queue_depth",
                                "Pending jobs that are due (their eta has passed).",
                                value=_count(queue["due"]))
        yield GaugeMetricFamily("queuejob_jobs_scheduled",
                                "Pending jobs whose eta is in the future.",
                                value=_count(queue["scheduled"]))
        yield GaugeMetricFamily("queuejob_oldest_due_job_age_seconds",
                                "How long the oldest due pending job has waited since it "
                                "became due.", value=_count(queue["oldest_due_age"]))
        yield GaugeMetricFamily("queuejob_workers_alive", "Workers whose state is alive.",
                                value=_count(data["workers_alive"]))
        capacity = GaugeMetricFamily("queuejob_channel_capacity",
                                     "Capacity of the channels, across all workers (stored, "
                                     "or declared by live workers).",
                                     labels=["channel"])
        capacities: dict[str, float] = {}
        for spec in data["rules"]:  # checked already: bad rows are left out
            if spec.capacity is not None:
                capacities[label(spec.name)] = _count(spec.capacity)
        for channel, value in sorted(capacities.items()):
            capacity.add_metric([channel], value)
        yield capacity
        yield from self._flow(data)

    def _flow(self, data: dict[str, Any]) -> Iterator[Metric]:
        """Flow control: each rate limit and the starts of its window; the running and
        the pending jobs of the top keys of keyed and fair channels (at most TOP_KEYS
        keys per channel: the label values stay few, whatever the keys)."""
        limit = GaugeMetricFamily("queuejob_channel_rate_limit",
                                  "Rate limit of the channels, across all workers, in jobs "
                                  "started per second (N/period of rate=N/s|m|h).",
                                  labels=["channel"])
        used = GaugeMetricFamily("queuejob_channel_rate_used",
                                 "Jobs the rate-limited channels started in their current "
                                 "window (the last period of their rate).",
                                 labels=["channel"])
        rates: dict[str, tuple[float, float]] = {}
        for spec in data["rules"]:
            if spec.rate is not None:
                rates[label(spec.name)] = (spec.rate[0] / spec.rate[1],
                                           _count(data["rate_used"].get(spec.name)))
        for channel, (per_second, starts) in sorted(rates.items()):
            limit.add_metric([channel], per_second)
            used.add_metric([channel], starts)
        yield limit
        yield used
        families = {
            "running": GaugeMetricFamily(
                "queuejob_channel_key_running",
                f"Running jobs of the busiest concurrency keys (at most {TOP_KEYS} per "
                "channel) of the channels with a key capacity or fair turns, their "
                "subchannels included.", labels=["channel", "key"]),
            "pending": GaugeMetricFamily(
                "queuejob_channel_key_pending",
                f"Pending jobs of the concurrency keys with the most jobs waiting (at most "
                f"{TOP_KEYS} per channel) of the channels with a key capacity or fair "
                "turns, their subchannels included.", labels=["channel", "key"]),
        }
        for kind, family in families.items():
            values: dict[tuple[str, str], float] = defaultdict(float)
            for name, load in data["keys"].items():
                channel = label(name)
                for key, jobs in (load.running if kind == "running" else load.pending)[
                        :TOP_KEYS]:
                    values[(channel, label(key))] += _count(jobs)
            for labels, value in sorted(values.items()):
                family.add_metric(list(labels), value)
            yield family

    def _histograms(self, rows: list[dict[str, Any]]) -> Iterator[Metric]:
        texts = {
            "duration": ("queuejob_job_duration_seconds",
                         "Run time (started to done) of the jobs done in the last "
                         f"{self._minutes} minutes, by function."),
            "latency": ("queuejob_job_queue_latency_seconds",
                        "Queue latency (due to started) of the jobs done in the last "
                        f"{self._minutes} minutes, by function."),
        }
        per: dict[str, dict[str, list[Any]]] = {measure: defaultdict(
            lambda: [[0] * (len(BUCKETS) + 1), 0.0]) for measure in texts}
        for row in rows:
            if row["measure"] not in per:
                continue
            entry = per[row["measure"]][label(row["func_name"])]
            bucket = row["bucket"] if isinstance(row["bucket"], int) else len(BUCKETS)
            entry[0][min(max(bucket, 0), len(BUCKETS))] += _count(row["jobs"])
            entry[1] += _count(row["seconds"])
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


def label(value: Any) -> str:
    """A stored name as a label value: valid Unicode without NUL nor other control
    characters (text that was not UTF-8 has its bytes escaped, a terminal escape is
    written as ``\x1b``; a BLOB is written as Python writes bytes), at most MAX_LABEL
    characters. Names that end up the same are summed, never repeated."""
    text = printable(displayable(as_name(value)), one_line=True)
    return text if len(text) <= MAX_LABEL else text[:MAX_LABEL - 3] + "..."


def _count(value: Any) -> float:
    """A number read from the database; 0 for what is not one (a sum over rows written
    by hand may be anything in SQLite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) if math.isfinite(value) else 0.0


def render(db: Database, window: float = DEFAULT_WINDOW) -> bytes:
    """The metrics in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueJobCollector(db, window))
    return generate_latest(registry)
