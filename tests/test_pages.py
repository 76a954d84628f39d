"""The workbench's heavy pages read indexes and counts kept by the commits (issue 16): the
late board from the task rows' groups (``Store.due_task_groups``), the metrics page from the
team × month counts (``Store.team_month_counts``); the answers are the slow paths'."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import County
from test_tasks import SMALL, drive

from approvalflow.rules.holdups import late_items, late_summary
from approvalflow.stores import schema
from approvalflow.stores.sqlite import SQLiteStore


def _no_rows(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("the late board read every due row")


class TestTheLateBoardReadsGroups:
    @pytest.mark.usefixtures("every_store")
    def test_the_summary_is_counted_by_group_and_names_the_first_items(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Three projects late on one deadline make one group of review rows: the board
        counts them without fetching a row each, and names the first by project, as the
        states say."""
        county = County(settings=SMALL)
        drive(county)
        for project in ("P5", "P6"):
            county.create(project)
            county.do("negotiate", project, "guo")
            county.do("submit_pre_review", project, "guo", materials=[])
        engine = county.engine
        later = county.clock.now() + timedelta(days=60)
        expected = late_items(engine.projects(), engine.rules_for, later)
        monkeypatch.setattr(engine.store, "due_task_rows", _no_rows)
        for limit in (0, 1, 2, 8):
            assert engine.late_summary(later, limit) == late_summary(expected, limit), limit
        first = engine.late_summary(later, 2)["gxj"]
        assert sum(group.count for group in first) == 3
        assert [h.project for group in first for h in group.first] == ["P1", "P5"]

    @pytest.mark.usefixtures("every_store")
    def test_groups_hold_their_count_and_first_rows_by_project(self) -> None:
        county = County(settings=SMALL)
        drive(county)
        later = county.clock.now() + timedelta(days=60)
        groups = county.engine.store.due_task_groups(["review", "accept", "decide"], later, 1)
        assert groups is not None
        assert sorted((g.first[0].kind, g.count, len(g.first)) for g in groups) == [
            ("decide", 1, 1),
            ("decide", 1, 1),
            ("review", 1, 1),
        ]
        assert county.engine.store.due_task_groups([], later, 1) == []


class TestMigrationThirteen:
    def test_a_version_12_store_gets_the_due_index_and_reads_the_same(self, tmp_path: Path) -> None:
        """Step 13 is self-contained: on a version-12 file it adds the index alone, and the
        board reads as before."""
        path = tmp_path / "v12.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        drive(county)
        later = county.clock.now() + timedelta(days=60)
        before = county.engine.late_summary(later, 8)
        county.engine.store.close()
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("DROP INDEX task_rows_due")
            connection.execute("UPDATE meta SET schema_version = 12")
        connection.close()
        store = SQLiteStore(path)
        try:
            names = {
                row[0]
                for row in store._connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index'"
                )
            }
            assert schema.TASK_ROWS_DUE_INDEX.name in names
        finally:
            store.close()
        reopened = County(settings=SMALL, store=SQLiteStore(path))
        try:
            assert reopened.engine.late_summary(later, 8) == before
        finally:
            reopened.engine.store.close()

    def test_the_step_builds_the_index_the_schema_declares(self) -> None:
        """Step 13 writes its index out; it is the one a new store is made with."""
        (step,) = [m for m in schema.MIGRATIONS if m.version == 13]
        (created,) = [s for s in schema.create_statements("sqlite") if "task_rows_due" in s]
        assert step.statements("sqlite") == [created]
        assert step.statements("postgresql") == [created]
