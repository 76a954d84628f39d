"""The one schema of the SQL stores, rendered as DDL for SQLite and for PostgreSQL.

Tables (every moment is kept twice where it is queried: ``*_us``, UTC microseconds since the
epoch, to sort and compare, and ``*_at``, the exact text of ``serialization.format_datetime``,
so a datetime reads back with the tzinfo it was stored with):

- ``meta``: one row, ``schema_version``.
- ``events``: one row per event. ``UNIQUE (project, version)`` is the key that turns a stale
  write into a conflict. The primary key is ``seq``, a number the database gives each event as
  it is inserted (an identity column in PostgreSQL, the rowid in SQLite; schema version 8), in
  no hash; ``hash`` links the event to the project's previous one (one audit chain per project
  since schema version 8, see ``audit``; since version 11 the 32 bytes of the digest, with no
  ``prev_hash`` beside it: that is the previous version's ``hash``): in SQLite an
  ``INTEGER PRIMARY KEY`` is the rowid, so every insert appends at the end of the table's
  b-tree, which measured ~20% faster per commit than a ``(project, version)`` primary key
  (eventsourcing's SQLite application recorder is laid out the same way). ``by`` is spelt
  ``by_actor`` because ``BY`` is an SQL keyword. ``payload`` is JSON text (``TEXT``, not
  ``JSONB``, in PostgreSQL too: JSONB would rewrite numbers and key order, and the audit hash is
  over the exact data; cast ``payload::jsonb`` in a report query).
- ``snapshots``: a project's state as JSON compressed with zlib (schema version 11,
  ``serialization.pack_state``), the version it was taken at and its ``digest`` (schema
  version 8, ``audit.snapshot_digest``, over the JSON text).
- ``projects``: one row per project, its current ``version`` (the compare-and-set that guards
  every commit, and the audit's check that no project's newest events were removed) and
  ``created_seq`` (creation order; the serial key).
- ``commands``: a command id's first result (``CommandRecord``).
- ``timers``: ``PRIMARY KEY (project, kind, branch)``; ``due_us`` indexed; ``lease_until_us``.
- ``outbox``: undelivered notices (a delivered one is deleted), ``created_seq`` for oldest first;
  ``claimed_by`` and ``claimed_until_us``, the claim a worker holds on a notice while it delivers
  it (schema version 4).

The projections (schema version 2; written in the same transaction as the commit they follow,
and rebuilt from every project's state when a version-1 database is migrated; what they hold
and where it comes from is ``approvalflow.stores.projections``):

- ``milestones``: one row per project and milestone reached: its ``team``, ``points``,
  ``at_us`` and the leaderboard ``month``; ``milestones_by_month`` serves the board.
- ``project_summaries``: one row per project: ``team``, ``stage``, ``agreed_investment`` and
  ``funds`` (exact amounts of any size since schema version 5), the
  ``signed``/``started``/``producing`` flags and ``created_us``.
- ``intervals``: one row per stage left (``kind`` ``stage``) and per department decided
  (``kind`` ``department``): ``start_day`` and ``end_day`` as ``date.toordinal()`` of the local
  days; ``intervals_by_span`` lets the metrics count projects per distinct pair of days, and
  ``intervals_by_team`` (schema version 12) the same per team.

In SQLite these three are ``WITHOUT ROWID`` tables (one b-tree each, keyed by the project).

- ``task_rows`` (schema version 8): the task list's read model, each open item of a project once
  per party that may act (``projections.TaskRow``), keyed by (party, project, kind, department,
  item, command): the party first, so a task list reads one range of the key per party and a
  commit writes no index beside it (deleting a project's rows whole, when the store does not
  know its old rows, reads the table); ``state`` (schema version 12) is what the late items
  read. ``events_by_actor`` and ``events_by_principal`` find what an actor did (已办), in commit
  order since version 12, so the latest are read first.

- ``events_by_intake`` (schema version 13): the created events of projects taken in at
  another county's hall (异地受理), by the county and the accepting county of their ``intake``
  field, a partial expression index (``intake_index_ddl``), so the accepting county's list
  (``Province.intakes``) reads its projects without loading any other.

- ``project_codes`` (schema version 3): the national platform's project code of each project
  that has one, keyed by the code, so that a code names one project.
- ``plugins`` (schema version 5): the plugins the store's projects were written with
  (``Store.recorded_plugins``), in the order first recorded.
- ``audit_legacy`` and ``checkpoints`` (schema version 8): the head of the store-wide chain
  a store kept before per-project chains, as the migration found it, and the sealed
  checkpoints of every project's head (``stores.checkpoints``).
- ``rule_sets`` (schema version 3): each county rule set a project was created or migrated
  under, content-addressed: ``fingerprint`` is the SHA-256 of ``data`` (the settings as JSON,
  ``Settings.fingerprint``), so a row cannot be changed without the audit noticing; rows are
  only ever added.

Counties (schema version 9): every table of county data (``COUNTY_TABLES``) has a ``county``
column first and every natural key and index led by it, so two counties may hold the same ids
and a county's lookup is one range; ``counties`` lists the counties with a project. On
PostgreSQL each county table is behind a forced row-level policy, ``county_wall``, comparing the
column with the connection's ``approvalflow.county`` setting (``county_wall_statements``,
``county_role_statements``). ``V8_TABLES``/``V8_INDEXES`` are the shapes before it, which the
earlier migrations create.

The schema has a version (``SCHEMA_VERSION``) and a list of ``MIGRATIONS``. Opening an empty
database creates the current schema; an older one is migrated step by step in one
transaction; a newer one raises ``SchemaVersionError`` naming both versions, so old code never
writes to a schema it does not understand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal

import attrs

from approvalflow.errors import SchemaVersionError

__all__ = [
    "ARCHIVES_TABLE",
    "ARCHIVES_TABLE_POSTGRESQL",
    "ARCHIVE_ACTORS_TABLE",
    "ARCHIVE_NAME_PATTERN",
    "ARCHIVE_TABLES",
    "AUDIT_LEGACY_TABLE",
    "CHECKPOINTS_TABLE",
    "COUNTIES_TABLE",
    "COUNTY_COLUMN",
    "COUNTY_ROLE",
    "COUNTY_SETTING",
    "COUNTY_TABLES",
    "INDEXES",
    "INTAKE_INDEX",
    "MIGRATIONS",
    "MILESTONES_BY_MONTH_KIND_INDEX",
    "OUTBOX_CLAIM_COLUMNS",
    "PLUGINS_TABLE",
    "PROJECTION_INDEXES",
    "PROJECTION_TABLES",
    "PROJECT_ARCHIVE_COLUMN",
    "SCHEMA_VERSION",
    "SNAPSHOT_DIGEST_COLUMN",
    "TABLES",
    "TASK_INDEXES",
    "TASK_ROWS_DUE_INDEX",
    "TASK_ROWS_TABLE",
    "V8_INDEXES",
    "V8_TABLES",
    "Column",
    "Dialect",
    "Index",
    "Migration",
    "SchemaVersionError",
    "Table",
    "archive_partition",
    "archive_partition_statements",
    "archive_tables",
    "compacts",
    "county_role_statements",
    "county_wall_statements",
    "create_statements",
    "index_ddl",
    "intake_county_expression",
    "intake_index_ddl",
    "rebuilds_projections",
    "rechains",
    "table",
    "table_ddl",
    "upgrade_statements",
]

Dialect = Literal["sqlite", "postgresql"]

SCHEMA_VERSION = 15
"""The schema version this code reads and writes."""


ColumnType = Literal[
    "text", "int", "bigint", "bool", "json", "serial", "amount", "identity", "bytes", "texts"
]

_TYPES: dict[Dialect, dict[ColumnType, str]] = {
    "sqlite": {
        "text": "TEXT",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "bool": "INTEGER",
        "json": "TEXT",
        # Only valid as the whole primary key; AUTOINCREMENT never reuses a number.
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        # BLOB affinity converts nothing: an integer stays one, and an amount past 64 bits
        # stays its exact decimal text (INTEGER or NUMERIC affinity would make it a float).
        "amount": "BLOB",
        # A rowid alias (with ``PRIMARY KEY (column)``): SQLite numbers a row inserted without
        # it, one past the largest.
        "identity": "INTEGER",
        "bytes": "BLOB",
        "texts": "TEXT",  # a JSON array (no table of SQLite's has one yet)
    },
    "postgresql": {
        "text": "TEXT",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "bool": "BOOLEAN",
        "json": "TEXT",
        "serial": "BIGSERIAL PRIMARY KEY",
        "amount": "NUMERIC",
        "identity": "BIGINT GENERATED BY DEFAULT AS IDENTITY",
        "bytes": "BYTEA",
        "texts": "TEXT[]",
    },
}


@attrs.frozen
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    default: str | None = None
    """An SQL literal the column takes when an insert names none."""


@attrs.frozen
class Table:
    """A table; a ``serial`` column is the primary key by itself, else ``primary_key`` is."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    checks: tuple[str, ...] = ()
    without_rowid: bool = False
    """SQLite only: keep the rows in the primary key's b-tree (no separate rowid table)."""
    partition_by: str = ""
    """PostgreSQL only: the table is partitioned (``LIST (archive)``); its partitions are made
    as rows need them."""


@attrs.frozen
class Index:
    name: str
    table: str
    columns: tuple[str, ...]
    where: str = ""
    """A partial index's condition (both databases): only the rows it holds are indexed."""


def _c(name: str, type_: ColumnType, nullable: bool = False) -> Column:
    return Column(name, type_, nullable)


PROJECTION_TABLES: tuple[Table, ...] = (
    Table(
        "milestones",
        (
            _c("project", "text"),
            _c("milestone", "text"),
            _c("team", "text"),
            _c("points", "bigint"),
            _c("at_us", "bigint"),
            _c("month", "text"),
        ),
        primary_key=("project", "milestone"),
        without_rowid=True,
    ),
    Table(
        "project_summaries",
        (
            _c("project", "text"),
            _c("team", "text"),
            _c("stage", "text"),
            _c("agreed_investment", "amount", nullable=True),
            _c("funds", "amount"),
            _c("signed", "bool"),
            _c("started", "bool"),
            _c("producing", "bool"),
            _c("created_us", "bigint"),
        ),
        primary_key=("project",),
        without_rowid=True,
    ),
    Table(
        "intervals",
        (
            _c("project", "text"),
            _c("kind", "text"),
            _c("name", "text"),
            _c("team", "text"),
            _c("start_day", "int"),
            _c("end_day", "int"),
        ),
        primary_key=("project", "kind", "name"),
        without_rowid=True,
    ),
)
"""The projections, added in schema version 2."""

TASK_ROWS_TABLE = Table(
    "task_rows",
    (
        _c("project", "text"),
        _c("party", "text"),
        _c("kind", "text"),
        _c("department", "text"),
        _c("item", "text"),
        _c("command", "text"),
        _c("commands", "text"),
        _c("deadline_us", "bigint", nullable=True),
        _c("card", "text", nullable=True),
        _c("answered", "text"),
        _c("cards", "text"),
        _c("branch", "bool"),
        _c("commitment_only", "bool"),
        _c("handler", "text", nullable=True),
        _c("deputy", "text", nullable=True),
        _c("deputy_until_us", "bigint", nullable=True),
        _c("state", "text"),
        _c("project_name", "text"),
        _c("team", "text"),
        _c("applicant", "text"),
        _c("agent", "text", nullable=True),
        _c("leader", "text"),
        _c("fingerprint", "text"),
    ),
    # The party first: a task list reads one range of the key per party, and a commit writes one
    # b-tree, no index beside it (D173).
    primary_key=("party", "project", "kind", "department", "item", "command"),
    without_rowid=True,
)
"""The task list's read model (schema version 8): each open item of a project once per party
that may act on it (``approvalflow.stores.projections.TaskRow``, column for column)."""

TASK_ROWS_TABLE_V7 = attrs.evolve(
    TASK_ROWS_TABLE,
    columns=tuple(column for column in TASK_ROWS_TABLE.columns if column.name != "state"),
)
"""The task rows as schema version 7 made them, before version 12 gave them ``state``."""

TEAM_MONTH_COUNTS_TABLE_V15 = Table(
    "team_month_counts",
    (
        _c("team", "text"),
        _c("month", "text"),
        _c("projects", "bigint"),
        _c("signed", "bigint"),
        _c("signed_amount", "amount"),
        _c("started", "bigint"),
        _c("producing", "bigint"),
        _c("performing", "bigint"),
        _c("funds", "amount"),
    ),
    primary_key=("team", "month"),
    without_rowid=True,
)
"""The metrics page's counts (schema version 15): per team and month a project was signed in
(``""``: not signed), how many projects, signed, started, producing and still performing, and
the signed amount and funds in place, each commit adding what it changed
(``approvalflow.readmodels``)."""

TASK_INDEXES: tuple[Index, ...] = (
    # What an actor did (已办): their events, sent by them or on their behalf. Partial: a timer's
    # events have no sender and most have no principal, and an entry not kept costs no write.
    # In commit order (``seq``, schema version 12), so the latest are read first and no further.
    Index("events_by_actor", "events", ("by_actor", "seq"), "by_actor IS NOT NULL"),
    Index("events_by_principal", "events", ("on_behalf_of", "seq"), "on_behalf_of IS NOT NULL"),
)
"""The task list's indexes (schema version 7; in commit order since version 12)."""

PROJECTION_INDEXES: tuple[Index, ...] = (
    Index("milestones_by_month", "milestones", ("month", "team", "points")),
    Index("intervals_by_span", "intervals", ("kind", "name", "start_day", "end_day")),
    # The per-team metrics read it alone, grouped in its order (schema version 12).
    Index("intervals_by_team", "intervals", ("team", "kind", "name", "start_day", "end_day")),
)

RULE_SETS_TABLE = Table(
    "rule_sets",
    (
        _c("fingerprint", "text"),
        _c("rules_version", "text"),
        _c("data", "json"),
        _c("saved_at", "text"),
    ),
    primary_key=("fingerprint",),
)
"""Pinned rule sets, added in schema version 3."""

API_TOKENS_TABLE_V6 = Table(
    "api_tokens",
    (
        _c("token_id", "text"),
        _c("system", "text"),
        _c("hash", "text"),
        _c("created_at", "text"),
        _c("actor", "text", nullable=True),
        _c("trusted", "bool"),
        _c("revoked_at", "text", nullable=True),
    ),
    primary_key=("token_id",),
    unique=(("hash",),),
)
"""The service's bearer tokens (only their hashes; ``stores.tokens``) as schema version 6
made them."""

TOKEN_COUNTY_COLUMN = Column("county", "text", nullable=True)
"""The county a token belongs to (``*`` for a province token; none for a token of a one-county
service), schema version 10."""

API_TOKENS_TABLE = attrs.evolve(
    API_TOKENS_TABLE_V6, columns=(*API_TOKENS_TABLE_V6.columns, TOKEN_COUNTY_COLUMN)
)
"""The service's bearer tokens now."""

PROJECT_CODES_TABLE = Table(
    "project_codes",
    (_c("code", "text"), _c("project", "text")),
    primary_key=("code",),
)
"""The national platform's project code (项目代码) of each project that has one, once
(schema version 3): the key makes a code name one project only."""
PLUGINS_TABLE = Table(
    "plugins",
    (_c("position", "int"), _c("name", "text"), _c("recorded_at", "text")),
    primary_key=("name",),
)
"""The plugins the store's projects were written with, in the order first recorded (schema
version 5): what a process opening the store without naming plugins uses."""

SNAPSHOT_DIGEST_COLUMN = Column("digest", "text", nullable=True)
"""The snapshot's digest (``audit.snapshot_digest``), schema version 8: a row without one, or
with one that does not match, is not trusted (``load`` folds the events instead)."""

AUDIT_LEGACY_TABLE = Table(
    "audit_legacy",
    (
        _c("id", "int"),
        _c("events", "bigint"),
        _c("last_seq", "bigint"),
        _c("head", "text"),
        _c("verified", "bool"),
        _c("reason", "text", nullable=True),
        _c("migrated_at", "text"),
    ),
    primary_key=("id",),
    checks=("id = 1",),
)
"""The store-wide chain a store kept before schema version 8, as the migration found it: how
many events, the newest one's ``seq`` and hash, and whether it verified then."""

CHECKPOINTS_TABLE = Table(
    "checkpoints",
    (
        _c("seq", "serial"),
        _c("sealed_at", "text"),
        _c("digest", "text"),
        _c("document", "json"),
    ),
)
"""Sealed checkpoints of every project's chain head (``stores.checkpoints``), schema
version 7; each is also written where the county keeps it."""

OUTBOX_CLAIM_COLUMNS: tuple[Column, ...] = (
    _c("claimed_by", "text", nullable=True),
    _c("claimed_until_us", "bigint", nullable=True),
)
"""Who holds a claim on an outbox notice and until when, added in schema version 4."""

V8_TABLES: tuple[Table, ...] = (
    Table(
        "meta",
        (_c("id", "int"), _c("schema_version", "int")),
        primary_key=("id",),
        checks=("id = 1",),
    ),
    Table(
        "events",
        (
            _c("seq", "identity"),
            _c("project", "text"),
            _c("version", "bigint"),
            _c("type", "text"),
            _c("at", "text"),
            _c("by_actor", "text", nullable=True),
            _c("on_behalf_of", "text", nullable=True),
            _c("command_id", "text", nullable=True),
            _c("payload", "json"),
            _c("hash", "text"),
            _c("prev_hash", "text"),
        ),
        primary_key=("seq",),
        unique=(("project", "version"),),
    ),
    Table(
        "snapshots",
        (
            _c("project", "text"),
            _c("version", "bigint"),
            _c("state", "json"),
            SNAPSHOT_DIGEST_COLUMN,
        ),
        primary_key=("project",),
    ),
    Table(
        "projects",
        (_c("created_seq", "serial"), _c("project", "text"), _c("version", "bigint")),
        unique=(("project",),),
    ),
    Table(
        "commands",
        (
            _c("command_id", "text"),
            _c("project", "text"),
            _c("command", "text"),
            _c("fingerprint", "text"),
            _c("first_version", "bigint"),
            _c("last_version", "bigint"),
        ),
        primary_key=("command_id",),
    ),
    Table(
        "timers",
        (
            _c("project", "text"),
            _c("kind", "text"),
            _c("branch", "text"),
            _c("due_us", "bigint"),
            _c("due_at", "text"),
            _c("lease_until_us", "bigint", nullable=True),
        ),
        primary_key=("project", "kind", "branch"),
    ),
    Table(
        "outbox",
        (
            _c("created_seq", "serial"),
            _c("notice_id", "text"),
            _c("project", "text"),
            _c("kind", "text"),
            _c("payload", "json"),
            _c("attempts", "int"),
            _c("last_error", "text", nullable=True),
            _c("next_attempt_us", "bigint", nullable=True),
            _c("next_attempt_at", "text", nullable=True),
            *OUTBOX_CLAIM_COLUMNS,
        ),
        unique=(("notice_id",),),
    ),
    *PROJECTION_TABLES,
    RULE_SETS_TABLE,
    PROJECT_CODES_TABLE,
    PLUGINS_TABLE,
    API_TOKENS_TABLE_V6,
    AUDIT_LEGACY_TABLE,
    CHECKPOINTS_TABLE,
    TASK_ROWS_TABLE_V7,
)


V8_INDEXES: tuple[Index, ...] = (
    Index("timers_by_due", "timers", ("due_us",)),
    *PROJECTION_INDEXES,
    *TASK_INDEXES,
)
"""The tables and indexes as schema version 8 left them: what the migrations before version 9
create (a store being migrated has no ``county`` column until version 9 adds it)."""

COUNTY_COLUMN = Column("county", "text", default="'default'")
"""The county a row belongs to (schema version 9): a short key (``base.COUNTY_PATTERN``), first
in every table of county data and first in its keys. The store names it in every statement; the
default (``base.DEFAULT_COUNTY``) is for rows written by hand or by a bulk load, and under
PostgreSQL's row-level security a row of the default county is refused to any other county's
connection all the same."""

_V12_COUNTY_TABLES: tuple[str, ...] = (
    "events",
    "snapshots",
    "projects",
    "commands",
    "timers",
    "outbox",
    "milestones",
    "project_summaries",
    "intervals",
    "task_rows",
    "rule_sets",
    "project_codes",
    "plugins",
    "checkpoints",
)
"""The tables of county data as schema version 12 left them (what steps 9 and 12 wall)."""

COUNTY_TABLES: tuple[str, ...] = (*_V12_COUNTY_TABLES, "team_month_counts")
"""The tables of county data (schema version 9): each row under its county, read and written
through a county's view only, and behind PostgreSQL's row-level security (``county_wall``)."""

COUNTIES_TABLE = Table(
    "counties",
    (_c("county", "text"), _c("created_at", "text")),
    primary_key=("county",),
)
"""Every county the store holds a project of (schema version 9), added with its first project:
the province's list (``Store.counties``), the one table naming counties that no county's
row-level security hides."""


def _with_county(table: Table) -> Table:
    """``table`` with the county column first and the county leading every natural key (a
    ``serial`` column stays the row's number)."""
    if table.name not in COUNTY_TABLES:
        return table
    return attrs.evolve(
        table,
        columns=(COUNTY_COLUMN, *table.columns),
        primary_key=(
            ("county", *table.primary_key)
            if table.primary_key and table.primary_key != ("seq",)
            else table.primary_key
        ),
        unique=tuple(("county", *columns) for columns in table.unique),
    )


def _county_index(index: Index) -> Index:
    return attrs.evolve(index, columns=("county", *index.columns))


V9_TABLES: tuple[Table, ...] = (
    *(_with_county(table) for table in V8_TABLES),
    COUNTIES_TABLE,
)
"""The tables as schema version 9 (counties) left them: what its step copies SQLite's tables
into, before version 11 made the events and snapshots compact."""


PROJECT_ARCHIVE_COLUMN = Column("archive", "text", nullable=True)
"""The archive a project was packed into (schema version 14), ``NULL`` while it is live: the
commit's guard refuses a project that has one (``ProjectArchived``)."""


def _compact(table: Table) -> Table:
    """Schema version 11's events and snapshots: each hash as its 32 bytes with no
    ``prev_hash`` beside it, each snapshot's JSON compressed (``serialization.pack_state``)."""
    if table.name == "events":
        kept = tuple(column for column in table.columns if column.name != "prev_hash")
        return attrs.evolve(
            table,
            columns=tuple(
                attrs.evolve(column, type="bytes") if column.name == "hash" else column
                for column in kept
            ),
        )
    if table.name == "snapshots":
        return attrs.evolve(
            table,
            columns=tuple(
                attrs.evolve(column, type="bytes") if column.name == "state" else column
                for column in table.columns
            ),
        )
    return table


TABLES: tuple[Table, ...] = (
    *(
        # The token table is not a county table: schema 10 gives it a nullable county of its own
        # (``TOKEN_COUNTY_COLUMN``).
        API_TOKENS_TABLE
        if table is API_TOKENS_TABLE_V6
        # Schema 12's task rows keep the branch's state.
        else _with_county(TASK_ROWS_TABLE)
        if table.name == "task_rows"
        # Schema 14's projects say which archive holds them.
        else attrs.evolve(table, columns=(*table.columns, PROJECT_ARCHIVE_COLUMN))
        if table.name == "projects"
        else _compact(table)
        for table in V9_TABLES
    ),
    _with_county(TEAM_MONTH_COUNTS_TABLE_V15),
)
"""The current tables, apart from the archive's (``ARCHIVE_TABLES``, schema version 14)."""

_V12_INDEXES: tuple[Index, ...] = (
    *(_county_index(index) for index in V8_INDEXES),
    # The outbox claims read one county's notices, oldest first.
    Index("outbox_by_county", "outbox", ("county", "created_seq")),
)
"""The indexes as schema version 12 left them (what step 9 creates, on the tables of then)."""

TASK_ROWS_DUE_INDEX = Index(
    "task_rows_due",
    "task_rows",
    (
        "county",
        "deadline_us",
        "kind",
        "department",
        "state",
        "card",
        "fingerprint",
        "answered",
        "cards",
        "project",
        "party",
    ),
    "deadline_us IS NOT NULL",
)
"""The late board counts the task rows due by a moment by group and reads each group's first
rows from this index alone (schema version 15). Partial: an item without a deadline (most are)
costs no write."""

MILESTONES_BY_MONTH_KIND_INDEX = Index(
    "milestones_by_month_kind", "milestones", ("county", "month", "team", "milestone", "points")
)
"""The leaderboard's three sums of a month (points by team this month and last, and by team
and milestone) each read from this index alone (schema version 15, in place of
``milestones_by_month``, which lacked the milestone: one b-tree a commit, as before)."""

INDEXES: tuple[Index, ...] = (
    *(index for index in _V12_INDEXES if index.name != "milestones_by_month"),
    TASK_ROWS_DUE_INDEX,
    MILESTONES_BY_MONTH_KIND_INDEX,
)
"""The current indexes: each led by the county, so a county's lookup is one range."""

COUNTY_SETTING = "approvalflow.county"
"""The PostgreSQL setting a connection's county is kept in, which row-level security compares
each row's ``county`` with."""

COUNTY_ROLE = "approvalflow_county"
"""The PostgreSQL role a county's view works as (``SET ROLE``, when the connecting user may): it
owns no table, so row-level security holds it (D203)."""


ARCHIVES_TABLE = Table(
    "archives",
    (
        COUNTY_COLUMN,
        _c("project", "text"),
        _c("archive", "text"),
        _c("version", "bigint"),
        _c("last_seq", "bigint"),
        _c("head", "bytes"),
        _c("pack", "bytes"),
    ),
    # The archive in the key: PostgreSQL's key of a partitioned table must hold the partition
    # key; ``projects.archive`` keeps a project in one archive only.
    primary_key=("county", "project", "archive"),
    partition_by="LIST (archive)",
)
"""Finished projects packed (schema version 14, ``stores.archives``): each project's events
as one compressed ``pack``, its version, its chain's ``head`` (32 bytes) and its newest
``seq``. On PostgreSQL list-partitioned by the archive's name, so an
archive's partition can be detached and verified as a table of its own."""

ARCHIVE_ACTORS_TABLE = Table(
    "archive_actors",
    (COUNTY_COLUMN, _c("actor", "text"), _c("project", "text")),
    primary_key=("county", "actor", "project"),
    without_rowid=True,
)
"""Who acted on each archived project (by them or on their behalf), schema version 14: what
已办 (``Store.actor_events``) reads the archived packs by."""

ARCHIVES_TABLE_POSTGRESQL = attrs.evolve(
    ARCHIVES_TABLE, columns=(*ARCHIVES_TABLE.columns, _c("actors", "texts"))
)
"""PostgreSQL's ``archives``: who acted on each project is an array beside its pack, found by a
GIN index (``archives_by_actor``), a few bytes per actor and project where a row of
``archive_actors`` costs PostgreSQL ~100 with its index entry (D268)."""

ARCHIVE_TABLES: tuple[Table, ...] = (ARCHIVES_TABLE, ARCHIVE_ACTORS_TABLE)
"""The archive's tables (schema version 14) on SQLite, county data behind the same wall as
``COUNTY_TABLES`` (``archive_tables``: each dialect's)."""


def archive_tables(dialect: Dialect) -> tuple[Table, ...]:
    """The archive's tables in ``dialect``: PostgreSQL keeps the actors in ``archives``."""
    return ARCHIVE_TABLES if dialect == "sqlite" else (ARCHIVES_TABLE_POSTGRESQL,)


ARCHIVE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]{0,31}")
"""An archive's name, matched whole (``2026_q1``): PostgreSQL names its partition after it."""


def archive_partition(name: str) -> str:
    """The PostgreSQL partition of ``archives`` holding the archive ``name``."""
    return f"archives_{name}"


def archive_partition_statements(name: str) -> list[str]:
    """Make the partition of the archive ``name`` if it is missing (PostgreSQL; run by the
    tables' owner). The county role is given no privilege on it: a county reads it through
    ``archives``, whose privileges and county wall hold, never directly."""
    partition = archive_partition(name)
    return [
        f"CREATE TABLE IF NOT EXISTS {partition} PARTITION OF archives FOR VALUES IN ('{name}')",
        # Kept in the row, not TOAST's table: the pack is compressed already.
        f"ALTER TABLE {partition} ALTER COLUMN pack SET STORAGE MAIN",
    ]


def _table_ddl(table: Table, dialect: Dialect) -> str:
    types = _TYPES[dialect]
    parts = [
        f"{column.name} {types[column.type]}"
        + ("" if column.nullable or column.type == "serial" else " NOT NULL")
        + ("" if column.default is None else f" DEFAULT {column.default}")
        for column in table.columns
    ]
    if table.primary_key:
        parts.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    parts.extend(f"UNIQUE ({', '.join(columns)})" for columns in table.unique)
    parts.extend(f"CHECK ({check})" for check in table.checks)
    body = ",\n    ".join(parts)
    suffix = " WITHOUT ROWID" if table.without_rowid and dialect == "sqlite" else ""
    if table.partition_by and dialect == "postgresql":
        suffix = f" PARTITION BY {table.partition_by}"
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n    {body}\n){suffix}"


def _index_ddl(index: Index) -> str:
    where = f" WHERE {index.where}" if index.where else ""
    return (
        f"CREATE INDEX IF NOT EXISTS {index.name} ON {index.table} "
        f"({', '.join(index.columns)}){where}"
    )


INTAKE_INDEX = "events_by_intake"
"""The index of the projects taken in at another county's hall (schema version 13)."""


def intake_county_expression(dialect: Dialect) -> str:
    """The accepting county of an event's ``intake`` field, as ``INTAKE_INDEX`` keeps it: a
    query must name it as written here for the index to serve it."""
    if dialect == "sqlite":
        return "json_extract(payload, '$.extra.intake.county')"
    # ``payload`` is TEXT (the audit hashes its exact text); the cast to jsonb is immutable.
    return "(((payload::jsonb -> 'extra') -> 'intake') ->> 'county')"


def intake_index_ddl(dialect: Dialect) -> str:
    """``CREATE INDEX`` of ``INTAKE_INDEX``: partial, holding only the created events of
    projects taken in elsewhere, so it is as small as their number and a commit of any other
    event writes no entry. Under PostgreSQL's row-level security a query's non-leakproof
    expression (the jsonb operators) cannot be an index condition, but the partial predicate
    still chooses the index: a county's range of it is its intakes alone (D275)."""
    expression = intake_county_expression(dialect)
    return (
        f"CREATE INDEX IF NOT EXISTS {INTAKE_INDEX} ON events (county, {expression}) "
        f"WHERE type = 'created' AND {expression} IS NOT NULL"
    )


def create_statements(dialect: Dialect) -> list[str]:
    """DDL creating the current schema in an empty database (no ``meta`` row)."""
    statements = [_table_ddl(table, dialect) for table in TABLES]
    statements.extend(_index_ddl(index) for index in INDEXES)
    statements.append(intake_index_ddl(dialect))
    statements.extend(_archives_ddl(dialect, created=True))
    if dialect == "postgresql":
        statements.extend(
            county_wall_statements([*COUNTY_TABLES, *(t.name for t in archive_tables(dialect))])
        )
    return statements


def county_wall_statements(tables: Sequence[str] | None = None) -> list[str]:
    """PostgreSQL's row-level security on every county table: a row is seen, and may be
    written, only under a connection whose ``approvalflow.county`` setting is its county (an
    unset setting matches no row). ``FORCE``: the tables' owner is held too, so only a
    superuser or a role with ``BYPASSRLS`` passes."""
    check = f"county = current_setting('{COUNTY_SETTING}', true)"
    statements: list[str] = []
    for table in COUNTY_TABLES if tables is None else tables:
        statements += [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS county_wall ON {table}",
            f"CREATE POLICY county_wall ON {table} USING ({check}) WITH CHECK ({check})",
        ]
    return statements


def county_role_statements() -> list[str]:
    """Make ``COUNTY_ROLE`` if it is missing (roles are the cluster's: another store's schema
    may have made it), let the current user take it up, and give it this schema's tables. Run
    after every creation or migration (a no-op when nothing changed)."""
    role = COUNTY_ROLE
    return [
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN "
        f"CREATE ROLE {role} NOLOGIN; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        "DO $$ BEGIN "
        f"IF NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN "
        f"EXECUTE format('GRANT {role} TO %I', current_user); END IF; "
        "EXCEPTION WHEN insufficient_privilege THEN NULL; END $$",
        f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {role}', current_schema()); "
        "EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I "
        f"TO {role}', current_schema()); "
        "EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I "
        f"TO {role}', current_schema()); END $$",
    ]


@attrs.frozen
class Migration:
    """The step from ``version - 1`` to ``version``: statements for a dialect, and whether the
    store must then rebuild the projections from every project's state (Python work that SQL
    cannot do; the store does it in the same transaction, see ``rebuilds_projections``)."""

    version: int
    description: str
    statements: Callable[[Dialect], Sequence[str]]
    rebuild_projections: bool = False
    rechain: bool = False
    """The store then moves the events from the store-wide audit chain to one chain per
    project, recording the old chain's head (``SQLStore._rechain``), before any rebuild."""
    compact: bool = False
    """The store then rewrites the events and snapshots in the compact format (hashes as 32
    bytes, no ``prev_hash``, snapshots compressed: ``SQLStore._compact``), after any rechain
    (which reads and writes the format before it) and before any rebuild."""


def _projection_ddl(dialect: Dialect) -> list[str]:
    return [
        *(_table_ddl(table, dialect) for table in PROJECTION_TABLES),
        *(_index_ddl(index) for index in PROJECTION_INDEXES),
    ]


def _backfill_project_codes(dialect: Dialect) -> str:
    # The first project created with a code keeps it (codes were not unique before).
    code = (
        "json_extract(payload, '$.project_code')"
        if dialect == "sqlite"
        else "(payload::jsonb ->> 'project_code')"
    )
    return (
        f"INSERT INTO project_codes (code, project) SELECT {code}, project FROM events "
        f"WHERE type = 'created' AND {code} IS NOT NULL ORDER BY seq "
        # No target: whichever key the table has (a store taken back from a later version by
        # hand keeps its later key).
        "ON CONFLICT DO NOTHING"
    )


def _outbox_claim_ddl(dialect: Dialect) -> list[str]:
    # Nullable columns with no default: both databases add them without rewriting the table.
    types = _TYPES[dialect]
    return [
        f"ALTER TABLE outbox ADD COLUMN {column.name} {types[column.type]}"
        for column in OUTBOX_CLAIM_COLUMNS
    ]


def _exact_amounts_ddl(dialect: Dialect) -> list[str]:
    if dialect == "postgresql":
        return [
            "ALTER TABLE project_summaries ALTER COLUMN agreed_investment TYPE NUMERIC, "
            "ALTER COLUMN funds TYPE NUMERIC"
        ]
    # SQLite changes no column's type: copy the rows into the new table (they fit in 64 bits).
    summaries = next(table for table in PROJECTION_TABLES if table.name == "project_summaries")
    columns = ", ".join(column.name for column in summaries.columns)
    return [
        _table_ddl(attrs.evolve(summaries, name="project_summaries_v5"), dialect),
        f"INSERT INTO project_summaries_v5 ({columns}) SELECT {columns} FROM project_summaries",
        "DROP TABLE project_summaries",
        "ALTER TABLE project_summaries_v5 RENAME TO project_summaries",
    ]


def _per_project_chains_ddl(dialect: Dialect) -> list[str]:
    types = _TYPES[dialect]
    column = SNAPSHOT_DIGEST_COLUMN
    statements = [
        _table_ddl(AUDIT_LEGACY_TABLE, dialect),
        _table_ddl(CHECKPOINTS_TABLE, dialect),
        f"ALTER TABLE snapshots ADD COLUMN {column.name} {types[column.type]}",
    ]
    if dialect == "postgresql":
        # The database numbers the events from now on, past the ones there are (SQLite's
        # rowid does so already).
        statements += [
            "DO $$ BEGIN IF pg_get_serial_sequence('events', 'seq') IS NULL THEN "
            "ALTER TABLE events ALTER COLUMN seq ADD GENERATED BY DEFAULT AS IDENTITY; "
            "END IF; END $$",
            "SELECT setval(pg_get_serial_sequence('events', 'seq'), "
            "COALESCE(MAX(seq), 0) + 1, false) FROM events",
        ]
    return statements


def _token_county_ddl(dialect: Dialect) -> list[str]:
    # A nullable column with no default: both databases add it without rewriting the table,
    # and every token issued before is a one-county service's token, as it was.
    column = TOKEN_COUNTY_COLUMN
    return [f"ALTER TABLE api_tokens ADD COLUMN {column.name} {_TYPES[dialect][column.type]}"]


def _counties_ddl(dialect: Dialect) -> list[str]:
    """Schema version 9: every county table gets the county column, its rows the default
    county's, its keys and indexes led by the county; the counties table; on PostgreSQL the
    row-level security. Written to hold on a table that has the column already (a test's
    store taken back to an older version keeps it)."""
    from approvalflow.stores.base import DEFAULT_COUNTY

    default = f"'{DEFAULT_COUNTY}'"
    current = {table.name: table for table in V9_TABLES}
    statements: list[str] = [_table_ddl(COUNTIES_TABLE, dialect)]
    if dialect == "sqlite":
        # SQLite changes no key in place: each table is copied into its new shape.
        for name in _V12_COUNTY_TABLES:
            table = current[name]
            columns = ", ".join(c.name for c in table.columns if c.name != "county")
            statements += [
                _table_ddl(attrs.evolve(table, name=f"{name}_v9"), dialect),
                f"INSERT INTO {name}_v9 (county, {columns}) SELECT {default}, {columns} "
                f"FROM {name}",
                f"DROP TABLE {name}",
                f"ALTER TABLE {name}_v9 RENAME TO {name}",
            ]
    else:
        old = {table.name: table for table in V8_TABLES}
        for name in _V12_COUNTY_TABLES:
            table = current[name]
            # A constant default: PostgreSQL adds the column without rewriting the table.
            statements.append(
                f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS county TEXT NOT NULL "
                f"DEFAULT {default}"
            )
            if table.primary_key and table.primary_key[0] == "county":
                statements += [
                    f"ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {name}_pkey",
                    f"ALTER TABLE {name} ADD PRIMARY KEY ({', '.join(table.primary_key)})",
                ]
            for before, after in zip(old[name].unique, table.unique, strict=True):
                old_key = f"{name}_{'_'.join(before)}_key"
                new_key = f"{name}_{'_'.join(after)}_key"
                statements += [
                    f"ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {old_key}",
                    f"ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {new_key}",
                    f"ALTER TABLE {name} ADD CONSTRAINT {new_key} UNIQUE ({', '.join(after)})",
                ]
        statements += [f"DROP INDEX IF EXISTS {index.name}" for index in _V12_INDEXES]
    statements += [_index_ddl(index) for index in _V12_INDEXES]
    statements.append(
        f"INSERT INTO counties (county, created_at) SELECT DISTINCT {default}, "
        "'migrated' FROM projects WHERE true ON CONFLICT (county) DO NOTHING"
    )
    if dialect == "postgresql":
        statements += county_wall_statements(_V12_COUNTY_TABLES)
    return statements


def _late_items_ddl(dialect: Dialect) -> list[str]:
    # The task rows gain ``state``: the table is made anew (in its current shape, the county's
    # column leading) and the rebuild refills it from every project's state. The actor indexes
    # gain ``seq`` (in SQLite the rowid every index already ends with, so only PostgreSQL's
    # change in effect). PostgreSQL's wall is put back on the new table.
    names = {index.name for index in TASK_INDEXES} | {"intervals_by_team"}
    current = [index for index in INDEXES if index.name in names]
    statements = [
        "DROP TABLE IF EXISTS task_rows",
        _table_ddl(table("task_rows"), dialect),
        *(f"DROP INDEX IF EXISTS {index.name}" for index in current),
        *(_index_ddl(index) for index in current),
    ]
    if dialect == "postgresql":
        statements += county_wall_statements(_V12_COUNTY_TABLES)
    return statements


def _pages_ddl(dialect: Dialect) -> list[str]:
    """Schema version 15: the late board's index of the task rows with a deadline, the
    leaderboard's index of the milestones by month with their kind, and the metrics page's
    counts by team and month (filled by the rebuild; walled on PostgreSQL).
    Written out here, not read from ``INDEXES`` or ``TABLES``, so that a later change to
    either takes a step of its own."""
    check = f"county = current_setting('{COUNTY_SETTING}', true)"
    statements = [
        "CREATE INDEX IF NOT EXISTS task_rows_due ON task_rows (county, deadline_us, kind, "
        "department, state, card, fingerprint, answered, cards, project, party) "
        "WHERE deadline_us IS NOT NULL",
        "DROP INDEX IF EXISTS milestones_by_month",
        "CREATE INDEX IF NOT EXISTS milestones_by_month_kind ON milestones "
        "(county, month, team, milestone, points)",
        "DROP TABLE IF EXISTS team_month_counts",
        _table_ddl(_with_county(TEAM_MONTH_COUNTS_TABLE_V15), dialect),
    ]
    if dialect == "postgresql":
        statements += [
            "ALTER TABLE team_month_counts ENABLE ROW LEVEL SECURITY",
            "ALTER TABLE team_month_counts FORCE ROW LEVEL SECURITY",
            "DROP POLICY IF EXISTS county_wall ON team_month_counts",
            f"CREATE POLICY county_wall ON team_month_counts USING ({check}) WITH CHECK ({check})",
        ]
    return statements


def _archives_ddl(dialect: Dialect, *, created: bool = False) -> list[str]:
    """Schema version 14: ``projects.archive`` and the archive's tables, self-contained (their
    shapes are written out here, never read from a later version's), and written to hold on a
    store that has them already (a test's store taken back to an older version keeps them).
    ``created``: the current tables were just made, with the column."""
    column = PROJECT_ARCHIVE_COLUMN
    statements: list[str] = []
    if not created and dialect == "postgresql":
        statements.append(f"ALTER TABLE projects ADD COLUMN IF NOT EXISTS {column.name} TEXT")
    elif not created:
        # SQLite adds no column "if not exists": the table is copied into its version-13 shape.
        v9 = next(table for table in V9_TABLES if table.name == "projects")
        kept = ", ".join(c.name for c in v9.columns)
        v13 = attrs.evolve(v9, name="projects_v13", columns=(*v9.columns, column))
        statements += [
            "DROP TABLE IF EXISTS projects_v13",
            _table_ddl(v13, dialect),
            f"INSERT INTO projects_v13 ({kept}) SELECT {kept} FROM projects",
            "DROP TABLE projects",
            "ALTER TABLE projects_v13 RENAME TO projects",
        ]
    statements += [_table_ddl(table, dialect) for table in archive_tables(dialect)]
    if dialect == "postgresql":
        statements.append(
            "CREATE INDEX IF NOT EXISTS archives_by_actor ON archives USING gin (actors)"
        )
    if dialect == "postgresql" and not created:
        statements += county_wall_statements([table.name for table in archive_tables(dialect)])
    return statements


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "projections for reports: milestones, project_summaries, intervals",
        _projection_ddl,
        rebuild_projections=True,
    ),
    Migration(
        3,
        "rule_sets (the rule set each project is pinned to) and project_codes",
        lambda dialect: [
            _table_ddl(RULE_SETS_TABLE, dialect),
            _table_ddl(PROJECT_CODES_TABLE, dialect),
            _backfill_project_codes(dialect),
        ],
    ),
    Migration(4, "outbox claims: claimed_by, claimed_until_us", _outbox_claim_ddl),
    Migration(
        5,
        "plugins (the store's record of its plugins); exact amounts in project_summaries",
        lambda dialect: [_table_ddl(PLUGINS_TABLE, dialect), *_exact_amounts_ddl(dialect)],
    ),
    # Self-contained (one new table, nothing else touched): it may take any number.
    Migration(
        6,
        "api_tokens (the service's bearer tokens)",
        lambda dialect: [_table_ddl(API_TOKENS_TABLE_V6, dialect)],
    ),
    # Self-contained too (its own table and indexes); the rebuild fills task_rows from every
    # project's state, as the other projections are refilled.
    Migration(
        7,
        "task_rows (the task list's read model) and the indexes of what each actor did",
        lambda dialect: [
            _table_ddl(TASK_ROWS_TABLE_V7, dialect),
            *(_index_ddl(index) for index in TASK_INDEXES),
        ],
        rebuild_projections=True,
    ),
    # Self-contained too (its tables, one column, and the store's rechaining): it may be
    # renumbered.
    Migration(
        8,
        "per-project audit chains, snapshot digests, audit_legacy and checkpoints",
        _per_project_chains_ddl,
        rechain=True,
    ),
    # Self-contained too (the county column on every county table, its keys, the counties
    # table, row-level security): it may be renumbered.
    Migration(
        9,
        "counties: a county column leading every key, the counties table, row-level security",
        _counties_ddl,
    ),
    # Self-contained (one nullable column of the token table, nothing else): it may be
    # renumbered.
    Migration(10, "api_tokens.county (the county a token belongs to)", _token_county_ddl),
    # Self-contained too: no statement of its own, the store's compaction does the whole step
    # (SQLite 3.40 has no unhex() to do it in SQL); it may be renumbered.
    Migration(
        11,
        "compact events and snapshots: 32-byte hashes, no prev_hash, zlib snapshots",
        lambda dialect: [],
        compact=True,
    ),
    # Self-contained (its own function): it may be renumbered.
    Migration(
        12,
        "task_rows keep the branch's state (late items); what each actor did, in commit "
        "order; intervals by team",
        _late_items_ddl,
        rebuild_projections=True,
    ),
    # Self-contained (one index over the events' columns as every version since 9 has them,
    # its expression and name its own): it may be renumbered.
    Migration(
        13,
        "events_by_intake: the projects taken in at another county's hall, by accepting county",
        lambda dialect: [intake_index_ddl(dialect)],
    ),
    # Self-contained (one nullable column and two new tables, their shapes written out).
    Migration(
        14,
        "archives of finished projects: projects.archive, archives (packed events, "
        "partitioned by archive on PostgreSQL), archive_actors",
        _archives_ddl,
    ),
    # Self-contained (its own statements, its own index).
    Migration(
        15,
        "task_rows_due (the late board's index), milestones_by_month_kind (the leaderboard's) "
        "and team_month_counts (the metrics' counts)",
        _pages_ddl,
        rebuild_projections=True,
    ),
)
"""Every step after version 1, in order. Add one with each change to ``TABLES``."""


def rechains(
    found: int | None,
    *,
    current: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> bool:
    """Whether bringing a database at ``found`` to the current version moves its events to
    per-project chains (never for an empty database)."""
    if found is None:
        return False
    target = SCHEMA_VERSION if current is None else current
    steps = MIGRATIONS if migrations is None else migrations
    return any(step.rechain for step in steps if found < step.version <= target)


def compacts(
    found: int | None,
    *,
    current: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> bool:
    """Whether bringing a database at ``found`` to the current version rewrites its events
    and snapshots in the compact format (never for an empty database)."""
    if found is None:
        return False
    target = SCHEMA_VERSION if current is None else current
    steps = MIGRATIONS if migrations is None else migrations
    return any(step.compact for step in steps if found < step.version <= target)


def table(name: str) -> Table:
    """The current definition of the table ``name``."""
    return next(found for found in TABLES if found.name == name)


def table_ddl(definition: Table, dialect: Dialect) -> str:
    """``CREATE TABLE`` for ``definition`` in ``dialect``."""
    return _table_ddl(definition, dialect)


def index_ddl(index: Index) -> str:
    """``CREATE INDEX`` for ``index``."""
    return _index_ddl(index)


def rebuilds_projections(
    found: int | None,
    *,
    current: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> bool:
    """Whether bringing a database at ``found`` to the current version includes a step that
    rebuilds the projections (never for an empty database: it has no projects)."""
    if found is None:
        return False
    target = SCHEMA_VERSION if current is None else current
    steps = MIGRATIONS if migrations is None else migrations
    return any(step.rebuild_projections for step in steps if found < step.version <= target)


def upgrade_statements(
    found: int | None,
    dialect: Dialect,
    *,
    current: int | None = None,
    migrations: Sequence[Migration] | None = None,
) -> list[str]:
    """Statements that bring a database at schema version ``found`` to the current one.

    ``found`` is ``None`` for an empty database. The statements end by recording the new
    version in ``meta``; run them in one transaction. An up-to-date database gets ``[]``.

    :param current: the target version (default: ``SCHEMA_VERSION``, read at call time).
    :param migrations: the steps to use (default: ``MIGRATIONS``, read at call time).
    :raises SchemaVersionError: the database is newer than ``current``, or a step is missing.
    """
    target = SCHEMA_VERSION if current is None else current
    steps = MIGRATIONS if migrations is None else migrations
    if found is None:
        return [
            *create_statements(dialect),
            f"INSERT INTO meta (id, schema_version) VALUES (1, {target})",
        ]
    if found > target:
        raise SchemaVersionError(
            f"the database has schema version {found}, newer than version {target} that this "
            "approvalflow knows: upgrade approvalflow to open it"
        )
    statements: list[str] = []
    by_version = {step.version: step for step in steps}
    for version in range(found + 1, target + 1):
        step = by_version.get(version)
        if step is None:
            raise SchemaVersionError(
                f"no migration from schema version {version - 1} to {version} "
                f"(the database has version {found}, this approvalflow version {target})"
            )
        statements.extend(step.statements(dialect))
    if statements or found != target:
        statements.append(f"UPDATE meta SET schema_version = {target} WHERE id = 1")
    return statements
