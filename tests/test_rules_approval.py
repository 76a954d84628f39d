"""Rules 4 to 9: parallel approval, fault-tolerant acceptance, return for correction, time
limits, notice-and-commitment and urging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from builders import APPROVERS, MONDAY, County, kinds

from approvalflow import (
    InvalidCommand,
    InvalidTransition,
    KeyMaterialMissing,
    NotAuthorized,
    UnknownMaterial,
    hookimpl,
)
from approvalflow.calendar import SHANGHAI

# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")


@pytest.fixture
def county() -> County:
    county = County()
    county.to_approval()
    county.take_notices()
    return county


class TestParallelApproval:
    def test_apply_opens_a_branch_per_department_with_its_time_limit(self, county: County) -> None:
        """Applied Monday 2026-03-02: fgw 5 wd, zj and yj 7, zrzy and sthj 10."""
        assert county.stage() == "approval"
        assert {d: county.branch(d) for d in APPROVERS} == dict.fromkeys(APPROVERS, "pending")
        assert county.deadline("P1.approval.fgw") == "2026-03-09 24:00"
        assert county.deadline("P1.approval.zj") == "2026-03-11 24:00"
        assert county.deadline("P1.approval.sthj") == "2026-03-16 24:00"

    def test_branches_move_in_any_order_and_the_last_approval_completes(
        self, county: County
    ) -> None:
        """Every branch approved, in reverse order: approved, and three parties told."""
        county.approve_all(departments=reversed(APPROVERS))
        assert county.stage() == "approved"
        assert kinds(county.take_notices()) == [
            ("approved", "fuyuan"),
            ("approved", "guo"),
            ("approved", "huang"),
        ]

    def test_one_rejected_branch_rejects_the_project(self, county: County) -> None:
        """The other branches stop mattering; the leader is told why."""
        county.do("accept", "P1", "o_fgw")
        county.do("reject", "P1", "o_zrzy", reason="用地不符合规划")
        assert county.stage() == "rejected"
        notices = county.take_notices()
        assert ("rejected", "huang") in kinds(notices)
        assert notices[0]["reasons"] == ["zrzy: 用地不符合规划"]

    def test_an_officer_of_a_department_without_a_branch_gets_invalid_transition(self) -> None:
        """Routing sent no zj branch, so zj's officer has nothing to act on."""
        county = County()
        county.to_approval(departments=["fgw", "zrzy"])
        with pytest.raises(InvalidTransition, match="no approval branch for department zj"):
            county.do("accept", "P1", "o_zj")

    def test_a_non_officer_gets_not_authorized(self, county: County) -> None:
        """The applicant cannot approve its own project."""
        with pytest.raises(NotAuthorized):
            county.do("approve", "P1", "fuyuan")

    def test_approve_before_accept_is_a_wrong_state(self, county: County) -> None:
        """A pending branch must be accepted first."""
        with pytest.raises(InvalidTransition, match=r"approval\.fgw is pending"):
            county.do("approve", "P1", "o_fgw")

    def test_a_routing_plugin_can_drop_a_department(self) -> None:
        """A county rule: no environmental review for projects without emissions."""

        class NoEmissionsNoSthj:
            @hookimpl
            def approvalflow_route(self, project, settings):  # type: ignore[no-untyped-def]
                return ["sthj"] if project.emissions else None

        without_sthj = [d for d in APPROVERS if d != "sthj"]
        county = County(
            plugins=[NoEmissionsNoSthj()], settings={"routing": {"departments": without_sthj}}
        )
        county.to_signed()
        county.engine.execute("create", "P2", "guo", {**_fields(), "emissions": False})
        county.do("apply", "P1", "fuyuan")
        assert set(county.engine.project("P1").branches) == set(APPROVERS)
        for command in ("negotiate",):
            county.do(command, "P2", "guo")
        county.do("submit_pre_review", "P2", "guo", materials=[])
        county.pass_pre_review("P2")
        county.approve_in_meeting("P2")
        county.do("sign", "P2", "guo")
        county.do("apply", "P2", "fuyuan")
        assert set(county.engine.project("P2").branches) == set(APPROVERS) - {"sthj"}


class TestFaultTolerantAcceptance:
    def test_a_key_material_can_never_be_deficient(self, county: County) -> None:
        """eia_report is key: KeyMaterialMissing, and the branch stays pending."""
        with pytest.raises(KeyMaterialMissing, match="eia_report"):
            county.do("accept", "P1", "o_sthj", deficient=["eia_report"])
        assert county.branch("sthj") == "pending"

    def test_a_material_the_department_does_not_require_is_invalid(self, county: County) -> None:
        """fgw does not require site photos."""
        with pytest.raises(InvalidCommand, match="site_photos"):
            county.do("accept", "P1", "o_fgw", deficient=["site_photos"])
        with pytest.raises(UnknownMaterial):
            county.do("accept", "P1", "o_fgw", deficient=["moon_rock"])

    def test_deficient_acceptance_carries_a_supply_deadline(self, county: County) -> None:
        """20 wd from Monday 2026-03-02 is Monday 2026-03-30."""
        county.do("accept", "P1", "o_sthj", deficient=["site_photos"])
        assert county.branch("sthj") == "deficient"
        assert county.deadline("P1.approval.sthj.supply") == "2026-03-30 24:00"

    def test_approve_while_deficient_is_conditional_until_supplied(self, county: County) -> None:
        """Approved with the permit withheld; the last supply makes it approved."""
        county.do("accept", "P1", "o_sthj", deficient=["site_photos", "credit_report"])
        county.do("approve", "P1", "o_sthj")
        assert county.branch("sthj") == "conditional"
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.branch("sthj") == "conditional"
        county.do("supply", "P1", "fuyuan", materials=["credit_report"])
        assert county.branch("sthj") == "approved"
        assert "P1.approval.sthj.supply" not in county.engine.deadlines("P1")

    def test_supply_before_approval_makes_the_branch_accepted(self, county: County) -> None:
        """Deficient, then supplied: accepted, and the supply deadline is gone."""
        county.do("accept", "P1", "o_yj", deficient=["org_chart"])
        county.do("supply", "P1", "fuyuan", materials=["org_chart"])
        assert county.branch("yj") == "accepted"

    def test_reminder_at_the_end_of_the_17th_working_day_then_revocation(
        self, county: County
    ) -> None:
        """Reminder 2026-03-25 24:00 to the applicant; revoked 2026-03-30 24:00, leader told."""
        county.do("accept", "P1", "o_sthj", deficient=["site_photos"])
        county.do("approve", "P1", "o_sthj")
        county.advance_to(datetime(2026, 3, 25, 23, 59, tzinfo=SHANGHAI))
        assert not [n for n in county.take_notices() if n["kind"] == "reminder"]
        county.advance(timedelta(minutes=1))
        reminders = [n for n in county.take_notices() if n["kind"] == "reminder"]
        assert [(n["to"], n["materials"]) for n in reminders] == [("fuyuan", ["site_photos"])]
        county.advance_to(datetime(2026, 3, 31, 0, 0, tzinfo=SHANGHAI))
        assert county.branch("sthj") == "revoked"
        revoked = [n for n in county.take_notices() if n["kind"] == "revoked"]
        assert sorted(n["to"] for n in revoked) == ["fuyuan", "huang"]
        assert county.stage() == "approval"

    def test_after_revocation_no_second_deficient_acceptance(self, county: County) -> None:
        """apply re-opens the revoked branch; accepting it deficiently again is refused."""
        county.do("accept", "P1", "o_sthj", deficient=["site_photos"])
        county.advance(timedelta(days=40))
        assert county.branch("sthj") == "revoked"
        county.do("apply", "P1", "fuyuan")
        assert county.branch("sthj") == "pending"
        with pytest.raises(InvalidCommand, match="may not accept it with deficient"):
            county.do("accept", "P1", "o_sthj", deficient=["site_photos"])
        county.do("accept", "P1", "o_sthj")
        assert county.branch("sthj") == "accepted"

    def test_apply_during_approval_without_a_revoked_branch_is_a_wrong_state(
        self, county: County
    ) -> None:
        """Nothing to re-open."""
        with pytest.raises(InvalidTransition, match="has none"):
            county.do("apply", "P1", "fuyuan")


class TestReturnForCorrection:
    def test_return_stops_the_clock_and_supply_resumes_with_the_days_left(
        self, county: County
    ) -> None:
        """zj due 03-11; returned Wed 03-04 with 5 wd left (5,6,9,10,11); supplied Mon 03-16:
        back to accepted, due 5 wd after 03-16 = 03-23."""
        county.do("accept", "P1", "o_zj")
        county.advance_to(datetime(2026, 3, 4, 10, 0, tzinfo=SHANGHAI))
        county.do("return", "P1", "o_zj", corrections=["site_photos", "business_license"])
        assert county.branch("zj") == "returned"
        notices = county.take_notices()
        assert [(n["kind"], n["to"]) for n in notices] == [("returned", "fuyuan")]
        assert sorted(notices[0]["corrections"]) == ["business_license", "site_photos"]
        assert "P1.approval.zj" not in county.engine.deadlines("P1")
        county.advance_to(datetime(2026, 3, 16, 9, 0, tzinfo=SHANGHAI))
        assert not [n for n in county.take_notices() if n.get("department") == "zj"]
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.branch("zj") == "returned"
        county.do("supply", "P1", "fuyuan", materials=["business_license"])
        assert county.branch("zj") == "accepted"
        assert county.deadline("P1.approval.zj") == "2026-03-23 24:00"

    def test_no_days_left_resumes_at_the_end_of_the_supply_day(self, county: County) -> None:
        """Returned on its deadline day (zj due 03-11): supplied Thu 03-12, due that day's end
        (D8); supplied on Saturday 03-14, due the end of Monday 03-16, never a day off."""
        county.do("accept", "P1", "o_zj")
        county.advance_to(datetime(2026, 3, 11, 10, 0, tzinfo=SHANGHAI))
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        county.advance_to(datetime(2026, 3, 12, 9, 0, tzinfo=SHANGHAI))
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.deadline("P1.approval.zj") == "2026-03-12 24:00"
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        county.advance_to(datetime(2026, 3, 14, 9, 0, tzinfo=SHANGHAI))
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.deadline("P1.approval.zj") == "2026-03-16 24:00"

    def test_an_agent_hears_of_a_return_too(self) -> None:
        """With a delegation, the returned notice goes to the applicant and the agent."""
        county = County()
        county.to_approval()
        county.do("delegate", "P1", "fuyuan", agent="daiban")
        county.take_notices()
        county.do("return", "P1", "o_fgw", corrections=["feasibility_study"])
        assert kinds(county.take_notices()) == [("returned", "daiban"), ("returned", "fuyuan")]
        county.do("supply", "P1", "daiban", materials=["feasibility_study"])
        assert county.branch("fgw") == "pending"
        event = county.engine.history("P1")[-2]
        assert (event.by, event.on_behalf_of) == ("daiban", "fuyuan")


class TestTimeLimits:
    def test_an_open_branch_past_its_limit_is_overdue_once(self, county: County) -> None:
        """fgw's limit ends 03-09 24:00: the leader and fgw's officers are told, once."""
        county.advance_to(datetime(2026, 3, 10, 0, 0, tzinfo=SHANGHAI))
        overdue = [n for n in county.take_notices() if n["kind"] == "overdue"]
        assert sorted(n["to"] for n in overdue) == ["huang", "o_fgw"]
        assert overdue[0]["department"] == "fgw"
        county.advance(timedelta(days=2))
        assert not [
            n for n in county.take_notices() if n["kind"] == "overdue" and n["department"] == "fgw"
        ]

    def test_deemed_approval_approves_a_silent_department(self) -> None:
        """With fgw under deemed approval, its silence past the limit approves it."""
        county = County(settings={"deemed_approval": ["fgw"]})
        county.to_approval()
        county.take_notices()
        county.advance_to(datetime(2026, 3, 10, 0, 0, tzinfo=SHANGHAI))
        assert county.branch("fgw") == "approved"
        assert not [n for n in county.take_notices() if n["kind"] == "overdue"]

    def test_a_department_deemed_to_approve_at_its_limit_took_exactly_its_limit(self) -> None:
        """Deemed at 03-09 24:00 (stamped 03-10 00:00): fgw took 5 wd, not 6."""
        county = County(settings={"deemed_approval": ["fgw"]})
        county.to_approval()
        county.advance_to(datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI))
        assert county.engine.metrics()["department_days"]["fgw"]["max"] == 5


class TestCommitment:
    @pytest.fixture
    def committed(self) -> County:
        county = County(settings={"commitment": {"departments": ["yj"]}})
        county.to_approval()
        county.do("accept_commitment", "P1", "fuyuan", department="yj")
        county.take_notices()
        return county

    def test_a_pledge_approves_at_once_with_a_verification_deadline(
        self, committed: County
    ) -> None:
        """yj approved on commitment; verification due 60 wd later."""
        assert committed.branch("yj") == "approved"
        assert "P1.approval.yj.verify" in committed.engine.deadlines("P1")

    def test_a_department_not_eligible_is_refused(self, committed: County) -> None:
        """Only the departments a county lists accept commitments."""
        with pytest.raises(InvalidCommand, match="not commitment-eligible"):
            committed.do("accept_commitment", "P1", "fuyuan", department="fgw")

    def test_a_branch_not_pending_is_a_wrong_state_before_any_argument_error(
        self, committed: County
    ) -> None:
        """yj is approved already: InvalidTransition, even with an unknown argument too."""
        with pytest.raises(InvalidTransition, match=r"needs branch approval\.yj pending"):
            committed.do("accept_commitment", "P1", "fuyuan", department="yj", note="again")

    def test_a_failed_verification_revokes_and_tells_the_leader(self, committed: County) -> None:
        """verify passed: false: revoked, the applicant and the leader are told."""
        committed.do("verify", "P1", "o_yj", passed=False)
        assert committed.branch("yj") == "revoked"
        assert kinds(committed.take_notices()) == [("revoked", "fuyuan"), ("revoked", "huang")]

    def test_after_leaving_approval_a_revocation_leaves_the_stage(self, committed: County) -> None:
        """Project already approved: the branch is revoked, the stage stays; leader decides."""
        committed.approve_all(departments=("fgw", "zrzy", "zj", "sthj"))
        assert committed.stage() == "approved"
        committed.do("start_construction", "P1", "guo")
        committed.advance(timedelta(days=120))
        assert committed.branch("yj") == "revoked"
        assert committed.stage() == "construction"
        assert ("revoked", "huang") in kinds(committed.take_notices())

    def test_verify_without_a_pending_commitment_is_a_wrong_state(self, county: County) -> None:
        """fgw approved the ordinary way has nothing to verify."""
        county.do("accept", "P1", "o_fgw")
        with pytest.raises(InvalidTransition):
            county.do("verify", "P1", "o_fgw", passed=True)


class TestUrging:
    def test_the_leader_urges_a_department_whose_officers_are_told(self, county: County) -> None:
        """Both zj officers receive the urge."""
        county.do("urge", "P1", "huang", department="zj")
        assert kinds(county.take_notices()) == [("urge", "o_zj"), ("urge", "o_zj2")]

    def test_only_the_projects_leader_urges(self, county: County) -> None:
        """Another county leader does not hold this project."""
        with pytest.raises(NotAuthorized):
            county.do("urge", "P1", "li", department="zj")


def _fields() -> dict[str, object]:
    from builders import PROJECT_FIELDS

    return dict(PROJECT_FIELDS)


class TestDeemedAcceptance:
    def test_silence_past_the_acceptance_limit_accepts_as_of_arrival(self) -> None:
        """With deemed_acceptance_wd 3, zj untouched by 03-05 24:00 counts as accepted from the
        day it arrived; a branch returned in time (the one-time notice) does not."""
        county = County(settings={"deemed_acceptance_wd": 3})
        county.to_approval()
        assert county.deadline("P1.approval.zj.acceptance") == "2026-03-05 24:00"
        county.do("return", "P1", "o_yj", corrections=["org_chart"])
        county.do("accept", "P1", "o_fgw")
        county.advance_to(datetime(2026, 3, 6, 0, 0, tzinfo=SHANGHAI))
        assert county.branch("zj") == "accepted"
        assert county.branch("yj") == "returned"
        event = next(
            e
            for e in county.engine.history("P1")
            if e.type == "branch_changed"
            and e.payload.get("trigger") == "deem_accepted"
            and e.payload["department"] == "zj"
        )
        assert event.payload["accepted_as_of"] == "2026-03-02T09:00:00+08:00"
        assert county.deadline("P1.approval.zj") == "2026-03-11 24:00"
        assert "P1.approval.fgw.acceptance" not in county.engine.deadlines("P1")

    def test_off_by_default(self) -> None:
        """WORKFLOW.md's built-in settings have no deemed acceptance."""
        county = County()
        county.to_approval()
        assert not [k for k in county.engine.deadlines("P1") if k.endswith(".acceptance")]


class TestClockPauses:
    def test_an_expert_review_stops_the_clock_and_resume_restores_the_days_left(
        self, county: County
    ) -> None:
        """zj due 03-11; paused Wed 03-04 for an expert review (5 wd left); resumed Mon 03-16:
        accepted again, due 5 wd later, 03-23; no overdue while paused."""
        county.do("accept", "P1", "o_zj")
        county.advance_to(datetime(2026, 3, 4, 10, 0, tzinfo=SHANGHAI))
        county.do(
            "pause_clock",
            "P1",
            "o_zj",
            reason="expert_review",
            until="2026-03-13",
            note="联合审图专家评审",
        )
        assert county.branch("zj") == "paused"
        assert "P1.approval.zj" not in county.engine.deadlines("P1")
        paused = county.engine.history("P1")[-1]
        assert (paused.by, paused.payload["reason"], paused.payload["until"]) == (
            "o_zj",
            "expert_review",
            "2026-03-13",
        )
        county.advance_to(datetime(2026, 3, 16, 9, 0, tzinfo=SHANGHAI))
        assert not [n for n in county.take_notices() if n.get("department") == "zj"]
        county.do("resume_clock", "P1", "o_zj")
        assert county.branch("zj") == "accepted"
        assert county.deadline("P1.approval.zj") == "2026-03-23 24:00"

    def test_pause_needs_an_accepted_branch_and_a_known_reason(self, county: County) -> None:
        """A pending branch cannot pause; an unknown reason or a past date is refused."""
        from approvalflow import InvalidCommand

        with pytest.raises(InvalidTransition):
            county.do("pause_clock", "P1", "o_zj", reason="hearing")
        county.do("accept", "P1", "o_zj")
        with pytest.raises(InvalidCommand, match="reason"):
            county.do("pause_clock", "P1", "o_zj", reason="lunch")
        with pytest.raises(InvalidCommand, match="until"):
            county.do("pause_clock", "P1", "o_zj", reason="hearing", until="2026-01-01")
        with pytest.raises(InvalidTransition):
            county.do("resume_clock", "P1", "o_zj")

    def test_a_paused_deficient_branch_keeps_its_supply_deadline(self, county: County) -> None:
        """The supply deadline is the applicant's: a pause does not stop it (revoked 03-30)."""
        county.do("accept", "P1", "o_sthj", deficient=["site_photos"])
        county.do("pause_clock", "P1", "o_sthj", reason="testing")
        county.advance_to(datetime(2026, 3, 31, 0, 0, tzinfo=SHANGHAI))
        assert county.branch("sthj") == "revoked"


class TestExtensions:
    @pytest.fixture
    def county(self) -> County:
        from builders import county_actors

        from approvalflow import Actor

        county = County(
            actors=[
                *county_actors(),
                Actor("zj_head", ["head"], department="zj"),
                Actor("fgw_head", ["head"], department="fgw"),
            ]
        )
        county.to_approval()
        county.take_notices()
        return county

    def test_the_departments_head_extends_with_a_reason_and_the_history_shows_it(
        self, county: County
    ) -> None:
        """zj due 03-11, extended by 3 wd on its head's authority: due 03-16."""
        county.do(
            "extend_limit", "P1", "o_zj", days=3, authority="zj_head", reason="需补充地质勘察"
        )
        assert county.deadline("P1.approval.zj") == "2026-03-16 24:00"
        event = county.engine.history("P1")[-1]
        assert (event.type, event.by, event.payload["authority"], event.payload["reason"]) == (
            "limit_extended",
            "o_zj",
            "zj_head",
            "需补充地质勘察",
        )

    def test_extensions_are_bounded_and_need_an_authority(self, county: County) -> None:
        """Another department's head cannot authorise; at most 10 wd in all."""
        from approvalflow import InvalidCommand

        with pytest.raises(InvalidCommand, match="authority must be zj's head"):
            county.do("extend_limit", "P1", "o_zj", days=3, authority="fgw_head", reason="x")
        county.do("extend_limit", "P1", "o_zj", days=8, authority="huang", reason="复杂项目")
        with pytest.raises(InvalidCommand, match="at most 10"):
            county.do("extend_limit", "P1", "o_zj", days=3, authority="zj_head", reason="再延")
        with pytest.raises(InvalidCommand, match="reason"):
            county.do("extend_limit", "P1", "o_zj", days=1, authority="zj_head")

    def test_an_extension_after_the_overdue_notice_gives_a_new_one_at_the_new_limit(
        self, county: County
    ) -> None:
        """fgw overdue at 03-09 24:00; extended 2 wd to 03-11; overdue again once after it."""
        county.advance_to(datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI))
        assert [n["to"] for n in county.take_notices() if n.get("department") == "fgw"]
        county.do("extend_limit", "P1", "o_fgw", days=2, authority="fgw_head", reason="专家论证")
        assert county.deadline("P1.approval.fgw") == "2026-03-11 24:00"
        county.advance_to(datetime(2026, 3, 12, 9, 0, tzinfo=SHANGHAI))
        assert ("overdue", "o_fgw") in [
            (n["kind"], n["to"]) for n in county.take_notices() if n.get("department") == "fgw"
        ]

    def test_promised_limits_may_not_exceed_statutory_ones(self) -> None:
        """A county promising 25 wd where the law allows 20 is refused at start-up."""
        from approvalflow import SettingsError

        with pytest.raises(SettingsError, match="exceed the statutory"):
            County(settings={"time_limit_wd": {"zj": 25}})


class TestDeadlinesBeforeCommands:
    def test_a_command_after_a_passed_deadline_meets_its_consequence(self) -> None:
        """No worker ran, yet a supply two hours after the supply deadline finds the branch
        revoked: the deadline is applied before the command is judged."""
        county = County()
        county.to_approval(departments=["zj"])
        county.do("accept", "P1", "o_zj", deficient=["site_photos"])
        county.clock.set(datetime(2026, 3, 31, 2, 0, tzinfo=SHANGHAI))
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.branch("zj") == "revoked"
        revoked = [e for e in county.engine.history("P1") if e.payload.get("to") == "revoked"]
        assert revoked[0].at == datetime(2026, 3, 31, 0, 0, tzinfo=SHANGHAI)


class TestLocalDays:
    """Every rule counts Asia/Shanghai days, whatever zone the host's clock answers in (D76).

    The same instants, told by a Shanghai clock or a UTC one, give the same deadlines. Both
    commands come at 07:00 Shanghai time, when the UTC date is still the day before."""

    @pytest.mark.parametrize("zone", [SHANGHAI, UTC], ids=["shanghai_clock", "utc_clock"])
    def test_return_for_correction_counts_the_local_days_left(self, zone: tzinfo) -> None:
        """zj due 03-11. Returned Thu 03-05 07:00: 4 wd left (6, 9, 10, 11), not 5 as from the
        UTC date 03-04; supplied Mon 03-16 07:00: due 4 wd later, 03-20 24:00."""
        county = County(start=MONDAY.astimezone(zone))
        county.to_approval()
        county.do("accept", "P1", "o_zj")
        county.advance_to(datetime(2026, 3, 5, 7, 0, tzinfo=SHANGHAI).astimezone(zone))
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        county.advance_to(datetime(2026, 3, 16, 7, 0, tzinfo=SHANGHAI).astimezone(zone))
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.deadline("P1.approval.zj") == "2026-03-20 24:00"

    @pytest.mark.parametrize("zone", [SHANGHAI, UTC], ids=["shanghai_clock", "utc_clock"])
    def test_a_clock_pause_counts_the_local_days_left(self, zone: tzinfo) -> None:
        """fgw due 03-09. Paused Thu 03-05 07:00: 2 wd left (6, 9); resumed Mon 03-16 07:00:
        due 03-18 24:00. An `until` of 03-04 is yesterday in Shanghai, whatever UTC says."""
        county = County(start=MONDAY.astimezone(zone))
        county.to_approval()
        county.do("accept", "P1", "o_fgw")
        county.advance_to(datetime(2026, 3, 5, 7, 0, tzinfo=SHANGHAI).astimezone(zone))
        with pytest.raises(InvalidCommand, match="before today"):
            county.do("pause_clock", "P1", "o_fgw", reason="hearing", until="2026-03-04")
        county.do("pause_clock", "P1", "o_fgw", reason="hearing", until="2026-03-05")
        county.advance_to(datetime(2026, 3, 16, 7, 0, tzinfo=SHANGHAI).astimezone(zone))
        county.do("resume_clock", "P1", "o_fgw")
        assert county.deadline("P1.approval.fgw") == "2026-03-18 24:00"
