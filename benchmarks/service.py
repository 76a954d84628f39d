"""The HTTP service under N concurrent clients, beside the in-process engine, in one run.

    python benchmarks/service.py [--clients 1 4 16] [--projects-per-client 3] [--rounds 3]
                                 [--postgres URL | --no-postgres] [--dir FOLDER]

Each client is a thread with its own keep-alive connection to one ``approvalflow serve``
process; it takes its own projects from creation to signing (15 commands each, a few of them
with ``If-Match``), so clients never wait on one project's order, only on the store. Printed:
commands/s, p50 and p99 latency per N and store, and the in-process engine's commands/s on the
same store kind for the same commands (one thread, the same number of projects as the N clients
take), run just before each service run on a fresh store of its own; one project is run
untimed first on each, so lazy imports and first connections are not counted. With
``--rounds R`` each figure is the median of R rounds and the ratio the median of the per-round
ratios (the machine is noisy). SQLite runs with its default ``synchronous=FULL``. The load
average is printed beside the figures. ``--dir`` puts the SQLite files (the engine's and the
service's) in another folder: ``--dir /dev/shm`` shows the service's fixed cost without the
disk's wait; the target is read on a disk, the default (the system's temporary folder).
Nothing here is asserted: figures go to docs/performance.md by hand.
``benchmarks/service_parts.py`` says where a request's time goes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ACTORS = ROOT / "examples" / "java" / "actors.yaml"
FIELDS = {
    "name": "富远新型铝材产业园",
    "investment": "15亿",
    "applicant": "fuyuan",
    "leader": "huang",
    "department": "gxj",
    "team": "light_alloy",
}
STEPS: list[tuple[str, str, dict[str, Any]]] = [
    ("negotiate", "guo", {}),
    ("submit_pre_review", "guo", {"materials": []}),
    *[("opinion", f"r_{u}", {"verdict": "pass"}) for u in ("gxj", "fgw", "zrzy", "sthj")],
    ("convene", "chair", {"present": ["chair", "m1"]}),
    ("vote", "chair", {"vote": "approve"}),
    ("vote", "m1", {"vote": "approve"}),
    ("close_meeting", "chair", {}),
    ("sign", "guo", {}),
    ("report_funds", "guo", {"amount": "1万"}),
    ("report_funds", "guo", {"amount": "1万"}),
    ("report_funds", "guo", {"amount": "1万"}),
]
COMMANDS_PER_PROJECT = 1 + len(STEPS)


def _cli(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from approvalflow.cli import main; sys.exit(main())",
        *args,
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _client(port: int, token: str, prefix: str, projects: int, latencies: list[float]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(path: str, actor: str, body: dict[str, Any], if_match: str | None = None) -> str:
        headers = {
            "Authorization": f"Bearer {token}",
            "Approvalflow-Actor": actor,
            "Content-Type": "application/json",
        }
        if if_match:
            headers["If-Match"] = if_match
        started = time.perf_counter()
        connection.request("POST", path, json.dumps(body), headers)
        response = connection.getresponse()
        text = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status >= 300:
            raise RuntimeError(f"{path} as {actor}: {response.status} {text[:200]!r}")
        return response.getheader("ETag") or ""

    for n in range(projects):
        project = f"{prefix}-{n}"
        etag = call("/projects", "guo", {"id": project, "fields": FIELDS})
        for i, (command, actor, args) in enumerate(STEPS):
            # Every other command checks the version it read, as an editing client would.
            etag = call(
                f"/projects/{project}/commands/{command}", actor, args, etag if i % 2 else None
            )
    connection.close()


def service_run(store: str, clients: int, projects: int) -> dict[str, float]:
    token = subprocess.run(
        _cli("token", "issue", "--store", store, "--system", "bench", "--trusted"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        _cli("serve", "--store", store, "--actors", str(ACTORS), "--port", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        run = uuid.uuid4().hex[:6]
        # One project first, untimed: the server's first command loads what it loads lazily.
        _client(port, token, f"W{run}", 1, [])
        latencies: list[float] = []
        threads = [
            threading.Thread(target=_client, args=(port, token, f"B{run}-{c}", projects, latencies))
            for c in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)
    expected = clients * projects * COMMANDS_PER_PROJECT
    if len(latencies) != expected:
        raise RuntimeError(f"{len(latencies)} of {expected} commands answered")
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "commands_per_s": expected / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
    }


def in_process(store: str, projects: int) -> float:
    from approvalflow import Engine
    from approvalflow.cli.worker import load_actors
    from approvalflow.stores import open_store

    engine = Engine(actors=load_actors(ACTORS), store=open_store(store, create=True))
    run = uuid.uuid4().hex[:6]

    def one(project: str) -> None:
        engine.execute("create", project, "guo", FIELDS)
        for command, actor, args in STEPS:
            engine.execute(command, project, actor, args)

    # One whole project untimed, as for the service: the first deadline loads the calendar.
    one(f"W{run}")
    started = time.perf_counter()
    for n in range(projects):
        one(f"I{run}-{n}")
    elapsed = time.perf_counter() - started
    engine.store.close()
    return projects * COMMANDS_PER_PROJECT / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--projects-per-client", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgres", default=os.environ.get("APPROVALFLOW_TEST_POSTGRES"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--dir", help="where the SQLite files go (default: a temporary folder)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as folder:
        stores = {"sqlite": lambda: f"sqlite:///{Path(folder) / f'{uuid.uuid4().hex}.db'}"}
        if options.postgres and not options.no_postgres:
            base = options.postgres
            sep = "&" if "?" in base else "?"
            stores["postgres"] = lambda: f"{base}{sep}schema=bench_{uuid.uuid4().hex[:12]}"
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"SQLite files in {folder}")
        for kind, make in stores.items():
            for clients in options.clients:
                engine_rates: list[float] = []
                runs: list[dict[str, float]] = []
                for _ in range(options.rounds):
                    # Back to back on the same disk: the ratio is taken within the round.
                    engine_rates.append(in_process(make(), clients * options.projects_per_client))
                    runs.append(service_run(make(), clients, options.projects_per_client))
                    runs[-1]["ratio"] = runs[-1]["commands_per_s"] / engine_rates[-1]
                found = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                print(
                    f"{kind}: {clients:2d} client(s): in-process "
                    f"{statistics.median(engine_rates):.0f} commands/s; service "
                    f"{found['commands_per_s']:.0f} commands/s, p50 {found['p50_ms']:.1f} ms, "
                    f"p99 {found['p99_ms']:.1f} ms ({found['ratio']:.0%} of in-process)",
                    flush=True,
                )
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
