"""The task list (待办/已办): what each person can act on now, and what they did.

The property test compares ``Engine.tasks`` with a slow reference that knows nothing of the
task list: for every project and every command its stage allows (``allowed_commands``), it
tries the command for the actor on a scratch copy of the project, and counts it as an item
when the engine would take it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
from builders import MONDAY, PROJECT_FIELDS, County, county_actors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layouts import to_version_8

from approvalflow import (
    Actor,
    ApprovalflowError,
    Engine,
    InvalidTransition,
    NotAuthorized,
    hookimpl,
)
from approvalflow.calendar import SHANGHAI
from approvalflow.project import ProjectState
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.rules.holdups import late_items, late_summary
from approvalflow.settings import CARDS
from approvalflow.stores.memory import MemoryStore
from approvalflow.tasks import (
    CARD_RANK,
    ITEM_KINDS,
    NOT_WAITED_ON,
    TASK_COMMANDS,
    TASK_KINDS,
    TaskItem,
    open_items,
    part_name,
    sort_by_urgency,
    task_parts,
)

SMALL = {
    "pre_review": {"members": ["gxj", "fgw"]},
    "routing": {"departments": ["fgw", "zj"]},
    "commitment": {"departments": ["zj"]},
}
ACTORS = [a.id for a in county_actors()]
# Approval in two stages (zj leads the second, so the rectification of its branch and of the
# stage's combined result can both wait on zj), the efficiency office, 加签/减签 on the way.
STAGED: dict[str, Any] = {
    **SMALL,
    "approval": {
        "stages": [
            {
                "id": "one",
                "name": "立项",
                "departments": ["fgw", "zj"],
                "lead": "fgw",
                "limit_wd": 8,
            },
            {"id": "two", "name": "施工", "departments": ["zj"], "lead": "zj", "limit_wd": 10},
        ],
        "total_limit_wd": 20,
    },
}
STAGED_ACTORS = [*county_actors(), Actor("xiao", ["efficiency_office"], name="效能办")]
STAGED_IDS = [a.id for a in STAGED_ACTORS]
# Under stages each stage's branches and each stage's result are rated (D168).
RATED = [
    "approval.one",
    "approval.two",
    *(f"approval.{stage}.{dept}" for stage in ("one", "two") for dept in ("fgw", "zj", "sthj")),
]
# Commands nothing waits on, which the walk sends now and then: they make the items the task
# list must then show (an added branch, a removal waiting for consent, a rectification).
ANYTIME_MOVES: Sequence[tuple[str, str, Mapping[str, Any]]] = (
    ("add_department", "o_fgw", {"department": "sthj", "reason": "需环评"}),
    ("add_department", "o_zj", {"department": "yj", "reason": "涉及应急"}),
    ("remove_department", "o_fgw", {"department": "zj", "reason": "已备案"}),
    ("remove_department", "o_zj", {"department": "fgw", "reason": "已备案"}),
    ("rate", "fuyuan", {"item": "approval.one.zj", "score": 2}),
    ("rate", "fuyuan", {"item": "approval.one.fgw", "score": 1}),
    ("rate", "fuyuan", {"item": "approval.one", "score": 2}),
    ("rate", "fuyuan", {"item": "approval.two.zj", "score": 2}),
    ("rate", "fuyuan", {"item": "approval.two", "score": 1}),
    ("rate", "fuyuan", {"item": "approval.one.fgw", "score": 5}),
)
EVERY_MATERIAL = [
    "business_license",
    "feasibility_study",
    "land_certificate",
    "eia_report",
    "energy_report",
    "safety_report",
    "investment_agreement",
    "credit_report",
    "bank_reference",
    "site_photos",
    "org_chart",
]

# Arguments that get a command past its argument checks whenever the actor may send it.
PROBES: Mapping[str, Sequence[Mapping[str, Any]]] = {
    "submit_pre_review": [{"materials": []}],
    "opinion": [{"verdict": "pass"}],
    "supply": [{"materials": EVERY_MATERIAL}],
    "convene": [{"present": ["chair", "m1", "m2", "m3", "m4"]}],
    "vote": [{"vote": "abstain"}],
    "return": [{"corrections": ["site_photos"]}],
    "reject": [{"reason": "probe"}],
    "accept_commitment": [{"department": "fgw"}, {"department": "zj"}],
    "verify": [{"passed": True}],
    "consent_remove_department": [
        {"department": d, "consent": True} for d in ("fgw", "zj", "sthj", "yj")
    ],
    "rectify": [{"item": item, "text": "已整改"} for item in RATED],
    "confirm_rectification": [{"item": item, "confirmed": True} for item in RATED],
}
# The walk's choices of arguments for each command it takes from a task list.
VARIANTS: Mapping[str, Sequence[Mapping[str, Any]]] = {
    **PROBES,
    "opinion": [
        *[{"verdict": "pass"}] * 8,
        {"verdict": "supplement", "missing": ["eia_report"]},
        {"verdict": "fail", "reason": "不符合产业政策"},
    ],
    "convene": [{"present": ["chair", "m1", "m2", "m3"]}, {"present": ["chair"]}],
    "vote": [{"vote": "approve"}] * 4 + [{"vote": "reject"}],
    "accept": [{}, {"deficient": ["credit_report"]}],
    "verify": [{"passed": True}, {"passed": False}],
}


def scratch_copy(engine: Engine, project: str) -> Engine:
    """An engine like ``engine`` over a fresh store holding only ``project``, as it is."""
    store = MemoryStore()
    state = engine.store.load(project)
    assert state is not None
    store.commit(
        project=project,
        expected_version=0,
        events=engine.store.events(project),
        timers=_no_timers(),
        notices=(),
        command=None,
        state=state.clone(),
    )
    return Engine(actors=engine.actors, store=store, settings=engine.settings, clock=engine.clock)


def _no_timers() -> Any:
    from approvalflow.model import TimerChanges

    return TimerChanges()


def reference_items(engine: Engine, actor: str) -> set[tuple[str, str]]:
    """(project, command) for every task command ``actor`` could send now, found by trying."""
    found: set[tuple[str, str]] = set()
    for project in engine.project_ids():
        for command in sorted(set(engine.allowed_commands(project)) & TASK_COMMANDS):
            for args in PROBES.get(command, [{}]):
                try:
                    result = scratch_copy(engine, project).execute(command, project, actor, args)
                except ApprovalflowError:
                    continue
                # A supply is always taken during approval; it answers a wait only when it
                # completes something (more than the record of what arrived).
                if command != "supply" or len(result.events) > 1:
                    found.add((project, command))
                    break
    return found


def item_probes(item: TaskItem, command: str) -> Sequence[Mapping[str, Any]]:
    """Arguments for ``command`` that name what ``item`` itself is about (its department, its
    rated item), then the probes: an item must be taken as it is listed, not some other
    department's or rating's of the same project."""
    if command == "accept_commitment":
        return [{"department": item.department}]
    if command == "consent_remove_department":
        return [
            {"department": item.department, "consent": True},
            {"department": item.department, "consent": False, "reason": "probe"},
        ]
    if command == "rectify":
        return [{"item": item.item, "text": "已整改"}]
    if command == "confirm_rectification":
        return [{"item": item.item, "confirmed": True}]
    return PROBES.get(command, [{}])


def refused_items(engine: Engine, actor: str) -> list[tuple[TaskItem, str, list[str]]]:
    """Every (item, command) of ``actor``'s list that the engine refuses on a scratch copy of
    the project with every argument ``item_probes`` tries, and the refusals' codes."""
    refused: list[tuple[TaskItem, str, list[str]]] = []
    for item in engine.tasks(actor):
        for command in item.commands:
            codes: list[str] = []
            for args in item_probes(item, command):
                try:
                    scratch_copy(engine, item.project).execute(command, item.project, actor, args)
                except ApprovalflowError as error:
                    codes.append(f"{error.code}: {error}")
                    continue
                break
            else:
                refused.append((item, command, codes))
    return refused


def listed_items(engine: Engine, actor: str) -> set[tuple[str, str]]:
    return {(item.project, command) for item in engine.tasks(actor) for command in item.commands}


def walk(
    county: County,
    draw: Any,
    projects: int,
    steps: int,
    actors: Sequence[str] = ACTORS,
    moves: Sequence[tuple[str, str, Mapping[str, Any]]] = (),
    *,
    in_approval: bool = False,
) -> None:
    """Drive ``projects`` projects by taking items from people's task lists (and time, and
    now and then one of ``moves``, commands nothing waits on); ``in_approval``: the first
    project, a priority one, starts the walk in approval."""
    for n in range(projects):
        county.create(f"P{n + 1}", **({"priority": True} if in_approval and n == 0 else {}))
    if in_approval:
        to_approval(county, "P1")
    for _ in range(steps):
        roll = draw(st.integers(0, 9))
        if roll == 0:
            county.advance(timedelta(days=draw(st.sampled_from([1, 4, 12, 40]))))
            continue
        if roll in (1, 2) and moves:
            command, actor, args = draw(st.sampled_from(moves))
            project = f"P{draw(st.integers(1, projects))}"
            with contextlib.suppress(ApprovalflowError):
                county.do(command, project, actor, **args)
            continue
        items = [item for actor in actors for item in county.engine.tasks(actor)]
        if not items:
            continue
        item = draw(st.sampled_from(items))
        actor = item.actor
        if item.kind == "close_meeting" and draw(st.integers(0, 3)) > 0:
            continue  # closing before the votes are in mostly ends the project
        # Mostly the forward move (accept, approve...), often a return, seldom a rejection.
        weighted = [item.commands[0]] * 6 + [c for c in item.commands if c == "return"] * 3
        command = draw(st.sampled_from(weighted + list(item.commands)))
        args = dict(draw(st.sampled_from(VARIANTS.get(command, [{}]))))
        if command == "accept_commitment":
            args = {"department": item.department}
        elif command == "consent_remove_department":
            args = {
                "department": item.department,
                "consent": draw(st.booleans()),
                "reason": "不同意",
            }
        elif command in ("rectify", "confirm_rectification"):
            args = {"item": rated_item(county, item, command), "text": "已整改"}
            if command == "confirm_rectification":
                args = {"item": args["item"], "confirmed": draw(st.booleans()), "reason": "未到位"}
        # An argument the state does not take (a key material deficient...) changes nothing.
        with contextlib.suppress(ApprovalflowError):
            county.do(command, item.project, actor, **args)


def to_approval(county: County, project: str) -> None:
    """``project``, created, taken to approval under ``SMALL``'s pre-review members."""
    county.do("negotiate", project, "guo")
    county.do("submit_pre_review", project, "guo", materials=[])
    for unit in ("gxj", "fgw"):
        county.do("opinion", project, f"r_{unit}", verdict="pass")
    county.approve_in_meeting(project)
    county.do("sign", project, "guo")
    county.do("apply", project, "fuyuan")


def rated_item(county: County, item: TaskItem, command: str) -> str:
    """The rated item a rectify or confirm_rectification ``item`` is about."""
    wanted = "open" if command == "rectify" else "rectified"
    ratings = county.engine.project(item.project).ratings
    return next(
        key
        for key, rating in sorted(ratings.items())
        if rating.department == item.department and rating.rectification == wanted
    )


class TestAgainstTheReference:
    @pytest.mark.usefixtures("every_store")
    @settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data(), projects=st.integers(1, 2), steps=st.integers(0, 60))
    def test_the_task_list_answers_what_the_engine_would_take(
        self, data: Any, projects: int, steps: int
    ) -> None:
        """Every actor's list names exactly the task commands the engine accepts from them, on
        every store: the list is answered from the store's task rows, which give the same
        items as ``open_items`` on every project's state."""
        county = County(settings=SMALL)
        walk(county, data.draw, projects, steps)
        same_as_the_reference(county, ACTORS)

    @pytest.mark.usefixtures("every_store")
    @settings(
        max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=st.data(), projects=st.integers(1, 2), steps=st.integers(20, 90))
    def test_in_stages_with_department_changes_and_ratings(
        self, data: Any, projects: int, steps: int
    ) -> None:
        """The same in approval stages, with 加签/减签 (a priority project waits for its
        leader's consent) and 好差评 in the walk: the stage's result, the consent, the
        rectifications and their confirmation are items like any other."""
        county = County(settings=STAGED, actors=STAGED_ACTORS)
        walk(county, data.draw, projects, steps, STAGED_IDS, ANYTIME_MOVES, in_approval=True)
        same_as_the_reference(county, STAGED_IDS)


class TestOfferedOnlyWhenTaken:
    """An item is listed only when its command's own precheck takes it: the list and the
    command read one condition (``stages.issue_refusal``, ``parallel_approval.apply_refusal``,
    ``commitment.awaiting_verification``, ``branches.branch_allows``)."""

    @pytest.mark.usefixtures("every_store")
    def test_a_stage_result_waits_for_the_next_stage_s_commitment_to_be_verified(self) -> None:
        """Stage one's branches are decided, zj's on a pledge; stage two opens zj again, so
        the result waits for zj's verification (D145): not listed until then (the example
        hypothesis found, D295)."""
        county = County(settings=STAGED, actors=STAGED_ACTORS)
        county.create("P1")
        to_approval(county, "P1")
        county.do("accept_commitment", "P1", "fuyuan", department="zj")
        county.do("accept", "P1", "o_fgw")
        county.do("approve", "P1", "o_fgw")
        assert [i.kind for i in county.engine.tasks("o_fgw")] == []
        with pytest.raises(InvalidTransition, match="not verified yet"):
            scratch_copy(county.engine, "P1").execute("issue_stage_result", "P1", "o_fgw", {})
        assert [i.kind for i in county.engine.tasks("o_zj")] == ["verify"]
        assert "stage_result" not in [h.what for h in county.engine.holdups("P1")]
        county.do("verify", "P1", "o_zj", passed=True)
        assert [i.kind for i in county.engine.tasks("o_fgw")] == ["issue_stage_result"]
        for actor in STAGED_IDS:
            assert refused_items(county.engine, actor) == [], actor
        county.do("issue_stage_result", "P1", "o_fgw")


def same_as_the_reference(county: County, actors: Sequence[str]) -> None:
    for actor in actors:
        assert listed_items(county.engine, actor) == reference_items(county.engine, actor), (
            actor,
            [(p.id, p.stage) for p in county.engine.projects()],
        )
        assert refused_items(county.engine, actor) == [], actor
        assert county.engine.tasks(actor) == from_states(county.engine, actor), actor
    late_and_done_as_from_states(county, actors)


def late_and_done_as_from_states(county: County, actors: Sequence[str]) -> None:
    """The late items read from the task rows are the ones every project's state gives, now
    and later on (when more are late, and entrustments have ended); the latest ``n`` of an
    actor's 已办, read from their newest events only, are the first ``n`` of the whole list."""
    engine = county.engine
    now = county.clock.now()
    for at in (now, now + timedelta(days=9), now + timedelta(days=60)):
        expected = late_items(engine.projects(), engine.rules_for, at)
        assert engine.late_items(at) == expected, at
        for limit in (0, 1, 3):
            assert engine.late_summary(at, limit) == late_summary(expected, limit), (at, limit)
    for actor in actors:
        everything = engine.done(actor)
        for n in (0, 1, 2, 5):
            assert engine.done(actor, n) == everything[:n], (actor, n)


class TestEveryKind:
    """Each built-in command is either answered by a kind of item in ``ITEM_KINDS`` or listed
    as nothing waits on it; and every kind's commands come out of the task rows."""

    def test_every_built_in_command_is_an_item_s_or_waited_on_by_nothing(self) -> None:
        assert TASK_COMMANDS.isdisjoint(NOT_WAITED_ON)
        assert set(BUILTIN_COMMANDS) == TASK_COMMANDS | NOT_WAITED_ON
        assert len(set(TASK_KINDS)) == len(TASK_KINDS)

    @pytest.mark.usefixtures("every_store")
    def test_a_tour_lists_every_kind_and_command_from_the_rows(self) -> None:
        """One project's life in stages, with a removal, a pledge, returns and ratings: after
        every command, each actor's list from the store is the list from the states, every
        row fits its kind in ``ITEM_KINDS``; by the end every kind and every command of the
        table has been listed (a command with no row derivation fails here)."""
        county = County(settings=STAGED, actors=STAGED_ACTORS)
        kinds = {kind.name: kind for kind in ITEM_KINDS}
        listed: set[tuple[str, str]] = set()

        def check() -> None:
            for state in county.engine.projects():
                for part, rows in task_parts(state).items():
                    for row in rows:
                        kind = kinds[row.kind]
                        assert set(row.commands.split(" ")) <= set(kind.commands), row
                        assert part_name(part) in kind.parts, (row, part)
                        assert part_name(part) != "branch" or part == row.department, row
            for actor in STAGED_IDS:
                items = county.engine.tasks(actor)
                assert items == from_states(county.engine, actor), actor
                listed.update((item.kind, command) for item in items for command in item.commands)

        def do(command: str, by: str, **args: Any) -> None:
            county.do(command, "P1", by, **args)
            check()

        county.create("P1", priority=True)
        check()
        do("negotiate", "guo")
        do("submit_pre_review", "guo", materials=[])
        do("opinion", "r_gxj", verdict="supplement", missing=["eia_report"])
        do("opinion", "r_fgw", verdict="pass")
        do("supply", "fuyuan", materials=["eia_report"])
        do("opinion", "r_gxj", verdict="pass")
        do("opinion", "r_fgw", verdict="pass")
        do("convene", "chair", present=["chair", "m1", "m2", "m3"])
        for member in ("chair", "m1", "m2"):
            do("vote", member, vote="approve")
        do("close_meeting", "chair")
        do("sign", "guo")
        do("apply", "fuyuan")
        do("accept", "o_fgw", deficient=["credit_report"])
        do("remove_department", "o_fgw", department="zj", reason="已备案")
        assert [i.department for i in county.engine.tasks("huang")] == ["zj"]
        do("consent_remove_department", "huang", department="zj", consent=False, reason="需要")
        do("accept_commitment", "fuyuan", department="zj")
        do("verify", "o_zj", passed=True)
        do("supply", "fuyuan", materials=["credit_report"])
        do("approve", "o_fgw")
        assert [i.kind for i in county.engine.tasks("o_fgw")] == ["issue_stage_result"]
        do("rate", "fuyuan", item="approval.one.fgw", score=2)
        do("rectify", "o_fgw", item="approval.one.fgw", text="已整改")
        do("confirm_rectification", "xiao", item="approval.one.fgw", confirmed=True)
        do("issue_stage_result", "o_fgw")
        do("accept", "o_zj")
        do("return", "o_zj", corrections=["site_photos"])
        do("supply", "fuyuan", materials=["site_photos"])
        do("approve", "o_zj")
        do("issue_stage_result", "o_zj")
        do("start_construction", "guo")
        do("start_production", "guo")
        do("reach_target", "guo")
        # A branch's rectification and the stage's wait on zj at once: two items.
        do("rate", "fuyuan", item="approval.two.zj", score=2)
        do("rate", "fuyuan", item="approval.two", score=1)
        # Each says which rated item it is about: the answer a rectify's ``item`` names.
        assert sorted((i.kind, i.item) for i in county.engine.tasks("o_zj")) == [
            ("rectify", "approval.two"),
            ("rectify", "approval.two.zj"),
        ]
        do("rectify", "o_zj", item="approval.two", text="已整改")
        assert [(i.kind, i.item) for i in county.engine.tasks("o_zj")] == [
            ("rectify", "approval.two.zj")
        ]
        assert [(i.kind, i.item) for i in county.engine.tasks("fuyuan")] == [
            ("confirm_rectification", "approval.two")
        ]
        county.create("P2")
        county.do("negotiate", "P2", "guo")
        county.do("submit_pre_review", "P2", "guo", materials=[])
        county.do("opinion", "P2", "r_gxj", verdict="pass")
        county.do("opinion", "P2", "r_fgw", verdict="pass")
        check()  # a project waiting for its meeting
        assert {kind for kind, _ in listed} == set(TASK_KINDS)
        assert {command for _, command in listed} == TASK_COMMANDS


def from_states(engine: Engine, actor_id: str) -> list[TaskItem]:
    """The slow list: ``open_items`` on every project's state, as loaded."""
    actor = engine.actors.get(actor_id)
    assert actor is not None
    now = engine.clock.now()
    found = [
        item
        for state in engine.projects()
        for item in open_items(
            state, engine.rules_for(state), actor, calendar=engine.calendar, now=now
        )
    ]
    return sort_by_urgency(found)


@pytest.fixture
def county() -> County:
    return County(settings=SMALL)


def at_pre_review(county: County) -> None:
    county.create("P1")
    county.do("negotiate", "P1", "guo")
    county.do("submit_pre_review", "P1", "guo", materials=[])


class TestItems:
    def test_a_new_project_waits_on_its_recruiter_to_negotiate(self, county: County) -> None:
        county.create("P1")
        assert county.engine.tasks("guo") == [
            TaskItem("guo", "P1", "富远新型铝材产业园", "next_step", ("negotiate",))
        ]
        assert county.engine.tasks("fuyuan") == []

    def test_a_review_carries_its_deadline_and_working_days_left(self, county: County) -> None:
        at_pre_review(county)
        [item] = county.engine.tasks("r_gxj")
        assert (item.kind, item.commands, item.department) == ("review", ("opinion",), "gxj")
        round_ = county.engine.project("P1").round
        assert round_ is not None
        assert (item.deadline, item.working_days_left, item.card) == (round_.due, 3, None)

    def test_a_unit_that_answered_has_nothing_left(self, county: County) -> None:
        at_pre_review(county)
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        assert county.engine.tasks("r_gxj") == []
        assert [i.kind for i in county.engine.tasks("r_fgw")] == ["review"]

    def test_late_items_lead_and_show_negative_working_days(self, county: County) -> None:
        at_pre_review(county)
        county.create("P2")
        county.do("negotiate", "P2", "guo")
        county.advance(timedelta(days=7))
        county.do("submit_pre_review", "P2", "guo", materials=[])
        items = county.engine.tasks("r_gxj")
        assert [i.project for i in items] == ["P1", "P2"]
        assert items[0].working_days_left is not None and items[0].working_days_left < 0
        assert items[1].working_days_left == 3

    def test_only_members_present_and_yet_to_vote_have_a_vote(self, county: County) -> None:
        at_pre_review(county)
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        county.do("opinion", "P1", "r_fgw", verdict="pass")
        county.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        county.do("vote", "P1", "m1", vote="approve")
        assert [i.kind for i in county.engine.tasks("chair")] == ["close_meeting", "vote"]
        assert county.engine.tasks("m1") == []
        assert county.engine.tasks("m3") == []
        assert [i.kind for i in county.engine.tasks("m2")] == ["vote"]

    def test_an_unknown_actor_is_refused(self, county: County) -> None:
        with pytest.raises(NotAuthorized, match="not in the actor directory"):
            county.engine.tasks("nobody")
        with pytest.raises(NotAuthorized, match="not in the actor directory"):
            county.engine.done("nobody")

    def test_done_lists_what_the_actor_did_the_latest_first(self, county: County) -> None:
        county.create("P1")
        county.advance(timedelta(minutes=5))
        county.do("negotiate", "P1", "guo")
        county.advance(timedelta(minutes=5))
        county.do("submit_pre_review", "P1", "guo", materials=[])
        county.advance(timedelta(hours=1))
        county.do("opinion", "P1", "r_gxj", verdict="pass")
        assert [(d.what, d.version) for d in county.engine.done("guo")] == [
            ("materials_submitted", 7),
            ("stage_changed", 4),
            ("created", 2),
        ]
        [opinion] = county.engine.done("r_gxj")
        assert (opinion.what, opinion.at) == ("opinion_given", county.clock.now())
        assert county.engine.done("fuyuan") == []


class TestUrgency:
    def test_a_sharper_card_leads_at_one_deadline_and_no_deadline_comes_last(self) -> None:
        due = MONDAY + timedelta(days=3)
        mild = TaskItem("a", "P1", "n", "review", ("opinion",), deadline=due, card="warning")
        red = TaskItem("a", "P2", "n", "review", ("opinion",), deadline=due, card="red")
        open_ = TaskItem("a", "P0", "n", "next_step", ("sign",))
        early = TaskItem("a", "P9", "n", "decide", ("approve",), deadline=MONDAY)
        assert sort_by_urgency([open_, mild, red, early]) == [early, red, mild, open_]

    def test_a_carded_item_sorts_by_the_card_the_ladder_gave_it(self) -> None:
        """A branch's item carries the ladder's own card name (``warning``); at one deadline
        the sharper cards lead it and an item without one follows, whatever the projects' ids
        say (the ranks are read from ``settings.LADDER_CARDS``, the names items carry, D296)."""
        county = County(settings={"ladder": {"enabled": True}, "routing": {"departments": ["zj"]}})
        county.to_approval()
        # Applied on Monday 2026-03-02, zj's 7 wd end on 03-11: the warning came 2 wd before.
        county.advance_to(datetime(2026, 3, 10, 9, 0, tzinfo=SHANGHAI))
        [warned] = county.engine.tasks("o_zj")
        assert (warned.kind, warned.card) == ("accept", "warning")
        assert set(CARD_RANK) == set(CARDS)
        yellow = attrs.evolve(warned, project="P2", card="yellow")
        red = attrs.evolve(warned, project="P3", card="red")
        plain = attrs.evolve(warned, project="P0", card=None)
        assert sort_by_urgency([plain, warned, yellow, red]) == [red, yellow, warned, plain]


class IssueTracker:
    """A county plugin that assigns its own follow-up to the project's leader."""

    @hookimpl
    def approvalflow_task_items(
        self, project: ProjectState, settings: Any
    ) -> list[TaskItem] | None:
        if project.stage != "lead":
            return None
        return [
            TaskItem(project.leader, project.id, project.name, "site_visit", ("urge",)),
            TaskItem("someone_else", project.id, project.name, "site_visit", ("urge",)),
        ]


def test_hook_approvalflow_task_items() -> None:
    """A plugin's items join the list of the actor they name, and only theirs."""
    county = County(settings=SMALL, plugins=[IssueTracker()])
    county.create("P1")
    assert [(i.kind, i.project) for i in county.engine.tasks("huang")] == [("site_visit", "P1")]
    assert [i.kind for i in county.engine.tasks("guo")] == ["next_step"]
    county.do("negotiate", "P1", "guo")
    assert county.engine.tasks("huang") == []


def test_open_items_is_pure(county: County) -> None:
    """The same state, settings, actor and moment give the same items, and change nothing."""
    at_pre_review(county)
    state = county.engine.project("P1")
    actor = county.engine.actors.get("r_gxj")
    assert actor is not None
    args: dict[str, Any] = {"calendar": county.engine.calendar, "now": county.clock.now()}
    first = open_items(state, county.engine.settings, actor, **args)
    assert first == open_items(state, county.engine.settings, actor, **args)
    assert state == county.engine.project("P1")


def drive(county: County) -> None:
    """Projects standing where every kind of built-in item waits: a review, a meeting's votes,
    branches to accept and decide, supplies and pledges, a next step."""
    at_pre_review(county)
    for project in ("P2", "P3"):
        county.create(project)
        county.do("negotiate", project, "guo")
        county.do("submit_pre_review", project, "guo", materials=[])
        for unit in ("gxj", "fgw"):
            county.do("opinion", project, f"r_{unit}", verdict="pass")
    county.do("convene", "P2", "chair", present=["chair", "m1", "m2"])
    county.do("vote", "P2", "m1", vote="approve")
    county.do("convene", "P3", "chair", present=["chair", "m1", "m2", "m3"])
    for member in ("chair", "m1", "m2"):
        county.do("vote", "P3", member, vote="approve")
    county.do("close_meeting", "P3", "chair")
    county.do("sign", "P3", "guo")
    county.do("apply", "P3", "fuyuan")
    county.do("accept", "P3", "o_zj")
    county.do("accept", "P3", "o_fgw", deficient=["credit_report"])
    county.create("P4")


def every_list(engine: Engine) -> dict[str, list[TaskItem]]:
    return {actor: engine.tasks(actor) for actor in ACTORS}


class TestTheReadModelIsKept:
    """The task rows survive the store object, are built for a store migrated from schema
    version 6, and follow each project's pinned rule set."""

    def test_rows_survive_a_reopen_of_the_store(self, tmp_path: Any) -> None:
        from approvalflow.stores.sqlite import SQLiteStore

        path = tmp_path / "tasks.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        drive(county)
        before = every_list(county.engine)
        assert sum(len(items) for items in before.values()) > 10
        county.engine.store.close()
        reopened = Engine(
            actors=county.engine.actors,
            store=SQLiteStore(path),
            settings=SMALL,
            clock=county.clock,
        )
        try:
            assert every_list(reopened) == before
            assert {a: from_states(reopened, a) for a in ACTORS} == before
        finally:
            reopened.store.close()

    def test_a_store_that_did_not_read_the_project_replaces_its_rows_whole(
        self, tmp_path: Any
    ) -> None:
        """A commit through a store object that never read the project (another process)
        cannot diff its rows: it deletes the project's rows and writes the new ones, and the
        other projects' rows stay."""
        from approvalflow.model import Event, TimerChanges
        from approvalflow.stores.sqlite import SQLiteStore

        path = tmp_path / "two.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        drive(county)
        other = SQLiteStore(path)
        try:
            state = county.engine.project("P3")
            assert [i.project for i in county.engine.tasks("o_zj")] == ["P3"]
            event = Event(
                "P3", state.version + 1, "stage_changed", county.clock.now(), {"to": "terminated"}
            )
            after = state.clone()
            after.apply(event)
            other.commit(
                project="P3",
                expected_version=state.version,
                events=[event],
                timers=TimerChanges(),
                notices=(),
                command=None,
                state=after,
            )
            engine = Engine(actors=county.engine.actors, store=other, clock=county.clock)
            assert engine.tasks("o_zj") == []
            assert {a: engine.tasks(a) for a in ACTORS} == {
                a: from_states(engine, a) for a in ACTORS
            }
            assert [i.project for i in engine.tasks("r_gxj")] == ["P1"]
        finally:
            other.close()
            county.engine.store.close()

    def test_a_version_6_store_gets_its_rows_built_by_the_migration(self, tmp_path: Any) -> None:
        import sqlite3

        from approvalflow.stores.sqlite import SQLiteStore

        path = tmp_path / "v6.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        drive(county)
        before = every_list(county.engine)
        county.engine.store.close()
        connection = sqlite3.connect(path)
        with connection:
            to_version_8(connection, "sqlite")
            connection.execute("DROP TABLE task_rows")
            connection.execute("DROP INDEX events_by_actor")
            connection.execute("DROP INDEX events_by_principal")
            connection.execute("ALTER TABLE snapshots DROP COLUMN digest")  # schema version 8
            connection.execute("UPDATE meta SET schema_version = 6")
        connection.close()
        migrated = Engine(
            actors=county.engine.actors, store=SQLiteStore(path), settings=SMALL, clock=county.clock
        )
        try:
            assert every_list(migrated) == before
            assert {a: from_states(migrated, a) for a in ACTORS} == before
            assert [d.what for d in migrated.done("o_zj")] == ["branch_changed"]
        finally:
            migrated.store.close()

    def test_a_version_8_store_gets_the_rows_state_by_the_migration(self, tmp_path: Any) -> None:
        """Schema 12 makes ``task_rows`` anew with ``state`` and rebuilds it; the late items and
        the lists then read as before the downgrade."""
        import sqlite3

        from approvalflow.stores.sqlite import SQLiteStore

        path = tmp_path / "v8.db"
        county = County(settings=SMALL, store=SQLiteStore(path))
        drive(county)
        later = county.clock.now() + timedelta(days=60)
        lists, late = every_list(county.engine), county.engine.late_items(later)
        assert late
        county.engine.store.close()
        connection = sqlite3.connect(path)
        with connection:
            to_version_8(connection, "sqlite")
            connection.execute("DROP INDEX task_rows_due")  # schema 15's, on ``state``
            connection.execute("ALTER TABLE task_rows DROP COLUMN state")
            connection.execute("DROP INDEX events_by_actor")
            connection.execute("CREATE INDEX events_by_actor ON events (by_actor)")
            connection.execute("UPDATE meta SET schema_version = 8")
        connection.close()
        migrated = Engine(
            actors=county.engine.actors, store=SQLiteStore(path), settings=SMALL, clock=county.clock
        )
        try:
            assert every_list(migrated) == lists
            assert migrated.late_items(later) == late
            assert migrated.done("guo", 2) == migrated.done("guo")[:2]
        finally:
            migrated.store.close()

    @pytest.mark.usefixtures("every_store")
    def test_each_project_s_items_follow_the_rule_set_it_is_pinned_to(self) -> None:
        county = County(settings=SMALL)
        at_pre_review(county)
        assert [i.project for i in county.engine.tasks("r_fgw")] == ["P1"]
        # The county drops fgw from pre-review: P1 keeps its rules, P2 gets the new ones.
        narrower = {**SMALL, "pre_review": {"members": ["gxj"]}}
        engine = Engine(
            actors=county.engine.actors,
            store=county.engine.store,
            settings=narrower,
            clock=county.clock,
        )
        engine.execute("create", "P2", "guo", dict(PROJECT_FIELDS))
        engine.execute("negotiate", "P2", "guo")
        engine.execute("submit_pre_review", "P2", "guo", {"materials": []})
        assert [i.project for i in engine.tasks("r_fgw")] == ["P1"]
        assert [i.project for i in engine.tasks("r_gxj")] == ["P1", "P2"]
        for actor in ACTORS:
            assert engine.tasks(actor) == from_states(engine, actor), actor

    @pytest.mark.usefixtures("every_store")
    def test_done_is_read_from_the_index_on_every_store(self) -> None:
        county = County(settings=SMALL)
        drive(county)
        done = county.engine.done("o_fgw")
        assert [(d.project, d.what, d.project_name) for d in done] == [
            ("P3", "branch_changed", "富远新型铝材产业园")
        ]
        assert [d.project for d in county.engine.done("m1")] == ["P3", "P2"]
        everything = {d.project for d in county.engine.done("guo")}
        assert everything == {"P1", "P2", "P3", "P4"}


class TestLateItemsAndDoneAtScale:
    """The late items and the latest 已办 are read from the store's rows and indexes: no
    project is loaded, and the answers are the ones the states give."""

    @pytest.mark.usefixtures("every_store")
    def test_late_items_come_from_the_task_rows_without_loading_a_project(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        county = County(settings=SMALL)
        drive(county)  # P1 in pre-review; P3 in approval: zj accepted, fgw deficient
        county.do("transfer", "P3", "o_zj", to="o_zj", reason="专人负责")
        county.do("entrust", "P3", "o_zj", to="o_zj2", until="2026-04-01")
        engine = county.engine
        later = county.clock.now() + timedelta(days=60)
        expected = late_items(engine.projects(), engine.rules_for, later)
        monkeypatch.setattr(engine._reading, "projects", _no_loading)
        found = engine.late_items(later)
        assert found == expected
        summary = engine.late_summary(later, 1)
        assert summary == late_summary(expected, 1)
        assert [(g.department, g.count, len(g.first)) for g in summary["fgw"]] == [
            ("fgw", 1, 1),
            ("fgw", 1, 1),
        ]
        assert {
            dept: [(h.project, h.what, h.state) for h in items] for dept, items in found.items()
        } == {
            "fgw": [("P1", "pre_review", "silent"), ("P3", "approval", "deficient")],
            "gxj": [("P1", "pre_review", "silent")],
            "zj": [("P3", "approval", "accepted")],
        }
        # The entrustment has ended by then: no deputy is named, as the state says.
        assert found["zj"][0].handler == "o_zj" and found["zj"][0].deputy is None
        assert engine.late_items(county.clock.now()) == {}

    @pytest.mark.usefixtures("every_store")
    def test_the_latest_done_are_read_from_the_newest_events_only(self) -> None:
        county = County(settings=SMALL)
        for n in range(1, 8):
            county.create(f"P{n}")
            county.advance(timedelta(minutes=1))
            county.do("negotiate", f"P{n}", "guo")
            county.advance(timedelta(minutes=1))
        everything = county.engine.done("guo")
        assert len(everything) == 14
        reads: list[int | None] = []
        store = county.engine.store
        original = store.actor_events

        def counted(actor: str, newest: int | None = None) -> Any:
            reads.append(newest)
            return original(actor, newest)

        store.actor_events = counted  # type: ignore[method-assign]
        latest = county.engine.done("guo", 3)
        assert latest == everything[:3]
        assert [(d.project, d.what) for d in latest] == [
            ("P7", "stage_changed"),
            ("P7", "created"),
            ("P6", "stage_changed"),
        ]
        assert reads == [64]  # one read of the newest events, not the whole history
        assert county.engine.done("guo", 0) == []
        with pytest.raises(ValueError, match="limit"):
            county.engine.done("guo", -1)


def _no_loading(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("a project was loaded")
