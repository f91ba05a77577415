"""Job functions used by the tests (importable by worker subprocesses as tests.jobs)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from queuejob import (
    FailedJobError,
    NothingToDoJob,
    RetryableJobError,
    job,
    related_action,
    whitelist_unpickle_global,
)


@whitelist_unpickle_global
class Box:
    """A plain class admitted as a job argument."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Box) and other.value == self.value

    __hash__ = None


@whitelist_unpickle_global
@dataclass(frozen=True)
class Point:
    x: int
    y: int


class NotAllowed:
    """Not whitelisted: refused as an argument."""


def log_execution(path: str, job_uuid: str, attempt: int, start: float, end: float) -> None:
    """Append ``uuid attempt pid start end``: executions counted outside queuejob."""
    line = f"{job_uuid} {attempt} {os.getpid()} {start:.6f} {end:.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@job
def noop(session, model_name, *args, **kwargs):
    """Do nothing."""


@job
def add(session, model_name, a, b):
    """Add two numbers."""
    return a + b


@job
def on_thread(session, model_name, path, seconds=0.0):
    """Sleep, then log the name of the thread the job ran on."""
    if seconds:
        time.sleep(seconds)
    with open(path, "a") as out:
        out.write(f"{threading.current_thread().name}\n")


@job
def record(session, model_name, path, seconds=0.0):
    """Sleep, then log the execution."""
    start = time.time()
    if seconds:
        time.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return "recorded"


@job(default_channel="root.export")
def export(session, model_name, path, seconds=0.0):
    """Export: logs its execution (channel root.export)."""
    start = time.time()
    if seconds:
        time.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())


@job
def echo_session(session, model_name):
    """Return what the job's session carries."""
    return repr((session.user_id, sorted(session.context.items())))


@job(retry_pattern={1: 60, 2: 180, 3: 10, 5: 300})
def always_retry(session, model_name, seconds=None, ignore_retry=False):
    raise RetryableJobError("not yet", seconds=seconds, ignore_retry=ignore_retry)


@job
def retry_then_succeed(session, model_name, failures):
    if session.job.retry <= failures:
        raise RetryableJobError(f"attempt {session.job.retry}", seconds=0.01)
    return f"succeeded at attempt {session.job.retry}"


@job
def nothing_to_do(session, model_name):
    raise NothingToDoJob("already exported")


@job
def fail(session, model_name, message="boom"):
    raise ValueError(message)


@job
def fail_hard(session, model_name):
    raise FailedJobError("gave up")


@job
def mutate_args(session, model_name, items, mapping):
    items.append("changed")
    mapping["changed"] = True
    return len(items)


@job
def write_row(session, model_name, table, value, then_fail=False):
    placeholder = "?" if session.db.dialect == "sqlite" else "%s"
    session.execute(f"INSERT INTO {table} (value) VALUES ({placeholder})", (value,))
    if then_fail:
        raise ValueError("failed after writing")
    return "written"


@job
def delay_child(session, model_name):
    """Delay another job from inside a job (same transaction as the outcome)."""
    return add.delay(session, model_name, 1, 2)


def related_partner(session, job, extra=1):
    return {"res_model": job.args[0], "res_id": job.args[1], "extra": extra}


@job
@related_action(action=related_partner, extra=2)
def export_partner(session, model_name, partner_id):
    return partner_id


@job
def returns_url_action(session, model_name):
    return None


@job
def kill_worker(session, model_name, path):
    """Log, then kill the worker process running this job (poison job)."""
    log_execution(path, session.context["job_uuid"], session.job.retry, time.time(), time.time())
    os.kill(os.getpid(), 9)


@job
def sleep(session, model_name, seconds):
    time.sleep(seconds)


@job(default_channel="root.seq")
def seq_job(session, model_name, path, fail=False):
    start = time.time()
    time.sleep(0.01)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    if fail:
        raise ValueError("sequential failure")


def not_a_job(session, model_name):
    """Undecorated: a worker must refuse it."""
    raise AssertionError("must never run")


class BadText:
    def __str__(self):
        raise RuntimeError("no text for you")


@job
def returns_bad_text(session, model_name):
    return BadText()


@job(retry_pattern={1: 0.01})
def spin(session, model_name, path, seconds):
    """Pure-Python CPU work for ``seconds`` (a JobTimeout stops it at once)."""
    start = time.time()
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        total += 1
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return total


@job(timeout=0.3, retry_pattern={1: 0.01})
def slow_with_timeout(session, model_name, path, seconds):
    """Sleeps past its decorator's timeout."""
    start = time.time()
    time.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())


@job
def fail_unless_exists(session, model_name, path):
    """Fails until ``path`` exists (a test creates it to let a requeued job succeed)."""
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist yet")
    return "found"


@job
async def async_sleep(session, model_name, path, seconds):
    """An async job: awaits, then logs its execution."""
    import asyncio
    start = time.time()
    await asyncio.sleep(seconds)
    log_execution(path, session.context["job_uuid"], session.job.retry, start, time.time())
    return f"slept {seconds}"


@job(retry_pattern={1: 0.01})
async def async_retry_then_fail(session, model_name):
    from queuejob import RetryableJobError
    raise RetryableJobError("async not yet")


@job
def progressing(session, model_name, steps, gate=None):
    """Report progress and log a line at each step; with ``gate`` (a path), wait for
    that file to exist after the first step (at most 60 s), so that a test can look
    at the job while it runs."""
    logger = logging.getLogger("tests.jobs.progressing")
    for step in range(1, steps + 1):
        session.progress(step, steps, f"step {step} of {steps}")
        logger.info("did step %d", step)
        if gate and step == 1:
            deadline = time.monotonic() + 60
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.02)
    return steps


@job
def chatty(session, model_name, messages, fail=False):
    """Log each message (at WARNING), then fail with a logged traceback if asked."""
    logger = logging.getLogger("tests.jobs.chatty")
    for message in messages:
        logger.warning("%s", message)
    if fail:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
            raise
    return len(messages)


@job
async def chatty_async(session, model_name, message):
    """An async job that logs one line."""
    logging.getLogger("tests.jobs.chatty_async").warning("async says %s", message)
    return message


@job
def chatty_repr(session, model_name, literals):
    """Log each text given as a Python literal (``ascii(text)``: any text, lone
    surrogates and control characters included, travels as arguments)."""
    import ast
    logger = logging.getLogger("tests.jobs.chatty_repr")
    for literal in literals:
        logger.warning(ast.literal_eval(literal))
    return len(literals)


@job
def chatty_then_retry(session, model_name):
    """Log which attempt this is."""
    logging.getLogger("tests.jobs.chatty_then_retry").warning("attempt %d",
                                                              session.job.attempt)


@job
def bad_progress(session, model_name, done, total):
    """Report a progress that is not one."""
    session.progress(done, total)


@job
def append_line(session, model_name, path, text):
    """Append ``text`` and a line break to the file ``path`` (a batch's callback: a test
    counts its lines)."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{text}\n")
    return text


@job(retry_pattern={1: 0.2})
def retry_until_file(session, model_name, path):
    """Retry (pending again in 0.2 s) while ``path`` does not exist; fail for good once it
    does."""
    if not os.path.exists(path):
        raise RetryableJobError("not yet")
    raise FailedJobError(f"{path} exists: giving up")
