"""Archives of finished projects beyond the conformance suite's (``ArchiveConformance``): the
upgrade of a version-12 store (migrations 13 and 14), the ``store archive`` command, and
PostgreSQL's archive partitions, detached and verified on their own (issue 17, D265-D272)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from approvalflow.cli import main
from approvalflow.stores import schema
from approvalflow.stores.audit import verify_store
from approvalflow.testing.store_conformance import ArchiveConformance

_FINISHED = ("P1", "P2", "P3")


def _engine(store: Any) -> Any:
    return ArchiveConformance()._projects(store)


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        from approvalflow.stores.sqlite import SQLiteStore

        store: Any = SQLiteStore(tmp_path / "archive.db")
        try:
            yield store
        finally:
            store.close()
    else:
        from approvalflow.stores.postgres import PostgresStore

        url = request.getfixturevalue("postgres_url")
        store = PostgresStore.from_url(url, schema=f"t_{uuid.uuid4().hex[:16]}")
        try:
            yield store
        finally:
            store.drop()


def _execute(store: Any, statements: list[str]) -> None:
    """Run ``statements`` on the store's connection behind its back, as the tables' owner."""
    with store._lock:
        connection = store._connection
        if store._sql.dialect == "postgresql":
            connection.execute("RESET ROLE")
            store._session[0] = None
        for statement in statements:
            connection.execute(statement)
        if store._sql.dialect == "sqlite":
            connection.commit()


def _reopened(store: Any, *, migrate: bool) -> Any:
    """Another store object on the same file or schema."""
    if store._sql.dialect == "sqlite":
        from approvalflow.stores.sqlite import SQLiteStore

        return SQLiteStore(store.path, migrate=migrate)
    from approvalflow.stores.postgres import PostgresStore

    return PostgresStore(store._conninfo, schema=store.schema, migrate=migrate)


class TestMigration14:
    def test_a_version_12_store_is_upgraded_and_archives(self, sql_store: Any) -> None:
        """Migrations 13 and 14 on a store as version 12 left it: its projects read as before, and
        its finished ones can then be archived and verified."""
        engine = _engine(sql_store)
        before = {p: engine.history(p) for p in engine.project_ids()}
        _execute(
            sql_store,
            [
                "DROP TABLE IF EXISTS archive_actors",
                "DROP TABLE archives",
                "ALTER TABLE projects DROP COLUMN archive",
                "UPDATE meta SET schema_version = 12",
            ],
        )
        with pytest.raises(schema.SchemaVersionError, match="version 12"):
            _reopened(sql_store, migrate=False)
        upgraded = _reopened(sql_store, migrate=True)
        try:
            new = ArchiveConformance()._archive_engine(upgraded)
            assert {p: new.history(p) for p in new.project_ids()} == before
            for project in _FINISHED:
                new.archive(project, "2026_q1")
            assert {p: new.history(p) for p in new.project_ids()} == before
            assert [upgraded.archive_of(p) for p in ("P1", "P4")] == ["2026_q1", None]
            assert verify_store(upgraded, timers_for=new.timers_for).ok
        finally:
            upgraded.close()


class TestArchiveCommand:
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        from approvalflow.stores.sqlite import SQLiteStore

        with SQLiteStore(tmp_path / "cli.db") as store:
            _engine(store)
        return f"sqlite:///{tmp_path / 'cli.db'}"

    def test_named_projects_are_archived(self, url: str, capsys: Any, tmp_path: Path) -> None:
        assert main(["store", "archive", "P1", "P3", "--name", "2026_q1", "--store", url]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "archived P1 into 2026_q1",
            "archived P3 into 2026_q1",
        ]
        with sqlite3.connect(tmp_path / "cli.db") as raw:
            assert raw.execute("SELECT project FROM archives ORDER BY project").fetchall() == [
                ("P1",),
                ("P3",),
            ]
            assert raw.execute("SELECT count(*) FROM events WHERE project = 'P1'").fetchone() == (
                0,
            )
        assert main(["audit", "verify", "--store", url]) == 0

    def test_a_project_not_finished_fails_saying_why(self, url: str, capsys: Any) -> None:
        assert main(["store", "archive", "P1", "P5", "--name", "2026_q1", "--store", url]) == 1
        captured = capsys.readouterr()
        assert captured.out == "archived P1 into 2026_q1\n"
        assert "approvalflow: P5 is at approved: only a finished project" in captured.err
        assert main(["store", "archive", "P1", "--name", "2026_q2", "--store", url]) == 1
        assert "archived already (archive 2026_q1)" in capsys.readouterr().err

    def test_finished_archives_every_finished_project(self, url: str, capsys: Any) -> None:
        assert main(["store", "archive", "--finished", "--name", "2026_q1", "--store", url]) == 0
        assert capsys.readouterr().out == "archived 3 project(s) into 2026_q1; 2 not finished\n"
        assert main(["store", "archive", "--finished", "--name", "2026_q1", "--store", url]) == 0
        assert capsys.readouterr().out == "archived 0 project(s) into 2026_q1; 2 not finished\n"

    @pytest.mark.parametrize(
        "arguments, message",
        [
            (["--name", "2026-Q1", "P1"], "--name: archive name '2026-Q1' is not one"),
            (["--name", "q1"], "name the projects to archive, or give --finished"),
            (["--name", "q1", "--finished", "P1"], "name the projects to archive"),
        ],
    )
    def test_usage_errors(self, url: str, capsys: Any, arguments: list[str], message: str) -> None:
        assert main(["store", "archive", *arguments, "--store", url]) == 2
        assert message in capsys.readouterr().err

    @pytest.mark.parametrize(
        "table, message",
        [
            ("archives_nowhere", "--table: the store holds no table 'archives_nowhere'"),
            ("events", "--table: 'events' is not an archive table"),
        ],
    )
    def test_verify_archive_names_a_table_it_cannot_read(
        self, url: str, capsys: Any, table: str, message: str
    ) -> None:
        """A wrong ``--table`` is a usage error saying why (exit 2), not a database error."""
        assert main(["audit", "verify-archive", "--store", url, "--table", table]) == 2
        captured = capsys.readouterr()
        assert message in captured.err and "Traceback" not in captured.err


class TestPartitions:
    """PostgreSQL keeps each archive in a partition of ``archives`` (D271): detached, it is a
    table ``audit verify-archive`` checks on its own (D272); attached again, the store verifies
    as before."""

    @pytest.fixture
    def pg(self, postgres_url: str) -> Iterator[Any]:
        from approvalflow.stores.postgres import PostgresStore

        store = PostgresStore.from_url(postgres_url, schema=f"t_{uuid.uuid4().hex[:16]}")
        try:
            yield store
        finally:
            store.drop()

    def _url(self, store: Any, postgres_url: str) -> str:
        return f"{postgres_url}?schema={store.schema}"

    def test_a_detached_archive_verifies_alone_and_the_store_again_once_attached(
        self, pg: Any, postgres_url: str, tmp_path: Path, capsys: Any
    ) -> None:
        from approvalflow.errors import StoreError
        from approvalflow.stores.checkpoints import SealKey, load_key, seal

        engine = _engine(pg)
        for project in _FINISHED:
            engine.archive(project, "2026_q1")
        key_file = tmp_path / "seal.key"
        key_file.write_bytes(b"k" * 32)
        key: SealKey = load_key(key_file)
        checkpoint = seal(pg, key)
        (tmp_path / "cp.json").write_text(checkpoint.to_json(), encoding="utf-8")
        history = engine.history("P1")
        _execute(pg, ["ALTER TABLE archives DETACH PARTITION archives_2026_q1"])
        # The store says what is missing, and reads none of it.
        findings = {(f.project, f.what) for f in verify_store(pg).findings}
        assert findings == {(p, "chain") for p in _FINISHED}
        with pytest.raises(StoreError, match="detached archive"):
            engine.history("P1")
        # The detached table alone: every pack, its head, and the sealed heads.
        url = self._url(pg, postgres_url)
        arguments = ["audit", "verify-archive", "--store", url, "--table", "archives_2026_q1"]
        sealed = [*arguments, "--checkpoint", str(tmp_path / "cp.json"), "--key-file"]
        assert main([*sealed, str(key_file)]) == 0
        out = capsys.readouterr().out
        assert "OK: 3 archived projects" in out and "anchored: checkpoint" in out
        # Tampered while detached: caught there.
        _execute(
            pg,
            [
                "UPDATE archives_2026_q1 SET pack = substr(pack, 1, 40) WHERE project = 'P2'",
            ],
        )
        assert main(arguments) == 1
        assert "P2 of county default, its archive pack" in capsys.readouterr().out
        _execute(
            pg,
            [
                "ALTER TABLE archives ATTACH PARTITION archives_2026_q1 FOR VALUES IN ('2026_q1')",
            ],
        )
        assert {f.project for f in verify_store(pg).findings} == {"P2"}
        assert engine.history("P1") == history
        assert main(["audit", "verify", "--store", url, "--key-file", str(key_file)]) == 1
        assert "P2, its archive pack" in capsys.readouterr().out

    def test_each_archive_is_a_partition_of_its_own(self, pg: Any) -> None:
        engine = _engine(pg)
        engine.archive("P1", "2026_q1")
        engine.archive("P3", "2026_q2")
        with pg._lock:
            pg._connection.execute("RESET ROLE")
            pg._session[0] = None
            rows = pg._connection.execute(
                "SELECT c.relname, count(a.project) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid "
                "LEFT JOIN archives a ON a.tableoid = c.oid "
                "WHERE i.inhparent = 'archives'::regclass GROUP BY 1 ORDER BY 1"
            ).fetchall()
        assert rows == [("archives_2026_q1", 1), ("archives_2026_q2", 1)]
