"""Stateful property tests: random actors send random commands with random arguments while the
clock jumps; after every step the engine's invariants hold."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from builders import MEMBER_UNITS, PROJECT_FIELDS, County
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from approvalflow import ApprovalflowError, ProjectState
from approvalflow.calendar import to_local
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.settings import Settings
from approvalflow.states import BRANCH_STATES, STAGES

PROJECTS = ("P1", "P2")
ACTORS = (
    "guo",
    "fuyuan",
    "daiban",
    "huang",
    "chair",
    "m1",
    "m2",
    "m4",
    *(f"r_{unit}" for unit in MEMBER_UNITS),
    "r_zj",
    "o_fgw",
    "o_zrzy",
    "o_zj",
    "o_sthj",
    "o_yj",
)
MATERIALS = (*tuple(Settings.default().materials), "moon_rock")
# Ending commands come through `progress`, rarely, so that runs get deep into the workflow.
COMMANDS = tuple(
    name
    for name in BUILTIN_COMMANDS
    if name not in ("create", "withdraw", "terminate", "reject", "opinion")
)

materials = st.lists(st.sampled_from(MATERIALS), max_size=3)
arguments = st.fixed_dictionaries(
    {},
    optional={
        "materials": materials,
        "verdict": st.sampled_from(["pass", "supplement", "fail", "maybe"]),
        "missing": materials,
        "reason": st.sampled_from(["理由", ""]),
        "present": st.lists(st.sampled_from(["chair", "m1", "m2", "m4", "huang"]), max_size=4),
        "vote": st.sampled_from(["approve", "reject", "abstain"]),
        "deficient": materials,
        "corrections": materials,
        "passed": st.booleans(),
        "department": st.sampled_from(["fgw", "zrzy", "zj", "sthj", "yj", "gxj"]),
        "amount": st.sampled_from(["1亿", "600万", -5, "x"]),
        "agent": st.sampled_from(["daiban", None, "guo"]),
        "departments": st.lists(st.sampled_from(["fgw", "zrzy", "zj", "sthj", "yj"]), max_size=3),
    },
)


OFFICERS = ("o_fgw", "o_zrzy", "o_zj", "o_sthj", "o_yj")
PLAUSIBLE: dict[str, tuple[str, ...]] = {
    "negotiate": ("guo",),
    "sign": ("guo",),
    "reach_target": ("guo",),
    "report_funds": ("guo",),
    "submit_pre_review": ("guo", "fuyuan"),
    "opinion": tuple(f"r_{unit}" for unit in MEMBER_UNITS),
    "supply": ("fuyuan", "daiban", "guo"),
    "convene": ("chair",),
    "close_meeting": ("chair",),
    "vote": ("chair", "m1", "m2"),
    "apply": ("fuyuan", "daiban"),
    "accept_commitment": ("fuyuan",),
    "withdraw": ("fuyuan",),
    "accept": OFFICERS,
    "return": OFFICERS,
    "approve": OFFICERS,
    "reject": OFFICERS,
    "verify": OFFICERS,
    "urge": ("huang",),
    "terminate": ("huang",),
    "start_construction": ("guo", "fuyuan"),
    "start_production": ("guo", "fuyuan"),
    "delegate": ("fuyuan",),
}
some_materials = st.lists(st.sampled_from(MATERIALS[:-1]), min_size=1, max_size=3)
PLAUSIBLE_ARGS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "submit_pre_review": st.fixed_dictionaries({"materials": materials}),
    "opinion": st.one_of(
        *[st.just({"verdict": "pass"})] * 24,
        st.fixed_dictionaries({"verdict": st.just("supplement"), "missing": some_materials}),
        st.just({"verdict": "fail", "reason": "不符合产业政策"}),
    ),
    "supply": st.fixed_dictionaries({"materials": some_materials}),
    "convene": st.just({"present": ["chair", "m1", "m2"]}),
    "vote": st.sampled_from([{"vote": "approve"}, {"vote": "approve"}, {"vote": "reject"}]),
    "accept": st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {
                "deficient": st.lists(
                    st.sampled_from(["credit_report", "site_photos"]),
                    min_size=1,
                    max_size=2,
                    unique=True,
                )
            }
        ),
    ),
    "return": st.fixed_dictionaries({"corrections": some_materials}),
    "reject": st.just({"reason": "不符合规划"}),
    "verify": st.fixed_dictionaries({"passed": st.booleans()}),
    "accept_commitment": st.just({"department": "yj"}),
    "urge": st.sampled_from([{"department": "zj"}, {"department": "gxj"}]),
    "terminate": st.just({"reason": "企业失联"}),
    "report_funds": st.just({"amount": "1亿"}),
    "delegate": st.sampled_from([{"agent": "daiban"}, {"agent": None}]),
}


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.county = self.make_county()
        self.created: set[str] = set()

    def make_county(self, **options: Any) -> County:
        """The county an example runs in (a subclass may give it another store)."""
        return County(settings={"commitment": {"departments": ["yj"]}}, **options)

    @rule(project=st.sampled_from(PROJECTS))
    def create(self, project: str) -> None:
        try:
            self.county.do("create", project, "guo", **PROJECT_FIELDS)
            self.created.add(project)
        except ApprovalflowError:
            assert project in self.created

    @precondition(lambda self: self.created)
    @rule(
        command=st.sampled_from(COMMANDS),
        project=st.sampled_from(PROJECTS),
        actor=st.sampled_from(ACTORS),
        args=arguments,
    )
    def command(self, command: str, project: str, actor: str, args: dict[str, Any]) -> None:
        store = self.county.engine.store
        before = store.load(project)
        snapshot = (
            (before.version, len(store.events(project)), store.timers(project)) if before else None
        )
        try:
            self.county.do(command, project, actor, **args)
        except ApprovalflowError:
            after = store.load(project)
            now = (
                (after.version, len(store.events(project)), store.timers(project))
                if after
                else None
            )
            assert now == snapshot, f"{command} by {actor} failed but changed the project"

    @precondition(lambda self: self.created)
    @rule(project=st.sampled_from(PROJECTS), data=st.data())
    def progress(self, project: str, data: st.DataObject) -> None:
        """Mostly-plausible commands, so that runs reach approval and beyond."""
        if project not in self.created:
            return
        allowed = self.county.engine.allowed_commands(project)
        if not allowed:
            return
        forward = [c for c in allowed if c not in ("withdraw", "terminate")]
        ending = data.draw(st.integers(0, 29)) == 0 or not forward
        command = data.draw(st.sampled_from(allowed if ending else forward))
        candidates = PLAUSIBLE.get(command, ACTORS)
        state = self.county.engine.project(project)
        if command == "opinion" and state.round is not None:
            silent = [f"r_{u}" for u in MEMBER_UNITS if u not in state.round.opinions]
            candidates = tuple(silent) or candidates
        elif command in ("accept", "approve", "return", "reject", "verify") and state.branches:
            candidates = tuple(f"o_{d}" for d in state.branches)
        actor = data.draw(st.sampled_from(candidates))
        args = data.draw(PLAUSIBLE_ARGS.get(command, st.just({})))
        if command == "supply" and data.draw(st.booleans()):
            outstanding = set(state.pre_review_missing - state.pre_review_supplied)
            for branch in state.branches.values():
                outstanding |= branch.outstanding | branch.corrections
            if outstanding:
                args = {"materials": sorted(outstanding)}
        with contextlib.suppress(ApprovalflowError):
            self.county.do(command, project, actor, **args)

    @rule(hours=st.integers(min_value=1, max_value=24 * 40))
    def advance(self, hours: int) -> None:
        self.county.advance(timedelta(hours=hours))

    @invariant()
    def projects_are_consistent(self) -> None:
        engine = self.county.engine
        for project in self.created:
            state = engine.project(project)
            assert state.stage in STAGES
            for branch in state.branches.values():
                assert branch.state in BRANCH_STATES
            if state.branches:
                assert state.stage not in (
                    "lead",
                    "negotiating",
                    "signed",
                ) and not state.stage.startswith(("pre_review", "decision"))
            assert ProjectState.from_events(engine.history(project)) == state
            for timer in engine.store.timers(project):
                due_day = to_local(timer.due).date() - timedelta(days=1)
                assert engine.calendar.is_working_day(due_day), timer
            assert sum(state.milestone_points.values()) == sum(
                engine.settings.points[m] for m in state.milestones
            )
        for project in self.created:
            event(f"reached {engine.project(project).top_stage}")
        total = sum(sum(engine.project(p).milestone_points.values()) for p in self.created)
        assert sum(engine.points().values()) == total


TestEngineProperties = EngineMachine.TestCase
TestEngineProperties.settings = settings(
    settings.get_profile(settings._current_profile or "default"), stateful_step_count=200
)


class LadderEngineMachine(EngineMachine):
    """The same random county with the warning ladder on: every invariant above still holds
    (card timers end working days too), and a branch's cards only climb, each step once."""

    def make_county(self, **options: Any) -> County:
        return County(
            settings={"commitment": {"departments": ["yj"]}, "ladder": {"enabled": True}},
            **options,
        )

    @invariant()
    def cards_climb_once(self) -> None:
        for project in self.created:
            state = self.county.engine.project(project)
            for branch in state.branches.values():
                issued = list(branch.cards_issued)
                assert issued == sorted(set(issued)), issued


TestLadderProperties = LadderEngineMachine.TestCase
TestLadderProperties.settings = TestEngineProperties.settings
