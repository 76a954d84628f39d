"""The workbench's heavy pages read indexes and counts kept by the commits (issue 16): the
late board from the task rows' groups (``Store.due_task_groups``), the metrics page from the
team × month counts (``Store.team_month_counts``); the answers are the slow paths'."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import PROJECT_FIELDS, County
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tasks import SMALL, drive, to_approval, walk

from approvalflow import Engine
from approvalflow.rules import metrics
from approvalflow.rules.holdups import late_items, late_summary
from approvalflow.rules.metrics import TeamMonthCounts
from approvalflow.stores import schema
from approvalflow.stores.projections import DUE_GROUP_COLUMNS
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

    def test_the_due_index_holds_every_grouping_column(self) -> None:
        """The counts and each group's range are read from the index alone: it leads with the
        county and the deadline, holds every column the rows are grouped on, then orders a
        group's rows by project and party."""
        columns = schema.TASK_ROWS_DUE_INDEX.columns
        assert columns[:2] == ("county", "deadline_us")
        assert set(columns[2:-2]) | {"deadline_us"} == set(DUE_GROUP_COLUMNS)
        assert columns[-2:] == ("project", "party")


class TestMigrationFifteen:
    def test_a_version_12_store_gets_the_due_index_and_reads_the_same(self, tmp_path: Path) -> None:
        """Step 15 is self-contained: on a version-12 file (steps 13 to 15 run) it adds its
        index, and the board reads as before."""
        path = tmp_path / "v12.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        drive(county)
        later = county.clock.now() + timedelta(days=60)
        before = county.engine.late_summary(later, 8)
        county.engine.store.close()
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("DROP INDEX task_rows_due")
            connection.execute("DROP INDEX milestones_by_month_kind")
            connection.execute(
                "CREATE INDEX milestones_by_month ON milestones (county, month, team, points)"
            )
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
            assert schema.MILESTONES_BY_MONTH_KIND_INDEX.name in names
            assert "milestones_by_month" not in names
        finally:
            store.close()
        reopened = County(settings=SMALL, store=SQLiteStore(path))
        try:
            assert reopened.engine.late_summary(later, 8) == before
        finally:
            reopened.engine.store.close()

    @pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
    def test_the_step_builds_the_index_and_table_the_schema_declares(
        self, dialect: schema.Dialect
    ) -> None:
        """Step 15 writes its index and table out; they are the ones a new store is made
        with."""
        (step,) = [m for m in schema.MIGRATIONS if m.version == 15]
        made = set(step.statements(dialect))
        created = schema.create_statements(dialect)
        for name in ("task_rows_due", "milestones_by_month_kind", "team_month_counts ("):
            (statement,) = [s for s in created if name in s and not s.startswith("ALTER")]
            assert statement in made
        assert step.rebuild_projections


def _walked(county: County, draw: Any, projects: int, steps: int) -> None:
    """``test_tasks.walk`` with funds reported, withdrawals and terminations on the way (what
    moves a project's counts beside its milestones)."""
    moves: list[tuple[str, str, Mapping[str, Any]]] = [
        ("report_funds", "guo", {"amount": 3_000_000}),
        ("withdraw", "fuyuan", {"reason": "另择他处"}),
        ("terminate", "huang", {"reason": "不再推进"}),
        ("start_construction", "guo", {}),
        ("start_production", "guo", {}),
    ]
    walk(county, draw, projects, steps, moves=moves)


def same_counts_as_the_states(engine: Engine) -> None:
    """The counts the commits kept are the ones every project's state gives, and add up to
    the metrics the slow paths give: a team's over every month, and each month's cohort."""
    states = engine.projects()
    counts = engine.team_month_counts()
    assert counts == metrics.team_month_counts(states)
    teams: dict[str, TeamMonthCounts] = {}
    months: dict[str, dict[str, TeamMonthCounts]] = {}
    for (team, month), found in counts.items():
        teams[team] = teams.get(team, TeamMonthCounts()) + found
        if month is not None:
            months.setdefault(month, {})[team] = found
    slow = engine.team_metric_inputs()
    assert set(teams) == set(slow)
    for team, inputs in slow.items():
        figures = teams[team].figures()
        expected = metrics.metrics_from_inputs(inputs, engine.calendar)
        assert {k: figures[k] for k in _SHARED} == {k: expected[k] for k in _SHARED}, team
    for month, by_team in months.items():
        cohort = engine.team_metric_inputs(month=month)
        assert set(by_team) == set(cohort), month
        for team, inputs in cohort.items():
            expected = metrics.metrics_from_inputs(inputs, engine.calendar)
            figures = by_team[team].figures()
            assert {k: figures[k] for k in _SHARED} == {k: expected[k] for k in _SHARED}


_SHARED = (
    "signed_count",
    "signed_amount",
    "start_rate",
    "production_rate",
    "funds_in_place",
    "funds_rate",
)


class TestTeamMonthCounts:
    @pytest.mark.usefixtures("every_store")
    @settings(
        max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data(), projects=st.integers(1, 3), steps=st.integers(10, 80))
    def test_the_counts_are_the_states_on_a_walk(
        self, data: Any, projects: int, steps: int
    ) -> None:
        county = County(settings=SMALL)
        _walked(county, data.draw, projects, steps)
        same_counts_as_the_states(county.engine)

    @pytest.mark.usefixtures("every_store")
    def test_two_teams_signed_in_two_months_are_four_rows(self) -> None:
        """Counts move with signing, funds, construction and a termination; each team and
        month is its own row, and a project not signed counts under ``None``."""
        county = County(settings=SMALL)
        for project in ("P1", "P2"):
            county.create(project)
            to_approval(county, project)
            county.advance(timedelta(days=40))
        county.engine.execute(
            "create",
            "Q1",
            "any_recruiter",
            {**PROJECT_FIELDS, "team": "new_energy", "name": "新能源"},
        )
        county.do("report_funds", "P1", "guo", amount=5_000_000)
        county.do("terminate", "P2", "huang", reason="不再推进")
        engine = county.engine
        counts = engine.team_month_counts()
        months = [month for (_, month) in counts]
        assert len(set(months) - {None}) == 2
        (p1_month, p2_month) = sorted(m for m in months if m is not None)
        assert counts[("light_alloy", p1_month)].figures()["funds_in_place"] == 5_000_000
        assert counts[("light_alloy", p2_month)].figures()["fulfilment_rate"] == 0
        assert counts[("light_alloy", p1_month)].figures()["fulfilment_rate"] == 1
        assert counts[("new_energy", None)] == TeamMonthCounts(projects=1)
        same_counts_as_the_states(engine)

    def test_a_commit_from_a_state_the_store_did_not_keep_adds_its_difference(
        self, tmp_path: Path
    ) -> None:
        """A store that keeps no state (``cache_size=0``) reads the state a commit starts
        from, so the counts add what the commit changed, not the project again."""
        store = SQLiteStore(tmp_path / "uncached.db", cache_size=0)
        county = County(settings=SMALL, store=store)
        try:
            county.create("P1")
            to_approval(county, "P1")
            county.do("report_funds", "P1", "guo", amount=2_000_000)
            county.do("report_funds", "P1", "guo", amount=1_000_000)
            same_counts_as_the_states(county.engine)
            ((_, found),) = list(county.engine.team_month_counts().items())
            assert found.projects == 1 and found.funds == 3_000_000
        finally:
            store.close()

    def test_a_sum_past_64_bits_is_read_from_the_states(self, tmp_path: Path) -> None:
        """SQLite adds past 64 bits as a float: the store then declines to answer, and the
        read side counts from the states, exactly."""
        path = tmp_path / "big.db"
        store = SQLiteStore(path)
        county = County(settings=SMALL, store=store)
        try:
            county.create("P1")
            to_approval(county, "P1")
            expected = county.engine.team_month_counts()
            connection = sqlite3.connect(path)
            with connection:  # what adding past 2**63 leaves: a float
                connection.execute("UPDATE team_month_counts SET funds = 9.3e18")
            connection.close()
            assert store.team_month_counts() is None
            assert county.engine.team_month_counts() == expected
        finally:
            store.close()

    def test_a_version_12_store_gets_its_counts_built_by_the_migration(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "v12.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        county.create("P1")
        to_approval(county, "P1")
        county.do("report_funds", "P1", "guo", amount=2_000_000)
        county.create("P2")
        before = county.engine.team_month_counts()
        county.engine.store.close()
        connection = sqlite3.connect(path)
        with connection:
            connection.execute("DROP INDEX task_rows_due")
            connection.execute("DROP TABLE team_month_counts")
            connection.execute("UPDATE meta SET schema_version = 12")
        connection.close()
        reopened = County(settings=SMALL, store=SQLiteStore(path))
        try:
            assert reopened.engine.store.team_month_counts() is not None
            assert reopened.engine.team_month_counts() == before
        finally:
            reopened.engine.store.close()
