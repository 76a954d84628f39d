"""Counties in one SQL store: PostgreSQL's row-level security as the second wall, the migration
of a schema-8 store to counties, and the audit and rebuilds over several counties.

The isolation of every ``Store`` method is the conformance suite's (``CountyConformance``, run
for every backend); this module holds what only a real database shows.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import County
from conftest import POSTGRES_URL
from layouts import to_version_8

from approvalflow.stores import schema
from approvalflow.stores.audit import verify_store
from approvalflow.stores.base import DEFAULT_COUNTY
from approvalflow.stores.sqlite import SQLiteStore
from approvalflow.testing.store_conformance import (
    COUNTY_A,
    COUNTY_B,
    T0,
    _fill_county,
)


def _schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


def _raw_postgres(schema_name: str) -> Any:
    """A superuser's connection to ``schema_name``, outside any store (it passes every
    row-level policy)."""
    import psycopg

    connection = psycopg.connect(POSTGRES_URL, autocommit=True)
    connection.execute("SELECT set_config('search_path', %s, false)", (schema_name,))
    return connection


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Any]:
    from approvalflow.stores.postgres import PostgresStore

    store = PostgresStore.from_url(postgres_url, schema=_schema())
    yield store
    store.drop()


def _two_counties(store: Any) -> tuple[Any, Any]:
    a, b = store.for_county(COUNTY_A), store.for_county(COUNTY_B)
    _fill_county(a, COUNTY_A, ["P1"], T0 + timedelta(days=2))
    _fill_county(b, COUNTY_B, ["P1", "PB"], T0 + timedelta(days=1))
    for view in (a, b):
        view.save_checkpoint("2026-07-06T01:00:00+00:00", "d" * 64, "{}")
    return a, b


class TestRowLevelSecurity:
    """The county views filter every statement themselves; PostgreSQL's policies hold even a
    statement that forgot to: the store works as a role that owns no table, under a setting
    naming its county."""

    def test_an_unfiltered_select_under_one_county_sees_no_row_of_another(
        self, pg_store: Any
    ) -> None:
        a, _ = _two_counties(pg_store)
        with _raw_postgres(pg_store.schema) as raw:
            for table in schema.COUNTY_TABLES:
                counties = {row[0] for row in raw.execute(f"SELECT county FROM {table}")}
                assert COUNTY_B in counties, table  # B has rows in every table
        a.project_ids()  # the connection is A's now
        connection = a._connection
        assert connection.execute("SELECT current_user").fetchone() == (schema.COUNTY_ROLE,)
        for table in schema.COUNTY_TABLES:
            rows = connection.execute(f"SELECT county FROM {table}").fetchall()
            assert rows, table
            assert {row[0] for row in rows} == {COUNTY_A}, table
            # Neither changes nor deletes reach B's rows.
            connection.execute(f"UPDATE {table} SET county = county WHERE county = %s", (COUNTY_B,))
            connection.execute(f"DELETE FROM {table} WHERE county = %s", (COUNTY_B,))
        with _raw_postgres(pg_store.schema) as raw:
            for table in schema.COUNTY_TABLES:
                assert raw.execute(
                    f"SELECT count(*) FROM {table} WHERE county = %s", (COUNTY_B,)
                ).fetchone() != (0,), table

    def test_a_row_of_another_county_is_refused_under_one_county(self, pg_store: Any) -> None:
        import psycopg

        a, b = _two_counties(pg_store)
        before = b.events("PB")
        a.project_ids()
        connection = a._connection
        attempts = [
            "INSERT INTO events (county, project, version, type, at, payload, hash) "
            f"VALUES ('{COUNTY_B}', 'PB', 99, 'x', 'now', '{{}}', '\\x00')",
            f"INSERT INTO projects (county, project, version) VALUES ('{COUNTY_B}', 'PX', 1)",
            "INSERT INTO timers (project, kind, branch, due_us, due_at) "
            "VALUES ('PX', 'k', '', 0, 'now')",  # the column's default: still not A's
            f"UPDATE events SET county = '{COUNTY_B}' WHERE project = 'P1'",
        ]
        for statement in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                connection.execute(statement)
        assert b.events("PB") == before
        assert b.project_ids() == ["P1", "PB"]
        assert [e.version for e in a.events("P1")] == list(range(1, 16))

    def test_a_connection_without_a_county_sees_nothing(self, pg_store: Any) -> None:
        a, b = _two_counties(pg_store)
        with pg_store._lock:
            a.project_ids()
            connection = a._connection
            connection.execute(f"RESET {schema.COUNTY_SETTING}")
            try:
                assert connection.execute("SELECT count(*) FROM events").fetchone() == (0,)
            finally:
                a._session[0] = None  # the store sets it again at its next statement
        assert b.project_ids() == ["P1", "PB"]

    def test_the_tables_are_forced_under_the_policy(self, pg_store: Any) -> None:
        with _raw_postgres(pg_store.schema) as raw:
            rows = raw.execute(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                (pg_store.schema,),
            ).fetchall()
        forced = {name for name, enabled, force in rows if enabled and force}
        archives = {table.name for table in schema.archive_tables("postgresql")}
        assert forced == set(schema.COUNTY_TABLES) | archives


# -- a store of schema version 8, migrated -------------------------------------------------------


def _v8_statements(dialect: schema.Dialect) -> list[str]:
    """The DDL of schema version 8, as a store made by that version has it."""
    return [
        *(schema._table_ddl(table, dialect) for table in schema.V8_TABLES),
        *(schema._index_ddl(index) for index in schema.V8_INDEXES),
        "INSERT INTO meta (id, schema_version) VALUES (1, 8)",
    ]


def _columns(table: schema.Table) -> str:
    return ", ".join(column.name for column in table.columns)


def _county(store: Any) -> County:
    """A county with projects in several stages, an open pre-review, notices and a command id."""
    county = County(store=store)
    county.to_approval("P1")
    county.to_pre_review("P2")
    county.do("report_funds", "P1", "guo", amount="1亿", command_id="funds-1")
    return county


def _figures(county: County) -> dict[str, Any]:
    engine = county.engine
    return {
        "ids": engine.store.project_ids(),
        "shown": [engine.project(p).stage for p in ("P1", "P2")],
        "events": [engine.store.events(p) for p in ("P1", "P2")],
        "tasks": [engine.tasks(a) for a in ("o_fgw", "r_gxj", "guo")],
        "metrics": engine.metrics(),
        "points": engine.points(),
        "command": engine.store.command("funds-1"),
        "timers": [engine.store.timers(p) for p in ("P1", "P2")],
    }


def _migrated_checks(county: County, before: dict[str, Any], store: Any) -> None:
    county.engine.store = store
    assert _figures(county) == before
    assert store.counties() == [DEFAULT_COUNTY]
    default = store.for_county(DEFAULT_COUNTY)
    assert default.project_ids() == ["P1", "P2"]
    report = verify_store(store, timers_for=county.engine._rules.timers_for)
    assert report.ok, report.findings
    # The migrated store takes commands, and new counties beside the default one.
    county.do("accept", "P1", "o_fgw", command_id="accept-fgw")
    other = County(store=store.for_county(COUNTY_A))
    other.create("P1")
    assert store.counties() == [DEFAULT_COUNTY, COUNTY_A]
    theirs, ours = other.engine.project("P1"), county.engine.project("P1")
    assert theirs.version < ours.version
    assert county.engine.project("P1").stage == "approval"
    assert verify_store(store).ok


class TestMigrationFromVersion8:
    def test_a_version_8_sqlite_file_moves_to_the_default_county(self, tmp_path: Path) -> None:
        source = tmp_path / "now.db"
        county = _county(SQLiteStore(source))
        before = _figures(county)
        county.engine.store.close()
        # The current store's rows in schema 8's format first (hex hashes, JSON snapshots).
        source_connection = sqlite3.connect(source, isolation_level=None)
        try:
            to_version_8(source_connection, "sqlite")
        finally:
            source_connection.close()
        path = tmp_path / "v8.db"
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            for statement in _v8_statements("sqlite"):
                connection.execute(statement)
            connection.execute("ATTACH DATABASE ? AS now", (str(source),))
            for table in schema.V8_TABLES:
                if table.name != "meta":
                    columns = _columns(table)
                    connection.execute(
                        f"INSERT INTO {table.name} ({columns}) SELECT {columns} "
                        f"FROM now.{table.name}"
                    )
            connection.execute("DETACH DATABASE now")
            assert connection.execute("SELECT count(*) FROM events").fetchone()[0] > 20
        finally:
            connection.close()
        with pytest.raises(schema.SchemaVersionError, match="version 8"):
            SQLiteStore(path, migrate=False)
        store = SQLiteStore(path)
        try:
            row = store._connection.execute("SELECT schema_version FROM meta").fetchone()
            assert row == (schema.SCHEMA_VERSION,)
            sql = store._connection.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'events'"
            ).fetchone()[0]
            assert "UNIQUE (county, project, version)" in sql
            _migrated_checks(county, before, store)
        finally:
            store.close()

    def test_a_version_8_postgres_schema_moves_to_the_default_county(
        self, postgres_url: str
    ) -> None:
        from approvalflow.stores.postgres import PostgresStore

        now, old = _schema(), _schema()
        county = _county(PostgresStore.from_url(postgres_url, schema=now))
        before = _figures(county)
        county.engine.store.close()
        try:
            with _raw_postgres(now) as raw:
                to_version_8(raw, "postgresql")
            with _raw_postgres(old) as raw:
                raw.execute(f"CREATE SCHEMA {old}")
                raw.execute("SELECT set_config('search_path', %s, false)", (old,))
                for statement in _v8_statements("postgresql"):
                    raw.execute(statement)
                for table in schema.V8_TABLES:
                    if table.name != "meta":
                        columns = _columns(table)
                        raw.execute(
                            f"INSERT INTO {old}.{table.name} ({columns}) "
                            f"SELECT {columns} FROM {now}.{table.name}"
                        )
                for table, column in (
                    ("events", "seq"),
                    ("projects", "created_seq"),
                    ("outbox", "created_seq"),
                ):
                    raw.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
                    )
            store = PostgresStore.from_url(postgres_url, schema=old)
            try:
                _migrated_checks(county, before, store)
                with _raw_postgres(old) as raw:
                    keys = {
                        name: definition
                        for name, definition in raw.execute(
                            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE connamespace = %s::regnamespace",
                            (old,),
                        )
                    }
                assert keys["events_county_project_version_key"] == (
                    "UNIQUE (county, project, version)"
                )
                assert keys["task_rows_pkey"].startswith("PRIMARY KEY (county, party,")
                assert "events_project_version_key" not in keys
            finally:
                store.drop()
        finally:
            PostgresStore.from_url(postgres_url, schema=now).drop()


class TestCountiesInTheAuditAndRebuilds:
    @pytest.fixture(params=["sqlite", "postgres"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
        if request.param == "sqlite":
            store: Any = SQLiteStore(tmp_path / "store.db")
            yield store
            store.close()
        else:
            request.getfixturevalue("postgres_url")
            from approvalflow.stores.postgres import PostgresStore

            store = PostgresStore.from_url(POSTGRES_URL, schema=_schema())
            yield store
            store.drop()

    def test_the_unscoped_audit_goes_through_every_county(self, store: Any) -> None:
        a, b = _two_counties(store)
        report = verify_store(store)
        assert report.ok, report.findings
        assert report.projects == 3
        assert verify_store(a).projects == 1
        # An edit to B's event is found, named as B's, and only by B's audit.
        with store._lock:
            b.project_ids()  # PostgreSQL: the connection is B's (autocommit, both)
            b._connection.execute(
                "UPDATE events SET by_actor = 'mallory' WHERE county = "
                f"'{COUNTY_B}' AND project = 'PB' AND version = 3"
            )
        findings = verify_store(store).findings
        assert findings and {(f.county, f.project) for f in findings} == {(COUNTY_B, "PB")}
        assert "of county jiaocheng" in str(findings[0])
        assert verify_store(a).ok
        assert not verify_store(b).ok

    def test_rebuilding_the_projections_keeps_every_county_s(self, store: Any) -> None:
        a, b = _two_counties(store)
        figures = [
            (v.metric_inputs(), v.milestone_points(), v.team_metric_inputs()) for v in (a, b)
        ]
        store.rebuild_projections()
        assert [
            (v.metric_inputs(), v.milestone_points(), v.team_metric_inputs()) for v in (a, b)
        ] == figures


def test_an_engine_for_a_bad_county_is_refused_and_one_for_a_county_says_which() -> None:
    from approvalflow import Engine
    from approvalflow.errors import InvalidCounty
    from approvalflow.stores import MemoryStore

    store = MemoryStore()
    with pytest.raises(InvalidCounty, match="'Huguan' is not one"):
        Engine(actors=[], store=store, county="Huguan")
    assert Engine(actors=[], store=store, county=COUNTY_A).county == COUNTY_A
    assert Engine(actors=[], store=store).county is None
    assert store.counties() == []
