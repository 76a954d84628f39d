"""Smoke test of benchmarks/province_scale.py in its tiny mode: the bulk load of a province on
PostgreSQL verifies as a store the engine wrote, and every figure is printed. No timing is
asserted (speed belongs to the benchmark's own run, docs/scaling.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "province_scale.py"

TIMINGS = (
    "tasks",
    "show",
    "county_leaderboard",
    "province_leaderboard",
    "province_figures",
    "department_ranking",
    "intakes",
)


@pytest.fixture
def scale_database(postgres_url: str) -> Any:
    """A database of its own (the script drops and makes it), dropped after the test."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"af_scale_test_{uuid.uuid4().hex[:8]}"
    yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    with psycopg.connect(make_conninfo(postgres_url, dbname="postgres"), autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class TestTinyProvince:
    def test_the_tiny_load_verifies_and_every_figure_is_there(self, scale_database: str) -> None:
        """2,000 projects over 4 counties: loaded, a county verified with its timers, each
        reading timed, and run_due fired the timers it found due."""
        done = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                "--url",
                scale_database,
                "--projects",
                "2000",
                "--counties",
                "4",
                "--template-stride",
                "6",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        figures = json.loads(done.stdout)
        assert figures["projects"] == 2000 and figures["counties"] == 4
        assert figures["rows"]["projects"] == 2000
        assert figures["rows"]["events"] > 2000 * 5
        assert figures["verify"]["ok"], figures["verify"]
        assert figures["verify"]["projects"] == 500
        assert figures["bytes_per_project"] > 0 and figures["database_bytes"] > 0
        timings = figures["timings"]
        for name in TIMINGS:
            assert timings[name]["repeats"] >= 5 and timings[name]["median_ms"] > 0, name
        assert timings["tasks"]["items"] > 0
        assert timings["province_leaderboard"]["counties"] == 4
        assert timings["intakes"]["projects"] > 0
        assert timings["run_due"]["fired"] == timings["run_due"]["due"] > 0
