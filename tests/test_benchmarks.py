"""Smoke test of benchmarks/run.py: it runs at tiny sizes, prints every figure, and every
instance of every variant really finished. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
POSTGRES_URL = os.environ.get(
    "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)

FIGURES = (
    "pa5_memory_inst_per_s",
    "pa5_memory_cmd_per_s",
    "pa5_sqlite_full_cmd_per_s",
    "pa5_sqlite_normal_cmd_per_s",
    "raw_sqlite_full_commit_per_s",
    "raw_sqlite_normal_commit_per_s",
    "pa5_sqlite_full_vs_raw",
    "pa5_sqlite_normal_vs_raw",
    "pa5_postgres_cmd_per_s",
    "raw_postgres_commit_per_s",
    "pa5_postgres_vs_raw",
    "pa5_postgres_8_vs_4",
    "postgres_cpu_pct",
    "kib_per_live_project",
    "history_cost_ratio",
    "run_due_1m_s",
    "report_100k_s",
    "import_ms",
    "spiff_actions_per_s",
    "spiff_json_actions_per_s",
    "transitions_per_instance_triggers_per_s",
    "transitions_shared_triggers_per_s",
    "transitions_hsm_triggers_per_s",
    "transitions_shared_bare_trigger_us",
    "pa5_memory_cmd_vs_spiff",
    "pa5_memory_cmd_vs_spiff_json",
    "pa5_memory_cmd_vs_transitions_per_instance",
    "pa5_memory_cmd_vs_transitions_shared",
    "pa5_memory_cmd_vs_transitions_hsm",
    "command_cost_in_shared_triggers",
)
ALWAYS = (
    "pa5_memory",
    "pa5_sqlite_full",
    "pa5_sqlite_normal",
    "transitions_per_instance",
    "transitions_shared",
    "transitions_hsm",
    "transitions_bare",
    "live_projects_tracemalloc",
    "live_projects_rss",
    "history_memory",
    "history_sqlite",
    "run_due_sqlite",
    "report",
)


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--tiny", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _check(report: dict[str, Any]) -> None:
    assert report["mode"] == "tiny"
    missing = [key for key in FIGURES if key not in report]
    assert not missing, missing
    for variant in ALWAYS:
        assert variant in report["finished"], variant
    for variant, counts in report["finished"].items():
        assert counts["instances"] > 0, variant
        assert counts["finished"] == counts["instances"], (variant, counts)
    assert report["pa5_memory_cmd_per_s"] > 0
    assert report["details"]["pa5_shape"]["commands"] == 24
    for name, target in report["targets"].items():
        assert target["met"] in (True, False, None), name
    for key in ("pa5_postgres_cmd_per_s", "raw_postgres_commit_per_s", "pa5_postgres_vs_raw"):
        assert set(report[key]) == {"1", "4", "8"}, key
    assert set(report["history_cost_ratio"]) == {"memory", "sqlite"}
    assert set(report["run_due_1m_s"]) == {"sqlite", "postgres"}


def test_tiny_run_reports_every_figure_and_every_instance_finished() -> None:
    report = json.loads(_run("--json", "--postgres", POSTGRES_URL))  # stdout: the JSON only
    _check(report)
    if report["peers_status"]["SpiffWorkflow"] == "ok":
        assert report["finished"]["spiff"]["instances"] > 0
        assert report["finished"]["spiff_json"]["instances"] > 0
    if isinstance(report["machine"]["postgresql"], dict):
        for variant in (
            "pa5_postgres_1",
            "pa5_postgres_4",
            "pa5_postgres_8",
            "raw_postgres_8",
            "run_due_postgres",
        ):
            assert variant in report["finished"], variant
        assert report["pa5_postgres_cmd_per_s"]["4"] > 0
    elif os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unavailable on CI: {report['machine']['postgresql']}")


def test_without_spiffworkflow_the_peer_rows_say_not_installed(tmp_path: Path) -> None:
    # A package that refuses to import stands in for SpiffWorkflow being absent. This run
    # prints the table (the run above checked the JSON).
    blocker = tmp_path / "SpiffWorkflow"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('not installed (test)')\n")
    table = _run("--no-postgres", env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    for figure in FIGURES:
        assert figure in table, figure
    assert "not installed" in rows["spiff_actions_per_s"]
    assert "not installed" in rows["spiff_json_actions_per_s"]
    assert "unavailable" in rows["pa5_postgres_cmd_per_s[1]"]
    assert "instances finished: all" in table


def test_the_size_benchmark_measures_every_table_of_finished_projects(tmp_path: Path) -> None:
    """benchmarks/size.py at a tiny size: every project finished, a positive size per table."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "size.py"),
            "--projects",
            "10",  # compressed, 3 snapshots fit in the empty store's page: no growth to see
            "--json",
            "--no-postgres",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    sqlite = report["sqlite"]
    assert (sqlite["projects"], sqlite["finished"]) == (10, 10)
    assert sqlite["kib_per_project"] > 0
    assert {"events", "snapshots"} <= set(sqlite["kib_per_project_by_table"])
    assert report["shape"]["commands"] == 24
    # Then finished (effective) and archived: the events and snapshots are gone, a pack each.
    assert (sqlite["effective"]["finished"], sqlite["archived"]["finished"]) == (10, 10)
    archived = sqlite["archived"]["kib_per_project_by_table"]
    assert "archives" in archived and not {"events", "snapshots"} & set(archived)


def test_the_commit_benchmark_reports_client_and_server_cpu(postgres_url: str) -> None:
    """benchmarks/pg_commit.py at a tiny size: every figure per command, positive; the
    commit's and the load's CPU within the command's."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "pg_commit.py"),
            "--url",
            postgres_url,
            "--projects",
            "1",
            "--repeats",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    medians: dict[str, Any] = json.loads(done.stdout)["medians"]
    assert set(medians) == {
        "wall_us",
        "client_cpu_us",
        "commit_cpu_us",
        "commit_wall_us",
        "load_cpu_us",
        "load_wall_us",
        "server_cpu_us",
    }
    assert all(value is None or value >= 0 for value in medians.values())
    assert medians["wall_us"] > 0
    assert medians["commit_cpu_us"] + medians["load_cpu_us"] <= medians["client_cpu_us"]


@pytest.mark.parametrize("workload", ["run_due", "report"])
def test_a_bulk_loaded_store_verifies(workload: str, tmp_path: Path) -> None:
    """The benchmarks' bulk loads write what the engine's commits would: every copy's events
    chained, its snapshot with its digest, its timers and its report rows, so `audit verify`
    finds nothing, and the loaded snapshots are trusted by every load."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import workloads
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    from approvalflow.engine.definition import RuleBook
    from approvalflow.stores.audit import verify_store
    from approvalflow.stores.sqlite import SQLiteStore

    path = str(tmp_path / f"{workload}.db")
    SQLiteStore(path).close()
    if workload == "run_due":
        loaded = workloads.load_run_due_sqlite(path, 200, 5)
        assert loaded.scheduled >= 200
    else:
        workloads.load_report_sqlite(path, 30)
    with SQLiteStore(path) as store:
        engine, _ = workloads.new_engine(store)
        report = verify_store(store, timers_for=RuleBook(engine.definition, store).timers_for)
        assert report.ok, report.findings[:5]
        assert report.projects == len(store.project_ids()) > 0
        assert report.events > report.projects
        snapshot = store.snapshot_record(store.project_ids()[0])
        assert snapshot is not None and snapshot[2] is not None
