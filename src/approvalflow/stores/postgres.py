"""The PostgreSQL store, for many processes and machines working on the same projects.

It uses psycopg 3 directly (an optional dependency: ``pip install 'approvalflow[postgres]'``),
for the reason ``approvalflow.stores.sqlite`` gives: each command is one short transaction of
a few fixed statements. The schema is the one in ``approvalflow.stores.schema``.

What a caller may rely on (the same as the SQLite store, plus):

- ``commit`` is one statement, its own transaction, in one round trip: data-modifying CTEs
  (``_one_statement``), the project's compare-and-set first (``UPDATE ... WHERE version =
  expected`` and, when events are added, the project's newest event's hash is the one they
  chain from; a second writer waits for the first's row and then finds the version moved),
  then every other table's rows, each part's rows as one JSON array. The events' hashes are
  computed in the client from the head kept beside the cached state (read first, in a round
  trip of its own, when it is not cached). A stale ``expected_version``, a changed head or a
  taken command id raises ``ConcurrencyConflict`` and writes nothing; the guards are the
  database's: the compare-and-set, the events' unique key ``(project, version)`` and the
  command id's primary key, whose violations are translated. Nothing is read and trusted.
- Any number of processes may use one database at once, each with its own ``PostgresStore``.
  Commits to one project are serialised by its row, and by nothing else: each project's events
  form their own audit chain (``approvalflow.stores.audit``), so commits to different projects
  share the server's group commit instead of queueing.
- ``claim_due`` and ``claim_notices`` pick timers and outbox notices with ``SELECT ... FOR
  UPDATE SKIP LOCKED`` and set their lease in the same transaction, so two workers never claim
  one timer or notice at once and never wait for each other.
- One ``PostgresStore`` holds one connection; threads may share it (calls are serialised).
  Never share one across ``fork``.
- The ``load`` and the commit, the two statements every command sends, are prepared once per
  connection and sent through psycopg's libpq wrapper (``approvalflow.stores.libpq``); every
  other statement through psycopg's connection. Their errors are psycopg's all the same.
- ``load`` is one statement when the store object committed or loaded the project last and no
  one has committed to it since: it keeps those states (``cache_size`` projects, LRU;
  ``approvalflow.stores.cache``), checked against the project's version in that statement.
  ``load_for_command`` (a command's first attempt) sends nothing for a kept state: the
  commit's guard is the check (D306), so such a command is one round trip.
- Each commit also writes the projections the reports query (``milestones``,
  ``project_summaries``, ``intervals``; defined by ``approvalflow.readmodels``, kept by
  ``approvalflow.stores.projections``), only the rows
  that changed, so ``milestone_points`` and ``metric_inputs`` load no project.

- Every wait is bounded (defaults below, each settable in the URL; seconds): a lock held by
  another connection (``lock_timeout``, 30; a writer paused inside its commit holds the
  project's row), a statement (``statement_timeout``, 60), a transaction
  left idle by a paused or dead client, which the server then ends, releasing its locks
  (``idle_in_transaction_session_timeout``, 30), connecting (libpq's ``connect_timeout``, 10)
  and a dead peer (TCP ``keepalives_idle`` 30, ``keepalives_interval`` 10, ``keepalives_count``
  3, ``tcp_user_timeout`` 60000 ms). A wait that runs out raises ``StoreBusy`` saying what
  waited and for how long; a broken connection ``StoreUnavailable``. Nothing is written then.
- Opening never creates unless asked: ``create=True`` (the constructor's default) makes the
  schema and tables; ``create=False`` (``open_store``'s default) raises ``StoreNotFound`` when
  they are missing. An older schema is migrated only with ``migrate=True``.

Isolated databases for tests: ``PostgresStore.from_url(url, schema="t_<random>")`` (or
``?schema=t_<random>`` in the URL) creates that PostgreSQL schema if needed and keeps every
table in it (through ``search_path``); ``drop()`` removes the schema and everything in it and
closes the store. Several schemas can live in one database side by side.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

try:
    import psycopg
    from psycopg import errors, sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "PostgresStore needs psycopg 3, an optional dependency: "
        "pip install 'approvalflow[postgres]'"
    ) from missing

from approvalflow.errors import ApprovalflowError, ConcurrencyConflict
from approvalflow.stores.cache import DEFAULT_CACHE_SIZE
from approvalflow.stores.errors import (
    StoreBusy,
    StoreError,
    StoreUnavailable,
    UnstorableValue,
)
from approvalflow.stores.libpq import HotStatements
from approvalflow.stores.projections import ProjectionWrites, ReadModel
from approvalflow.stores.schema import (
    COUNTY_ROLE,
    COUNTY_SETTING,
    archive_partition,
    archive_partition_statements,
    compacts,
    county_role_statements,
    rebuilds_projections,
    rechains,
)
from approvalflow.stores.sql import (
    DEFAULT_LEASE,
    DEFAULT_SNAPSHOT_EVERY,
    CommitPlan,
    SQLStatements,
    SQLStore,
    _GuardFailed,
    hash_bytes,
    hash_text,
    lease_option,
    schema_steps,
    stale,
)

__all__ = ["DEFAULT_CONNECTION", "DEFAULT_TIMEOUTS", "PostgresStore"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Taken while a schema is created or migrated, so processes starting together do it once.
_SCHEMA_LOCK = 0x617070726F76616C

_SQL = SQLStatements("postgresql")
# Whether this user may work as the county role (which owns nothing, so row-level security
# holds it): a county's view does, whoever connected.
_MAY_TAKE_ROLE = (
    "SELECT rolname FROM pg_roles WHERE rolname = %s AND pg_has_role(current_user, oid, 'MEMBER')"
)

Connection = psycopg.Connection[tuple[Any, ...]]

DEFAULT_TIMEOUTS: dict[str, float] = {
    "lock_timeout": 30.0,
    "statement_timeout": 60.0,
    "idle_in_transaction_session_timeout": 30.0,
}
"""The server-side bounds on a session's waits, in seconds (URL options of the same names)."""

DEFAULT_CONNECTION: dict[str, str] = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}
"""libpq's bounds on connecting and on a dead peer, used where the URL sets none."""


class PostgresStore(SQLStore):
    """Events, snapshots, timers, command ids and the outbox in a PostgreSQL database.

    :param conninfo: a libpq connection string or ``postgresql://`` URL.
    :param schema: keep the tables in this PostgreSQL schema instead of the connection's
        default ``search_path``; lower-case letters, digits and ``_``.
    :param create: make the schema and its tables if missing (else ``StoreNotFound``).
    :param migrate: bring an older schema to this version (else ``SchemaVersionError``).
    :param lease: how long a timer returned by ``claim_due``, or a notice returned by
        ``claim_notices``, is hidden from other claimers.
    :param snapshot_every: write a snapshot each time the version crosses a multiple of this.
    :param connect_timeout: seconds to wait for the connection (unless ``conninfo`` says).
    :param timeouts: ``DEFAULT_TIMEOUTS`` to change, in seconds (0: no bound).
    :param cache_size: how many projects' last states to keep in memory (0: none; default
        256, see ``approvalflow.stores.cache``).
    :param read_model: the report projections to keep (default ``approvalflow.readmodels``').
    :raises SchemaVersionError: the database was written by a newer approvalflow, or is older
        and ``migrate`` is false.
    :raises StoreNotFound: the schema or its tables are missing and ``create`` is false.
    :raises StoreUnavailable: the server cannot be reached.
    """

    _sql = _SQL
    chain_page = 1000
    _connection: Connection
    _county_role: str | None = None
    """``COUNTY_ROLE`` if this user may work as it (a county's view then does), else ``None``."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        create: bool = True,
        migrate: bool = True,
        lease: timedelta = DEFAULT_LEASE,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        connect_timeout: int = 10,
        timeouts: Mapping[str, float] | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        read_model: ReadModel | None = None,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(
                f"schema {schema!r} must be lower-case letters, digits and _ (at most 63)"
            )
        self._timeouts = dict(DEFAULT_TIMEOUTS)
        for name, seconds in (timeouts or {}).items():
            if name not in DEFAULT_TIMEOUTS:
                raise ValueError(f"unknown timeout {name!r} (known: {', '.join(DEFAULT_TIMEOUTS)})")
            if not 0 <= seconds < 2**31 / 1000:
                raise ValueError(f"{name} must be a number of seconds >= 0, not {seconds}")
            self._timeouts[name] = seconds
        self._setup(
            lease=lease,
            snapshot_every=snapshot_every,
            cache_size=cache_size,
            read_model=read_model,
        )
        self.schema = schema
        defaults = {**DEFAULT_CONNECTION, "connect_timeout": str(connect_timeout)}
        try:
            given = conninfo_to_dict(conninfo)
        except psycopg.Error as error:
            raise ValueError(f"not a PostgreSQL connection string: {error}") from None
        self._conninfo = make_conninfo(
            conninfo, **{key: value for key, value in defaults.items() if key not in given}
        )
        self._where = _describe(given, schema)
        try:
            self._connection = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as error:
            raise StoreUnavailable(f"cannot connect to {self._where}: {error}") from error
        # The hot statements (``_fetch_one``'s load and the commit), prepared on this
        # connection and sent through libpq: through a cursor each cost the client more
        # than the statement's own work. Every view shares them, as it shares the
        # connection, under the same lock.
        self._hot = HotStatements(self._connection)
        try:
            with self._access:
                self._connection.execute(
                    "SELECT set_config('lock_timeout', %s, false), "
                    "set_config('statement_timeout', %s, false), "
                    "set_config('idle_in_transaction_session_timeout', %s, false)",
                    [
                        f"{round(self._timeouts[name] * 1000)}ms"
                        for name in (
                            "lock_timeout",
                            "statement_timeout",
                            "idle_in_transaction_session_timeout",
                        )
                    ],
                )
                if schema is not None:
                    self._connection.execute(
                        "SELECT set_config('search_path', %s, false)", (schema,)
                    )
            self._ensure_schema(create=create, migrate=migrate)
            with self._access:
                row = self._connection.execute(_MAY_TAKE_ROLE, (COUNTY_ROLE,)).fetchone()
            self._county_role = None if row is None else str(row[0])
        except BaseException:
            self._connection.close()
            raise

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        schema: str | None = None,
        create: bool = True,
        migrate: bool = True,
        lease: timedelta | None = None,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        cache_size: int | None = None,
        read_model: ReadModel | None = None,
    ) -> PostgresStore:
        """Open ``postgresql://user@host:port/database`` (also ``postgres://`` and
        ``postgresql+psycopg://``). A ``schema`` query parameter does what ``schema=`` does,
        a ``cache_size`` one what ``cache_size=`` does, a ``lease`` one (seconds) what
        ``lease=`` does, ``lock_timeout``, ``statement_timeout`` and
        ``idle_in_transaction_session_timeout`` (seconds) what ``timeouts=`` does; the others
        go to libpq (``connect_timeout``, ``keepalives_idle``...)."""
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
        timeouts = {key: _seconds(key, value) for key, value in query if key in DEFAULT_TIMEOUTS}
        ours = ("schema", "cache_size", "lease", *DEFAULT_TIMEOUTS)
        if any(key in ours for key, _ in query):
            # quote, not urlencode's default quote_plus: libpq reads "+" as a plus, not a space.
            libpq = [(key, value) for key, value in query if key not in ours]
            rest = urlencode(libpq, quote_via=quote)
            url = urlunsplit(parts._replace(query=rest))
        return cls(
            url,
            schema=schema,
            create=create,
            migrate=migrate,
            lease=DEFAULT_LEASE if lease is None else lease,
            snapshot_every=snapshot_every,
            timeouts=timeouts,
            cache_size=DEFAULT_CACHE_SIZE if cache_size is None else cache_size,
            read_model=read_model,
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _found_version(self) -> int | None:
        connection = self._connection
        exists = connection.execute("SELECT to_regclass('meta')").fetchone()
        if exists is None or exists[0] is None:
            return None
        row = connection.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
        return int(row[0]) if row is not None else None

    def _ensure_schema(self, *, create: bool, migrate: bool) -> bool:
        """Create or migrate the schema if it must be; whether anything was done."""
        where = self._where
        # Look first without a lock or a write: an up-to-date store opens as a plain read,
        # and a missing one is refused without creating anything (not even the schema).
        with self._access:
            found = self._found_version()
        if not schema_steps(found, "postgresql", create=create, migrate=migrate, where=where):
            return False
        with self._access, self._connection.transaction():
            connection = self._connection
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if self.schema is not None:
                connection.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            found = self._found_version()
            statements = schema_steps(
                found, "postgresql", create=create, migrate=migrate, where=where
            )
            for statement in statements:
                connection.execute(statement)
            # Before the rebuild, which writes each county's rows through its view (as the
            # county role).
            for statement in county_role_statements():
                connection.execute(statement)
            if rechains(found):
                with connection.cursor() as cursor:
                    self._rechain(cursor)
            if compacts(found):
                with connection.cursor() as cursor:
                    self._compact(cursor)
            if rebuilds_projections(found):
                self._rebuild_projections()
        return True

    def _use_county(self) -> None:
        # Session settings, changed only when another view uses the connection: a view that
        # keeps it costs no round trip. A county's view works as the county role, under its
        # county; the unscoped store (the default county's, and the one that migrates and
        # seals) as the user that connected, under the default county.
        county = self._sql.county
        role = self._county_role if self._county is not None else None
        wanted = (county, role)
        session = self._session
        if session[0] != wanted and not self._connection.closed:
            self._connection.execute(
                "SELECT set_config(%s, %s, false), set_config('role', %s, false)",
                (COUNTY_SETTING, county, role or "none"),
            )
            session[0] = wanted

    def _fetch_one(self, statement: str, params: Sequence[Any]) -> Any:
        text = _ENCODED.get(statement)
        if text is None:
            text = _ENCODED[statement] = statement.encode()
        return self._hot.row(text, params)

    def _rebuild_projections(self) -> None:
        """Fill the projections from every project's state (inside the caller's transaction)."""
        with self._connection.cursor() as cursor:
            self._fill_projections(cursor)

    def rebuild_projections(self) -> None:
        """Rebuild the report tables from every project's state, in one transaction.

        Only needed after rows were written behind the store's back (a bulk import); commits
        and the schema migration keep them up to date.
        """
        with self._access, self._connection.transaction():
            self._rebuild_projections()

    def drop(self) -> None:
        """Drop this store's schema with every table in it, and close the store.

        Only for a store opened with ``schema=``: it would otherwise drop tables shared with
        everyone else, so it refuses.
        """
        if self.schema is None:
            raise ValueError("drop() removes a store's own schema; this one was opened without")
        statement = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema))
        with self._access:
            if self._connection.closed:
                # Closed already (a test did): drop through a connection of its own.
                with psycopg.connect(self._conninfo, autocommit=True) as connection:
                    connection.execute(statement)
            else:
                self._connection.execute("RESET ROLE")  # the county role owns nothing
                self._connection.execute(statement)
                self._connection.close()

    # -- the commit's transaction ---------------------------------------------------------------

    def _commit_transaction(self, plan: CommitPlan, writes: ProjectionWrites) -> str | None:
        project = plan.project
        # The view's county and role are session settings, set before the statement when
        # another view used the connection last (D203): the statement runs under them.
        self._use_county()
        connection = self._connection
        chains = bool(plan.events) and plan.expected_version > 0
        head = None
        if chains:
            cached = self._cache.get(project)
            if (
                cached is not None
                and cached.head is not None
                and cached.state.version == plan.expected_version
            ):
                head = cached.head
            else:
                # Not cached (evicted, or loaded while another writer committed): read it, in
                # a round trip of its own. The guard below checks it in the commit's own
                # transaction, so a head that moved in between is refused, not chained from.
                row = connection.execute(
                    self._sql.project_head, (project, plan.expected_version)
                ).fetchone()
                head = hash_text(row[0]) if row is not None else None
        parts: list[tuple[str, Sequence[Any]]] = []

        def collect(statement: str, rows: Sequence[Any], key: str | None) -> None:
            # A taken key raises the server's UniqueViolation, naming its constraint.
            parts.append((statement, rows))

        new_head = self._commit_statements(collect, head, plan, writes)
        sql = self._sql
        if plan.expected_version == 0:
            guard: tuple[str, ...] = (sql.insert_project + _GUARD_RETURNS,)
            params: list[Any] = [project, plan.new_version]
        elif chains:
            # The same compare-and-set, also refusing unless the project's newest event is the
            # one the new events chain from (the client's head: cached, or read just before).
            guard = (
                sql.update_project + " AND (SELECT hash FROM events WHERE "
                f"county = '{sql.county}' AND project = %s AND version = %s) "
                "IS NOT DISTINCT FROM %s" + _GUARD_RETURNS,
            )
            params = [plan.new_version, project, plan.expected_version]
            params += [project, plan.expected_version, None if head is None else hash_bytes(head)]
        else:
            guard = (sql.update_project + _GUARD_RETURNS,)
            params = [plan.new_version, project, plan.expected_version]
        statements = tuple(statement for statement, _ in parts)
        params += [_SET_BASED.rows_json(statement, rows, project) for statement, rows in parts]
        shape = guard + statements
        text = _SHAPES.get(shape)
        if text is None:
            text = _SHAPES[shape] = _one_statement(guard[0], statements).encode()
        # Autocommit: the one statement is its own transaction, sent and answered in one round
        # trip; any error (a taken key, a value refused) leaves nothing of it written. Each
        # shape (which parts a commit has) is prepared at its first use on the connection
        # (``HotStatements``): planning it once costs the server more than running it once.
        # One statement of every part, the absent ones empty, would be planned once but cost
        # more to start each time (measured: ~25% more server CPU per command).
        row = self._hot.row(text, params)
        if row is None or row[0] != 1:
            raise _GuardFailed
        return new_head if plan.events else self._head_kept(project, plan)

    def _head_kept(self, project: str, plan: CommitPlan) -> str | None:
        """The head a commit without events leaves: the one cached at its version."""
        cached = self._cache.get(project)
        if cached is not None and cached.state.version == plan.expected_version:
            return cached.head
        return None

    def _archive_transaction(self) -> Any:
        return self._transaction_cursor()

    @contextlib.contextmanager
    def _transaction_cursor(self) -> Iterator[Any]:
        with self._access, self._connection.transaction(), self._connection.cursor() as cursor:
            yield cursor

    def _make_archive_partition(self, name: str) -> None:
        # The tables' owner makes it (the county role owns nothing): the connecting user, for
        # this transaction only; the view's role is taken up again by its next statement.
        partition = archive_partition(name)
        with self._access:
            connection = self._connection
            if self._table_exists(partition):
                return
            with connection.transaction():
                connection.execute("SELECT set_config('role', 'none', true)")
                self._session[0] = None
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if not self._table_exists(partition):
                    for statement in archive_partition_statements(name):
                        connection.execute(statement)

    def _table_exists(self, table: str) -> bool:
        row = self._connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return row is not None and row[0] is not None

    def _stale_version(
        self, project: str, current: int | None, expected_version: int
    ) -> ApprovalflowError:
        if current is not None and current == expected_version > 0:
            # The version held, so the head did not: the project's newest event is not the
            # one this store object read (rows written behind the store's back).
            return ConcurrencyConflict(
                f"{project}'s event at version {current} is not the one this store read "
                "(its hash differs): load the project again"
            )
        return stale(project, current, expected_version)

    def _end_failed_commit(self) -> None:
        """End a transaction a failed commit left open (or aborted), if it did."""
        connection = self._connection
        if not connection.closed and connection.info.transaction_status in (
            psycopg.pq.TransactionStatus.INTRANS,
            psycopg.pq.TransactionStatus.INERROR,
        ):
            # If the connection broke, the server rolls back by itself.
            with contextlib.suppress(psycopg.Error):
                connection.execute("ROLLBACK")

    def _violated_constraint(self, error: BaseException) -> str | None:
        if isinstance(error, errors.UniqueViolation):
            return error.diag.constraint_name
        return super()._violated_constraint(error)

    def _driver_error(self, error: BaseException) -> ApprovalflowError | None:
        if not isinstance(error, psycopg.Error):
            return None
        where = self._where
        if isinstance(error, errors.LockNotAvailable):
            return StoreBusy(
                f"waited lock_timeout ({self._timeouts['lock_timeout']:g} s) for a lock that "
                f"another connection to {where} still holds (a writer inside its commit); "
                "nothing was written"
            )
        if isinstance(error, errors.QueryCanceled):
            return StoreBusy(
                f"a statement on {where} ran past statement_timeout "
                f"({self._timeouts['statement_timeout']:g} s) and was cancelled; nothing was "
                "written"
            )
        if isinstance(error, errors.IdleInTransactionSessionTimeout):
            return StoreUnavailable(
                f"{where} ended this connection's transaction after "
                f"idle_in_transaction_session_timeout "
                f"({self._timeouts['idle_in_transaction_session_timeout']:g} s); open the "
                "store again"
            )
        if isinstance(
            error,
            psycopg.DataError
            | errors.ProgramLimitExceeded
            | errors.UndefinedFunction
            | errors.DatatypeMismatch,
        ):
            return UnstorableValue(f"a value {where} cannot keep: {error}")
        if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
            return StoreUnavailable(f"the connection to {where} failed: {error}")
        return StoreError(f"{where} failed: {error}")

    def _write_one(self, statement: str, params: Sequence[Any] | Mapping[str, Any]) -> list[Any]:
        with self._access:
            # Autocommit: one statement is one transaction.
            cursor = self._connection.execute(statement, params)
            return cursor.fetchall() if cursor.description is not None else []

    def _write_rows(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._access, self._connection.transaction(), self._connection.cursor() as cursor:
            cursor.executemany(statement, rows)

    def mark_delivered(self, notice_ids: Sequence[str]) -> None:
        if not notice_ids:
            return
        with self._access:
            self._connection.execute(self._sql.mark_delivered, (list(notice_ids),))


def _seconds(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {text!r}") from None


def _describe(params: Mapping[str, Any], schema: str | None) -> str:
    """Where a store is, for messages: host, port, database and schema, never a password."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    database = params.get("dbname") or params.get("user") or ""
    place = f"PostgreSQL at {host}:{port}/{database}"
    return f"{place} (schema {schema})" if schema is not None else place


# A quoted literal without a quote inside (a checked county id, ``base.checked_county``).
_LITERAL = re.compile(r"'[a-z0-9_]*'")


class _SetBased:
    """Each of the commit's row-at-a-time statements (``SQLStatements``, ``ProjectionSQL``)
    rewritten once to take all its rows as one JSON array of objects, read back into the
    table's row type by ``json_populate_recordset``: the columns are the statement's own, so a
    column added to a statement (and its rows) needs no edit here."""

    _insert = re.compile(r"INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\)(.*)", re.DOTALL)
    _delete = re.compile(r"DELETE FROM (\w+) WHERE (.*)", re.DOTALL)
    _conflict = re.compile(r"ON CONFLICT \(([^)]*)\) DO UPDATE")
    _table = re.compile(r"(?:INSERT INTO|DELETE FROM) (\w+)")

    def __init__(self) -> None:
        # statement -> (set-based template with {gate}, the parameters' column names, the
        # positions of an upsert's conflict key among them: its rows are made unique by it)
        self._forms: dict[str, tuple[str, tuple[str, ...], tuple[int, ...] | None]] = {}

    def table(self, statement: str) -> str:
        """The table ``statement`` writes."""
        found = self._table.match(statement)
        if found is None:
            raise AssertionError(f"cannot rewrite {statement!r}")
        return found.group(1)

    def form(self, statement: str) -> tuple[str, tuple[str, ...], tuple[int, ...] | None]:
        found = self._forms.get(statement)
        if found is None:
            found = self._forms[statement] = self._rewrite(statement)
        return found

    def _rewrite(self, statement: str) -> tuple[str, tuple[str, ...], tuple[int, ...] | None]:
        source = "json_populate_recordset(NULL::{table}, %s::json) AS r"
        insert = self._insert.fullmatch(statement)
        if insert is not None:
            table, columns_text, values_text, rest = insert.groups()
            columns = [c.strip() for c in columns_text.split(",")]
            values = [v.strip() for v in values_text.split(",")]
            if len(columns) != len(values):
                raise AssertionError(f"cannot rewrite {statement!r}")
            names = tuple(c for c, v in zip(columns, values, strict=True) if v == "%s")
            selected = ", ".join(
                f"r.{c}" if v == "%s" else v for c, v in zip(columns, values, strict=True)
            )
            key = None
            conflict = self._conflict.search(rest)
            if conflict is not None:
                # A key column that is a literal (the view's county) is the same in every row.
                key = tuple(
                    names.index(c.strip())
                    for c in conflict.group(1).split(",")
                    if c.strip() in names
                )
            template = (
                f"INSERT INTO {table} ({columns_text}) SELECT {selected} "
                f"FROM {source.format(table=table)} WHERE {{gate}}{rest} RETURNING 1"
            )
            return template, names, key
        delete = self._delete.fullmatch(statement)
        if delete is not None:
            table, where = delete.groups()
            keys: list[str] = []
            fixed: list[str] = []
            for condition in where.split(" AND "):
                column, equals, value = condition.strip().partition(" = ")
                if not equals:
                    raise AssertionError(f"cannot rewrite {statement!r}")
                if value == "%s":
                    keys.append(column)
                elif _LITERAL.fullmatch(value):
                    # A county view's own county, written into its statements as a literal.
                    fixed.append(f"d.{column} = {value}")
                else:
                    raise AssertionError(f"cannot rewrite {statement!r}")
            if "project" in keys:
                # Every row a commit deletes is its own project's (``rows_json`` checks): the
                # guard's project bounds the scan to that project's rows whatever plan the
                # server keeps. Without it, a plan made while the table was small (a generic
                # plan, cached for the connection) hash-joins the county's every row.
                fixed.append("d.project = (SELECT g.project FROM guard AS g)")
            matched = " AND ".join([*fixed, *(f"d.{c} = r.{c}" for c in keys)])
            template = (
                f"DELETE FROM {table} AS d USING {source.format(table=table)} "
                f"WHERE {matched} AND {{gate}} RETURNING 1"
            )
            return template, tuple(keys), None
        raise AssertionError(f"cannot rewrite {statement!r}")

    def rows_json(self, statement: str, rows: Sequence[Sequence[Any]], project: str) -> str:
        """``rows`` of ``statement`` as the JSON its set-based form takes, in a commit of
        ``project``."""
        _, names, key = self.form(statement)
        objects: Any = [dict(zip(names, row, strict=True)) for row in rows]
        if "project" in names and statement.startswith("DELETE"):
            strays = {o["project"] for o in objects} - {project}
            if strays:
                # The deletes are bounded to the guard's project: another's rows would stay.
                raise AssertionError(f"a commit of {project} deletes rows of {sorted(strays)}")
        if key is not None and len(rows) > 1:
            # One statement cannot upsert a row twice: the last of a key wins, as it did
            # when the rows were upserted one after another.
            last = {
                tuple(row[i] for i in key): value for row, value in zip(rows, objects, strict=True)
            }
            objects = list(last.values())
        try:
            return _json_text(objects)
        except (TypeError, ValueError) as error:
            raise UnstorableValue(f"a value the commit cannot send: {error}") from error


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        # bytea's text form, which json_populate_recordset reads into a bytea column.
        return "\\x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON data")


_json_text = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_json_default
).encode
_SET_BASED = _SetBased()
# The guard's row names the project: the deletes bound their scans with it (``_SetBased``).
_GUARD_RETURNS = " RETURNING project"
# The one statement of each shape of commit (its guard and which statements it has).
_SHAPES: dict[tuple[str, ...], bytes] = {}
# The hot statements' text as sent (psycopg would encode a ``str`` at every call).
_ENCODED: dict[str, bytes] = {}


def _one_statement(guard: str, statements: Sequence[str]) -> str:
    """A commit as one statement of data-modifying CTEs: the guard, then each statement, run
    only if the guard held. All of a statement's parts share one snapshot, so a part that
    follows another on the same table (an insert after the delete of the rows it replaces)
    runs only once that one has run to its end (its row count is read first): that order is
    what makes the insert find the deleted rows gone. Parts on different tables need no
    order, and each gate costs the server plan nodes to start at every commit."""
    ctes = [f"guard AS ({guard})"]
    last_on: dict[str, str] = {}
    for number, statement in enumerate(statements):
        template, _, _ = _SET_BASED.form(statement)
        table = _SET_BASED.table(statement)
        gate = "EXISTS (SELECT FROM guard)"
        before = last_on.get(table)
        if before is not None:
            gate = f"(SELECT count(*) FROM {before}) >= 0 AND {gate}"
        name = f"s{number}"
        ctes.append(f"{name} AS ({template.replace('{gate}', gate)})")
        last_on[table] = name
    # Every data-modifying CTE runs to its end whether or not the query reads it.
    return f"WITH {', '.join(ctes)} SELECT (SELECT count(*) FROM guard)"
