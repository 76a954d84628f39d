"""The PostgreSQL store, for many processes and machines working on the same projects.

It uses psycopg 3 directly (an optional dependency: ``pip install 'approvalflow[postgres]'``),
for the reason ``approvalflow.stores.sqlite`` gives: each command is one short transaction of
a few fixed statements. The schema is the one in ``approvalflow.stores.schema``.

What a caller may rely on (the same as the SQLite store, plus):

- ``commit`` is one transaction, sent in two round trips (psycopg's pipeline mode): the
  project's compare-and-set, the chain lock and the chain head; then, once the events are
  hashed, everything else and ``COMMIT``. A stale ``expected_version`` or a taken command id
  raises ``ConcurrencyConflict`` and writes nothing. The guards are the database's: the
  project row's compare-and-set (``UPDATE ... WHERE version = expected``; a second writer waits
  for the first and then finds the version moved), the events' unique key ``(project,
  version)`` and the command id's primary key, whose violations are translated. Nothing is read
  and trusted.
- Any number of processes may use one database at once, each with its own ``PostgresStore``.
  Commits to one project are serialised by its row; commits that add events also take, until
  they end, an advisory lock of their schema's own that orders appends to the audit chain (the
  price of one store-wide chain; it is held from the guard to ``COMMIT``, one round trip and the
  commit's flush).
- ``claim_due`` and ``claim_notices`` pick timers and outbox notices with ``SELECT ... FOR
  UPDATE SKIP LOCKED`` and set their lease in the same transaction, so two workers never claim
  one timer or notice at once and never wait for each other.
- One ``PostgresStore`` holds one connection; threads may share it (calls are serialised).
  Never share one across ``fork``.
- ``load`` is one statement when the store object committed or loaded the project last and no
  one has committed to it since: it keeps those states (``cache_size`` projects, LRU;
  ``approvalflow.stores.cache``), checked against the project's version in that statement.
- Each commit also writes the projections the reports query (``milestones``,
  ``project_summaries``, ``intervals``; ``approvalflow.stores.projections``), only the rows
  that changed, so ``milestone_points`` and ``metric_inputs`` load no project.

Isolated databases for tests: ``PostgresStore.from_url(url, schema="t_<random>")`` (or
``?schema=t_<random>`` in the URL) creates that PostgreSQL schema if needed and keeps every
table in it (through ``search_path``); ``drop()`` removes the schema and everything in it and
closes the store. Several schemas can live in one database side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections.abc import Mapping, Sequence
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
from approvalflow.model import Event, Notice, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.stores.audit import GENESIS, chain_hash
from approvalflow.stores.base import CommandRecord, created_code
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

__all__ = ["PostgresStore"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Taken while a schema is created or migrated, so processes starting together do it once.
_SCHEMA_LOCK = 0x617070726F76616C

# The compare-and-set that guards a commit, and the chain lock taken only if it matched (a
# stale writer fails without queueing for the lock). A row back means the guard held.
_UPDATE = "UPDATE projects SET version = %s WHERE project = %s AND version = %s RETURNING 1"
_INSERT = "INSERT INTO projects (project, version) VALUES (%s, %s) RETURNING 1"
_SQL = SQLStatements("postgresql")
_REPORTS = _SQL.projections  # the projections the reports read

Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresStore(SQLStore):
    """Events, snapshots, timers, command ids and the outbox in a PostgreSQL database.

    :param conninfo: a libpq connection string or ``postgresql://`` URL.
    :param schema: keep the tables in this PostgreSQL schema (created if missing) instead of the
        connection's default ``search_path``; lower-case letters, digits and ``_``.
    :param lease: how long a timer returned by ``claim_due``, or a notice returned by
        ``claim_notices``, is hidden from other claimers.
    :param snapshot_every: write a snapshot each time the version crosses a multiple of this.
    :param cache_size: how many projects' last states to keep in memory (0: none; default
        256, see ``approvalflow.stores.cache``).
    :raises SchemaVersionError: the database was written by a newer approvalflow.
    """

    _sql = _SQL
    chain_page = 1000
    _connection: Connection

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        connect_timeout: int = 10,
        cache_size: int = DEFAULT_CACHE_SIZE,
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
        self._lease = checked_lease(lease)
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self._cache = StateCache(cache_size)
        self._claimer = claimer_id()
        self._connection = psycopg.connect(
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
        lease: timedelta | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        cache_size: int | None = None,
    ) -> PostgresStore:
        """Open ``postgresql://user@host:port/database`` (also ``postgres://`` and
        ``postgresql+psycopg://``). A ``schema`` query parameter does what ``schema=`` does,
        a ``cache_size`` one what ``cache_size=`` does, a ``lease`` one (seconds) what
        ``lease=`` does; the others go to libpq."""
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
        url_cache = [value for key, value in query if key == "cache_size"]
        if url_cache and cache_size is None:
            cache_size = int(url_cache[-1])
        url_lease = [value for key, value in query if key == "lease"]
        if url_lease and lease is None:
            lease = lease_option(url_lease[-1])
        ours = ("schema", "cache_size", "lease")
        if any(key in ours for key, _ in query):
            # quote, not urlencode's default quote_plus: libpq reads "+" as a plus, not a space.
            libpq = [(key, value) for key, value in query if key not in ours]
            rest = urlencode(libpq, quote_via=quote)
            url = urlunsplit(parts._replace(query=rest))
        return cls(
            url,
            schema=schema,
            lease=DEFAULT_LEASE if lease is None else lease,
            snapshot_every=snapshot_every,
            cache_size=DEFAULT_CACHE_SIZE if cache_size is None else cache_size,
        )

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
            if rebuilds_projections(found):
                self._rebuild_projections()

    def _rebuild_projections(self) -> None:
        """Fill the projections from every project's state (inside the caller's transaction)."""
        with self._connection.cursor() as cursor:
            self._fill_projections(cursor)

    def rebuild_projections(self) -> None:
        """Rebuild the report tables from every project's state, in one transaction.

        Only needed after rows were written behind the store's back (a bulk import); commits
        and the schema migration keep them up to date.
        """
        with self._lock, self._connection.transaction():
            self._rebuild_projections()

    def _rollback(self) -> None:
        """End a transaction a failed commit left open (or aborted), if it did."""
        connection = self._connection
        if not connection.closed and connection.info.transaction_status in (
            psycopg.pq.TransactionStatus.INTRANS,
            psycopg.pq.TransactionStatus.INERROR,
        ):
            # If the connection broke, the server rolls back by itself.
            with contextlib.suppress(psycopg.Error):
                connection.execute("ROLLBACK")

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
        # Everything that can fail on bad data is rendered before any lock is taken.
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
        if expected_version == 0:
            guard_sql, guard_params = _INSERT, [project, new_version]
        else:
            guard_sql, guard_params = _UPDATE, [new_version, project, expected_version]
        if new_events:
            # One appender at a time per chain, released at COMMIT. Taken after the project's
            # guard, and only if it held, so a stale writer fails without waiting for it; and
            # before the command id, so a writer waiting here holds no key that the lock's
            # holder could be waiting for (no deadlock).
            guard_sql = f"WITH guard AS ({guard_sql}) SELECT pg_advisory_xact_lock(%s) FROM guard"
            guard_params.append(self._chain_lock)
        try:
            with self._lock:
                writes = self._projection_writes(project, expected_version, projection, events)
                connection = self._connection
                # Pipeline mode: statements are sent without waiting for each result. The
                # first round trip ends at the guard's row (BEGIN, guard and lock, chain head);
                # the second carries the rest and COMMIT. BEGIN and COMMIT are statements of
                # the pipeline: ``connection.transaction()`` would add a sync after each.
                with connection.pipeline():
                    guard = connection.cursor()
                    guard.execute("BEGIN")
                    guard.execute(guard_sql, guard_params)
                    if new_events:
                        # A statement of its own, run once the lock is held, so it sees the
                        # head as the lock's previous holder committed it.
                        head_cursor = connection.cursor()
                        head_cursor.execute(_SQL.chain_head)
                    if guard.fetchone() is None:
                        raise _stale(project, self._version(project), expected_version)
                    cursor = connection.cursor()
                    if code is not None:
                        cursor.execute(
                            _SQL.insert_project_code,
                            (code, project),
                        )
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
                        last = head_cursor.fetchone()
                        seq, head = (
                            (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)
                        )
                        chained = []
                        for row, text in new_events:
                            seq += 1
                            digest = chain_hash(head, text)
                            chained.append((seq, *row, digest, head))
                            head = digest
                        cursor.executemany(_SQL.insert_event, chained)
                    if snapshot is not None:
                        cursor.execute(
                            "INSERT INTO snapshots (project, version, state) "
                            "VALUES (%s, %s, %s) ON CONFLICT (project) DO UPDATE "
                            "SET version = excluded.version, state = excluded.state",
                            snapshot,
                        )
                    if timers.cancel:
                        cursor.executemany(
                            "DELETE FROM timers WHERE project = %s AND kind = %s AND branch = %s",
                            timers.cancel,
                        )
                    if timer_rows:
                        # Setting a timer replaces one with the same key and ends any lease.
                        cursor.executemany(
                            "INSERT INTO timers (project, kind, branch, due_us, due_at) "
                            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project, kind, branch) "
                            "DO UPDATE SET due_us = excluded.due_us, due_at = excluded.due_at, "
                            "lease_until_us = NULL",
                            timer_rows,
                        )
                    if notice_rows:
                        cursor.executemany(_SQL.upsert_notice, notice_rows)
                    for statement, rows in _REPORTS.statements(writes, project):
                        cursor.executemany(statement, rows)
                    cursor.execute("COMMIT")
                self._cache.put(project, state, projection)
        except BaseException as error:
            with self._lock:
                self._cache.drop(project)
                self._rollback()
            if not isinstance(error, errors.UniqueViolation):
                raise
            constraint = error.diag.constraint_name
            if constraint == "commands_pkey" and command is not None:
                raise ConcurrencyConflict(f"command id {command.command_id!r} is taken") from error
            if constraint == "project_codes_pkey":
                raise ConcurrencyConflict(f"the project code of {project} is taken") from error
            if constraint in ("projects_project_key", "events_project_version_key"):
                with self._lock:
                    current = self._version(project)
                raise _stale(project, current, expected_version) from error
            raise

    def _write_one(self, statement: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        with self._lock:
            # Autocommit: one statement is one transaction.
            cursor = self._connection.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        if not notice_ids:
            return
        with self._lock:
            # The rows are locked in one order, oldest first, whatever plan the server picks:
            # two workers marking the same notices (one whose lease ran out, and the one that
            # took them over) would otherwise each hold a row the other waits for.
            self._connection.execute(
                "DELETE FROM outbox WHERE created_seq IN (SELECT created_seq FROM outbox "
                "WHERE notice_id = ANY(%s) ORDER BY created_seq FOR UPDATE)",
                (list(notice_ids),),
            )


def _chain_lock_key(schema: str) -> int:
    """The advisory lock that orders appends to one schema's chain. Advisory locks are shared
    by the whole database, so each schema gets its own key and stores in other schemas never
    wait for this one."""
    digest = hashlib.sha256(f"approvalflow.chain:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
