"""The task list over 100,000 projects on SQLite: ``Engine.tasks`` for one actor.

The projects are copies of template projects taken through the built-in workflow by real
commands (PA-5 cut at several points, and finished ones), bulk-loaded as a county's history would
leave them: most projects done (``effective``), a few percent waiting somewhere (a review, a
meeting, a branch to accept or decide, a next step). Each copy gets its snapshot and the task
read model's rows its commit would have written (``approvalflow.tasks.task_records``), with the
project id replaced. Then ``Engine.tasks`` is timed (median of several calls) for a department's
officer, a pre-review unit's reviewer and the chair; the target is under 50 ms for one actor.

    .venv/bin/python benchmarks/tasks.py [--projects 100000] [--repeats 7] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import PA5_STEPS, new_engine, quiet_logs, run_steps

from approvalflow.stores.serialization import state_to_json
from approvalflow.stores.sqlite import SQLiteStore
from approvalflow.tasks import task_records

TEMPLATE = "TPLPROJECT"
# (how many PA-5 steps, extra steps, weight in 1000): where a county's projects stand.
SHAPES: tuple[tuple[int, tuple[tuple[str, str], ...], int], ...] = (
    (1, (), 5),  # lead: the recruiter negotiates
    (2, (), 5),  # negotiating
    (3, (), 5),  # pre-review: units to answer
    (7, (), 3),  # decision pending: the chair convenes
    (8, (), 3),  # a meeting: votes to cast
    (13, (), 4),  # decision approved: sign
    (14, (), 8),  # approval: five branches pending
    (18, (), 7),  # approval: two departments done, three to go
    (24, (), 20),  # approved: construction to start
    (
        24,
        (
            ("start_construction", "guo"),
            ("start_production", "guo"),
            ("reach_target", "guo"),
        ),
        940,
    ),  # effective: nothing waits
)
ACTORS = ("o_zj", "r_gxj", "chair")


def templates() -> list[tuple[int, str, tuple[tuple[str, str], ...], int]]:
    """(version, snapshot text, task records, weight) of each template."""
    found = []
    for steps, extra, weight in SHAPES:
        engine, clock = new_engine()
        run_steps(engine, TEMPLATE, PA5_STEPS[:steps])
        for command, by in extra:
            clock.advance(timedelta(days=10))
            engine.execute(command, TEMPLATE, by)
        state = engine.project(TEMPLATE)
        text = state_to_json(state)
        assert text.count(f'"{TEMPLATE}"') == 1, state.stage
        found.append((state.version, text, task_records(state), weight))
    return found


def load(path: str, projects: int) -> float:
    """Fill ``path`` with ``projects`` copies of the templates; the seconds it took."""
    start = time.perf_counter()
    store = SQLiteStore(path)
    try:
        # One project through the engine: the store keeps the rule set the copies are pinned to.
        engine, _ = new_engine(store)
        run_steps(engine, "SEED", PA5_STEPS[:1])
    finally:
        store.close()
    shapes = templates()
    pattern = [t for t in shapes for _ in range(t[3])]
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        quoted = f'"{TEMPLATE}"'
        for i in range(projects):
            version, text, records, _ = pattern[(i * 7919) % len(pattern)]
            pid = f"P{i:07d}"
            connection.execute(
                "INSERT INTO projects (project, version) VALUES (?, ?)", (pid, version)
            )
            connection.execute(
                "INSERT INTO snapshots (project, version, state) VALUES (?, ?, ?)",
                (pid, version, text.replace(quoted, f'"{pid}"')),
            )
            connection.executemany(
                "INSERT INTO task_rows (project, seq, party, payload) VALUES (?, ?, ?, ?)",
                [
                    (pid, seq, party, payload.replace(quoted, f'"{pid}"'))
                    for seq, (party, payload) in enumerate(records)
                ],
            )
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - start


def measure(path: str, repeats: int) -> dict[str, Any]:
    store = SQLiteStore(path)
    try:
        engine, _ = new_engine(store)
        rows = store._connection.execute("SELECT COUNT(*) FROM task_rows").fetchone()[0]
        figures: dict[str, Any] = {"task_rows": rows, "actors": {}}
        for actor in ACTORS:
            items = engine.tasks(actor)  # warm: the rule set is read once
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                engine.tasks(actor)
                times.append(time.perf_counter() - start)
            figures["actors"][actor] = {
                "items": len(items),
                "median_ms": round(statistics.median(times) * 1000, 1),
                "best_ms": round(min(times) * 1000, 1),
            }
        return figures
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dir", help="where the SQLite file goes (default: a temp directory)")
    args = parser.parse_args(argv)
    quiet_logs()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        path = os.path.join(directory, "tasks.db")
        seconds = load(path, args.projects)
        figures = measure(path, args.repeats)
    print(
        f"tasks_{args.projects}: {args.projects} projects loaded in {seconds:.1f} s, "
        f"{figures['task_rows']} task rows"
    )
    for actor, figure in figures["actors"].items():
        print(
            f"  Engine.tasks({actor!r}): {figure['items']} items, median "
            f"{figure['median_ms']} ms (best {figure['best_ms']} ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
