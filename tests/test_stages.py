"""Approval in stages: the setting, the running stage, the lead's combined result, the limits.

The scenarios in scenarios/ tell the dated stories (the national four stages within 120 wd, a
total passed, a stage passed); these pin what a caller relies on around them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import MONDAY, County

from approvalflow import InvalidTransition, SettingsError
from approvalflow.cli.show import render
from approvalflow.diagram import draw
from approvalflow.engine import WorkflowDefinition
from approvalflow.project import ProjectState
from approvalflow.rules import stages
from approvalflow.settings import STAGE_TEMPLATES, Settings
from approvalflow.stores.serialization import state_from_json, state_to_json

NATIONAL: dict[str, Any] = {"approval": {"stages": "national"}}
TWO_STAGES: dict[str, Any] = {
    "approval": {
        "stages": [
            {
                "id": "one",
                "name": "立项",
                "departments": ["fgw", "zrzy"],
                "lead": "fgw",
                "limit_wd": 8,
            },
            {
                "id": "two",
                "name": "施工",
                "departments": ["zrzy", "zj"],
                "lead": "zj",
                "limit_wd": 10,
            },
        ],
        "total_limit_wd": 15,
    }
}


def issue(county: County, by: str, project: str = "P1") -> None:
    county.do("issue_stage_result", project, by)


class TestSettings:
    def test_the_default_is_one_stage_without_a_total(self) -> None:
        settings = Settings.default()
        assert settings.approval.stages == ()
        assert settings.approval.total_limit_wd is None

    def test_the_national_template_by_name(self) -> None:
        approval = Settings.default().merged(NATIONAL).approval
        assert [s.name for s in approval.stages] == [
            "立项用地规划许可",
            "工程建设许可",
            "施工许可",
            "竣工验收",
        ]
        assert [s.lead for s in approval.stages] == ["fgw", "zrzy", "zj", "zj"]
        assert approval.total_limit_wd == 120
        assert approval.template == "national"

    def test_a_county_promises_a_shorter_total(self) -> None:
        settings = Settings.default().merged(
            {"approval": {"stages": "national", "total_limit_wd": 85}}
        )
        assert settings.approval.total_limit_wd == 85
        assert settings.merged({"approval": {"total_limit_wd": 50}}).approval.total_limit_wd == 50

    def test_a_rule_set_with_stages_round_trips_through_its_canonical_text(self) -> None:
        settings = Settings.default().merged(TWO_STAGES)
        again = Settings.from_canonical_json(settings.canonical_json())
        assert again == settings
        assert again.fingerprint() == settings.fingerprint()

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"approval": {"stages": "provincial"}}, "unknown stage template 'provincial'"),
            ({"approval": {"total_limit_wd": 90}}, "a total limit needs stages"),
            ({"approval": {"stages": "national", "total_limit_wd": 0}}, "at least 1 working day"),
            ({"approval": {"stage": "national"}}, "settings.approval.stage: unknown setting"),
            (
                {
                    "approval": {
                        "stages": [
                            {
                                "id": "a",
                                "name": "A",
                                "departments": ["fgw"],
                                "lead": "zj",
                                "limit_wd": 5,
                            }
                        ]
                    }
                },
                "stages[0].lead: the lead department 'zj' must be one of the stage's departments",
            ),
            (
                {
                    "approval": {
                        "stages": [
                            {
                                "id": "a",
                                "name": "A",
                                "departments": ["gxj"],
                                "lead": "gxj",
                                "limit_wd": 5,
                            }
                        ]
                    }
                },
                "stages[0].departments: 'gxj' is not an approving department",
            ),
            (
                {
                    "approval": {
                        "stages": [
                            {
                                "id": "a",
                                "name": "A",
                                "departments": ["fgw"],
                                "lead": "fgw",
                                "limit_wd": 5,
                            },
                            {
                                "id": "a",
                                "name": "B",
                                "departments": ["zj"],
                                "lead": "zj",
                                "limit_wd": 0,
                            },
                        ]
                    }
                },
                "stages[1].id: 'a' names two stages",
            ),
            (
                {
                    "approval": {
                        "stages": [
                            {
                                "id": "a",
                                "name": "A",
                                "departments": ["fgw"],
                                "lead": "fgw",
                                "limit_wd": "5",
                            }
                        ]
                    }
                },
                "settings.approval.stages",
            ),
        ],
    )
    def test_bad_stages_are_refused_with_the_reason(
        self, overrides: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(SettingsError) as caught:
            Settings.default().merged(overrides)
        assert message in str(caught.value)


class TestRunning:
    def test_without_stages_apply_plans_nothing_and_approval_ends_by_itself(self) -> None:
        county = County()
        county.to_approval()
        with pytest.raises(InvalidTransition, match="no approval stages"):
            issue(county, "o_fgw")
        county.approve_all()
        assert county.stage() == "approved"
        types = {event.type for event in county.engine.history("P1")}
        assert not types & {"approval_stages_planned", "approval_stage_opened"}

    def test_apply_opens_the_first_stage_only(self) -> None:
        county = County(settings=NATIONAL)
        county.to_approval()
        state = county.engine.project("P1")
        run = stages.current_stage(state)
        assert run is not None and run.id == "land_planning" and run.lead == "fgw"
        assert sorted(state.branches) == ["fgw", "sthj", "zrzy"]
        assert sorted(stages.stage_branches(state, run)) == ["fgw", "sthj", "zrzy"]
        with pytest.raises(InvalidTransition):
            county.do("accept", "P1", "o_zj")

    def test_the_route_filters_each_stage_and_the_lead_always_opens(self) -> None:
        county = County(settings={**NATIONAL, "routing": {"departments": ["zrzy", "zj"]}})
        county.to_approval()
        assert sorted(county.engine.project("P1").branches) == ["fgw", "zrzy"]
        county.approve_all(departments=("fgw", "zrzy"))
        issue(county, "o_fgw")
        # Stage 2: zrzy (lead) and yj, which the route left out.
        assert stages.stage_departments(
            county.engine.project("P1"), STAGE_TEMPLATES["national"][0][1]
        ) == ("zrzy",)

    def test_the_lead_issues_once_every_branch_is_approved(self) -> None:
        county = County(settings=TWO_STAGES)
        county.to_approval()
        county.take_notices()
        county.do("accept", "P1", "o_fgw")
        county.do("approve", "P1", "o_fgw")
        with pytest.raises(
            InvalidTransition, match=r"waits on its branches: approval.zrzy pending"
        ):
            issue(county, "o_fgw")
        county.approve_all(departments=("zrzy",))
        decided = [n for n in county.take_notices() if n["kind"] == "stage_decided"]
        assert [(n["to"], n["stage"], n["department"]) for n in decided] == [
            ("o_fgw", "one", "fgw")
        ]
        # The lead's task, and the project's holdup.
        tasks = [t for t in county.engine.tasks("o_fgw") if t.kind == "issue_stage_result"]
        assert [(t.project, t.commands, t.deadline) for t in tasks] == [
            ("P1", ("issue_stage_result",), county.engine.project("P1").stage_runs["one"].due)
        ]
        assert not [t for t in county.engine.tasks("o_zrzy") if t.kind == "issue_stage_result"]
        assert county.engine.holdups("P1")[0].what == "stage_result"
        # Another department's officer may not issue it; nothing changes.
        version = county.engine.project("P1").version
        with pytest.raises(InvalidTransition, match="led by fgw"):
            issue(county, "o_zrzy")
        assert county.engine.project("P1").version == version

        issue(county, "o_fgw")
        state = county.engine.project("P1")
        assert state.stage == "approval"
        assert state.stage_runs["one"].issued_by == "o_fgw"
        shown = render(county.engine, state, county.clock.now())
        assert "result issued 2026-03-02 09:00 by o_fgw" in shown, shown
        assert "lead 发改 (fgw)" in shown and "waiting on 自然资源 (zrzy)" in shown, shown
        assert stages.current_stage(state).id == "two"  # type: ignore[union-attr]
        # zrzy again in stage 2: a new branch; stage 1's approved one is kept with its stage.
        assert state.branches["zrzy"].state == "pending"
        assert state.branches["zrzy"].stage == "two"
        assert stages.stage_branches(state, "one")["zrzy"].state == "approved"
        notices = county.take_notices()
        assert {(n["kind"], n["to"]) for n in notices} >= {
            ("stage_result_issued", "fuyuan"),
            ("stage_opened", "o_zj"),
            ("stage_opened", "fuyuan"),
        }
        county.approve_all(departments=("zrzy", "zj"))
        assert county.stage() == "approval"
        issue(county, "o_zj")
        assert county.stage() == "approved"
        assert "approval_complete" in county.engine.project("P1").milestones
        assert stages.current_stage(county.engine.project("P1")) is None

    def test_a_rejection_inside_a_stage_rejects_the_project(self) -> None:
        county = County(settings=TWO_STAGES)
        county.to_approval()
        county.do("reject", "P1", "o_zrzy", reason="用地不符合规划")
        assert county.stage() == "rejected"

    def test_an_unverified_commitment_holds_the_stage_whose_next_reopens_it(self) -> None:
        county = County(settings={**TWO_STAGES, "commitment": {"departments": ["zrzy"]}})
        county.to_approval()
        county.do("accept_commitment", "P1", "fuyuan", department="zrzy")
        county.approve_all(departments=("fgw",))
        with pytest.raises(InvalidTransition, match="commitment is not verified"):
            issue(county, "o_fgw")
        # Who holds it up says so (D308): zrzy's verification, by its deadline; the stage's
        # result is not offered yet, and a verification is no late item.
        state = county.engine.project("P1")
        held = [(h.waiting_on, h.what, h.due) for h in county.engine.holdups("P1")]
        assert held == [("zrzy", "verification", state.branches["zrzy"].verify_due)]
        shown = render(county.engine, state, county.clock.now())
        assert "the verification of its commitment, before the stage's result" in shown, shown
        later = county.clock.now() + timedelta(days=400)
        assert "zrzy" not in county.engine.late_items(later)
        county.do("verify", "P1", "o_zrzy", passed=True)
        assert [h.what for h in county.engine.holdups("P1")] == ["stage_result"]
        issue(county, "o_fgw")
        assert stages.current_stage(county.engine.project("P1")).id == "two"  # type: ignore[union-attr]

    def test_the_stage_and_total_limits_are_deadlines(self) -> None:
        county = County(settings=TWO_STAGES)
        county.to_approval()
        # Applied Mon 2026-03-02 09:00: 8 wd -> 03-12, 15 wd -> 03-23.
        assert county.deadline("P1.stage.one") == "2026-03-12 24:00"
        assert county.deadline("P1.total") == "2026-03-23 24:00"


class TestPinnedAndStored:
    def _mid_run(self, county: County) -> ProjectState:
        county.to_approval()
        county.approve_all(departments=("fgw", "zrzy"))
        issue(county, "o_fgw")
        county.do("accept", "P1", "o_zj")
        return county.engine.project("P1")

    def test_the_state_is_its_history_and_survives_the_store(self, tmp_path: Any) -> None:
        from approvalflow.stores import open_store

        county = County(
            settings=TWO_STAGES, store=open_store(f"sqlite:///{tmp_path / 's.db'}", create=True)
        )
        state = self._mid_run(county)
        assert ProjectState.from_events(county.engine.history("P1")) == state
        assert state_from_json(state_to_json(state)) == state
        reopened = County(settings=TWO_STAGES, store=open_store(f"sqlite:///{tmp_path / 's.db'}"))
        assert reopened.engine.project("P1") == state
        assert stages.stage_branches(state, "one")["zrzy"].state == "approved"

    def test_a_running_project_keeps_its_stages_when_the_county_drops_them(self) -> None:
        county = County(settings=TWO_STAGES)
        self._mid_run(county)
        county.engine.definition = WorkflowDefinition(settings={})
        county.do("migrate_rules", "P1", "chair", reason="新规则")
        county.approve_all(departments=("zrzy",))
        county.do("approve", "P1", "o_zj")
        assert county.stage() == "approval"  # stage two still needs its combined result
        issue(county, "o_zj")
        assert county.stage() == "approved"

    def test_a_project_applied_before_the_county_took_up_stages_keeps_one_stage(self) -> None:
        county = County()
        county.to_signed()
        county.engine.definition = WorkflowDefinition(settings=TWO_STAGES)
        county.do("apply", "P1", "fuyuan")
        assert county.engine.project("P1").stage_plan == ()
        county.to_approval("P2")
        assert [s.id for s in county.engine.project("P2").stage_plan] == ["one", "two"]


class TestFaces:
    def test_the_preview_chains_the_stages_at_their_limits(self) -> None:
        county = County(settings=TWO_STAGES)
        from builders import PROJECT_FIELDS

        preview = county.engine.preview(PROJECT_FIELDS, "guo", start=MONDAY, approval_start=MONDAY)
        assert [(s.id, s.due.display()) for s in preview.stages] == [
            ("one", "2026-03-12 24:00"),
            ("two", "2026-03-27 24:00"),  # opens 03-13 00:00, counts from 03-16
        ]
        assert preview.total_due is not None and preview.total_due.display() == "2026-03-23 24:00"
        assert preview.approval_due == preview.total_due
        zj = next(b for b in preview.branches if b.department == "zj")
        assert zj.stage == "two" and zj.due.display() == "2026-03-24 24:00"

    def test_the_diagram_draws_the_configured_stages(self) -> None:
        text = draw("approval_stages", stages=Settings.default().merged(NATIONAL).approval.stages)
        assert "竣工验收 (lead zj, 40 wd)" in text
        assert "construction_permit --> completion: issue_stage_result" in text
        assert "signed --> approval: apply" in draw("approval_stages")
