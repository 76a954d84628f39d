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
- Several processes may open the same file: a writer waits up to ``busy_timeout`` seconds (30
  by default) for another's commit, then gets ``StoreBusy`` saying so and writes nothing;
  readers never wait. Each command's transaction is short, so waits are too.
- Opening never creates a file unless asked: ``create=True`` (the constructor's default, for a
  host that builds its store) makes a missing file and its schema; ``create=False`` (what
  ``open_store`` does unless told otherwise) raises ``StoreNotFound`` for a missing file or one
  without the schema. An older schema is migrated only with ``migrate=True``.
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
- Every event joins its project's audit chain (``approvalflow.stores.audit``).
- Each commit also writes the projections the reports query (``milestones``,
  ``project_summaries``, ``intervals``; defined by ``approvalflow.readmodels``, kept by
  ``approvalflow.stores.projections``), only the rows
  that changed, so ``milestone_points`` and ``metric_inputs`` load no project.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args
from urllib.parse import parse_qsl

from approvalflow.errors import ApprovalflowError
from approvalflow.model import Timer
from approvalflow.stores.base import OutboxEntry
from approvalflow.stores.cache import DEFAULT_CACHE_SIZE
from approvalflow.stores.errors import StoreBusy, StoreError, StoreNotFound, UnstorableValue
from approvalflow.stores.projections import ProjectionWrites, ReadModel
from approvalflow.stores.schema import compacts, rebuilds_projections, rechains
from approvalflow.stores.serialization import to_epoch_us
from approvalflow.stores.sql import (
    DEFAULT_LEASE,
    DEFAULT_SNAPSHOT_EVERY,
    CommitPlan,
    SQLStatements,
    SQLStore,
    UniqueKeyTaken,
    _GuardFailed,
    hash_text,
    lease_option,
    schema_steps,
)

__all__ = ["DEFAULT_BUSY_TIMEOUT", "SQLiteStore", "Synchronous"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

DEFAULT_BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another connection's write lock before ``StoreBusy``."""

_SQL = SQLStatements("sqlite")
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SQLiteStore(SQLStore):
    """Events, snapshots, timers, command ids and the outbox in one SQLite file.

    :param path: the database file, or ``":memory:"``.
    :param create: make the file and its schema if missing (else ``StoreNotFound``).
    :param migrate: bring an older schema to this version (else ``SchemaVersionError``).
    :param synchronous: SQLite's ``synchronous`` setting; see the module docstring.
    :param busy_timeout: seconds a writer waits for another process's commit before
        ``StoreBusy``.
    :param lease: how long a timer returned by ``claim_due``, or a notice returned by
        ``claim_notices``, is hidden from other claimers.
    :param snapshot_every: write a snapshot each time the version crosses a multiple of this.
    :param cache_size: how many projects' last states to keep in memory (0: none; default
        256, see ``approvalflow.stores.cache``).
    :param read_model: the report projections to keep (default ``approvalflow.readmodels``').
    :raises SchemaVersionError: the file was written by a newer approvalflow, or is older and
        ``migrate`` is false.
    :raises StoreNotFound: the file, or its schema, is missing and ``create`` is false.
    """

    _sql = _SQL
    chain_page = 500
    _connection: sqlite3.Connection

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        migrate: bool = True,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        lease: timedelta = DEFAULT_LEASE,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        read_model: ReadModel | None = None,
    ) -> None:
        if synchronous not in get_args(Synchronous):
            raise ValueError(
                f"synchronous must be one of {', '.join(get_args(Synchronous))}, "
                f"not {synchronous!r}"
            )
        if not busy_timeout >= 0:
            raise ValueError(f"busy_timeout must be a number of seconds >= 0, not {busy_timeout}")
        self._setup(
            lease=lease,
            snapshot_every=snapshot_every,
            cache_size=cache_size,
            read_model=read_model,
        )
        self.path = os.fspath(path)
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        in_memory = self.path in ("", ":memory:")
        # An in-memory database is new whoever opens it: there is nothing to find first.
        create = create or in_memory
        if not create and not os.path.exists(self.path):
            raise StoreNotFound(_missing(self.path))
        # isolation_level=None: the driver opens no transactions of its own; we say BEGIN.
        # timeout is SQLite's busy_timeout. Without ``create``, mode=rw never makes the file,
        # even if it went away since the check above.
        target, uri = (self.path, False) if create else (_rw_uri(self.path), True)
        try:
            self._connection = sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
        except sqlite3.Error as error:
            if not create:
                raise StoreNotFound(_missing(self.path)) from error
            raise StoreError(f"cannot open the SQLite file {self.path}: {error}") from error
        try:
            with self._access:
                self._connection.execute(f"PRAGMA synchronous = {synchronous}")
            # The schema first: setting WAL writes the file's header, which a file that is
            # not a store (and is not to be made one) must not get.
            self._ensure_schema(create=create, migrate=migrate)
            if not in_memory:
                with self._access:
                    self._connection.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        create: bool = True,
        migrate: bool = True,
        read_model: ReadModel | None = None,
    ) -> SQLiteStore:
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
            create=create,
            migrate=migrate,
            synchronous=cast(Synchronous, synchronous),
            busy_timeout=_number(options, "busy_timeout", DEFAULT_BUSY_TIMEOUT),
            snapshot_every=int(options.get("snapshot_every", DEFAULT_SNAPSHOT_EVERY)),
            cache_size=int(options.get("cache_size", DEFAULT_CACHE_SIZE)),
            lease=lease_option(options["lease"]) if "lease" in options else DEFAULT_LEASE,
            read_model=read_model,
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
        with self._access:
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

    def _found_version(self, connection: sqlite3.Connection) -> int | None:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if exists is None:
            return None
        row = connection.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
        return int(row[0]) if row is not None else None

    def _ensure_schema(self, *, create: bool, migrate: bool) -> None:
        where = f"the SQLite file {self.path}"
        # Reading the version takes no lock: an up-to-date store opens without waiting for
        # the writers (and without a write, so a read-only command changes nothing).
        with self._access:
            found = self._found_version(self._connection)
        if not schema_steps(found, "sqlite", create=create, migrate=migrate, where=where):
            return
        with self._write() as connection:
            found = self._found_version(connection)
            statements = schema_steps(found, "sqlite", create=create, migrate=migrate, where=where)
            for statement in statements:
                connection.execute(statement)
            if rechains(found):
                self._rechain(connection)
            if compacts(found):
                self._compact(connection)
            if rebuilds_projections(found):
                self._fill_projections(connection)

    def rebuild_projections(self) -> None:
        """Rebuild the report tables from every project's state, in one transaction.

        Only needed after rows were written behind the store's back (a bulk import); commits
        and the schema migration keep them up to date.
        """
        with self._write() as connection:
            self._fill_projections(connection)

    # -- the commit's transaction ---------------------------------------------------------------

    def _commit_transaction(self, plan: CommitPlan, writes: ProjectionWrites) -> str | None:
        connection = self._connection
        # Not ``self._write()``: this is the hot path, and a generator-based context manager
        # costs as much as one of the statements.
        connection.execute("BEGIN IMMEDIATE")
        if plan.expected_version == 0:
            guard = connection.execute(self._sql.insert_project, (plan.project, plan.new_version))
        else:
            guard = connection.execute(
                self._sql.update_project, (plan.new_version, plan.project, plan.expected_version)
            )
        if guard.rowcount != 1:
            raise _GuardFailed
        head = None
        if plan.events and plan.expected_version > 0:
            # The project's newest event, which its new events chain from.
            last = connection.execute(
                self._sql.project_head, (plan.project, plan.expected_version)
            ).fetchone()
            head = hash_text(last[0]) if last is not None else None
        new_head = self._commit_statements(self._run, head, plan, writes)
        connection.execute("COMMIT")
        return new_head

    def _run(self, statement: str, rows: Sequence[Any], key: str | None) -> None:
        connection = self._connection
        if len(rows) == 1:
            count = connection.execute(statement, rows[0]).rowcount
        else:
            count = connection.executemany(statement, rows).rowcount
        if key is not None and count != len(rows):
            # An insert with ON CONFLICT DO NOTHING that wrote nothing: its key is taken.
            raise UniqueKeyTaken(key)

    def _end_failed_commit(self) -> None:
        connection = self._connection
        try:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
        except sqlite3.Error:
            # A rollback that fails leaves nothing committed: SQLite rolls back by itself.
            pass

    def _archive_transaction(self) -> Any:
        return self._write()

    def _write_rows(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._write() as connection:
            connection.executemany(statement, rows)

    def _driver_error(self, error: BaseException) -> ApprovalflowError | None:
        if isinstance(error, sqlite3.OperationalError) and (
            getattr(error, "sqlite_errorcode", 0) & 0xFF in _BUSY
        ):
            return StoreBusy(
                f"waited {self._busy_timeout:g} s for another connection's write lock on the "
                f"SQLite file {self.path}, which it still holds (set busy_timeout in the store "
                "URL to wait longer); nothing was written"
            )
        if isinstance(error, OverflowError):
            return UnstorableValue(f"a number too large for the SQLite store: {error}")
        if isinstance(error, sqlite3.DataError | sqlite3.ProgrammingError | sqlite3.InterfaceError):
            return UnstorableValue(f"a value the SQLite store cannot keep: {error}")
        if isinstance(error, sqlite3.Error):
            return StoreError(f"the SQLite file {self.path} failed: {error}")
        return None

    def _write_one(self, statement: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        # Only the claims and their bookkeeping come this way: see ``_write``.
        with self._write(durable=False) as connection:
            return connection.execute(statement, params).fetchall()

    def claim_due(self, now: datetime, limit: int = 100, prefix: str = "") -> list[Timer]:
        # As for notices below: a worker polling with nothing due takes no write lock.
        now_us = to_epoch_us(now)
        with self._access:
            found = self._connection.execute(
                self._sql.timer_claimable, (now_us, now_us, len(prefix), prefix)
            ).fetchone()
        return super().claim_due(now, limit, prefix) if found is not None else []

    def claim_notices(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        # A read takes no lock in WAL: look first, so that workers polling an empty outbox do
        # not queue for the write lock with the commits.
        now_us = to_epoch_us(now)
        with self._access:
            found = self._connection.execute(
                self._sql.notice_claimable, (now_us, now_us)
            ).fetchone()
        return super().claim_notices(now, limit) if found is not None else []

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        if not notice_ids:
            return
        with self._write(durable=False) as connection:
            connection.executemany(
                self._sql.mark_delivered, [(notice_id,) for notice_id in notice_ids]
            )


def _missing(path: str) -> str:
    return (
        f"no approvalflow store at the SQLite file {path}: create it with "
        f"`approvalflow store init sqlite:///{path}` (or open it with create=True)"
    )


def _rw_uri(path: str) -> str:
    """A ``file:`` URI that opens ``path`` read-write and never creates it."""
    from urllib.parse import quote

    return f"file:{quote(os.path.abspath(path))}?mode=rw"


def _number(options: Mapping[str, str], name: str, default: float) -> float:
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {options[name]!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {options[name]!r}")
    return value
