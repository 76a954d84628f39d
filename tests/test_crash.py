"""Crash tests: a writer process is SIGKILLed at random moments and restarted, again and again.

The writer (``tests/crash_writer.py``) runs a deterministic list of commands over many projects
on an Engine, each command with a ``command_id``, and acknowledges each one in a log (flush +
fsync) after ``execute`` returns. The test kills it at random moments, restarts it (it re-sends
the last few acknowledged commands, then goes on from the first unacknowledged one, which the
store may already hold), and finally checks what a user relies on:

- nothing acknowledged is lost: every acknowledged command's events are in the store;
- nothing is half-written or applied twice: every command record's events exist with contiguous
  versions, no event lacks its command record, re-sending a command id gives the first result
  and writes nothing, and each project's stored state is the fold of its history;
- the audit chain verifies;
- the end result is exactly what one uninterrupted serial run of the same list gives on a
  ``MemoryStore``.

Size: ``APPROVALFLOW_CRASH_COMMANDS`` commands (default 2,000) and ``APPROVALFLOW_CRASH_KILLS``
kills (default 5), with kill moments drawn from ``APPROVALFLOW_CRASH_SEED``. A longer soak:

    APPROVALFLOW_CRASH_COMMANDS=50000 APPROVALFLOW_CRASH_KILLS=100 \\
        .venv/bin/python -m pytest tests/test_crash.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog.testing
from builders import county_actors
from crash_writer import Command, build_commands, moment, read_log, run_serially

from approvalflow import Engine, ManualClock
from approvalflow.model import Notice
from approvalflow.plugins.hookspecs import hookimpl
from approvalflow.project import ProjectState
from approvalflow.stores import MemoryStore
from approvalflow.stores.audit import verify_chain

COMMANDS = int(os.environ.get("APPROVALFLOW_CRASH_COMMANDS", "2000"))
KILLS = int(os.environ.get("APPROVALFLOW_CRASH_KILLS", "5"))
SEED = int(os.environ.get("APPROVALFLOW_CRASH_SEED", "7"))
WRITER = Path(__file__).with_name("crash_writer.py")
# Generous bounds, only so that a hung writer fails the test instead of hanging it.
RUN_TIMEOUT = 120 + COMMANDS * 0.05


class _NoticeLog:
    """A notification channel that keeps every notice it is given, by id."""

    def __init__(self) -> None:
        self.notices: dict[str, Notice] = {}

    @hookimpl
    def approvalflow_notify(self, notice: Notice) -> None:
        self.notices[notice.id] = notice


@attrs.frozen
class Reference:
    """One uninterrupted serial run of the command list on a ``MemoryStore``."""

    commands: list[Command]
    outcomes: list[dict[str, Any]]
    store: MemoryStore
    notices: dict[str, Notice]


@attrs.frozen
class CrashRun:
    """What the killed and restarted writers logged."""

    acks: list[dict[str, Any]]  # one per command, in order
    replays: list[dict[str, Any]]  # acknowledged commands re-sent after a restart
    kills: int


@pytest.fixture(scope="module")
def reference() -> Reference:
    commands = build_commands(COMMANDS)
    store = MemoryStore()
    clock = ManualClock(moment(0))
    channel = _NoticeLog()
    engine = Engine(actors=county_actors(), store=store, clock=clock, plugins=[channel])
    with structlog.testing.capture_logs():  # thousands of debug lines otherwise
        outcomes = run_serially(commands, engine, clock)
    return Reference(commands, outcomes, store, channel.notices)


# -- driving the writer -----------------------------------------------------------------------


class _AckCounter:
    """Counts acknowledged commands as the writer logs them, reading only what is new. It never
    moves past a line the writer has not finished, so a restarted writer cutting that line off
    never cuts below what was read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0

    def poll(self) -> int:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return self.count
        end = data.rfind(b"\n") + 1
        self.count += sum(1 for line in data[:end].splitlines() if line.startswith(b'{"i"'))
        self.offset += end
        return self.count


@contextmanager
def _writer(url: str, log: Path, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    with output.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, WRITER, "--store", url, "--log", log, "--commands", str(COMMANDS)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _crash_repeatedly(url: str, tmp_path: Path) -> CrashRun:
    """Start the writer, SIGKILL it a few milliseconds after a random number of
    acknowledgements, ``KILLS`` times; then let a last writer finish the list."""
    log = tmp_path / "acknowledged.jsonl"
    output = tmp_path / "writer-output.txt"
    rng = random.Random(SEED)
    counter = _AckCounter(log)
    targets = sorted(rng.sample(range(1, COMMANDS), KILLS))
    for target in targets:
        with _writer(url, log, output) as process:
            deadline = time.monotonic() + RUN_TIMEOUT
            while counter.poll() < target:
                if process.poll() is not None:
                    pytest.fail(f"the writer stopped by itself:\n{output.read_text()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the writer made no progress for {RUN_TIMEOUT:.0f} s")
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.004))  # land anywhere in the next command or two
            process.kill()
            process.wait(timeout=30)
    with _writer(url, log, output) as process:
        returncode = process.wait(timeout=RUN_TIMEOUT)
    assert returncode == 0, output.read_text()
    lines = read_log(log)
    assert lines[-1] == {"done": COMMANDS}
    return CrashRun(
        acks=[line for line in lines if "i" in line],
        replays=[line["replay"] for line in lines if "replay" in line],
        kills=KILLS,
    )


# -- the checks -------------------------------------------------------------------------------


def _result(line: dict[str, Any]) -> dict[str, Any]:
    """A logged outcome without ``replayed`` (the one thing a replay may say differently)."""
    return {key: value for key, value in line.items() if key != "replayed"}


def _check_after_crashes(store: Any, reference: Reference, run: CrashRun) -> None:
    commands = reference.commands
    acks = run.acks
    # Every command was acknowledged exactly once, in order, with the serial run's result.
    assert [line["i"] for line in acks] == list(range(len(commands)))
    for line, expected in zip(acks, reference.outcomes, strict=True):
        assert _result(line) == _result(expected), commands[line["i"]]
    # Only a command in flight at a kill can have been stored without being acknowledged.
    assert sum(1 for line in acks if line.get("replayed")) <= run.kills
    # Re-sending an acknowledged command id gave the first result back and wrote nothing.
    assert len(run.replays) >= 1
    for line in run.replays:
        assert _result(line) == _result(acks[line["i"]])
        assert "error" in line or line["replayed"] is True

    projects = store.project_ids()
    assert projects == reference.store.project_ids()
    history = {project: store.events(project) for project in projects}
    by_command: dict[str, list[Any]] = defaultdict(list)
    for events in history.values():
        for event in events:
            assert event.command_id is not None, f"{event} belongs to no command"
            by_command[event.command_id].append(event)

    # Nothing acknowledged is lost: each acknowledged command's events are stored under its id.
    accepted = set()
    for line in acks:
        record = store.command(line["id"])
        if "error" in line:
            assert record is None and line["id"] not in by_command, line
            continue
        accepted.add(line["id"])
        assert record is not None, f"acknowledged command {line} is not in the store"
        assert record.last_version == line["v"]
        assert record.first_version == line["first"]
        events = by_command[line["id"]]
        assert [e.version for e in events] == list(
            range(record.first_version, record.last_version + 1)
        )
        assert {e.project for e in events} == {record.project}
    # Nothing half-written: no event outside an accepted command, every history contiguous and
    # as long as the project's recorded version, every state the fold of its history.
    assert set(by_command) == accepted
    versions = store.project_versions()
    for project, events in history.items():
        assert [e.version for e in events] == list(range(1, len(events) + 1))
        assert versions[project] == len(events)
        state = store.load(project)
        assert state == ProjectState.from_events(events)
        # And the same as one uninterrupted serial run.
        assert events == reference.store.events(project)
        assert state == reference.store.load(project)
        assert set(store.timers(project)) == set(reference.store.timers(project))
    # A notice committed but not delivered before a kill waits in the outbox, unchanged.
    far = moment(len(commands)) + timedelta(days=3650)
    for entry in store.pending_notices(far, limit=1_000_000):
        assert entry.notice == reference.notices[entry.notice.id]
    report = verify_chain(store)
    assert report.ok, report.reason
    assert report.count == sum(len(events) for events in history.values())


# -- the tests --------------------------------------------------------------------------------


def test_sqlite_writer_killed_at_random_loses_and_duplicates_nothing(
    tmp_path: Path, reference: Reference
) -> None:
    """SQLite (WAL, synchronous=FULL): a writer SIGKILLed ``KILLS`` times at random moments
    and restarted loses no acknowledged command, half-writes none, applies none twice (a
    re-sent command id returns the first result), keeps the audit chain intact, and ends
    exactly where one uninterrupted serial run ends."""
    from approvalflow.stores.sqlite import SQLiteStore

    path = tmp_path / "crash.db"
    run = _crash_repeatedly(f"sqlite:///{path}?synchronous=FULL", tmp_path)
    store = SQLiteStore(path)
    try:
        _check_after_crashes(store, reference, run)
    finally:
        store.close()


def test_postgres_writer_killed_at_random_loses_and_duplicates_nothing(
    postgres_url: str, tmp_path: Path, reference: Reference
) -> None:
    """PostgreSQL: the same as for SQLite. A writer killed inside a transaction leaves the
    server to roll it back; whatever it committed before is there, and nothing else."""
    from approvalflow.stores.postgres import PostgresStore

    schema = f"t_crash_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in postgres_url else "?"
    try:
        run = _crash_repeatedly(f"{postgres_url}{separator}schema={schema}", tmp_path)
        store = PostgresStore.from_url(postgres_url, schema=schema)
        try:
            _check_after_crashes(store, reference, run)
        finally:
            store.close()
    finally:
        PostgresStore.from_url(postgres_url, schema=schema).drop()
