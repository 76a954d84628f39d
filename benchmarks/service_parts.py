"""Where a service request's time goes: the engine alone, the app without a socket, over HTTP.

    python benchmarks/service_parts.py [--store sqlite|memory] [--projects 20] [--rounds 3]
                                       [--dir FOLDER]
    python benchmarks/service_parts.py --profile app    # cProfile the app without a socket

The same command sequence as ``benchmarks/service.py`` (a project from creation to signing,
15 commands, every other one with ``If-Match``) is run three ways, each on a fresh store:

- **engine**: ``Engine.execute`` in this process, one thread;
- **app**: the ASGI app of ``create_app`` called directly with hand-made ASGI messages (no
  socket, no HTTP parsing, no client library): authentication, parameters, the handler in
  its worker thread, the response's encoding and the request log line;
- **http**: ``approvalflow serve`` in its own process (uvicorn), one keep-alive client here
  (``service.KeepAliveClient``; its own CPU is printed as ``client``).

For each: CPU µs per command (engine and app: this process's CPU; http: the server process's
CPU from ``/proc/<pid>/stat``) and wall µs per command. CPU is the steadier figure on a shared
machine: SQLite's ``synchronous=FULL`` waits on the disk, which CPU does not count. Each figure
is the median of ``--rounds`` rounds; one project is run untimed first each time. ``--dir`` puts
the SQLite files elsewhere (``--dir /dev/shm``: no disk wait at all).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service import (
    ACTORS,
    COMMANDS_PER_PROJECT,
    FIELDS,
    STEPS,
    KeepAliveClient,
    _cli,
    _free_port,
    server_cpu,
)

Request = tuple[str, str, dict[str, Any], bool]  # path, actor, body, send If-Match


def _requests(project: str) -> list[Request]:
    found: list[Request] = [("/projects", "guo", {"id": project, "fields": FIELDS}, False)]
    for i, (command, actor, args) in enumerate(STEPS):
        found.append((f"/projects/{project}/commands/{command}", actor, args, bool(i % 2)))
    return found


def _store_url(kind: str, folder: Path) -> str:
    return "memory://" if kind == "memory" else f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}"


def engine_part(url: str, projects: int) -> tuple[float, float]:
    from approvalflow import Engine
    from approvalflow.cli.worker import load_actors
    from approvalflow.stores import open_store

    engine = Engine(actors=load_actors(ACTORS), store=open_store(url, create=True))
    run = uuid.uuid4().hex[:6]

    def one(project: str) -> None:
        engine.execute("create", project, "guo", FIELDS)
        for command, actor, args in STEPS:
            engine.execute(command, project, actor, args)

    one(f"W{run}")
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(projects):
        one(f"E{run}-{n}")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    engine.store.close()
    commands = projects * COMMANDS_PER_PROJECT
    return cpu / commands * 1e6, wall / commands * 1e6


class _AppClient:
    """Calls an ASGI app with hand-made messages, as a server would after parsing."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def call(self, path: str, actor: str, body: dict[str, Any], etag: str | None) -> str:
        payload = json.dumps(body).encode()
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", b"Bearer " + self.token),
            (b"approvalflow-actor", actor.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if etag:
            headers.append((b"if-match", etag.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        answer: dict[str, Any] = {}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = dict(message.get("headers", []))
            elif message["type"] == "http.response.body":
                answer["body"] = answer.get("body", b"") + message.get("body", b"")

        await self.app(scope, receive, send)
        if answer["status"] >= 300:
            raise RuntimeError(f"{path} as {actor}: {answer['status']} {answer['body'][:200]!r}")
        etag_value: bytes = answer["headers"].get(b"etag", b"")
        return etag_value.decode()

    async def project(self, project: str) -> None:
        etag = ""
        for path, actor, body, check in _requests(project):
            etag = await self.call(path, actor, body, etag if check else None)


def app_part(
    url: str, projects: int, profile: cProfile.Profile | None = None
) -> tuple[float, float]:
    import structlog

    from approvalflow.cli.serve import _log_requests
    from approvalflow.cli.worker import load_actors
    from approvalflow.server import create_app, issue_token
    from approvalflow.stores import open_store

    store = open_store(url, create=True)
    token, _ = issue_token(store, "bench", trusted=True)
    # The request log as ``approvalflow serve`` writes it (JSON lines), to nowhere.
    quiet = open(os.devnull, "w")  # noqa: SIM115
    stderr, sys.stderr = sys.stderr, quiet
    _log_requests()
    app = create_app(store=store, actors=load_actors(ACTORS))
    client = _AppClient(app, token)
    run = uuid.uuid4().hex[:6]
    found: list[float] = []

    async def main() -> None:
        await client.project(f"W{run}")
        if profile is not None:
            profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(projects):
            await client.project(f"A{run}-{n}")
        found.extend((time.process_time() - cpu, time.perf_counter() - wall))
        if profile is not None:
            profile.disable()

    try:
        _run(main)
    finally:
        sys.stderr = stderr
        quiet.close()
        structlog.reset_defaults()
    store.close()
    commands = projects * COMMANDS_PER_PROJECT
    return found[0] / commands * 1e6, found[1] / commands * 1e6


def _run(main: Callable[[], Any]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


_CLIENT_CPU: list[float] = []  # the HTTP client's own CPU µs per command, per http run


def http_part(url: str, projects: int) -> tuple[float, float]:
    from approvalflow.server import issue_token
    from approvalflow.stores import open_store

    store = open_store(url, create=True)
    token, _ = issue_token(store, "bench", trusted=True)
    store.close()
    port = _free_port()
    server = subprocess.Popen(
        _cli("serve", "--store", url, "--actors", str(ACTORS), "--port", str(port)),
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
        connection = KeepAliveClient(port, token)

        def project(name: str) -> None:
            etag = ""
            for path, actor, body, check in _requests(name):
                status, headers, text = connection.post(path, actor, body, etag if check else None)
                if status >= 300:
                    raise RuntimeError(f"{path} as {actor}: {status} {text[:200]!r}")
                etag = headers.get(b"etag", b"").decode()

        run = uuid.uuid4().hex[:6]
        project(f"W{run}")
        cpu, wall, client = server_cpu(server.pid), time.perf_counter(), time.thread_time()
        for n in range(projects):
            project(f"H{run}-{n}")
        cpu, wall = server_cpu(server.pid) - cpu, time.perf_counter() - wall
        _CLIENT_CPU.append((time.thread_time() - client) / (projects * COMMANDS_PER_PROJECT) * 1e6)
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    commands = projects * COMMANDS_PER_PROJECT
    return cpu / commands * 1e6, wall / commands * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=["app"], help="cProfile a part instead")
    parser.add_argument("--dir", help="where the SQLite files go (default: a temporary folder)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=options.dir) as folder:
        if options.profile:
            # The handlers run in worker threads: each new thread gets a profile of its own.
            profiles = [cProfile.Profile(time.thread_time)]

            def profile_thread(*_: Any) -> None:
                profiles.append(cProfile.Profile(time.thread_time))
                profiles[-1].enable()

            threading.setprofile(profile_thread)
            app_part(_store_url(options.store, Path(folder)), options.projects, profiles[0])
            threading.setprofile(None)  # type: ignore[arg-type]
            for profile in profiles[1:]:
                profile.disable()
            stats = pstats.Stats(*profiles).strip_dirs()
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            return
        parts: dict[str, Callable[[str, int], tuple[float, float]]] = {
            "engine": engine_part,
            "app": app_part,
            "http": http_part,
        }
        if options.store == "memory":
            del parts["http"]  # a memory store lives in one process: the server's own
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in parts}
        for _ in range(options.rounds):
            # Within a round the parts run back to back, so they share the machine's mood.
            for name, part in parts.items():
                url = _store_url(options.store, Path(folder))
                figures[name].append(part(url, options.projects))
    medians = {
        name: (statistics.median(c for c, _ in rows), statistics.median(w for _, w in rows))
        for name, rows in figures.items()
    }
    load = os.getloadavg()
    print(
        f"{options.store}, {options.projects} projects x {COMMANDS_PER_PROJECT} commands, "
        f"median of {options.rounds} rounds, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"{'part':8} {'CPU µs/cmd':>11} {'wall µs/cmd':>12} {'commands/s':>11}")
    for name, (cpu, wall) in medians.items():
        print(f"{name:8} {cpu:11.0f} {wall:12.0f} {1e6 / wall:11.0f}")
    if _CLIENT_CPU:
        client = statistics.median(_CLIENT_CPU)
        note = "(the benchmark's keep-alive client, in this process)"
        print(f"{'client':8} {client:11.0f} {'':>12} {'':>11}   {note}")
    engine_cpu, app_cpu = medians["engine"][0], medians["app"][0]
    line = f"the app adds {app_cpu - engine_cpu:.0f} µs of CPU to the engine's {engine_cpu:.0f}"
    if "http" in medians:
        line += f"; the socket and HTTP server {medians['http'][0] - app_cpu:.0f} more"
        line += f"; over HTTP, {medians['engine'][1] / medians['http'][1]:.0%} of in-process"
    print(line)


if __name__ == "__main__":
    main()
