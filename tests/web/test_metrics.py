"""Prometheus metrics (/metrics and ``queuejob metrics``) and the overview's numbers,
read from the database, on both backends."""

from __future__ import annotations

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

import queuejob
from queuejob import operations
from queuejob.cli.app import cli
from queuejob.web import charts
from tests.web import webjobs


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _jobs(db: queuejob.Database) -> None:
    with db.session() as session:
        for index in range(3):
            webjobs.echo.delay(session, "res.partner", f"hello {index}")
        webjobs.explode.delay(session, None, "no")
    queuejob.Worker(db, channels="root:4", modules=["tests.web.webjobs"]).run(burst=True)
    with db.session() as session:
        webjobs.slow.delay(session, None, "/dev/null")
        webjobs.slow.delay(session, None, "/dev/null", eta=3600)
    operations.set_channel(db, "root.web", 2)
    db.run(lambda conn: db.store.register_worker(conn, "w1", "host", 1, "root:4"))


def test_metrics_endpoint_and_command(web):
    db = web.db
    _jobs(db)
    status, headers, text = web.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(text)
    echo = "tests.web.webjobs.echo"
    expected = {
        ("queuejob_jobs", (("channel", "root"), ("state", "done"))): 3,
        ("queuejob_jobs", (("channel", "root"), ("state", "failed"))): 1,
        ("queuejob_jobs", (("channel", "root"), ("state", "pending"))): 0,
        ("queuejob_jobs", (("channel", "root.web"), ("state", "pending"))): 2,
        ("queuejob_jobs_enqueued", (("channel", "root"),)): 4,
        ("queuejob_jobs_enqueued", (("channel", "root.web"),)): 2,
        ("queuejob_attempts_started", (("channel", "root"),)): 4,
        ("queuejob_attempts_started", (("channel", "root.web"),)): 0,
        ("queuejob_jobs_done", (("channel", "root"),)): 3,
        ("queuejob_jobs_failed", (("channel", "root"),)): 1,
        ("queuejob_job_duration_seconds_bucket", (("function", echo), ("le", "+Inf"))): 3,
        ("queuejob_job_duration_seconds_gcount", (("function", echo),)): 3,
        ("queuejob_job_queue_latency_seconds_gcount", (("function", echo),)): 3,
        ("queuejob_queue_depth", ()): 1,
        ("queuejob_jobs_scheduled", ()): 1,
        ("queuejob_workers_alive", ()): 1,
        ("queuejob_channel_capacity", (("channel", "root.web"),)): 2,
    }
    for key, value in expected.items():
        assert samples.get(key) == value, key
    # buckets are cumulative, and the sum of run times is positive
    buckets = [value for (name, labels), value in samples.items()
               if name == "queuejob_job_duration_seconds_bucket" and ("function", echo) in labels]
    assert buckets == sorted(buckets) and len(buckets) == 12
    assert samples[("queuejob_job_duration_seconds_gsum", (("function", echo),))] > 0
    assert samples[("queuejob_oldest_due_job_age_seconds", ())] >= 0

    result = CliRunner().invoke(cli, ["metrics", "--db", db.url])
    assert result.exit_code == 0, result.output
    printed = _samples(result.output)
    assert set(printed) == set(samples)
    for key, value in expected.items():
        assert printed[key] == value, key


def test_overview_numbers(db):
    _jobs(db)
    data = operations.throughput(db, 60)
    assert len(data["done"]) == len(data["failed"]) == 60
    # everything happened in the last minute or two
    assert sum(data["done"][-2:]) == 3 and sum(data["failed"][-2:]) == 1
    assert sum(data["done"]) == 3
    day = operations.throughput(db, 1440)
    assert sum(day["done"]) == 3 and len(day["done"]) == 1440
    chart = charts.throughput_chart(data, "hour")
    assert chart["total_done"] == 3 and chart["total_failed"] == 1
    assert len(chart["hover"]) == 60
    assert len(chart["done"].split()) == 60
    queue = operations.queue_state(db)
    assert (queue["due"], queue["scheduled"]) == (1, 1)
    tree = {row["name"]: row for row in operations.channels(db)}
    # a channel counts the jobs of its subtree
    assert tree["root"]["pending"] == 2 and tree["root"]["failed"] == 1
    assert (tree["root.web"]["capacity"], tree["root.web"]["pending"]) == (2, 2)
    functions = {row["name"]: row for row in operations.functions(db)}
    assert functions["tests.web.webjobs.echo"]["done_recently"] == 3
    assert functions["tests.web.webjobs.explode"]["counts"] == {"failed": 1}
    assert functions["tests.web.webjobs.slow"]["counts"] == {"pending": 2}
