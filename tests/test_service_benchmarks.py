"""Smoke test of the service benchmarks: they run at the smallest size and print every figure,
every command answered (they raise otherwise). No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_service_parts_splits_a_request_into_engine_app_and_http() -> None:
    out = _run("service_parts.py", "--projects", "1", "--rounds", "1")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    for part in ("engine", "app", "http"):
        cpu, wall, rate = (float(value) for value in rows[part])
        assert cpu > 0 and wall > 0 and rate > 0
    assert "client" in rows
    assert "of in-process" in out and "load average" in out


def test_service_reports_each_client_count_beside_in_process(tmp_path: Path) -> None:
    """Each store and client count is a row (on the disk and, with --fast-dir, on a second
    folder in the same run), with the server's and the clients' CPU; --json writes the rows."""
    figures = tmp_path / "service.json"
    out = _run(
        "service.py",
        *("--clients", "1", "2", "--projects-per-client", "1", "--no-postgres"),
        *("--fast-dir", str(tmp_path), "--json", str(figures)),
    )
    for kind in ("sqlite:", "sqlite-fast:"):
        lines = [line for line in out.splitlines() if line.startswith(kind)]
        assert [line.split()[1] for line in lines] == ["1", "2"]
        assert all("in-process" in line and "p99" in line for line in lines)
        assert all("server" in line and "clients" in line for line in lines)
    assert out.startswith("load average before:") and "load average after:" in out
    rows = json.loads(figures.read_text())["rows"]
    assert {(row["store"], row["clients"]) for row in rows} == {
        (kind, n) for kind in ("sqlite", "sqlite-fast") for n in (1, 2)
    }
    assert all(row["ratio"] > 0 and row["server_cpu_us"] >= 0 for row in rows)
