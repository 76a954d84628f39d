"""Stateful property tests: random actors send random commands with random arguments while the
clock jumps; after every step the engine's invariants hold."""

from __future__ import annotations

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
    "o_zj2",
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
        "to": st.sampled_from(["o_zj", "o_zj2", "o_fgw", "fuyuan", "nobody", None, ["huang"], []]),
        "until": st.sampled_from(["2026-03-06", "2027-01-04", "2025-12-31", "soon", None]),
        "note": st.sampled_from(["请关注", ""]),
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
    "transfer": (*OFFICERS, "o_zj2"),
    "entrust": (*OFFICERS, "o_zj2"),
    "copy": ("huang", "guo", *OFFICERS),
}
some_materials = st.lists(st.sampled_from(MATERIALS[:-1]), min_size=1, max_size=3)
PLAUSIBLE_ARGS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "submit_pre_review": st.fixed_dictionaries({"materials": materials}),
    # Rare outcomes sit in the middle of an integer range: hypothesis favours the ends.
    "opinion": st.integers(0, 99).flatmap(
        lambda n: (
            st.just({"verdict": "fail", "reason": "不符合产业政策"})
            if n == 37
            else st.fixed_dictionaries(
                {"verdict": st.just("supplement"), "missing": some_materials}
            )
            if n in (53, 71)
            else st.just({"verdict": "pass"})
        )
    ),
    "supply": st.fixed_dictionaries({"materials": some_materials}),
    "convene": st.just({"present": ["chair", "m1", "m2"]}),
    "vote": st.integers(0, 9).map(lambda n: {"vote": "reject" if n == 5 else "approve"}),
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
    "transfer": st.sampled_from(
        [{"to": "o_zj2", "reason": "转办"}, {"to": "o_zj", "reason": "转办"}]
    ),
    "entrust": st.sampled_from(
        [{"to": "o_zj2"}, {"to": "o_zj", "until": "2026-12-31"}, {"to": None}]
    ),
    "copy": st.sampled_from(
        [{"to": ["huang"], "note": "抄送"}, {"to": ["daiban", "m1"], "note": "抄送"}]
    ),
}


RECRUITER_COMMANDS = {
    "negotiate", "submit_pre_review", "sign", "report_funds", "start_construction",
    "start_production", "reach_target", "supply", "delegate",
}  # fmt: skip
APPLICANT_COMMANDS = {
    "submit_pre_review", "apply", "supply", "accept_commitment", "withdraw",
    "start_construction", "start_production", "delegate",
}  # fmt: skip
OFFICER_COMMANDS = {
    "accept", "return", "approve", "reject", "verify", "pause_clock", "resume_clock",
    "extend_limit",
}  # fmt: skip


def may_send(actor: str, command: str, state: ProjectState) -> bool:
    """WORKFLOW.md's role table for these actors, written out apart from the engine."""
    if actor == "guo":  # the recruiter of the projects' team
        return command in RECRUITER_COMMANDS or command == "copy"
    if actor == "fuyuan" or (actor == "daiban" and state.agent == "daiban"):
        return command in APPLICANT_COMMANDS
    if actor.startswith("r_"):
        return command == "opinion" and actor.removeprefix("r_") in MEMBER_UNITS
    if actor in ("m1", "m2") or (actor == "m4" and state.id != "P1"):
        return command == "vote"
    if actor == "chair":
        return command in ("convene", "close_meeting", "vote", "migrate_rules")
    if actor.startswith("o_"):
        return command in OFFICER_COMMANDS or command in ("transfer", "entrust", "copy")
    if actor == "huang":  # the projects' leader
        return command in ("urge", "terminate", "copy")
    return False


# Commands that end a project or undo progress: `progress` sends them only rarely.
ENDING = ("withdraw", "terminate", "reject", "migrate_rules")


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
        self._send(command, project, actor, args)

    def _send(self, command: str, project: str, actor: str, args: dict[str, Any]) -> None:
        """Send a command; a refusal must change nothing, an acceptance must be authorised by
        WORKFLOW.md's role table (checked here independently of the engine)."""
        store = self.county.engine.store
        before = store.load(project)
        snapshot = (
            (before.version, len(store.events(project)), store.timers(project)) if before else None
        )
        try:
            result = self.county.do(command, project, actor, **args)
        except ApprovalflowError:
            after = store.load(project)
            now = (
                (after.version, len(store.events(project)), store.timers(project))
                if after
                else None
            )
            assert now == snapshot, f"{command} by {actor} failed but changed the project"
            return
        assert before is not None
        assert may_send(actor, command, before), f"{actor} was allowed {command} on {project}"
        acting_for: set[str | None] = {None}
        if actor == "daiban" and command in APPLICANT_COMMANDS:
            acting_for = {"fuyuan"}
        elif actor.startswith("o_"):  # an entrusted deputy acts for the branch's handler (D30)
            acting_for |= {b.handler for b in before.branches.values() if b.deputy == actor}
        for sent in result.events:
            if sent.type.startswith("timer") or sent.by is None:
                continue  # deadlines the command met first (catch-up) are the engine's own
            assert sent.by == actor, sent
            assert sent.on_behalf_of in acting_for, sent

    @precondition(lambda self: self.created)
    @rule(project=st.sampled_from(PROJECTS), data=st.data(), steps=st.integers(1, 8))
    def progress(self, project: str, data: st.DataObject, steps: int) -> None:
        """A burst of mostly-plausible commands, so that runs reach approval and beyond."""
        if project not in self.created:
            return
        for _ in range(steps):
            if not self._progress_once(project, data):
                return

    def _progress_once(self, project: str, data: st.DataObject) -> bool:
        allowed = self.county.engine.allowed_commands(project)
        if not allowed:
            return False
        # A copy is allowed everywhere and moves nothing on: the `command` rule sends it.
        forward = [c for c in allowed if c not in (*ENDING, "copy")]
        ending = data.draw(st.integers(0, 99)) == 37 or not forward
        command = data.draw(st.sampled_from(allowed if ending else forward))
        candidates = PLAUSIBLE.get(command, ACTORS)
        state = self.county.engine.project(project)
        if command == "opinion" and state.round is not None:
            silent = [f"r_{u}" for u in MEMBER_UNITS if u not in state.round.opinions]
            candidates = tuple(silent) or candidates
        elif command in ("accept", "approve", "return", "reject", "verify") and state.branches:
            # A handled branch is acted on by its handler (D29).
            fitting = {"accept": ("pending",), "approve": ("accepted", "deficient")}.get(command)
            candidates = tuple(
                branch.handler or f"o_{dept}"
                for dept, branch in state.branches.items()
                if fitting is None or branch.state in fitting
            ) or tuple(b.handler or f"o_{d}" for d, b in state.branches.items())
        meeting = state.meeting
        if command == "close_meeting" and meeting is not None and not ending:
            voters = [m for m in meeting.present if m not in meeting.votes]
            if voters:  # a meeting closed before its members vote rejects: vote first
                command, candidates = "vote", tuple(voters)
        actor = data.draw(st.sampled_from(candidates))
        args = data.draw(PLAUSIBLE_ARGS.get(command, st.just({})))
        if command == "supply" and data.draw(st.booleans()):
            outstanding = set(state.pre_review_missing - state.pre_review_supplied)
            for branch in state.branches.values():
                outstanding |= branch.outstanding | branch.corrections
            if outstanding:
                args = {"materials": sorted(outstanding)}
        self._send(command, project, actor, args)
        return True

    @rule(hours=st.one_of(st.integers(1, 48), st.integers(min_value=1, max_value=24 * 40)))
    def advance(self, hours: int) -> None:
        self.county.advance(timedelta(hours=hours))

    @invariant()
    def projects_are_consistent(self) -> None:
        engine = self.county.engine
        for project in self.created:
            state = engine.project(project)
            assert state.stage in STAGES
            for dept, branch in state.branches.items():
                assert branch.state in BRANCH_STATES
                # Handler and deputy are officers of the branch's own department (D29, D30).
                for person in (branch.handler, branch.deputy):
                    actor = engine.actors.get(person) if person else None
                    assert person is None or (actor and actor.department == dept), person
                assert branch.deputy is None or branch.handler not in (None, branch.deputy)
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
                engine.rules_for(state).points[m] for m in state.milestones
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
