"""What the SQLite and PostgreSQL stores do the same way: their statements, reads and commit.

Both stores keep the one schema of ``approvalflow.stores.schema`` and read it with the same SQL;
only the driver's placeholder differs (``?`` for sqlite3, ``%s`` for psycopg). ``SQLStatements``
renders each statement once per dialect, and ``SQLStore`` holds the reads (``load``, ``events``,
``timers``, ``project_ids``, the reports, the outbox listing, the audit chain...), the
one-statement claims (``claim_due``, ``claim_notices``, ``mark_failed``) and the one ``commit``:
a template that renders every row first, then runs the same statements in the same order inside
the transaction a backend opens its own way (``_commit_transaction``: SQLite's ``BEGIN
IMMEDIATE``, PostgreSQL's one statement). Every driver error is translated here, by the
constraint it names (``_conflict``) or by the backend's reading of it (``_driver_error``), into
an ``ApprovalflowError``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, NamedTuple, Protocol, Self, cast

import attrs

from approvalflow.errors import (
    ApprovalflowError,
    ConcurrencyConflict,
    NotArchivable,
    ProjectArchived,
    UnknownProject,
)
from approvalflow.model import Event, Notice, Timer, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.stores import archives, schema
from approvalflow.stores.audit import (
    GENESIS,
    ChainHead,
    ChainLink,
    LegacyHead,
    ProjectHead,
    chain_hash,
    snapshot_digest,
    store_digest,
)
from approvalflow.stores.base import (
    DEFAULT_COUNTY,
    CommandRecord,
    OutboxEntry,
    Store,
    checked_county,
    created_code,
)
from approvalflow.stores.cache import StateCache
from approvalflow.stores.errors import (
    StoreError,
    StoreNotFound,
    UnstorableValue,
    checked_key,
    checked_keys,
)
from approvalflow.stores.projections import (
    CountsRow,
    DueGroup,
    Projection,
    ProjectionSQL,
    ProjectionWrites,
    ReadModel,
    TaskRow,
    added_counts,
    all_task_rows,
    due_group_key,
    interval_rows,
    keeps_tasks,
    projection_writes,
    summary_row,
    team_rows,
)
from approvalflow.stores.schema import (
    Dialect,
    SchemaVersionError,
    intake_county_expression,
    upgrade_statements,
)
from approvalflow.stores.serialization import (
    canonical_event_json,
    event_from_row,
    event_rows,
    format_datetime,
    notice_to_json,
    outbox_entry,
    pack_state,
    parse_datetime,
    state_from_json,
    state_to_json,
    to_epoch_us,
    unpack_state,
)
from approvalflow.stores.tokens import SQLTokens

__all__ = [
    "COMMANDS_KEY",
    "DEFAULT_LEASE",
    "DEFAULT_SNAPSHOT_EVERY",
    "PROJECTS_KEY",
    "PROJECT_CODES_KEY",
    "CommitPlan",
    "SQLStatements",
    "SQLStore",
    "UniqueKeyTaken",
    "checked_lease",
    "claimer_id",
    "lease_option",
    "schema_steps",
    "stale",
]

DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_SNAPSHOT_EVERY = 16

# The unique keys a commit's guards rest on, by their PostgreSQL names (``<table>_pkey``,
# ``<table>_<columns>_key``), which the SQLite store reports too: ``_conflict`` reads them.
COMMANDS_KEY = "commands_pkey"
PROJECT_CODES_KEY = "project_codes_pkey"
PROJECTS_KEY = "projects_county_project_key"
EVENTS_KEY = "events_county_project_version_key"

EVENT_COLUMNS = "project, version, type, at, by_actor, on_behalf_of, command_id, payload"


class SQLStatements:
    """The statements both SQL stores run, in one dialect's placeholders, for one county.

    The county is part of each statement's text (``county = 'huguan'``), as a literal: it is a
    checked key (``base.checked_county``: lower-case letters, digits and ``_``, nothing that
    quotes), the only value ever written into a statement, and so a view's statements are made
    once (``statements_for``) and its rows keep the columns they had.
    """

    def __init__(self, dialect: Dialect, county: str = DEFAULT_COUNTY) -> None:
        self.dialect = dialect
        self.county = checked_county(county)
        p = "?" if dialect == "sqlite" else "%s"
        c = f"'{county}'"
        mine = f"county = {c}"
        self.projections = ProjectionSQL(dialect, county)
        # ``seq`` is the database's: the rowid in SQLite, an identity in PostgreSQL. ``hash`` is
        # the 32 bytes of the hex digest the chain computes (``_hash_bytes``); no ``prev_hash``:
        # it is the previous version's hash, which the chain's readers have at hand.
        self.insert_event = (
            f"INSERT INTO events (county, {EVENT_COLUMNS}, hash) VALUES ({c}, {', '.join([p] * 9)})"
        )
        # The hash a project's next event chains from: its event at the commit's expected
        # version (read once the commit's guard holds the project's row).
        self.project_head = (
            f"SELECT hash FROM events WHERE {mine} AND project = {p} AND version = {p}"
        )
        # The snapshot's text, digest and the hash of the event it was taken at, then the hash
        # of the project's newest event (its head, kept beside the state in the cache: the next
        # commit chains from it without reading it first), only when the caller's cached
        # version (the first three parameters) is stale.
        self.load = (
            "SELECT p.version, s.version, "
            f"CASE WHEN p.version = {p} THEN NULL ELSE s.state END, s.digest, "
            f"CASE WHEN p.version = {p} THEN NULL ELSE (SELECT e.hash FROM events e "
            "WHERE e.county = s.county AND e.project = s.project AND e.version = s.version) END, "
            f"CASE WHEN p.version = {p} THEN NULL ELSE (SELECT e.hash FROM events e "
            "WHERE e.county = p.county AND e.project = p.project AND e.version = p.version) END "
            "FROM projects p LEFT JOIN snapshots s ON s.county = p.county "
            f"AND s.project = p.project WHERE p.county = {c} AND p.project = {p}"
        )
        self.version = f"SELECT version FROM projects WHERE {mine} AND project = {p}"
        self.snapshot_version = f"SELECT version FROM snapshots WHERE {mine} AND project = {p}"
        self.events = (
            f"SELECT {EVENT_COLUMNS} FROM events "
            f"WHERE {mine} AND project = {p} AND version > {p} ORDER BY version"
        )
        # What an actor did: two index lookups (``events_by_actor``, ``events_by_principal``).
        self.actor_events = (
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {mine} AND by_actor = {p} UNION "
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {mine} AND on_behalf_of = {p} "
            "ORDER BY project, version"
        )
        # The latest of them: each index read backwards from the newest commit, no further.
        self.newest_by_actor = (
            f"SELECT seq, {EVENT_COLUMNS} FROM events WHERE {mine} AND by_actor = {p} "
            f"ORDER BY seq DESC LIMIT {p}"
        )
        self.newest_on_behalf = (
            f"SELECT seq, {EVENT_COLUMNS} FROM events WHERE {mine} AND on_behalf_of = {p} "
            f"ORDER BY seq DESC LIMIT {p}"
        )
        self.command = (
            "SELECT command_id, project, command, fingerprint, first_version, last_version "
            f"FROM commands WHERE {mine} AND command_id = {p}"
        )
        self.next_due = f"SELECT due_at FROM timers WHERE {mine} ORDER BY due_us LIMIT 1"
        self.timers = (
            f"SELECT kind, branch, due_at FROM timers WHERE {mine} AND project = {p} "
            "ORDER BY due_us, kind, branch"
        )
        self.project_ids = f"SELECT project FROM projects WHERE {mine} ORDER BY created_seq"
        # The projects taken in at another county's hall (``events_by_intake``): the
        # expression as the index keeps it, so the index answers without reading the events.
        intake = intake_county_expression(dialect)
        self.intake_projects = (
            f"SELECT project FROM events WHERE {mine} AND type = 'created' "
            f"AND {intake} IS NOT NULL AND {intake} = {p} ORDER BY project"
        )
        self.project_with_code = f"SELECT project FROM project_codes WHERE {mine} AND code = {p}"
        # SQLite reports a key taken by the row count of ``ON CONFLICT DO NOTHING`` (its errors
        # name columns, not constraints); PostgreSQL by the violation's constraint name.
        taken = " ON CONFLICT DO NOTHING" if dialect == "sqlite" else ""
        self.insert_project_code = (
            f"INSERT INTO project_codes (county, code, project) VALUES ({c}, {p}, {p}){taken}"
        )
        self.insert_command = (
            "INSERT INTO commands (county, command_id, project, command, fingerprint, "
            f"first_version, last_version) VALUES ({c}, {p}, {p}, {p}, {p}, {p}, {p}){taken}"
        )
        self.insert_project = (
            f"INSERT INTO projects (county, project, version) VALUES ({c}, {p}, {p}){taken}"
        )
        # An archived project is refused here, in the guard every commit runs (D266).
        self.update_project = (
            f"UPDATE projects SET version = {p} WHERE {mine} AND project = {p} AND version = {p} "
            "AND archive IS NULL"
        )
        # -- archives (schema version 14) --
        self.project_archive = (
            f"SELECT version, archive FROM projects WHERE {mine} AND project = {p}"
        )
        self.archived_pack = f"SELECT pack, head FROM archives WHERE {mine} AND project = {p}"
        # Who acted on an archived project: SQLite's archive_actors, PostgreSQL's array (D268).
        if dialect == "sqlite":
            self.archived_actor_projects = (
                "SELECT a.project, r.last_seq FROM archive_actors a JOIN archives r "
                "ON r.county = a.county AND r.project = a.project "
                f"WHERE a.county = {c} AND a.actor = ? ORDER BY r.last_seq DESC"
            )
        else:
            self.archived_actor_projects = (
                f"SELECT project, last_seq FROM archives WHERE {mine} "
                "AND actors @> ARRAY[%s]::text[] ORDER BY last_seq DESC"
            )
        self.timer_count = f"SELECT count(*) FROM timers WHERE {mine} AND project = {p}"
        self.lock_project = self.project_archive + ("" if dialect == "sqlite" else " FOR UPDATE")
        archived = ["project", "archive", "version", "last_seq", "head", "pack"]
        if dialect == "postgresql":
            archived.append("actors")  # PostgreSQL keeps who acted beside the pack
        self.insert_archive = (
            f"INSERT INTO archives (county, {', '.join(archived)}) "
            f"VALUES ({c}, {', '.join([p] * len(archived))})"
        )
        self.insert_archive_actor = (
            f"INSERT INTO archive_actors (county, actor, project) VALUES ({c}, {p}, {p}) "
            "ON CONFLICT DO NOTHING"
        )
        self.delete_events = f"DELETE FROM events WHERE {mine} AND project = {p}"
        self.delete_snapshot = f"DELETE FROM snapshots WHERE {mine} AND project = {p}"
        self.mark_archived = (
            f"UPDATE projects SET archive = {p} WHERE {mine} AND project = {p} "
            f"AND version = {p} AND archive IS NULL"
        )
        self.archive_rows = (
            "SELECT county, project, archive, version, head, pack FROM archives "
            f"WHERE {mine} ORDER BY project"
        )
        # The county's first project lists it (a county listed already is left as it is).
        self.insert_county = (
            f"INSERT INTO counties (county, created_at) VALUES ({c}, {p}) "
            "ON CONFLICT (county) DO NOTHING"
        )
        self.counties = "SELECT county FROM counties ORDER BY county"
        self.upsert_snapshot = (
            "INSERT INTO snapshots (county, project, version, state, digest) "
            f"VALUES ({c}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (county, project) DO UPDATE SET version = excluded.version, "
            "state = excluded.state, digest = excluded.digest"
        )
        self.delete_timer = (
            f"DELETE FROM timers WHERE {mine} AND project = {p} AND kind = {p} AND branch = {p}"
        )
        self.release_timer = (
            f"UPDATE timers SET lease_until_us = NULL WHERE {mine} "
            f"AND project = {p} AND kind = {p} AND branch = {p} AND due_us = {p}"
        )
        # Setting a timer replaces one with the same key and ends any lease on it.
        self.upsert_timer = (
            "INSERT INTO timers (county, project, kind, branch, due_us, due_at) "
            f"VALUES ({c}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (county, project, kind, branch) DO UPDATE "
            "SET due_us = excluded.due_us, due_at = excluded.due_at, lease_until_us = NULL"
        )
        self.recorded_plugins = f"SELECT name FROM plugins WHERE {mine} ORDER BY position, name"
        self.record_plugin = (
            "INSERT INTO plugins (county, position, name, recorded_at) "
            f"SELECT {c}, COALESCE(MAX(position), 0) + 1, {p}, {p} FROM plugins WHERE {mine} "
            "ON CONFLICT (county, name) DO NOTHING"
        )
        self.rule_set = f"SELECT data FROM rule_sets WHERE {mine} AND fingerprint = {p}"
        self.save_rule_set = (
            "INSERT INTO rule_sets (county, fingerprint, rules_version, data, saved_at) "
            f"VALUES ({c}, {p}, {p}, {p}, {p}) ON CONFLICT (county, fingerprint) DO NOTHING"
        )
        self.project_versions = f"SELECT project, version FROM projects WHERE {mine}"
        self.pending_notices = (
            "SELECT payload, attempts, last_error, next_attempt_at FROM outbox "
            f"WHERE {mine} AND (next_attempt_us IS NULL OR next_attempt_us <= {p}) "
            f"ORDER BY created_seq LIMIT {p}"
        )
        self.chain_page = (
            f"SELECT seq, hash, {EVENT_COLUMNS} FROM events "
            f"WHERE {mine} AND seq > {p} ORDER BY seq LIMIT {p}"
        )
        self.project_chain = (
            f"SELECT seq, hash, {EVENT_COLUMNS} FROM events "
            f"WHERE {mine} AND project = {p} ORDER BY version"
        )
        # An archived project's head is its pack's (D267).
        self.project_heads = (
            "SELECT p.project, p.version, CASE WHEN p.archive IS NULL THEN e.hash ELSE "
            "(SELECT a.head FROM archives a WHERE a.county = p.county AND a.project = p.project "
            "AND a.archive = p.archive AND a.version = p.version) END "
            "FROM projects p LEFT JOIN events e "
            "ON e.county = p.county AND e.project = p.project AND e.version = p.version "
            f"WHERE p.county = {c} ORDER BY p.project"
        )
        self.chained_projects = f"SELECT DISTINCT project FROM events WHERE {mine}"
        self.snapshot_record = (
            f"SELECT version, state, digest FROM snapshots WHERE {mine} AND project = {p}"
        )
        self.command_records = (
            "SELECT command_id, project, command, fingerprint, first_version, last_version "
            f"FROM commands WHERE {mine} ORDER BY command_id"
        )
        self.summary_rows = (
            "SELECT project, team, stage, agreed_investment, funds, signed, started, producing, "
            f"created_us FROM project_summaries WHERE {mine}"
        )
        # The store-wide chain of before schema version 8 is the whole old store's, which
        # schema version 9 made the default county's.
        self.legacy_head = (
            "SELECT events, last_seq, head, verified, reason, migrated_at FROM audit_legacy"
            + ("" if county == DEFAULT_COUNTY else " WHERE false")
        )
        self.insert_legacy = (
            "INSERT INTO audit_legacy (id, events, last_seq, head, verified, reason, "
            f"migrated_at) VALUES (1, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (id) DO UPDATE "
            "SET events = excluded.events, last_seq = excluded.last_seq, head = excluded.head, "
            "verified = excluded.verified, reason = excluded.reason, "
            "migrated_at = excluded.migrated_at"
        )
        # Rechaining (schema version 8) runs on the layout before version 11: hashes as hex
        # text, ``prev_hash`` kept, snapshots as text.
        self.v8_chain_page = (
            f"SELECT seq, hash, prev_hash, {EVENT_COLUMNS} FROM events "
            f"WHERE seq > {p} ORDER BY seq LIMIT {p}"
        )
        # Rechaining pages through the events by (project, version).
        self.events_by_project = (
            f"SELECT seq, project, version, type, at, by_actor, on_behalf_of, command_id, payload "
            f"FROM events WHERE {mine} AND (project > {p} OR (project = {p} AND version > {p})) "
            f"ORDER BY project, version LIMIT {p}"
        )
        self.v8_rechain_event = (
            f"UPDATE events SET hash = {p}, prev_hash = {p} WHERE {mine} AND seq = {p}"
        )
        self.snapshots_to_digest = (
            "SELECT s.project, s.version, s.state, e.hash FROM snapshots s LEFT JOIN events e "
            "ON e.county = s.county AND e.project = s.project AND e.version = s.version "
            f"WHERE s.county = {c}"
        )
        self.set_snapshot_digest = (
            f"UPDATE snapshots SET digest = {p} WHERE {mine} AND project = {p}"
        )
        self.insert_checkpoint = (
            "INSERT INTO checkpoints (county, sealed_at, digest, document) "
            f"VALUES ({c}, {p}, {p}, {p})"
        )
        self.newest_checkpoint = (
            f"SELECT seq, document FROM checkpoints WHERE {mine} ORDER BY seq DESC LIMIT 1"
        )
        # A notice written again (same id) starts over: no attempts, and the new claim if any.
        self.upsert_notice = (
            "INSERT INTO outbox (county, notice_id, project, kind, payload, attempts, claimed_by, "
            f"claimed_until_us) VALUES ({c}, {p}, {p}, {p}, {p}, 0, {p}, {p}) "
            "ON CONFLICT (county, notice_id) DO UPDATE "
            "SET project = excluded.project, kind = excluded.kind, payload = excluded.payload, "
            "attempts = 0, last_error = NULL, next_attempt_us = NULL, next_attempt_at = NULL, "
            "claimed_by = excluded.claimed_by, claimed_until_us = excluded.claimed_until_us"
        )
        # Releases the claim, unless another claimer took the notice over after this one's
        # lease ran out: its own outcome decides then.
        self.fail_notice = (
            f"UPDATE outbox SET attempts = attempts + 1, last_error = {p}, "
            f"next_attempt_us = {p}, next_attempt_at = {p}, claimed_by = NULL, "
            f"claimed_until_us = NULL WHERE {mine} AND notice_id = {p} "
            f"AND (claimed_by IS NULL OR claimed_by = {p})"
        )
        if dialect == "sqlite":
            self.mark_delivered = f"DELETE FROM outbox WHERE {mine} AND notice_id = ?"
        else:
            # The rows are locked in one order, oldest first, whatever plan the server picks:
            # two workers marking the same notices (one whose lease ran out, and the one that
            # took them over) would otherwise each hold a row the other waits for.
            self.mark_delivered = (
                "DELETE FROM outbox WHERE created_seq IN (SELECT created_seq FROM outbox "
                f"WHERE {mine} AND notice_id = ANY(%s) ORDER BY created_seq FOR UPDATE)"
            )
        # Whether any notice is claimable now, for a store that would rather not take a write
        # lock to find out that none is (SQLite).
        self.notice_claimable = (
            f"SELECT 1 FROM outbox WHERE {mine} "
            f"AND (next_attempt_us IS NULL OR next_attempt_us <= {p}) "
            f"AND (claimed_until_us IS NULL OR claimed_until_us <= {p}) LIMIT 1"
        )
        # The same question for due timers (within a namespace prefix).
        self.timer_claimable = (
            f"SELECT 1 FROM timers WHERE {mine} AND due_us <= {p} "
            f"AND (lease_until_us IS NULL OR lease_until_us <= {p}) "
            f"AND substr(project, 1, {p}) = {p} LIMIT 1"
        )
        # The claims choose their rows and lease them in one statement, so no other claimer
        # comes between: in SQLite inside the caller's BEGIN IMMEDIATE; in PostgreSQL the rows
        # are locked as they are chosen and other claimers skip them, never wait. Their
        # parameters are named (``_named``): each dialect wants them in another order.
        due_timers = (
            f"{mine} AND due_us <= {{now}} "
            "AND (lease_until_us IS NULL OR lease_until_us <= {now}) "
            "AND {prefix_match} ORDER BY due_us, project, kind, branch LIMIT {limit}"
        )
        due_notices = (
            f"{mine} AND (next_attempt_us IS NULL OR next_attempt_us <= {{now}}) "
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
                f"UPDATE timers t SET lease_until_us = {{until}} FROM due WHERE t.county = {c} "
                "AND t.project = due.project AND t.kind = due.kind AND t.branch = due.branch "
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

    def _among(self, projects: Collection[str], column: str = "project") -> tuple[str, list[Any]]:
        """The condition "``column`` is one of ``projects``" and its parameter."""
        if self.dialect == "sqlite":
            return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(list(projects))]
        return f"{column} = ANY(%s)", [list(projects)]

    def snapshots_of(self, projects: Collection[str]) -> tuple[str, list[Any]]:
        """Each of ``projects``' version, snapshot (version, state, digest) and the hash of the
        event the snapshot was taken at: ``load``'s row, for many projects at once."""
        where, params = self._among(projects, "p.project")
        return (
            "SELECT p.project, p.version, s.version, s.state, s.digest, (SELECT e.hash FROM "
            "events e WHERE e.county = s.county AND e.project = s.project AND e.version = "
            "s.version) FROM projects p LEFT JOIN snapshots s ON s.county = p.county AND "
            f"s.project = p.project WHERE p.county = '{self.county}' AND {where}",
            params,
        )

    def events_after_snapshots(self, projects: Collection[str]) -> tuple[str, list[Any]]:
        """The events of ``projects`` committed after each one's snapshot, in order."""
        where, params = self._among(projects, "e.project")
        columns = ", ".join(f"e.{column.strip()}" for column in EVENT_COLUMNS.split(","))
        return (
            f"SELECT {columns} FROM events e JOIN snapshots s ON s.county = e.county AND "
            f"s.project = e.project WHERE e.county = '{self.county}' AND {where} AND "
            "e.version > s.version ORDER BY e.project, e.version",
            params,
        )

    def first_events(self, projects: Collection[str]) -> tuple[str, list[Any]]:
        """The first event of each of ``projects`` (the ``(project, version)`` key)."""
        where, params = self._among(projects)
        return (
            f"SELECT {EVENT_COLUMNS} FROM events WHERE county = '{self.county}' AND {where} "
            "AND version = 1",
            params,
        )

    def archived_packs(self, projects: Collection[str]) -> tuple[str, list[Any]]:
        """The packs of those of ``projects`` that are archived."""
        where, params = self._among(projects)
        return (
            f"SELECT project, pack, head FROM archives WHERE county = '{self.county}' AND {where}",
            params,
        )


_STATEMENTS: dict[tuple[Dialect, str], SQLStatements] = {}


def statements_for(dialect: Dialect, county: str) -> SQLStatements:
    """The statements of ``county`` in ``dialect``, made once per process."""
    key = (dialect, county)
    found = _STATEMENTS.get(key)
    if found is None:
        found = _STATEMENTS[key] = SQLStatements(dialect, county)
    return found


def task_row(row: Sequence[Any]) -> TaskRow:
    """A ``task_rows`` row as read back (SQLite's booleans come back as 0 and 1, which equal
    and hash as ``False`` and ``True``: the row is the one written)."""
    return _new_task_row(TaskRow, row)


_new_task_row = tuple.__new__  # a TaskRow from a fetched tuple, without NamedTuple's __new__


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


class CommitPlan(NamedTuple):
    """One commit's rows, rendered (and checked) before any lock is taken."""

    project: str
    expected_version: int
    new_version: int
    events: list[tuple[tuple[Any, ...], str]]
    """Each event's row (without ``seq`` and the hashes) and its canonical JSON."""
    code: str | None
    command: tuple[Any, ...] | None
    snapshot: tuple[str, int, str, bytes] | None
    """(project, version, state JSON, the JSON packed as stored); its digest is added once the
    events are hashed."""
    cancel_timers: Sequence[tuple[str, str, str]]
    timers: list[tuple[str, str, str, int, str]]
    notices: list[tuple[Any, ...]]


class UniqueKeyTaken(Exception):
    """A commit's insert found its unique key taken (``constraint``, a PostgreSQL-style name):
    how a backend whose driver names no constraint reports one (SQLite). Never leaves the
    store: ``_conflict`` turns it into a ``ConcurrencyConflict``."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


class _GuardFailed(Exception):
    """The project's compare-and-set matched no row: another writer was first."""


class _Access:
    """``with store._access:`` holds the store's lock and translates a driver error into a
    library one (a class, not a generator: it is on every read)."""

    __slots__ = ("_store",)

    def __init__(self, store: SQLStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        store._lock.acquire()
        try:
            store._use_county()
        except BaseException as error:
            store._lock.release()
            translated = store._translated(error)
            if translated is not None:
                raise translated from error
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._store._lock.release()
        if error is not None and not isinstance(error, ApprovalflowError):
            translated = self._store._translated(error)
            if translated is not None:
                raise translated from error


class SQLStore(SQLTokens):
    """The reads, claims and commit of a store over the SQL schema. A subclass sets ``_sql``
    (its dialect's statements) and ``chain_page``, calls ``_setup`` in ``__init__`` and sets
    ``_connection``, and implements ``_commit_transaction``, ``_end_failed_commit``,
    ``_write_one`` and ``_driver_error``; every call holds ``_lock``, so threads may share the
    store."""

    _sql: SQLStatements
    """This view's statements (its county's, ``statements_for``)."""
    chain_page: ClassVar[int]
    """How many events ``iter_chain`` reads at a time."""

    _connection: _Connection
    _lock: threading.RLock
    _access: _Access
    _cache: StateCache
    _lease: timedelta
    _snapshot_every: int
    _read_model: ReadModel
    _claimer: str
    """This store object's name on the claims it takes (``claimer_id``)."""

    def _setup(
        self,
        *,
        lease: timedelta,
        snapshot_every: int,
        cache_size: int,
        read_model: ReadModel | None,
    ) -> None:
        """What every SQL store sets up before it connects."""
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be at least 1, not {snapshot_every}")
        from approvalflow.stores.projections import default_read_model

        self._lease = checked_lease(lease)
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self._access = _Access(self)
        self._cache = StateCache(cache_size)
        self._claimer = claimer_id()
        self._read_model = default_read_model() if read_model is None else read_model
        self._county: str | None = None
        self._sql = statements_for(self._sql.dialect, DEFAULT_COUNTY)
        # County -> its view; one dictionary for every view of this store (and connection).
        self._views: dict[str, SQLStore] = {}
        self._county_listed = False
        # What the connection is set to now (one list, shared by every view of it).
        self._session: list[object] = [None]

    # -- what a backend provides ----------------------------------------------------------------

    def _commit_transaction(self, plan: CommitPlan, writes: ProjectionWrites) -> str | None:
        """Open a write transaction, run the project's guard (``_GuardFailed`` if it did not
        hold), then ``_commit_statements`` with the chain's head, and commit; return what
        ``_commit_statements`` returned (the project's new head, if known). Called holding the
        lock; on an error ``_end_failed_commit`` follows."""
        raise NotImplementedError

    def _end_failed_commit(self) -> None:
        """Roll back whatever a failed ``_commit_transaction`` left open."""
        raise NotImplementedError

    def _write_one(self, statement: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        """Run one writing statement in a transaction of its own; return its rows, if any."""
        raise NotImplementedError

    def _driver_error(self, error: BaseException) -> ApprovalflowError | None:
        """The library error a driver error means (a bounded wait that ran out, a broken
        connection, a refused value...), or ``None`` if ``error`` is not the driver's."""
        raise NotImplementedError

    def _violated_constraint(self, error: BaseException) -> str | None:
        """The unique key a driver's error says was taken, if it is such an error."""
        return error.constraint if isinstance(error, UniqueKeyTaken) else None

    def _use_county(self) -> None:
        """Make the connection this view's county's before a statement (called holding the
        lock): PostgreSQL's row-level security reads it. Nothing to do elsewhere."""

    def _fetch_one(self, statement: str, params: Sequence[Any]) -> Any:
        """The first row of ``statement`` (called holding the lock). A backend may run its
        hot statements (``load``'s, once per command) on a leaner path than ``execute``."""
        return self._connection.execute(statement, params).fetchone()

    # -- the commit -----------------------------------------------------------------------------

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
        plan = self._commit_plan(
            project, expected_version, events, timers, notices, command, state, claim_notices_at
        )
        with self._lock:
            projection, writes = self._projection_writes(project, expected_version, state, events)
            try:
                head = self._commit_transaction(plan, writes)
            except BaseException as error:
                self._cache.drop(project)
                self._end_failed_commit()
                translated = self._translated(error, plan, command)
                if translated is None:
                    raise
                raise translated from error
            self._cache.put(project, state, projection, head)
            if expected_version == 0:
                self._county_listed = True

    def _commit_plan(
        self,
        project: str,
        expected_version: int,
        events: Sequence[Event],
        timers: TimerChanges,
        notices: Sequence[Notice],
        command: CommandRecord | None,
        state: ProjectState,
        claim_notices_at: datetime | None,
    ) -> CommitPlan:
        """Everything that can fail on bad data, done before any lock is taken."""
        checked_key("project id", project)
        if not isinstance(expected_version, int) or expected_version < 0:
            raise UnstorableValue(f"expected_version must be an int >= 0, not {expected_version!r}")
        command_row = None
        if command is not None:
            checked_key("command id", command.command_id)
            checked_key("project id", command.project)
            command_row = (
                command.command_id,
                command.project,
                command.command,
                command.fingerprint,
                command.first_version,
                command.last_version,
            )
        for notice in notices:
            checked_key("notice id", notice.id)
        try:
            rows = event_rows(project, expected_version, events)
        except (TypeError, ValueError) as error:
            raise UnstorableValue(str(error)) from error
        new_version = expected_version + len(events)
        snapshot = None
        every = self._snapshot_every
        if expected_version == 0 or new_version // every > expected_version // every:
            try:
                text = state_to_json(state)
                snapshot = (project, state.version, text, pack_state(text))
            except (TypeError, ValueError) as error:
                raise UnstorableValue(str(error)) from error
        timer_rows = [
            (t.project, t.kind, t.branch, to_epoch_us(t.due), format_datetime(t.due))
            for t in timers.set
        ]
        return CommitPlan(
            project,
            expected_version,
            new_version,
            rows,
            created_code(expected_version, events),
            command_row,
            snapshot,
            timers.cancel,
            timer_rows,
            self._notice_rows(notices, claim_notices_at),
        )

    def _commit_statements(
        self,
        run: Callable[[str, Sequence[Any], str | None], None],
        head: str | None,
        plan: CommitPlan,
        writes: ProjectionWrites,
    ) -> str | None:
        """A commit's statements after its guard, in order, each through ``run(statement,
        rows, key)`` (the backend's: one ``execute`` or an ``executemany``, or PostgreSQL's
        collecting them into one statement; ``key`` names the unique key an insert must not
        find taken, for a backend that checks it itself). ``head`` is the hash of the
        project's event at the expected version, which the new events chain from (``None``
        for a new project: ``GENESIS``). Returns the hash of the project's event at the new
        version (``None`` if neither events nor ``head`` say it)."""
        sql = self._sql
        project = plan.project
        if plan.expected_version == 0 and not self._county_listed:
            run(sql.insert_county, [(format_datetime(datetime.now(UTC)),)], None)
        if plan.code is not None:
            run(sql.insert_project_code, [(plan.code, project)], PROJECT_CODES_KEY)
        if plan.command is not None:
            run(sql.insert_command, [plan.command], COMMANDS_KEY)
        digest = head if head is not None else GENESIS
        if plan.events:
            chained = []
            for row, text in plan.events:
                digest = chain_hash(digest, text)
                chained.append((*row, hash_bytes(digest)))
            run(sql.insert_event, chained, None)
        if plan.snapshot is not None:
            _, version, text, packed = plan.snapshot
            sealed = (
                snapshot_digest(project, version, digest, text)
                if version == plan.new_version and (plan.events or head is not None)
                else None  # not at the head: a row no load trusts
            )
            run(sql.upsert_snapshot, [(project, version, packed, sealed)], None)
        if plan.cancel_timers:
            run(sql.delete_timer, plan.cancel_timers, None)
        if plan.timers:
            run(sql.upsert_timer, plan.timers, None)
        if plan.notices:
            run(sql.upsert_notice, plan.notices, None)
        for statement, rows in sql.projections.statements(writes, project):
            run(statement, rows, None)
        return digest if plan.events or head is not None else None

    # -- errors ---------------------------------------------------------------------------------

    def _translated(
        self,
        error: BaseException,
        plan: CommitPlan | None = None,
        command: CommandRecord | None = None,
    ) -> ApprovalflowError | None:
        """The one translation of what went wrong in a store call into a library error, or
        ``None`` for an error that is not the store's to translate (a library error already,
        ``KeyboardInterrupt``...)."""
        if isinstance(error, ApprovalflowError) or not isinstance(error, Exception):
            return None
        if plan is not None:
            if isinstance(error, _GuardFailed):
                return self._stale(plan.project, plan.expected_version)
            constraint = self._violated_constraint(error)
            if constraint is not None:
                return self._conflict(constraint, plan, command)
        found = self._driver_error(error)
        if found is not None:
            return found
        if isinstance(error, UnicodeEncodeError):
            return UnstorableValue(f"text the database cannot encode: {error}")
        return None

    def _conflict(
        self, constraint: str, plan: CommitPlan, command: CommandRecord | None
    ) -> ApprovalflowError:
        """What a commit that found the unique key ``constraint`` taken means."""
        if constraint == COMMANDS_KEY and command is not None:
            return ConcurrencyConflict(f"command id {command.command_id!r} is taken")
        if constraint == PROJECT_CODES_KEY:
            return ConcurrencyConflict(f"the project code of {plan.project} is taken")
        if constraint in (PROJECTS_KEY, EVENTS_KEY):
            return self._stale(plan.project, plan.expected_version)
        return StoreError(f"the commit to {plan.project} broke the unique key {constraint}")

    def _stale(self, project: str, expected_version: int) -> ApprovalflowError:
        archived = self._archived_refusal(project)
        if archived is not None:
            return archived
        with self._access:
            current = self._version(project)
        return self._stale_version(project, current, expected_version)

    def _stale_version(
        self, project: str, current: int | None, expected_version: int
    ) -> ApprovalflowError:
        """The refusal of a commit from ``expected_version`` when the project is at
        ``current`` (``None``: no such project)."""
        return stale(project, current, expected_version)

    def _archived_refusal(self, project: str) -> ProjectArchived | None:
        """``ProjectArchived`` if a commit's guard failed because the project is archived
        (read only once a guard failed: the hot path reads nothing for it)."""
        archive = self.archive_of(project)
        if archive is None:
            return None
        return ProjectArchived(
            f"{project} is archived (archive {archive}): it is read as before, and no command "
            "or timer changes it again"
        )

    # -- the pieces of a commit ------------------------------------------------------------------

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
        state: ProjectState,
        events: Sequence[Event],
    ) -> tuple[Projection, ProjectionWrites]:
        """The new state's projection and the report rows a commit writes (call under the
        lock): only those that differ from the state it starts from, when this store's cache
        holds that state (whose task rows are then reused if they did not change)."""
        model = self._read_model
        cached = self._cache.get(project)
        old = None
        if cached is not None and cached.state.version == expected_version:
            old = (
                cached.projection
                if cached.projection is not None
                else model.projection(cached.state)
            )
        if old is not None and old.tasks is not None and keeps_tasks(model):
            since: Any = model.projection
            assert cached is not None
            projection = since(state, since=(cached.state, old))
        else:
            projection = model.projection(state)
        before = None
        if old is None and expected_version > 0 and projection.counts is not None:
            # The counts add what the commit changed: the state it starts from is read (a
            # state this store did not load or commit; if another commit came first, the
            # guard refuses this one and nothing is added).
            known = self.load(project)
            if known is not None and known.version == expected_version:
                before = model.projection(known)
        writes = projection_writes(
            model, project, old, projection, events, created=expected_version == 0, before=before
        )
        return projection, writes

    def _fill_projections(self, target: Any) -> None:
        """Fill the report tables from every project's state, every county's, inside the
        caller's transaction.

        ``target`` runs the statements: a sqlite3 connection, or a psycopg cursor (both have
        ``execute`` and ``executemany``).
        """
        for county in dict.fromkeys([DEFAULT_COUNTY, *self.counties()]):
            view = self.for_county(county)
            assert isinstance(view, SQLStore)
            view._fill_county_projections(target)

    def _fill_county_projections(self, target: Any) -> None:
        """``_fill_projections`` for this view's county."""
        reports = self._sql.projections
        model = self._read_model
        with self._access:  # the connection is the county's from here on
            for statement in reports.clear_all:
                target.execute(statement)
        counts: dict[tuple[str, str], CountsRow] = {}
        for project in self.project_ids():
            state = self.load(project)
            if state is None:
                continue
            projection = model.projection(state)
            if projection.counts is not None:
                key = (projection.counts[0], projection.counts[1])
                counts[key] = added_counts(counts.get(key), projection.counts)
            target.execute(
                reports.upsert_summary,
                reports.summary_params(summary_row(project, projection.summary)),
            )
            target.executemany(reports.upsert_interval, interval_rows(model, project, projection))
            target.executemany(reports.insert_milestone, model.state_milestone_rows(state))
            if projection.tasks:
                target.executemany(reports.insert_task, all_task_rows(projection))
        target.executemany(reports.add_counts, [reports.counts_params(r) for r in counts.values()])

    # -- counties -------------------------------------------------------------------------------

    @property
    def county(self) -> str | None:
        return self._county

    def for_county(self, county: str) -> Store:
        """A view of this store limited to ``county`` (``Store.for_county``): the same
        connection and lock, this county's statements, and a state cache of its own, so no
        cached state of one county is ever handed to another's view. Closing a view closes the
        store."""
        checked_county(county)
        with self._lock:
            view = self._views.get(county)
            if view is None:
                view = copy.copy(self)
                view._county = county
                view._sql = statements_for(self._sql.dialect, county)
                view._cache = StateCache(self._cache.size)
                view._access = _Access(view)
                view._county_listed = False
                self._views[county] = view
            return cast(Store, view)

    def counties(self) -> list[str]:
        with self._access:
            rows = self._connection.execute(self._sql.counties).fetchall()
        return [str(row[0]) for row in rows]

    # -- the store's record of its plugins ------------------------------------------------------

    def recorded_plugins(self) -> tuple[str, ...]:
        with self._access:
            rows = self._connection.execute(self._sql.recorded_plugins).fetchall()
        return tuple(str(row[0]) for row in rows)

    def record_plugins(self, names: Sequence[str]) -> None:
        checked = [checked_key("plugin name", name) for name in names]
        if not checked or set(checked) <= set(self.recorded_plugins()):
            return
        at = format_datetime(datetime.now(UTC))
        self._write_rows(self._sql.record_plugin, [(name, at) for name in checked])

    def _write_rows(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``statement`` for each of ``rows`` in one durable transaction."""
        raise NotImplementedError

    def _version(self, project: str) -> int | None:
        row = self._connection.execute(self._sql.version, (project,)).fetchone()
        return int(row[0]) if row is not None else None

    # -- the Store protocol's reads -----------------------------------------------------------

    def load_for_command(self, project: str) -> ProjectState | None:
        # The cached state without the round trip that checks its version: the commit's guard
        # checks it anyway, and a failed commit drops the entry (``commit``), so a stale one
        # costs the engine one refused attempt and is never written from (D306).
        checked_key("project id", project)
        with self._lock:
            cached = self._cache.get(project)
        if cached is not None:
            # Not cloned: a command never changes the state it starts from (the protocol's
            # rule for ``load`` too; the engine works on its own copy), and a commit keeps the
            # state it was given rather than this one.
            return cached.state
        return self.load(project)

    def load(self, project: str) -> ProjectState | None:
        checked_key("project id", project)
        with self._access:
            cached = self._cache.get(project)
            known = cached.state.version if cached is not None else -1
            row = self._fetch_one(self._sql.load, (known, known, known, project))
            if row is None:
                self._cache.drop(project)
                return None
            version, snapshot_version, packed, digest, head, newest = row
            if cached is not None and version == known:
                return cached.state.clone()
            state_text = stored_state(packed)
            if packed is not None and digest != snapshot_digest(
                project, snapshot_version, hash_text(head), state_text or ""
            ):
                # An edited row (or one no digest was written for): never trusted.
                _untrusted_snapshot(project, snapshot_version)
                state_text = None
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
            # The head read beside the version is the state's only if no event came since.
            self._cache.put(
                project,
                state,
                None,
                hash_text(newest) if newest is not None and state.version == version else None,
            )
            return state.clone()

    def load_many(self, projects: Collection[str]) -> dict[str, ProjectState]:
        """``load`` of each of ``projects`` that exists, in two queries a batch of
        ``_LOAD_BATCH``: each snapshot, then the events after them. A project read any other
        way (no snapshot, an untrusted one, archived, committed to between the two queries)
        is read by ``load``. The states are not put in the cache: a report reading a county's
        projects would evict the states its commands work from."""
        ids = checked_keys("project id", projects)
        found: dict[str, ProjectState] = {}
        for start in range(0, len(ids), _LOAD_BATCH):
            found.update(self._load_batch(ids[start : start + _LOAD_BATCH]))
        return {project: found[project] for project in ids if project in found}

    def _load_batch(self, ids: list[str]) -> dict[str, ProjectState]:
        found: dict[str, ProjectState] = {}
        by_load: list[str] = []
        behind: dict[str, int] = {}  # project -> its version, where its state is older
        statement, params = self._sql.snapshots_of(ids)
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
            for project, version, snapshot_version, packed, digest, head in rows:
                cached = self._cache.get(project)
                if cached is not None and cached.state.version == version:
                    found[project] = cached.state.clone()
                    continue
                state_text = stored_state(packed)
                if (
                    state_text is None
                    or head is None
                    or digest
                    != snapshot_digest(project, snapshot_version, hash_text(head), state_text)
                ):
                    by_load.append(project)
                    continue
                found[project] = state_from_json(state_text)
                if version > snapshot_version:
                    behind[project] = version
            if behind:
                statement, params = self._sql.events_after_snapshots(list(behind))
                for row in self._connection.execute(statement, params).fetchall():
                    state = found.get(row[0])
                    if state is None or row[1] != state.version + 1:
                        # A snapshot written between the two queries: its events start later.
                        found.pop(row[0], None)
                        continue
                    state.apply(event_from_row(row))
        for project, version in behind.items():
            state = found.get(project)
            if state is None or state.version < version:
                found.pop(project, None)
                by_load.append(project)
        for project in by_load:
            state = self.load(project)
            if state is not None:
                found[project] = state
        return found

    def snapshot_version(self, project: str) -> int | None:
        checked_key("project id", project)
        with self._access:
            row = self._connection.execute(self._sql.snapshot_version, (project,)).fetchone()
        return int(row[0]) if row is not None else None

    def events(self, project: str, after_version: int = 0) -> list[Event]:
        checked_key("project id", project)
        with self._access:
            rows = self._connection.execute(self._sql.events, (project, after_version)).fetchall()
            if not rows:
                # None left after ``after_version``, or none as rows at all: archived (D267).
                links = self._packed_links(project)
                if links is not None:
                    return [link.event for link in links[max(after_version, 0) :]]
        return [event_from_row(row) for row in rows]

    def _packed_links(self, project: str, *, checked: bool = False) -> list[ChainLink] | None:
        """The archived project's events with their chain columns, from its pack; ``None``
        if it is not archived. A pack that does not unpack is a ``StoreError`` (``checked``:
        the ``ValueError`` itself, which the audit reports as a finding)."""
        with self._access:
            row = self._connection.execute(self._sql.archived_pack, (project,)).fetchone()
            if row is None:
                # Archived, but its pack is not here: its archive was detached (D272).
                found = self._connection.execute(self._sql.project_archive, (project,)).fetchone()
                if found is None or found[1] is None:
                    return None
                problem = (
                    f"{project} is archived in {found[1]}, whose pack is not in the store (a "
                    "detached archive: attach it again to read the project)"
                )
                if checked:
                    raise ValueError(problem)
                raise StoreError(problem)
        try:
            return archives.unpack(project, row[0], row[1])
        except ValueError as error:
            if checked:
                raise
            raise StoreError(f"{error.args[0]}: run `approvalflow audit verify`") from None

    def command(self, command_id: str) -> CommandRecord | None:
        checked_key("command id", command_id)
        with self._access:
            row = self._connection.execute(self._sql.command, (command_id,)).fetchone()
        return CommandRecord(*row) if row is not None else None

    def rule_set(self, fingerprint: str) -> str | None:
        with self._access:
            row = self._connection.execute(self._sql.rule_set, (fingerprint,)).fetchone()
        return None if row is None else str(row[0])

    def save_rule_set(self, fingerprint: str, rules_version: str, data: str) -> None:
        saved_at = format_datetime(datetime.now(UTC))
        self._write_one(self._sql.save_rule_set, (fingerprint, rules_version, data, saved_at))

    def project_with_code(self, code: str) -> str | None:
        with self._access:
            row = self._connection.execute(self._sql.project_with_code, (code,)).fetchone()
        return None if row is None else str(row[0])

    def next_due(self) -> datetime | None:
        with self._access:
            row = self._connection.execute(self._sql.next_due).fetchone()
        return parse_datetime(row[0]) if row is not None else None

    def timers(self, project: str) -> list[Timer]:
        checked_key("project id", project)
        with self._access:
            rows = self._connection.execute(self._sql.timers, (project,)).fetchall()
        return [
            Timer(project, kind, parse_datetime(due_at), branch) for kind, branch, due_at in rows
        ]

    def project_ids(self) -> list[str]:
        with self._access:
            rows = self._connection.execute(self._sql.project_ids).fetchall()
        return [row[0] for row in rows]

    def task_rows(self, parties: Collection[str]) -> list[TaskRow] | None:
        if not keeps_tasks(self._read_model):
            return None
        if not parties:
            return []
        statement, params = self._sql.projections.task_rows(parties)
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
        return [task_row(row) for row in rows]

    def actor_events(self, actor: str, newest: int | None = None) -> list[Event]:
        with self._access:
            archived = self._connection.execute(
                self._sql.archived_actor_projects, (actor,)
            ).fetchall()
        if newest is None:
            with self._access:
                rows = self._connection.execute(self._sql.actor_events, (actor, actor)).fetchall()
            events = [event_from_row(row) for row in rows]
            for project, _ in archived:
                events += [link.event for link in self._archived_acts(str(project), actor)]
            return sorted(events, key=lambda e: (e.project, e.version))
        limit = max(newest, 0)
        if limit == 0:
            return []
        with self._access:
            found = self._connection.execute(self._sql.newest_by_actor, (actor, limit)).fetchall()
            found += self._connection.execute(self._sql.newest_on_behalf, (actor, limit)).fetchall()
        # The two lists merged by commit order, an event in both once, the newest ``limit``.
        by_seq: dict[int, Event] = {int(row[0]): event_from_row(row[1:]) for row in found}
        # Archived projects by their newest event, newest first: a project whose newest event
        # is older than the ``limit`` newest found so far has nothing newer to add.
        for project, last_seq in archived:
            if len(by_seq) >= limit and int(last_seq) < sorted(by_seq, reverse=True)[limit - 1]:
                break
            for link in self._archived_acts(str(project), actor):
                by_seq[link.seq] = link.event
        newest_events = [event for _, event in sorted(by_seq.items(), reverse=True)[:limit]]
        return sorted(newest_events, key=lambda e: (e.project, e.version))

    def _archived_acts(self, project: str, actor: str) -> list[ChainLink]:
        """The archived ``project``'s events ``actor`` sent or that were sent on their behalf
        (none if its pack is gone: a detached archive)."""
        with self._access:
            row = self._connection.execute(self._sql.archived_pack, (project,)).fetchone()
        if row is None:
            return []
        return [
            link
            for link in self._unpacked(project, row[0], row[1])
            if link.event.by == actor or link.event.on_behalf_of == actor
        ]

    def due_task_rows(self, kinds: Collection[str], until: datetime) -> list[TaskRow] | None:
        if not keeps_tasks(self._read_model):
            return None
        if not kinds:
            return []
        statement, params = self._sql.projections.due_task_rows(kinds, to_epoch_us(until))
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
        return [task_row(row) for row in rows]

    def intake_projects(self, at: str) -> list[str]:
        """This county's projects taken in at county ``at``'s hall (异地受理: the ``intake``
        field of their created event names ``at``), in id order; one index range
        (``events_by_intake``), no project loaded."""
        with self._access:
            rows = self._connection.execute(self._sql.intake_projects, (at,)).fetchall()
        return [str(row[0]) for row in rows]

    def due_task_groups(
        self, kinds: Collection[str], until: datetime, limit: int
    ) -> list[DueGroup] | None:
        if not keeps_tasks(self._read_model):
            return None
        if not kinds:
            return []
        reports = self._sql.projections
        first, until_us = max(limit, 1), to_epoch_us(until)
        if reports.dialect == "sqlite":
            # Local calls: the counts from the index, then a range of it per group.
            counts, params = reports.due_task_counts(kinds, until_us)
            each = reports.due_task_first(first)
            with self._access:
                found = self._connection.execute(counts, params).fetchall()
                return [
                    DueGroup(
                        int(count),
                        tuple(
                            task_row(row)
                            for row in self._connection.execute(each, group).fetchall()
                        ),
                    )
                    for *group, count in found
                ]
        statement, params = reports.due_task_groups(kinds, until_us, first)
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
        groups: dict[tuple[Any, ...], tuple[int, list[TaskRow]]] = {}
        for *columns, count in rows:
            row = task_row(columns)
            key = due_group_key(row)
            held = groups.get(key)
            if held is None:
                held = groups[key] = (int(count), [])
            held[1].append(row)
        return [
            DueGroup(count, tuple(sorted(first_rows, key=lambda r: (r.project, r.party))))
            for count, first_rows in groups.values()
        ]

    def first_events(self, projects: Collection[str]) -> dict[str, Event]:
        if not projects:
            return {}
        statement, params = self._sql.first_events(projects)
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
        found = {str(row[0]): event_from_row(row) for row in rows}
        missing = [project for project in projects if project not in found]
        if missing:
            statement, params = self._sql.archived_packs(missing)
            with self._access:
                packs = self._connection.execute(statement, params).fetchall()
            for project, packed, head in packs:
                found[str(project)] = self._unpacked(str(project), packed, head)[0].event
        return found

    def _unpacked(self, project: str, packed: Any, head: Any) -> list[ChainLink]:
        try:
            return archives.unpack(project, packed, head)
        except ValueError as error:
            raise StoreError(f"{error.args[0]}: run `approvalflow audit verify`") from None

    def milestone_points(
        self,
        month: str | None = None,
        prefix: str = "",
        projects: Collection[str] | None = None,
    ) -> dict[str, int]:
        statement, params = self._sql.projections.milestone_points(month, prefix, projects)
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
        return {team: int(points) for team, points in rows}

    def milestone_points_by_kind(
        self,
        month: str | None = None,
        prefix: str = "",
        projects: Collection[str] | None = None,
    ) -> dict[str, dict[str, int]]:
        statement, params = self._sql.projections.milestone_points_by_kind(month, prefix, projects)
        with self._access:
            rows = self._connection.execute(statement, params).fetchall()
        found: dict[str, dict[str, int]] = {}
        for team, milestone, points in rows:
            found.setdefault(team, {})[milestone] = int(points)
        return found

    def milestone_projects(self, milestone: str, month: str) -> list[str]:
        statement = self._sql.projections.milestone_projects
        with self._access:
            rows = self._connection.execute(statement, (month, milestone)).fetchall()
        return [str(project) for (project,) in rows]

    def team_month_counts(self) -> dict[tuple[str, str], CountsRow] | None:
        with self._access:
            rows = self._connection.execute(self._sql.projections.team_month_counts).fetchall()
        found: dict[tuple[str, str], CountsRow] = {}
        for team, month, *values in rows:
            if not all(isinstance(value, int | Decimal) for value in values):
                return None  # a sum past 64 bits (SQLite made it a float): not exact
            found[(team, month)] = (team, month, *(int(value) for value in values))
        return found

    def metric_inputs(self, projects: Collection[str] | None = None) -> Any:
        summaries, intervals = self._metric_rows(projects, by_team=False)
        return self._read_model.metric_inputs(summaries[0] if summaries else None, intervals)

    def team_metric_inputs(self, projects: Collection[str] | None = None) -> dict[str, Any]:
        summaries, intervals = self._metric_rows(projects, by_team=True)
        return {
            team: self._read_model.metric_inputs(totals, rows)
            for team, (totals, rows) in team_rows(summaries, intervals).items()
        }

    def _metric_rows(
        self, projects: Collection[str] | None, *, by_team: bool
    ) -> tuple[list[Any], list[Any]]:
        """The summary totals (``[team,]`` then ``ProjectionSQL.totals``) and the interval
        counts of ``projects``."""
        reports = self._sql.projections
        skip = 1 if by_team else 0
        counts, counts_params = reports.interval_counts(projects, by_team=by_team)
        with self._access:
            intervals = self._connection.execute(counts, counts_params).fetchall()
            summaries: list[Any] = []
            for exact in (False, True):
                statement, params = reports.summary_totals(projects, by_team=by_team, exact=exact)
                rows = self._connection.execute(statement, params).fetchall()
                summaries = [(*row[:skip], reports.totals(row[skip:], exact=exact)) for row in rows]
                if all(row[skip] is not None for row in summaries):
                    break
        return [(*row[:skip], *row[skip]) for row in summaries], intervals

    def pending_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        with self._access:
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

    def release_timer(self, timer: Timer) -> None:
        self._write_one(
            self._sql.release_timer,
            (timer.project, timer.kind, timer.branch, to_epoch_us(timer.due)),
        )

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
        with self._access:
            self._cache.clear()
            self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- archives (D265-D272) -------------------------------------------------------------------

    def archive_of(self, project: str) -> str | None:
        checked_key("project id", project)
        with self._access:
            row = self._connection.execute(self._sql.project_archive, (project,)).fetchone()
        return None if row is None or row[1] is None else str(row[1])

    def archive(self, project: str, archive: str, expected_version: int) -> None:
        checked_key("project id", project)
        name = archives.checked_archive_name(archive)
        state = self.load(project)
        if state is None:
            if self.archive_of(project) is not None:
                raise NotArchivable(f"{project} is archived already")
            raise UnknownProject(f"no project {project!r}")
        refusal = archives.unarchivable(self._read_model, state, expected_version)
        if refusal is not None:
            raise refusal
        self._make_archive_partition(name)
        sql = self._sql
        with self._archive_transaction() as target:
            row = target.execute(sql.lock_project, (project,)).fetchone()
            if row is None:
                raise UnknownProject(f"no project {project!r}")
            if row[1] is not None:
                raise NotArchivable(f"{project} is archived already (archive {row[1]})")
            if int(row[0]) != expected_version:
                raise stale(project, int(row[0]), expected_version)
            timers = target.execute(sql.timer_count, (project,)).fetchone()
            if timers is not None and int(timers[0]) > 0:
                raise NotArchivable(
                    f"{project} still has {int(timers[0])} timer(s): a finished project has none"
                )
            links = [
                ChainLink(int(seq), event_from_row(event_row), hash_text(digest))
                for seq, digest, *event_row in target.execute(
                    sql.project_chain, (project,)
                ).fetchall()
            ]
            self._check_packable(project, expected_version, links, target)
            packed = archives.pack(project, links)
            actors = sorted(archives.actors_of(links))
            row = [project, name, packed.version, packed.last_seq, packed.head, packed.pack]
            if sql.dialect == "sqlite":
                target.execute(sql.insert_archive, row)
                if actors:
                    target.executemany(sql.insert_archive_actor, [(a, project) for a in actors])
            else:
                target.execute(sql.insert_archive, [*row, actors])
            target.execute(sql.delete_events, (project,))
            target.execute(sql.delete_snapshot, (project,))
            marked = target.execute(sql.mark_archived, (name, project, expected_version))
            if marked.rowcount != 1:
                raise stale(project, None, expected_version)
        self._cache.drop(project)

    def _check_packable(
        self, project: str, version: int, links: Sequence[ChainLink], target: Any
    ) -> None:
        """Refuse to pack a chain that does not verify (packing would hide the damage), or one
        holding events from before per-project chains (they are the old chain's evidence)."""
        previous = GENESIS
        for position, link in enumerate(links, start=1):
            if (
                link.event.version != position
                or chain_hash(previous, canonical_event_json(link.event)) != link.hash
            ):
                raise NotArchivable(
                    f"{project}'s chain does not verify at version {position}: run "
                    "`approvalflow audit verify` (a damaged chain is not archived)"
                )
            previous = link.hash
        if len(links) != version:
            raise NotArchivable(
                f"{project} is at version {version} but has {len(links)} events: run "
                "`approvalflow audit verify` (a damaged chain is not archived)"
            )
        legacy = target.execute(self._sql.legacy_head).fetchone()
        if legacy is not None and min(link.seq for link in links) <= int(legacy[1]):
            raise NotArchivable(
                f"{project} has events from before per-project chains (the pre-migration "
                "chain's evidence, which `audit verify` recomputes): it is kept as it is"
            )

    def _make_archive_partition(self, name: str) -> None:
        """Make the archive's own storage if the backend keeps one per archive (PostgreSQL's
        partition); nothing elsewhere."""

    def _archive_transaction(self) -> Any:
        """A context manager: one write transaction (holding the lock), giving something with
        ``execute`` and ``executemany`` whose ``execute`` returns a cursor."""
        raise NotImplementedError

    def archive_rows(self) -> list[archives.PackRow]:
        """Every archived project's row of ``archives``, by project."""
        with self._access:
            rows = self._connection.execute(self._sql.archive_rows).fetchall()
        return [
            archives.PackRow(str(county), str(project), str(name), int(version), bytes(h), bytes(p))
            for county, project, name, version, h, p in rows
        ]

    def archive_table_rows(self, table: str) -> list[archives.PackRow]:
        """Every row of ``table``: ``archives``, or one of its partitions (``archives_2026_q1``),
        attached or detached (D272), every county's, by county and project. Read by the
        tables' owner (the unscoped store): a detached partition has no county wall."""
        if re.fullmatch(r"archives(_[a-z0-9_]{1,32})?", table) is None:
            raise ValueError(f"{table!r} is not an archive table (archives, archives_NAME)")
        with self._access:
            if not self._table_exists(table):
                raise ValueError(f"the store holds no table {table!r}")
            rows = self._connection.execute(
                "SELECT county, project, archive, version, head, pack FROM "
                f"{table} ORDER BY county, project"
            ).fetchall()
        return [
            archives.PackRow(str(county), str(project), str(name), int(version), bytes(h), bytes(p))
            for county, project, name, version, h, p in rows
        ]

    def _table_exists(self, table: str) -> bool:
        """Whether the database holds ``table`` (SQLite's catalogue; PostgreSQL overrides)."""
        found = self._connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return found is not None

    # -- the audit chains ---------------------------------------------------------------------

    def chain_head(self) -> ChainHead:
        """The store's head: its event count (the projects' versions added up) and
        ``store_digest`` of every project's head, from one statement."""
        heads = self.project_heads()
        if not heads:
            return ChainHead(0, GENESIS)
        return ChainHead(
            sum(version for _, version, _ in heads),
            store_digest(ProjectHead(p, v, h or "") for p, v, h in heads),
        )

    def project_heads(self) -> list[tuple[str, int, str | None]]:
        """Each project's recorded version and the hash of its event at that version
        (``None`` if it has none), by project id."""
        with self._access:
            rows = self._connection.execute(self._sql.project_heads).fetchall()
        return [(str(p), int(v), None if h is None else hash_text(h)) for p, v, h in rows]

    def chained_projects(self) -> set[str]:
        """Every project that has events."""
        with self._access:
            rows = self._connection.execute(self._sql.chained_projects).fetchall()
        return {str(row[0]) for row in rows}

    def project_chain(self, project: str) -> list[ChainLink]:
        """The project's events with their chain columns, by version (an archived project's
        from its pack; ``ValueError`` if that does not unpack)."""
        with self._access:
            rows = self._connection.execute(self._sql.project_chain, (project,)).fetchall()
        if not rows:
            return self._packed_links(project, checked=True) or []
        return [
            ChainLink(int(seq), event_from_row(event_row), hash_text(digest))
            for seq, digest, *event_row in rows
        ]

    def snapshot_record(self, project: str) -> tuple[int, str, str | None] | None:
        """The project's snapshot row as stored: version, state JSON, digest."""
        with self._access:
            row = self._connection.execute(self._sql.snapshot_record, (project,)).fetchone()
        # A row that does not unpack holds no state: its digest cannot match.
        return None if row is None else (int(row[0]), stored_state(row[1]) or "", row[2])

    def command_records(self) -> Iterator[CommandRecord]:
        """Every command record, by command id."""
        with self._access:
            rows = self._connection.execute(self._sql.command_records).fetchall()
        return iter([CommandRecord(*row) for row in rows])

    def summary_rows(self) -> dict[str, tuple[Any, ...]]:
        """Each project's report summary row as stored."""
        with self._access:
            rows = self._connection.execute(self._sql.summary_rows).fetchall()
        return {str(row[0]): tuple(row) for row in rows}

    def expected_summary(self, project: str, state: ProjectState) -> tuple[Any, ...]:
        """The summary row this store's read model makes of ``state``."""
        return summary_row(project, self._read_model.projection(state).summary)

    def legacy_head(self) -> LegacyHead | None:
        """The pre-migration store-wide chain's head, if this store was migrated from one."""
        with self._access:
            row = self._connection.execute(self._sql.legacy_head).fetchone()
        if row is None:
            return None
        events, last_seq, head, verified, reason, migrated_at = row
        return LegacyHead(int(events), int(last_seq), head, bool(verified), reason, migrated_at)

    def save_checkpoint(self, sealed_at: str, digest: str, document: str) -> None:
        """Keep a sealed checkpoint (``stores.checkpoints``) in the checkpoints table."""
        self._write_rows(self._sql.insert_checkpoint, [(sealed_at, digest, document)])

    def newest_checkpoint(self) -> tuple[int, str] | None:
        """The newest checkpoint kept: its number and its document."""
        with self._access:
            row = self._connection.execute(self._sql.newest_checkpoint).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def _rechain(self, target: Any) -> None:
        """Move a store from the store-wide chain to per-project chains, inside the caller's
        transaction (the migration to schema version 7): record the old chain's head and
        whether it verifies, rehash every event from its project's previous one, and give every
        snapshot its digest. ``target`` runs the statements (a sqlite3 connection or a psycopg
        cursor)."""
        sql = self._sql
        head, count, last_seq, problem = GENESIS, 0, 0, None
        stored_head = GENESIS
        after = -(2**63)
        while True:
            rows = target.execute(sql.v8_chain_page, (after, self.chain_page)).fetchall()
            if not rows:
                break
            for seq, digest, prev_hash, *event_row in rows:
                count += 1
                if problem is None:
                    if prev_hash != head:
                        problem = f"event {seq}'s prev_hash does not follow the event before it"
                    elif chain_hash(head, canonical_event_json(event_from_row(event_row))) != (
                        digest
                    ):
                        problem = f"event {seq}'s content does not match its hash"
                head = chain_hash(head, canonical_event_json(event_from_row(event_row)))
                stored_head, last_seq = digest, int(seq)
            after = rows[-1][0]
        if count:
            target.execute(
                sql.insert_legacy,
                (
                    count,
                    last_seq,
                    stored_head,
                    problem is None,
                    problem,
                    format_datetime(datetime.now(UTC)),
                ),
            )
        project, version, previous = "", 0, GENESIS
        while True:
            rows = target.execute(
                sql.events_by_project, (project, project, version, self.chain_page)
            ).fetchall()
            if not rows:
                break
            updates = []
            for seq, *event_row in rows:
                event = event_from_row(event_row)
                if event.project != project:
                    previous = GENESIS
                digest = chain_hash(previous, canonical_event_json(event))
                updates.append((digest, previous, seq))
                project, version, previous = event.project, event.version, digest
            target.executemany(sql.v8_rechain_event, updates)
        snapshots = target.execute(sql.snapshots_to_digest).fetchall()
        target.executemany(
            sql.set_snapshot_digest,
            [
                (snapshot_digest(p, int(v), h, text) if h is not None else None, p)
                for p, v, text, h in snapshots
            ],
        )

    def _compact(self, target: Any) -> None:
        """Schema version 11, inside the caller's transaction: every event's hash from 64 hex
        digits to its 32 bytes and its ``prev_hash`` dropped (the chain check takes it from the
        previous version), every snapshot's JSON compressed (``pack_state``); digests are over
        the JSON text and stay as they are. ``target`` runs the statements (a sqlite3
        connection or a psycopg cursor)."""
        if self._sql.dialect == "sqlite":
            # SQLite changes no column's type: the two tables are copied into new ones, their
            # values converted by Python functions (SQLite 3.40 has no unhex()).
            target.create_function("approvalflow_hash", 1, _migrated_hash, deterministic=True)
            target.create_function("approvalflow_pack", 1, _migrated_state, deterministic=True)
            conversions = {
                "events": {"hash": "approvalflow_hash(hash)"},
                "snapshots": {"state": "approvalflow_pack(state)"},
            }
            for name, converted in conversions.items():
                definition = schema.table(name)
                columns = [column.name for column in definition.columns]
                values = ", ".join(converted.get(column, column) for column in columns)
                target.execute(
                    schema.table_ddl(attrs.evolve(definition, name=f"{name}_v9"), "sqlite")
                )
                target.execute(
                    f"INSERT INTO {name}_v9 ({', '.join(columns)}) SELECT {values} FROM {name}"
                )
                target.execute(f"DROP TABLE {name}")
                target.execute(f"ALTER TABLE {name}_v9 RENAME TO {name}")
            for index in schema.INDEXES:
                if index.table in conversions:
                    target.execute(schema.index_ddl(index))
            return
        target.execute(
            "ALTER TABLE events DROP COLUMN prev_hash, ALTER COLUMN hash TYPE BYTEA USING "
            "CASE WHEN hash ~ '^[0-9a-f]{64}$' THEN decode(hash, 'hex') "
            "ELSE convert_to(hash, 'UTF8') END"
        )
        snapshots = target.execute("SELECT project, state FROM snapshots").fetchall()
        target.execute(
            "ALTER TABLE snapshots ALTER COLUMN state TYPE BYTEA USING convert_to(state, 'UTF8')"
        )
        target.executemany(
            "UPDATE snapshots SET state = %s WHERE project = %s",
            [(pack_state(text), project) for project, text in snapshots],
        )

    def project_versions(self) -> dict[str, int]:
        """Each project's version as its last commit recorded it."""
        with self._access:
            rows = self._connection.execute(self._sql.project_versions).fetchall()
        return {project: int(version) for project, version in rows}

    def iter_chain(self) -> Iterator[ChainLink]:
        """Every event in chain order with its hashes, read a page at a time (no lock or
        transaction held between pages, so commits go on while an audit runs)."""
        after = -(2**63)  # from the very first row, even one given a seq below 1 by hand
        while True:
            with self._access:
                rows = self._connection.execute(
                    self._sql.chain_page, (after, self.chain_page)
                ).fetchall()
            if not rows:
                return
            for seq, digest, *event_row in rows:
                yield ChainLink(int(seq), event_from_row(event_row), hash_text(digest))
            after = rows[-1][0]


def hash_bytes(digest: str) -> bytes:
    """A chain hash (64 hex digits, what the chain computes) as the 32 bytes stored."""
    return bytes.fromhex(digest)


def hash_text(stored: Any) -> str:
    """A stored hash (``bytes``; ``None`` for none) as the hex digits the chain computes."""
    return bytes(stored).hex() if stored is not None else ""


def stored_state(packed: Any) -> str | None:
    """A snapshot row's state as JSON text, ``None`` if there is none or it does not unpack
    (an edited row: it is then untrusted)."""
    if packed is None:
        return None
    try:
        return unpack_state(bytes(packed))
    except ValueError:
        return None


def _migrated_hash(text: Any) -> bytes:
    """A hash as schema version 8 kept it (hex text) as version 11 keeps it; text that is not a
    hash the chain computes (a row edited by hand) keeps its bytes, which no hash matches."""
    value = str(text)
    if _HEX_HASH.fullmatch(value):
        return bytes.fromhex(value)
    return value.encode("utf-8")


def _migrated_state(text: Any) -> bytes:
    return pack_state(str(text))


_HEX_HASH = re.compile("[0-9a-f]{64}")
# Projects a query of ``load_many`` names at most: one statement's parameter, and the states
# decoded from one answer, stay small.
_LOAD_BATCH = 500


def _untrusted_snapshot(project: str, version: int) -> None:
    from approvalflow.logs import library_logger

    library_logger().warning(
        "approvalflow.snapshot_untrusted",
        project=project,
        version=version,
        reason="its digest does not match: folded from the events instead",
    )


def schema_steps(
    found: int | None, dialect: Dialect, *, create: bool, migrate: bool, where: str
) -> list[str]:
    """The statements that make ``where`` (a store at schema version ``found``, ``None`` for
    none) current: none when it is current already.

    :raises StoreNotFound: it has no schema and ``create`` is false.
    :raises SchemaVersionError: it is older and ``migrate`` is false, or it is newer.
    """
    statements = upgrade_statements(found, dialect)
    if not statements:
        return statements
    if found is None and not create:
        raise StoreNotFound(
            f"no approvalflow store in {where}: create it with `approvalflow store init URL` "
            "(or open it with create=True)"
        )
    if found is not None and not migrate:
        from approvalflow.stores.schema import SCHEMA_VERSION

        raise SchemaVersionError(
            f"{where} has schema version {found}, older than version {SCHEMA_VERSION} of this "
            "approvalflow: migrate it with `approvalflow store migrate URL` (or open it with "
            "migrate=True)",
            found=found,
        )
    return statements


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
