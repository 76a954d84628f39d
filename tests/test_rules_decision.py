"""Rule 3: the leading group's collective decision (集体决策)."""

from __future__ import annotations

import pytest
from builders import County, kinds

from approvalflow import AlreadyVoted, InvalidCommand, InvalidTransition, NotAuthorized

# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")


@pytest.fixture
def county() -> County:
    county = County()
    county.to_decision()
    county.take_notices()
    return county


class TestMeeting:
    def test_majority_of_those_present_approves(self, county: County) -> None:
        """Group of 6 (chair, m1-m4); 4 present is a quorum; 3 approvals of 4 carry it."""
        county.approve_in_meeting()
        assert county.stage() == "decision.approved"
        notices = county.take_notices()
        assert kinds(notices) == [("decision", "guo"), ("decision", "huang")]
        assert notices[0]["tally"] == {
            "approve": 3,
            "reject": 0,
            "abstain": 0,
            "outcome": "approved",
            "present": 4,
            "group": 5,
        }

    def test_without_quorum_the_project_waits_for_another_meeting(self, county: County) -> None:
        """Two of five members present is not more than half: back to decision.pending."""
        county.do("convene", "P1", "chair", present=["chair", "m1"])
        county.do("vote", "P1", "chair", vote="approve")
        county.do("vote", "P1", "m1", vote="approve")
        county.do("close_meeting", "P1", "chair")
        assert county.stage() == "decision.pending"
        assert county.take_notices()[0]["tally"]["outcome"] == "no_quorum"

    def test_a_tie_is_not_a_majority(self, county: County) -> None:
        """Two approvals of four present is not more than half: rejected, and everyone told."""
        county.do("convene", "P1", "chair", present=["chair", "m1", "m2", "m3"])
        county.do("vote", "P1", "chair", vote="approve")
        county.do("vote", "P1", "m1", vote="approve")
        county.do("vote", "P1", "m2", vote="reject")
        county.do("close_meeting", "P1", "chair")
        assert county.stage() == "rejected"
        assert ("rejected", "fuyuan") in kinds(county.take_notices())

    def test_a_member_votes_once_per_meeting_but_again_in_a_new_one(self, county: County) -> None:
        """AlreadyVoted within a meeting; a new convene starts with no votes."""
        county.do("convene", "P1", "chair", present=["chair", "m1"])
        county.do("vote", "P1", "m1", vote="approve")
        with pytest.raises(AlreadyVoted):
            county.do("vote", "P1", "m1", vote="reject")
        county.do("close_meeting", "P1", "chair")
        county.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        county.do("vote", "P1", "m1", vote="reject")
        assert county.engine.project("P1").meeting.votes == {"m1": "reject"}

    def test_a_recused_member_may_not_vote(self, county: County) -> None:
        """m4 recused from P1: NotAuthorized, whatever the state."""
        county.do("convene", "P1", "chair", present=["chair", "m4", "m1"])
        with pytest.raises(NotAuthorized, match="recused"):
            county.do("vote", "P1", "m4", vote="approve")

    def test_the_present_must_be_group_members(self, county: County) -> None:
        """A leader is not in the leading group's roll for this purpose."""
        with pytest.raises(InvalidCommand, match="huang"):
            county.do("convene", "P1", "chair", present=["chair", "huang"])
        assert county.stage() == "decision.pending"

    def test_only_the_chair_convenes(self, county: County) -> None:
        """A member may vote but not convene."""
        with pytest.raises(NotAuthorized):
            county.do("convene", "P1", "m1", present=["m1"])

    def test_voting_outside_a_meeting_is_a_wrong_state(self, county: County) -> None:
        """No meeting is open yet."""
        with pytest.raises(InvalidTransition):
            county.do("vote", "P1", "m1", vote="approve")

    def test_error_order_puts_authorisation_before_state(self, county: County) -> None:
        """A recused member voting outside a meeting hears NotAuthorized first."""
        with pytest.raises(NotAuthorized):
            county.do("vote", "P1", "m4", vote="approve")

    def test_quorum_and_majority_are_settings(self) -> None:
        """With majority 0.66, two approvals of three present (0.667) carry it."""
        county = County(settings={"decision": {"majority": 0.66}})
        county.to_decision()
        county.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        county.do("vote", "P1", "chair", vote="approve")
        county.do("vote", "P1", "m1", vote="approve")
        county.do("close_meeting", "P1", "chair")
        assert county.stage() == "decision.approved"
