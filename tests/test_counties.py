"""The five county plugins as their users see them.

Each county loads through its entry point; each of its rules changes states, notices, errors,
points or metrics; each has a scenario that passes with the plugin and fails without it, at a
rule rather than at an unknown word. Last, every hook of ``hookspecs.py`` has its section in
``docs/plugins.md`` and a ``test_hook_<name>`` test here (as datasette does), so hooks, guide
and tests move together.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pytest
from builders import County, county_actors, kinds

from approvalflow import (
    Actor,
    Event,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    Notice,
    OfficialYear,
    Settings,
    SettingsError,
    hookimpl,
)
from approvalflow.calendar import SHANGHAI
from approvalflow.counties import COUNTIES, gaoqing, huguan, jiangle, jiaocheng, shangnan
from approvalflow.logs import capture_logs
from approvalflow.plugins import available_plugins, build_plugin_manager, hookspecs
from approvalflow.scenario.runner import load, run_file, run_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
GUIDE = ROOT / "docs" / "plugins.md"
MODULES = (huguan, jiaocheng, jiangle, gaoqing, shangnan)


@pytest.fixture(autouse=True)
def _county_defaults() -> Iterator[None]:
    """Every test starts and ends with each county's default own settings."""
    for module in MODULES:
        module.config.reset()
    yield
    for module in MODULES:
        module.config.reset()


def at(day: str, time: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=SHANGHAI)


# -- loading ---------------------------------------------------------------------------------------


class TestEntryPoints:
    @pytest.mark.parametrize("county", COUNTIES)
    def test_each_county_loads_through_its_entry_point(self, county: str) -> None:
        """``build_plugin_manager([name])`` registers the county's module under its name."""
        manager = build_plugin_manager([county])
        module = importlib.import_module(f"approvalflow.counties.{county}")
        assert manager.get_plugin(county) is module
        assert available_plugins()[county] == f"approvalflow.counties.{county}"

    def test_the_console_channel_is_installed_too(self) -> None:
        """``console`` is an entry point like the counties, so a scenario can load it."""
        assert available_plugins()["console"] == "approvalflow.plugins.console"


# -- each county's rule fails without its plugin ---------------------------------------------------

WITHOUT_PLUGIN = [
    ("huguan/landing_owner_hears_late_approval.yaml", "expect notices[3]", "no landing notice"),
    ("jiaocheng/pledge_for_filing_and_permit.yaml", "accept_commitment J1 by firm", "eligible"),
    ("jiangle/park_one_stop_needs_agent.yaml", "apply P1 by fuyuan", "success"),
    ("gaoqing/unit_classes_scores.yaml", "expect gaoqing.units", "no metric"),
    ("shangnan/measure_set_before_approval.yaml", "apply S1 by firm", "success"),
]


class TestFailsWithoutItsPlugin:
    @pytest.mark.parametrize(("name", "failing_step", "why"), WITHOUT_PLUGIN)
    def test_the_scenario_passes_with_its_plugin_and_fails_at_the_rule_without_it(
        self, name: str, failing_step: str, why: str
    ) -> None:
        """With ``plugins:`` stripped the same story fails at the county's rule (``why``)."""
        path = SCENARIOS / name
        assert run_file(path).passed, run_file(path).render()
        stripped = run_scenario(attrs.evolve(load(path), plugins=()))
        assert not stripped.passed
        assert stripped.failure is not None
        assert stripped.failure.what == failing_step

    @pytest.mark.parametrize("county", COUNTIES)
    def test_every_county_has_such_a_scenario(self, county: str) -> None:
        """The list above covers all five counties."""
        assert any(name.startswith(f"{county}/") for name, _, _ in WITHOUT_PLUGIN)


# -- Huguan ----------------------------------------------------------------------------------------


def huguan_signed() -> County:
    county = County(plugins=["huguan"])
    county.to_signed()
    county.take_notices()
    return county


class TestHuguan:
    def test_the_issue_loop_opens_at_signing(self) -> None:
        """Before signing there is no landing: raise_issue is InvalidTransition."""
        county = County(plugins=["huguan"])
        county.create()
        with pytest.raises(InvalidTransition, match="from signing"):
            county.do("raise_issue", "P1", "guo", issue="I1", text="用地")

    def test_only_the_landing_owner_the_firm_and_the_leader_raise_issues(self) -> None:
        """Another recruiter who serves the team is refused; the firm and the leader may."""
        county = huguan_signed()
        with pytest.raises(NotAuthorized, match="landing owner guo"):
            county.do("raise_issue", "P1", "any_recruiter", issue="I1", text="用电")
        county.do("raise_issue", "P1", "fuyuan", issue="I1", text="用电")
        county.do("raise_issue", "P1", "huang", issue="I2", text="道路")
        with pytest.raises(InvalidCommand, match="already"):
            county.do("raise_issue", "P1", "guo", issue="I1", text="again")

    def test_an_issue_past_its_deadline_tells_the_leader_and_the_landing_owner_once(self) -> None:
        """Assigned for 5 wd on Monday, overdue at the end of next Monday, notified once."""
        county = huguan_signed()
        county.do("raise_issue", "P1", "guo", issue="I1", text="供电线路迁改")
        county.do("assign_issue", "P1", "huang", issue="I1", department="zrzy")
        assert county.deadline("P1.huguan.issue.I1") == "2026-03-09 24:00"
        county.take_notices()
        county.advance(timedelta(days=30))
        assert kinds(county.take_notices()) == [
            ("huguan.issue_overdue", "guo"),
            ("huguan.issue_overdue", "huang"),
        ]

    def test_only_the_assigned_department_or_the_leader_resolves(self) -> None:
        """An officer of another department is NotAuthorized; a resolved issue never runs late."""
        county = huguan_signed()
        county.do("raise_issue", "P1", "fuyuan", issue="I1", text="施工用水")
        county.do("assign_issue", "P1", "huang", issue="I1", department="zrzy")
        with pytest.raises(NotAuthorized, match="assigned to zrzy"):
            county.do("resolve_issue", "P1", "o_fgw", issue="I1", resolution="done")
        county.do("resolve_issue", "P1", "o_zrzy", issue="I1", resolution="已接入")
        with pytest.raises(InvalidTransition, match="resolved"):
            county.do("resolve_issue", "P1", "huang", issue="I1", resolution="again")
        county.take_notices()
        county.advance(timedelta(days=30))
        assert county.take_notices() == []

    def test_the_issue_deadline_is_a_county_setting(self) -> None:
        """``huguan.configure(issue_deadline_wd=2)`` shortens the next assignment."""
        huguan.configure(issue_deadline_wd=2)
        county = huguan_signed()
        county.do("raise_issue", "P1", "guo", issue="I1", text="x")
        county.do("assign_issue", "P1", "huang", issue="I1", department="zj")
        assert county.deadline("P1.huguan.issue.I1") == "2026-03-04 24:00"

    def test_the_board_lists_every_squad_each_month_and_counts_planned_signed_started(
        self,
    ) -> None:
        """An idle squad shows zeros; a project counts where it was created, signed, started."""
        county = huguan_signed()
        county.do("apply", "P1", "fuyuan")
        county.approve_all()
        county.advance_to(at("2026-04-01"))
        county.do("start_construction", "P1", "guo")
        board = county.engine.metrics()["huguan.board"]
        assert board["2026-03"]["squads"]["new_energy"] == {
            "planned": 0,
            "signed": 0,
            "signed_amount": 0,
            "started": 0,
        }
        assert board["2026-03"]["squads"]["light_alloy"]["signed"] == 1
        assert board["2026-03"]["departments"]["gxj"]["planned"] == 1
        assert board["2026-04"]["squads"]["light_alloy"] == {
            "planned": 0,
            "signed": 0,
            "signed_amount": 0,
            "started": 1,
        }

    def test_town_targets_score_the_signed_amount_capped_at_one(self) -> None:
        """A town over its target scores 1; a town with a target and nothing signed, 0."""
        huguan.configure(town_targets={"店上镇": 1_000_000_000, "龙泉镇": 500_000_000})
        county = County(plugins=["huguan"])
        county.to_signed()
        towns = county.engine.metrics()["huguan.towns"]
        assert towns["龙泉镇"]["completion"] == 0
        county2 = County(plugins=["huguan"])
        county2.create(town="店上镇")
        assert county2.engine.metrics()["huguan.towns"]["店上镇"]["completion"] == 0
        county2.do("negotiate", "P1", "guo")
        county2.do("submit_pre_review", "P1", "guo", materials=[])
        county2.pass_pre_review()
        county2.approve_in_meeting()
        county2.do("sign", "P1", "guo")
        assert county2.engine.metrics()["huguan.towns"]["店上镇"] == {
            "signed": 1,
            "signed_amount": 1_500_000_000,
            "started": 0,
            "target": 1_000_000_000,
            "completion": 1,
        }


# -- Jiaocheng -------------------------------------------------------------------------------------


XZSP = Actor("o_xzsp", ["officer"], department="xzsp", name="行政审批服务管理局")


def jiaocheng_in_approval(chain: str | None, **apply_args: Any) -> County:
    county = County(plugins=["jiaocheng"], actors=[*county_actors(), XZSP])
    county.create(**({"chain": chain} if chain else {}))
    county.do("negotiate", "P1", "guo")
    county.do("submit_pre_review", "P1", "guo", materials=[])
    county.pass_pre_review()
    county.approve_in_meeting()
    county.do("sign", "P1", "guo")
    county.do("apply", "P1", "fuyuan", **apply_args)
    county.take_notices()
    return county


class TestJiaocheng:
    def test_pledges_replace_proofs_for_filing_and_the_construction_permit(self) -> None:
        """fgw and zj approve on the applicant's pledge; zrzy does not."""
        county = jiaocheng_in_approval(None)
        county.do("accept_commitment", "P1", "fuyuan", department="zj")
        assert county.branch("zj") == "approved"
        with pytest.raises(InvalidCommand, match="not commitment-eligible"):
            county.do("accept_commitment", "P1", "fuyuan", department="zrzy")
        assert county.engine.settings.commitment.departments == ("fgw", "zj")

    @pytest.mark.parametrize("chain", ["lihu_glass", None])
    def test_a_chain_leaders_project_reaches_the_chair_when_late(self, chain: str | None) -> None:
        """At zj's limit xzsp coordinates every project; the chair hears of priority ones only."""
        county = jiaocheng_in_approval(chain, departments=["zj"])
        county.advance(timedelta(days=14))
        overdue = [n["to"] for n in county.take_notices() if n["kind"] == "overdue"]
        assert "o_xzsp" in overdue
        assert ("chair" in overdue) is (chain is not None)
        assert not [e for e in county.engine.history("P1") if e.type.startswith("jiaocheng.")]

    def test_an_unknown_chain_is_refused_at_apply(self) -> None:
        """A chain with no chain leader cannot be a priority project: InvalidCommand."""
        county = County(plugins=["jiaocheng"])
        county.create(chain="steel")
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.pass_pre_review()
        county.approve_in_meeting()
        county.do("sign", "P1", "guo")
        with pytest.raises(InvalidCommand, match="no chain leader"):
            county.do("apply", "P1", "fuyuan")
        assert county.stage() == "signed"

    def test_department_scores_follow_their_targets(self) -> None:
        """gxj with a target of 2 and one signing scores 50; chains count their projects."""
        jiaocheng.configure(department_targets={"gxj": 2})
        county = jiaocheng_in_approval("huaxin_coking")
        metrics = county.engine.metrics()
        assert metrics["jiaocheng.department_scores"]["gxj"] == {
            "target": 2,
            "signed": 1,
            "score": 50,
        }
        assert metrics["jiaocheng.chains"]["huaxin_coking"]["signed_amount"] == 1_500_000_000


# -- Jiangle ---------------------------------------------------------------------------------------


class TestJiangle:
    def test_the_points_table_has_23_steps_worth_100(self) -> None:
        """Lead and target output lie outside the 23 steps and earn nothing."""
        county = County(plugins=["jiangle"])
        points = county.engine.settings.points
        assert len(points) == 23
        assert sum(points.values()) == 100
        assert "lead" not in points and "effective" not in points
        county.create()
        assert county.engine.points() == {"light_alloy": 0}

    def test_pre_review_and_decision_numbers_are_set_explicitly(self) -> None:
        """Four member units, 3 wd, silence overdue; quorum and majority more than half."""
        settings = County(plugins=["jiangle"]).engine.settings
        assert settings.pre_review.members == ("gxj", "fgw", "zrzy", "sthj")
        assert settings.pre_review.deadline_wd == 3
        assert settings.pre_review.silence == "overdue"
        assert (settings.decision.quorum, settings.decision.majority) == (0.5, 0.5)

    def test_a_step_is_recorded_once_its_stage_and_permit_allow(self) -> None:
        """main_structure before construction, or environmental_review before sthj approves,
        is InvalidTransition; an unknown step is InvalidCommand; a step counts once."""
        county = County(plugins=["jiangle"])
        county.create()
        county.do("negotiate", "P1", "guo")
        with pytest.raises(InvalidTransition, match="comes later"):
            county.do("record_step", "P1", "guo", step="main_structure")
        with pytest.raises(InvalidCommand, match="step"):
            county.do("record_step", "P1", "guo", step="signed")
        county.do("record_step", "P1", "guo", step="site_visit")
        with pytest.raises(InvalidTransition, match="completed already"):
            county.do("record_step", "P1", "guo", step="site_visit")
        assert county.engine.points() == {"light_alloy": 4}

    def test_apply_waits_for_the_agent_and_the_task_force(self) -> None:
        """入园通办: refused with InvalidCommand naming what is missing, then accepted."""
        county = County(plugins=["jiangle"])
        county.to_signed()
        with pytest.raises(InvalidCommand, match=r"an agent .* and its task force"):
            county.do("apply", "P1", "fuyuan")
        county.do("delegate", "P1", "fuyuan", agent="daiban")
        county.do("form_task_force", "P1", "huang", members=["o_zj"], policy="一企一策")
        county.do("apply", "P1", "daiban")
        assert county.stage() == "approval"

    def test_one_task_force_per_project_after_the_groups_approval(self) -> None:
        """Before approval and a second time are both InvalidTransition; members are told."""
        county = County(plugins=["jiangle"])
        county.to_decision()
        with pytest.raises(InvalidTransition, match="leading group's approval"):
            county.do("form_task_force", "P1", "huang", members=["o_zj"])
        county.approve_in_meeting()
        county.take_notices()
        county.do("form_task_force", "P1", "huang", members=["o_zj", "o_fgw"])
        assert kinds(county.take_notices()) == [
            ("jiangle.task_force_formed", "o_fgw"),
            ("jiangle.task_force_formed", "o_zj"),
        ]
        with pytest.raises(InvalidTransition, match="already"):
            county.do("form_task_force", "P1", "huang", members=["o_zj"])

    def test_conduct_items_move_the_teams_points_both_ways(self) -> None:
        """A positive item adds 2, a negative one takes 5; the weights are county settings."""
        jiangle.configure(negative_points=10)
        county = County(plugins=["jiangle"])
        county.create()
        county.do("record_conduct", "P1", "huang", item="P02")
        county.do("record_conduct", "P1", "huang", item="N01", department="zrzy")
        assert county.engine.points() == {"light_alloy": -8}
        assert county.engine.metrics()["jiangle.conduct"] == {
            "gxj": {"positive": 1, "negative": 0},
            "zrzy": {"positive": 0, "negative": 1},
        }


# -- Gaoqing ---------------------------------------------------------------------------------------

GAOQING_PEOPLE = [
    Actor("lian", ["chain_leader"], teams=["new_materials"]),
    Actor("fulian", ["deputy_chain_leader"], teams=["new_materials"]),
    Actor("other_lian", ["chain_leader"], teams=["health"]),
    Actor("hq1", ["officer"], department="hq"),
    Actor("o_gxj", ["officer"], department="gxj"),
]


def gaoqing_county(**fields: Any) -> County:
    county = County(plugins=["gaoqing"], actors=[*county_actors(), *GAOQING_PEOPLE])
    county.create(**{"chain": "new_materials", "origin": "浙江", **fields})
    return county


class TestGaoqing:
    def test_gaoqing_adds_its_units(self) -> None:
        """The investment-promotion centre, the chain HQ and two towns are departments."""
        departments = gaoqing_county().engine.settings.departments
        assert departments["tzcj"] == "投资促进中心"
        assert departments["hq"] == "产业链招商工作指挥部"
        assert {"changjia", "tangfang"} <= set(departments)

    def test_a_week_without_a_visit_tells_the_chain_leader_and_the_hq(self) -> None:
        """Negotiating on Monday: the week ends at 24:00 next Monday; one notice, then weekly."""
        county = gaoqing_county()
        county.do("negotiate", "P1", "guo")
        assert county.deadline("P1.gaoqing.visit") == "2026-03-09 24:00"
        county.advance_to(at("2026-03-10"))
        assert kinds(county.take_notices()) == [
            ("gaoqing.visit_missed", "hq1"),
            ("gaoqing.visit_missed", "lian"),
        ]
        assert county.deadline("P1.gaoqing.visit") == "2026-03-16 24:00"

    def test_a_visit_restarts_the_week_and_only_the_hq_records_one(self) -> None:
        """A visit on Wednesday moves the deadline to the next Wednesday's end."""
        county = gaoqing_county()
        county.do("negotiate", "P1", "guo")
        county.advance_to(at("2026-03-04"))
        with pytest.raises(NotAuthorized, match="not an officer of hq"):
            county.do("record_visit", "P1", "o_gxj", findings="走访")
        county.do("record_visit", "P1", "hq1", findings="协助立项", assist=["fgw"])
        assert kinds(county.take_notices()) == [("gaoqing.visit_assist", "o_fgw")]
        assert county.deadline("P1.gaoqing.visit") == "2026-03-11 24:00"

    def test_visits_end_when_construction_starts_and_never_apply_to_other_projects(self) -> None:
        """A project without a chain has no visit deadline; a started one has none left."""
        assert "P1.gaoqing.visit" not in gaoqing_county(chain=None).engine.deadlines("P1")
        county = gaoqing_county()
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.pass_pre_review()
        county.approve_in_meeting()
        county.do("sign", "P1", "guo")
        county.do("apply", "P1", "fuyuan")
        county.approve_all()
        county.do("start_construction", "P1", "guo")
        assert "P1.gaoqing.visit" not in county.engine.deadlines("P1")

    def test_a_late_branch_reaches_the_chains_five_role_people(self) -> None:
        """Chain leader, deputy and the lead department (gxj for new materials) hear of it."""
        county = gaoqing_county()
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.pass_pre_review()
        county.approve_in_meeting()
        county.do("sign", "P1", "guo")
        county.do("apply", "P1", "fuyuan", departments=["fgw"])
        county.do("record_visit", "P1", "hq1", findings="跟进")
        county.take_notices()
        county.advance_to(at("2026-03-10", "01:00"))
        overdue = [n["to"] for n in county.take_notices() if n["kind"] == "overdue"]
        assert {"fulian", "lian", "o_gxj"} <= set(overdue)
        assert len(overdue) == len(set(overdue))

    def test_the_campaign_counts_out_of_province_projects_signed_in_the_period(self) -> None:
        """Funds of a 浙江 project count, a 山东 one's do not; over 1亿 counts as new."""
        gaoqing.configure(
            campaign=gaoqing.CampaignSettings(
                period_start=date(2026, 1, 1), period_end=date(2026, 6, 30)
            )
        )
        county = gaoqing_county()
        county.create("P2", chain="new_materials", origin="山东")
        for project in ("P1", "P2"):
            county.do("negotiate", project, "guo")
            county.do("submit_pre_review", project, "guo", materials=[])
            county.pass_pre_review(project)
            county.approve_in_meeting(project)
            county.do(
                "sign", project, "guo", agreed_investment="0.8亿" if project == "P2" else None
            )
            county.do("report_funds", project, "guo", amount="10亿")
        found = county.engine.metrics()["gaoqing.campaign"]
        assert found["out_of_province_funds"] == 1_000_000_000
        assert found["funds_progress"] == Fraction(1, 3)
        assert found["funds_met"] is False
        assert (found["new_projects"], found["projects_met"]) == (1, False)

    def test_a_units_target_follows_its_class(self) -> None:
        """gxj is class A (target 3); an unclassed unit is C (target 1)."""
        county = gaoqing_county()
        county.create("P2", department="xzsp", chain="health")
        units = county.engine.metrics()["gaoqing.units"]
        assert units["gxj"] == {"class": "A", "target": 3, "signed": 0, "score": 0}
        assert units["xzsp"]["class"] == "B"
        gaoqing.configure(unit_classes={})
        assert county.engine.metrics()["gaoqing.units"]["gxj"]["target"] == 1


# -- Shangnan --------------------------------------------------------------------------------------


class TestShangnan:
    def test_apply_needs_a_measure_set(self) -> None:
        """五个一: InvalidCommand without measures; the leader's set_measures clears the way."""
        county = County(plugins=["shangnan"])
        county.to_signed()
        with pytest.raises(InvalidCommand, match="measure set"):
            county.do("apply", "P1", "fuyuan")
        with pytest.raises(InvalidCommand, match="non-empty"):
            county.do("set_measures", "P1", "huang", measures=[""])
        county.do("set_measures", "P1", "huang", measures=["专人跟进环评"])
        county.do("apply", "P1", "fuyuan")
        assert county.stage() == "approval"

    def test_measures_given_at_create_count(self) -> None:
        """A project created with its measures goes straight to approval."""
        county = County(plugins=["shangnan"])
        county.create(measures=["标准化厂房拎包入驻"])
        county.do("negotiate", "P1", "guo")
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.pass_pre_review()
        county.approve_in_meeting()
        county.do("sign", "P1", "guo")
        county.do("apply", "P1", "fuyuan")
        assert county.stage() == "approval"

    def test_a_tasks_focus_follows_the_stage_and_an_unrated_task_runs_late(self) -> None:
        """Intent: sign; no meeting in lead; unrated at 20 wd: leader and department told."""
        county = County(plugins=["shangnan"])
        county.create()
        with pytest.raises(InvalidTransition, match="intent, signed and started"):
            county.do("assign_task", "P1", "huang", task="T1", text="x", department="zrzy")
        county.do("negotiate", "P1", "guo")
        result = county.do("assign_task", "P1", "huang", task="T1", text="用地", department="zrzy")
        assert result.events[-1].payload["focus"] == "sign"
        assert county.deadline("P1.shangnan.task.T1") == "2026-03-30 24:00"
        county.take_notices()
        county.advance_to(at("2026-04-01"))
        assert kinds(county.take_notices()) == [
            ("shangnan.task_overdue", "huang"),
            ("shangnan.task_overdue", "o_zrzy"),
        ]

    def test_a_poor_rating_is_escalated_and_a_task_is_rated_once(self) -> None:
        """The chair rates poor: the leader and the department hear; a second rating fails."""
        county = County(plugins=["shangnan"])
        county.create()
        county.do("negotiate", "P1", "guo")
        county.do("assign_task", "P1", "huang", task="T1", text="用地", department="zrzy")
        county.take_notices()
        with pytest.raises(InvalidCommand, match="rating"):
            county.do("rate_task", "P1", "chair", task="T1", rating="bad")
        county.do("rate_task", "P1", "chair", task="T1", rating="poor")
        assert kinds(county.take_notices()) == [
            ("shangnan.task_poor", "huang"),
            ("shangnan.task_poor", "o_zrzy"),
        ]
        with pytest.raises(InvalidTransition, match="rated already"):
            county.do("rate_task", "P1", "huang", task="T1", rating="good")
        assert "P1.shangnan.task.T1" not in county.engine.deadlines("P1")

    @pytest.mark.parametrize(
        ("value", "shown"),
        [
            (Fraction(6, 11), "54.5%"),
            (Fraction(1, 8), "12.5%"),
            (Fraction(1, 2000), "0.1%"),
            (Fraction(1, 1), "100.0%"),
            (None, None),
        ],
    )
    def test_rates_display_rounded_half_up_to_a_tenth_of_a_percent(
        self, value: Fraction | None, shown: str | None
    ) -> None:
        """Huguan's 6 of 11 is 54.5 %; 0.05 % rounds up to 0.1 %."""
        assert shangnan.percent(value) == shown

    def test_the_four_rates_and_the_trip_shortfall(self) -> None:
        """One signed project: rates are 1, 0...; a squad with no March trip lacks one."""
        county = County(plugins=["shangnan"])
        county.to_signed()
        county.create("P2", by="any_recruiter", team="new_agriculture")
        county.do("record_trip", "P2", "any_recruiter", destination="西安")
        metrics = county.engine.metrics()
        assert metrics["shangnan.fulfilment_rate"] == 1
        assert metrics["shangnan.start_rate"] == 0
        assert metrics["shangnan.completion_rate"] is None
        assert metrics["shangnan.kpi_display"]["fulfilment_rate"] == "100.0%"
        assert metrics["shangnan.trips"] == {"2026-03": {"new_agriculture": 1}}
        assert metrics["shangnan.trip_shortfall"] == {"2026-03": {"light_alloy": 1}}
        county.do("terminate", "P1", "huang", reason="违约")
        assert county.engine.metrics()["shangnan.fulfilment_rate"] == 0


# -- the console channel ---------------------------------------------------------------------------


class TestConsoleChannel:
    def test_each_notice_is_logged_with_its_kind_project_and_recipients(self) -> None:
        """One ``approvalflow.notice`` log line per notice, at info level."""
        county = County(plugins=["console"])
        county.to_decision()
        with capture_logs() as logs:
            county.approve_in_meeting()
        lines = [line for line in logs if line["event"] == "approvalflow.notice"]
        assert len(lines) == 1
        assert lines[0]["kind"] == "decision"
        assert lines[0]["project"] == "P1"
        assert lines[0]["recipients"] == ["guo", "huang"]
        assert lines[0]["log_level"] == "info"
        assert lines[0]["fields"]["tally"]["outcome"] == "approved"


# -- county numbers under settings.plugins --------------------------------------------------------


class TestCountyNumbersInSettings:
    def test_nested_numbers_dates_and_specs_are_structured(self) -> None:
        """Gaoqing's campaign dates come as ISO text and a chain as a mapping."""
        settings = Settings.default().merged(
            {
                "plugins": {
                    "gaoqing": {
                        "campaign": {"drive_end": "2024-06-15", "projects_target": 25},
                        "chains": {"silicon": {"name": "硅材料", "lead_department": "gxj"}},
                    }
                }
            }
        )
        own = gaoqing.config.of(settings)
        assert own.campaign.drive_end == date(2024, 6, 15)
        assert own.campaign.projects_target == 25
        assert own.campaign.funds_target == gaoqing.config.current.campaign.funds_target
        assert own.chains["silicon"] == gaoqing.ChainSpec("硅材料", "gxj")
        assert "new_materials" in own.chains  # merged key by key, not replaced

    @pytest.mark.parametrize(
        ("county", "overrides", "path"),
        [
            ("huguan", {"issue_deadline_wd": True}, "settings.plugins.huguan.issue_deadline_wd"),
            (
                "shangnan",
                {"task_deadline": 20},
                "extra fields found (task_deadline) @ settings.plugins",
            ),
            ("gaoqing", {"campaign": {"drive_end": 20240615}}, "campaign.drive_end"),
        ],
    )
    def test_a_wrong_number_refuses_the_engine(
        self, county: str, overrides: dict[str, Any], path: str
    ) -> None:
        """A misspelt or mistyped county number fails when the engine is built, by its path."""
        with pytest.raises(SettingsError, match=re.escape(path)):
            County(plugins=[county], settings={"plugins": {county: overrides}})

    def test_a_projects_numbers_follow_its_rule_set(self) -> None:
        """Shangnan's task deadline: 20 wd for P1 (2026-1), 10 wd for P2 (2026-2)."""
        first = County(
            plugins=["shangnan"], settings={"rules_version": "2026-1"}, actors=county_actors()
        )
        first.create("P1")
        second = County(
            plugins=["shangnan"],
            settings={"rules_version": "2026-2", "plugins": {"shangnan": {"task_deadline_wd": 10}}},
            store=first.engine.store,
            start=first.clock.now(),
            actors=county_actors(),
        )
        second.create("P2")
        for project in ("P1", "P2"):
            second.do("negotiate", project, "guo")
            second.do(
                "assign_task", project, "huang", task="T1", text="协调用地", department="zrzy"
            )
        assert second.deadline("P1.shangnan.task.T1") == "2026-03-30 24:00"
        assert second.deadline("P2.shangnan.task.T1") == "2026-03-16 24:00"


# -- every hook documented and tested --------------------------------------------------------------

HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("approvalflow_"))


class TestHooksStayDocumentedAndTested:
    def test_every_hook_has_a_section_in_the_plugin_guide(self) -> None:
        """docs/plugins.md has a heading naming each hook exactly (as datasette requires)."""
        headings = re.findall(r"^#+ .*?`(approvalflow_\w+)", GUIDE.read_text(), re.MULTILINE)
        assert [hook for hook in HOOKS if hook not in headings] == []
        assert [name for name in headings if name not in HOOKS] == []

    def test_the_guides_examples_run_as_written(self) -> None:
        """Every Python block of docs/plugins.md runs, in order, in one namespace."""
        blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.DOTALL)
        assert len(blocks) >= len(HOOKS)
        namespace: dict[str, Any] = {}
        for block in blocks:
            exec(compile(block, str(GUIDE), "exec"), namespace)

    def test_every_hook_has_a_test(self) -> None:
        """Some test module defines ``test_hook_<hook name>`` for every hook."""
        source = "".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
        tested = set(re.findall(r"def test_hook_(approvalflow_\w+)\(", source))
        assert [hook for hook in HOOKS if hook not in tested] == []


class TestHooks:
    """One test per hook, each through a county plugin where one uses it."""

    def test_hook_approvalflow_settings(self) -> None:
        """Jiaocheng's answer opens notify-and-commit for fgw and zj; a scenario overrides it."""
        assert County(plugins=["jiaocheng"]).engine.settings.commitment.departments == (
            "fgw",
            "zj",
        )
        later = County(plugins=["jiaocheng"], settings={"commitment": {"departments": ["fgw"]}})
        assert later.engine.settings.commitment.departments == ("fgw",)

    def test_hook_approvalflow_official_calendar(self) -> None:
        """Official data for 2027 makes a deadline counted through 2027 final, not provisional."""

        class Calendar2027:
            @hookimpl
            def approvalflow_official_calendar(self) -> list[OfficialYear]:
                return [OfficialYear(2027, days_off=[date(2027, 1, 1)], makeup_workdays=[])]

        for plugins, provisional in (([], True), ([Calendar2027()], False)):
            county = County(plugins=plugins, start=at("2026-12-30"))
            county.to_pre_review()
            assert county.engine.deadlines("P1")["P1.pre_review"].provisional is provisional

    def test_hook_approvalflow_commands(self) -> None:
        """Each county's commands join the engine's; without the plugin they are unknown."""
        assert {"raise_issue", "assign_issue", "resolve_issue"} <= set(
            County(plugins=["huguan"]).engine.command_names()
        )
        county = County()
        county.create()
        with pytest.raises(InvalidCommand, match="unknown command 'record_step'"):
            county.do("record_step", "P1", "guo", step="site_visit")

    def test_hook_approvalflow_project_fields(self) -> None:
        """Huguan accepts ``town`` (kept in ``extra``); the built-in workflow refuses it."""
        county = County(plugins=["huguan"])
        county.create(town="龙泉镇")
        assert county.engine.project("P1").extra == {"town": "龙泉镇"}
        with pytest.raises(InvalidCommand, match="unknown project field"):
            County().create(town="龙泉镇")

    def test_hook_approvalflow_route(self) -> None:
        """Shangnan's route refuses apply without measures; once given, the default route runs."""
        county = County(plugins=["shangnan"])
        county.to_signed()
        with pytest.raises(InvalidCommand, match="五个一"):
            county.do("apply", "P1", "fuyuan")
        county.do("set_measures", "P1", "huang", measures=["一企一策"])
        county.do("apply", "P1", "fuyuan")
        assert sorted(county.engine.project("P1").branches) == ["fgw", "sthj", "yj", "zj", "zrzy"]

    def test_hook_approvalflow_timers(self) -> None:
        """A Shangnan task's deadline is a timer: listed in deadlines and stored, until rated."""
        county = County(plugins=["shangnan"])
        county.create()
        county.do("negotiate", "P1", "guo")
        county.do("assign_task", "P1", "huang", task="T1", text="x", department="fgw")
        assert [t.kind for t in county.engine.store.timers("P1")] == ["shangnan.task"]
        county.do("rate_task", "P1", "huang", task="T1", rating="good")
        assert county.engine.store.timers("P1") == []

    def test_hook_approvalflow_fire_timer(self) -> None:
        """Huguan's issue timer fires at its due time: the event is stamped then, one notice."""
        county = huguan_signed()
        county.do("raise_issue", "P1", "guo", issue="I1", text="x")
        county.do("assign_issue", "P1", "huang", issue="I1", department="zj")
        county.advance(timedelta(days=20))
        overdue = [e for e in county.engine.history("P1") if e.type == "huguan.issue_overdue"]
        assert [e.at for e in overdue] == [at("2026-03-10", "00:00")]

    def test_hook_approvalflow_metrics(self) -> None:
        """Shangnan's four rates sit beside the built-in metrics."""
        county = County(plugins=["shangnan"])
        county.to_signed()
        metrics = county.engine.metrics()
        assert metrics["start_rate"] == 0
        assert metrics["shangnan.start_rate"] == 0
        assert metrics["shangnan.funds_rate"] == 0

    def test_hook_approvalflow_notify(self) -> None:
        """Every plugin notice goes through the notify hook, like the built-in ones."""
        delivered: list[Notice] = []

        class Inbox:
            @hookimpl
            def approvalflow_notify(self, notice: Notice) -> None:
                delivered.append(notice)

        county = County(plugins=["huguan", Inbox()])
        county.to_signed()
        county.do("raise_issue", "P1", "guo", issue="I1", text="用电")
        assert delivered[-1].kind == "huguan.issue_raised"
        assert delivered[-1].recipients == ("huang", "guo")

    def test_hook_approvalflow_escalation(self) -> None:
        """A late branch is an escalation (``overdue``); Huguan's own notice is not one."""
        seen: list[str] = []

        class Ledger:
            @hookimpl
            def approvalflow_escalation(self, notice: Notice) -> None:
                seen.append(notice.kind)

        county = County(plugins=["huguan", Ledger()])
        county.to_approval(departments=["fgw"])
        county.advance(timedelta(days=10))
        assert seen == ["overdue"]
        assert ("overdue", "guo") in kinds(county.take_notices())

    def test_hook_approvalflow_event(self) -> None:
        """Observers see plugin events after they are stored, with the project state after."""
        seen: list[tuple[str, Any]] = []

        class Observer:
            @hookimpl
            def approvalflow_event(self, event: Event, project: Any) -> None:
                seen.append((event.type, project.plugin_data.get("jiangle", {}).get("task_force")))

        county = County(plugins=["jiangle", Observer()])
        county.to_signed()
        county.do("form_task_force", "P1", "huang", members=["o_zj"])
        assert ("jiangle.task_force_formed", {"members": ["o_zj"], "policy": None}) in seen
