"""What one command costs on PostgreSQL, in one process: ``python benchmarks/pg_commit.py``.

Runs PA-5 (``workloads.run_pa5``) through the engine on a PostgresStore and prints, per
command, the wall time and the client's CPU (the whole command, and the part spent in
``store.commit`` and ``store.load``), and the CPU of the server backend serving the store's
connection (``/proc/<pid>/stat`` of ``pg_backend_pid()``: only when the server runs on this
machine). Each figure is the median of ``--repeats`` runs of ``--projects`` projects.

The CPU figures are what bounds the rate on a machine whose cores the engine processes and the
server share (docs/performance.md, "PostgreSQL writers"); the wall figures move with the load.

``--json`` prints one JSON object instead of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import PA5_COMMANDS, new_engine, quiet_logs, run_pa5

DEFAULT_POSTGRES = os.environ.get(
    "APPROVALFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def _backend_cpu(pid: int) -> float | None:
    """The backend's user + system CPU seconds, or ``None`` if it is not on this machine."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, projects: int) -> dict[str, float | None]:
    """One run: ``projects`` PA-5 projects, figures in microseconds per command."""
    from approvalflow.stores.postgres import PostgresStore

    store = PostgresStore.from_url(url, schema="bench_commit_" + uuid.uuid4().hex[:8])
    try:
        engine, _ = new_engine(store)
        run_pa5(engine, "WARM")
        spent = {"commit_cpu": 0.0, "commit_wall": 0.0, "load_cpu": 0.0, "load_wall": 0.0}
        commit, load = store.commit, store.load

        def timed_commit(**kwargs: Any) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                commit(**kwargs)
            finally:
                spent["commit_wall"] += time.perf_counter() - wall
                spent["commit_cpu"] += time.process_time() - cpu

        def timed_load(project: str) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return load(project)
            finally:
                spent["load_wall"] += time.perf_counter() - wall
                spent["load_cpu"] += time.process_time() - cpu

        store.commit = timed_commit  # type: ignore[method-assign]
        store.load = timed_load  # type: ignore[method-assign]
        row = store._connection.execute("SELECT pg_backend_pid()").fetchone()
        backend = int(row[0]) if row is not None else -1
        server_before = _backend_cpu(backend)
        wall, cpu = time.perf_counter(), time.process_time()
        finished = sum(run_pa5(engine, f"P{i}") for i in range(projects))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server_after = _backend_cpu(backend)
        if finished != projects:
            raise SystemExit(f"only {finished} of {projects} projects finished")
        commands = projects * PA5_COMMANDS
        result: dict[str, float | None] = {
            "wall_us": wall / commands * 1e6,
            "client_cpu_us": cpu / commands * 1e6,
            **{f"{key}_us": value / commands * 1e6 for key, value in spent.items()},
            "server_cpu_us": None,
        }
        if server_before is not None and server_after is not None:
            result["server_cpu_us"] = (server_after - server_before) / commands * 1e6
        return result
    finally:
        store.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_POSTGRES)
    parser.add_argument("--projects", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    quiet_logs()
    runs = [measure(args.url, args.projects) for _ in range(args.repeats)]
    medians: dict[str, float | None] = {}
    for key in runs[0]:
        values = [run[key] for run in runs if run[key] is not None]
        medians[key] = statistics.median(values) if values else None  # type: ignore[type-var]
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"medians": medians, "runs": runs, "loadavg": load}))
        return 0
    print(
        f"PA-5 on PostgreSQL, one process: {args.projects} projects x {PA5_COMMANDS} commands, "
        f"median of {args.repeats} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"
    )
    for key, value in medians.items():
        shown = "n/a (server not on this machine)" if value is None else f"{value:8.0f} us/cmd"
        print(f"  {key:18} {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
