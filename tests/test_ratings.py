"""好差评: ratings, rectifications, their deadlines, task items, metrics and the report."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from builders import County, county_actors

from approvalflow import Actor
from approvalflow.calendar import SHANGHAI
from approvalflow.cli import main
from approvalflow.errors import (
    AlreadyRated,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    SettingsError,
)
from approvalflow.plugin import rating_items
from approvalflow.project import ProjectState
from approvalflow.settings import Settings
from approvalflow.stores.serialization import state_from_json, state_to_json

pytestmark = pytest.mark.usefixtures("every_store")


def _county(**settings: object) -> County:
    actors = [*county_actors(), Actor("xiao", ["efficiency_office"], name="效能办")]
    return County(actors=actors, settings=settings or None)


def _approved(county: County, project: str = "P1") -> None:
    county.to_approval(project, departments=["zj", "fgw"])
    county.approve_all(project, departments=("zj", "fgw"))


class TestRating:
    def test_a_refused_rating_changes_nothing(self) -> None:
        """Wrong actor, bad score, unknown item, a second rating: each refused, no event."""
        county = _county()
        _approved(county)
        version = county.engine.project("P1").version
        refusals = [
            ("other_firm", {"item": "approval.zj", "score": 5}, NotAuthorized),
            ("fuyuan", {"item": "approval.zj", "score": 0}, InvalidCommand),
            ("fuyuan", {"item": "approval.zj", "score": 6}, InvalidCommand),
            ("fuyuan", {"item": "approval.zj", "score": True}, InvalidCommand),
            ("fuyuan", {"item": "approval.zj"}, InvalidCommand),
            ("fuyuan", {"item": "approval.yj", "score": 5}, InvalidCommand),
            ("fuyuan", {"score": 5}, InvalidCommand),
        ]
        for by, args, error in refusals:
            with pytest.raises(error):
                county.do("rate", "P1", by, **args)
        assert county.engine.project("P1").version == version
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=4)
        with pytest.raises(AlreadyRated, match=r"approval\.zj"):
            county.do("rate", "P1", "fuyuan", item="approval.zj", score=5)
        assert county.engine.project("P1").ratings["approval.zj"].score == 4

    def test_the_same_command_id_is_the_first_rating_not_a_second(self) -> None:
        county = _county()
        _approved(county)
        first = county.do("rate", "P1", "fuyuan", "r-1", item="approval.fgw", score=2)
        again = county.do("rate", "P1", "fuyuan", "r-1", item="approval.fgw", score=2)
        assert again.version == first.version
        history = county.engine.history("P1")
        assert [e.type for e in history].count("rated") == 1
        with pytest.raises(InvalidCommand):
            county.do("rate", "P1", "fuyuan", "r-1", item="approval.fgw", score=3)

    def test_an_undecided_branch_is_not_rated_yet(self) -> None:
        county = _county()
        county.to_approval(departments=["zj", "fgw"])
        with pytest.raises(InvalidTransition, match="nothing of P1 has been decided"):
            county.do("rate", "P1", "fuyuan", item="approval.zj", score=5)
        county.approve_all(departments=("zj",))
        with pytest.raises(InvalidTransition, match=r"approval\.fgw of P1 has not been decided"):
            county.do("rate", "P1", "fuyuan", item="approval.fgw", score=5)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=5)
        assert county.stage() == "approval"

    def test_a_good_rating_opens_no_rectification(self) -> None:
        county = _county()
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=3)
        rating = county.engine.project("P1").ratings["approval.zj"]
        assert rating.rectification is None and rating.due is None
        assert not [k for k in county.engine.deadlines("P1") if ".rectification." in k]


TWO_STAGES: dict[str, object] = {
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
    }
}


class TestUnderStages:
    """Each stage is a service of its own: its decided branches and its combined result (D168)."""

    def test_each_stage_and_each_of_its_branches_is_rated_once(self) -> None:
        county = _county(**TWO_STAGES)
        county.to_approval()
        county.approve_all(departments=("fgw", "zrzy"))
        state = county.engine.project("P1")
        # The branches are decided, the stage's result not yet issued.
        assert rating_items(state, state_settings(county)) == {
            "approval.one.fgw": "fgw",
            "approval.one.zrzy": "zrzy",
        }
        with pytest.raises(InvalidTransition, match=r"approval\.one of P1 has not been decided"):
            county.do("rate", "P1", "fuyuan", item="approval.one", score=5)
        county.do("issue_stage_result", "P1", "o_fgw")
        # zrzy serves again in stage two: its new branch is an item of its own, not yet decided.
        with pytest.raises(InvalidTransition, match=r"approval\.two\.zrzy of P1 has not been"):
            county.do("rate", "P1", "fuyuan", item="approval.two.zrzy", score=5)
        with pytest.raises(InvalidCommand, match="no item of P1"):
            county.do("rate", "P1", "fuyuan", item="approval.three", score=5)
        with pytest.raises(InvalidCommand, match="no item of P1"):
            county.do("rate", "P1", "fuyuan", item="approval.zrzy", score=5)
        county.do("rate", "P1", "fuyuan", item="approval.one.zrzy", score=4)
        # The combined result is the lead's service: a bad rating is the lead's rectification.
        county.do("rate", "P1", "fuyuan", item="approval.one", score=1, text="两次跑腿")
        rating = county.engine.project("P1").ratings["approval.one"]
        assert (rating.department, rating.rectification) == ("fgw", "open")
        assert [i.kind for i in county.engine.tasks("o_fgw") if i.kind == "rectify"] == ["rectify"]
        with pytest.raises(AlreadyRated, match=r"approval\.one "):
            county.do("rate", "P1", "fuyuan", item="approval.one", score=5)

        county.approve_all(departments=("zrzy", "zj"))
        county.do("issue_stage_result", "P1", "o_zj")
        assert county.stage() == "approved"
        county.do("rate", "P1", "fuyuan", item="approval.two.zrzy", score=5)
        county.do("rate", "P1", "fuyuan", item="approval.two", score=5)
        # No whole-approval item under stages: the last stage's result is the approval's.
        with pytest.raises(InvalidCommand, match="no item of P1"):
            county.do("rate", "P1", "fuyuan", item="approval", score=5)
        live = county.engine.project("P1")
        assert set(live.ratings) == {
            "approval.one.zrzy",
            "approval.one",
            "approval.two.zrzy",
            "approval.two",
        }
        assert ProjectState.from_events(county.engine.history("P1")) == live


def state_settings(county: County) -> Settings:
    return county.engine.rules_for(county.engine.project("P1"))


class TestRectification:
    def test_the_fold_replays_to_the_same_state(self) -> None:
        """Rated, opened, rectified, reopened, warned, overdue, carded, confirmed: the history
        rebuilds the very state, and the snapshot text round-trips."""
        county = _county(ladder={"enabled": True})
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=1, text="等了很久")
        county.do("rectify", "P1", "o_zj", text="已整改")
        county.do("confirm_rectification", "P1", "fuyuan", confirmed=False, reason="不够")
        county.advance(timedelta(days=40))
        county.do("rectify", "P1", "o_zj2", text="再次整改")
        county.do("confirm_rectification", "P1", "xiao", confirmed=True)
        live = county.engine.project("P1")
        rating = live.ratings["approval.zj"]
        assert (rating.rectification, rating.reopened) == ("confirmed", 1)
        assert rating.warning_sent and rating.overdue_sent and rating.cards_issued
        assert rating.on_time is False
        assert ProjectState.from_events(county.engine.history("P1")) == live
        assert state_from_json(state_to_json(live)) == live

    def test_a_rectification_awaiting_confirmation_is_not_overdue(self) -> None:
        county = _county()
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=2)
        county.do("rectify", "P1", "o_zj", text="已整改")
        county.take_notices()
        county.advance(timedelta(days=40))
        assert not [n for n in county.take_notices() if n["kind"] == "overdue"]
        county.do("confirm_rectification", "P1", "fuyuan", confirmed=False, reason="未落实")
        # Sent back after its deadline: overdue at once, once.
        county.advance(timedelta(minutes=1))
        overdue = [n for n in county.take_notices() if n["kind"] == "overdue"]
        assert {n["to"] for n in overdue} == {"huang", "o_zj", "o_zj2", "xiao"}
        assert all(n["stage"] == "rectification" for n in overdue)
        county.advance(timedelta(days=10))
        assert not [n for n in county.take_notices() if n["kind"] == "overdue"]

    def test_only_the_rated_department_rectifies(self) -> None:
        county = _county()
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=1)
        with pytest.raises(NotAuthorized, match="zj's rectification"):
            county.do("rectify", "P1", "o_fgw", item="approval.zj", text="x")
        with pytest.raises(InvalidTransition, match="fgw owes no rectification"):
            county.do("rectify", "P1", "o_fgw", text="x")
        with pytest.raises(InvalidCommand, match="'text' is required"):
            county.do("rectify", "P1", "o_zj")
        with pytest.raises(NotAuthorized):
            county.do("rectify", "P1", "fuyuan", text="x")
        with pytest.raises(NotAuthorized):
            county.do("confirm_rectification", "P1", "o_zj", confirmed=True)


class TestTaskItems:
    def test_the_department_then_the_confirmers_see_the_rectification(self) -> None:
        county = _county()
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=2)
        due = county.engine.project("P1").ratings["approval.zj"].due
        items = [i for i in county.engine.tasks("o_zj") if i.kind == "rectify"]
        assert [(i.department, i.deadline, i.commands) for i in items] == [
            ("zj", due, ("rectify",))
        ]
        assert not [i for i in county.engine.tasks("o_fgw") if i.kind == "rectify"]
        # Rating is the enterprise's choice: no "rate" item (D156).
        assert not [i for i in county.engine.tasks("fuyuan") if "rate" in i.commands]
        county.do("rectify", "P1", "o_zj", text="已整改")
        assert not [i for i in county.engine.tasks("o_zj") if i.kind == "rectify"]
        for who in ("fuyuan", "xiao"):
            kinds = [i.kind for i in county.engine.tasks(who)]
            assert "confirm_rectification" in kinds, who

    def test_items_outlive_the_project_and_hold_nothing_up(self) -> None:
        county = _county()
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.fgw", score=1)
        assert county.engine.holdups("P1") == []
        county.do("withdraw", "P1", "fuyuan", reason="另选址")
        assert county.stage() == "withdrawn"
        assert [i.kind for i in county.engine.tasks("o_fgw")] == ["rectify"]
        county.do("rectify", "P1", "o_fgw", text="已整改")
        county.do("confirm_rectification", "P1", "xiao", confirmed=True)
        assert county.engine.tasks("o_fgw") == [] and county.engine.tasks("xiao") == []


class TestMetrics:
    def test_per_department_and_month(self) -> None:
        """March: zj rated 1 (rectified in time) and 4; fgw 2 (late). April: zj 2 (open)."""
        county = _county()
        _approved(county, "P1")
        _approved(county, "P2")
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=1)
        county.do("rate", "P2", "fuyuan", item="approval.zj", score=4)
        county.do("rate", "P1", "fuyuan", item="approval.fgw", score=2)
        county.do("rectify", "P1", "o_zj", text="已整改")
        county.do("confirm_rectification", "P1", "fuyuan", confirmed=True)
        county.advance_to(datetime(2026, 4, 20, 10, 0, tzinfo=SHANGHAI))
        county.do("rate", "P2", "fuyuan", item="approval.fgw", score=2)
        county.do("rectify", "P1", "o_fgw", text="迟到的整改")
        county.do("confirm_rectification", "P1", "fuyuan", confirmed=True)
        found = county.engine.rating_metrics()
        assert found["zj"] == {
            "2026-03": {
                "count": 2,
                "average": Fraction(5, 2),
                "bad": 1,
                "rectifications": 1,
                "on_time": 1,
                "late": 0,
                "open": 0,
            }
        }
        assert found["fgw"]["2026-03"]["late"] == 1 and found["fgw"]["2026-03"]["on_time"] == 0
        assert found["fgw"]["2026-04"]["open"] == 1
        assert set(county.engine.rating_metrics(month="2026-04")) == {"fgw"}


class TestSettings:
    def test_bad_numbers_are_refused_with_the_reason(self) -> None:
        with pytest.raises(SettingsError, match="warning_before_wd"):
            Settings.default().merged({"ratings": {"rectification_wd": 3, "warning_before_wd": 3}})
        with pytest.raises(SettingsError, match="rectification_wd"):
            Settings.default().merged({"ratings": {"rectification_wd": 0, "warning_before_wd": 0}})
        with pytest.raises(SettingsError, match="stage_department"):
            Settings.default().merged({"ratings": {"stage_department": "nowhere"}})
        with pytest.raises(SettingsError, match="unknown setting"):
            Settings.default().merged({"ratings": {"days": 15}})

    def test_the_county_sets_the_rectification_time(self) -> None:
        county = _county(ratings={"rectification_wd": 5, "warning_before_wd": 0})
        _approved(county)
        county.do("rate", "P1", "fuyuan", item="approval.zj", score=2)
        # Mon 03-02 + 5 wd: Tue 03 .. Mon 09.
        assert county.deadline("P1.rectification.approval.zj") == "2026-03-09 24:00"
        assert "P1.rectification.approval.zj.warning" not in county.engine.deadlines("P1")


def test_the_report_lists_ratings_by_department_and_month(
    sql_store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``report ratings`` over the rating scenarios, run by the CLI into a SQLite file and a
    PostgreSQL schema (the CLI opens its store by URL, so a memory store has no part here)."""
    scenario = Path(__file__).parents[1] / "scenarios"
    url = sql_store_url
    assert main(["store", "init", url]) == 0
    files = sorted(str(p) for p in scenario.glob("rating_*.yaml"))
    assert main(["scenario", "run", *files, "--store", url]) == 0
    capsys.readouterr()
    assert main(["report", "ratings", "--store", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    zj = [r for r in rows if r["department"] == "zj"]
    assert zj == [
        # The stage scenario: 住建's 施工许可 result rated 5 (approval.permit, its lead).
        {
            "department": "zj",
            "department_name": "住建",
            "month": "2026-03",
            "ratings": 1,
            "average": 5.0,
            "bad": 0,
            "rectifications": 0,
            "on_time": 0,
            "late": 0,
            "open": 0,
        },
        {
            "department": "zj",
            "department_name": "住建",
            "month": "2026-09",
            "ratings": 2,
            "average": 1.5,
            "bad": 2,
            "rectifications": 2,
            "on_time": 1,
            "late": 1,
            "open": 0,
        },
    ]
    assert main(["report", "ratings", "--store", url, "--month", "09-2026"]) == 2
