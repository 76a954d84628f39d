"""The HTTP service under N concurrent clients, beside the in-process engine, in one run.

    python benchmarks/service.py [--clients 1 4 16] [--projects-per-client 3] [--rounds 3]
                                 [--postgres URL | --no-postgres] [--dir FOLDER]
                                 [--fast-dir /dev/shm] [--json FILE]

Each client is a thread with its own keep-alive connection to one ``approvalflow serve``
process (``KeepAliveClient``, a few tens of µs of CPU a request); it takes its own projects
from creation to signing (15 commands each, a few of them with ``If-Match``), so clients never
wait on one project's order, only on the store. Printed per N and store: commands/s, p50 and
p99 latency, the in-process engine's commands/s on the same store kind for the same commands
(one thread, the same number of projects as the N clients take), run just before each service
run on a fresh store of its own, and the CPU per command of the server process and of the
clients. One project is run untimed first on each, so lazy imports and first connections are
not counted. With ``--rounds R`` each figure is the median of R rounds and the ratio the median
of the per-round ratios (the machine is noisy). SQLite runs with its default
``synchronous=FULL``. The load average is printed beside the figures.

``--dir`` puts the SQLite files (the engine's and the service's) in another folder (default:
the system's temporary folder, on a disk). ``--fast-dir /dev/shm`` adds a second SQLite store,
``sqlite-fast``, on a tmpfs, in the same rounds: FULL still syncs, but the sync is nearly free,
so its ratio is the service's own cost against the engine's, which a slow disk's wait hides.
The clients share the machine's cores with the server: the ratio is wall time, which counts
the clients' CPU (printed apart) as any real caller's would be. ``--json FILE`` writes the
rows as JSON too. Nothing here is asserted: figures go to docs/performance.md by hand.
``benchmarks/service_parts.py`` says where a request's time goes.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable
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


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one keep-alive connection: each request's bytes are built
    and sent at once and the answer read by its ``Content-Length``. It costs a few tens of µs of
    CPU per request, where ``http.client`` costs several hundred (its header parsing goes
    through the ``email`` package): the clients share this machine's two cores with the
    server, so a slow client would be counted against the service's wall time."""

    def __init__(self, port: int, token: str) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.authorization = f"Bearer {token}".encode()
        self.buffer = b""

    def post(
        self, path: str, actor: str, body: dict[str, Any], if_match: str | None = None
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """POST ``body`` as JSON; the status, the headers (lowercase names) and the body."""
        payload = json.dumps(body).encode()
        head = [
            f"POST {path} HTTP/1.1".encode(),
            b"Host: 127.0.0.1",
            b"Authorization: " + self.authorization,
            b"Approvalflow-Actor: " + actor.encode(),
            b"Content-Type: application/json",
            b"Content-Length: " + str(len(payload)).encode(),
        ]
        if if_match:
            head.append(b"If-Match: " + if_match.encode())
        self.socket.sendall(b"\r\n".join(head) + b"\r\n\r\n" + payload)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._read()
        lines = self.buffer[:end].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        while len(self.buffer) < end + 4 + length:
            self._read()
        answer = self.buffer[end + 4 : end + 4 + length]
        self.buffer = self.buffer[end + 4 + length :]
        return status, headers, answer

    def _read(self) -> None:
        chunk = self.socket.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.socket.close()


def _client(
    port: int,
    token: str,
    prefix: str,
    projects: int,
    latencies: list[float],
    client_cpu: list[float] | None = None,
) -> None:
    cpu = time.thread_time()
    connection = KeepAliveClient(port, token)

    def call(path: str, actor: str, body: dict[str, Any], if_match: str | None = None) -> str:
        started = time.perf_counter()
        status, headers, text = connection.post(path, actor, body, if_match)
        latencies.append(time.perf_counter() - started)
        if status >= 300:
            raise RuntimeError(f"{path} as {actor}: {status} {text[:200]!r}")
        return headers.get(b"etag", b"").decode()

    for n in range(projects):
        project = f"{prefix}-{n}"
        etag = call("/projects", "guo", {"id": project, "fields": FIELDS})
        for i, (command, actor, args) in enumerate(STEPS):
            # Every other command checks the version it read, as an editing client would.
            etag = call(
                f"/projects/{project}/commands/{command}", actor, args, etag if i % 2 else None
            )
    connection.close()
    if client_cpu is not None:
        client_cpu.append(time.thread_time() - cpu)


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


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
        client_cpu: list[float] = []
        threads = [
            threading.Thread(
                target=_client,
                args=(port, token, f"B{run}-{c}", projects, latencies, client_cpu),
            )
            for c in range(clients)
        ]
        cpu = server_cpu(server.pid)
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu = server_cpu(server.pid) - cpu
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
        "server_cpu_us": cpu / expected * 1e6,
        "client_cpu_us": sum(client_cpu) / expected * 1e6,
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
    parser.add_argument(
        "--fast-dir",
        help="a second folder for SQLite in the same run, on a fast medium (/dev/shm: tmpfs)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args()
    with contextlib.ExitStack() as folders:
        folder = Path(folders.enter_context(tempfile.TemporaryDirectory(dir=options.dir)))
        stores: dict[str, Callable[[], str]] = {"sqlite": _sqlite_in(folder)}
        if options.fast_dir:
            fast = Path(folders.enter_context(tempfile.TemporaryDirectory(dir=options.fast_dir)))
            stores["sqlite-fast"] = _sqlite_in(fast)
        if options.postgres and not options.no_postgres:
            base = options.postgres
            sep = "&" if "?" in base else "?"
            stores["postgres"] = lambda: f"{base}{sep}schema=bench_{uuid.uuid4().hex[:12]}"
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        where = f"SQLite files in {folder}"
        print(where + (f" and (sqlite-fast) {fast}" if options.fast_dir else ""))
        found: list[dict[str, Any]] = []
        for clients in options.clients:
            rounds: dict[str, list[dict[str, float]]] = {kind: [] for kind in stores}
            for _ in range(options.rounds):
                # Within a round every store runs back to back, the engine just before the
                # service on the same medium: the ratio is taken within the round.
                for kind, make in stores.items():
                    engine_rate = in_process(make(), clients * options.projects_per_client)
                    run = service_run(make(), clients, options.projects_per_client)
                    run["in_process_per_s"] = engine_rate
                    run["ratio"] = run["commands_per_s"] / engine_rate
                    rounds[kind].append(run)
            for kind, runs in rounds.items():
                row = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                found.append({"store": kind, "clients": clients, "rounds": len(runs), **row})
                print(
                    f"{kind}: {clients:2d} client(s): in-process "
                    f"{row['in_process_per_s']:.0f} commands/s; service "
                    f"{row['commands_per_s']:.0f} commands/s, p50 {row['p50_ms']:.1f} ms, "
                    f"p99 {row['p99_ms']:.1f} ms ({row['ratio']:.0%} of in-process); CPU per "
                    f"command: server {row['server_cpu_us']:.0f} µs, clients "
                    f"{row['client_cpu_us']:.0f} µs",
                    flush=True,
                )
        after = os.getloadavg()
        print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    if options.json:
        options.json.write_text(
            json.dumps({"load_before": load, "load_after": after, "rows": found}, indent=2)
        )


def _sqlite_in(folder: Path) -> Callable[[], str]:
    return lambda: f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"


if __name__ == "__main__":
    main()
