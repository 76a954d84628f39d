"""What the SQLite and PostgreSQL stores do the same way: their statements and their reads.

Both stores keep the one schema of ``approvalflow.stores.schema`` and read it with the same SQL;
only the driver's placeholder differs (``?`` for sqlite3, ``%s`` for psycopg). ``SQLStatements``
renders each statement once per dialect, and ``SQLStore`` holds the reads (``load``, ``events``,
``timers``, ``project_ids``, the reports, the outbox listing, the audit chain...) and the
one-statement claims (``claim_due``, ``claim_notices``, ``mark_failed``) on top of a connection,
a lock and a one-statement write (``_write_one``) that each store sets up its own way. The
commit stays in each store's module: there the two databases differ.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol, Self

from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import Event, Notice, Timer
from approvalflow.project import ProjectState
from approvalflow.rules.metrics import MetricInputs
from approvalflow.stores.audit import GENESIS, ChainHead, ChainLink
from approvalflow.stores.base import CommandRecord, OutboxEntry
from approvalflow.stores.cache import StateCache
from approvalflow.stores.projections import (
    Projection,
    ProjectionSQL,
    ProjectionWrites,
    interval_rows,
    metric_inputs_from_rows,
    projection_of,
    projection_writes,
    state_milestone_rows,
    summary_row,
    team_inputs_from_rows,
)
from approvalflow.stores.schema import Dialect
from approvalflow.stores.serialization import (
    event_from_row,
    format_datetime,
    notice_to_json,
    outbox_entry,
    parse_datetime,
    state_from_json,
    to_epoch_us,
)
from approvalflow.stores.tokens import SQLTokens

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_SNAPSHOT_EVERY",
    "SQLStatements",
    "SQLStore",
    "checked_lease",
    "claimer_id",
    "lease_option",
    "stale",
]

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
        self.project_with_code = f"SELECT project FROM project_codes WHERE code = {p}"
        self.insert_project_code = f"INSERT INTO project_codes (code, project) VALUES ({p}, {p})"
        self.rule_set = f"SELECT data FROM rule_sets WHERE fingerprint = {p}"
        self.save_rule_set = (
            "INSERT INTO rule_sets (fingerprint, rules_version, data, saved_at) "
            f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (fingerprint) DO NOTHING"
        )
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
        # A notice written again (same id) starts over: no attempts, and the new claim if any.
        self.upsert_notice = (
            "INSERT INTO outbox (notice_id, project, kind, payload, attempts, claimed_by, "
            f"claimed_until_us) VALUES ({p}, {p}, {p}, {p}, 0, {p}, {p}) "
            "ON CONFLICT (notice_id) DO UPDATE "
            "SET project = excluded.project, kind = excluded.kind, payload = excluded.payload, "
            "attempts = 0, last_error = NULL, next_attempt_us = NULL, next_attempt_at = NULL, "
            "claimed_by = excluded.claimed_by, claimed_until_us = excluded.claimed_until_us"
        )
        # Releases the claim, unless another claimer took the notice over after this one's
        # lease ran out: its own outcome decides then.
        self.fail_notice = (
            f"UPDATE outbox SET attempts = attempts + 1, last_error = {p}, "
            f"next_attempt_us = {p}, next_attempt_at = {p}, claimed_by = NULL, "
            f"claimed_until_us = NULL WHERE notice_id = {p} "
            f"AND (claimed_by IS NULL OR claimed_by = {p})"
        )
        # Whether any notice is claimable now, for a store that would rather not take a write
        # lock to find out that none is (SQLite).
        self.notice_claimable = (
            "SELECT 1 FROM outbox "
            f"WHERE (next_attempt_us IS NULL OR next_attempt_us <= {p}) "
            f"AND (claimed_until_us IS NULL OR claimed_until_us <= {p}) LIMIT 1"
        )
        # The same question for due timers (within a namespace prefix).
        self.timer_claimable = (
            f"SELECT 1 FROM timers WHERE due_us <= {p} "
            f"AND (lease_until_us IS NULL OR lease_until_us <= {p}) "
            f"AND substr(project, 1, {p}) = {p} LIMIT 1"
        )
        # The claims choose their rows and lease them in one statement, so no other claimer
        # comes between: in SQLite inside the caller's BEGIN IMMEDIATE; in PostgreSQL the rows
        # are locked as they are chosen and other claimers skip them, never wait. Their
        # parameters are named (``_named``): each dialect wants them in another order.
        due_timers = (
            "due_us <= {now} AND (lease_until_us IS NULL OR lease_until_us <= {now}) "
            "AND {prefix_match} ORDER BY due_us, project, kind, branch LIMIT {limit}"
        )
        due_notices = (
            "(next_attempt_us IS NULL OR next_attempt_us <= {now}) "
            "AND (claimed_until_us IS NULL OR claimed_until_us <= {now}) "
            "ORDER BY created_seq LIMIT {limit}"
        )
        if dialect == "sqlite":
            self.claim_due = _named(
                "UPDATE timers SET lease_until_us = {until} WHERE rowid IN ("
                f"SELECT rowid FROM timers WHERE {due_timers}) "
                "RETURNING project, kind, branch, due_us, due_at",
                dialect,
                prefix_match="substr(project, 1, {prefix_len}) = {prefix}",
            )
            self.claim_notices = _named(
                "UPDATE outbox SET claimed_by = {claimer}, claimed_until_us = {until} "
                f"WHERE created_seq IN (SELECT created_seq FROM outbox WHERE {due_notices}) "
                "RETURNING created_seq, payload, attempts, last_error, next_attempt_at",
                dialect,
            )
        else:
            self.claim_due = _named(
                "WITH due AS ("
                f"SELECT project, kind, branch FROM timers WHERE {due_timers} "
                "FOR UPDATE SKIP LOCKED) "
                "UPDATE timers t SET lease_until_us = {until} FROM due "
                "WHERE t.project = due.project AND t.kind = due.kind AND t.branch = due.branch "
                "RETURNING t.project, t.kind, t.branch, t.due_us, t.due_at",
                dialect,
                prefix_match="left(project, {prefix_len}) = {prefix}",
            )
            self.claim_notices = _named(
                "WITH due AS ("
                f"SELECT created_seq FROM outbox WHERE {due_notices} FOR UPDATE SKIP LOCKED) "
                "UPDATE outbox o SET claimed_by = {claimer}, claimed_until_us = {until} "
                "FROM due WHERE o.created_seq = due.created_seq "
                "RETURNING o.created_seq, o.payload, o.attempts, o.last_error, o.next_attempt_at",
                dialect,
            )


def _named(template: str, dialect: Dialect, **parts: str) -> str:
    """``template`` with ``{name}`` replaced by the dialect's named parameter (``:name`` for
    sqlite3, ``%(name)s`` for psycopg), after ``parts`` are put in."""
    template = template.replace("{prefix_match}", parts.get("prefix_match", ""))
    names = ("now", "until", "limit", "prefix", "prefix_len", "claimer")
    style = ":{}" if dialect == "sqlite" else "%({})s"
    for name in names:
        template = template.replace("{" + name + "}", style.format(name))
    return template


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class _Connection(Protocol):
    """What the reads need of a driver's connection (sqlite3's and psycopg's both fit)."""

    def execute(self, query: str, params: Any = ..., /) -> _Cursor: ...

    def close(self) -> None: ...


class SQLStore(SQLTokens):
    """The reads and claims of a store over the SQL schema. A subclass sets ``_sql`` (its
    dialect's statements) and ``chain_page``, in ``__init__`` ``_connection``, ``_lock``,
    ``_cache``, ``_lease`` and ``_claimer``, and implements ``_write_one``; every call holds
    ``_lock``, so threads may share the store."""

    _sql: ClassVar[SQLStatements]
    chain_page: ClassVar[int]
    """How many events ``iter_chain`` reads at a time."""

    _connection: _Connection
    _lock: threading.RLock
    _cache: StateCache
    _lease: timedelta
    _claimer: str
    """This store object's name on the claims it takes (``claimer_id``)."""

    def _write_one(self, statement: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        """Run one writing statement in a transaction of its own; return its rows, if any."""
        raise NotImplementedError

    def _notice_rows(
        self, notices: Sequence[Notice], claim_notices_at: datetime | None
    ) -> list[tuple[Any, ...]]:
        """The outbox rows of a commit's notices (``upsert_notice``), claimed by this store
        from ``claim_notices_at`` if given."""
        claimed_by, claimed_until = (
            (self._claimer, to_epoch_us(claim_notices_at + self._lease))
            if claim_notices_at is not None
            else (None, None)
        )
        return [
            (n.id, n.project, n.kind, notice_to_json(n), claimed_by, claimed_until) for n in notices
        ]

    def _projection_writes(
        self,
        project: str,
        expected_version: int,
        projection: Projection,
        events: Sequence[Event],
    ) -> ProjectionWrites:
        """The report rows a commit writes (call under the lock): only those that differ from
        the state it starts from, when this store's cache holds that state."""
        cached = self._cache.get(project)
        old = None
        if cached is not None and cached.state.version == expected_version:
            old = (
                cached.projection if cached.projection is not None else projection_of(cached.state)
            )
        return projection_writes(project, old, projection, events, created=expected_version == 0)

    def _fill_projections(self, target: Any) -> None:
        """Fill the report tables from every project's state, inside the caller's transaction.

        ``target`` runs the statements: a sqlite3 connection, or a psycopg cursor (both have
        ``execute`` and ``executemany``).
        """
        reports = self._sql.projections
        for statement in reports.clear_all:
            target.execute(statement)
        for project in self.project_ids():
            state = self.load(project)
            if state is None:
                continue
            projection = projection_of(state)
            target.execute(reports.upsert_summary, summary_row(project, projection.summary))
            target.executemany(reports.upsert_interval, interval_rows(project, projection))
            target.executemany(reports.insert_milestone, state_milestone_rows(state))

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

    def rule_set(self, fingerprint: str) -> str | None:
        with self._lock:
            row = self._connection.execute(self._sql.rule_set, (fingerprint,)).fetchone()
        return None if row is None else str(row[0])

    def save_rule_set(self, fingerprint: str, rules_version: str, data: str) -> None:
        saved_at = format_datetime(datetime.now(UTC))
        self._write_one(self._sql.save_rule_set, (fingerprint, rules_version, data, saved_at))

    def project_with_code(self, code: str) -> str | None:
        with self._lock:
            row = self._connection.execute(self._sql.project_with_code, (code,)).fetchone()
        return None if row is None else str(row[0])

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

    # -- the Store protocol's claims ----------------------------------------------------------

    def claim_due(self, now: datetime, limit: int = 100, prefix: str = "") -> list[Timer]:
        if limit <= 0:
            return []
        rows = self._write_one(
            self._sql.claim_due,
            {
                "now": to_epoch_us(now),
                "until": to_epoch_us(now + self._lease),
                "prefix": prefix,
                "prefix_len": len(prefix),
                "limit": limit,
            },
        )
        rows.sort(key=lambda row: (row[3], row[0], row[1], row[2]))
        return [
            Timer(project, kind, parse_datetime(due_at), branch)
            for project, kind, branch, _, due_at in rows
        ]

    def claim_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        if limit <= 0:
            return []
        rows = self._write_one(
            self._sql.claim_notices,
            {
                "now": to_epoch_us(now),
                "until": to_epoch_us(now + self._lease),
                "claimer": self._claimer,
                "limit": limit,
            },
        )
        rows.sort(key=lambda row: row[0])
        return [outbox_entry(*row[1:]) for row in rows]

    def mark_failed(self, notice_id: str, error: str, next_attempt: datetime) -> None:
        self._write_one(
            self._sql.fail_notice,
            (
                error,
                to_epoch_us(next_attempt),
                format_datetime(next_attempt),
                notice_id,
                self._claimer,
            ),
        )

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


def checked_lease(lease: timedelta) -> timedelta:
    """``lease`` if it is a real lease (longer than nothing), else ``ValueError``."""
    if lease <= timedelta(0):
        raise ValueError(f"lease must be longer than 0 seconds, not {lease.total_seconds()}")
    return lease


def lease_option(text: str) -> timedelta:
    """A URL's ``lease`` option: seconds, a number above 0 (``lease=600``)."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"lease must be a number of seconds, not {text!r}") from None
    if not math.isfinite(seconds):
        raise ValueError(f"lease must be a finite number of seconds, not {text!r}")
    return checked_lease(timedelta(seconds=seconds))


def claimer_id() -> str:
    """A name for one store object's claims on outbox notices: the host and process it works
    in (so an operator can tell which worker holds a notice) and a random part (so two store
    objects in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def stale(project: str, current: int | None, expected: int) -> ConcurrencyConflict:
    """The conflict of a commit that expected ``expected`` where the project is at ``current``."""
    if expected == 0:
        return ConcurrencyConflict(f"{project} exists already (at version {current or 0})")
    return ConcurrencyConflict(f"{project} is at version {current or 0}, not {expected}")
