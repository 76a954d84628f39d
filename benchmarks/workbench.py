"""Every workbench page's time on a SQLite store of many projects (default 100,000).

    python benchmarks/workbench.py [--projects 100000] [--repeats 5] [--dir DIR] [--keep FILE]

The store is bulk-loaded as ``report_100k`` loads it (``workloads.load_report_sqlite``: copies
of 24 engine-made projects at four stages, six start months, 20 teams, with their chained
events and the report tables' and task list's rows their commits would have written), then
one page is asked ``--repeats`` times through the app in process (Litestar's test client: the
page's own time, no network), signed in as an officer (``o_fgw``) with tasks on the copies.
A page whose first answer takes more than five seconds is asked once. Printed: the median and
every sample per page, in ms, the median CPU time of the process (``cpu_median_ms``: the
page's own work, robust to a loaded machine) and the target (200 ms); nothing is asserted
(the figures go to docs/workbench.md by hand). ``--keep FILE`` loads the store into FILE and
keeps it, or measures FILE as it is when it exists already.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from workloads import TEAMS, county_actors, load_report_sqlite  # noqa: E402

PAGES = (
    ("my_tasks", "/"),
    ("project", "/project/R0000001"),
    ("leaderboard", "/leaderboard?month=2026-03"),
    ("late", "/late"),
    ("metrics", "/metrics"),
    ("calendar", "/calendar?month=2026-03"),
)
TARGET_MS = 200.0


def load(path: str, projects: int) -> float:
    """Bulk-load ``projects`` copies into a new SQLite store at ``path``; seconds taken: the
    copies' chained events, snapshots, timers and report rows (``workloads.load_report_sqlite``)
    and the task rows their commits would have written (``approvalflow.tasks.task_rows``)."""
    from approvalflow.stores.projections import TASK_COLUMNS
    from approvalflow.stores.sqlite import SQLiteStore
    from approvalflow.tasks import task_rows

    SQLiteStore(path).close()
    started = time.perf_counter()
    loaded = load_report_sqlite(path, projects)
    rows_of = [sorted(task_rows(state)) for state in loaded["states"]]
    insert_task = (
        f"INSERT INTO task_rows ({', '.join(TASK_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(TASK_COLUMNS))})"
    )
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for i in range(projects):
            pid, team = f"R{i:07d}", TEAMS[i % len(TEAMS)]
            connection.executemany(
                insert_task,
                [row._replace(project=pid, team=team) for row in rows_of[i % len(rows_of)]],
            )
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - started


def measure(path: str, repeats: int) -> dict[str, Any]:
    from datetime import datetime

    from litestar.testing import TestClient

    from approvalflow import ManualClock
    from approvalflow.calendar import SHANGHAI
    from approvalflow.server import create_app, issue_token
    from approvalflow.stores import open_store

    store = open_store(f"sqlite:///{path}")
    found: dict[str, Any] = {}
    try:
        clock = ManualClock(datetime(2026, 3, 20, 10, 0, tzinfo=SHANGHAI))
        app = create_app(store=store, actors=county_actors(), clock=clock)
        token, _ = issue_token(store, "workbench", actor="o_fgw")
        with TestClient(app) as client:
            form = client.get("/signin").text
            csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', form)
            assert csrf
            client.post("/signin/token", data={"_csrf": csrf.group(1), "token": token})
            for name, url in PAGES:
                samples: list[float] = []
                cpu: list[float] = []
                for _ in range(repeats):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    response = client.get(url)
                    samples.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - cpu_started) * 1000)
                    assert response.status_code == 200, (url, response.status_code)
                    if samples[0] > 5000:
                        break
                found[name] = {
                    "url": url,
                    "median_ms": round(statistics.median(samples), 1),
                    "samples_ms": [round(s, 1) for s in samples],
                    "cpu_median_ms": round(statistics.median(cpu), 1),
                    "bytes": len(response.content),
                    "under_target": statistics.median(samples) < TARGET_MS,
                }
                print(
                    f"  {name:12} {found[name]['median_ms']:10.1f} ms"
                    f" {found[name]['cpu_median_ms']:10.1f} ms CPU",
                    file=sys.stderr,
                )
    finally:
        store.close()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="parent of the temporary SQLite file")
    parser.add_argument("--keep", default=None, help="the SQLite file to load once and keep")
    options = parser.parse_args()
    logging.getLogger("approvalflow").setLevel(logging.WARNING)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(dir=options.dir) as directory:
        path = options.keep or os.path.join(directory, "workbench.db")
        load_s = 0.0
        if not os.path.exists(path):
            print(f"loading {options.projects} projects...", file=sys.stderr)
            load_s = load(path, options.projects)
            print(f"  loaded in {load_s:.1f} s", file=sys.stderr)
        pages = measure(path, options.repeats)
    load_avg = os.getloadavg()
    print(
        json.dumps(
            {
                "projects": options.projects,
                "load_s": round(load_s, 1),
                "target_ms": TARGET_MS,
                "loadavg": [round(x, 2) for x in load_avg],
                "pages": pages,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
