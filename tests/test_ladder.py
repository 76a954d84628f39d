"""The warning ladder (预警 / 黄牌 / 红牌): cards by working days left or overdue, escalating from
the officer to the department head, the project's leader and the efficiency office (效能办)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from builders import PROJECT_FIELDS, County, county_actors
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from strategies import official_days

from approvalflow import Actor, Notice, ProjectState, WorkingCalendar, hookimpl
from approvalflow.calendar import SHANGHAI, format_local, to_local
from approvalflow.rules.ladder import step_time

CARD_KINDS = ("early_warning", "yellow_card", "red_card")
LADDER_ON = {"ladder": {"enabled": True}}
ZJ_ONLY = {"routing": {"departments": ["zj"]}}


def at(day: str, clock: str = "09:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=SHANGHAI)


def actors() -> list[Actor]:
    """The standard county plus zj's and sthj's heads and one efficiency-office actor."""
    return [
        *county_actors(),
        Actor("zj_head", ["head"], department="zj"),
        Actor("sthj_head", ["head"], department="sthj"),
        Actor("xnb", ["efficiency_office"], name="县效能办"),
    ]


def ladder_county(settings: dict[str, Any] | None = None, **options: Any) -> County:
    """zj alone in approval, the built-in ladder switched on."""
    return County(actors=actors(), settings={**LADDER_ON, **ZJ_ONLY, **(settings or {})}, **options)


def cards(county: County) -> list[tuple[str, str, tuple[str, ...]]]:
    """Card notices since the last call: (kind, when, recipients)."""
    found = [
        (n.kind, format_local(n.at), n.recipients) for n in county.notices if n.kind in CARD_KINDS
    ]
    county.notices = []
    return found


def card_events(county: County, project: str = "P1") -> list[tuple[str, str]]:
    return [
        (e.payload["card"], format_local(e.at))
        for e in county.engine.history(project)
        if e.type == "card_issued"
    ]


ZJ = ("o_zj", "o_zj2")
ZJ_AND_HEAD = ("o_zj", "o_zj2", "zj_head")
EVERYONE = ("o_zj", "o_zj2", "zj_head", "huang", "xnb")
# Applied Mon 2026-03-02 09:00; zj 7 wd: 03, 04, 05, 06, 09, 10, 11        -> 03-11 24:00.
# Warning 2 wd before (10 and 11 left): 03-09 24:00; yellow 03-11 24:00; red 3 wd overdue
# (12, 13, 16; the weekend skipped): 03-16 24:00.
ZJ_CARDS = [
    ("early_warning", "2026-03-09 24:00", ZJ),
    ("yellow_card", "2026-03-11 24:00", ZJ_AND_HEAD),
    ("red_card", "2026-03-16 24:00", EVERYONE),
]


class TestOffByDefault:
    def test_the_built_in_workflow_sends_no_cards(self) -> None:
        """Without a ladder a late branch gets its overdue notice and nothing else new: the
        branch's event has no ladder, no card timer is stored, no card event is written."""
        county = County(actors=actors())
        county.to_approval()
        opened = [e for e in county.engine.history("P1") if e.type == "branch_opened"]
        assert opened and all("ladder" not in e.payload for e in opened)
        assert [t.kind for t in county.engine.store.timers("P1") if "ladder" in t.kind] == []
        county.advance(timedelta(days=30))
        assert cards(county) == []
        assert card_events(county) == []
        assert not [k for k in county.engine.deadlines("P1") if k.endswith(".card")]


@pytest.mark.usefixtures("every_store")
class TestTheLadder:
    def test_warning_yellow_and_red_at_the_end_of_working_days(self) -> None:
        """Each card at 24:00 of its working day, to its recipients, stamped with its time."""
        county = ladder_county()
        county.to_approval()
        assert county.deadline("P1.approval.zj.card") == "2026-03-09 24:00"
        county.advance_to(at("2026-03-20"))
        assert cards(county) == ZJ_CARDS
        assert card_events(county) == [
            ("warning", "2026-03-09 24:00"),
            ("yellow", "2026-03-11 24:00"),
            ("red", "2026-03-16 24:00"),
        ]

    def test_a_card_carries_its_department_deadline_and_working_days(self) -> None:
        """The warning says 2 wd are left; the red card says 3 wd overdue; both name zj."""
        county = ladder_county()
        county.to_approval()
        county.take_notices()
        county.advance_to(at("2026-03-20"))
        sent = {n["kind"]: n for n in county.take_notices() if n["to"] == "o_zj"}
        assert sent["early_warning"] == {
            "kind": "early_warning",
            "project": "P1",
            "to": "o_zj",
            "card": "warning",
            "department": "zj",
            "stage": "approval",
            "due": "2026-03-11 24:00",
            "working_days_left": 2,
            "working_days_overdue": 0,
        }
        assert sent["yellow_card"]["working_days_left"] == 0
        assert sent["red_card"]["working_days_overdue"] == 3

    def test_each_card_is_sent_once_and_replay_gives_the_same_state(self) -> None:
        """Workers running again, and a command's catch-up, issue nothing twice."""
        county = ladder_county()
        county.to_approval()
        county.advance_to(at("2026-03-20"))
        county.engine.run_due(at("2026-04-30"))
        county.do("urge", "P1", "huang", department="zj")
        assert len(card_events(county)) == 3
        state = county.engine.project("P1")
        assert ProjectState.from_events(county.engine.history("P1")) == state
        assert state.branches["zj"].cards_issued == (0, 1, 2)
        assert "P1.approval.zj.card" not in county.engine.deadlines("P1")

    def test_the_red_card_is_an_escalation(self) -> None:
        """The escalation hook sees the overdue notice and the red card, not the milder ones."""
        seen: list[str] = []

        class Ledger:
            @hookimpl
            def approvalflow_escalation(self, notice: Notice) -> None:
                seen.append(notice.kind)

        county = ladder_county(plugins=[Ledger()])
        county.to_approval()
        county.advance_to(at("2026-03-20"))
        assert seen == ["overdue", "red_card"]

    def test_the_limit_runs_before_a_card_due_at_the_same_moment(self) -> None:
        """At 03-11 24:00 the overdue notice comes first, then the yellow card."""
        county = ladder_county()
        county.to_approval()
        county.take_notices()
        county.advance_to(at("2026-03-12"))
        assert [n.kind for n in county.notices] == ["early_warning", "overdue", "yellow_card"]


class TestCardsFollowTheClock:
    def test_a_paused_branch_s_cards_wait_and_move_with_the_resume(self) -> None:
        """Paused 03-10 with 1 wd left (03-11): nothing while paused; resumed Fri 03-20, the
        limit is Mon 03-23 and the yellow and red cards follow it; the warning is not resent."""
        county = ladder_county()
        county.to_approval()
        county.do("accept", "P1", "o_zj")
        county.advance_to(at("2026-03-10", "10:00"))
        assert cards(county) == ZJ_CARDS[:1]
        county.do("pause_clock", "P1", "o_zj", reason="expert_review")
        assert "P1.approval.zj.card" not in county.engine.deadlines("P1")
        county.advance_to(at("2026-03-20"))
        assert cards(county) == []
        county.do("resume_clock", "P1", "o_zj")
        assert county.deadline("P1.approval.zj") == "2026-03-23 24:00"
        assert county.deadline("P1.approval.zj.card") == "2026-03-23 24:00"
        county.advance_to(at("2026-04-01"))
        assert cards(county) == [
            ("yellow_card", "2026-03-23 24:00", ZJ_AND_HEAD),
            ("red_card", "2026-03-26 24:00", EVERYONE),
        ]

    def test_an_extension_moves_the_cards_still_to_come(self) -> None:
        """Extended by 3 wd on 03-10 (to 03-16): the yellow card moves to 03-16 and the red to
        03-19; the warning was shown already and is not shown again."""
        county = ladder_county()
        county.to_approval()
        county.do("accept", "P1", "o_zj")
        county.advance_to(at("2026-03-10", "10:00"))
        cards(county)
        county.do("extend_limit", "P1", "o_zj", days=3, authority="zj_head", reason="专家论证")
        assert county.deadline("P1.approval.zj.card") == "2026-03-16 24:00"
        county.advance_to(at("2026-03-25"))
        assert cards(county) == [
            ("yellow_card", "2026-03-16 24:00", ZJ_AND_HEAD),
            ("red_card", "2026-03-19 24:00", EVERYONE),
        ]

    def test_a_returned_branch_s_cards_wait_for_the_corrections(self) -> None:
        """Returned on 03-02 with all 7 wd left; corrected Fri 03-20: the limit is 03-31, the
        warning 03-27 24:00."""
        county = ladder_county()
        county.to_approval()
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        county.advance_to(at("2026-03-20"))
        assert cards(county) == []
        county.do("supply", "P1", "fuyuan", materials=["site_photos"])
        assert county.deadline("P1.approval.zj") == "2026-03-31 24:00"
        county.advance_to(at("2026-03-28"))
        assert cards(county) == [("early_warning", "2026-03-27 24:00", ZJ)]

    def test_a_decision_ends_the_ladder(self) -> None:
        """Approved after the warning: no yellow, no red, no card timer."""
        county = ladder_county()
        county.to_approval()
        county.do("accept", "P1", "o_zj")
        county.advance_to(at("2026-03-10"))
        county.do("approve", "P1", "o_zj")
        assert county.engine.store.timers("P1") == []
        county.advance_to(at("2026-04-01"))
        assert [kind for kind, _, _ in cards(county)] == ["early_warning"]

    def test_deemed_approval_at_the_deadline_comes_before_the_yellow_card(self) -> None:
        """zj's silence approves at 03-11 24:00, so the yellow card due then is not shown."""
        county = ladder_county({"deemed_approval": ["zj"]})
        county.to_approval()
        county.advance_to(at("2026-04-01"))
        assert [kind for kind, _, _ in cards(county)] == ["early_warning"]
        assert county.stage() == "approved"

    def test_steps_behind_when_the_branch_opens_are_skipped(self) -> None:
        """With a 1 wd limit (due 03-03) a "2 wd left" warning would be before the branch
        existed: it is skipped, never sent late; the yellow card comes at the deadline."""
        county = ladder_county({"time_limit_wd": {"zj": 1}})
        county.to_approval()
        county.advance_to(at("2026-03-05"))
        assert cards(county) == [("yellow_card", "2026-03-03 24:00", ZJ_AND_HEAD)]

    def test_a_ladder_never_climbs_down(self) -> None:
        """With a 1 wd limit the warning was skipped and the yellow card shown on 03-03; an
        extension to 03-10 would put "2 wd left" on 03-06, after the yellow card: not shown.
        The red card follows the new limit (03-11, 12, 13)."""
        county = ladder_county({"time_limit_wd": {"zj": 1}})
        county.to_approval()
        county.do("accept", "P1", "o_zj")
        county.advance_to(at("2026-03-04"))
        cards(county)
        county.do("extend_limit", "P1", "o_zj", days=5, authority="zj_head", reason="补充论证")
        assert county.deadline("P1.approval.zj") == "2026-03-10 24:00"
        county.advance_to(at("2026-03-20"))
        assert cards(county) == [("red_card", "2026-03-13 24:00", EVERYONE)]

    def test_a_reopened_branch_climbs_a_new_ladder(self) -> None:
        """zj, accepted short of its credit report, is revoked at the supply deadline (03-30
        24:00); applied again on 04-01 it is due 04-13 and warned again on 04-09."""
        county = ladder_county()
        county.to_approval()
        county.do("accept", "P1", "o_zj", deficient=["credit_report"])
        county.advance_to(at("2026-04-01"))
        assert county.branch("zj") == "revoked"
        assert [kind for kind, _, _ in cards(county)] == [
            "early_warning",
            "yellow_card",
            "red_card",
        ]
        county.do("apply", "P1", "fuyuan")
        assert county.engine.project("P1").branches["zj"].cards_issued == ()
        county.advance_to(at("2026-04-10"))
        assert cards(county) == [("early_warning", "2026-04-09 24:00", ZJ)]


class TestPreReview:
    # Submitted Mon 03-02 09:00; 3 wd: due 03-05 24:00. Warning 03-03 24:00, yellow 03-05 24:00,
    # red 3 wd overdue (06, 09, 10): 03-10 24:00.

    def test_only_silent_units_get_cards(self) -> None:
        """gxj and fgw answer at once, zrzy after its warning; sthj stays silent and gets all
        three, its reviewer first, then its head, the leader and the efficiency office."""
        county = County(actors=actors(), settings=LADDER_ON)
        county.to_pre_review()
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.do("opinion", "P1", "r_fgw", verdict="pass")
        assert county.deadline("P1.pre_review.sthj.card") == "2026-03-03 24:00"
        county.advance_to(at("2026-03-04"))
        county.do("opinion", "P1", "r_zrzy", verdict="pass")
        county.advance_to(at("2026-03-12"))
        sent = [
            (n.kind, n.fields["department"], format_local(n.at), n.recipients)
            for n in county.notices
            if n.kind in CARD_KINDS
        ]
        assert sent == [
            ("early_warning", "sthj", "2026-03-03 24:00", ("r_sthj",)),
            ("early_warning", "zrzy", "2026-03-03 24:00", ("r_zrzy",)),
            ("yellow_card", "sthj", "2026-03-05 24:00", ("r_sthj", "sthj_head")),
            ("red_card", "sthj", "2026-03-10 24:00", ("r_sthj", "sthj_head", "huang", "xnb")),
        ]
        assert county.engine.holdups("P1")[0].card == "red"

    def test_silence_deemed_a_pass_closes_the_round_before_the_yellow_card(self) -> None:
        """With silence as a pass, the deadline passes the silent units: no yellow card."""
        county = County(actors=actors(), settings={**LADDER_ON, "pre_review": {"silence": "pass"}})
        county.to_pre_review()
        county.advance_to(at("2026-03-12"))
        assert county.stage() == "decision.pending"
        assert {n.kind for n in county.notices if n.kind in CARD_KINDS} == {"early_warning"}


class TestStepTime:
    @pytest.mark.parametrize(
        ("offset", "expected"),
        [
            (3, "2026-10-08 24:00"),  # 10-09, 10-10 (a make-up Saturday) and 10-12 left
            (2, "2026-10-09 24:00"),
            (1, "2026-10-10 24:00"),
            (0, "2026-10-12 24:00"),
            (-1, "2026-10-13 24:00"),
            (-5, "2026-10-19 24:00"),
        ],
    )
    def test_offsets_around_a_deadline_after_national_day(self, offset: int, expected: str) -> None:
        """A limit ending Mon 2026-10-12 24:00, steps counted in working days either side."""
        due = at("2026-10-13", "00:00")
        assert format_local(step_time(WorkingCalendar(), due, offset)) == expected

    @hypothesis_settings(deadline=None)
    @given(official_days(), st.integers(min_value=-20, max_value=20))
    def test_a_step_never_falls_on_a_day_off(self, day: date, offset: int) -> None:
        """For a deadline at the end of any working day of 2025-2026, every step ends a
        working day (the 24:00 of its own day)."""
        calendar = WorkingCalendar()
        if not calendar.is_working_day(day):
            return
        due = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=SHANGHAI)
        moment = step_time(calendar, due, offset)
        assert calendar.is_working_day(to_local(moment).date() - timedelta(days=1))
        assert (moment < due) == (offset > 0)


class TestReadingTheLadder:
    def test_holdups_and_the_late_report_show_the_last_card(self) -> None:
        """On 03-13 zj has its yellow card: the holdup and `report late` say so."""
        from approvalflow.cli.report import late_rows

        county = ladder_county()
        county.to_approval()
        county.advance_to(at("2026-03-13"))
        assert [(h.waiting_on, h.card) for h in county.engine.holdups("P1")] == [("zj", "yellow")]
        rows = late_rows(county.engine, "2026-03-13 09:00")
        found = [(r["department"], r["department_name"], r["card"], r["wd_overdue"]) for r in rows]
        assert found == [("zj", "住建", "yellow 黄牌", 2)]

    def test_show_names_the_card_of_whoever_holds_the_project_up(self) -> None:
        """`approvalflow show`: zj holds it up and has had its red card; the timeline lists it."""
        from approvalflow.cli.show import render

        county = ladder_county()
        county.to_approval()
        county.advance_to(at("2026-03-18"))
        out = render(county.engine, county.engine.project("P1"), county.clock.now())
        assert "Holding it up: 住建 (zj), pending, due 2026-03-11 24:00, red card (红牌)" in out
        assert "card_issued" in out and "card=warning department=zj" in out

    def test_the_preview_gives_each_branch_s_card_dates(self) -> None:
        """Applied 2026-09-24 (before Mid-Autumn and National Day): zj is due 10-12, warned
        10-09, yellow 10-12, red 10-15. Submitted 09-21, pre-review is due 09-24: each unit
        would be warned 09-22, yellow 09-24, red 09-30 (09-25 is Mid-Autumn)."""
        county = ladder_county(start=at("2026-09-21"))
        preview = county.engine.preview(
            PROJECT_FIELDS,
            "guo",
            approval_start=at("2026-09-24"),
        )
        (zj,) = preview.branches
        assert zj.due.display() == "2026-10-12 24:00"
        assert [(c.card, c.display(), c.recipients) for c in zj.cards] == [
            ("warning", "2026-10-09 24:00", ("officer",)),
            ("yellow", "2026-10-12 24:00", ("officer", "head")),
            ("red", "2026-10-15 24:00", ("officer", "head", "leader", "efficiency_office")),
        ]
        assert sorted(preview.pre_review_cards) == ["fgw", "gxj", "sthj", "zrzy"]
        assert [c.display() for c in preview.pre_review_cards["gxj"]] == [
            "2026-09-22 24:00",
            "2026-09-24 24:00",
            "2026-09-30 24:00",
        ]

    def test_the_preview_without_a_ladder_has_no_cards(self) -> None:
        """Off by default: no dates to show."""
        preview = County().engine.preview(
            PROJECT_FIELDS,
            "guo",
        )
        assert all(b.cards == () for b in preview.branches)
        assert preview.pre_review_cards == {}
