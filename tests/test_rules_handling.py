"""Transfer (转办) and entrustment (委托) of a department's branch, and carbon copies (抄送):
who acted is always the person, on whose behalf is recorded (D29, D30, D31)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import County, county_actors, kinds

from approvalflow import (
    Actor,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    ProjectState,
)
from approvalflow.calendar import SHANGHAI

# Every test runs on the memory, SQLite and PostgreSQL stores.
pytestmark = pytest.mark.usefixtures("every_store")

EXTRA_ACTORS = [
    Actor("o_zj3", ["officer"], department="zj"),
    Actor("h_zj", ["head"], department="zj"),
    Actor("hz", ["head", "officer"], department="zj"),
    Actor("lu", ["leader"], name="卢常务副县长"),
]


def make_county(**options: Any) -> County:
    return County(actors=[*county_actors(), *EXTRA_ACTORS], **options)


@pytest.fixture
def county() -> County:
    county = make_county()
    county.to_approval()
    county.take_notices()
    return county


def unchanged(county: County, command: str, by: str, error: type[Exception], **args: Any) -> str:
    """Run a command that must fail with ``error``; the project must not change. Its message."""
    before = county.engine.project("P1").version
    with pytest.raises(error) as caught:
        county.do(command, "P1", by, **args)
    assert county.engine.project("P1").version == before
    return str(caught.value)


def handled_by(county: County, handler: str, dept: str = "zj") -> None:
    county.do("transfer", "P1", "h_zj" if dept == "zj" else f"o_{dept}", to=handler, reason="专人")
    county.take_notices()


class TestTransfer:
    def test_any_officer_acts_until_a_handler_is_named(self, county: County) -> None:
        """Without a handler both zj officers may act: o_zj accepts, o_zj2 approves."""
        county.do("accept", "P1", "o_zj")
        county.do("approve", "P1", "o_zj2")
        assert county.branch("zj") == "approved"

    def test_the_head_transfers_and_the_new_handler_alone_acts(self, county: County) -> None:
        """After the head hands zj to o_zj2, o_zj is refused with the handler's name."""
        result = county.do("transfer", "P1", "h_zj", to="o_zj2", reason="专人负责")
        event = result.events[-1]
        assert (event.type, event.by, event.on_behalf_of) == ("branch_transferred", "h_zj", None)
        assert dict(event.payload) == {
            "department": "zj",
            "handler": "o_zj2",
            "previous": None,
            "reason": "专人负责",
            "ended_deputy": None,
        }
        assert county.engine.project("P1").branches["zj"].handler == "o_zj2"
        message = unchanged(county, "accept", "o_zj", NotAuthorized)
        assert "approval.zj of P1 is handled by o_zj2" in message
        county.do("accept", "P1", "o_zj2")
        assert county.branch("zj") == "accepted"

    def test_the_new_and_the_previous_handler_are_told(self, county: County) -> None:
        """A `transferred` notice to both, with the department, the handler and the reason."""
        handled_by(county, "o_zj")
        county.do("transfer", "P1", "o_zj", to="o_zj2", reason="外出踏勘")
        notices = county.take_notices()
        assert kinds(notices) == [("transferred", "o_zj"), ("transferred", "o_zj2")]
        assert notices[0] | {"to": None} == {
            "kind": "transferred",
            "project": "P1",
            "department": "zj",
            "handler": "o_zj2",
            "previous": "o_zj",
            "reason": "外出踏勘",
            "by": "o_zj",
            "to": None,
        }

    def test_any_officer_may_take_an_unhandled_branch_then_only_the_handler_passes_it_on(
        self, county: County
    ) -> None:
        """o_zj names himself; then o_zj2 may no longer transfer, o_zj may."""
        county.do("transfer", "P1", "o_zj", to="o_zj", reason="认领")
        unchanged(county, "transfer", "o_zj2", NotAuthorized, to="o_zj2", reason="我来")
        county.do("transfer", "P1", "o_zj", to="o_zj2", reason="工作调整")
        assert county.engine.project("P1").branches["zj"].handler == "o_zj2"

    def test_the_head_who_is_an_officer_acts_on_a_handled_branch_in_person(
        self, county: County
    ) -> None:
        """hz (head and officer of zj) accepts a branch o_zj handles, in its own name."""
        handled_by(county, "o_zj")
        result = county.do("accept", "P1", "hz")
        assert (result.events[0].by, result.events[0].on_behalf_of) == ("hz", None)

    def test_a_head_who_is_not_an_officer_transfers_but_does_not_decide(
        self, county: County
    ) -> None:
        """h_zj names the authority and the handler; the officer commands stay officers'."""
        handled_by(county, "o_zj")
        unchanged(county, "approve", "h_zj", NotAuthorized)

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            ({"to": "o_zj2"}, "'reason' is required"),
            ({"reason": "x"}, "must be an officer's actor id"),
            ({"to": ["o_zj2"], "reason": "x"}, "must be an officer's actor id"),
            ({"to": "nobody", "reason": "x"}, "not in the actor directory"),
            ({"to": "fuyuan", "reason": "x"}, "'fuyuan' is not an officer"),
            ({"to": "o_fgw", "reason": "x"}, "officer of fgw, not of zj"),
            ({"to": "o_zj2", "reason": "x", "until": "2026-03-09"}, "unknown argument"),
        ],
    )
    def test_bad_transfers_are_refused_and_change_nothing(
        self, county: County, args: dict[str, Any], words: str
    ) -> None:
        """The target is an officer of the same department; the reason is required."""
        assert words in unchanged(county, "transfer", "h_zj", InvalidCommand, **args)

    def test_a_transfer_to_the_current_handler_is_refused(self, county: County) -> None:
        """Nothing would change; the caller is told so."""
        handled_by(county, "o_zj")
        message = unchanged(county, "transfer", "h_zj", InvalidCommand, to="o_zj", reason="x")
        assert "handles approval.zj already" in message

    @pytest.mark.parametrize("actor", ["fuyuan", "daiban", "huang", "guo", "r_gxj"])
    def test_parties_outside_the_department_may_not_transfer(
        self, county: County, actor: str
    ) -> None:
        """The enterprise, its agent, the leader, the recruiter, a reviewer: NotAuthorized."""
        unchanged(county, "transfer", actor, NotAuthorized, to="o_zj2", reason="x")

    def test_an_officer_transfers_only_the_branch_of_their_department(self, county: County) -> None:
        """o_fgw cannot reach zj: handing fgw to a zj officer is a transfer out of fgw."""
        message = unchanged(county, "transfer", "o_fgw", InvalidCommand, to="o_zj", reason="x")
        assert "a branch stays within its department" in message

    def test_a_decided_branch_cannot_be_transferred(self, county: County) -> None:
        """Approved (no pledge to verify): nothing left to handle."""
        county.do("accept", "P1", "o_zj")
        county.do("approve", "P1", "o_zj")
        message = unchanged(county, "transfer", "h_zj", InvalidTransition, to="o_zj2", reason="x")
        assert "nothing left to do" in message

    def test_before_approval_there_is_no_branch_to_transfer(self) -> None:
        """A project in pre-review: InvalidTransition, as for every branch command."""
        county = make_county()
        county.to_pre_review()
        with pytest.raises(InvalidTransition):
            county.do("transfer", "P1", "h_zj", to="o_zj2", reason="x")

    def test_a_pledge_awaiting_verification_can_change_hands_after_approval(self) -> None:
        """yj approved on commitment, the project in construction: the check still has a
        handler, who verifies it."""
        county = County(
            settings={"commitment": {"departments": ["yj"]}},
            actors=[*county_actors(), Actor("o_yj2", ["officer"], department="yj")],
        )
        county.to_approval()
        county.do("accept_commitment", "P1", "fuyuan", department="yj")
        county.approve_all(departments=("fgw", "zrzy", "zj", "sthj"))
        county.do("start_construction", "P1", "guo")
        county.do("transfer", "P1", "o_yj", to="o_yj2", reason="核查")
        with pytest.raises(NotAuthorized):
            county.do("verify", "P1", "o_yj", passed=True)
        county.do("verify", "P1", "o_yj2", passed=True)
        assert county.engine.project("P1").branches["yj"].verified

    def test_a_reopened_branch_keeps_its_handler(self) -> None:
        """zj revoked for missing materials, re-applied: o_zj2 still handles it."""
        county = make_county()
        county.to_approval()
        county.do("transfer", "P1", "h_zj", to="o_zj2", reason="专人")
        county.do("accept", "P1", "o_zj2", deficient=["credit_report"])
        county.advance(timedelta(days=40))
        assert county.branch("zj") == "revoked"
        county.do("apply", "P1", "fuyuan")
        assert county.branch("zj") == "pending"
        assert county.engine.project("P1").branches["zj"].handler == "o_zj2"
        with pytest.raises(NotAuthorized):
            county.do("accept", "P1", "o_zj")


class TestEntrustment:
    def test_the_deputy_acts_in_their_name_for_the_handler(self, county: County) -> None:
        """Events say by o_zj3 on behalf of o_zj2, and the history replays to the same state."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3", until="2026-03-06", reason="培训")
        accepted = county.do("accept", "P1", "o_zj3")
        approved = county.do("approve", "P1", "o_zj3")
        for event in (*accepted.events, *approved.events):
            assert (event.by, event.on_behalf_of) == ("o_zj3", "o_zj2")
        history = county.engine.history("P1")
        assert ProjectState.from_events(history) == county.engine.project("P1")
        stored = [e for e in history if e.type == "branch_changed"][-1]
        assert (stored.by, stored.on_behalf_of, stored.payload["to"]) == (
            "o_zj3",
            "o_zj2",
            "approved",
        )

    def test_the_entrustment_is_recorded_and_the_deputy_told(self, county: County) -> None:
        """It ends at 24:00 of its last day; the notice shows that end in local time."""
        handled_by(county, "o_zj2")
        result = county.do("entrust", "P1", "o_zj2", to="o_zj3", until="2026-03-06")
        event = result.events[-1]
        assert event.type == "branch_entrusted"
        assert dict(event.payload) == {
            "department": "zj",
            "handler": "o_zj2",
            "deputy": "o_zj3",
            "until": "2026-03-07T00:00:00+08:00",
            "previous": None,
            "reason": None,
        }
        branch = county.engine.project("P1").branches["zj"]
        assert (branch.deputy, branch.deputy_until) == (
            "o_zj3",
            datetime(2026, 3, 7, tzinfo=SHANGHAI),
        )
        notices = county.take_notices()
        assert kinds(notices) == [("entrusted", "o_zj3")]
        assert notices[0]["until"] == "2026-03-06 24:00"

    def test_the_deputy_acts_through_the_last_day_and_not_after(self, county: County) -> None:
        """In force at 23:59 on 03-06; refused at 00:00 on 03-07, naming the handler."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3", until="2026-03-06")
        county.advance_to(datetime(2026, 3, 6, 23, 59, tzinfo=SHANGHAI))
        county.do("accept", "P1", "o_zj3")
        county.advance_to(datetime(2026, 3, 7, 0, 0, tzinfo=SHANGHAI))
        message = unchanged(county, "approve", "o_zj3", NotAuthorized)
        assert "handled by o_zj2 (entrusted to o_zj3 until 2026-03-06 24:00)" in message
        county.do("approve", "P1", "o_zj2")

    def test_without_an_end_date_it_lasts_until_ended(self, county: County) -> None:
        """`to: null` ends it: the deputy is told and refused from then on."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3")
        county.advance(timedelta(days=3))
        county.do("accept", "P1", "o_zj3")
        county.take_notices()
        result = county.do("entrust", "P1", "o_zj2", to=None)
        assert result.events[-1].payload["previous"] == "o_zj3"
        assert kinds(county.take_notices()) == [("entrusted", "o_zj3")]
        unchanged(county, "approve", "o_zj3", NotAuthorized)

    def test_a_new_entrustment_replaces_the_last_and_both_deputies_are_told(
        self, county: County
    ) -> None:
        """One deputy at a time: o_zj replaces o_zj3."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3")
        county.take_notices()
        county.do("entrust", "P1", "o_zj2", to="o_zj")
        assert kinds(county.take_notices()) == [("entrusted", "o_zj"), ("entrusted", "o_zj3")]
        unchanged(county, "accept", "o_zj3", NotAuthorized)
        county.do("accept", "P1", "o_zj")

    def test_the_deputy_may_transfer_for_the_handler_and_the_entrustment_ends(
        self, county: County
    ) -> None:
        """A transfer by the deputy is on the handler's behalf; the old deputy loses standing."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3")
        county.take_notices()
        result = county.do("transfer", "P1", "o_zj3", to="o_zj", reason="交回科室")
        event = result.events[-1]
        assert (event.by, event.on_behalf_of) == ("o_zj3", "o_zj2")
        assert event.payload["ended_deputy"] == "o_zj3"
        branch = county.engine.project("P1").branches["zj"]
        assert (branch.handler, branch.deputy, branch.deputy_until) == ("o_zj", None, None)
        assert kinds(county.take_notices()) == [
            ("transferred", "o_zj"),
            ("transferred", "o_zj2"),
            ("transferred", "o_zj3"),
        ]
        unchanged(county, "accept", "o_zj3", NotAuthorized)

    def test_the_deputy_may_not_entrust_further(self, county: County) -> None:
        """转委托 needs the principal: the deputy is NotAuthorized."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3")
        message = unchanged(county, "entrust", "o_zj3", NotAuthorized, to="o_zj")
        assert "may not entrust it further" in message

    def test_only_the_handler_entrusts(self, county: County) -> None:
        """Not while there is no handler, not another officer, not the head."""
        message = unchanged(county, "entrust", "o_zj", NotAuthorized, to="o_zj2")
        assert "has no handler to act for" in message
        handled_by(county, "o_zj2")
        unchanged(county, "entrust", "o_zj", NotAuthorized, to="o_zj3")
        unchanged(county, "entrust", "hz", NotAuthorized, to="o_zj3")
        unchanged(county, "entrust", "h_zj", NotAuthorized, to="o_zj3")

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            ({}, "'to' is required"),
            ({"to": "o_zj2"}, "handles approval.zj; entrust another officer"),
            ({"to": "o_fgw"}, "officer of fgw, not of zj"),
            ({"to": "fuyuan"}, "is not an officer"),
            ({"to": "nobody"}, "not in the actor directory"),
            ({"to": "o_zj3", "until": "2026-03-01"}, "is before today"),
            ({"to": "o_zj3", "until": "next week"}, "must be a date"),
            ({"to": "o_zj3", "until": "2026-02-30"}, "must be a date"),
            ({"to": None}, "no entrustment to end"),
            ({"to": None, "until": "2026-03-06"}, "ending one takes none"),
            ({"to": "o_zj3", "reason": 5}, "must be text"),
        ],
    )
    def test_bad_entrustments_are_refused_and_change_nothing(
        self, county: County, args: dict[str, Any], words: str
    ) -> None:
        """The deputy is another officer of zj; the end date a date from today on."""
        handled_by(county, "o_zj2")
        assert words in unchanged(county, "entrust", "o_zj2", InvalidCommand, **args)

    def test_handler_deputy_and_copies_survive_a_snapshot(self, county: County) -> None:
        """The stores' JSON keeps the end of the entrustment and both sets of copies exactly."""
        from approvalflow.stores.serialization import state_from_json, state_to_json

        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3", until="2026-03-06")
        county.do("copy", "P1", "huang", to=["lu"], note="x")
        county.do("copy", "P1", "o_zj2", to=["lu", "h_zj"], note="x")
        state = county.engine.project("P1")
        again = state_from_json(state_to_json(state))
        assert again == state
        assert again.branches["zj"].deputy_until == datetime(2026, 3, 7, tzinfo=SHANGHAI)

    def test_an_entrustment_may_end_today(self, county: County) -> None:
        """`until` today is in force for the rest of the day."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3", until="2026-03-02")
        county.do("accept", "P1", "o_zj3")


class TestCopies:
    def test_the_leader_copies_the_project_with_a_note(self, county: County) -> None:
        """lu gets a `copy` notice and is recorded on the project."""
        result = county.do("copy", "P1", "huang", to=["lu"], note="请关注用地进度")
        assert dict(result.events[-1].payload) == {
            "to": ["lu"],
            "department": None,
            "note": "请关注用地进度",
        }
        assert county.take_notices() == [
            {"kind": "copy", "project": "P1", "note": "请关注用地进度", "by": "huang", "to": "lu"}
        ]
        assert county.engine.project("P1").copied == frozenset({"lu"})

    def test_an_officer_copies_their_branch(self, county: County) -> None:
        """o_zj copies zj's branch to the head; the notice names the department."""
        county.do("copy", "P1", "o_zj", to=["h_zj"], note="请局长关注")
        notice = county.take_notices()[0]
        assert (notice["to"], notice["department"]) == ("h_zj", "zj")
        state = county.engine.project("P1")
        assert state.branches["zj"].copied == frozenset({"h_zj"}) and not state.copied

    def test_the_recruiter_and_the_head_may_copy(self, county: County) -> None:
        """The recruiter copies a branch by name; the head their own department's branch."""
        county.do("copy", "P1", "guo", to=["lu"], note="住建进度", department="zj")
        county.do("copy", "P1", "h_zj", to=["o_zj3"], note="请协助")
        assert county.engine.project("P1").branches["zj"].copied == frozenset({"lu", "o_zj3"})

    @pytest.mark.parametrize(
        ("by", "args", "words"),
        [
            ("huang", {"note": "x"}, "'to' is required"),
            ("huang", {"to": [], "note": "x"}, "at least one actor"),
            ("huang", {"to": "lu", "note": "x"}, "must be a list of ids"),
            ("huang", {"to": ["lu", "ghost"], "note": "x"}, "ghost not in the actor directory"),
            ("huang", {"to": ["lu"]}, "'note' is required"),
            ("huang", {"to": ["lu"], "note": "x", "department": "gxj"}, "not one of this"),
            ("o_zj", {"to": ["lu"], "note": "x", "department": "fgw"}, "copies zj's branch only"),
        ],
    )
    def test_bad_copies_are_refused_and_change_nothing(
        self, county: County, by: str, args: dict[str, Any], words: str
    ) -> None:
        """Known actors, a note, and a branch the copier is a party to."""
        assert words in unchanged(county, "copy", by, InvalidCommand, **args)

    @pytest.mark.parametrize("actor", ["fuyuan", "daiban", "li", "r_gxj", "m1"])
    def test_only_parties_to_the_project_copy(self, county: County, actor: str) -> None:
        """The enterprise, its agent, another leader, a reviewer, a member: NotAuthorized."""
        unchanged(county, "copy", actor, NotAuthorized, to=["lu"], note="x")

    def test_another_officer_may_not_copy_a_handled_branch(self, county: County) -> None:
        """Copying is the branch's officer's act too: the handler's, once there is one."""
        handled_by(county, "o_zj2")
        unchanged(county, "copy", "o_zj", NotAuthorized, to=["lu"], note="x")

    def test_an_officer_without_a_branch_has_nothing_to_copy(self) -> None:
        """Before approval an officer is no party yet: InvalidTransition."""
        county = make_county()
        county.create()
        with pytest.raises(InvalidTransition, match="no approval branch for department zj"):
            county.do("copy", "P1", "o_zj", to=["lu"], note="x")
        county.do("copy", "P1", "guo", to=["lu"], note="新线索")

    def test_an_ended_project_is_not_copied(self, county: County) -> None:
        """Terminated: InvalidTransition."""
        county.do("terminate", "P1", "huang", reason="企业失联")
        unchanged(county, "copy", "huang", InvalidTransition, to=["lu"], note="x")

    def test_a_copy_gives_no_authority(self, county: County) -> None:
        """Copied to the project and to zj's branch, lu still cannot urge or terminate, and
        o_zj3, copied on a branch o_zj2 handles, cannot act on it."""
        county.do("copy", "P1", "guo", to=["lu"], note="x")
        handled_by(county, "o_zj2")
        county.do("copy", "P1", "o_zj2", to=["lu", "o_zj3"], note="x")
        unchanged(county, "urge", "lu", NotAuthorized, department="zj")
        unchanged(county, "terminate", "lu", NotAuthorized, reason="x")
        unchanged(county, "accept", "o_zj3", NotAuthorized)

    def test_a_project_copy_follows_outcomes_but_not_operational_notices(
        self, county: County
    ) -> None:
        """lu hears of the return, the overdue limits and the end of approval; not the urge
        nor the 容缺 reminder, which are for those who must act."""
        county.do("copy", "P1", "huang", to=["lu"], note="x")
        county.do("urge", "P1", "huang", department="zj")
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        county.do("accept", "P1", "o_yj", deficient=["org_chart"])
        county.take_notices()
        county.advance(timedelta(days=10))
        to_lu = [n for n in county.take_notices() if n["to"] == "lu"]
        assert sorted((n["kind"], n.get("department")) for n in to_lu) == [
            ("overdue", "fgw"),
            ("overdue", "yj"),
        ]
        county.do("supply", "P1", "fuyuan", materials=["site_photos", "org_chart"])
        county.approve_all(departments=("fgw", "zrzy", "zj", "sthj"))
        county.do("approve", "P1", "o_yj")
        assert [n["kind"] for n in county.take_notices() if n["to"] == "lu"] == ["approved"]

    def test_a_branch_copy_follows_its_department_and_the_project_outcome(
        self, county: County
    ) -> None:
        """h_zj, copied on zj, hears zj's return but not fgw's, and the rejection."""
        county.do("copy", "P1", "o_zj", to=["h_zj"], note="x")
        county.take_notices()
        county.do("return", "P1", "o_fgw", corrections=["energy_report"])
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        to_head = [n for n in county.take_notices() if n["to"] == "h_zj"]
        assert [(n["kind"], n["department"]) for n in to_head] == [("returned", "zj")]
        county.do("reject", "P1", "o_sthj", reason="不符合环评要求")
        assert ("rejected", "h_zj") in kinds(county.take_notices())

    def test_a_copy_before_the_decision_follows_the_meeting(self) -> None:
        """Copied during pre-review, lu hears the leading group's decision with its tally."""
        county = make_county()
        county.to_decision()
        county.do("copy", "P1", "guo", to=["lu"], note="上会前请阅")
        county.take_notices()
        county.approve_in_meeting()
        decision = [n for n in county.take_notices() if n["to"] == "lu"]
        assert [n["kind"] for n in decision] == ["decision"]
        assert decision[0]["tally"]["outcome"] == "approved"


class TestWhoHoldsItUp:
    def test_a_branch_holdup_names_its_handler_and_acting_deputy(self, county: County) -> None:
        """zj's holdup carries o_zj2 and o_zj3; once the entrustment ends, only o_zj2."""
        handled_by(county, "o_zj2")
        county.do("entrust", "P1", "o_zj2", to="o_zj3", until="2026-03-03")
        zj = next(h for h in county.engine.holdups("P1") if h.waiting_on == "zj")
        assert (zj.handler, zj.deputy) == ("o_zj2", "o_zj3")
        county.advance(timedelta(days=2))
        zj = next(h for h in county.engine.holdups("P1") if h.waiting_on == "zj")
        assert (zj.handler, zj.deputy) == ("o_zj2", None)
        fgw = next(h for h in county.engine.holdups("P1") if h.waiting_on == "fgw")
        assert (fgw.handler, fgw.deputy) == (None, None)

    def test_late_items_name_the_handler(self, county: County) -> None:
        """zj late on 03-12: the county's list says who handles it."""
        handled_by(county, "o_zj2")
        late = county.engine.late_items(datetime(2026, 3, 12, 9, 0, tzinfo=SHANGHAI))
        assert [(item.project, item.handler) for item in late["zj"]] == [("P1", "o_zj2")]
