"""What the SQLite and PostgreSQL stores do the same way: their statements and their reads.

Both stores keep the one schema of ``approvalflow.stores.schema`` and read it with the same SQL;
only the driver's placeholder differs (``?`` for sqlite3, ``%s`` for psycopg). ``SQLStatements``
renders each statement once per dialect, and ``SQLStore`` holds the reads (``load``, ``events``,
``timers``, ``project_ids``, the reports, the outbox listing, the audit chain...) on top of a
connection and a lock that each store sets up its own way. Writes, and the claims that lock rows
(``claim_due``), stay in each store's module: there the two databases differ.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, Self

from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import Event, Timer
from approvalflow.project import ProjectState
from approvalflow.rules.metrics import MetricInputs
from approvalflow.stores.audit import GENESIS, ChainHead, ChainLink
from approvalflow.stores.base import CommandRecord, OutboxEntry
from approvalflow.stores.cache import StateCache
from approvalflow.stores.projections import (
    ProjectionSQL,
    metric_inputs_from_rows,
    team_inputs_from_rows,
)
from approvalflow.stores.schema import Dialect
from approvalflow.stores.serialization import (
    event_from_row,
    outbox_entry,
    parse_datetime,
    state_from_json,
    to_epoch_us,
)

__all__ = ["DEFAULT_LEASE", "DEFAULT_SNAPSHOT_EVERY", "SQLStatements", "SQLStore", "stale"]

DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_SNAPSHOT_EVERY = 16

EVENT_COLUMNS = "project, version, type, at, by_actor, on_behalf_of, command_id, payload"


class SQLStatements:
    """The statements both SQL stores run, in one dialect's placeholders."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        p = "?" if dialect == "sqlite" else "%s"
        self.projections = ProjectionSQL(dialect)
        self.insert_event = (
            f"INSERT INTO events (seq, {EVENT_COLUMNS}, hash, prev_hash) "
            f"VALUES ({', '.join([p] * 11)})"
        )
        # ``seq`` is the key (in SQLite the rowid), so this is one step down the right edge of
        # the events' b-tree.
        self.chain_head = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        # The snapshot's text only when the caller's cached version (the first parameter) is
        # stale.
        self.load = (
            f"SELECT p.version, s.version, CASE WHEN p.version = {p} THEN NULL ELSE s.state END "
            f"FROM projects p LEFT JOIN snapshots s ON s.project = p.project WHERE p.project = {p}"
        )
        self.version = f"SELECT version FROM projects WHERE project = {p}"
        self.snapshot_version = f"SELECT version FROM snapshots WHERE project = {p}"
        self.events = (
            f"SELECT {EVENT_COLUMNS} FROM events "
            f"WHERE project = {p} AND version > {p} ORDER BY version"
        )
        self.command = (
            "SELECT command_id, project, command, fingerprint, first_version, last_version "
            f"FROM commands WHERE command_id = {p}"
        )
        self.next_due = "SELECT due_at FROM timers ORDER BY due_us LIMIT 1"
        self.timers = (
            f"SELECT kind, branch, due_at FROM timers WHERE project = {p} "
            "ORDER BY due_us, kind, branch"
        )
        self.project_ids = "SELECT project FROM projects ORDER BY created_seq"
        self.project_versions = "SELECT project, version FROM projects"
        self.pending_notices = (
            "SELECT payload, attempts, last_error, next_attempt_at FROM outbox "
            f"WHERE next_attempt_us IS NULL OR next_attempt_us <= {p} "
            f"ORDER BY created_seq LIMIT {p}"
        )
        self.chain_page = (
            f"SELECT seq, hash, prev_hash, {EVENT_COLUMNS} FROM events "
            f"WHERE seq > {p} ORDER BY seq LIMIT {p}"
        )


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    """What the reads need of a driver's connection (sqlite3's and psycopg's both fit)."""

    def execute(self, query: str, params: Any = ..., /) -> _Cursor: ...

    def close(self) -> None: ...


class SQLStore:
    """The reads of a store over the SQL schema. A subclass sets ``_sql`` (its dialect's
    statements) and ``chain_page``, and in ``__init__`` ``_connection``, ``_lock`` and
    ``_cache``; every read holds ``_lock``, so threads may share the store."""

    _sql: ClassVar[SQLStatements]
    chain_page: ClassVar[int]
    """How many events ``iter_chain`` reads at a time."""

    _connection: _Connection
    _lock: threading.RLock
    _cache: StateCache

    def _version(self, project: str) -> int | None:
        row = self._connection.execute(self._sql.version, (project,)).fetchone()
        return int(row[0]) if row is not None else None

    # -- the Store protocol's reads -----------------------------------------------------------

    def load(self, project: str) -> ProjectState | None:
        with self._lock:
            cached = self._cache.get(project)
            known = cached.state.version if cached is not None else -1
            row = self._connection.execute(self._sql.load, (known, project)).fetchone()
            if row is None:
                self._cache.drop(project)
                return None
            version, snapshot_version, state_text = row
            if cached is not None and version == known:
                return cached.state.clone()
            if state_text is None:
                events = self.events(project)
                if not events:
                    return None
                state = ProjectState.from_events(events)
            else:
                state = state_from_json(state_text)
                if version > snapshot_version:
                    # Events committed after the snapshot (and any committed since the row
                    # above was read: ``apply`` checks they follow one another).
                    for event in self.events(project, snapshot_version):
                        state.apply(event)
            self._cache.put(project, state, None)
            return state.clone()

    def snapshot_version(self, project: str) -> int | None:
        with self._lock:
            row = self._connection.execute(self._sql.snapshot_version, (project,)).fetchone()
        return int(row[0]) if row is not None else None

    def events(self, project: str, after_version: int = 0) -> list[Event]:
        with self._lock:
            rows = self._connection.execute(self._sql.events, (project, after_version)).fetchall()
        return [event_from_row(row) for row in rows]

    def command(self, command_id: str) -> CommandRecord | None:
        with self._lock:
            row = self._connection.execute(self._sql.command, (command_id,)).fetchone()
        return CommandRecord(*row) if row is not None else None

    def next_due(self) -> datetime | None:
        with self._lock:
            row = self._connection.execute(self._sql.next_due).fetchone()
        return parse_datetime(row[0]) if row is not None else None

    def timers(self, project: str) -> list[Timer]:
        with self._lock:
            rows = self._connection.execute(self._sql.timers, (project,)).fetchall()
        return [
            Timer(project, kind, parse_datetime(due_at), branch) for kind, branch, due_at in rows
        ]

    def project_ids(self) -> list[str]:
        with self._lock:
            rows = self._connection.execute(self._sql.project_ids).fetchall()
        return [row[0] for row in rows]

    def milestone_points(
        self,
        month: str | None = None,
        prefix: str = "",
        projects: Collection[str] | None = None,
    ) -> dict[str, int]:
        statement, params = self._sql.projections.milestone_points(month, prefix, projects)
        with self._lock:
            rows = self._connection.execute(statement, params).fetchall()
        return {team: int(points) for team, points in rows}

    def metric_inputs(self, projects: Collection[str] | None = None) -> MetricInputs:
        summaries, intervals = self._metric_rows(projects, by_team=False)
        return metric_inputs_from_rows(summaries, intervals)

    def team_metric_inputs(
        self, projects: Collection[str] | None = None
    ) -> dict[str, MetricInputs]:
        summaries, intervals = self._metric_rows(projects, by_team=True)
        return team_inputs_from_rows(summaries, intervals)

    def _metric_rows(
        self, projects: Collection[str] | None, *, by_team: bool
    ) -> tuple[list[Any], list[Any]]:
        totals, totals_params = self._sql.projections.summary_totals(projects, by_team=by_team)
        counts, counts_params = self._sql.projections.interval_counts(projects, by_team=by_team)
        with self._lock:
            summaries = self._connection.execute(totals, totals_params).fetchall()
            intervals = self._connection.execute(counts, counts_params).fetchall()
        return summaries, intervals

    def pending_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        with self._lock:
            rows = self._connection.execute(
                self._sql.pending_notices, (to_epoch_us(now), max(limit, 0))
            ).fetchall()
        return [outbox_entry(*row) for row in rows]

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        with self._lock:
            self._cache.clear()
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the audit chain ----------------------------------------------------------------------

    def chain_head(self) -> ChainHead:
        """The newest event's place in the audit chain and its hash."""
        with self._lock:
            last = self._connection.execute(self._sql.chain_head).fetchone()
        return ChainHead(int(last[0]), str(last[1])) if last is not None else ChainHead(0, GENESIS)

    def project_versions(self) -> dict[str, int]:
        """Each project's version as its last commit recorded it."""
        with self._lock:
            rows = self._connection.execute(self._sql.project_versions).fetchall()
        return {project: int(version) for project, version in rows}

    def iter_chain(self) -> Iterator[ChainLink]:
        """Every event in chain order with its hashes, read a page at a time (no lock or
        transaction held between pages, so commits go on while an audit runs)."""
        after = -(2**63)  # from the very first row, even one given a seq below 1 by hand
        while True:
            with self._lock:
                rows = self._connection.execute(
                    self._sql.chain_page, (after, self.chain_page)
                ).fetchall()
            if not rows:
                return
            for seq, digest, prev_hash, *event_row in rows:
                yield ChainLink(int(seq), event_from_row(event_row), digest, prev_hash)
            after = rows[-1][0]


def stale(project: str, current: int | None, expected: int) -> ConcurrencyConflict:
    """The conflict of a commit that expected ``expected`` where the project is at ``current``."""
    if expected == 0:
        return ConcurrencyConflict(f"{project} exists already (at version {current or 0})")
    return ConcurrencyConflict(f"{project} is at version {current or 0}, not {expected}")
