"""Reading never creates: a store is created (``init_store``) and migrated (``migrate_store``)
only when asked, and a missing one is ``StoreNotFound`` with the way to create it. Also the
store's record of the plugins an engine wrote with."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import County
from layouts import to_version_8

from approvalflow.errors import ApprovalflowError
from approvalflow.stores import (
    MemoryStore,
    StoreNotFound,
    init_store,
    migrate_store,
    open_store,
)
from approvalflow.stores.schema import SCHEMA_VERSION, SchemaVersionError
from approvalflow.testing.store_conformance import append, new_project

# What schema version 5 added, taken away again: a store as version 4 left it (its
# project_summaries hold 64-bit amounts only, which version 5 keeps as they are).
_V4_DOWNGRADE = (
    "DROP TABLE plugins",
    "ALTER TABLE snapshots DROP COLUMN digest",  # schema version 8
    "UPDATE meta SET schema_version = 4",
)


class TestSQLite:
    def test_reading_a_missing_file_creates_nothing(self, tmp_path: Path) -> None:
        """``open_store`` on a file that is not there (a typo) is refused, naming the file and
        the command that creates it, and leaves no file behind."""
        path = tmp_path / "typo.db"
        with pytest.raises(StoreNotFound, match=r"typo\.db.*approvalflow store init") as caught:
            open_store(f"sqlite:///{path}")
        assert isinstance(caught.value, ApprovalflowError)
        assert not path.exists()
        assert list(tmp_path.iterdir()) == []

    def test_a_file_without_the_schema_is_not_a_store_and_is_left_alone(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "empty.db"
        path.write_bytes(b"")
        with pytest.raises(StoreNotFound, match=r"empty\.db"):
            open_store(f"sqlite:///{path}")
        assert path.read_bytes() == b""

    def test_init_creates_once_and_then_the_store_opens(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'new.db'}"
        assert init_store(url) is True
        assert init_store(url) is False
        with open_store(url) as store:  # type: ignore[attr-defined]
            new_project(store, "P1")
        assert init_store(url) is False
        with open_store(url) as store:  # type: ignore[attr-defined]
            assert store.project_ids() == ["P1"]

    def test_an_older_schema_is_migrated_only_when_asked(self, tmp_path: Path) -> None:
        path = tmp_path / "v4.db"
        url = f"sqlite:///{path}"
        with open_store(url, create=True) as store:  # type: ignore[attr-defined]
            state = new_project(store, "P1")
            append(store, state, [("funds_reported", {"amount": 7})])
        connection = sqlite3.connect(path, isolation_level=None)
        to_version_8(connection, "sqlite")
        for statement in _V4_DOWNGRADE:
            connection.execute(statement)
        connection.close()
        with pytest.raises(SchemaVersionError, match=r"version 4.*approvalflow store migrate"):
            open_store(url)
        with pytest.raises(SchemaVersionError, match="store migrate"):
            init_store(url)
        assert _sqlite_version(path) == 4
        assert migrate_store(url) == (4, SCHEMA_VERSION)
        assert migrate_store(url) == (SCHEMA_VERSION, SCHEMA_VERSION)
        with open_store(url) as store:  # type: ignore[attr-defined]
            assert store.metric_inputs().funds == 7
            assert store.recorded_plugins() == ()
            store.record_plugins(["console"])
            assert store.recorded_plugins() == ("console",)

    def test_an_in_memory_database_is_always_new(self) -> None:
        store = open_store("sqlite:///:memory:")
        try:
            assert store.project_ids() == []
        finally:
            store.close()

    def test_migrating_a_missing_store_creates_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(StoreNotFound):
            migrate_store(f"sqlite:///{tmp_path / 'none.db'}")
        assert list(tmp_path.iterdir()) == []


def _sqlite_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT schema_version FROM meta").fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A URL naming a schema that does not exist yet, and the schema's name (dropped after)."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    separator = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{separator}schema={name}", name
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _pg(postgres_url: str, query: str, *params: Any) -> Any:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        return connection.execute(query, params).fetchall()


class TestPostgres:
    def test_reading_a_missing_schema_creates_nothing(
        self, pg_url: tuple[str, str], postgres_url: str
    ) -> None:
        url, name = pg_url
        with pytest.raises(StoreNotFound, match=rf"schema {name}.*approvalflow store init"):
            open_store(url)
        assert _pg(postgres_url, "SELECT 1 FROM pg_namespace WHERE nspname = %s", name) == []

    def test_init_creates_once_and_then_the_store_opens(self, pg_url: tuple[str, str]) -> None:
        url, _ = pg_url
        assert init_store(url) is True
        assert init_store(url) is False
        store = open_store(url)
        try:
            new_project(store, "P1")
            assert store.project_ids() == ["P1"]
        finally:
            store.close()

    def test_an_older_schema_is_migrated_only_when_asked(
        self, pg_url: tuple[str, str], postgres_url: str
    ) -> None:
        url, name = pg_url
        store = open_store(url, create=True)
        state = new_project(store, "P1")
        append(store, state, [("funds_reported", {"amount": 7})])
        store.close()
        import psycopg

        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute("SELECT set_config('search_path', %s, false)", (name,))
            connection.execute(
                "ALTER TABLE project_summaries ALTER COLUMN funds TYPE BIGINT, "
                "ALTER COLUMN agreed_investment TYPE BIGINT"
            )
            to_version_8(connection, "postgresql")
            for statement in _V4_DOWNGRADE:
                connection.execute(statement)
        with pytest.raises(SchemaVersionError, match=r"version 4.*approvalflow store migrate"):
            open_store(url)
        assert migrate_store(url) == (4, SCHEMA_VERSION)
        store = open_store(url)
        try:
            assert store.metric_inputs().funds == 7
            assert store.recorded_plugins() == ()
        finally:
            store.close()
        types = _pg(
            postgres_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'project_summaries' "
            "AND column_name IN ('funds', 'agreed_investment') ORDER BY column_name",
            name,
        )
        assert types == [("agreed_investment", "numeric"), ("funds", "numeric")]


class TestRecordedPlugins:
    def test_an_engine_records_its_entry_point_plugins_with_its_first_commit(self) -> None:
        """What a process opening the store without naming plugins will use: the entry-point
        names of the engine that wrote (plugin objects have no name to load them by)."""
        store = MemoryStore()
        county = County(store=store, plugins=["console"])
        assert store.recorded_plugins() == ()
        county.create("P1")
        assert store.recorded_plugins() == ("console",)

    def test_an_engine_without_plugins_records_none(self) -> None:
        store = MemoryStore()
        County(store=store).create("P1")
        assert store.recorded_plugins() == ()
