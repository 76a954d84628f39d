"""The PostgreSQL store, for many processes and machines working on the same projects.

It uses psycopg 3 directly (an optional dependency: ``pip install 'approvalflow[postgres]'``),
for the reason ``approvalflow.stores.sqlite`` gives: each command is one short transaction of
a few fixed statements. The schema is the one in ``approvalflow.stores.schema``.

What a caller may rely on (the same as the SQLite store, plus):

- ``commit`` is one transaction; a stale ``expected_version`` or a taken command id raises
  ``ConcurrencyConflict`` and writes nothing. The guards are the database's: the project row's
  compare-and-set (``UPDATE ... WHERE version = expected``; a second writer waits for the first
  and then finds the version moved), the events' unique key ``(project, version)`` and the
  command id's primary key, whose violations are translated. Nothing is read and trusted.
- Any number of processes may use one database at once, each with its own ``PostgresStore``.
  Commits to one project are serialised by its row; commits that add events also take, until
  they end, an advisory lock of their schema's own that orders appends to the audit chain (the
  price of one store-wide chain; it is held only for the few statements after it).
- ``claim_due`` picks timers with ``SELECT ... FOR UPDATE SKIP LOCKED`` and sets their lease in
  the same transaction, so two workers never claim one timer at once and never wait for each
  other.
- One ``PostgresStore`` holds one connection; threads may share it (calls are serialised).
  Never share one across ``fork``.

Isolated databases for tests: ``PostgresStore.from_url(url, schema="t_<random>")`` (or
``?schema=t_<random>`` in the URL) creates that PostgreSQL schema if needed and keeps every
table in it (through ``search_path``); ``drop()`` removes the schema and everything in it and
closes the store. Several schemas can live in one database side by side.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

try:
    import psycopg
    from psycopg import errors, sql
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "PostgresStore needs psycopg 3, an optional dependency: "
        "pip install 'approvalflow[postgres]'"
    ) from missing

from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import Event, Notice, Timer, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.stores.audit import GENESIS, ChainHead, ChainLink, chain_hash
from approvalflow.stores.base import CommandRecord, OutboxEntry
from approvalflow.stores.schema import upgrade_statements
from approvalflow.stores.serialization import (
    event_from_row,
    event_rows,
    format_datetime,
    notice_to_json,
    outbox_entry,
    parse_datetime,
    state_from_json,
    state_to_json,
    to_epoch_us,
)

__all__ = ["PostgresStore"]

_DEFAULT_LEASE = timedelta(minutes=5)
_DEFAULT_SNAPSHOT_EVERY = 16
_CHAIN_PAGE = 1000
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Taken while a schema is created or migrated, so processes starting together do it once.
_SCHEMA_LOCK = 0x617070726F76616C

_EVENT_COLUMNS = "project, version, type, at, by_actor, on_behalf_of, command_id, payload"
_INSERT_EVENT = (
    f"INSERT INTO events (seq, {_EVENT_COLUMNS}, hash, prev_hash) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_CHAIN_HEAD = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"

Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresStore:
    """Events, snapshots, timers, command ids and the outbox in a PostgreSQL database.

    :param conninfo: a libpq connection string or ``postgresql://`` URL.
    :param schema: keep the tables in this PostgreSQL schema (created if missing) instead of the
        connection's default ``search_path``; lower-case letters, digits and ``_``.
    :param lease: how long a timer returned by ``claim_due`` is hidden from other claimers.
    :param snapshot_every: write a snapshot each time the version crosses a multiple of this.
    :raises SchemaVersionError: the database was written by a newer approvalflow.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        lease: timedelta = _DEFAULT_LEASE,
        snapshot_every: int = _DEFAULT_SNAPSHOT_EVERY,
        connect_timeout: int = 10,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(
                f"schema {schema!r} must be lower-case letters, digits and _ (at most 63)"
            )
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every must be at least 1, not {snapshot_every}")
        self.schema = schema
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._lease = lease
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self._connection: Connection = psycopg.connect(
            conninfo, autocommit=True, connect_timeout=connect_timeout
        )
        try:
            if schema is not None:
                self._connection.execute("SELECT set_config('search_path', %s, false)", (schema,))
            self._ensure_schema()
            row = self._connection.execute("SELECT current_schema()").fetchone()
            self._chain_lock = _chain_lock_key(row[0] if row is not None else "")
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        schema: str | None = None,
        lease: timedelta = _DEFAULT_LEASE,
        snapshot_every: int = _DEFAULT_SNAPSHOT_EVERY,
    ) -> PostgresStore:
        """Open ``postgresql://user@host:port/database`` (also ``postgres://`` and
        ``postgresql+psycopg://``). A ``schema`` query parameter does what ``schema=`` does."""
        if url.startswith("postgresql+psycopg:"):
            url = "postgresql:" + url[len("postgresql+psycopg:") :]
        if not url.startswith(("postgresql:", "postgres:")):
            raise ValueError(f"not a PostgreSQL URL: {url!r} (use postgresql://...)")
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        url_schema = [value for key, value in query if key == "schema"]
        if url_schema:
            if schema is not None and schema != url_schema[-1]:
                raise ValueError(f"schema {schema!r} differs from the URL's {url_schema[-1]!r}")
            schema = url_schema[-1]
            # quote, not urlencode's default quote_plus: libpq reads "+" as a plus, not a space.
            rest = urlencode(
                [(key, value) for key, value in query if key != "schema"], quote_via=quote
            )
            url = urlunsplit(parts._replace(query=rest))
        return cls(url, schema=schema, lease=lease, snapshot_every=snapshot_every)

    # -- plumbing -----------------------------------------------------------------------------

    def _ensure_schema(self) -> None:
        with self._lock, self._connection.transaction():
            connection = self._connection
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if self.schema is not None:
                connection.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            exists = connection.execute("SELECT to_regclass('meta')").fetchone()
            found: int | None = None
            if exists is not None and exists[0] is not None:
                row = connection.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
                found = int(row[0]) if row is not None else None
            for statement in upgrade_statements(found, "postgresql"):
                connection.execute(statement)

    def _version(self, project: str) -> int | None:
        row = self._connection.execute(
            "SELECT version FROM projects WHERE project = %s", (project,)
        ).fetchone()
        return int(row[0]) if row is not None else None

    def drop(self) -> None:
        """Drop this store's schema with every table in it, and close the store.

        Only for a store opened with ``schema=``: it would otherwise drop tables shared with
        everyone else, so it refuses.
        """
        if self.schema is None:
            raise ValueError("drop() removes a store's own schema; this one was opened without")
        statement = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
        with self._lock:
            if self._connection.closed:
                # Closed already (a test did): drop through a connection of its own.
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
                ) as connection:
                    connection.execute(statement)
            else:
                self._connection.execute(statement)
                self._connection.close()

    # -- the Store protocol -------------------------------------------------------------------

    def load(self, project: str) -> ProjectState | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT p.version, s.version, s.state FROM projects p "
                "LEFT JOIN snapshots s ON s.project = p.project WHERE p.project = %s",
                (project,),
            ).fetchone()
            if row is None:
                return None
            version, snapshot_version, state_text = row
            if state_text is None:
                events = self.events(project)
                return ProjectState.from_events(events) if events else None
            state = state_from_json(state_text)
            if version > snapshot_version:
                # ``apply`` checks the events follow the snapshot and one another.
                for event in self.events(project, snapshot_version):
                    state.apply(event)
            return state

    def snapshot_version(self, project: str) -> int | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT version FROM snapshots WHERE project = %s", (project,)
            ).fetchone()
        return int(row[0]) if row is not None else None

    def events(self, project: str, after_version: int = 0) -> list[Event]:
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events "
                "WHERE project = %s AND version > %s ORDER BY version",
                (project, after_version),
            ).fetchall()
        return [event_from_row(row) for row in rows]

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
    ) -> None:
        # Everything that can fail on bad data is rendered before any lock is taken.
        new_events = event_rows(project, expected_version, events)
        new_version = expected_version + len(events)
        snapshot = None
        if expected_version == 0 or (
            new_version // self._snapshot_every > expected_version // self._snapshot_every
        ):
            snapshot = (project, state.version, state_to_json(state))
        timer_rows = [
            (t.project, t.kind, t.branch, to_epoch_us(t.due), format_datetime(t.due))
            for t in timers.set
        ]
        notice_rows = [(n.id, n.project, n.kind, notice_to_json(n)) for n in notices]
        try:
            with self._lock, self._connection.transaction():
                cursor = self._connection.cursor()
                if expected_version == 0:
                    cursor.execute(
                        "INSERT INTO projects (project, version) VALUES (%s, %s)",
                        (project, new_version),
                    )
                else:
                    cursor.execute(
                        "UPDATE projects SET version = %s WHERE project = %s AND version = %s",
                        (new_version, project, expected_version),
                    )
                    if cursor.rowcount != 1:
                        raise _stale(project, self._version(project), expected_version)
                if new_events:
                    # One appender at a time per chain, released at COMMIT. Taken after the
                    # project's guard, so a stale writer fails without waiting for it, and
                    # before the command id, so a writer waiting here holds no key that the
                    # lock's holder could be waiting for (no deadlock).
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self._chain_lock,))
                if command is not None:
                    cursor.execute(
                        "INSERT INTO commands (command_id, project, command, fingerprint, "
                        "first_version, last_version) VALUES (%s, %s, %s, %s, %s, %s)",
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
                    last = cursor.execute(_CHAIN_HEAD).fetchone()
                    seq, head = (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)
                    chained = []
                    for row, text in new_events:
                        seq += 1
                        digest = chain_hash(head, text)
                        chained.append((seq, *row, digest, head))
                        head = digest
                    cursor.executemany(_INSERT_EVENT, chained)
                if snapshot is not None:
                    cursor.execute(
                        "INSERT INTO snapshots (project, version, state) VALUES (%s, %s, %s) "
                        "ON CONFLICT (project) DO UPDATE "
                        "SET version = excluded.version, state = excluded.state",
                        snapshot,
                    )
                if timers.cancel:
                    cursor.executemany(
                        "DELETE FROM timers WHERE project = %s AND kind = %s AND branch = %s",
                        timers.cancel,
                    )
                if timer_rows:
                    # Setting a timer replaces one with the same key and ends any lease on it.
                    cursor.executemany(
                        "INSERT INTO timers (project, kind, branch, due_us, due_at) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project, kind, branch) "
                        "DO UPDATE SET due_us = excluded.due_us, due_at = excluded.due_at, "
                        "lease_until_us = NULL",
                        timer_rows,
                    )
                if notice_rows:
                    cursor.executemany(
                        "INSERT INTO outbox (notice_id, project, kind, payload, attempts) "
                        "VALUES (%s, %s, %s, %s, 0) ON CONFLICT (notice_id) DO UPDATE "
                        "SET project = excluded.project, kind = excluded.kind, "
                        "payload = excluded.payload, attempts = 0, last_error = NULL, "
                        "next_attempt_us = NULL, next_attempt_at = NULL",
                        notice_rows,
                    )
        except errors.UniqueViolation as error:
            constraint = error.diag.constraint_name
            if constraint == "commands_pkey" and command is not None:
                raise ConcurrencyConflict(f"command id {command.command_id!r} is taken") from error
            if constraint in ("projects_project_key", "events_project_version_key"):
                with self._lock:
                    current = self._version(project)
                raise _stale(project, current, expected_version) from error
            raise

    def command(self, command_id: str) -> CommandRecord | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT command_id, project, command, fingerprint, first_version, last_version "
                "FROM commands WHERE command_id = %s",
                (command_id,),
            ).fetchone()
        return CommandRecord(*row) if row is not None else None

    def claim_due(self, now: datetime, limit: int = 100, prefix: str = "") -> list[Timer]:
        if limit <= 0:
            return []
        now_us = to_epoch_us(now)
        with self._lock:
            # One statement is one transaction: the rows are locked (others skip them, never
            # wait), leased and returned together.
            rows = self._connection.execute(
                "WITH due AS ("
                " SELECT project, kind, branch FROM timers WHERE due_us <= %s"
                " AND (lease_until_us IS NULL OR lease_until_us <= %s)"
                " AND left(project, %s) = %s"
                " ORDER BY due_us, project, kind, branch LIMIT %s FOR UPDATE SKIP LOCKED)"
                " UPDATE timers t SET lease_until_us = %s FROM due"
                " WHERE t.project = due.project AND t.kind = due.kind AND t.branch = due.branch"
                " RETURNING t.project, t.kind, t.branch, t.due_us, t.due_at",
                (now_us, now_us, len(prefix), prefix, limit, to_epoch_us(now + self._lease)),
            ).fetchall()
        rows.sort(key=lambda row: (row[3], row[0], row[1], row[2]))
        return [
            Timer(project, kind, parse_datetime(due_at), branch)
            for project, kind, branch, _, due_at in rows
        ]

    def next_due(self) -> datetime | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT due_at FROM timers ORDER BY due_us LIMIT 1"
            ).fetchone()
        return parse_datetime(row[0]) if row is not None else None

    def timers(self, project: str) -> list[Timer]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT kind, branch, due_at FROM timers WHERE project = %s "
                "ORDER BY due_us, kind, branch",
                (project,),
            ).fetchall()
        return [
            Timer(project, kind, parse_datetime(due_at), branch) for kind, branch, due_at in rows
        ]

    def project_ids(self) -> list[str]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT project FROM projects ORDER BY created_seq"
            ).fetchall()
        return [row[0] for row in rows]

    def pending_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT payload, attempts, last_error, next_attempt_at FROM outbox "
                "WHERE next_attempt_us IS NULL OR next_attempt_us <= %s "
                "ORDER BY created_seq LIMIT %s",
                (to_epoch_us(now), max(limit, 0)),
            ).fetchall()
        return [outbox_entry(*row) for row in rows]

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        if not notice_ids:
            return
        with self._lock:
            self._connection.execute(
                "DELETE FROM outbox WHERE notice_id = ANY(%s)", (list(notice_ids),)
            )

    def mark_failed(self, notice_id: str, error: str, next_attempt: datetime) -> None:
        with self._lock:
            self._connection.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = %s, "
                "next_attempt_us = %s, next_attempt_at = %s WHERE notice_id = %s",
                (error, to_epoch_us(next_attempt), format_datetime(next_attempt), notice_id),
            )

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the audit chain ----------------------------------------------------------------------

    def chain_head(self) -> ChainHead:
        """The newest event's place in the audit chain and its hash."""
        with self._lock:
            last = self._connection.execute(_CHAIN_HEAD).fetchone()
        return ChainHead(int(last[0]), str(last[1])) if last is not None else ChainHead(0, GENESIS)

    def project_versions(self) -> dict[str, int]:
        """Each project's version as its last commit recorded it."""
        with self._lock:
            rows = self._connection.execute("SELECT project, version FROM projects").fetchall()
        return {project: int(version) for project, version in rows}

    def iter_chain(self) -> Iterator[ChainLink]:
        """Every event in chain order with its hashes, read a page at a time (no lock or
        transaction held between pages, so commits go on while an audit runs)."""
        after = -(2**63)  # from the very first row, even one given a seq below 1 by hand
        while True:
            with self._lock:
                rows = self._connection.execute(
                    f"SELECT seq, hash, prev_hash, {_EVENT_COLUMNS} FROM events "
                    "WHERE seq > %s ORDER BY seq LIMIT %s",
                    (after, _CHAIN_PAGE),
                ).fetchall()
            if not rows:
                return
            for seq, digest, prev_hash, *event_row in rows:
                yield ChainLink(int(seq), event_from_row(event_row), digest, prev_hash)
            after = rows[-1][0]


def _chain_lock_key(schema: str) -> int:
    """The advisory lock that orders appends to one schema's chain. Advisory locks are shared
    by the whole database, so each schema gets its own key and stores in other schemas never
    wait for this one."""
    digest = hashlib.sha256(f"approvalflow.chain:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _stale(project: str, current: int | None, expected: int) -> ConcurrencyConflict:
    if expected == 0:
        return ConcurrencyConflict(f"{project} exists already (at version {current or 0})")
    return ConcurrencyConflict(f"{project} is at version {current or 0}, not {expected}")
