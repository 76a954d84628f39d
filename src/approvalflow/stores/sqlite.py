"""The SQLite store: one file, shared safely by several processes.

It uses the stdlib ``sqlite3`` driver directly, not SQLAlchemy: each command is one short
transaction of a few fixed statements, and the target is at least 70% of the raw single-row
commit rate, which a query-building layer would spend on itself. The SQL is small enough to
read in this module; the schema is shared with PostgreSQL (``approvalflow.stores.schema``).

What a caller may rely on:

- ``commit`` is one ``BEGIN IMMEDIATE`` transaction: events, timer changes, notices, command id
  and snapshot are all written, or none is. A stale ``expected_version`` or a command id that
  is taken raises ``ConcurrencyConflict`` and writes nothing. The guards are the database's
  own: a compare-and-set of the project's version (``UPDATE ... WHERE version = expected``,
  which also covers commits without events), the events' unique key ``(project, version)`` and
  the command id's primary key, whose violations are translated. Nothing is read and trusted.
- Durability: the journal is WAL, and ``synchronous="FULL"`` (the default) syncs the WAL on
  every commit, so a command that returned survives a power cut (the claims' bookkeeping, whose
  loss only repeats a claim, is committed without a sync of its own). ``synchronous="NORMAL"`` syncs
  only at checkpoints: a commit costs about a third as much and the file never corrupts, but
  the last commits before a power cut or OS crash (not a mere process crash) can be lost.
- Several processes may open the same file: a writer waits up to ``busy_timeout`` seconds for
  another's commit; readers never wait. Each command's transaction is short, so waits are too.
- One ``SQLiteStore`` may be shared by threads (calls are serialised by a lock). After a
  ``fork`` open a new store in the child; never share one across processes.
- ``load`` reads the newest snapshot and folds only the events after it, so its cost does not
  grow with the history. A store object also keeps the last state it committed or loaded per
  project (``cache_size`` projects, LRU; ``approvalflow.stores.cache``) and returns a copy of it
  when the statement that reads the project's row finds it still at that version, which
  another process's commit would have moved: then nothing is decoded. A snapshot is written
  with the commit that creates a project and whenever a commit crosses a multiple of
  ``snapshot_every`` versions. The default, 16, keeps the JSON encoding of the state off most
  commits (encoding it every time roughly doubles a commit's cost) while a ``load`` folds at
  most 15 events; ``snapshot_every=1`` makes ``load`` a single row read instead.
- ``claim_due`` and ``claim_notices`` choose and lease their rows in one ``UPDATE ...
  RETURNING`` inside a ``BEGIN IMMEDIATE`` transaction, so two processes never claim one timer
  or notice at once.
- Every event joins the store-wide audit chain (``approvalflow.stores.audit``).
- Each commit also writes the projections the reports query (``milestones``,
  ``project_summaries``, ``intervals``; ``approvalflow.stores.projections``), only the rows
  that changed, so ``milestone_points`` and ``metric_inputs`` load no project.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qsl

from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import Event, Notice, Timer, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.stores.audit import GENESIS, chain_hash
from approvalflow.stores.base import CommandRecord, OutboxEntry, created_code
from approvalflow.stores.cache import DEFAULT_CACHE_SIZE, StateCache
from approvalflow.stores.projections import (
    projection_of,
)
from approvalflow.stores.schema import rebuilds_projections, upgrade_statements
from approvalflow.stores.serialization import (
    event_rows,
    format_datetime,
    state_to_json,
    to_epoch_us,
)
from approvalflow.stores.sql import (
    DEFAULT_LEASE,
    DEFAULT_SNAPSHOT_EVERY,
    SQLStatements,
    SQLStore,
    checked_lease,
    claimer_id,
    lease_option,
)
from approvalflow.stores.sql import stale as _stale

__all__ = ["SQLiteStore", "Synchronous"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_SQL = SQLStatements("sqlite")
_REPORTS = _SQL.projections  # the projections the reports read


class SQLiteStore(SQLStore):
    """Events, snapshots, timers, command ids and the outbox in one SQLite file.

    :param path: the database file (created if missing), or ``":memory:"``.
    :param synchronous: SQLite's ``synchronous`` setting; see the module docstring.
    :param busy_timeout: seconds a writer waits for another process's commit.
    :param lease: how long a timer returned by ``claim_due``, or a notice returned by
        ``claim_notices``, is hidden from other claimers.
    :param snapshot_every: write a snapshot each time the version crosses a multiple of this.
    :param cache_size: how many projects' last states to keep in memory (0: none; default
        256, see ``approvalflow.stores.cache``).
    :raises SchemaVersionError: the file was written by a newer approvalflow.
    """

    _sql = _SQL
    chain_page = 500
    _connection: sqlite3.Connection

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 30.0,
        lease: timedelta = DEFAULT_LEASE,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if synchronous not in get_args(Synchronous):
            raise ValueError(
                f"synchronous must be one of {', '.join(get_args(Synchronous))}, "
                f"not {synchronous!r}"
            )
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be at least 1, not {snapshot_every}")
        self.path = os.fspath(path)
        self._synchronous = synchronous
        self._lease = checked_lease(lease)
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self._cache = StateCache(cache_size)
        self._claimer = claimer_id()
        # isolation_level=None: the driver opens no transactions of its own; we say BEGIN.
        # timeout is SQLite's busy_timeout.
        self._connection = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            if self.path not in ("", ":memory:"):
                self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute(f"PRAGMA synchronous = {synchronous}")
            self._ensure_schema()
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """Open ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
        ``sqlite:///:memory:``.

        A query string may set ``synchronous``, ``busy_timeout`` (seconds), ``snapshot_every``,
        ``cache_size`` and ``lease`` (seconds): ``sqlite:///app.db?synchronous=NORMAL``.
        """
        if not url.startswith("sqlite://"):
            raise ValueError(f"not an SQLite URL: {url!r} (use sqlite:///path.db)")
        rest, _, query = url[len("sqlite://") :].partition("?")
        if rest in ("", "/"):
            path = ":memory:"
        elif rest.startswith("/"):
            path = rest[1:]
        else:
            raise ValueError(f"an SQLite URL has three slashes before the path: {url!r}")
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        unknown = set(options) - {
            "synchronous",
            "busy_timeout",
            "snapshot_every",
            "cache_size",
            "lease",
        }
        if unknown:
            raise ValueError(f"unknown SQLite URL options {sorted(unknown)} in {url!r}")
        synchronous = options.get("synchronous", "FULL").upper()
        if synchronous not in get_args(Synchronous):
            raise ValueError(f"synchronous must be one of {get_args(Synchronous)}: {url!r}")
        return cls(
            path,
            synchronous=cast(Synchronous, synchronous),
            busy_timeout=float(options.get("busy_timeout", 30.0)),
            snapshot_every=int(options.get("snapshot_every", DEFAULT_SNAPSHOT_EVERY)),
            cache_size=int(options.get("cache_size", DEFAULT_CACHE_SIZE)),
            lease=lease_option(options["lease"]) if "lease" in options else DEFAULT_LEASE,
        )

    # -- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction. BEGIN IMMEDIATE takes the write lock at once, so a reader never
        has to upgrade to a writer halfway (which SQLite fails instead of waiting).

        ``durable=False`` commits without syncing the WAL (``synchronous=NORMAL`` for this one
        transaction): for the claims' bookkeeping (leases, delivered and failed notices), whose
        loss in a power cut only means a timer claimed or a notice sent again, as a lease running
        out does. The sync costs more than the rest of such a transaction, and it is taken
        holding the write lock every command waits for. The next durable commit syncs it too.
        """
        with self._lock:
            connection = self._connection
            relaxed = not durable and self._synchronous in ("FULL", "EXTRA")
            if relaxed:
                connection.execute("PRAGMA synchronous = NORMAL")
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            finally:
                if relaxed:
                    connection.execute(f"PRAGMA synchronous = {self._synchronous}")

    def _ensure_schema(self) -> None:
        with self._write() as connection:
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone()
            found: int | None = None
            if exists is not None:
                row = connection.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
                found = int(row[0]) if row is not None else None
            for statement in upgrade_statements(found, "sqlite"):
                connection.execute(statement)
            if rebuilds_projections(found):
                self._rebuild_projections(connection)

    def _rebuild_projections(self, connection: sqlite3.Connection) -> None:
        """Fill the projections from every project's state (inside the caller's transaction)."""
        self._fill_projections(connection)

    def rebuild_projections(self) -> None:
        """Rebuild the report tables from every project's state, in one transaction.

        Only needed after rows were written behind the store's back (a bulk import); commits
        and the schema migration keep them up to date.
        """
        with self._write() as connection:
            self._rebuild_projections(connection)

    # -- the Store protocol -------------------------------------------------------------------

    def commit(
        self,
        *,
        project: str,
        expected_version: int,
        events: Sequence[Event],
        timers: TimerChanges,
        notices: Sequence[Notice],
        command: CommandRecord | None,
        state: ProjectState,
        claim_notices_at: datetime | None = None,
    ) -> None:
        # Everything that can fail on bad data is rendered before the write lock is taken.
        new_events = event_rows(project, expected_version, events)
        new_version = expected_version + len(events)
        code = created_code(expected_version, events)
        snapshot = None
        if expected_version == 0 or (
            new_version // self._snapshot_every > expected_version // self._snapshot_every
        ):
            snapshot = (project, state.version, state_to_json(state))
        timer_rows = [
            (t.project, t.kind, t.branch, to_epoch_us(t.due), format_datetime(t.due))
            for t in timers.set
        ]
        notice_rows = self._notice_rows(notices, claim_notices_at)
        projection = projection_of(state)
        connection = self._connection
        with self._lock:
            writes = self._projection_writes(project, expected_version, projection, events)
            # Not ``self._write()``: this is the hot path, and a generator-based context
            # manager costs as much as one of the statements.
            connection.execute("BEGIN IMMEDIATE")
            try:
                if expected_version == 0:
                    connection.execute(
                        "INSERT INTO projects (project, version) VALUES (?, ?)",
                        (project, new_version),
                    )
                    if code is not None:
                        connection.execute(
                            _SQL.insert_project_code,
                            (code, project),
                        )
                elif (
                    connection.execute(
                        "UPDATE projects SET version = ? WHERE project = ? AND version = ?",
                        (new_version, project, expected_version),
                    ).rowcount
                    != 1
                ):
                    raise _stale(project, self._version(project), expected_version)
                if command is not None:
                    connection.execute(
                        "INSERT INTO commands (command_id, project, command, fingerprint, "
                        "first_version, last_version) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            command.command_id,
                            command.project,
                            command.command,
                            command.fingerprint,
                            command.first_version,
                            command.last_version,
                        ),
                    )
                if new_events:
                    # BEGIN IMMEDIATE made this the only writer, so the newest event is the
                    # chain's head until COMMIT.
                    last = connection.execute(_SQL.chain_head).fetchone()
                    seq, head = (last[0], last[1]) if last is not None else (0, GENESIS)
                    chained = []
                    for row, text in new_events:
                        seq += 1
                        digest = chain_hash(head, text)
                        chained.append((seq, *row, digest, head))
                        head = digest
                    if len(chained) == 1:
                        connection.execute(_SQL.insert_event, chained[0])
                    else:
                        connection.executemany(_SQL.insert_event, chained)
                if snapshot is not None:
                    connection.execute(
                        "INSERT INTO snapshots (project, version, state) VALUES (?, ?, ?) "
                        "ON CONFLICT (project) DO UPDATE "
                        "SET version = excluded.version, state = excluded.state",
                        snapshot,
                    )
                if timers.cancel:
                    connection.executemany(
                        "DELETE FROM timers WHERE project = ? AND kind = ? AND branch = ?",
                        timers.cancel,
                    )
                if timer_rows:
                    # Setting a timer replaces one with the same key and ends any lease on it.
                    connection.executemany(
                        "INSERT INTO timers (project, kind, branch, due_us, due_at) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (project, kind, branch) DO UPDATE "
                        "SET due_us = excluded.due_us, due_at = excluded.due_at, "
                        "lease_until_us = NULL",
                        timer_rows,
                    )
                if notice_rows:
                    connection.executemany(_SQL.upsert_notice, notice_rows)
                for statement, rows in _REPORTS.statements(writes, project):
                    if len(rows) == 1:
                        connection.execute(statement, rows[0])
                    else:
                        connection.executemany(statement, rows)
                connection.execute("COMMIT")
            except BaseException as error:
                self._cache.drop(project)
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if isinstance(error, sqlite3.IntegrityError):
                    conflict = self._conflict(error, project, expected_version, command)
                    if conflict is not None:
                        raise conflict from error
                raise
            self._cache.put(project, state, projection)

    def _conflict(
        self,
        error: sqlite3.IntegrityError,
        project: str,
        expected_version: int,
        command: CommandRecord | None,
    ) -> ConcurrencyConflict | None:
        """The ``ConcurrencyConflict`` a unique key's violation means, if it means one."""
        message = str(error)  # "UNIQUE constraint failed: <table>.<column>, ..."
        if "commands.command_id" in message and command is not None:
            return ConcurrencyConflict(f"command id {command.command_id!r} is taken")
        if "project_codes.code" in message:
            return ConcurrencyConflict(f"the project code of {project} is taken")
        if "projects.project" in message or "events.project" in message:
            return _stale(project, self._version(project), expected_version)
        return None

    def _write_one(self, statement: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        # Only the claims and their bookkeeping come this way: see ``_write``.
        with self._write(durable=False) as connection:
            return connection.execute(statement, params).fetchall()

    def claim_due(self, now: datetime, limit: int = 100, prefix: str = "") -> list[Timer]:
        # As for notices below: a worker polling with nothing due takes no write lock.
        now_us = to_epoch_us(now)
        with self._lock:
            found = self._connection.execute(
                _SQL.timer_claimable, (now_us, now_us, len(prefix), prefix)
            ).fetchone()
        return super().claim_due(now, limit, prefix) if found is not None else []

    def claim_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        # A read takes no lock in WAL: look first, so that workers polling an empty outbox do
        # not queue for the write lock with the commits.
        now_us = to_epoch_us(now)
        with self._lock:
            found = self._connection.execute(_SQL.notice_claimable, (now_us, now_us)).fetchone()
        return super().claim_notices(now, limit) if found is not None else []

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        if not notice_ids:
            return
        with self._write(durable=False) as connection:
            connection.executemany(
                "DELETE FROM outbox WHERE notice_id = ?", [(notice_id,) for notice_id in notice_ids]
            )
