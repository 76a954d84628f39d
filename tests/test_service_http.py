"""``approvalflow serve`` on a real socket: what the HTTP server itself must get right.

The JDK's ``java.net.http`` client asks a plain-HTTP server to upgrade to HTTP/2 (``Upgrade:
h2c``) on its first request, body and all; the server must answer that request as HTTP/1.1 with
its body read. uvicorn's httptools parser drops such a body, so ``serve`` always uses h11.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

from approvalflow.cli import main
from approvalflow.server import issue_token
from approvalflow.stores import open_store

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[int, str, str]]:
    """A served SQLite store: its port, a trusted token, and the store's URL."""
    url = f"sqlite:///{tmp_path / 'county.db'}"
    store = open_store(url, create=True)
    token, _ = issue_token(store, "oa", trusted=True)
    store.close()
    port = _free_port()
    cli = [sys.executable, "-c", "import sys; from approvalflow.cli import main; sys.exit(main())"]
    server = subprocess.Popen(
        [*cli, "serve", "--store", url, "--actors", str(ACTORS), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    problem = server.stderr.read() if server.stderr else ""
                    raise AssertionError(f"the server did not start: {problem}") from None
                time.sleep(0.2)
        yield port, token, url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _raw_post(port: int, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One request written by hand, as the JDK writes it; the status and body of the answer."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
        head_bytes, _, rest = answer.partition(b"\r\n\r\n")
        status = int(head_bytes.split(b" ", 2)[1])
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head_bytes.split(b"\r\n")[1:]
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(rest) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            rest += chunk
    return status, rest


def test_a_request_asking_for_h2c_is_answered_with_its_body_read(
    live: tuple[int, str, str],
) -> None:
    """What java.net.http sends first: ``Upgrade: h2c`` with a JSON body. The project is
    created from that body (201), not refused as bodiless, and is in the store."""
    port, token, url = live
    status, body = _raw_post(
        port,
        "/projects",
        {
            "Connection": "Upgrade, HTTP2-Settings",
            "Upgrade": "h2c",
            "HTTP2-Settings": "AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA",
            "Authorization": f"Bearer {token}",
            "Approvalflow-Actor": "guo",
            "Content-Type": "application/json",
            "User-Agent": "Java-http-client/17",
        },
        json.dumps({"id": "P-H2C", "fields": FIELDS}).encode(),
    )
    assert status == 201, body
    answer: dict[str, Any] = json.loads(body)
    assert (answer["project"], answer["version"]) == ("P-H2C", 2)
    store = open_store(url)
    try:
        found = store.load("P-H2C")
        assert found is not None and found.name == FIELDS["name"]
    finally:
        store.close()


def test_serve_runs_uvicorn_with_h11_whatever_is_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """httptools, if installed, would be uvicorn's choice: ``serve`` names h11 itself."""
    import uvicorn

    from approvalflow.cli import serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    # The request log's structlog setup is global: keep it out of the other tests.
    monkeypatch.setattr(serve, "_log_requests", lambda: None)
    url = f"sqlite:///{tmp_path / 'county.db'}"
    open_store(url, create=True).close()
    assert main(["serve", "--store", url, "--port", "8123"]) == 0
    assert seen["http"] == "h11"
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
