"""Flow control as the faces show it: each rate with the starts of its window, the
busiest keys of keyed and fair channels, in ``operations.channels()``, the command line
(``queuejob channels``, ``--json``, ``channels set --rate --key-capacity --fair``) and
the Prometheus metrics, on SQLite and PostgreSQL. Bad stored values cost their row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

import queuejob
from queuejob import metrics, operations
from queuejob.cli import output
from queuejob.cli.app import cli
from queuejob.store import reads
from tests import jobs
from tests.helpers import ROOT
from tests.reliability.common import sql

ENV_DB = "QUEUEJOB_DATABASE_URL"


# -- helpers ------------------------------------------------------------------------------------
def add_starts(db: queuejob.Database, channel: str, count: int, ago: float) -> None:
    """``count`` starts of a rate-limited channel, ``ago`` seconds ago (as claims log
    them)."""
    for _ in range(count):
        if db.dialect == "sqlite":
            sql(db, "INSERT INTO queue_rate_start (channel, started_at) VALUES (?, ?)",
                (channel, time.time() - ago))
        else:
            sql(db, "INSERT INTO queue_rate_start (channel, started_at) "
                    "VALUES (?, now() - make_interval(secs => ?))", (channel, ago))


def keyed_jobs(db: queuejob.Database, channel: str, key: str, count: int,
               started: int = 0) -> list[str]:
    """``count`` jobs of ``key`` in ``channel``, the first ``started`` of them running."""
    with db.session() as session:
        uuids = [jobs.noop.delay(session, "m", channel=channel, concurrency_key=key)
                 for _ in range(count)]
    for uuid in uuids[:started]:
        sql(db, "UPDATE queue_job SET state = 'started', worker_id = 'w1' WHERE uuid = ?",
            (uuid,))
    return uuids


def entry(db: queuejob.Database, name: str) -> dict:
    return next(item for item in operations.channels(db) if item["name"] == name)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m queuejob ARGS`` as a real process (no database URL of the caller's)."""
    env = {key: value for key, value in os.environ.items() if key != ENV_DB}
    return subprocess.run([sys.executable, "-m", "queuejob", *args], check=False, cwd=ROOT,
                          env={**env, "COLUMNS": "250"}, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def invoke(monkeypatch):
    """A command run in-process (wide output); asserts its exit code."""
    monkeypatch.setattr(output, "console", Console(highlight=False, width=250))
    monkeypatch.delenv(ENV_DB, raising=False)

    def run(*args: str, exit_code: int = 0):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == exit_code, (result.stdout, result.stderr)
        return result
    return run


@pytest.fixture
def scene(db):
    """root.crm: 4, 100/m, 2 per key (jobs of its subchannel root.crm.eu count against
    it); root.fair: fair turns; root.plain: none of these. Keys running and waiting,
    37 starts in root.crm's window and 5 older ones."""
    operations.set_channel(db, "root.crm", 4, rate="100/m", key_capacity=2)
    operations.set_channel(db, "root.fair", fair=True)
    operations.set_channel(db, "root.plain", 3)
    keyed_jobs(db, "root.crm", "acme", 5, started=2)
    keyed_jobs(db, "root.crm.eu", "acme", 2, started=1)   # the subtree counts
    keyed_jobs(db, "root.crm", "globex", 4, started=1)
    keyed_jobs(db, "root.crm", "initech", 1)
    keyed_jobs(db, "root.crmx", "acme", 9, started=3)     # other channels: not counted
    keyed_jobs(db, "root.crm-x", "acme", 2, started=2)
    keyed_jobs(db, "root.fair", "tenant-b", 2, started=1)
    keyed_jobs(db, "root.fair", "tenant-a", 6)
    keyed_jobs(db, "root.plain", "unused", 2, started=1)
    with db.session() as session:
        jobs.noop.delay(session, "m", channel="root.crm")  # no key: not a key's
    add_starts(db, "root.crm", 37, ago=5)
    add_starts(db, "root.crm", 5, ago=600)   # out of the window, not yet pruned
    add_starts(db, "root.other", 3, ago=1)   # another channel's
    return db


# -- the read models -------------------------------------------------------------------------
def test_channels_count_each_rates_window_and_the_busiest_keys(scene):
    db = scene
    crm = entry(db, "root.crm")
    assert (crm["rate"], crm["rate_used"], crm["key_capacity"], crm["fair"]) == (
        "100/m", 37, 2, False)
    # acme: 2 running in root.crm and 1 in root.crm.eu; root.crmx is not its subtree
    assert crm["busiest_keys"] == [{"key": "acme", "running": 3},
                                   {"key": "globex", "running": 1}]
    assert crm["waiting_keys"] == [{"key": "acme", "pending": 4},
                                   {"key": "globex", "pending": 3},
                                   {"key": "initech", "pending": 1}]
    assert not crm["busiest_keys_partial"] and not crm["waiting_keys_partial"]
    fair = entry(db, "root.fair")
    assert fair["fair"] and fair["rate_used"] is None
    assert fair["busiest_keys"] == [{"key": "tenant-b", "running": 1}]
    assert fair["waiting_keys"] == [{"key": "tenant-a", "pending": 6},
                                    {"key": "tenant-b", "pending": 1}]
    # neither keyed nor fair, nor rate-limited: nothing counted
    plain = entry(db, "root.plain")
    assert (plain["rate_used"], plain["busiest_keys"], plain["waiting_keys"]) == (None, [], [])
    # a subchannel without rules of its own shows none of its ancestor's counts
    assert entry(db, "root.crm.eu")["busiest_keys"] == []


def test_the_keys_are_the_top_ten_and_their_count_is_bounded(db, monkeypatch):
    operations.set_channel(db, "root.crm", key_capacity=1)
    for index in range(14):
        keyed_jobs(db, "root.crm", f"k{index:02}", 1 + index % 4, started=1)
    crm = entry(db, "root.crm")
    assert len(crm["busiest_keys"]) == len(crm["waiting_keys"]) == reads.TOP_KEYS
    assert [item["pending"] for item in crm["waiting_keys"]] == sorted(
        (item["pending"] for item in crm["waiting_keys"]), reverse=True)
    assert crm["waiting_keys"][0] == {"key": "k03", "pending": 3}
    # past KEY_SCAN jobs, the count reads no further (keys in key order) and says so
    monkeypatch.setattr(reads, "KEY_SCAN", 5)
    crm = entry(db, "root.crm")
    assert crm["waiting_keys_partial"] and crm["busiest_keys_partial"]
    assert sum(item["pending"] for item in crm["waiting_keys"]) == 5
    assert {item["key"] for item in crm["waiting_keys"]} <= {"k00", "k01", "k02", "k03",
                                                             "k04", "k05"}


def test_rules_declared_by_live_workers_are_counted_too(db):
    db.run(lambda conn: db.store.register_worker(
        conn, "w1", "host", 1, "root:4,root.mail:2:rate=10/m:key_capacity=1"))
    keyed_jobs(db, "root.mail", "bob", 2, started=1)
    add_starts(db, "root.mail", 4, ago=1)
    mail = entry(db, "root.mail")
    assert mail["source"] == "workers"
    assert (mail["rate"], mail["rate_used"]) == ("10/m", 4)
    assert mail["busiest_keys"] == [{"key": "bob", "running": 1}]


# -- the command line --------------------------------------------------------------------------
def test_channels_set_takes_the_flow_options_and_the_table_shows_them(scene, invoke):
    db = scene
    result = invoke("channels", "set", "root.crm", "4", "--rate", "100/m",
                    "--key-capacity", "2", "--fair", "--db", db.url)
    assert result.stdout.strip() == ("channel root.crm: capacity 4, rate 100/m, "
                                     "key capacity 2, fair")
    stored = entry(db, "root.crm")
    assert (stored["rate"], stored["key_capacity"], stored["fair"]) == ("100/m", 2, True)
    table = invoke("channels", "--db", db.url).stdout
    line = next(line for line in table.splitlines() if line.strip().startswith("root.crm "))
    assert "rate 100/m (37 used), key capacity 2, fair" in line
    fair = next(line for line in table.splitlines() if line.strip().startswith("root.fair "))
    assert "fair" in fair and "rate" not in fair
    # every field as JSON, the keys included
    listed = {item["name"]: item for item in json.loads(
        invoke("channels", "--json", "--db", db.url).stdout)}
    crm = listed["root.crm"]
    assert (crm["rate"], crm["rate_used"], crm["key_capacity"], crm["fair"]) == (
        "100/m", 37, 2, True)
    assert crm["busiest_keys"][0] == {"key": "acme", "running": 3}
    assert crm["waiting_keys"][0] == {"key": "acme", "pending": 4}
    assert listed["root.fair"]["waiting_keys"][0] == {"key": "tenant-a", "pending": 6}
    # set again without them: the options not given are reset, as the others are
    invoke("channels", "set", "root.crm", "4", "--db", db.url)
    stored = entry(db, "root.crm")
    assert (stored["rate"], stored["key_capacity"], stored["fair"]) == (None, None, False)


@pytest.mark.parametrize(("args", "said"), [
    (["--rate", "100"], "bad --rate '100': N/s, N/m or N/h is needed"),
    (["--rate", "100/d"], "bad --rate '100/d'"),
    (["--rate", "fast"], "bad --rate 'fast'"),
    (["--rate", "9" * 5000 + "/m"], "bad --rate"),
    (["--rate", "0/m"], "a rate's number of jobs must be a whole number from 1"),
    (["--rate", "99999999999/m"], "a rate's number of jobs must be a whole number from 1"),
    (["--key-capacity", "0"], "--key-capacity"),
    (["--key-capacity", "two"], "--key-capacity"),
    (["--key-capacity", "2147483648"], "--key-capacity"),
    (["--fair", "--sequential"], "cannot be fair"),
])
def test_bad_flow_options_are_refused_in_one_line(db, args, said):
    operations.set_channel(db, "root.crm", 2, rate="5/s")
    proc = run_cli("channels", "set", "root.crm", "1", *args, "--db", db.url)
    where = f"exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}"
    assert proc.returncode != 0, where
    assert "Traceback" not in proc.stderr, where
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("queuejob: error: "), where
    assert said in lines[0], where
    assert len(lines[0]) < 400, where
    # nothing stored
    stored = entry(db, "root.crm")
    assert (stored["capacity"], stored["rate"]) == (2, "5/s")


# -- metrics ------------------------------------------------------------------------------------
def test_metrics_of_rates_and_keys(scene, invoke):
    db = scene
    text = metrics.render(db).decode()
    found = samples(text)
    assert found[("queuejob_channel_rate_limit", (("channel", "root.crm"),))] == \
        pytest.approx(100 / 60)
    assert found[("queuejob_channel_rate_used", (("channel", "root.crm"),))] == 37
    running = {(labels[0][1], labels[1][1]): value for (name, labels), value in found.items()
               if name == "queuejob_channel_key_running"}
    assert running == {("root.crm", "acme"): 3, ("root.crm", "globex"): 1,
                       ("root.fair", "tenant-b"): 1}
    pending = {(labels[0][1], labels[1][1]): value for (name, labels), value in found.items()
               if name == "queuejob_channel_key_pending"}
    assert pending == {("root.crm", "acme"): 4, ("root.crm", "globex"): 3,
                       ("root.crm", "initech"): 1, ("root.fair", "tenant-a"): 6,
                       ("root.fair", "tenant-b"): 1}
    for name in ("queuejob_channel_rate_limit", "queuejob_channel_rate_used",
                 "queuejob_channel_key_running", "queuejob_channel_key_pending"):
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text
    # the command prints the same
    printed = samples(invoke("metrics", "--db", db.url).stdout)
    assert {key: value for key, value in printed.items() if "channel_key" in key[0]
            or "rate" in key[0]} == {key: value for key, value in found.items()
                                     if "channel_key" in key[0] or "rate" in key[0]}


def test_key_labels_are_bounded_and_escaped(db):
    operations.set_channel(db, "root.crm", key_capacity=1)
    for index in range(25):
        keyed_jobs(db, "root.crm", f"tenant {index:02}", 2, started=1)
    evil = 'a"b\\c{x="y"},z'  # quotes, a backslash, braces, a comma: escaped
    keyed_jobs(db, "root.crm", evil, 30)
    found = samples(metrics.render(db).decode())
    running = [labels for (name, labels) in found if name == "queuejob_channel_key_running"]
    pending = {dict(labels)["key"]: value for (name, labels), value in found.items()
               if name == "queuejob_channel_key_pending"}
    assert len(running) == reads.TOP_KEYS
    assert len(pending) == reads.TOP_KEYS and pending[evil] == 30


# -- bad stored values --------------------------------------------------------------------------
def _garbage(db: queuejob.Database) -> None:
    """Rows written by hand or by another tool: each costs its own row."""
    for name in ("root.bad-rate", "root.bad-period", "root.bad-key", "root.half-rate"):
        operations.set_channel(db, name, 2)
    if db.dialect == "sqlite":
        sql(db, "UPDATE queue_channel SET rate_limit = 'many', rate_period = 60 "
                "WHERE name = 'root.bad-rate'")
        sql(db, "UPDATE queue_channel SET key_capacity = 'x' WHERE name = 'root.bad-key'")
        sql(db, "UPDATE queue_channel SET fair = 7 WHERE name = 'root.half-rate'")
    else:
        sql(db, "UPDATE queue_channel SET rate_limit = 2147483647, rate_period = 61 "
                "WHERE name = 'root.bad-rate'")
        sql(db, "UPDATE queue_channel SET key_capacity = 2147483647 WHERE name = 'root.bad-key'")
        sql(db, "UPDATE queue_channel SET rate_limit = 5 WHERE name = 'root.half-rate'")
    sql(db, "UPDATE queue_channel SET rate_limit = 3, rate_period = 7 "
            "WHERE name = 'root.bad-period'")
    uuids = keyed_jobs(db, "root.crm", "plain", 6, started=3)
    control = "\x1b[31mred\x07 \u202etxt"
    sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?", (control, uuids[0]))
    sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?", (control, uuids[3]))
    if db.dialect == "sqlite":
        sql(db, "UPDATE queue_job SET concurrency_key = X'FF00FE' WHERE uuid = ?",
            (uuids[1],))
        sql(db, "UPDATE queue_job SET concurrency_key = 42 WHERE uuid = ?", (uuids[4],))
        sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?",
            ("k" * 1_000_000, uuids[5]))
        sql(db, "INSERT INTO queue_rate_start (channel, started_at) VALUES "
                "('root.crm', 'yesterday'), ('root.crm', X'00'), (X'FF', 5)")
    else:
        sql(db, "UPDATE queue_job SET concurrency_key = ? WHERE uuid = ?",
            ("k" * 255, uuids[5]))


def test_bad_stored_values_cost_only_their_row(db, invoke):
    operations.set_channel(db, "root.crm", 4, rate="10/s", key_capacity=2)
    _garbage(db)
    control = "\x1b[31mred\x07 \u202etxt"
    listed = {item["name"]: item for item in operations.channels(db)}
    if db.dialect == "sqlite":
        assert "stored configuration not used" in listed["root.bad-rate"]["problem"]
        assert "stored configuration not used" in listed["root.bad-key"]["problem"]
        assert "stored configuration not used" in listed["root.half-rate"]["problem"]
    else:
        assert "stored configuration not used" in listed["root.bad-rate"]["problem"]
        assert "a rate needs both" in listed["root.half-rate"]["problem"]
        assert listed["root.bad-key"]["key_capacity"] == 2147483647
    assert "stored configuration not used" in listed["root.bad-period"]["problem"]
    crm = listed["root.crm"]
    assert crm["rate"] == "10/s" and isinstance(crm["rate_used"], int)
    keys = {str(item["key"])[:20]: item["running"] for item in crm["busiest_keys"]}
    assert keys[control] == 1 and keys["plain"] >= 1
    if db.dialect == "sqlite":
        long_key = next(item["key"] for item in crm["waiting_keys"]
                        if str(item["key"]).startswith("kkk"))
        assert len(long_key) <= 4 * reads.LISTED_READ   # read cut, never whole
    # the table, its JSON and the metrics hold, escaped
    table = invoke("channels", "--db", db.url).stdout
    assert "root.bad-period" in table and "stored configuration not used" in table
    assert "\x1b" not in table
    listed_json = json.loads(invoke("channels", "--json", "--db", db.url).stdout)
    assert any(item["name"] == "root.crm" for item in listed_json)
    text = metrics.render(db).decode()
    assert "\x1b" not in text and "\x07" not in text
    found = samples(text)
    keys = {dict(labels)["key"] for (name, labels) in found
            if name == "queuejob_channel_key_running"}
    assert metrics.label(control) in keys
    assert all(len(key) <= metrics.MAX_LABEL for (name, labels) in found
               for key in (dict(labels).get("key", ""),))
    assert found[("queuejob_channel_rate_limit", (("channel", "root.crm"),))] == 10
    assert ("queuejob_channel_rate_limit", (("channel", "root.bad-period"),)) not in found
