"""Rule 2: instant pre-review (即时初审) and its one-time notice (一次性告知)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from builders import MEMBER_UNITS, County, kinds

from approvalflow import InvalidCommand, InvalidTransition, NotAuthorized, UnknownMaterial
from approvalflow.calendar import SHANGHAI

# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")


@pytest.fixture
def county() -> County:
    county = County()
    county.to_pre_review(materials=["business_license"])
    county.take_notices()
    return county


class TestRound:
    def test_submission_opens_a_round_due_in_three_working_days(self, county: County) -> None:
        """Submitted Monday 09:00, the round is due at the end of Thursday."""
        assert county.stage() == "pre_review.reviewing"
        assert county.deadline("P1.pre_review") == "2026-03-05 24:00"

    def test_every_unit_passing_sends_the_project_to_the_leading_group(
        self, county: County
    ) -> None:
        """The last pass closes the round; the team earns its pre-review points."""
        county.pass_pre_review()
        assert county.stage() == "decision.pending"
        assert county.engine.points() == {"light_alloy": 1 + 1 + 2}
        assert "P1.pre_review" not in county.engine.deadlines("P1")

    def test_a_unit_answers_once_per_round(self, county: County) -> None:
        """A second opinion from the same unit, even by another reviewer, is refused."""
        county.do("opinion", "P1", "r_fgw", verdict="pass")
        with pytest.raises(InvalidTransition, match="fgw has already given"):
            county.do("opinion", "P1", "r_fgw", verdict="fail", reason="changed my mind")
        assert county.engine.project("P1").round.opinions["fgw"]["verdict"] == "pass"

    def test_any_fail_rejects_once_every_unit_answered(self, county: County) -> None:
        """A fail does not end the round early; when it closes the project is rejected."""
        county.do("opinion", "P1", "r_fgw", verdict="fail", reason="属于负面清单")
        assert county.stage() == "pre_review.reviewing"
        for unit in ("gxj", "zrzy", "sthj"):
            county.do("opinion", "P1", f"r_{unit}", verdict="pass")
        assert county.stage() == "rejected"
        notices = county.take_notices()
        assert kinds(notices) == [
            ("rejected", "fuyuan"),
            ("rejected", "guo"),
            ("rejected", "huang"),
        ]
        assert notices[0]["reasons"] == ["fgw: 属于负面清单"]

    def test_a_reviewer_of_a_unit_outside_pre_review_is_not_authorised(
        self, county: County
    ) -> None:
        """zj is not a member unit, so its reviewer may not give an opinion."""
        with pytest.raises(NotAuthorized, match="not a pre-review member unit"):
            county.do("opinion", "P1", "r_zj", verdict="pass")


class TestOpinionArguments:
    @pytest.mark.parametrize(
        ("args", "error", "match"),
        [
            ({"verdict": "maybe"}, InvalidCommand, "verdict"),
            ({}, InvalidCommand, "verdict"),
            ({"verdict": "supplement"}, InvalidCommand, "missing"),
            ({"verdict": "supplement", "missing": []}, InvalidCommand, "missing"),
            ({"verdict": "fail"}, InvalidCommand, "reason"),
            ({"verdict": "supplement", "missing": ["moon_rock"]}, UnknownMaterial, "moon_rock"),
            ({"verdict": "pass", "colour": "red"}, InvalidCommand, "colour"),
        ],
    )
    def test_bad_opinions_are_refused_and_change_nothing(
        self, county: County, args: dict[str, object], error: type[Exception], match: str
    ) -> None:
        """Each malformed opinion names its problem and leaves the project as it was."""
        version = county.engine.project("P1").version
        with pytest.raises(error, match=match):
            county.do("opinion", "P1", "r_gxj", **args)
        assert county.engine.project("P1").version == version


class TestOneTimeNotice:
    def supplement_round(self, county: County) -> None:
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.do("opinion", "P1", "r_fgw", verdict="supplement", missing=["feasibility_study"])
        county.do(
            "opinion",
            "P1",
            "r_zrzy",
            verdict="supplement",
            missing=["land_certificate", "feasibility_study"],
        )
        county.do("opinion", "P1", "r_sthj", verdict="pass")

    def test_one_notice_lists_the_union_of_every_units_missing_materials(
        self, county: County
    ) -> None:
        """The recruiter and the applicant each get one notice with both units' gaps."""
        self.supplement_round(county)
        assert county.stage() == "pre_review.awaiting_materials"
        notices = county.take_notices()
        assert kinds(notices) == [("pre_review_notice", "fuyuan"), ("pre_review_notice", "guo")]
        assert sorted(notices[0]["materials"]) == ["feasibility_study", "land_certificate"]

    def test_a_partial_supply_is_recorded_and_changes_nothing_else(self, county: County) -> None:
        """Supplies add up; until the list is complete the project waits, no new notice."""
        self.supplement_round(county)
        county.take_notices()
        county.do("supply", "P1", "fuyuan", materials=["feasibility_study"])
        state = county.engine.project("P1")
        assert state.stage == "pre_review.awaiting_materials"
        assert "feasibility_study" in state.materials
        assert county.take_notices() == []

    def test_the_supply_that_completes_the_list_opens_a_new_round(self, county: County) -> None:
        """A new round asks every unit again, with a new 3 wd deadline from the supply."""
        self.supplement_round(county)
        county.do("supply", "P1", "fuyuan", materials=["feasibility_study"])
        county.advance(timedelta(days=2))  # Wednesday
        county.do("supply", "P1", "guo", materials=["land_certificate"])
        state = county.engine.project("P1")
        assert state.stage == "pre_review.reviewing"
        assert state.round.number == 2 and state.round.opinions == {}
        assert county.deadline("P1.pre_review") == "2026-03-09 24:00"
        county.do("opinion", "P1", "r_fgw", verdict="pass")  # fgw may answer again

    def test_supply_outside_the_waiting_states_is_refused(self, county: County) -> None:
        """While the units are reviewing there is nothing to supply."""
        with pytest.raises(InvalidTransition):
            county.do("supply", "P1", "fuyuan", materials=["feasibility_study"])


class TestDeadline:
    def test_silent_units_are_reported_overdue_once(self, county: County) -> None:
        """At the deadline the leader and each silent unit hear of it, one notice per unit."""
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.do("opinion", "P1", "r_fgw", verdict="pass")
        county.advance(timedelta(days=3, hours=14, minutes=59))  # Thursday 23:59
        assert county.take_notices() == []
        county.advance(timedelta(minutes=1))
        notices = county.take_notices()
        assert kinds(notices) == [
            ("overdue", "huang"),
            ("overdue", "huang"),
            ("overdue", "r_sthj"),
            ("overdue", "r_zrzy"),
        ]
        assert {n["department"] for n in notices} == {"zrzy", "sthj"}
        county.advance(timedelta(days=30))
        assert county.take_notices() == []
        assert county.stage() == "pre_review.reviewing"

    def test_a_county_may_deem_silence_a_pass(self) -> None:
        """With pre_review.silence = pass, the deadline closes the round as passed."""
        county = County(settings={"pre_review": {"silence": "pass"}})
        county.to_pre_review()
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.advance(timedelta(days=4))
        assert county.stage() == "decision.pending"
        assert not [n for n in county.take_notices() if n["kind"] == "overdue"]
        opinions = county.engine.project("P1").round.opinions
        assert opinions["sthj"]["deemed"] is True

    def test_a_pass_deemed_at_the_end_of_a_month_scores_in_that_month(self) -> None:
        """Due Tue 03-31 24:00 (stamped 04-01 00:00): the points are March's, not April's."""
        county = County(
            settings={"pre_review": {"silence": "pass"}},
            start=datetime(2026, 3, 26, 9, 0, tzinfo=SHANGHAI),
        )
        county.to_pre_review()
        county.advance_to(datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI))
        assert county.stage() == "decision.pending"
        assert county.engine.points(month="2026-03") == {"light_alloy": 4}
        assert county.engine.points(month="2026-04") == {}

    def test_members_come_from_settings(self) -> None:
        """A county with two member units closes the round after two opinions."""
        county = County(settings={"pre_review": {"members": ["gxj", "fgw"]}})
        county.to_pre_review()
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.do("opinion", "P1", "r_fgw", verdict="pass")
        assert county.stage() == "decision.pending"
        assert set(MEMBER_UNITS) > {"gxj", "fgw"}
