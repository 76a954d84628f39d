"""Bytes on disk per finished PA-5 project, table by table, on SQLite and PostgreSQL, live and
archived.

    .venv/bin/python benchmarks/size.py                 # 1,000 projects on each store
    .venv/bin/python benchmarks/size.py --projects 200 --no-postgres --json

Each store gets ``--projects`` PA-5 instances run to ``approved`` through the engine (the same
steps as ``benchmarks/run.py``), with the outbox left as a store without a channel leaves it:
the first figure (comparable with D230-D233's). Then each is taken on to ``effective``
(``start_construction``, ``start_production``, ``reach_target``: finished, D265) and measured
live, and then archived (``Engine.archive``, D267) and measured again. Each figure is the
store's size then minus its size when empty, divided by the number of projects: on SQLite the
pages each table and index holds (``dbstat``, after ``VACUUM``), on PostgreSQL
``pg_total_relation_size`` of each table (heap, indexes and TOAST, after ``VACUUM FULL``; an
archive's partition is a table of its own). The target is 8 KiB per finished project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import new_engine, pa5_shape, quiet_logs, run_pa5

TARGET_KIB = 8.0


_TO_EFFECTIVE = ("start_construction", "start_production", "reach_target")
ARCHIVE = "size_q1"


def _measured(
    store: Any, n: int, empty: dict[str, int], tables: Callable[[], dict[str, int]]
) -> dict[str, Any]:
    """Run the ``n`` projects to ``approved``, then to ``effective``, then archive them,
    measuring the store after each (``tables``); the first figure is the report's own."""
    engine, _ = new_engine(store)
    ids = [f"SZ-{i}" for i in range(n)]
    finished = sum(run_pa5(engine, pid) for pid in ids)
    report = _per_project(empty, tables(), n, finished)
    for pid in ids:
        for command in _TO_EFFECTIVE:
            engine.execute(command, pid, "guo")
    effective = sum(engine.project(pid).stage == "effective" for pid in ids)
    report["effective"] = _per_project(empty, tables(), n, effective)
    for pid in ids:
        engine.archive(pid, ARCHIVE)
    archived = sum(store.archive_of(pid) == ARCHIVE for pid in ids)
    report["archived"] = _per_project(empty, tables(), n, archived)
    return report


def sqlite_sizes(directory: str, n: int) -> dict[str, Any]:
    import sqlite3

    from approvalflow.stores.sqlite import SQLiteStore

    path = os.path.join(directory, "size.db")

    def tables() -> dict[str, int]:
        with sqlite3.connect(path) as connection:
            connection.execute("VACUUM")
            rows = connection.execute(
                "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1"
            ).fetchall()
        connection.close()
        return {name: int(size) for name, size in rows}

    store = SQLiteStore(path)
    store.close()
    empty = tables()
    store = SQLiteStore(path)
    try:
        return _measured(store, n, empty, tables)
    finally:
        store.close()


def postgres_sizes(url: str, n: int) -> dict[str, Any]:
    import psycopg

    from approvalflow.stores.postgres import PostgresStore

    schema = f"bench_size_{uuid.uuid4().hex[:8]}"

    def tables() -> dict[str, int]:
        with psycopg.connect(url, autocommit=True) as connection:
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
                )
            ]
            found = {}
            for name in names:
                connection.execute(f'VACUUM FULL "{schema}"."{name}"')
                size = connection.execute(
                    "SELECT pg_total_relation_size(%s)", (f'"{schema}"."{name}"',)
                ).fetchone()
                found[name] = int(size[0]) if size else 0
        return found

    store = PostgresStore.from_url(url, schema=schema)
    try:
        return _measured(store, n, tables(), tables)
    finally:
        store.close()
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _per_project(
    empty: dict[str, int], full: dict[str, int], n: int, finished: int
) -> dict[str, Any]:
    grown = {name: full[name] - empty.get(name, 0) for name in full}
    per_table = {
        name: round(size / n / 1024, 2)
        for name, size in sorted(grown.items(), key=lambda item: -item[1])
        if size > 0
    }
    total = sum(grown.values()) / n / 1024
    return {
        "projects": n,
        "finished": finished,
        "kib_per_project": round(total, 2),
        "kib_per_project_by_table": per_table,
        "target_kib": TARGET_KIB,
        "met": total <= TARGET_KIB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options = parser.parse_args(argv)
    quiet_logs()
    report: dict[str, Any] = {"shape": pa5_shape()}
    if not options.no_sqlite:
        with tempfile.TemporaryDirectory() as directory:
            report["sqlite"] = sqlite_sizes(directory, options.projects)
    if not options.no_postgres:
        try:
            report["postgres"] = postgres_sizes(options.postgres, options.projects)
        except Exception as error:  # an unreachable server leaves the figure out
            report["postgres"] = {"error": str(error)}
    if options.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"PA-5: {report['shape']['commands']} commands, {report['shape']['events']} events "
        "per project"
    )
    for store in ("sqlite", "postgres"):
        figures: dict[str, Any] | None = report.get(store)
        if not figures or "error" in figures:
            print(f"{store}: not measured ({(figures or {}).get('error', 'skipped')})")
            continue
        _print_store(store, figures, print)
    return 0


def _print_store(store: str, figures: dict[str, Any], out: Callable[[str], None]) -> None:
    for label, part, how in (
        ("approved, live", figures, "finished"),
        ("effective, live", figures["effective"], "effective"),
        ("effective, archived", figures["archived"], "archived"),
    ):
        met = "met" if part["met"] else "NOT met"
        out(
            f"{store} ({label}): {part['kib_per_project']} KiB per project over "
            f"{part['projects']:,} ({part['finished']:,} {how}); target <= "
            f"{part['target_kib']} KiB: {met}"
        )
        for name, kib in part["kib_per_project_by_table"].items():
            out(f"  {name:<24}{kib:>8} KiB")


if __name__ == "__main__":
    raise SystemExit(main())
