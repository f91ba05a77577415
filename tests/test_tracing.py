"""OpenTelemetry traces across processes (queuejob.tracing), on both backends: the
enqueueing span's context stored with the job, the worker's span of each attempt
continuing it, checked with the SDK's in-memory exporter; a worker process continuing
the trace it reads back; stored contexts that are not ones ignored."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import queuejob
from queuejob import chain, job, tracing
from tests import jobs
from tests.conftest import ROOT
from tests.helpers import row, spawn_worker, stop_process, wait_until

MODULES = ["tests.jobs", "tests.test_tracing"]


@job
def record_trace(session, model_name, path):
    """Write the trace id and span id current while the job runs (hex), and whether its
    span records."""
    span = trace.get_current_span()
    context = span.get_span_context()
    Path(path).write_text(json.dumps({"trace_id": f"{context.trace_id:032x}",
                                      "span_id": f"{context.span_id:016x}",
                                      "recording": span.is_recording()}))


@job
async def record_trace_async(session, model_name, path):
    await asyncio.sleep(0)
    record_trace(session, model_name, path)


@pytest.fixture
def exporter(monkeypatch):
    """An SDK tracer provider, the process's global one for the test, exporting to memory
    (the test's own: the API's set-once global is restored after it)."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield spans
    provider.shutdown()


def run_jobs(db):
    queuejob.Worker(db, modules=MODULES).run(burst=True)


def by_kind(spans, kind):
    return [span for span in spans if span.kind == kind]


def hex_trace(span):
    return f"{span.context.trace_id:032x}"


def test_the_worker_span_continues_the_enqueueing_span(db, exporter, tmp_path):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request, db.session() as session:
        job_uuid = jobs.add.delay(session, "res.partner", 1, 2)
    stored = row(db, job_uuid)["trace_context"]
    assert json.loads(stored)["traceparent"].startswith(f"00-{hex_trace(request)}-")
    run_jobs(db)
    assert row(db, job_uuid)["state"] == "done"

    spans = exporter.get_finished_spans()
    [send] = by_kind(spans, SpanKind.PRODUCER)
    [process] = by_kind(spans, SpanKind.CONSUMER)
    # one trace: request -> send (PRODUCER) -> process (CONSUMER), linked too
    assert send.name == "send tests.jobs.add"
    assert send.parent.span_id == request.get_span_context().span_id
    assert process.name == "process tests.jobs.add"
    assert process.context.trace_id == request.get_span_context().trace_id
    assert process.parent.span_id == send.context.span_id
    assert [link.context.span_id for link in process.links] == [send.context.span_id]
    attributes = dict(process.attributes)
    assert attributes["queuejob.job.uuid"] == job_uuid
    assert attributes["messaging.message.id"] == job_uuid
    assert attributes["queuejob.job.function"] == "tests.jobs.add"
    assert attributes["queuejob.job.channel"] == "root"
    assert attributes["messaging.destination.name"] == "root"
    assert attributes["messaging.system"] == "queuejob"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["queuejob.job.attempt"] == 1
    assert attributes["queuejob.job.state"] == "done"
    assert process.status.status_code == StatusCode.UNSET


def test_failures_and_retries_are_recorded_per_attempt(db, exporter):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request, db.session() as session:
        failed = jobs.fail.delay(session, "m", "it broke")
        retried = jobs.retry_then_succeed.delay(session, "m", 1)

    def both_ended():
        run_jobs(db)
        return row(db, failed)["state"] == "failed" and row(db, retried)["state"] == "done"
    wait_until(both_ended, message="the jobs to end")

    trace_id = request.get_span_context().trace_id
    processed = by_kind(exporter.get_finished_spans(), SpanKind.CONSUMER)
    assert {span.context.trace_id for span in processed} == {trace_id}
    [failure] = [s for s in processed if s.attributes["queuejob.job.uuid"] == failed]
    assert failure.attributes["queuejob.job.state"] == "failed"
    assert failure.attributes["error.type"] == "builtins.ValueError"
    assert failure.status.status_code == StatusCode.ERROR
    [event] = failure.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "builtins.ValueError"
    assert event.attributes["exception.message"] == "it broke"
    assert "ValueError: it broke" in event.attributes["exception.stacktrace"]

    attempts = sorted((s for s in processed if s.attributes["queuejob.job.uuid"] == retried),
                      key=lambda span: span.attributes["queuejob.job.attempt"])
    assert [(s.attributes["queuejob.job.attempt"], s.attributes["queuejob.job.state"])
            for s in attempts] == [(1, "retry"), (2, "done")]
    assert attempts[0].events[0].attributes["exception.message"] == "attempt 1"
    # each attempt is a child of the same enqueueing (send) span
    assert len({span.parent.span_id for span in attempts}) == 1


def test_delay_many_and_graphs_store_the_context_of_one_send_span(db, exporter, tmp_path):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("import") as parent, db.session() as session:
        many = jobs.add.delay_many(session, [("m", n, n) for n in range(5)])
        a, b = (jobs.add.delayable(session, "m", n, 1) for n in range(2))
        chain(a, b).delay()
    sends = by_kind(exporter.get_finished_spans(), SpanKind.PRODUCER)
    assert sorted((s.name, s.attributes.get("messaging.batch.message_count")) for s in sends) \
        == [("send graph", 2), ("send tests.jobs.add", 5)]
    run_jobs(db)
    processed = by_kind(exporter.get_finished_spans(), SpanKind.CONSUMER)
    parents = {span.attributes["queuejob.job.uuid"]: span.parent.span_id for span in processed}
    assert set(parents) == {*many, a.uuid, b.uuid}
    send_of = {span.name: span.context.span_id for span in sends}
    assert {parents[uuid] for uuid in many} == {send_of["send tests.jobs.add"]}
    assert {parents[a.uuid], parents[b.uuid]} == {send_of["send graph"]}
    assert {span.context.trace_id for span in processed} == {parent.get_span_context().trace_id}


def test_a_job_stored_outside_any_span_gets_a_root_span_of_its_own(db, exporter, tmp_path):
    with db.session() as session:
        job_uuid = record_trace.delay(session, "m", str(tmp_path / "trace"))
    assert row(db, job_uuid)["trace_context"] is None
    assert not by_kind(exporter.get_finished_spans(), SpanKind.PRODUCER)
    tracer = trace.get_tracer("tests")
    # the worker's own current span (here: the test's) is not the job's parent
    with tracer.start_as_current_span("elsewhere"):
        run_jobs(db)
    [process] = by_kind(exporter.get_finished_spans(), SpanKind.CONSUMER)
    assert process.parent is None and not process.links
    seen = json.loads((tmp_path / "trace").read_text())
    # the attempt's span is current while the job runs
    assert seen == {"trace_id": hex_trace(process), "span_id": f"{process.context.span_id:016x}",
                    "recording": True}


def test_async_jobs_run_in_their_attempt_span(db, exporter, tmp_path):
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("request") as request, db.session() as session:
        record_trace_async.delay(session, "m", str(tmp_path / "trace"))
    run_jobs(db)
    [process] = by_kind(exporter.get_finished_spans(), SpanKind.CONSUMER)
    assert process.name == "process tests.test_tracing.record_trace_async"
    assert process.context.trace_id == request.get_span_context().trace_id
    assert process.attributes["queuejob.job.state"] == "done"
    assert json.loads((tmp_path / "trace").read_text())["span_id"] == \
        f"{process.context.span_id:016x}"


GARBAGE = ["not json", "[1, 2]", '{"traceparent": 5}', '{"traceparent": "00-zz-yy-01"}',
           '{"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"}',
           json.dumps({"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01",
                       "x": "y" * 10_000}), ""]


def write_by_hand(db, job_uuid, value):
    statement = "UPDATE queue_job SET trace_context = ? WHERE uuid = ?"
    if db.dialect == "postgresql":
        statement = statement.replace("?", "%s")
    db.run(lambda conn: db.connector.execute_sql(conn, statement, (value, job_uuid)))


def test_a_stored_context_that_is_not_one_is_ignored(db, exporter, tmp_path):
    with db.session() as session:
        uuids = [record_trace.delay(session, "m", str(tmp_path / f"trace{n}"))
                 for n in range(len(GARBAGE))]
    for job_uuid, garbage in zip(uuids, GARBAGE, strict=True):
        write_by_hand(db, job_uuid, garbage)
    run_jobs(db)
    assert {row(db, job_uuid)["state"] for job_uuid in uuids} == {"done"}
    processed = by_kind(exporter.get_finished_spans(), SpanKind.CONSUMER)
    assert len(processed) == len(GARBAGE)
    assert all(span.parent is None and not span.links for span in processed)
    for value in (*GARBAGE, "\x00\ud800", '{"traceparent": ["x"]}', None, 42, b"{}"):
        assert tracing.stored_context(value) is None


def test_without_a_tracer_provider_nothing_is_done_unless_a_trace_comes_in(db, tmp_path):
    # no provider: the API's proxy (the global was never set in the tests)
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert tracing.sending("tests.jobs.add") is tracing.NOTHING
    assert tracing.attempt({"uuid": "x", "trace_context": None}) is tracing.NOTHING
    with db.session() as session:
        plain = jobs.add.delay(session, "m", 1, 2)
    assert row(db, plain)["trace_context"] is None
    # a context that came in (a propagated request, a job of a traced producer) goes on
    # to the jobs stored in it, and is current in the jobs that run them
    incoming = trace.SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True,
                                 trace_flags=trace.TraceFlags(1))
    with trace.use_span(trace.NonRecordingSpan(incoming)), db.session() as session:
        carried = record_trace.delay(session, "m", str(tmp_path / "trace"))
    assert json.loads(row(db, carried)["trace_context"]) == {
        "traceparent": f"00-{0x1234:032x}-{0x5678:016x}-01"}
    run_jobs(db)
    seen = json.loads((tmp_path / "trace").read_text())
    assert seen == {"trace_id": f"{0x1234:032x}", "span_id": f"{0x5678:016x}",
                    "recording": False}


def test_a_worker_process_continues_the_stored_trace(db_url, db, exporter, job_env,
                                                     tmp_path):
    tracer = trace.get_tracer("tests")
    out = tmp_path / "trace"
    with tracer.start_as_current_span("request") as request, db.session() as session:
        record_trace.delay(session, "m", str(out))
    [send] = by_kind(exporter.get_finished_spans(), SpanKind.PRODUCER)
    # the worker process has the API but no tracer provider: the stored context is
    # current in the job
    worker = spawn_worker(db_url, job_env, "--module", "tests.test_tracing", "--burst",
                          log=tmp_path / "worker.log")
    try:
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        stop_process(worker)
    seen = json.loads(out.read_text())
    assert seen["trace_id"] == f"{request.get_span_context().trace_id:032x}"
    assert seen["span_id"] == f"{send.context.span_id:016x}"


def test_without_opentelemetry_installed_queuejob_runs_as_before(tmp_path, job_env):
    """A process where ``import opentelemetry`` fails: jobs are stored and run."""
    script = f"""
import sys
sys.modules["opentelemetry"] = None  # not installed: its import raises ImportError
import queuejob
from queuejob import tracing
from tests import jobs
assert not tracing.ENABLED and tracing.sending("x") is tracing.NOTHING
db = queuejob.open("sqlite:///{tmp_path}/jobs.db")
with db.session() as session:
    uuid = jobs.add.delay(session, "m", 1, 2)
queuejob.Worker(db, modules=["tests.jobs"]).run(burst=True)
row = db.run(lambda conn: db.store.load(conn, uuid))
assert (row["state"], row["trace_context"]) == ("done", None), row
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], check=False, env=job_env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
