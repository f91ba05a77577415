"""The asyncio client (queuejob.aio): the same meaning as the synchronous calls, in the
application's own async transaction, without ever blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuejob
from tests import jobs
from tests.helpers import ROOT, ThreadWorker, job_rows, wait_until

# PostgreSQL directly and through PgBouncer's transaction pool (the asyncio pool too)
pytestmark = pytest.mark.through_pgbouncer

#: columns that differ between two jobs stored from the same call
VARYING = {"id", "uuid", "date_created", "date_enqueued", "date_started", "date_done",
           "eta", "context", "identity_key", "trace_context"}


def run(coroutine_function: Any, *args: Any) -> Any:
    """Run an async test body on a fresh event loop (as an application would)."""
    return asyncio.run(coroutine_function(*args))


def stored(db: queuejob.Database, job_uuid: str) -> dict[str, Any]:
    (found,) = [row for row in job_rows(db) if row["uuid"] == job_uuid]
    return found


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in VARYING}


def app_table(db: queuejob.Database) -> None:
    with db.session() as session:
        session.execute("CREATE TABLE IF NOT EXISTS signup (email TEXT)")


def signups(db: queuejob.Database) -> list[str]:
    with db.session() as session:
        return [row[0] for row in session.execute("SELECT email FROM signup").fetchall()]


# -- the same meaning as the synchronous calls ------------------------------------------------
CALL = st.fixed_dictionaries(
    {"args": st.lists(st.one_of(st.integers(-2**40, 2**40), st.text(max_size=12),
                                st.none(), st.booleans()), max_size=3)},
    optional={"priority": st.one_of(st.integers(-5, 20), st.text(max_size=3)),
              "max_retries": st.integers(-1, 6),
              "channel": st.sampled_from(["root", "root.export", "root..bad", "", "other"]),
              "description": st.text(max_size=20),
              "eta": st.one_of(st.integers(-10, 3600), st.just("tomorrow")),
              "identity_key": st.text(min_size=1, max_size=8),
              "timeout": st.one_of(st.floats(-1, 100, allow_nan=False), st.just(0)),
              "colour": st.just("red")})


def outcome(function: Any) -> Any:
    """What a call gives: ("ok", its value) or (its exception's type and message)."""
    try:
        return "ok", function()
    except Exception as exc:  # the same refusal is what is compared
        return type(exc).__name__, str(exc)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=CALL)
def test_delay_async_stores_what_delay_stores_and_refuses_what_it_refuses(db, call):
    options = {key: value for key, value in call.items() if key != "args"}
    args = ("res.partner", *call["args"])
    if "identity_key" in options:  # each example its own key: no earlier example holds it
        options["identity_key"] = f"{options['identity_key']}-{len(job_rows(db))}"
    with db.session(user_id=7, context={"lang": "fr"}) as session:
        sync = outcome(lambda: jobs.noop.delay(session, *args, **options))

    async def delay_async() -> str:
        async with db.session_async(user_id=7, context={"lang": "fr"}) as session:
            return await jobs.noop.delay_async(session, *args, **options)
    if "identity_key" in options:
        options["identity_key"] += "-async"
    asynchronous = outcome(lambda: run(delay_async))
    assert sync[0] == asynchronous[0], (sync, asynchronous)
    if sync[0] != "ok":
        assert sync[1] == asynchronous[1]
        return
    first, second = stored(db, sync[1]), stored(db, asynchronous[1])
    assert comparable(first) == comparable(second)
    assert (first["identity_key"] is None) == (second["identity_key"] is None)


def test_identity_keys_and_debounce_hold_as_in_delay(db):
    async def body() -> tuple[Any, ...]:
        async with db.session_async() as session:
            first = await jobs.noop.delay_async(session, "m", 1, identity_key="key")
            again = await jobs.noop.delay_async(session, "m", 2, identity_key="key")
            many = await jobs.noop.delay_many_async(
                session, [("m", 3), {"args": ("m", 4), "identity_key": "key"},
                          {"args": ("m", 5), "identity_key": "other"}])
        async with db.session_async() as session:
            later = await jobs.noop.delay_async(session, "m", 6, identity_key="key")
            bounced = await jobs.noop.delay_async(session, "m", 7, identity_key="late",
                                                  debounce=60)
            rebounced = await jobs.noop.delay_async(session, "m", 8, identity_key="late",
                                                    debounce=60)
        return first, again, many, later, bounced, rebounced
    first, again, many, later, bounced, rebounced = run(body)
    assert again == first == later == many[1]
    assert len({first, many[0], many[2]}) == 3
    assert bounced == rebounced
    args = str(stored(db, bounced)["args"])
    assert "8" in args and "7" not in args
    assert len(job_rows(db)) == 4  # key, (m, 3), other, late


def test_a_graph_is_stored_whole_by_delay_async(db):
    async def body() -> Any:
        async with db.session_async() as session:
            graph = queuejob.chain(
                jobs.noop.delayable(session, "m", 1),
                queuejob.group(jobs.noop.delayable(session, "m", 2),
                               jobs.noop.delayable(session, "m", 3)),
                jobs.noop.delayable(session, "m", 4))
            return await graph.delay_async()
    graph = run(body)
    rows = job_rows(db)
    assert len(rows) == 4 and len({row["graph_uuid"] for row in rows}) == 1
    assert sorted(row["state"] for row in rows) == ["pending"] + ["wait_dependencies"] * 3
    assert all(delayable.uuid for delayable in graph.graph())
    with ThreadWorker(db, channels="root:4", poll_interval=0.05):
        wait_until(lambda: {row["state"] for row in job_rows(db)} == {"done"}, timeout=30,
                   message="the graph done")


def test_manual_actions_have_async_forms(db):
    with db.session() as session:
        failed = jobs.noop.delay(session, "m")
        waiting = jobs.noop.delay(session, "m", 2)
    with db.transaction() as conn:  # as a worker leaves a failed job
        db.connector.execute_sql(conn, "UPDATE queue_job SET state = 'failed' WHERE uuid = "
                                 + ("?" if db.dialect == "sqlite" else "%s"), (failed,))

    async def body() -> None:
        async with db.session_async(context={"user": "ann"}) as session:
            assert await queuejob.requeue_async(session, failed) == [failed]
            assert await queuejob.cancel_async(session, waiting) == [waiting]
        async with db.session_async() as session:
            with pytest.raises(queuejob.JobStateError, match="cannot cancel job"):
                await queuejob.cancel_async(session, waiting)  # cancelled already
        async with db.session_async(context={"user": "ann"}) as session:
            assert await queuejob.set_done_async(session, failed) == [failed]
    run(body)
    assert stored(db, failed)["state"] == "done"
    assert stored(db, failed)["result"] == "Manually set to done by ann"
    assert stored(db, waiting)["state"] == "cancelled"
    assert stored(db, waiting)["result"] == "Cancelled by ann"


def test_edit_async_changes_a_pending_job(db):
    with db.session() as session:
        pending = jobs.noop.delay(session, "m")

    async def body() -> None:
        async with db.session_async() as session:
            await queuejob.operations.edit_async(session, pending, priority=3,
                                                 channel="root.export")
    run(body)
    assert (stored(db, pending)["priority"], stored(db, pending)["channel"]) == \
        (3, "root.export")


# -- the session's own transaction ----------------------------------------------------------
def test_the_jobs_and_the_rows_of_a_session_commit_together_or_not_at_all(db):
    app_table(db)
    mark = "?" if db.dialect == "sqlite" else "%s"

    async def body() -> str:
        async with db.session_async() as session:
            await session.execute(f"INSERT INTO signup (email) VALUES ({mark})", ("ann@x",))
            kept = await jobs.noop.delay_async(session, "m", "ann")
        with contextlib.suppress(RuntimeError):
            async with db.session_async() as session:
                await jobs.noop.delay_async(session, "m", "bob", identity_key="bob")
                await session.execute(f"INSERT INTO signup (email) VALUES ({mark})",
                                      ("bob@x",))
                await jobs.noop.delay_async(session, "m", "bob")
                raise RuntimeError("the endpoint fails after both writes")
        return kept
    kept = run(body)
    assert [row["uuid"] for row in job_rows(db)] == [kept]
    assert signups(db) == ["ann@x"]


def test_jobs_are_written_in_the_applications_async_transaction(db, db_url):
    app_table(db)

    async def body() -> str:
        if db.dialect == "postgresql":
            conn = await psycopg.AsyncConnection.connect(db_url)
        else:
            conn = sqlite3.connect(db.connector.path, check_same_thread=False)
        try:
            async with db.session_async(connection=conn) as session:
                kept = await jobs.noop.delay_async(session, "m", "kept")
                await jobs.noop.delay_many_async(session, [("m", 1), ("m", 2)])
            await maybe_await(conn.commit())
            async with db.session_async(connection=conn) as session:
                await jobs.noop.delay_async(session, "m", "dropped")
                with pytest.raises(RuntimeError, match="the application commits it"):
                    await session.commit()
            # nothing is visible to others before the application commits
            assert len(job_rows(db)) == 3
            await maybe_await(conn.rollback())
            return kept
        finally:
            await maybe_await(conn.close())
    kept = run(body)
    rows = job_rows(db)
    assert kept in [row["uuid"] for row in rows]
    assert len(rows) == 3 and not any("dropped" in str(row["args"]) for row in rows)


async def maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


# -- cancellation ----------------------------------------------------------------------------
@pytest.mark.parametrize("cancel_after", [0.0, 0.001, 0.003, 0.01, 0.03])
def test_a_cancelled_task_leaves_no_half_written_jobs(db, cancel_after):
    """A task cancelled at any moment of a session that delays 60 jobs (identity keys: a
    statement each; then a commit) leaves all of them or none, and the pool serves the
    next session."""
    async def delay_all(tag: str) -> None:
        async with db.session_async() as session:
            for number in range(30):
                await jobs.noop.delay_async(session, "m", tag, number,
                                            identity_key=f"{tag}{number}")
            await jobs.noop.delay_many_async(session, [("m", tag, n) for n in range(30)])

    async def body() -> None:
        for attempt in range(4):
            task = asyncio.create_task(delay_all(f"{cancel_after}-{attempt}"))
            await asyncio.sleep(cancel_after * attempt)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=30)
        # the connections given back work: a full session after the cancellations
        await delay_all("after")
    run(body)
    counts: dict[str, int] = {}
    for row in job_rows(db):
        args = json.loads(row["args"]) if isinstance(row["args"], str) else row["args"]
        counts[args[1]] = counts.get(args[1], 0) + 1
    assert counts.pop("after") == 60
    assert all(count == 60 for count in counts.values()), counts


def test_wait_async_returns_the_outcome_and_can_be_cancelled(db):
    with db.session() as session:
        done = jobs.add.delay(session, "m", 2, 3)
        never = jobs.noop.delay(session, "m", eta=3600)

    def waiters() -> int:
        with db.session() as session:
            return int(session.execute("SELECT count(*) FROM queue_job_waiter").fetchone()[0])

    async def body() -> Any:
        task = asyncio.create_task(db.wait_async(never, timeout=60))
        await asyncio.sleep(0.2)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)
        assert waiters() == 0  # the cancelled wait took its waiter row away
        with pytest.raises(TimeoutError, match="still pending"):
            await db.wait_async(never, timeout=0.3)
        with pytest.raises(queuejob.NoSuchJobError):
            await db.wait_async("0" * 32, timeout=1)
        waiting = asyncio.create_task(db.wait_async(done, timeout=60))
        with ThreadWorker(db, channels="root:2", poll_interval=0.05):
            return await asyncio.wait_for(waiting, timeout=60)
    status = run(body)
    assert (status.state, status.result) == ("done", "5")
    assert waiters() == 0


# -- misuse ------------------------------------------------------------------------------------
def test_misuse_gets_a_clear_error(db, db_url):
    async def body() -> None:
        with db.session() as sync_session:
            with pytest.raises(TypeError, match=r"takes a session of db\.session_async"):
                await jobs.noop.delay_async(sync_session, "m")
            with pytest.raises(TypeError, match=r"takes a session of db\.session_async"):
                await jobs.noop.delay_many_async(sync_session, [("m",)])
            with pytest.raises(TypeError, match=r"takes a session of db\.session_async"):
                await queuejob.cancel_async(sync_session, "0" * 32)
            with pytest.raises(TypeError, match="call delay"):
                await queuejob.chain(jobs.noop.delayable(sync_session, "m")).delay_async()
        async with db.session_async() as session:
            with pytest.raises(TypeError, match=r"await fn\.delay_async"):
                jobs.noop.delay(session, "m")
            with pytest.raises(TypeError, match="delay_many_async"):
                jobs.noop.delay_many(session, [("m",)])
            with pytest.raises(TypeError, match="requeue_async"):
                queuejob.requeue(session, "0" * 32)
            with pytest.raises(TypeError, match="delay_async"):
                queuejob.chain(jobs.noop.delayable(session, "m")).delay()
            with pytest.raises(TypeError, match="priority"):
                await jobs.noop.delay_async(session, "m", priority="high")
        with pytest.raises(RuntimeError, match="session is closed"):
            await jobs.noop.delay_async(session, "m")
        with pytest.raises(TypeError, match="context must be a dict"):
            async with db.session_async(context=["no"]):
                pass
        if db.dialect == "postgresql":
            sync_conn = psycopg.connect(db_url)
            with pytest.raises(TypeError, match="synchronous connection"):
                async with db.session_async(connection=sync_conn):
                    pass
            sync_conn.close()
            closed = await psycopg.AsyncConnection.connect(db_url)
            await closed.close()
            with pytest.raises(ValueError, match="connection is closed"):
                async with db.session_async(connection=closed):
                    pass
        else:
            with pytest.raises(TypeError, match="this database is SQLite"):
                async with db.session_async(connection=object()):
                    pass
    run(body)
    assert job_rows(db) == []


# -- never blocks the loop -----------------------------------------------------------------------
@contextlib.contextmanager
def pressure(db_url: str, env: dict[str, str]) -> Iterator[None]:
    """tests/async_pressure.py beside the test: the database makes every writer wait 20
    ms out of 40 (a client that waited for it on the event loop's thread would stall the
    loop that long), and the jobs described "waited" are set done."""
    process = subprocess.Popen([sys.executable, "-m", "tests.async_pressure", db_url],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env=env, cwd=ROOT)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        code = process.wait(30)
        process.stdout.close()
        assert code == 0


def describe_callback(handle: asyncio.events.Handle) -> str:
    """A callback, and for a task's step where its coroutine stands now."""
    owner = getattr(handle._callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coroutine = owner.get_coro()
        frame = getattr(coroutine, "cr_frame", None)
        where = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame else ""
        return f"{handle!r}: {coroutine!r}{where}"
    return repr(handle)


def run_delay() -> float:
    """Seconds this thread has waited for a CPU (the machine was busy, not the thread)."""
    with open("/proc/thread-self/schedstat") as stat:
        return int(stat.read().split()[1]) / 1e9


def sleeps() -> int:
    """How many times this thread has left its CPU to wait for something (a lock, I/O,
    the interpreter's lock held by another thread): voluntary context switches."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def held_for(run: Any, handle: asyncio.events.Handle) -> float:
    """Seconds ``run(handle)``, a callback of the loop, held the loop's thread: when it waited for
    something, its wall time less the time it waited for a CPU; when it never did, the
    CPU time it used (a virtual CPU paused by its host adds wall time to whatever runs,
    not CPU time: pauses of 5-8 ms were seen here in callbacks that use a tenth of one)."""
    began, waited, slept, used = time.perf_counter(), run_delay(), sleeps(), time.thread_time()
    run(handle)
    if sleeps() > slept:
        return time.perf_counter() - began - (run_delay() - waited)
    return time.thread_time() - used


def test_fifty_tasks_enqueue_two_thousand_jobs_and_wait_without_stalling_the_loop(
        db, db_url, job_env, monkeypatch):
    """50 tasks enqueue 2,000 jobs (one, a few, or forty per session) and wait for some
    of them, while the database makes every writer wait. Every callback the event loop
    runs is timed (``held_for``: less the time the operating system or the host kept the
    thread off a CPU; two cores, shared with the database server): none may hold the
    loop more than 5 ms. The
    pressure comes from another process, so that the only other threads of this one are
    queuejob's."""
    stalls: list[tuple[float, str]] = []
    run_callback = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        held = held_for(run_callback, handle)
        if held > 0.005:
            stalls.append((held, describe_callback(handle)))
    monkeypatch.setattr(asyncio.events.Handle, "_run", timed)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # queuejob's SQLite threads hand the GIL back quickly
    # what is measured is the loop waiting for I/O and locks, not the collector: no
    # collection of the test process's garbage meanwhile
    gc.collect()
    gc.disable()

    async def task(number: int) -> list[str]:
        uuids = []
        for batch in range(4):
            async with db.session_async(user_id=number) as session:
                if batch == 0:
                    uuids.append(await jobs.noop.delay_async(
                        session, "m", number, description="waited"))
                    uuids += [await jobs.noop.delay_async(session, "m", number, n)
                              for n in range(9)]
                elif batch == 1:
                    uuids += [await jobs.noop.delay_async(
                        session, "m", number, n, identity_key=f"{number}-{n}")
                        for n in range(5)]
                else:
                    uuids += await jobs.noop.delay_many_async(
                        session, [("m", number, n) for n in range(10 if batch == 2 else 15)])
        status = await db.wait_async(uuids[0], timeout=120)
        assert status.state == "done"
        return uuids

    async def body() -> list[list[str]]:
        # the pool's connections opened before: connecting is the pool's own work
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(10):
                await stack.enter_async_context(db.session_async())
        results = await asyncio.gather(*(task(number) for number in range(50)))
        await db.close_async()
        return results

    try:
        with pressure(db_url, job_env):
            results = run(body)
    finally:
        sys.setswitchinterval(switch)
        gc.enable()
    assert stalls == []
    assert sum(len(uuids) for uuids in results) == 2_000
    assert len(job_rows(db)) == 2_000
    assert sum(row["state"] == "done" for row in job_rows(db)) >= 50


def test_wait_async_streams_progress_reports(db, tmp_path):
    from queuejob.core.progress import Progress
    gate = tmp_path / "gate"
    with db.session() as session:
        uuid = jobs.progressing.delay(session, "m", 2, gate=str(gate))
    seen: list[Progress] = []

    async def body() -> queuejob.database.JobStatus:
        waiting = asyncio.create_task(db.wait_async(uuid, timeout=60, on_progress=seen.append))
        for _ in range(1500):  # the first report heard (at most 30 s)
            if Progress(1, 2, "step 1 of 2") in seen or waiting.done():
                break
            await asyncio.sleep(0.02)
        gate.touch()
        return await asyncio.wait_for(waiting, timeout=60)
    with ThreadWorker(db, poll_interval=0.05):
        status = run(body)
    assert seen[0] == Progress(1, 2, "step 1 of 2") and seen[-1] == Progress(2, 2, "step 2 of 2")
    assert status.state == "done" and status.progress == Progress(2, 2, "step 2 of 2")


# -- what the review of the first version found ----------------------------------------------
def test_a_session_cancelled_again_and_again_ends_whole_and_frees_the_database(db, db_url):
    """anyio's cancel scopes (FastAPI's timeouts) cancel a task again at every await, its
    session's end included: the end still runs to its end. No transaction stays open
    (another connection writes at once), SQLite's turn to write is given back (the next
    session of the loop writes), and the session's jobs are all stored or none."""
    import anyio

    async def delay_keyed(tag: str, count: int) -> None:
        async with db.session_async() as session:
            for number in range(count):
                await jobs.noop.delay_async(session, "m", tag, number,
                                            identity_key=f"{tag}-{number}")

    async def body() -> None:
        for attempt in range(4):
            with anyio.move_on_after(0.005 * (attempt + 1)):
                await delay_keyed(f"cancelled{attempt}", 200)
        with anyio.fail_after(20):  # the loop's next session writes
            await delay_keyed("after", 3)
        await db.close_async()
    anyio.run(body)
    counts: dict[str, int] = {}
    for row in job_rows(db):
        args = json.loads(row["args"]) if isinstance(row["args"], str) else row["args"]
        counts[args[1]] = counts.get(args[1], 0) + 1
    assert counts.pop("after") == 3
    assert all(count == 200 for count in counts.values()), counts
    with db.session() as session:  # nothing holds a lock the cancelled sessions took
        kept = jobs.noop.delay(session, "m", "sync", identity_key="sync")
    assert stored(db, kept)["state"] == "pending"


def test_a_session_shared_by_tasks_stores_nothing_once_its_block_failed(db):
    """One task fails inside the block while another still delays jobs in the same
    session: the block rolls back, and the other task's later calls are refused rather
    than written after the rollback."""
    refused: list[str] = []

    async def failing(session: Any) -> None:
        await jobs.noop.delay_async(session, "m", "a", identity_key="a")
        await asyncio.sleep(0.01)
        raise RuntimeError("the endpoint fails")

    async def busy(session: Any) -> None:
        try:
            for number in range(200):
                await jobs.noop.delay_async(session, "m", "b", number,
                                            identity_key=f"b{number}")
                await asyncio.sleep(0)
        except RuntimeError as exc:
            refused.append(str(exc))

    async def body() -> None:
        other = None
        with contextlib.suppress(RuntimeError):
            async with db.session_async() as session:
                other = asyncio.create_task(busy(session))
                await failing(session)
        assert other is not None
        await asyncio.wait_for(other, timeout=30)
        await db.close_async()
    run(body)
    assert job_rows(db) == []
    assert len(refused) == 1 and refused[0].endswith("this session is closed")


def test_a_pool_closed_under_an_open_session_takes_its_connection_back_closed(db):
    """close_async (or the end of the loop) while a session still holds a connection:
    the session ends without an error of its own, and its connection is closed, not
    put in a pool that is gone."""
    async def body() -> str:
        async with db.session_async() as session:
            job_uuid = await jobs.noop.delay_async(session, "m", identity_key="k")
            await db.close_async()
        return job_uuid
    job_uuid = run(body)
    assert [row["uuid"] for row in job_rows(db)] == [job_uuid]


def test_more_misuse_gets_a_clear_error(db, monkeypatch):
    async def body() -> None:
        opening = db.session_async()
        async with opening:
            with pytest.raises(RuntimeError, match="entered already"):
                async with opening:
                    pass
        async with db.session_async() as session:
            with pytest.raises(TypeError, match="batches are not available"):
                queuejob.batch(session, "nightly")
            monkeypatch.setenv("QUEUE_JOB__NO_DELAY", "1")
            with pytest.raises(TypeError, match=r"not in a session of db\.session_async"):
                await jobs.noop.delay_async(session, "m")
            monkeypatch.delenv("QUEUE_JOB__NO_DELAY")
        if db.dialect == "sqlite":
            closed = sqlite3.connect(db.connector.path, check_same_thread=False)
            closed.close()
            with pytest.raises(ValueError, match="connection is closed"):
                async with db.session_async(connection=closed):
                    pass
        await db.close_async()
    run(body)
    assert job_rows(db) == []
