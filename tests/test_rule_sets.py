"""Rules pinned per project: a county's new rules apply to new projects; a migration moves
running ones when the county decides (issue 9, decisions D32 and D33)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from builders import County
from layouts import to_version_8

from approvalflow import InvalidCommand, InvalidTransition, NotAuthorized, hookimpl
from approvalflow.errors import ApprovalflowError
from approvalflow.settings import Settings, rule_set_fingerprint
from approvalflow.stores import schema
from approvalflow.stores.memory import MemoryStore
from approvalflow.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.usefixtures("every_store")

OLD = {"rules_version": "2026-1", "time_limit_wd": {"zj": 7}}
NEW = {"rules_version": "2026-2", "time_limit_wd": {"zj": 3}, "points": {"signed": 9}}


def republished(county: County, overrides: dict[str, Any]) -> County:
    """The same county (store, time) after it publishes new rules and restarts its engine."""
    return County(settings=overrides, store=county.engine.store, start=county.clock.now())


def refused_without_change(county: County, error: type[ApprovalflowError], *do: Any) -> str:
    command, project, by = do[:3]
    args = do[3] if len(do) > 3 else {}
    before = county.engine.history(project)
    with pytest.raises(error) as caught:
        county.engine.execute(command, project, by, args)
    assert county.engine.history(project) == before
    return caught.value.message


class TestPinning:
    def test_a_running_project_keeps_its_rules_and_a_new_one_gets_the_new_rules(self) -> None:
        """P1 (2026-1, zj 7 wd) and P2 (2026-2, zj 3 wd) apply the same Monday."""
        old = County(settings=OLD)
        old.to_signed("P1")
        new = republished(old, NEW)
        new.to_signed("P2")
        new.do("apply", "P1", "fuyuan")
        new.do("apply", "P2", "fuyuan")
        assert new.deadline("P1.approval.zj") == "2026-03-11 24:00"  # 7 wd from Mon 03-02
        assert new.deadline("P2.approval.zj") == "2026-03-05 24:00"  # 3 wd
        assert new.engine.project("P1").rules_version == "2026-1"
        assert new.engine.project("P2").rules_version == "2026-2"

    def test_points_are_scored_under_the_projects_own_rules(self) -> None:
        """Signing scores 5 under 2026-1 and 9 under 2026-2, project by project."""
        old = County(settings=OLD)
        old.to_decision("P1")
        old.approve_in_meeting("P1")
        new = republished(old, NEW)
        new.do("sign", "P1", "guo")
        new.to_signed("P2")
        assert new.engine.project("P1").milestone_points["signed"] == 5
        assert new.engine.project("P2").milestone_points["signed"] == 9

    def test_the_store_keeps_each_rule_set_under_its_fingerprint(self) -> None:
        county = County(settings=OLD)
        county.create("P1")
        state = county.engine.project("P1")
        text = county.engine.store.rule_set(state.settings_fingerprint)
        assert text is not None
        assert rule_set_fingerprint(text) == state.settings_fingerprint
        assert Settings.from_canonical_json(text) == county.engine.settings
        assert county.engine.store.rule_set("0" * 64) is None

    def test_plugins_get_the_projects_own_rules(self) -> None:
        """A county plugin reading its numbers from ``settings.plugin_settings`` is pinned too."""

        class Limits:
            @hookimpl
            def approvalflow_time_limit(
                self, project: Any, department: str, settings: Settings
            ) -> int | None:
                days = settings.plugin_settings("limits").get(department)
                return int(days) if days is not None else None

        old = County(settings={"plugins": {"limits": {"fgw": 2}}}, plugins=[Limits()])
        old.to_signed("P1")
        new = County(
            settings={"rules_version": "2", "plugins": {"limits": {"fgw": 4}}},
            plugins=[Limits()],
            store=old.engine.store,
            start=old.clock.now(),
        )
        new.to_signed("P2")
        new.do("apply", "P1", "fuyuan")
        new.do("apply", "P2", "fuyuan")
        assert new.deadline("P1.approval.fgw") == "2026-03-04 24:00"  # 2 wd
        assert new.deadline("P2.approval.fgw") == "2026-03-06 24:00"  # 4 wd


class TestMigration:
    def test_the_chair_moves_a_project_to_the_current_rules(self) -> None:
        old = County(settings=OLD)
        old.to_signed("P1")
        new = republished(old, NEW)
        result = new.do("migrate_rules", "P1", "chair", reason="县政府决定执行新时限")
        (event,) = result.events
        assert event.type == "rules_migrated" and event.by == "chair"
        assert event.payload["from_version"] == "2026-1"
        assert event.payload["to_version"] == "2026-2"
        assert event.payload["to_fingerprint"] == new.engine.settings.fingerprint()
        assert event.payload["reason"] == "县政府决定执行新时限"
        new.do("apply", "P1", "fuyuan")
        assert new.deadline("P1.approval.zj") == "2026-03-05 24:00"  # now 3 wd
        assert new.engine.project("P1").stage == "approval"

    def test_deadlines_already_set_keep_their_dates(self) -> None:
        old = County(settings=OLD)
        old.to_approval("P1")
        new = republished(old, NEW)
        new.do("migrate_rules", "P1", "chair", reason="新规")
        assert new.deadline("P1.approval.zj") == "2026-03-11 24:00"

    def test_only_the_chair_may_migrate(self) -> None:
        old = County(settings=OLD)
        old.to_signed("P1")
        new = republished(old, NEW)
        for actor in ("huang", "guo", "m1", "o_zj"):
            message = refused_without_change(
                new, NotAuthorized, "migrate_rules", "P1", actor, {"reason": "新规"}
            )
            assert actor in message

    def test_a_reason_is_required(self) -> None:
        old = County(settings=OLD)
        old.to_signed("P1")
        new = republished(old, NEW)
        message = refused_without_change(new, InvalidCommand, "migrate_rules", "P1", "chair")
        assert "reason" in message

    def test_a_project_under_the_current_rules_has_nothing_to_migrate(self) -> None:
        county = County(settings=NEW)
        county.to_signed("P1")
        message = refused_without_change(
            county, InvalidCommand, "migrate_rules", "P1", "chair", {"reason": "新规"}
        )
        assert "2026-2 already" in message.replace("'", "")

    def test_not_while_a_pre_review_round_is_open(self) -> None:
        old = County(settings=OLD)
        old.to_pre_review("P1")
        new = republished(old, NEW)
        message = refused_without_change(
            new, InvalidTransition, "migrate_rules", "P1", "chair", {"reason": "新规"}
        )
        assert "pre-review round is open" in message

    def test_not_while_the_leading_group_meets(self) -> None:
        old = County(settings=OLD)
        old.to_decision("P1")
        old.do("convene", "P1", "chair", present=["chair", "m1", "m2", "m3"])
        new = republished(old, NEW)
        message = refused_without_change(
            new, InvalidTransition, "migrate_rules", "P1", "chair", {"reason": "新规"}
        )
        assert "leading group meets" in message

    def test_not_to_rules_that_lack_a_department_the_project_is_approved_by(self) -> None:
        old = County(settings=OLD)
        old.to_approval("P1")
        new = republished(
            old,
            {
                "rules_version": "2026-3",
                "routing": {"departments": ["fgw", "zrzy", "zj", "sthj"]},
                "time_limit_wd": {"yj": None},
                "statutory_limit_wd": {"yj": None},
            },
        )
        message = refused_without_change(
            new, InvalidCommand, "migrate_rules", "P1", "chair", {"reason": "新规"}
        )
        assert "yj" in message

    def test_not_while_an_outstanding_material_leaves_the_catalogue(self) -> None:
        old = County(settings=OLD)
        old.to_approval("P1")
        old.do("accept", "P1", "o_zj", deficient=["site_photos"])
        new = republished(
            old,
            {
                "rules_version": "2026-3",
                "materials": {"site_photos": None},
                "requirements": {
                    "zj": ["business_license", "land_certificate", "credit_report"],
                    "sthj": ["eia_report", "business_license", "credit_report"],
                },
                "time_limit_wd": {"zj": 3},
            },
        )
        message = refused_without_change(
            new, InvalidCommand, "migrate_rules", "P1", "chair", {"reason": "新规"}
        )
        assert "site_photos" in message

    def test_a_migrated_history_replays_to_the_same_state(self) -> None:
        from approvalflow.project import ProjectState

        old = County(settings=OLD)
        old.to_signed("P1")
        new = republished(old, NEW)
        new.do("migrate_rules", "P1", "chair", reason="新规")
        assert ProjectState.from_events(new.engine.history("P1")) == new.engine.project("P1")


def test_a_project_written_before_rule_sets_were_kept_follows_the_current_rules() -> None:
    """No stored rule set (a schema-2 database): the project was never pinned (D32)."""
    store = MemoryStore()
    old = County(settings=OLD, store=store)
    old.to_signed("P1")
    store._rule_sets.clear()
    new = republished(old, NEW)
    new.do("apply", "P1", "fuyuan")
    assert new.deadline("P1.approval.zj") == "2026-03-05 24:00"


CODE = "2026-140527-30-03-012345"
# What version 2 lacked: rule sets and project codes (3), the outbox's claim columns (4).
_V2_DOWNGRADE = [
    "DROP TABLE rule_sets",
    "DROP TABLE project_codes",
    *(f"ALTER TABLE outbox DROP COLUMN {column.name}" for column in schema.OUTBOX_CLAIM_COLUMNS),
    "ALTER TABLE snapshots DROP COLUMN digest",  # schema version 8
    "UPDATE meta SET schema_version = 2",
]


def test_a_version_2_sqlite_file_gains_the_rule_sets_table(tmp_path: Path) -> None:
    """Migrating a version-2 file adds rule sets and project codes, the codes filled from the
    created events (the first project with a code keeps it)."""
    path = tmp_path / "v2.db"
    county = County(settings=OLD, store=SQLiteStore(path))
    county.to_signed("P1")
    county.create("P3", project_code=CODE)
    county.engine.store.close()
    connection = sqlite3.connect(path, isolation_level=None)
    to_version_8(connection, "sqlite")
    for statement in _V2_DOWNGRADE:
        connection.execute(statement)
    connection.close()
    store = SQLiteStore(path)
    try:
        version = store._connection.execute("SELECT schema_version FROM meta").fetchone()
        assert version == (schema.SCHEMA_VERSION,)
        assert store.project_with_code(CODE) == "P3"
        new = republished(County(settings=OLD, store=store, start=county.clock.now()), NEW)
        new.do("apply", "P1", "fuyuan")  # unpinned: the current rules
        new.create("P2")
        assert store.rule_set(new.engine.project("P2").settings_fingerprint) is not None
    finally:
        store.close()


def test_a_version_2_postgres_schema_gains_project_codes(postgres_url: str) -> None:
    import uuid

    from approvalflow.stores.postgres import PostgresStore

    name = f"t_{uuid.uuid4().hex[:16]}"
    store = PostgresStore.from_url(postgres_url, schema=name)
    try:
        County(settings=OLD, store=store).create("P3", project_code=CODE)
        to_version_8(store._connection, "postgresql")
        for statement in _V2_DOWNGRADE:
            store._connection.execute(statement)
        store.close()
        store = PostgresStore.from_url(postgres_url, schema=name)
        assert store.project_with_code(CODE) == "P3"
    finally:
        store.drop()
