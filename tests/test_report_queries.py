"""Reports answered by the store: the same figures as folding every project, on every store;
the schema-version-2 migration that builds the report tables of an existing database; and the
SQL stores' cache of project states."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import County
from layouts import to_version_8

from approvalflow.rules import metrics as metrics_rule
from approvalflow.rules import points as points_rule
from approvalflow.stores import schema
from approvalflow.stores import sql as sql_module
from approvalflow.stores.cache import DEFAULT_CACHE_SIZE
from approvalflow.stores.sqlite import SQLiteStore
from approvalflow.testing.store_conformance import append, new_project

_PROJECTION_TABLES = [table.name for table in schema.PROJECTION_TABLES]


def _fill(county: County) -> None:
    """Projects of three teams in March and April: approved and started, left in approval past
    the departments' limits (their timers fire), signed, and only created."""
    county.to_approval("P1")
    county.advance(timedelta(days=2))
    county.approve_all("P1")
    county.do("start_construction", "P1", "fuyuan")
    county.do("report_funds", "P1", "guo", amount="5亿")
    county.to_signed("P2")
    county.create("P3", by="any_recruiter", team="energy")
    county.do("negotiate", "P3", "any_recruiter")
    county.advance(timedelta(days=20))
    county.to_approval("P4")
    county.advance(timedelta(days=40))  # April: P4's departments run out of time
    county.create("P5", by="any_recruiter", team="chips")
    county.to_signed("P6")  # the one signed in May


def _figures(county: County, ids: list[str] | None = None) -> dict[str, Any]:
    engine = county.engine
    return {
        "points": engine.points(ids),
        "march": engine.points(ids, month="2026-03"),
        "april": engine.points(ids, month="2026-04"),
        "board": engine.leaderboard("2026-04", ids),
        "metrics": engine.metrics(ids),
        "teams": engine.team_metrics(ids),
        "march_metrics": engine.metrics(ids, month="2026-03"),
        "april_teams": engine.team_metrics(ids, month="2026-04"),
        "march_teams": engine.team_metrics(ids, month="2026-03"),
        "may_teams": engine.team_metrics(ids, month="2026-05"),
        "may_signed": engine.signed_in("2026-05", ids),
    }


def _signed_in(states: list[Any], month: str) -> list[Any]:
    return [
        s
        for s in states
        if "signed" in s.milestones and points_rule.milestone_month(s.milestones["signed"]) == month
    ]


def _by_team(states: list[Any], calendar: Any) -> dict[str, Any]:
    by_team: dict[str, list[Any]] = {}
    for state in states:
        by_team.setdefault(state.team, []).append(state)
    return {
        team: metrics_rule.compute_metrics(chosen, calendar)
        for team, chosen in sorted(by_team.items())
    }


def _reference(county: County, ids: list[str] | None = None) -> dict[str, Any]:
    """The figures computed the way the engine did before the stores answered them: from every
    chosen project's state."""
    engine = county.engine
    states = engine.projects(ids)
    by_team: dict[str, list[Any]] = {}
    for state in states:
        by_team.setdefault(state.team, []).append(state)
    return {
        "points": points_rule.points_by_team(states),
        "march": points_rule.points_by_team(states, month="2026-03"),
        "april": points_rule.points_by_team(states, month="2026-04"),
        "board": points_rule.leaderboard(states, "2026-04"),
        "metrics": metrics_rule.compute_metrics(states, engine.calendar),
        "teams": {
            team: metrics_rule.compute_metrics(chosen, engine.calendar)
            for team, chosen in sorted(by_team.items())
        },
        "march_metrics": metrics_rule.compute_metrics(
            _signed_in(states, "2026-03"), engine.calendar
        ),
        "april_teams": _by_team(_signed_in(states, "2026-04"), engine.calendar),
        "march_teams": _by_team(_signed_in(states, "2026-03"), engine.calendar),
        "may_teams": _by_team(_signed_in(states, "2026-05"), engine.calendar),
        "may_signed": sorted(s.id for s in _signed_in(states, "2026-05")),
    }


class TestTheSameFiguresOnEveryStore:
    def test_reports_equal_the_fold_of_every_project(self, every_store: str) -> None:
        """Points, the board, the metrics and the per-team metrics are exactly what folding
        the projects gives (rates as Fractions), over all projects and over chosen ones."""
        county = County()
        _fill(county)
        found = _figures(county)
        assert found == _reference(county)
        assert found["metrics"]["signed_count"] == 4
        assert set(found["teams"]) == {"light_alloy", "energy", "chips"}
        assert found["metrics"]["department_days"]["zj"]["count"] == 1
        assert found["metrics"]["stage_days"]["pre_review"]["count"] == 4
        assert found["march_metrics"]["signed_count"] == 3
        assert found["may_signed"] == ["P6"]
        assert found["april_teams"] == {}
        assert set(found["may_teams"]) == {"light_alloy"}
        assert found["may_teams"]["light_alloy"]["signed_count"] == 1
        # The page's one query: the teams' inputs add up to the county's.
        inputs = county.engine.team_metric_inputs(month="2026-03")
        total = sum(inputs.values(), metrics_rule.MetricInputs())
        assert (
            metrics_rule.metrics_from_inputs(total, county.engine.calendar)
            == (found["march_metrics"])
        )
        with pytest.raises(ValueError, match="YYYY-MM"):
            county.engine.team_metrics(month="2026-3")
        for ids in (["P1"], ["P2", "P3", "nope"], ["P4", "P4"], ["P6", "P1"], []):
            assert _figures(county, ids) == _reference(county, list(dict.fromkeys(ids)))

    def test_plugin_metrics_still_get_the_project_states(self, every_store: str) -> None:
        """A plugin's ``approvalflow_metrics`` hook is given the chosen projects' states."""
        from approvalflow import hookimpl

        class Counting:
            @hookimpl
            def approvalflow_metrics(self, projects: Any, settings: Any) -> dict[str, Any]:
                return {"ids": sorted(p.id for p in projects)}

        county = County(plugins=[Counting()])
        county.create("P1")
        county.create("P2")
        assert county.engine.metrics()["ids"] == ["P1", "P2"]
        assert county.engine.metrics(["P2"])["ids"] == ["P2"]
        assert "ids" not in county.engine.metrics(plugins=False)


# -- the migration to schema version 2 ----------------------------------------------------------


# What version 1 lacked besides the report tables: the outbox's claim columns (version 4).
_V1_DOWNGRADE = [
    *(f"ALTER TABLE outbox DROP COLUMN {column.name}" for column in schema.OUTBOX_CLAIM_COLUMNS),
    *(f"DROP TABLE {table}" for table in _PROJECTION_TABLES),
    "ALTER TABLE snapshots DROP COLUMN digest",  # schema version 8
    "UPDATE meta SET schema_version = 1",
]


def _downgrade_sqlite(path: Path) -> None:
    """Make a current file what version 1 was: no report tables, no outbox claims."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        to_version_8(connection, "sqlite")
        for statement in _V1_DOWNGRADE:
            connection.execute(statement)
    finally:
        connection.close()


class TestMigrationToVersion2:
    def test_a_version_1_sqlite_file_is_migrated_and_reports_the_same(self, tmp_path: Path) -> None:
        """Opening a version-1 file creates the report tables and fills them from every
        project's state in the same transaction: the reports are the same as before."""
        path = tmp_path / "v1.db"
        county = County(store=SQLiteStore(path))
        _fill(county)
        before = _figures(county)
        county.engine.store.close()
        _downgrade_sqlite(path)
        store = SQLiteStore(path)
        try:
            row = store._connection.execute("SELECT schema_version FROM meta").fetchone()
            assert row == (schema.SCHEMA_VERSION,)
            county.engine.store = store
            assert _figures(county) == before == _reference(county)
            counts = [
                store._connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in _PROJECTION_TABLES
            ]
            assert all(counts), counts
            # And commits after the migration keep them up to date.
            county.do("report_funds", "P2", "guo", amount="1亿")
            assert _figures(county) == _reference(county)
        finally:
            store.close()

    def test_a_version_1_postgres_schema_is_migrated_and_reports_the_same(
        self, postgres_url: str
    ) -> None:
        """The same on PostgreSQL."""
        from approvalflow.stores.postgres import PostgresStore

        name = f"t_{uuid.uuid4().hex[:16]}"
        store = PostgresStore.from_url(postgres_url, schema=name)
        try:
            county = County(store=store)
            _fill(county)
            before = _figures(county)
            to_version_8(store._connection, "postgresql")
            for statement in _V1_DOWNGRADE:
                store._connection.execute(statement)
            store.close()
            store = PostgresStore.from_url(postgres_url, schema=name)
            county.engine.store = store
            row = store._connection.execute("SELECT schema_version FROM meta").fetchone()
            assert row == (schema.SCHEMA_VERSION,)
            assert _figures(county) == before == _reference(county)
        finally:
            store.drop()

    def test_rebuild_projections_restores_rows_written_behind_the_store(
        self, tmp_path: Path
    ) -> None:
        """``rebuild_projections`` recomputes every report row from the states."""
        county = County(store=SQLiteStore(tmp_path / "a.db"))
        _fill(county)
        before = _figures(county)
        store = county.engine.store
        store._connection.execute("DELETE FROM intervals")
        store._connection.execute("UPDATE project_summaries SET funds = 0")
        assert _figures(county) != before
        store.rebuild_projections()
        assert _figures(county) == before
        store.close()


# -- the state cache ----------------------------------------------------------------------------


@pytest.fixture
def two_stores(two_sql_stores: tuple[Any, Any]) -> tuple[Any, Any]:
    return two_sql_stores


class TestStateCache:
    def test_another_writer_s_commit_is_seen(self, two_stores: tuple[Any, Any]) -> None:
        """A store never returns its cached state once another connection has committed to
        the project: the version read with the row says so."""
        first, second = two_stores
        state = new_project(first, "P1")
        assert first.load("P1") == state
        later = append(second, second.load("P1"), [("funds_reported", {"amount": 5})])
        assert first.load("P1") == later
        assert first.load("P1").funds == 5
        # Its report rows are right too, although it did not know the state it started from.
        after = append(first, later, [("funds_reported", {"amount": 7})])
        assert second.load("P1") == after
        assert first.metric_inputs() == second.metric_inputs()
        assert first.metric_inputs().funds == 12

    def test_a_loaded_state_is_a_copy(self, two_stores: tuple[Any, Any]) -> None:
        """Changing what ``load`` returned changes nothing the store keeps."""
        store, _ = two_stores
        state = append(store, new_project(store, "P1"), [("funds_reported", {"amount": 5})])
        loaded = store.load("P1")
        loaded.funds = 1_000
        loaded.milestones["signed"] = loaded.created_at
        loaded.stage = "approved"
        assert store.load("P1") == state

    def test_the_cache_is_bounded_and_may_be_off(self, tmp_path: Path) -> None:
        """At most ``cache_size`` projects are kept; 0 keeps none and loads still work."""
        with SQLiteStore(tmp_path / "a.db", cache_size=2) as store:
            states = [new_project(store, f"P{i}") for i in range(3)]
            assert [store.load(f"P{i}") for i in range(3)] == states
            assert len(store._cache) == 2
        with SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?cache_size=0") as store:
            assert [store.load(f"P{i}") for i in range(3)] == states
            assert len(store._cache) == 0
            append(store, states[0], [("funds_reported", {"amount": 1})])
            assert store.load("P0").funds == 1
        with pytest.raises(ValueError, match="cache_size"):
            SQLiteStore(tmp_path / "a.db", cache_size=-1)

    def test_the_default_cache_keeps_the_recent_projects_only(
        self, two_stores: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """By default a store keeps ``DEFAULT_CACHE_SIZE`` projects' states: the most recent
        ones, so the next command on a project finds its state without decoding it, and a
        process that touches more projects than that stops growing."""
        store, _ = two_stores
        assert store._cache.size == DEFAULT_CACHE_SIZE <= 1_000
        store._cache.size = 3  # the same rule, at a size a test can fill
        states = [new_project(store, f"P{i}") for i in range(5)]
        assert len(store._cache) == 3
        decoded: list[str] = []
        real = sql_module.state_from_json
        monkeypatch.setattr(
            sql_module, "state_from_json", lambda text: decoded.append(text) or real(text)
        )
        assert store.load("P4") == states[4] and store.load("P2") == states[2]
        assert decoded == []  # the recent ones come from the cache
        assert store.load("P0") == states[0]
        assert len(decoded) == 1 and len(store._cache) == 3
