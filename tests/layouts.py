"""Stores as older schema versions left them, made from current ones: what the migration tests
start from. Schema version 11 changed the stored format of two tables and version 10 added the
token table's county, so a test that takes a store back to version 8 or before first undoes
them with ``to_version_8``; the other versions' steps are undone by the statements in each
test."""

from __future__ import annotations

import zlib
from typing import Any, Literal

from approvalflow.stores.audit import GENESIS

Dialect = Literal["sqlite", "postgresql"]

# The events and snapshots tables as schema version 8 wrote them (hashes as hex text with the
# previous event's beside them, the state as JSON text).
_V8_EVENTS = (
    "CREATE TABLE events (seq INTEGER NOT NULL, project TEXT NOT NULL, "
    "version INTEGER NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL, by_actor TEXT, "
    "on_behalf_of TEXT, command_id TEXT, payload TEXT NOT NULL, hash TEXT NOT NULL, "
    "prev_hash TEXT NOT NULL, PRIMARY KEY (seq), UNIQUE (project, version))"
)
_V8_SNAPSHOTS = (
    "CREATE TABLE snapshots (project TEXT NOT NULL, version INTEGER NOT NULL, "
    "state TEXT NOT NULL, digest TEXT, PRIMARY KEY (project))"
)
_EVENT_COLUMNS = "seq, project, version, type, at, by_actor, on_behalf_of, command_id, payload"
_INDEXES = (
    "CREATE INDEX events_by_actor ON events (by_actor) WHERE by_actor IS NOT NULL",
    "CREATE INDEX events_by_principal ON events (on_behalf_of) WHERE on_behalf_of IS NOT NULL",
)


def to_version_8(connection: Any, dialect: Dialect) -> None:
    """Rewrite a current store's events and snapshots as schema version 8 kept them, and
    record version 8. ``connection`` is a sqlite3 or psycopg connection (autocommit, its
    search path on the store's schema)."""
    p = "?" if dialect == "sqlite" else "%s"
    # Schema version 10's column of the token table (counties are version 9's: its step takes a
    # table that has the county column already).
    columns = (
        {row[1] for row in connection.execute("PRAGMA table_info(api_tokens)")}
        if dialect == "sqlite"
        else {
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'api_tokens' AND table_schema = current_schema()"
            )
        }
    )
    if "county" in columns:
        connection.execute("ALTER TABLE api_tokens DROP COLUMN county")
    events = connection.execute(
        f"SELECT {_EVENT_COLUMNS}, hash FROM events ORDER BY project, version"
    ).fetchall()
    snapshots = connection.execute("SELECT project, version, state, digest FROM snapshots")
    snapshots = snapshots.fetchall()
    rows, project, previous = [], None, GENESIS
    for *event, digest in events:
        if event[1] != project:
            project, previous = event[1], GENESIS
        rows.append((*event, bytes(digest).hex(), previous))
        previous = bytes(digest).hex()
    if dialect == "sqlite":
        connection.execute("DROP TABLE events")
        connection.execute(_V8_EVENTS)
        for statement in _INDEXES:
            connection.execute(statement)
        connection.execute("DROP TABLE snapshots")
        connection.execute(_V8_SNAPSHOTS)
    else:
        connection.execute("DELETE FROM events")
        connection.execute(
            "ALTER TABLE events ALTER COLUMN hash TYPE TEXT USING '', ADD COLUMN prev_hash TEXT"
        )
        connection.execute("DELETE FROM snapshots")
        connection.execute("ALTER TABLE snapshots ALTER COLUMN state TYPE TEXT USING ''")
    for row in rows:
        connection.execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}, hash, prev_hash) VALUES "
            f"({', '.join([p] * 11)})",
            row,
        )
    if dialect == "postgresql":
        connection.execute("ALTER TABLE events ALTER COLUMN prev_hash SET NOT NULL")
    for project_id, version, state, digest in snapshots:
        connection.execute(
            f"INSERT INTO snapshots (project, version, state, digest) VALUES ({p}, {p}, {p}, {p})",
            (project_id, version, zlib.decompress(bytes(state)).decode("utf-8"), digest),
        )
    connection.execute("UPDATE meta SET schema_version = 8")
