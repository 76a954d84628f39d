"""The task list's read model: its query over 100,000 projects, and what it costs a command.

1. ``Engine.tasks`` for one actor over 100,000 projects on SQLite (and on PostgreSQL, unless
   ``--no-postgres`` or the server is unreachable). The projects are copies of template
   projects taken through the built-in workflow by real commands (PA-5 cut at several points,
   and finished ones), bulk-loaded as a county's history would leave them: most projects done
   (``effective``), a few percent waiting somewhere (a review, a meeting, a branch to accept or
   decide, a next step). Each copy gets its snapshot and the task rows its commits would have
   written (``approvalflow.tasks.task_rows``), with the project id replaced. Then
   ``Engine.tasks`` is timed (median of ``--repeats`` calls) for a department's officer, a
   pre-review unit's reviewer and the chair. Target: under 50 ms for one actor.
2. The command path with and without the read model, in the same run, rounds alternating:
   PA-5 in memory (µs per command) and on SQLite FULL (commands/s). "Without" is a store opened
   with ``Reports(tasks=False)`` (no task rows derived or written) and, on SQLite, a file whose
   two indexes of what each actor did (``events_by_actor``, ``events_by_principal``) are
   dropped: what the command path paid before the read model. Target: within +10%.

    .venv/bin/python benchmarks/tasks.py [--projects 100000] [--repeats 7] [--rounds 7]
        [--memory-instances 200] [--sqlite-instances 30] [--dir DIR] [--postgres URL]
        [--no-postgres] [--skip-query] [--skip-commands]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import PA5_COMMANDS, PA5_STEPS, new_engine, pa5_batch, quiet_logs, run_steps

from approvalflow.readmodels import Reports
from approvalflow.stores.memory import MemoryStore
from approvalflow.stores.projections import TASK_COLUMNS, TaskRow
from approvalflow.stores.serialization import pack_state, state_to_json
from approvalflow.stores.sqlite import SQLiteStore
from approvalflow.tasks import task_rows

TEMPLATE = "TPLPROJECT"
_DONE: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("start_construction", "guo", None),
    ("start_production", "guo", None),
    ("reach_target", "guo", None),
)
# (how many PA-5 steps, extra steps, weight in 1000): where a county's projects stand.
SHAPES: tuple[tuple[int, tuple[tuple[str, str, dict[str, Any] | None], ...], int], ...] = (
    (1, (), 5),  # lead: the recruiter negotiates
    (2, (), 5),  # negotiating
    (3, (), 5),  # pre-review: units to answer
    (7, (), 3),  # decision pending: the chair convenes
    (8, (), 3),  # a meeting: votes to cast
    (13, (), 4),  # decision approved: sign
    (14, (), 8),  # approval: five branches pending
    (18, (), 7),  # approval: two departments done, three to go
    (24, (), 20),  # approved: construction to start
    # effective, rated badly (好差评): zj owes a rectification, or the applicant confirms one
    (24, (*_DONE, ("rate", "fuyuan", {"item": "approval.zj", "score": 2})), 5),
    (
        24,
        (
            *_DONE,
            ("rate", "fuyuan", {"item": "approval.fgw", "score": 1}),
            ("rectify", "o_fgw", {"item": "approval.fgw", "text": "已整改"}),
        ),
        5,
    ),
    (24, _DONE, 930),  # effective: nothing waits
)
ACTORS = ("o_zj", "r_gxj", "chair")
Template = tuple[int, str, frozenset[TaskRow], int]


def templates() -> list[Template]:
    """(version, snapshot text, task rows, weight) of each template."""
    found = []
    for steps, extra, weight in SHAPES:
        engine, clock = new_engine()
        run_steps(engine, TEMPLATE, PA5_STEPS[:steps])
        for command, by, args in extra:
            clock.advance(timedelta(days=10))
            engine.execute(command, TEMPLATE, by, args)
        state = engine.project(TEMPLATE)
        text = state_to_json(state)
        assert text.count(f'"{TEMPLATE}"') == 1, state.stage
        found.append((state.version, text, task_rows(state), weight))
    return found


def copies(projects: int) -> Any:
    """(project id, version, snapshot text, task rows) of each copy."""
    shapes = templates()
    pattern = [t for t in shapes for _ in range(t[3])]
    quoted = f'"{TEMPLATE}"'
    for i in range(projects):
        version, text, rows, _ = pattern[(i * 7919) % len(pattern)]
        pid = f"P{i:07d}"
        yield (
            pid,
            version,
            text.replace(quoted, f'"{pid}"'),
            [row._replace(project=pid) for row in rows],
        )


def seed(engine_store: Any) -> None:
    """One project through the engine: the store keeps the rule set the copies are pinned to."""
    engine, _ = new_engine(engine_store)
    run_steps(engine, "SEED", PA5_STEPS[:1])


def load_sqlite(path: str, projects: int) -> float:
    """Fill ``path`` with ``projects`` copies of the templates; the seconds it took."""
    start = time.perf_counter()
    store = SQLiteStore(path)
    try:
        seed(store)
    finally:
        store.close()
    insert_task = (
        f"INSERT INTO task_rows ({', '.join(TASK_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(TASK_COLUMNS))})"
    )
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for pid, version, text, rows in copies(projects):
            connection.execute(
                "INSERT INTO projects (project, version) VALUES (?, ?)", (pid, version)
            )
            connection.execute(
                "INSERT INTO snapshots (project, version, state) VALUES (?, ?, ?)",
                (pid, version, pack_state(text)),
            )
            connection.executemany(insert_task, rows)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - start


def load_postgres(url: str, schema: str, projects: int) -> float:
    import psycopg

    from approvalflow.stores.postgres import PostgresStore

    start = time.perf_counter()
    store = PostgresStore.from_url(url, schema=schema)
    try:
        seed(store)
    finally:
        store.close()
    with psycopg.connect(url) as connection:
        connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
        all_copies = list(copies(projects))
        with connection.cursor() as cursor:
            with cursor.copy("COPY projects (project, version) FROM STDIN") as copy:
                for pid, version, _, _ in all_copies:
                    copy.write_row((pid, version))
            with cursor.copy("COPY snapshots (project, version, state) FROM STDIN") as copy:
                for pid, version, text, _ in all_copies:
                    copy.write_row((pid, version, pack_state(text)))
            with cursor.copy(f"COPY task_rows ({', '.join(TASK_COLUMNS)}) FROM STDIN") as copy:
                for _, _, _, rows in all_copies:
                    for row in rows:
                        copy.write_row(row)
        connection.commit()
        connection.autocommit = True
        connection.execute("ANALYZE")
    return time.perf_counter() - start


def measure(store: Any, repeats: int) -> dict[str, Any]:
    engine, _ = new_engine(store)
    figures: dict[str, Any] = {}
    for actor in ACTORS:
        items = engine.tasks(actor)  # warm: the rule set is read once
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            engine.tasks(actor)
            times.append(time.perf_counter() - start)
        figures[actor] = {
            "items": len(items),
            "median_ms": round(statistics.median(times) * 1000, 1),
            "best_ms": round(min(times) * 1000, 1),
        }
    return figures


def report_query(store_name: str, seconds: float, rows: int, figures: dict[str, Any]) -> None:
    print(f"tasks over {store_name}: loaded in {seconds:.1f} s, {rows} task rows")
    for actor, figure in figures.items():
        print(
            f"  Engine.tasks({actor!r}): {figure['items']} items, median "
            f"{figure['median_ms']} ms (best {figure['best_ms']} ms)"
        )


# -- the command path, with and without ------------------------------------------------------


def memory_round(n: int, tag: str, *, tasks: bool) -> float:
    """µs per command of ``n`` PA-5 instances in memory."""
    store = MemoryStore(read_model=Reports(tasks=tasks))
    engine, _ = new_engine(store)
    result = pa5_batch(engine, f"M{tag}", n)
    assert result["finished"] == n
    if tasks:  # the rows are derived when read: read them once, as a task list would
        engine.tasks("o_zj")
    return 1e6 / result["cmd_per_s"]


def sqlite_round(directory: str, n: int, tag: str, *, tasks: bool) -> tuple[float, float]:
    """Commands/s of ``n`` PA-5 instances on SQLite FULL, and this process's CPU time per
    command in µs (what the read model adds is CPU: the disk's fsyncs are one a commit either
    way, and on a shared disk they are most of the wall time's noise)."""
    path = os.path.join(directory, f"cmd_{tag}_{int(tasks)}.db")
    SQLiteStore(path).close()
    if not tasks:
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("DROP INDEX events_by_actor")
            connection.execute("DROP INDEX events_by_principal")
        connection.close()
    store = SQLiteStore(path, synchronous="FULL", read_model=Reports(tasks=tasks))
    try:
        engine, _ = new_engine(store)
        cpu = time.process_time()
        result = pa5_batch(engine, f"S{tag}", n)
        cpu = time.process_time() - cpu
        assert result["finished"] == n
        return float(result["cmd_per_s"]), cpu / ((n + 1) * PA5_COMMANDS) * 1e6
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


def wal_frames(directory: str, n: int, *, tasks: bool) -> float:
    """WAL frames (pages) a PA-5 command writes on SQLite, with or without the read model: a
    count, not a time, so the machine's load does not move it."""
    path = os.path.join(directory, f"frames_{int(tasks)}.db")
    SQLiteStore(path).close()
    if not tasks:
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("DROP INDEX events_by_actor")
            connection.execute("DROP INDEX events_by_principal")
        connection.close()
    store = SQLiteStore(path, synchronous="OFF", read_model=Reports(tasks=tasks))
    try:
        engine, _ = new_engine(store)
        pa5_batch(engine, "W", 2)
        store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store._connection.execute("PRAGMA wal_autocheckpoint = 0")
        result = pa5_batch(engine, "F", n)
        page = store._connection.execute("PRAGMA page_size").fetchone()[0]
        frames = os.path.getsize(path + "-wal") / (page + 24)  # each frame: a header and a page
        return frames / ((n + 1) * PA5_COMMANDS) if result["finished"] == n else float("nan")
    finally:
        store.close()


def command_path(directory: str, rounds: int, memory_n: int, sqlite_n: int) -> None:
    memory: dict[bool, list[float]] = {True: [], False: []}
    memory_ratios: list[float] = []
    sqlite: dict[bool, list[float]] = {True: [], False: []}
    sqlite_cpu: dict[bool, list[float]] = {True: [], False: []}
    sqlite_ratios: list[float] = []
    cpu_ratios: list[float] = []
    memory_round(20, "warm", tasks=True)
    memory_round(20, "warm", tasks=False)
    for r in range(rounds):
        order = (True, False) if r % 2 == 0 else (False, True)
        got = {with_tasks: memory_round(memory_n, f"{r}", tasks=with_tasks) for with_tasks in order}
        for with_tasks, value in got.items():
            memory[with_tasks].append(value)
        memory_ratios.append(got[True] / got[False])
        pairs = {
            with_tasks: sqlite_round(directory, sqlite_n, f"{r}", tasks=with_tasks)
            for with_tasks in order
        }
        for with_tasks, (rate, cpu) in pairs.items():
            sqlite[with_tasks].append(rate)
            sqlite_cpu[with_tasks].append(cpu)
        sqlite_ratios.append(pairs[False][0] / pairs[True][0])
        cpu_ratios.append(pairs[True][1] / pairs[False][1])
    med = statistics.median
    print(
        f"PA-5 in memory ({rounds} rounds of {memory_n} instances, {PA5_COMMANDS} commands "
        "each, median us/command):"
    )
    print(
        f"  with the read model {med(memory[True]):.1f}, without {med(memory[False]):.1f}; "
        f"with/without per round, median {med(memory_ratios):.3f}"
    )
    print(f"PA-5 on SQLite FULL ({rounds} rounds of {sqlite_n} instances, median cmd/s):")
    print(
        f"  with the read model {med(sqlite[True]):,.0f}, without {med(sqlite[False]):,.0f}; "
        f"time per command with/without per round, median {med(sqlite_ratios):.3f}"
    )
    print(
        f"  CPU per command: with {med(sqlite_cpu[True]):.0f} us, without "
        f"{med(sqlite_cpu[False]):.0f} us; with/without per round, median "
        f"{med(cpu_ratios):.3f}"
    )
    with_frames, without_frames = (wal_frames(directory, 40, tasks=t) for t in (True, False))
    print(
        f"  WAL frames per command: with {with_frames:.2f}, without {without_frames:.2f} "
        f"({with_frames / without_frames:.3f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memory-instances", type=int, default=200)
    parser.add_argument("--sqlite-instances", type=int, default=30)
    parser.add_argument("--dir", help="where the SQLite files go (default: a temp directory)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--skip-query", action="store_true")
    parser.add_argument("--skip-commands", action="store_true")
    args = parser.parse_args(argv)
    quiet_logs()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        if not args.skip_query:
            path = os.path.join(directory, "tasks.db")
            seconds = load_sqlite(path, args.projects)
            store = SQLiteStore(path)
            try:
                rows = store._connection.execute("SELECT COUNT(*) FROM task_rows").fetchone()[0]
                figures = measure(store, args.repeats)
            finally:
                store.close()
            report_query(f"{args.projects} SQLite projects", seconds, rows, figures)
            if not args.no_postgres:
                postgres_query(args.postgres, args.projects, args.repeats)
        if not args.skip_commands:
            command_path(directory, args.rounds, args.memory_instances, args.sqlite_instances)
    return 0


def postgres_query(url: str, projects: int, repeats: int) -> None:
    try:
        import psycopg

        from approvalflow.stores.postgres import PostgresStore

        psycopg.connect(url, connect_timeout=5).close()
    except Exception as error:  # an unreachable server skips the figure
        print(f"tasks over PostgreSQL: skipped ({error})")
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        seconds = load_postgres(url, schema, projects)
        store = PostgresStore.from_url(url, schema=schema)
        try:
            with psycopg.connect(url) as connection:
                connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
                row = connection.execute("SELECT COUNT(*) FROM task_rows").fetchone()
            figures = measure(store, repeats)
        finally:
            store.close()
        report_query(f"{projects} PostgreSQL projects", seconds, row[0] if row else 0, figures)
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    raise SystemExit(main())
