"""approvalflow's benchmarks: ``python benchmarks/run.py [--quick] [--json]``.

Prints a table of every figure (with ``--json``: one JSON object on stdout instead, progress on
stderr), each beside its peer or floor measured in the same run, and the targets met or not.
``--quick`` is a smoke run with scaled-down sizes (under a minute); ``--tiny`` (or
``APPROVALFLOW_BENCH_TINY=1``) shrinks everything further, for the test suite. ``--only NAME``
runs one benchmark (``SECTIONS``) and lists its figures and targets. ``--profile WORKLOAD``
runs one workload under cProfile and prints its hot spots instead. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peers
import workloads as w

DEFAULT_POSTGRES = os.environ.get(
    "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)

SIZES: dict[str, dict[str, int]] = {
    "full": {
        "repeats": 7,
        "memory_n": 400,
        "spiff_n": 100,
        "transitions_n": 2000,
        "hsm_n": 500,
        "bare_models": 2000,
        "sqlite_n": 50,
        "raw_full": 2000,
        "raw_normal": 10000,
        "pg_repeats": 3,
        "pg_n": 15,
        "pg_raw": 600,
        "live": 10000,
        "history_big": 10000,
        "history_small": 10,
        "history_batch": 50,
        "history_rounds": 9,
        "due_total": 1_000_000,
        "due": 1000,
        "report": 100_000,
        "report_repeats": 1,
        "import_repeats": 7,
    },
    "quick": {
        "repeats": 3,
        "memory_n": 60,
        "spiff_n": 10,
        "transitions_n": 300,
        "hsm_n": 60,
        "bare_models": 300,
        "sqlite_n": 15,
        "raw_full": 500,
        "raw_normal": 2000,
        "pg_repeats": 1,
        "pg_n": 4,
        "pg_raw": 200,
        "live": 200,
        "history_big": 500,
        "history_small": 10,
        "history_batch": 20,
        "history_rounds": 3,
        "due_total": 20_000,
        "due": 100,
        "report": 2000,
        "report_repeats": 1,
        "import_repeats": 2,
    },
    "tiny": {
        "repeats": 1,
        "memory_n": 5,
        "spiff_n": 2,
        "transitions_n": 20,
        "hsm_n": 5,
        "bare_models": 20,
        "sqlite_n": 2,
        "raw_full": 20,
        "raw_normal": 20,
        "pg_repeats": 1,
        "pg_n": 1,
        "pg_raw": 10,
        "live": 20,
        "history_big": 40,
        "history_small": 10,
        "history_batch": 2,
        "history_rounds": 1,
        "due_total": 2000,
        "due": 10,
        "report": 200,
        "report_repeats": 1,
        "import_repeats": 1,
    },
}

# The engine process counts on PostgreSQL, each beside the raw commit rate at that count.
PG_PROCESSES = (1, 4, 8)

# Targets (docs/performance.md): (name, figure, comparison, threshold, what it says)
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    (
        "memory_vs_spiff",
        "pa5_memory_cmd_vs_spiff",
        ">=",
        30.0,
        "memory commands/s >= 30x SpiffWorkflow actions/s",
    ),
    (
        "memory_vs_spiff_json",
        "pa5_memory_cmd_vs_spiff_json",
        ">=",
        30.0,
        "memory commands/s >= 30x SpiffWorkflow+JSON actions/s",
    ),
    (
        "command_vs_transitions",
        "command_cost_in_shared_triggers",
        "<=",
        2.0,
        "one command <= 2 bare shared-transitions triggers",
    ),
    ("sqlite_full", "pa5_sqlite_full_vs_raw", ">=", 0.70, "SQLite FULL >= 70% of raw commits"),
    ("sqlite_normal", "pa5_sqlite_normal_vs_raw", ">=", 0.25, "SQLite NORMAL >= 25% of raw"),
    ("postgres_1", "pa5_postgres_vs_raw.1", ">=", 0.50, "PostgreSQL, 1 process >= 50% of raw"),
    ("postgres_4", "pa5_postgres_vs_raw.4", ">=", 0.50, "PostgreSQL, 4 processes >= 50% of raw"),
    (
        "postgres_8",
        "pa5_postgres_8_vs_4",
        ">=",
        1.0,
        "PostgreSQL, 8 processes not slower than 4",
    ),
    ("memory_per_project", "kib_per_live_project", "<=", 4.0, "<= 4 KiB per live project"),
    ("history_memory", "history_cost_ratio.memory", "<=", 1.2, "history cost ratio (memory)"),
    ("history_sqlite", "history_cost_ratio.sqlite", "<=", 1.2, "history cost ratio (SQLite)"),
    ("run_due_sqlite", "run_due_1m_s.sqlite", "<", 1.0, "run_due, 1k due of 1M (SQLite) < 1 s"),
    ("run_due_postgres", "run_due_1m_s.postgres", "<", 1.0, "run_due, 1k of 1M (PostgreSQL) < 1 s"),
    ("report", "report_100k_s", "<", 2.0, "metrics + leaderboard, 100k projects < 2 s"),
    ("import", "import_ms", "<", 250.0, "cold import approvalflow < 250 ms"),
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def lookup(report: dict[str, Any], dotted: str) -> Any:
    value: Any = report
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


# -- the run ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, mode: str, directory: str, postgres: str | None) -> None:
        self.mode = mode
        self.size = SIZES[mode]
        self.dir = directory
        self.postgres = postgres
        self.report: dict[str, Any] = {"mode": mode, "sizes": self.size}
        self.finished: dict[str, dict[str, int]] = {}
        self.stores: dict[str, str] = {}
        self.details: dict[str, Any] = {}

    def done(self, variant: str, instances: int, finished: int) -> None:
        entry = self.finished.setdefault(variant, {"instances": 0, "finished": 0})
        entry["instances"] += instances
        entry["finished"] += finished

    def set(self, key: str, value: Any, store: str) -> None:
        self.report[key] = value
        self.stores[key] = store

    # -- sections --------------------------------------------------------------------------

    def machine(self) -> None:
        info: dict[str, Any] = {
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "tmp_dir": self.dir,
            "load_average_at_start": list(os.getloadavg()),
        }
        for package in ("approvalflow", "transitions", "SpiffWorkflow", "psycopg", "psutil"):
            info[package] = _version(package)
        if self.postgres:
            try:
                info["postgresql"] = w.pg_server_settings(self.postgres)
            except Exception as error:
                info["postgresql"] = f"unavailable: {error}"
                log(f"PostgreSQL unavailable ({str(error).strip()}); its figures are skipped")
                self.postgres = None
        self.report["machine"] = info

    def shape(self) -> None:
        self.details["pa5_shape"] = w.pa5_shape()

    def memory_per_project(self) -> None:
        n = self.size["live"]
        log(f"memory: {n} projects waiting in approval (tracemalloc and RSS, two processes)")
        pool_a, traced = w.start_in_subprocess(w.live_project_memory, n, "tracemalloc")
        pool_b, rss = w.start_in_subprocess(w.live_project_memory, n, "rss")
        traced_result, rss_result = traced.get(), rss.get()
        pool_a.join()
        pool_b.join()
        self.set("kib_per_live_project", traced_result["kib_per_project"], "memory")
        self.set("kib_per_live_project_rss", rss_result["kib_per_project"], "memory")
        self.details["live_project_memory"] = {"tracemalloc": traced_result, "rss": rss_result}
        self.done("live_projects_tracemalloc", n, traced_result["finished"])
        self.done("live_projects_rss", n, rss_result["finished"])

    def import_time(self) -> None:
        log("import approvalflow in fresh interpreters")
        result = w.import_ms(self.size["import_repeats"], self.dir)
        self.set("import_ms", result["ms"], "bytecode cached")
        self.set("import_ms_env", result["env_ms"], "this environment's bytecode setting")
        self.details["import"] = result

    def in_memory(self) -> None:
        size = self.size
        spiff_missing = peers.spiff_available()
        self.report["peers_status"] = {
            "SpiffWorkflow": spiff_missing or "ok",
            "transitions": "ok",
        }
        if spiff_missing:
            log(f"SpiffWorkflow {spiff_missing}: its rows say so")
        samples: dict[str, list[float]] = {}

        def add(key: str, variant: str, result: dict[str, Any], field: str) -> float:
            samples.setdefault(key, []).append(result[field])
            self.done(variant, result["instances"], result["finished"])
            return float(result[field])

        def pair(key: str, value: float) -> None:
            samples.setdefault(key, []).append(value)

        log(f"PA-5 in memory and on the peers, {size['repeats']} rounds")
        n = size["transitions_n"]
        for rep in range(size["repeats"]):
            memory = add(
                "memory_inst", "pa5_memory", w.pa5_memory(size["memory_n"], f"r{rep}"), "inst_per_s"
            )
            cmd = memory * w.PA5_COMMANDS
            pair("memory_cmd", cmd)
            if not spiff_missing:
                spiff = add("spiff", "spiff", peers.spiff(size["spiff_n"], False), "actions_per_s")
                pair("vs_spiff", cmd / spiff)
                spiff_json = add(
                    "spiff_json", "spiff_json", peers.spiff(size["spiff_n"], True), "actions_per_s"
                )
                pair("vs_spiff_json", cmd / spiff_json)
            for key, variant, function, count in (
                ("tr_instance", "transitions_per_instance", peers.transitions_per_instance, n),
                ("tr_shared", "transitions_shared", peers.transitions_shared, n),
                ("tr_hsm", "transitions_hsm", peers.transitions_hsm, size["hsm_n"]),
            ):
                pair(f"vs_{key}", cmd / add(key, variant, function(count), "actions_per_s"))
            bare = peers.transitions_bare_trigger(size["bare_models"], 1)
            self.done("transitions_bare", bare["instances"], bare["finished"])
            pair("bare_us", bare["trigger_us"])
            pair("in_triggers", 1e6 / cmd / bare["trigger_us"])
        self.details["samples"] = samples

        def med(key: str) -> float | None:
            return median(samples[key]) if key in samples else None

        self.set("pa5_memory_inst_per_s", med("memory_inst"), "memory")
        self.set("pa5_memory_cmd_per_s", med("memory_cmd"), "memory")
        self.set("spiff_actions_per_s", med("spiff"), "SpiffWorkflow (in memory)")
        self.set("spiff_json_actions_per_s", med("spiff_json"), "SpiffWorkflow + JSON per action")
        self.set("transitions_per_instance_triggers_per_s", med("tr_instance"), "transitions")
        self.set("transitions_shared_triggers_per_s", med("tr_shared"), "transitions")
        self.set("transitions_hsm_triggers_per_s", med("tr_hsm"), "transitions")
        self.set("transitions_shared_bare_trigger_us", med("bare_us"), "transitions")
        # Ratios: the median over rounds of the ratio measured within each round.
        self.set("pa5_memory_cmd_vs_spiff", med("vs_spiff"), "memory")
        self.set("pa5_memory_cmd_vs_spiff_json", med("vs_spiff_json"), "memory")
        for key in ("per_instance", "shared", "hsm"):
            short = {"per_instance": "tr_instance", "shared": "tr_shared", "hsm": "tr_hsm"}[key]
            self.set(f"pa5_memory_cmd_vs_transitions_{key}", med(f"vs_{short}"), "memory")
        memory_cmd = med("memory_cmd")
        self.set("pa5_memory_command_us", 1e6 / memory_cmd if memory_cmd else None, "memory")
        self.set("command_cost_in_shared_triggers", med("in_triggers"), "memory")

    def sqlite(self) -> None:
        size = self.size
        log(f"PA-5 on SQLite FULL and NORMAL beside raw commits, {size['repeats']} rounds")
        samples: dict[str, list[float]] = {}
        for rep in range(size["repeats"]):
            for sync in ("FULL", "NORMAL"):
                raw_n = size["raw_full"] if sync == "FULL" else size["raw_normal"]
                raw = w.raw_sqlite(self.dir, sync, raw_n, f"r{rep}")
                pa5 = w.pa5_sqlite(self.dir, sync, size["sqlite_n"], f"r{rep}")
                key = sync.lower()
                samples.setdefault(f"raw_{key}", []).append(raw["commit_per_s"])
                samples.setdefault(f"pa5_{key}_cmd", []).append(pa5["cmd_per_s"])
                samples.setdefault(f"pa5_{key}_inst", []).append(pa5["inst_per_s"])
                samples.setdefault(f"ratio_{key}", []).append(
                    pa5["cmd_per_s"] / raw["commit_per_s"]
                )
                self.done(f"pa5_sqlite_{key}", pa5["instances"], pa5["finished"])
        self.details["sqlite_samples"] = samples
        for key in ("full", "normal"):
            store = f"sqlite WAL synchronous={key.upper()}"
            cmd = median(samples[f"pa5_{key}_cmd"])
            raw = median(samples[f"raw_{key}"])
            self.set(f"pa5_sqlite_{key}_cmd_per_s", cmd, store)
            self.set(f"pa5_sqlite_{key}_inst_per_s", median(samples[f"pa5_{key}_inst"]), store)
            self.set(f"raw_sqlite_{key}_commit_per_s", raw, store + " (plain table)")
            self.set(f"pa5_sqlite_{key}_vs_raw", median(samples[f"ratio_{key}"]), store)

    def postgresql(self) -> None:
        keys = (
            "pa5_postgres_cmd_per_s",
            "pa5_postgres_inst_per_s",
            "raw_postgres_commit_per_s",
            "pa5_postgres_vs_raw",
            "postgres_cpu_pct",
        )
        if not self.postgres:
            for key in keys:
                self.set(key, dict.fromkeys(map(str, PG_PROCESSES)), "postgresql (unavailable)")
            self.set("pa5_postgres_8_vs_4", None, "postgresql (unavailable)")
            return
        size = self.size
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        counts = ", ".join(map(str, PG_PROCESSES))
        log(f"PA-5 on PostgreSQL with {counts} processes beside raw commits (schema {schema})")
        store = w.pg_setup(self.postgres, schema)
        pool = w.PgWorkers(self.postgres, max(PG_PROCESSES))
        results: dict[str, dict[str, list[dict[str, Any]]]] = {}
        try:
            for rep in range(size["pg_repeats"]):
                for processes in PG_PROCESSES:
                    bucket = results.setdefault(str(processes), {"raw": [], "pa5": []})
                    tag = f"p{processes}r{rep}"
                    raw = pool.run("raw", schema, processes, size["pg_raw"], tag)
                    pa5 = pool.run("pa5", schema, processes, size["pg_n"], tag)
                    bucket["raw"].append(raw)
                    bucket["pa5"].append(pa5)
                    self.done(f"pa5_postgres_{processes}", pa5["units"], pa5["finished"])
                    self.done(f"raw_postgres_{processes}", raw["units"], raw["finished"])
        finally:
            pool.close()
            store.drop()
        values: dict[str, dict[str, Any]] = {key: {} for key in keys}
        for processes, bucket in results.items():
            cmd = median([r["rate"] for r in bucket["pa5"]])
            raw = median([r["rate"] for r in bucket["raw"]])
            values["pa5_postgres_cmd_per_s"][processes] = cmd
            values["pa5_postgres_inst_per_s"][processes] = cmd / w.PA5_COMMANDS
            values["raw_postgres_commit_per_s"][processes] = raw
            values["pa5_postgres_vs_raw"][processes] = median(
                [p["rate"] / r["rate"] for p, r in zip(bucket["pa5"], bucket["raw"], strict=True)]
            )

            def cpu(runs: list[dict[str, Any]]) -> dict[str, float | None]:
                found: dict[str, float | None] = {}
                for field in ("clients_cpu_pct", "server_cpu_pct", "machine_cpu_pct"):
                    numbers = [r[field] for r in runs if r[field] is not None]
                    found[field.removesuffix("_cpu_pct")] = median(numbers) if numbers else None
                return found

            values["postgres_cpu_pct"][processes] = {
                "pa5": cpu(bucket["pa5"]),
                "raw": cpu(bucket["raw"]),
            }
        for key in keys:
            self.set(key, values[key], "postgresql")
        by_count = values["pa5_postgres_cmd_per_s"]
        self.set(
            "pa5_postgres_8_vs_4",
            ratio(by_count.get("8"), by_count.get("4")),
            "postgresql (commands/s, 8 processes over 4)",
        )
        self.details["postgres_runs"] = results

    def history(self) -> None:
        size = self.size
        log(
            f"history cost: urge at {size['history_big']} events vs {size['history_small']} "
            "(memory, SQLite FULL)"
        )
        found: dict[str, float] = {}
        for store in ("memory", "sqlite"):
            result = w.history_cost(
                store,
                self.dir,
                size["history_big"],
                size["history_small"],
                size["history_batch"],
                size["history_rounds"],
            )
            found[store] = result["ratio"]
            self.details[f"history_{store}"] = result
            self.done(f"history_{store}", 1, int(result["finished"]))
        self.set("history_cost_ratio", found, "memory / sqlite FULL")

    def run_due(self) -> None:
        size = self.size
        total, due = size["due_total"], size["due"]
        log(f"run_due: {due} due timers among {total:,} (SQLite FULL)")
        sqlite_result = w.run_due_sqlite(self.dir, total, due)
        times = {"sqlite": sqlite_result["seconds"]}
        loads = {"sqlite": sqlite_result["load_s"]}
        self.details["run_due_sqlite"] = sqlite_result
        self.done("run_due_sqlite", due, sqlite_result["finished"])
        if self.postgres:
            log(f"run_due: {due} due timers among {total:,} (PostgreSQL)")
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            pg_result = w.run_due_postgres(self.postgres, schema, total, due)
            times["postgres"] = pg_result["seconds"]
            loads["postgres"] = pg_result["load_s"]
            self.details["run_due_postgres"] = pg_result
            self.done("run_due_postgres", due, pg_result["finished"])
        else:
            times["postgres"] = None  # type: ignore[assignment]
            loads["postgres"] = None  # type: ignore[assignment]
        self.set("run_due_1m_s", times, "sqlite FULL / postgresql")
        self.set("run_due_load_s", loads, "direct SQL (untimed in run_due_1m_s)")

    def reports(self) -> None:
        size = self.size
        n = size["report"]
        log(f"metrics and leaderboard over {n:,} projects (SQLite)")
        result = w.report_sqlite(self.dir, n, "2026-03", size["report_repeats"])
        self.details["report"] = result
        self.done("report", 1, int(result["finished"]))
        self.set("report_100k_s", result["seconds"], "sqlite")
        self.set("report_100k_metrics_s", result["metrics_s"], "sqlite")
        self.set("report_100k_leaderboard_s", result["leaderboard_s"], "sqlite")
        self.set("report_load_s", result["load_s"], "direct SQL (untimed)")

    def targets(self) -> None:
        found = {}
        for name, figure, comparison, threshold, text in TARGETS:
            value = lookup(self.report, figure)
            met = None
            if isinstance(value, int | float):
                met = {
                    ">=": value >= threshold,
                    "<=": value <= threshold,
                    "<": value < threshold,
                }[comparison]
            found[name] = {
                "figure": figure,
                "value": value,
                "target": f"{comparison} {threshold:g}",
                "met": met,
                "what": text,
            }
        self.report["targets"] = found

    def sections(self) -> dict[str, Callable[[], None]]:
        """Every benchmark by the name ``--only`` takes."""
        return {
            "memory": self.memory_per_project,
            "import": self.import_time,
            "in_memory": self.in_memory,
            "sqlite": self.sqlite,
            "postgresql": self.postgresql,
            "history": self.history,
            "run_due": self.run_due,
            "reports": self.reports,
        }

    def run(self, only: str | None = None) -> dict[str, Any]:
        started = time.perf_counter()
        chosen = self.sections()
        sections: list[Callable[[], None]] = [
            self.machine,
            self.shape,
            *([chosen[only]] if only is not None else chosen.values()),
        ]
        for section in sections:
            section()
        self.targets()
        self.report["finished"] = self.finished
        self.report["stores"] = self.stores
        self.report["details"] = self.details
        self.report["elapsed_s"] = time.perf_counter() - started
        self.report["machine"]["load_average_at_end"] = list(os.getloadavg())
        return self.report


# -- output ----------------------------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2g}"
    return str(value)


def table(report: dict[str, Any]) -> str:
    spiff = report.get("peers_status", {}).get("SpiffWorkflow", "ok")
    pg = report.get("machine", {}).get("postgresql")

    def peer(value: Any, status: str = "ok") -> str:
        return fmt(value) if status == "ok" else status

    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, unit: str, against: str = "") -> None:
        rows.append((name, value, unit, against))

    r = report
    shape = r["details"].get("pa5_shape", {})
    row("pa5_memory_inst_per_s", fmt(r["pa5_memory_inst_per_s"]), "inst/s", "store: memory")
    row(
        "pa5_memory_cmd_per_s",
        fmt(r["pa5_memory_cmd_per_s"]),
        "cmd/s",
        f"store: memory; {shape.get('commands')} commands, {shape.get('events')} events per inst",
    )
    row("pa5_memory_command_us", fmt(r["pa5_memory_command_us"]), "us/cmd", "store: memory")
    row(
        "spiff_actions_per_s",
        peer(r["spiff_actions_per_s"], spiff),
        "actions/s",
        "peer: BPMN, 8 actions/inst",
    )
    row("  pa5_memory_cmd_vs_spiff", peer(r["pa5_memory_cmd_vs_spiff"], spiff), "x", "target >= 30")
    row(
        "spiff_json_actions_per_s",
        peer(r["spiff_json_actions_per_s"], spiff),
        "actions/s",
        "peer: BPMN + serialize_json per action",
    )
    row(
        "  pa5_memory_cmd_vs_spiff_json",
        peer(r["pa5_memory_cmd_vs_spiff_json"], spiff),
        "x",
        "target >= 30",
    )
    row(
        "transitions_per_instance_triggers_per_s",
        fmt(r["transitions_per_instance_triggers_per_s"]),
        "trig/s",
        "peer: flat Machine per instance",
    )
    row(
        "  pa5_memory_cmd_vs_transitions_per_instance",
        fmt(r["pa5_memory_cmd_vs_transitions_per_instance"]),
        "x",
        "",
    )
    row(
        "transitions_shared_triggers_per_s",
        fmt(r["transitions_shared_triggers_per_s"]),
        "trig/s",
        "peer: one flat Machine, models attached",
    )
    row(
        "  pa5_memory_cmd_vs_transitions_shared",
        fmt(r["pa5_memory_cmd_vs_transitions_shared"]),
        "x",
        "",
    )
    row(
        "transitions_hsm_triggers_per_s",
        fmt(r["transitions_hsm_triggers_per_s"]),
        "trig/s",
        "peer: HierarchicalMachine, parallel",
    )
    row("  pa5_memory_cmd_vs_transitions_hsm", fmt(r["pa5_memory_cmd_vs_transitions_hsm"]), "x", "")
    row(
        "transitions_shared_bare_trigger_us",
        fmt(r["transitions_shared_bare_trigger_us"]),
        "us",
        "peer: bare trigger, shared Machine",
    )
    row(
        "  command_cost_in_shared_triggers",
        fmt(r["command_cost_in_shared_triggers"]),
        "triggers",
        "target <= 2",
    )
    for key in ("full", "normal"):
        row(
            f"pa5_sqlite_{key}_cmd_per_s",
            fmt(r[f"pa5_sqlite_{key}_cmd_per_s"]),
            "cmd/s",
            f"store: sqlite WAL {key.upper()}",
        )
        row(
            f"raw_sqlite_{key}_commit_per_s",
            fmt(r[f"raw_sqlite_{key}_commit_per_s"]),
            "commit/s",
            "floor: plain table, INSERT+COMMIT",
        )
        target = "0.70" if key == "full" else "0.25"
        row(
            f"  pa5_sqlite_{key}_vs_raw",
            fmt(r[f"pa5_sqlite_{key}_vs_raw"]),
            "x raw",
            f"target >= {target}",
        )
    pg_status = "ok" if isinstance(pg, dict) else "unavailable"
    for processes in map(str, PG_PROCESSES):
        row(
            f"pa5_postgres_cmd_per_s[{processes}]",
            peer(r["pa5_postgres_cmd_per_s"].get(processes), pg_status),
            "cmd/s",
            f"store: postgresql, {processes} process(es)",
        )
        row(
            f"raw_postgres_commit_per_s[{processes}]",
            peer(r["raw_postgres_commit_per_s"].get(processes), pg_status),
            "commit/s",
            "floor: psycopg INSERT+COMMIT",
        )
        row(
            f"  pa5_postgres_vs_raw[{processes}]",
            peer(r["pa5_postgres_vs_raw"].get(processes), pg_status),
            "x raw",
            "target >= 0.50",
        )
        cpu = r["postgres_cpu_pct"].get(processes) or {}
        for kind in ("pa5", "raw"):
            numbers = cpu.get(kind) or {}
            text = (
                f"clients {fmt(numbers.get('clients'))}%, server {fmt(numbers.get('server'))}%, "
                f"machine {fmt(numbers.get('machine'))}%"
                if numbers
                else pg_status
            )
            row(f"  postgres_cpu_pct[{processes}].{kind}", "", "", f"{text} (% of one core)")
    row(
        "pa5_postgres_8_vs_4",
        peer(r.get("pa5_postgres_8_vs_4"), pg_status),
        "x",
        "commands/s at 8 processes over 4; target >= 1.0",
    )
    row(
        "kib_per_live_project",
        fmt(r["kib_per_live_project"]),
        "KiB",
        "store: memory, tracemalloc; target <= 4",
    )
    row(
        "kib_per_live_project_rss",
        fmt(r["kib_per_live_project_rss"]),
        "KiB",
        "store: memory, RSS delta",
    )
    for store in ("memory", "sqlite"):
        row(
            f"history_cost_ratio[{store}]",
            fmt(r["history_cost_ratio"].get(store)),
            "x",
            "urge at big/small history; target <= 1.2",
        )
    for store in ("sqlite", "postgres"):
        value = r["run_due_1m_s"].get(store)
        status = "ok" if store == "sqlite" or pg_status == "ok" else pg_status
        note = "target < 1"
        if store == "sqlite":
            raw = r["details"].get("run_due_sqlite", {}).get("raw_full_commit_per_s_before")
            note += f"; raw FULL commits just before: {fmt(raw)}/s (2 commits per firing)"
        row(f"run_due_1m_s[{store}]", peer(value, status), "s", note)
        row(
            f"  run_due_load_s[{store}]",
            peer(r["run_due_load_s"].get(store), status),
            "s",
            "bulk load, untimed",
        )
    row(
        "report_100k_s",
        fmt(r["report_100k_s"]),
        "s",
        "store: sqlite; metrics + leaderboard; target < 2",
    )
    row("  report_100k_metrics_s", fmt(r["report_100k_metrics_s"]), "s", "")
    row("  report_100k_leaderboard_s", fmt(r["report_100k_leaderboard_s"]), "s", "")
    row("import_ms", fmt(r["import_ms"]), "ms", "fresh interpreter, bytecode cached; target < 250")
    imp = r["details"].get("import", {})
    row(
        "  import_ms_env",
        fmt(r["import_ms_env"]),
        "ms",
        f"PYTHONDONTWRITEBYTECODE={imp.get('env_dont_write_bytecode')}; "
        f"interpreter start-up {fmt(imp.get('interpreter_startup_ms'))} ms",
    )

    width = [max(len(x[i]) for x in rows) for i in range(3)]
    lines = [
        f"approvalflow benchmarks ({r['mode']} run: sizes {_sizes_note(r)}) "
        f"on {r['machine'].get('cores')} cores, {r['machine'].get('cpu')}",
        "",
        f"{'figure':<{width[0]}}  {'value':>{width[1]}}  {'unit':<{width[2]}}  store / peer / note",
    ]
    for name, value, unit, against in rows:
        lines.append(f"{name:<{width[0]}}  {value:>{width[1]}}  {unit:<{width[2]}}  {against}")
    lines.append("")
    lines.append("targets:")
    for target in r["targets"].values():
        met = {True: "met", False: "NOT met", None: "n/a"}[target["met"]]
        value = fmt(target["value"])
        lines.append(f"  {met:<8} {target['what']:<58} {value:>10} (target {target['target']})")
    lines.append("")
    unfinished = {k: v for k, v in r["finished"].items() if v["finished"] != v["instances"]}
    lines.append(
        "instances finished: "
        + ("all" if not unfinished else f"NOT ALL: {unfinished}")
        + f" ({len(r['finished'])} variants)"
    )
    lines.append(f"elapsed: {r['elapsed_s']:.1f} s")
    return "\n".join(lines)


def _sizes_note(report: dict[str, Any]) -> str:
    s = report["sizes"]
    return (
        f"{s['repeats']} rounds, {s['memory_n']} inst in memory, {s['sqlite_n']} on SQLite, "
        f"{s['pg_n']}/process on PostgreSQL, {s['live']:,} live, {s['history_big']:,} events, "
        f"{s['due']:,} due of {s['due_total']:,} timers, {s['report']:,} projects"
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


# -- profiling -------------------------------------------------------------------------------

PROFILES = ("memory", "sqlite", "history", "run_due", "report")


def profile(workload: str, directory: str, top: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    if workload == "memory":
        engine, _ = w.new_engine()
        work: Callable[[], Any] = lambda: w.pa5_batch(engine, "PROF", 300)  # noqa: E731
    elif workload == "sqlite":
        work = lambda: w.pa5_sqlite(directory, "FULL", 100, "prof")  # noqa: E731
    elif workload == "history":
        work = lambda: w.history_cost("sqlite", directory, 2000, 10, 50, 3)  # noqa: E731
    elif workload == "run_due":
        work = lambda: w.run_due_sqlite(directory, 100_000, 1000)  # noqa: E731
    else:
        work = lambda: w.report_sqlite(directory, 10_000, "2026-03", 1)  # noqa: E731
    w.pa5_memory(20, "warm")  # first-use imports and caches stay out of the profile
    profiler.enable()
    result = work()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"profile of {workload}: {total:.2f} s under cProfile; result: ", end="")
    print({k: v for k, v in result.items() if not isinstance(v, list | dict)})
    entries = stats.stats  # type: ignore[attr-defined]
    print(f"\n{'own %':>6} {'cum %':>6} {'calls':>9}  function")
    for (filename, line, name), (_cc, calls, own, cum, _callers) in sorted(
        entries.items(), key=lambda item: -item[1][2]
    )[:top]:
        print(
            f"{100 * own / total:6.1f} {100 * cum / total:6.1f} {calls:9d}  "
            f"{w._short(filename)}:{line}({name})"
        )


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, scaled-down sizes")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        help="PostgreSQL URL (default: $APPROVALFLOW_TEST_POSTGRES or the local server)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--dir", help="where the SQLite files go (default: a temp directory)")
    parser.add_argument("--save", metavar="PATH", help="also write the JSON object to PATH")
    parser.add_argument("--profile", choices=PROFILES, help="profile one workload instead")
    parser.add_argument(
        "--only",
        choices=SECTION_NAMES,
        help="run one benchmark and list its figures and targets",
    )
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("APPROVALFLOW_BENCH_TINY") == "1"
    mode = "tiny" if tiny else "quick" if args.quick else "full"
    directory = tempfile.mkdtemp(prefix="approvalflow-bench-", dir=args.dir)
    try:
        if args.profile:
            profile(args.profile, directory, args.top)
            return 0
        bench = Bench(mode, directory, None if args.no_postgres else args.postgres)
        report = bench.run(args.only)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if args.save:
        with open(args.save, "w") as handle:
            json.dump(report, handle, indent=1, default=str)
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    elif args.only:
        print(figures(report))
    else:
        print(table(report))
    return 0


SECTION_NAMES = (
    "memory",
    "import",
    "in_memory",
    "sqlite",
    "postgresql",
    "history",
    "run_due",
    "reports",
)


def figures(report: dict[str, Any]) -> str:
    """One benchmark's figures, one per line, then the targets it measured, and the load."""
    lines = []
    skip = {"mode", "sizes", "machine", "targets", "finished", "stores", "details", "elapsed_s"}
    for key, value in report.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            for part, inner in value.items():
                lines.append(f"{key}[{part}]  {fmt(inner)}")
        else:
            lines.append(f"{key}  {fmt(value)}")
    for name, target in report["targets"].items():
        if target["value"] is not None:
            met = "met" if target["met"] else "NOT met"
            lines.append(f"target {name}: {fmt(target['value'])} {target['target']}: {met}")
    lines.append(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
