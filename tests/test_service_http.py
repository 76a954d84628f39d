"""``approvalflow serve`` on a real socket: what the HTTP server itself must get right.

The JDK's ``java.net.http`` client asks a plain-HTTP server to upgrade to HTTP/2 (``Upgrade:
h2c``) on its first request, body and all; the server must answer that request as HTTP/1.1 with
its body read. uvicorn's own httptools protocol drops such a body, so ``serve`` runs its own
(``approvalflow.server.http``) where httptools is installed, and h11 otherwise: the h2c tests run
under both (D300).
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
from typing import Any, NamedTuple

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
# What java.net.http adds to its first request on a plain-HTTP connection.
H2C = {
    "Connection": "Upgrade, HTTP2-Settings",
    "Upgrade": "h2c",
    "HTTP2-Settings": "AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA",
}
# serve's choice where httptools is installed, and the one where it is not, forced.
PARSERS = {
    "httptools": "",
    "h11": "from approvalflow.cli import serve; serve._http_protocol = lambda: 'h11'; ",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Live(NamedTuple):
    port: int
    token: str  # a trusted system's
    url: str  # the store's
    server: subprocess.Popen[str]

    def log(self) -> str:
        """What the server wrote on stderr, once it is stopped."""
        self.server.terminate()
        self.server.wait(timeout=10)
        return self.server.stderr.read() if self.server.stderr else ""


@pytest.fixture(params=list(PARSERS))
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """A served SQLite store, under each HTTP parser."""
    url = f"sqlite:///{tmp_path / 'county.db'}"
    store = open_store(url, create=True)
    token, _ = issue_token(store, "oa", trusted=True)
    store.close()
    port = _free_port()
    start = (
        f"import sys; {PARSERS[request.param]}from approvalflow.cli import main; sys.exit(main())"
    )
    serve = ["serve", "--store", url, "--actors", str(ACTORS), "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, "-c", start, *serve],
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
        yield Live(port, token, url, server)
    finally:
        server.terminate()
        server.wait(timeout=10)


class Connection:
    """One keep-alive connection written by hand, as the JDK writes it, piece by piece."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        # Each piece its own segment, so the server reads it in its own data_received.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.unread = b""

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def send(self, *pieces: bytes) -> None:
        for number, piece in enumerate(pieces):
            if number:
                time.sleep(0.05)
            self.socket.sendall(piece)

    def answer(self) -> tuple[int, bytes]:
        """The status and body of the next answer (its length given by Content-Length)."""
        while b"\r\n\r\n" not in self.unread:
            self.unread += self._receive()
        head, _, self.unread = self.unread.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(self.unread) < length:
            self.unread += self._receive()
        body, self.unread = self.unread[:length], self.unread[length:]
        return status, body

    def _receive(self) -> bytes:
        chunk = self.socket.recv(65536)
        if not chunk:
            raise AssertionError(f"the server closed the connection; unread: {self.unread!r}")
        return chunk


def _head(
    port: int,
    token: str,
    headers: dict[str, str],
    length: int | None,
    path: str = "/projects",
    version: str = "1.1",
) -> bytes:
    """A POST's head as the JDK writes it: with Content-Length, or chunked when length is None."""
    headers = {
        **headers,
        "Authorization": f"Bearer {token}",
        "Approvalflow-Actor": "guo",
        "Content-Type": "application/json",
        "User-Agent": "Java-http-client/17",
    }
    if length is None:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(length)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/{version}\r\nHost: 127.0.0.1:{port}\r\n{lines}\r\n".encode()


def _new_project(project: str) -> bytes:
    return json.dumps({"id": project, "fields": FIELDS}).encode()


def _created(status: int, body: bytes, project: str) -> None:
    assert status == 201, body
    answer: dict[str, Any] = json.loads(body)
    assert (answer["project"], answer["version"]) == (project, 2)


def _stored_name(url: str, project: str) -> str | None:
    store = open_store(url)
    try:
        found = store.load(project)
        return None if found is None else found.name
    finally:
        store.close()


def test_a_request_asking_for_h2c_is_answered_with_its_body_read(
    live: Live,
) -> None:
    """What java.net.http sends first: ``Upgrade: h2c`` with a JSON body, in one segment. The
    project is created from that body (201), not refused as bodiless, and is in the store."""
    port, token, url = live.port, live.token, live.url
    body = _new_project("P-H2C")
    with Connection(port) as connection:
        connection.send(_head(port, token, H2C, len(body)) + body)
        _created(*connection.answer(), "P-H2C")
    assert _stored_name(url, "P-H2C") == FIELDS["name"]


def test_an_h2c_request_arriving_in_pieces_is_read_whole(live: Live) -> None:
    """The head in two pieces, then the body in three: the server reads as the bytes come."""
    port, token, url = live.port, live.token, live.url
    body = _new_project("P-PIECES")
    head = _head(port, token, H2C, len(body))
    with Connection(port) as connection:
        connection.send(head[:40], head[40:], body[:10], body[10:30], body[30:])
        _created(*connection.answer(), "P-PIECES")
    assert _stored_name(url, "P-PIECES") == FIELDS["name"]


def test_a_chunked_h2c_request_is_read_whole(live: Live) -> None:
    port, token, url = live.port, live.token, live.url
    body = _new_project("P-CHUNKED")
    first, second = body[:25], body[25:]
    with Connection(port) as connection:
        connection.send(
            _head(port, token, H2C, None),
            b"%x\r\n%s\r\n" % (len(first), first),
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second),
        )
        _created(*connection.answer(), "P-CHUNKED")
    assert _stored_name(url, "P-CHUNKED") == FIELDS["name"]


def test_the_connection_serves_on_after_an_h2c_request(live: Live) -> None:
    """After the h2c request the connection stays HTTP/1.1 and alive: an ordinary request, and
    another h2c one, are answered on it."""
    port, token = live.port, live.token
    with Connection(port) as connection:
        for project, headers in (("P-FIRST", H2C), ("P-PLAIN", {}), ("P-AGAIN", H2C)):
            body = _new_project(project)
            connection.send(_head(port, token, headers, len(body)) + body)
            _created(*connection.answer(), project)


def test_requests_sent_behind_an_h2c_request_are_answered_in_order(
    live: Live,
) -> None:
    """Pipelined in one segment: the bytes after an h2c request's body hold the next requests,
    an h2c one among them."""
    port, token = live.port, live.token
    projects = [("P-ONE", H2C), ("P-TWO", H2C), ("P-THREE", {})]
    segment = b"".join(
        _head(port, token, headers, len(_new_project(project))) + _new_project(project)
        for project, headers in projects
    )
    with Connection(port) as connection:
        connection.send(segment)
        for project, _ in projects:
            _created(*connection.answer(), project)


def test_an_http_1_0_request_asking_for_h2c_is_answered_with_its_body_read(
    live: Live,
) -> None:
    """The request line's version is kept when the upgrade is dropped, and so is the rest of
    Connection (uvicorn closes an HTTP/1.0 connection after its answer whatever it says)."""
    port, token = live.port, live.token
    headers = {**H2C, "Connection": "keep-alive, Upgrade, HTTP2-Settings"}
    body = _new_project("P-OLD")
    with Connection(port) as connection:
        connection.send(_head(port, token, headers, len(body), version="1.0") + body)
        _created(*connection.answer(), "P-OLD")


def test_a_websocket_upgrade_goes_uvicorns_way(live: Live) -> None:
    """Not taken for plain HTTP: uvicorn's answer stands. The service has no websocket library,
    so uvicorn warns of the unsupported upgrade and runs the request as it came."""
    with Connection(live.port) as connection:
        connection.send(
            f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode()
        )
        status, body = connection.answer()
    assert status == 200, body
    assert "Unsupported upgrade request." in live.log()


def _serve_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """What ``serve`` hands ``uvicorn.run``."""
    import uvicorn

    from approvalflow.cli import serve

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options))
    # The request log's structlog setup is global: keep it out of the other tests.
    monkeypatch.setattr(serve, "_log_requests", lambda: None)
    url = f"sqlite:///{tmp_path / 'county.db'}"
    open_store(url, create=True).close()
    assert main(["serve", "--store", url, "--port", "8123"]) == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    return seen


def test_serve_runs_its_own_httptools_protocol_where_httptools_is_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Never uvicorn's own httptools protocol (the one that drops h2c bodies), nor h11."""
    pytest.importorskip("httptools")
    from approvalflow.server.http import UpgradeIgnoringHttpToolsProtocol

    seen = _serve_options(monkeypatch, tmp_path)
    assert seen["http"] is UpgradeIgnoringHttpToolsProtocol
    assert seen["loop"] == "auto"  # uvloop where it is installed


def test_serve_runs_h11_where_httptools_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # None in sys.modules makes the import fail, as if httptools were not installed.
    monkeypatch.setitem(sys.modules, "httptools", None)
    monkeypatch.delitem(sys.modules, "approvalflow.server.http", raising=False)
    assert _serve_options(monkeypatch, tmp_path)["http"] == "h11"
