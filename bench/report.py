"""Measurements -> results.json, results.md and throughput.png.

    python -m bench.report bench/results/results.json     # rewrite the .md and .png

``write()`` is called by ``bench.compare`` at the end of a run. Every cell is the median
over the rounds with the min-max spread; a ratio of queuejob to another system is
computed round by round (both measured in the same round of the same run), and reported
as the ratio of the medians with the per-round min-max.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

FIELDS = ("jobs_per_s", "drain_jobs_per_s", "startup_s", "p50_ms", "p99_ms", "mean_ms",
          "enqueue_call_p50_ms", "rss_ratio", "peak_rss_kib", "seconds", "prefill_s",
          "insert_finished_s", "cpu_us_per_job", "worker_cpu_us_per_job",
          "server_cpu_us_per_job")

QJ_PG, QJ_SQLITE = "queuejob-postgresql", "queuejob-sqlite"
QJ_PG8, QJ_SQLITE8 = "queuejob-postgresql-root8", "queuejob-sqlite-root8"
QJ_SQLITE_FULL = "queuejob-sqlite-full"
QJ_PG_ASYNC = "queuejob-postgresql-async"
QUEUEJOB = (QJ_SQLITE, QJ_SQLITE8, QJ_SQLITE_FULL, QJ_PG, QJ_PG8, QJ_PG_ASYNC)
#: the asyncio peers on PostgreSQL, whose enqueue calls are async like delay_async
ASYNC_PEERS = ("procrastinate", "pgqueuer")
PEERS_ORDER = ("procrastinate", "pgqueuer", "pgqueuer-batch500", "pgqueuer-limit8",
               "huey-sqlite", "rq", "dramatiq-redis")
DRAIN = "drain_jobs_per_s"
RATE = "jobs_per_s"
CPU = "cpu_us_per_job"

# (label, system, measure, field, other system, other measure, other field, op, threshold)
# op ">=": queuejob / other must be at least threshold (the ratio of the medians);
# "<=": at most threshold; "every>=": at least threshold in every round. The other system
# may be a tuple of systems: then, round by round, the better of them (the one that makes
# the target hardest to meet), measured in the same round.
RATIO_TARGETS = [
    ("PostgreSQL drain, 1 worker, root:8: at least 2x PGQueuer (its defaults)",
     QJ_PG8, "process_w1", DRAIN, "pgqueuer", "process_w1", DRAIN, ">=", 2.0),
    ("PostgreSQL drain, 1 worker, root:8, against PGQueuer under the same rule "
     "(concurrency_limit=8; not in the issue)",
     QJ_PG8, "process_w1", DRAIN, "pgqueuer-limit8", "process_w1", DRAIN, ">=", 2.0),
    ("CPU per job, worker + server, root:8, against PGQueuer with concurrency_limit=8 "
     "(not in the issue)",
     QJ_PG8, "process_w1", CPU, "pgqueuer-limit8", "process_w1", CPU, "<=", 0.5),
    ("PostgreSQL drain, 1 worker, root:64: at least PGQueuer with --batch-size 500",
     QJ_PG, "process_w1", DRAIN, "pgqueuer-batch500", "process_w1", DRAIN, ">=", 1.0),
    ("PostgreSQL drain, 1 worker, root:64: against PGQueuer's defaults",
     QJ_PG, "process_w1", DRAIN, "pgqueuer", "process_w1", DRAIN, ">=", 2.0),
    ("PostgreSQL drain, 1 worker: at least 20x Procrastinate",
     QJ_PG, "process_w1", DRAIN, "procrastinate", "process_w1", DRAIN, ">=", 20.0),
    ("CPU per job, worker + server, root:8: at most half PGQueuer's",
     QJ_PG8, "process_w1", CPU, "pgqueuer", "process_w1", CPU, "<=", 0.5),
    ("CPU per job, worker + server, root:64: at most half PGQueuer's",
     QJ_PG, "process_w1", CPU, "pgqueuer", "process_w1", CPU, "<=", 0.5),
    ("SQLite drain, 1 worker, root:8: at least 3x Huey (SqliteHuey) in every round",
     QJ_SQLITE8, "process_w1", DRAIN, "huey-sqlite", "process_w1", DRAIN, "every>=", 3.0),
    ("SQLite drain, 1 worker, root:64: at least 3x Huey in every round",
     QJ_SQLITE, "process_w1", DRAIN, "huey-sqlite", "process_w1", DRAIN, "every>=", 3.0),
    ("SQLite drain, 1 worker, both synchronous=FULL: at least 3x Huey",
     QJ_SQLITE_FULL, "process_w1", DRAIN, "huey-sqlite", "process_w1", DRAIN, ">=", 3.0),
    ("Enqueue one by one, PostgreSQL: at least 1.5x PGQueuer",
     QJ_PG, "enqueue_single", RATE, "pgqueuer", "enqueue_single", RATE, ">=", 1.5),
    ("Enqueue one by one, SQLite: at least 1.5x Huey",
     QJ_SQLITE, "enqueue_single", RATE, "huey-sqlite", "enqueue_single", RATE, ">=", 1.5),
    ("Enqueue one by one, SQLite, both synchronous=FULL: at least Huey's",
     QJ_SQLITE_FULL, "enqueue_single", RATE, "huey-sqlite", "enqueue_single", RATE, ">=",
     1.0),
    ("Bulk enqueue (delay_many, PostgreSQL): at least 2x PGQueuer's batch enqueue",
     QJ_PG, "enqueue_bulk", RATE, "pgqueuer", "enqueue_bulk", RATE, ">=", 2.0),
    ("Async enqueue one by one, PostgreSQL (delay_async, a transaction per job): at least "
     "1.5x the better of Procrastinate's defer_async and PGQueuer's enqueue",
     QJ_PG_ASYNC, "enqueue_single", RATE, ASYNC_PEERS, "enqueue_single", RATE, ">=", 1.5),
    ("Async bulk enqueue, PostgreSQL (delay_many_async): at least the better of "
     "Procrastinate's batch_defer_async and PGQueuer's batch enqueue",
     QJ_PG_ASYNC, "enqueue_bulk", RATE, ASYNC_PEERS, "enqueue_bulk", RATE, ">=", 1.0),
]
for _backend, _system in (("PostgreSQL", QJ_PG), ("SQLite", QJ_SQLITE)):
    RATIO_TARGETS += [
        (f"Growth, {_backend}: drain with the most finished jobs within 20% of the empty "
         "table", _system, "growth_finished_big", DRAIN, _system, "growth_empty", DRAIN,
         ">=", 0.8),
        (f"Growth, {_backend}: drain with pending jobs over many channels (issue: must not "
         "grow with the backlog; 20% as above)", _system, "growth_pending_channels", DRAIN,
         _system, "growth_empty", DRAIN, ">=", 0.8),
        (f"Channels, {_backend}: root:8,root.a:2,root.b:2,root.c:4 costs at most 30% "
         "against root:8", _system, "channels_tree", DRAIN, _system, "channels_plain", DRAIN,
         ">=", 0.7),
    ]
# (label, system, measure, field, op, threshold)
ABSOLUTE_TARGETS = [
    ("Latency p50, PostgreSQL: at most 5 ms", QJ_PG, "latency", "p50_ms", "<=", 5.0),
    ("Latency p99, PostgreSQL: at most 20 ms", QJ_PG, "latency", "p99_ms", "<=", 20.0),
    ("Latency p50, SQLite: at most 10 ms", QJ_SQLITE, "latency", "p50_ms", "<=", 10.0),
    ("Latency p99, SQLite: at most 30 ms", QJ_SQLITE, "latency", "p99_ms", "<=", 30.0),
    ("Worker RSS flat, PostgreSQL: last checkpoint within 10% of the first", QJ_PG,
     "memory", "rss_ratio", "<=", 1.10),
    ("Worker RSS flat, SQLite: last checkpoint within 10% of the first", QJ_SQLITE,
     "memory", "rss_ratio", "<=", 1.10),
]


# -- aggregation ---------------------------------------------------------------------------
def _stat(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def by_round(records: list[dict]) -> dict[tuple[str, str], dict[int, dict]]:
    """(system, measure) -> round -> the successful record."""
    found: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for record in records:
        if record.get("ok") and record.get("measure") != "system" \
                and not record.get("unsupported"):
            found[record["system"], record["measure"]][record["round"]] = record
    return found


def _values(record: dict) -> dict[str, float]:
    values = {f: record[f] for f in FIELDS if isinstance(record.get(f), int | float)}
    for checkpoint, kib in (record.get("rss_kib") or {}).items():
        if kib:
            values[f"rss_kib_{checkpoint}"] = kib
    return values


def summarize(records: list[dict]) -> dict[str, dict[str, dict[str, Any]]]:
    summary: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for (system, measure), rounds in by_round(records).items():
        fields: dict[str, list[float]] = defaultdict(list)
        for record in rounds.values():
            for name, value in _values(record).items():
                fields[name].append(value)
        entry: dict[str, Any] = {name: _stat(vals) for name, vals in fields.items()}
        entry["rounds"] = len(rounds)
        entry["capped"] = any(r.get("capped") for r in rounds.values())
        entry["jobs_done_min"] = min((r.get("jobs_done") or 0) for r in rounds.values()) \
            if any("jobs_done" in r for r in rounds.values()) else None
        summary[system][measure] = entry
    for record in records:
        if record.get("unsupported"):
            summary[record["system"]].setdefault(record["measure"], {"unsupported": True})
    return summary


def others_of(other: str | tuple[str, ...]) -> tuple[str, ...]:
    return other if isinstance(other, tuple) else (other,)


def against_label(other: str | tuple[str, ...]) -> str:
    others = others_of(other)
    return others[0] if len(others) == 1 else f"better of {', '.join(others)}"


def ratio(rounds: dict, target: tuple) -> dict[str, Any] | None:
    _label, system, measure, field, other, other_measure, other_field, op, threshold = target
    others = others_of(other)
    mine = rounds.get((system, measure), {})
    theirs = [rounds.get((name, other_measure), {}) for name in others]
    both = sorted(set(mine).intersection(*theirs))
    # the better other of each round: the one that makes the target hardest to meet
    pick = min if op == "<=" else max
    rows = []  # (round, mine, theirs, which other)
    for r in both:
        candidates = [(found[r].get(other_field), name)
                      for found, name in zip(theirs, others, strict=True)]
        if mine[r].get(field) and all(value for value, _ in candidates):
            best, name = pick(candidates)
            rows.append((r, mine[r][field], best, name))
    if not rows:
        return None
    per_round = [a / b for _, a, b, _ in rows]
    value = statistics.median(a for _, a, _, _ in rows) / statistics.median(
        b for _, _, b, _ in rows)
    met = {">=": value >= threshold, "<=": value <= threshold,
           "every>=": min(per_round) >= threshold}[op]
    found_rounds = [r for r, _, _, _ in rows]
    return {"ratio": value, "per_round": per_round, "min": min(per_round),
            "max": max(per_round), "rounds": len(rows), "met": met, "op": op,
            "threshold": threshold, "round_numbers": found_rounds,
            "against_per_round": [b for _, _, b, _ in rows],
            "better_per_round": [name for _, _, _, name in rows],
            "capped": any(mine[r].get("capped") or any(t[r].get("capped") for t in theirs)
                          for r in found_rounds)}


def targets(records: list[dict], summary: dict) -> list[dict[str, Any]]:
    rounds = by_round(records)
    out = []
    for target in RATIO_TARGETS:
        label, system, measure, field, other, other_measure, other_field, op, threshold = target
        found = ratio(rounds, target)
        if isinstance(other, tuple):  # the better other of each round
            against_value = _stat(found["against_per_round"]) if found else None
        else:
            against_value = summary.get(other, {}).get(other_measure, {}).get(other_field)
        out.append({"target": label, "kind": "ratio", "system": system, "measure": measure,
                    "field": field, "against": against_label(other),
                    "against_systems": list(others_of(other)),
                    "against_measure": other_measure,
                    "value": summary.get(system, {}).get(measure, {}).get(field),
                    "against_value": against_value,
                    **(found or {"ratio": None, "met": None, "op": op,
                                 "threshold": threshold})})
    for label, system, measure, field, op, threshold in ABSOLUTE_TARGETS:
        stat = summary.get(system, {}).get(measure, {}).get(field)
        met = None
        if stat:
            met = stat["median"] <= threshold if op == "<=" else stat["median"] >= threshold
        out.append({"target": label, "kind": "absolute", "system": system, "measure": measure,
                    "field": field, "value": stat, "op": op, "threshold": threshold,
                    "met": met})
    return out


def peer_ratios(records: list[dict], systems: list[str]) -> list[dict[str, Any]]:
    """queuejob (each backend) against every peer, for the common measures."""
    rounds = by_round(records)
    rows = []
    for name, measure, field in (("Enqueue 1-by-1", "enqueue_single", RATE),
                                 ("Bulk enqueue", "enqueue_bulk", RATE),
                                 ("Drain, 1 worker", "process_w1", DRAIN),
                                 ("Drain, 2 workers", "process_w2", DRAIN),
                                 ("Processing incl. start-up, 1 worker", "process_w1", RATE),
                                 ("Latency p50 (peer / queuejob)", "latency", "p50_ms")):
        for mine in QUEUEJOB:
            row: dict[str, Any] = {"measure": name, "queuejob": mine, "ratios": {}}
            for peer in systems:
                if peer in QUEUEJOB:
                    continue
                if field == "p50_ms":  # smaller is better: peer / queuejob
                    found = ratio(rounds, ("", peer, measure, field, mine, measure, field,
                                           ">=", 0))
                else:
                    found = ratio(rounds, ("", mine, measure, field, peer, measure, field,
                                           ">=", 0))
                row["ratios"][peer] = found
            rows.append(row)
    return rows


# -- formatting ------------------------------------------------------------------------------
def num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def cell(entry: dict | None, field: str, capped: bool = False) -> str:
    if not entry:
        return "-"
    if entry.get("unsupported"):
        return "n/a"
    stat = entry.get(field)
    if not stat:
        return "-"
    text = f"**{num(stat['median'])}**"
    if stat["n"] > 1:
        text += f" ({num(stat['min'])}-{num(stat['max'])})"
    if capped and entry.get("capped"):
        text += " †"
    return text


def ratio_text(found: dict | None) -> str:
    if not found or found.get("ratio") is None:
        return "-"
    text = f"**{found['ratio']:.2f}x**"
    if found.get("rounds", 1) > 1:
        text += f" ({found['min']:.2f}-{found['max']:.2f})"
    if found.get("capped"):
        text += " †"
    return text


def systems_in(records: list[dict]) -> list[str]:
    order = [*QUEUEJOB, *PEERS_ORDER]
    present = {r["system"] for r in records}
    return [s for s in order if s in present] + sorted(present - set(order))


def markdown(data: dict[str, Any]) -> str:
    records, summary, env, conf = (data["runs"], data["summary"], data["environment"],
                                   data["config"])
    systems = systems_in(records)
    described = {r["system"]: r for r in records if r.get("measure") == "system"}
    rounds = conf.get("rounds")
    jobs = conf.get("jobs")
    lines = [
        "# queuejob and its peers, side by side",
        "",
        f"Generated {env.get('date')} by `{conf.get('command')}` in "
        f"{conf.get('total_seconds', 0) / 60:.0f} min; {rounds} round(s), the systems "
        "interleaved in each round and their order rotated between rounds. Each cell: "
        "**median** (min-max) over the rounds. This 2-core machine also runs other work "
        "and is noisy: ratios measured in the same run matter more than absolute figures.",
        "",
        f"Machine: {machine_line(env)}.",
        "",
        "## Targets of the issue (ratios measured in the same run)",
        "",
        "| Target | queuejob | Against | Ratio | Required | Met |",
        "|---|---|---|---|---|---|",
    ]
    for t in data["targets"]:
        if t["kind"] == "ratio":
            mine = stat_text(t.get("value"), t["field"])
            other = f"{t['against']}: {stat_text(t.get('against_value'), t['field'])}"
            if t["against"] == t["system"]:
                other = f"{t['against_measure']}: {stat_text(t.get('against_value'), t['field'])}"
            lines.append(f"| {t['target']} | {t['measure']}: {mine} | {other} | "
                         f"{ratio_text(t)} | {t['op']} {t['threshold']:g}x | "
                         f"{met_text(t['met'])} |")
        else:
            lines.append(f"| {t['target']} | {stat_text(t.get('value'), t['field'])} | - | - | "
                         f"{t['op']} {t['threshold']:g} | {met_text(t['met'])} |")
    lines += [
        "",
        "Drain = jobs/s after the first job finished (steady state, the worker's start-up "
        "left out); units: jobs/s, ms, or a ratio for RSS.",
        "",
        "## Every system",
        "",
        f"Throughput in jobs/s for {jobs:,} no-op jobs; processing = from spawning the "
        "worker process(es) to the last job, start-up included (see the next table); "
        f"latency: {conf.get('latency_jobs')} jobs enqueued 20 ms apart to an idle worker, "
        "enqueue to start.",
        "",
        "| System | Backend | One worker process = | Enqueue 1-by-1 | Bulk enqueue | "
        "Process, 1 worker | Process, 2 workers | Latency p50 ms | Latency p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for system in systems:
        s = summary.get(system, {})
        d = described.get(system, {})
        lines.append(
            f"| {system} | {d.get('backend', '')} | {d.get('worker_setting', '')} | "
            f"{cell(s.get('enqueue_single'), RATE)} | {cell(s.get('enqueue_bulk'), RATE)} | "
            f"{cell(s.get('process_w1'), RATE, True)} | {cell(s.get('process_w2'), RATE, True)} | "
            f"{cell(s.get('latency'), 'p50_ms')} | {cell(s.get('latency'), 'p99_ms')} |")
    lines += [
        "",
        f"† capped: at least one run of this cell was stopped {conf.get('max_process_s'):g} s "
        f"after its workers were spawned, before all {jobs:,} jobs were done; its figure is "
        "jobs done / elapsed (the jobs done are in results.json). n/a: the library has no "
        "batch enqueue API.",
        "",
        "### Start-up and steady-state drain",
        "",
        "| System | 1 worker: start-up s | 1 worker: drain jobs/s | 2 workers: start-up s | "
        "2 workers: drain jobs/s |",
        "|---|---|---|---|---|",
    ]
    for system in systems:
        s = summary.get(system, {})
        lines.append(f"| {system} | {cell(s.get('process_w1'), 'startup_s')} | "
                     f"{cell(s.get('process_w1'), DRAIN, True)} | "
                     f"{cell(s.get('process_w2'), 'startup_s')} | "
                     f"{cell(s.get('process_w2'), DRAIN, True)} |")
    lines += [
        "",
        "### CPU per job (1 worker process, steady state)",
        "",
        "Microseconds of CPU per job from /proc, from the first job done to the last: the "
        "worker process (its threads and the processes it forks) and, on PostgreSQL, the "
        "server's backends connected to the system's database (the server's background "
        "processes left out, for every system alike).",
        "",
        "| System | worker | server | worker + server |",
        "|---|---|---|---|",
    ]
    for system in systems:
        w1 = summary.get(system, {}).get("process_w1") or {}
        lines.append(f"| {system} | {cell(w1, 'worker_cpu_us_per_job')} | "
                     f"{cell(w1, 'server_cpu_us_per_job')} | {cell(w1, CPU)} |")
    peers = [s for s in systems if s not in QUEUEJOB]
    if peers:
        lines += ["", "### queuejob / each peer, same run (ratio of medians, per-round "
                  "min-max; above 1 = queuejob better)", "",
                  "| Measure | queuejob on | " + " | ".join(peers) + " |",
                  "|---|---|" + "---|" * len(peers)]
        for row in data["peer_ratios"]:
            if not any(row["ratios"].values()):
                continue
            lines.append(f"| {row['measure']} | {row['queuejob']} | " + " | ".join(
                ratio_text(row["ratios"].get(p)) for p in peers) + " |")
    lines += enqueue_rounds(data, systems)
    lines += queuejob_tables(summary, conf)
    lines += ["", "## Systems: versions and settings", "",
              "| System | Versions | One worker process = | Notes | Backend settings |",
              "|---|---|---|---|---|"]
    for system in systems:
        d = described.get(system, {})
        versions = ", ".join(f"{k} {v}" for k, v in (d.get("versions") or {}).items())
        settings = d.get("settings")
        if isinstance(settings, dict) and "server_version" in settings:
            settings = {k: v for k, v in settings.items()
                        if k in ("fsync", "synchronous_commit", "full_page_writes")}
        settings_text = ", ".join(f"{k}={v}" for k, v in settings.items()) \
            if isinstance(settings, dict) else ""
        lines.append(f"| {system} | {versions} | {d.get('worker_setting', '')} | "
                     f"{d.get('notes', '')} | {settings_text} |")
    lines += ["", "## Environment", "", *environment_lines(env), "", "## Method", "",
              *METHOD, ""]
    if conf.get("failures"):
        lines += ["## Errors during the run", "", *[f"- {f}" for f in conf["failures"]], ""]
    return "\n".join(lines)


def enqueue_rounds(data: dict[str, Any], systems: list[str]) -> list[str]:
    """Enqueue rates round by round, with the targets against the better of several
    peers (each round's ratio and which peer was the better)."""
    rounds = by_round(data["runs"])
    lines: list[str] = []
    for measure, title in (("enqueue_single", "Enqueue one by one"),
                           ("enqueue_bulk", "Bulk enqueue")):
        present = [s for s in systems if rounds.get((s, measure))]
        if not present:
            continue
        numbers = sorted({r for s in present for r in rounds[s, measure]})
        best_of = [t for t in data["targets"] if t["kind"] == "ratio"
                   and t["measure"] == measure and len(t.get("against_systems", ())) > 1
                   and t.get("round_numbers")]
        if not lines:
            lines += ["", "### Enqueue, round by round", "",
                      "jobs/s in each round (the systems measured in turn, within minutes "
                      "of one another); a target against the better of several peers takes "
                      "each round's better one."]
        header = [*present, *(f"{t['system']} / {t['against']}" for t in best_of)]
        lines += ["", f"{title}:", "", "| Round | " + " | ".join(header) + " |",
                  "|---|" + "---|" * len(header)]
        for number in numbers:
            cells = [num(rounds[s, measure][number].get(RATE))
                     if number in rounds[s, measure] else "-" for s in present]
            for t in best_of:
                if number in t["round_numbers"]:
                    index = t["round_numbers"].index(number)
                    cells.append(f"{t['per_round'][index]:.2f}x "
                                 f"({t['better_per_round'][index]})")
                else:
                    cells.append("-")
            lines.append(f"| {number} | " + " | ".join(cells) + " |")
    return lines


def queuejob_tables(summary: dict, conf: dict) -> list[str]:
    present = [s for s in QUEUEJOB if s in summary]
    if not present or not any(m.startswith(("growth", "channels", "memory"))
                              for s in present for m in summary[s]):
        return []
    finished = str(conf.get("growth_finished", "")).split(",")
    labels = {"growth_empty": "Drain, empty table",
              "growth_finished_mid": f"Drain, {int(float(finished[0])):,} finished jobs in "
                                     "the table" if finished[0] else "",
              "growth_finished_big": f"Drain, {int(float(finished[-1])):,} finished jobs in "
                                     "the table" if finished[-1] else "",
              "growth_pending_channels": f"Drain, {int(conf.get('growth_pending', 0)):,} "
                                         "pending jobs over 50 channels (first "
                                         f"{conf.get('jobs', 0):,} timed)",
              "channels_plain": "Drain, --channels root:8 (jobs in root.a/b/c)",
              "channels_tree": "Drain, --channels root:8,root.a:2,root.b:2,root.c:4"}
    lines = ["", "## queuejob: growth, channels, memory", "",
             f"One worker process, {conf.get('jobs', 0):,} jobs timed per drain; jobs/s after "
             "the first finished job.", "",
             "| Workload | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for measure, label in labels.items():
        if any(measure in summary[s] for s in present):
            lines.append(f"| {label} | " + " | ".join(
                cell(summary[s].get(measure), DRAIN, True) for s in present) + " |")
    memory = [summary[s].get("memory") for s in present]
    if any(memory):
        checkpoints = str(conf.get("memory_jobs", "")).split(",")
        for checkpoint in checkpoints:
            key = f"rss_kib_{int(float(checkpoint))}"
            lines.append(f"| Worker VmRSS (MiB) after {int(float(checkpoint)):,} jobs | "
                         + " | ".join(mib_cell(m, key) for m in memory) + " |")
        lines.append("| RSS ratio, last / first checkpoint | " + " | ".join(
            cell(m, "rss_ratio") for m in memory) + " |")
        lines.append("| Drain while running them (jobs/s) | " + " | ".join(
            cell(m, DRAIN) for m in memory) + " |")
    return lines


def mib_cell(entry: dict | None, key: str) -> str:
    if not entry or key not in entry:
        return "-"
    stat = entry[key]
    text = f"**{stat['median'] / 1024:.1f}**"
    if stat["n"] > 1:
        text += f" ({stat['min'] / 1024:.1f}-{stat['max'] / 1024:.1f})"
    return text


def stat_text(stat: dict | None, field: str) -> str:
    if not stat:
        return "-"
    unit = {"p50_ms": " ms", "p99_ms": " ms", "rss_ratio": "x", CPU: " µs/job"}.get(
        field, " jobs/s")
    text = f"{num(stat['median'])}{unit}"
    if stat.get("n", 1) > 1:
        text += f" ({num(stat['min'])}-{num(stat['max'])})"
    return text


def met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[met]


def machine_line(env: dict) -> str:
    return (f"{env.get('cpus')} CPUs ({env.get('cpu_model')}), {env.get('memory_gib')} GiB, "
            f"{env.get('os')}, Python {env.get('python')}")


def environment_lines(env: dict) -> list[str]:
    lines = [f"- Machine: {machine_line(env)}; load average at start "
             f"{', '.join(f'{x:.2f}' for x in env.get('loadavg_at_start') or [])}, at end "
             f"{', '.join(f'{x:.2f}' for x in env.get('loadavg_at_end') or [])}."]
    pg = env.get("postgresql")
    if pg and "error" not in pg:
        lines.append(f"- PostgreSQL {pg.get('server_version')} (initdb defaults, data on "
                     f"{pg.get('data_dir_fs')}, {pg.get('connection')}): " + ", ".join(
                         f"{k}={pg[k]}" for k in ("fsync", "synchronous_commit",
                                                  "full_page_writes", "wal_sync_method",
                                                  "shared_buffers", "max_wal_size",
                                                  "autovacuum") if k in pg) + ".")
    redis = env.get("redis")
    if redis and "error" not in redis:
        lines.append(f"- Redis {redis.get('version')} (built-in defaults, "
                     f"{redis.get('connection')}): save=\"{redis.get('save')}\", "
                     f"appendonly={redis.get('appendonly')}: no fsync per write, unlike "
                     "PostgreSQL and SQLite here.")
    lines.append(f"- SQLite {env.get('sqlite')} (files on {env.get('sqlite_fs')}).")
    source = env.get("queuejob_source") or {}
    if source.get("commit"):
        lines.append(f"- queuejob at commit {source['commit']}"
                     + (" with uncommitted changes in src/" if source.get("src_modified")
                        else "") + " when the run started"
                     + (f" ({source['note']})" if source.get("note") else "") + ".")
    return lines


METHOD = [
    "- One command: `bash bench/run.sh` (see bench/README.md). Each system's workloads run "
    "in one process, `python -m bench.harness --system NAME`, once per round; queue state "
    "is wiped before every measurement (PostgreSQL: TRUNCATE of the system's own database "
    "and CHECKPOINT; Redis: FLUSHDB of its own db; SQLite: a new file).",
    "- Every no-op job does the same thing: it appends one byte to a counter file (open, "
    "write, close); the harness polls the file's size every 20 ms, so completion is seen "
    "the same way for every system, whatever it records itself. The latency job takes "
    "time.time() first thing; the enqueue time is time.time() just before the enqueue call.",
    "- Workers are started with each library's own command line, in their own process "
    "group, and stopped after each measurement. Processing runs are prefilled with the "
    "batch API where there is one; PostgreSQL systems ANALYZE after the prefill (what "
    "autovacuum does on a live queue).",
    "- Growth: the finished jobs are inserted with one SQL statement as `done` rows "
    "(then VACUUM ANALYZE and CHECKPOINT on PostgreSQL), then the jobs to drain are "
    "queued. Memory: all jobs queued first with delay_many, then one worker runs them; "
    "VmRSS read from /proc/<pid>/status when the done count passes each checkpoint.",
    "- Client, workers and servers share the same 2 cores, as a small deployment would.",
]


# -- chart -----------------------------------------------------------------------------------
def chart(data: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    summary = data["summary"]
    systems = [s for s in systems_in(data["runs"])
               if "process_w1" in summary.get(s, {}) or "process_w2" in summary.get(s, {})]
    if not systems:
        return None
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    width = 0.38
    colors = {"process_w1": "#3b75af", "process_w2": "#ef8636"}
    for offset, measure, label in ((-width / 2, "process_w1", "1 worker process"),
                                   (width / 2, "process_w2", "2 worker processes")):
        heights, lows, highs, capped = [], [], [], []
        for system in systems:
            stat = summary[system].get(measure, {}).get(DRAIN)
            median = stat["median"] if stat else 0
            heights.append(median)
            lows.append(median - stat["min"] if stat else 0)
            highs.append(stat["max"] - median if stat else 0)
            capped.append(bool(summary[system].get(measure, {}).get("capped")))
        xs = [i + offset for i in range(len(systems))]
        bars = ax.bar(xs, heights, width, label=label, color=colors[measure],
                      yerr=[lows, highs], capsize=3, ecolor="#444")
        for bar, value, high, cap in zip(bars, heights, highs, capped, strict=True):
            ax.annotate(f"{value:,.0f}{' †' if cap else ''}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height() + high),
                        textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8)
    ax.set_xticks(range(len(systems)))
    ax.set_xticklabels([s.replace("-", "-\n", 1) if len(s) > 12 else s for s in systems],
                       fontsize=9)
    ax.set_ylabel("no-op jobs/s (steady-state drain)")
    env = data["environment"]
    ax.set_title(f"Processing throughput, {data['config'].get('jobs'):,} queued no-op jobs "
                 f"(median, min-max of {data['config'].get('rounds')} rounds)\n"
                 f"{env.get('date', '')[:10]}, {env.get('cpus')} CPUs, Python "
                 f"{env.get('python')}; † = capped run", fontsize=10)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# -- entry points ----------------------------------------------------------------------------
def build(records: list[dict], environment: dict, settings: dict) -> dict[str, Any]:
    summary = summarize(records)
    return {"config": settings, "environment": environment, "summary": summary,
            "targets": targets(records, summary),
            "peer_ratios": peer_ratios(records, systems_in(records)), "runs": records}


def write(records: list[dict], environment: dict, settings: dict, output: Path
          ) -> list[Path]:
    data = build(records, environment, settings)
    output.mkdir(parents=True, exist_ok=True)
    json_path = output / "results.json"
    json_path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return [json_path, *render(data, output)]


def render(data: dict[str, Any], output: Path) -> list[Path]:
    md_path = output / "results.md"
    md_path.write_text(markdown(data))
    png = chart(data, output / "throughput.png")
    return [md_path, *([png] if png else [])]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else Path(__file__).resolve().parent / "results" / "results.json"
    data = json.loads(path.read_text())
    data = build(data["runs"], data["environment"], data["config"])
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    for written in render(data, path.parent):
        print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
