"""examples/java: the JDK-only client, compiled and run against a live ``approvalflow serve``.

Skipped where no JDK is installed, except under CI=true, where the example must run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("litestar", reason="the server extra is not installed")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "java" / "PreReviewStory.java"
ACTORS = ROOT / "examples" / "java" / "actors.yaml"


def _jdk() -> tuple[str, str]:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        why = "no JDK (javac and java) on PATH: apt-get install openjdk-17-jdk-headless"
        if os.environ.get("CI") == "true":
            pytest.fail(why + " (CI=true: the Java example must run)")
        pytest.skip(why)
    return javac, java


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_java_client_takes_a_project_through_pre_review(tmp_path: Path) -> None:
    javac, java = _jdk()
    cli = [sys.executable, "-c", "import sys; from approvalflow.cli import main; sys.exit(main())"]
    store = f"sqlite:///{tmp_path / 'county.db'}"
    issued = subprocess.run(
        [*cli, "token", "issue", "--store", store, "--system", "oa", "--trusted"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = issued.stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        [
            *cli,
            "serve",
            "--store",
            store,
            "--actors",
            str(ACTORS),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    problem = server.stderr.read() if server.stderr else ""
                    raise AssertionError(f"the server did not start: {problem}") from None
                time.sleep(0.2)
        build = tmp_path / "build"
        subprocess.run([javac, "-d", str(build), str(EXAMPLE)], check=True, timeout=120)
        run = subprocess.run(
            [java, "-cp", str(build), "PreReviewStory", base, token, "P-JAVA-1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "stage decision.pending" in run.stdout
        assert "PreconditionFailed: P-JAVA-1 is at version 14, not 7" in run.stdout
        assert run.stdout.rstrip().endswith("OK")
    finally:
        server.terminate()
        server.wait(timeout=10)
