"""Adding and removing a department on the way (加签/减签): what a user relies on.

The added branch runs like a routed one on its own limit from the day it was added, and the
stage waits for it; a removed branch is settled but approves nothing, its timers gone; on a
priority project the removal waits for the leader, in the task list and the holdups; every
refusal changes nothing; the history folds back to the same state on every store.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import MONDAY, County, county_actors

from approvalflow import Actor, AlreadyRouted, InvalidCommand, InvalidTransition, NotAuthorized
from approvalflow.errors import ApprovalflowError
from approvalflow.project import ProjectState

pytestmark = pytest.mark.usefixtures("every_store")

SETTINGS: dict[str, Any] = {
    "routing": {"departments": ["fgw", "zj"]},
    "departments": {"rf": "人防办"},
    "time_limit_wd": {"rf": 7},
}


def make_county() -> County:
    actors = [
        *county_actors(),
        Actor("o_rf", ["officer"], department="rf"),
        Actor("o_rf2", ["officer"], department="rf"),
    ]
    return County(settings=SETTINGS, actors=actors)


def in_approval(priority: bool = False) -> County:
    county = make_county()
    county.create("P1", priority=priority) if priority else county.create("P1")
    county.do("negotiate", "P1", "guo")
    county.do("submit_pre_review", "P1", "guo", materials=[])
    county.pass_pre_review("P1")
    county.approve_in_meeting("P1")
    county.do("sign", "P1", "guo")
    county.do("apply", "P1", "fuyuan")
    county.take_notices()
    return county


def refused(
    county: County, error: type[ApprovalflowError], command: str, by: str, **args: Any
) -> str:
    before = county.engine.project("P1").version
    with pytest.raises(error) as caught:
        county.do(command, "P1", by, **args)
    assert county.engine.project("P1").version == before
    return caught.value.message


def replays(county: County) -> None:
    state = county.engine.project("P1")
    again = ProjectState.from_events(county.engine.history("P1"))
    assert again.branches == state.branches
    assert again.removal_requests == state.removal_requests
    assert again.stage == state.stage


class TestAdding:
    def test_the_added_branch_has_its_own_limit_from_the_day_it_was_added(self) -> None:
        county = in_approval()
        county.advance(timedelta(days=2))  # Wed 03-04
        county.do("add_department", "P1", "o_zj", department="rf", reason="地下室需人防审查")
        # 7 wd after Wed 03-04: 05, 06, 09, 10, 11, 12, 13.
        assert county.branch("rf") == "pending"
        assert county.deadline("P1.approval.rf") == "2026-03-13 24:00"
        # zj's limit still counts from the apply on Mon 03-02 (7 wd: ... 03-11).
        assert county.deadline("P1.approval.zj") == "2026-03-11 24:00"
        notices = county.take_notices()
        added = [n for n in notices if n["kind"] == "department_added"]
        assert sorted(n["to"] for n in added) == ["fuyuan", "o_rf", "o_rf2"]
        assert added[0]["reason"] == "地下室需人防审查"
        events = [e.type for e in county.engine.history("P1")][-2:]
        assert events == ["department_added", "branch_opened"]
        replays(county)

    def test_the_stage_waits_for_the_added_department(self) -> None:
        county = in_approval()
        county.do("add_department", "P1", "o_fgw", department="rf", reason="需人防审查")
        county.approve_all("P1", ("fgw", "zj"))
        assert county.stage() == "approval"
        assert [n for n in county.take_notices() if n["kind"] == "approved"] == []
        county.do("accept", "P1", "o_rf")
        county.do("approve", "P1", "o_rf")
        assert county.stage() == "approved"

    def test_the_added_department_finds_its_branch_in_its_task_list(self) -> None:
        county = in_approval()
        assert county.engine.tasks("o_rf") == []
        county.do("add_department", "P1", "o_zj", department="rf", reason="需人防审查")
        [item] = county.engine.tasks("o_rf")
        assert (item.kind, item.department, item.commands[0]) == ("accept", "rf", "accept")
        assert item.deadline == county.engine.project("P1").branches["rf"].due
        assert any(h.waiting_on == "rf" for h in county.engine.holdups("P1"))

    def test_actors_the_project_was_copied_to_hear_of_it(self) -> None:
        county = in_approval()
        county.do("copy", "P1", "huang", to=["li"], note="请关注")
        county.take_notices()
        county.do("add_department", "P1", "o_zj", department="rf", reason="需人防审查")
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
        heard = sorted(n["kind"] for n in county.take_notices() if n["to"] == "li")
        assert heard == ["department_added", "department_removed"]

    def test_refusals_change_nothing(self) -> None:
        county = make_county()
        county.create("P1")
        refused(county, InvalidTransition, "add_department", "o_zj", department="rf", reason="x")
        county = in_approval()
        why = refused(county, InvalidCommand, "add_department", "o_zj", department="xx", reason="x")
        assert "'xx' is not an approving department" in why
        why = refused(county, AlreadyRouted, "add_department", "o_zj", department="fgw", reason="x")
        assert "approval.fgw" in why
        refused(county, InvalidCommand, "add_department", "o_zj", department="rf", reason=" ")
        refused(county, InvalidCommand, "add_department", "o_zj", department="rf")
        refused(county, InvalidCommand, "add_department", "o_zj", reason="需人防审查")
        refused(county, NotAuthorized, "add_department", "fuyuan", department="rf", reason="x")
        # yj has no branch here.
        refused(county, InvalidTransition, "add_department", "o_yj", department="rf", reason="x")
        # An AlreadyRouted is also an InvalidTransition for code written against that.
        assert issubclass(AlreadyRouted, InvalidTransition)
        assert AlreadyRouted.code == "AlreadyRouted"

    def test_a_removed_department_may_be_added_again_with_a_new_limit(self) -> None:
        county = in_approval()
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
        county.advance(timedelta(days=1))  # Tue 03-03
        county.do("add_department", "P1", "o_zj", department="fgw", reason="需节能审查")
        # fgw 5 wd after Tue 03-03: 04, 05, 06, 09, 10.
        assert county.branch("fgw") == "pending"
        assert county.deadline("P1.approval.fgw") == "2026-03-10 24:00"
        replays(county)


class TestRemoving:
    def test_a_removed_branch_is_settled_but_approves_nothing(self) -> None:
        county = in_approval()
        county.do("accept", "P1", "o_zj")
        county.do("remove_department", "P1", "o_fgw", department="fgw", reason="不涉及")
        assert county.branch("fgw") == "not_needed"
        assert "P1.approval.fgw" not in county.engine.deadlines("P1")
        notices = county.take_notices()
        assert {n["to"] for n in notices if n["kind"] == "department_removed"} == {
            "o_fgw",
            "fuyuan",
        }
        assert county.stage() == "approval"
        county.do("approve", "P1", "o_zj")
        assert county.stage() == "approved"
        days = county.engine.metrics()["department_days"]
        assert "zj" in days and "fgw" not in days
        replays(county)

    def test_its_limit_passes_without_an_overdue_notice(self) -> None:
        county = in_approval()
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="不涉及")
        county.advance(timedelta(days=9))  # past fgw's 03-09, before zj's 03-11
        assert [n for n in county.take_notices() if n["kind"] == "overdue"] == []

    def test_removing_the_last_open_branch_completes_the_stage(self) -> None:
        county = in_approval()
        county.approve_all("P1", ("zj",))
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
        assert county.stage() == "approved"

    def test_refusals_change_nothing(self) -> None:
        county = in_approval()
        county.approve_all("P1", ("zj",))
        why = refused(
            county, InvalidTransition, "remove_department", "o_fgw", department="zj", reason="x"
        )
        assert "approved" in why
        refused(county, InvalidCommand, "remove_department", "o_fgw", department="yj", reason="x")
        refused(county, InvalidCommand, "remove_department", "o_fgw", department="fgw", reason="")
        refused(county, NotAuthorized, "remove_department", "huang", department="fgw", reason="x")

    def test_the_last_department_is_never_removed(self) -> None:
        county = in_approval()
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="不涉及")
        why = refused(
            county, InvalidTransition, "remove_department", "o_zj", department="zj", reason="x"
        )
        assert "no department having decided" in why
        # The removed department no longer acts on the stage.
        refused(county, InvalidTransition, "add_department", "o_fgw", department="rf", reason="x")


class TestPriorityProjects:
    def test_the_removal_waits_for_the_leaders_consent(self) -> None:
        county = in_approval(priority=True)
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
        assert county.branch("fgw") == "pending"
        assert "P1.approval.fgw" in county.engine.deadlines("P1")
        asked = [n for n in county.take_notices() if n["kind"] == "removal_consent"]
        assert [n["to"] for n in asked] == ["huang"]
        [item] = [i for i in county.engine.tasks("huang") if i.kind == "consent_removal"]
        assert (item.department, item.commands) == ("fgw", ("consent_remove_department",))
        assert any(
            (h.waiting_on, h.what, h.state) == ("leader", "removal_consent", "fgw")
            for h in county.engine.holdups("P1")
        )
        refused(
            county, InvalidTransition, "remove_department", "o_zj", department="fgw", reason="x"
        )
        refused(
            county,
            NotAuthorized,
            "consent_remove_department",
            "o_zj",
            department="fgw",
            consent=True,
        )
        refused(
            county,
            InvalidTransition,
            "consent_remove_department",
            "huang",
            department="zj",
            consent=True,
        )
        refused(county, InvalidCommand, "consent_remove_department", "huang", department="fgw")
        replays(county)
        county.do("consent_remove_department", "P1", "huang", department="fgw", consent=True)
        assert county.branch("fgw") == "not_needed"
        last = county.engine.history("P1")[-1]
        assert (last.type, last.payload["consented_by"], last.by) == (
            "branch_changed",
            "huang",
            "huang",
        )
        assert [i for i in county.engine.tasks("huang") if i.kind == "consent_removal"] == []
        replays(county)

    def test_a_declined_removal_leaves_the_branch_running(self) -> None:
        county = in_approval(priority=True)
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
        refused(
            county,
            InvalidCommand,
            "consent_remove_department",
            "huang",
            department="fgw",
            consent=False,
        )
        county.take_notices()
        county.do(
            "consent_remove_department",
            "P1",
            "huang",
            department="fgw",
            consent=False,
            reason="须节能审查",
        )
        assert county.branch("fgw") == "pending"
        assert county.engine.project("P1").removal_requests == ()
        declined = [n for n in county.take_notices() if n["kind"] == "removal_declined"]
        assert [(n["to"], n["reason"]) for n in declined] == [("o_zj", "须节能审查")]
        # Asked again later: a new request.
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="确已备案")
        assert [r.reason for r in county.engine.project("P1").removal_requests] == ["确已备案"]

    def test_a_department_that_decides_first_ends_the_request(self) -> None:
        county = in_approval(priority=True)
        county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
        county.do("accept", "P1", "o_fgw")
        assert county.engine.project("P1").removal_requests != ()
        county.do("approve", "P1", "o_fgw")
        assert county.engine.project("P1").removal_requests == ()
        refused(
            county,
            InvalidTransition,
            "consent_remove_department",
            "huang",
            department="fgw",
            consent=True,
        )
        assert [i for i in county.engine.tasks("huang") if i.kind == "consent_removal"] == []
        replays(county)

    def test_priority_is_true_or_false(self) -> None:
        county = make_county()
        with pytest.raises(InvalidCommand, match="priority must be true or false"):
            county.create("P1", priority="yes")
        county.create("P1", priority=True)
        assert county.engine.project("P1").priority is True
        county.create("P2")
        assert county.engine.project("P2").priority is False
        assert "priority" not in county.engine.history("P2")[0].payload


def test_show_names_the_removed_branch_and_the_waiting_consent() -> None:
    from approvalflow.cli.show import render

    county = in_approval(priority=True)
    county.do("add_department", "P1", "o_zj", department="rf", reason="需人防审查")
    county.do("remove_department", "P1", "o_zj", department="fgw", reason="已备案")
    text = render(county.engine, county.engine.project("P1"), county.clock.now())
    assert (
        "removal of 发改 (fgw) asked by o_zj (已备案): "
        "waits for the leader 黄副县长 (huang)'s consent"
    ) in text
    assert "department_added" in text and "department_removal_requested" in text
    county.do("consent_remove_department", "P1", "huang", department="fgw", consent=True)
    text = render(county.engine, county.engine.project("P1"), county.clock.now())
    assert "已减签" in text
    assert MONDAY.date().isoformat() in text
