"""The built-in workflow's states and transitions, and the machines that interpret them.

Two machines describe ``investment_project``: the project's stages, and one small flat machine
that every approval branch (one per department) follows. The definition is plain data here
(``STAGE_TRANSITIONS``, ``BRANCH_TRANSITIONS``); ``build_machines`` hands it to ``transitions``
and refuses a definition that is wrong (``WorkflowDefinitionError``: a source or destination that
is no state, a state nothing leads to, a trigger with two destinations from one state). That
happens once per workflow definition (``investment_project()`` is built on first use and shared
by every project and engine), never once per project. The hot path looks a move up in a table
compiled from the built machine, so what the engine allows is what ``transitions`` was given.

A transition whose ``dest`` is ``None`` is internal: the command is allowed there and the stage
stays. Triggers named like commands are what users send; the others (``round_passed``...) are
outcomes that rules choose.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, TypedDict

import attrs

from approvalflow.errors import InvalidTransition, WorkflowDefinitionError

__all__ = [
    "BRANCH_OPEN",
    "BRANCH_STATES",
    "BRANCH_TRANSITIONS",
    "RATING_STAGES",
    "STAGES",
    "STAGE_TRANSITIONS",
    "TERMINAL",
    "StateMachine",
    "WorkflowMachines",
    "build_machines",
    "investment_project",
    "next_branch_state",
    "next_stage",
    "stage_allows",
]

WORKFLOW_NAME = "investment_project"

STAGES: tuple[str, ...] = (
    "lead",
    "negotiating",
    "pre_review.reviewing",
    "pre_review.awaiting_materials",
    "decision.pending",
    "decision.meeting",
    "decision.approved",
    "signed",
    "approval",
    "approved",
    "construction",
    "production",
    "effective",
    "rejected",
    "withdrawn",
    "terminated",
)
TERMINAL: frozenset[str] = frozenset({"effective", "rejected", "withdrawn", "terminated"})
NON_TERMINAL: tuple[str, ...] = tuple(stage for stage in STAGES if stage not in TERMINAL)
# "signed and later" for report_funds: funds keep arriving after the target is reached.
FUNDED_STAGES: tuple[str, ...] = ("signed", "approval", "approved", "construction", "production")
# 好差评: a decided branch or the finished stage is rated, and its rectification followed up,
# from approval on, whatever became of the project since (D154).
RATING_STAGES: tuple[str, ...] = (
    "approval",
    "approved",
    "construction",
    "production",
    "effective",
    "rejected",
    "withdrawn",
    "terminated",
)


class TransitionSpec(TypedDict):
    trigger: str
    source: str | list[str]
    dest: str | None


STAGE_TRANSITIONS: tuple[TransitionSpec, ...] = (
    {"trigger": "negotiate", "source": "lead", "dest": "negotiating"},
    {"trigger": "submit_pre_review", "source": "negotiating", "dest": "pre_review.reviewing"},
    {"trigger": "opinion", "source": "pre_review.reviewing", "dest": None},
    {"trigger": "round_passed", "source": "pre_review.reviewing", "dest": "decision.pending"},
    {
        "trigger": "round_supplement",
        "source": "pre_review.reviewing",
        "dest": "pre_review.awaiting_materials",
    },
    {"trigger": "round_failed", "source": "pre_review.reviewing", "dest": "rejected"},
    {"trigger": "supply", "source": ["pre_review.awaiting_materials", "approval"], "dest": None},
    {
        "trigger": "materials_complete",
        "source": "pre_review.awaiting_materials",
        "dest": "pre_review.reviewing",
    },
    {"trigger": "convene", "source": "decision.pending", "dest": "decision.meeting"},
    {"trigger": "vote", "source": "decision.meeting", "dest": None},
    {"trigger": "close_meeting", "source": "decision.meeting", "dest": None},
    {"trigger": "meeting_approved", "source": "decision.meeting", "dest": "decision.approved"},
    {"trigger": "meeting_rejected", "source": "decision.meeting", "dest": "rejected"},
    {"trigger": "meeting_no_quorum", "source": "decision.meeting", "dest": "decision.pending"},
    {"trigger": "sign", "source": "decision.approved", "dest": "signed"},
    {"trigger": "apply", "source": "signed", "dest": "approval"},
    {"trigger": "apply", "source": "approval", "dest": None},
    {"trigger": "accept", "source": "approval", "dest": None},
    {"trigger": "return", "source": "approval", "dest": None},
    {"trigger": "approve", "source": "approval", "dest": None},
    {"trigger": "reject", "source": "approval", "dest": None},
    {"trigger": "pause_clock", "source": "approval", "dest": None},
    {"trigger": "extend_limit", "source": "approval", "dest": None},
    {"trigger": "resume_clock", "source": "approval", "dest": None},
    # A commitment is checked after the project may have moved on (rule 8).
    {"trigger": "verify", "source": ["approval", *FUNDED_STAGES[2:]], "dest": None},
    {"trigger": "accept_commitment", "source": "approval", "dest": None},
    # Who handles a branch matters while the department still has work on it (a pledge to
    # verify included), so also after the project left approval.
    {"trigger": "transfer", "source": ["approval", *FUNDED_STAGES[2:]], "dest": None},
    {"trigger": "entrust", "source": ["approval", *FUNDED_STAGES[2:]], "dest": None},
    {"trigger": "copy", "source": list(NON_TERMINAL), "dest": None},
    {"trigger": "rate", "source": list(RATING_STAGES), "dest": None},
    {"trigger": "rectify", "source": list(RATING_STAGES), "dest": None},
    {"trigger": "confirm_rectification", "source": list(RATING_STAGES), "dest": None},
    {"trigger": "timer", "source": list(NON_TERMINAL), "dest": None},
    {"trigger": "issue_stage_result", "source": "approval", "dest": None},
    {"trigger": "approval_complete", "source": "approval", "dest": "approved"},
    {"trigger": "approval_rejected", "source": "approval", "dest": "rejected"},
    {"trigger": "urge", "source": ["pre_review.reviewing", "approval"], "dest": None},
    # 加签/减签: a department added to or closed in the running approval stage.
    {"trigger": "add_department", "source": "approval", "dest": None},
    {"trigger": "remove_department", "source": "approval", "dest": None},
    {"trigger": "consent_remove_department", "source": "approval", "dest": None},
    {"trigger": "report_funds", "source": list(FUNDED_STAGES), "dest": None},
    {"trigger": "start_construction", "source": "approved", "dest": "construction"},
    {"trigger": "start_production", "source": "construction", "dest": "production"},
    {"trigger": "reach_target", "source": "production", "dest": "effective"},
    {"trigger": "delegate", "source": list(NON_TERMINAL), "dest": None},
    {"trigger": "migrate_rules", "source": list(NON_TERMINAL), "dest": None},
    {"trigger": "withdraw", "source": list(NON_TERMINAL), "dest": "withdrawn"},
    {"trigger": "terminate", "source": list(NON_TERMINAL), "dest": "terminated"},
)

BRANCH_STATES: tuple[str, ...] = (
    "pending",
    "accepted",
    "deficient",
    "returned",
    "approved",
    "conditional",
    "rejected",
    "revoked",
    "paused",
    "not_needed",
)
# Branch states whose time limit runs (a returned branch's clock is stopped).
BRANCH_OPEN: frozenset[str] = frozenset({"pending", "accepted", "deficient"})

BRANCH_TRANSITIONS: tuple[TransitionSpec, ...] = (
    {"trigger": "accept", "source": "pending", "dest": "accepted"},
    {"trigger": "accept_deficient", "source": "pending", "dest": "deficient"},
    {"trigger": "deem_accepted", "source": "pending", "dest": "accepted"},
    {"trigger": "return", "source": ["pending", "accepted", "deficient"], "dest": "returned"},
    {"trigger": "resume_pending", "source": "returned", "dest": "pending"},
    {"trigger": "resume_accepted", "source": "returned", "dest": "accepted"},
    {"trigger": "resume_deficient", "source": "returned", "dest": "deficient"},
    {"trigger": "approve", "source": "accepted", "dest": "approved"},
    {"trigger": "approve", "source": "deficient", "dest": "conditional"},
    {"trigger": "deem_approved", "source": ["pending", "accepted"], "dest": "approved"},
    {"trigger": "deem_approved", "source": "deficient", "dest": "conditional"},
    {
        "trigger": "reject",
        "source": ["pending", "accepted", "deficient", "returned", "paused"],
        "dest": "rejected",
    },
    {"trigger": "accept_commitment", "source": "pending", "dest": "approved"},
    {"trigger": "verify", "source": "approved", "dest": None},
    {"trigger": "materials_complete", "source": "deficient", "dest": "accepted"},
    {"trigger": "materials_complete", "source": "conditional", "dest": "approved"},
    {
        "trigger": "revoke",
        "source": ["deficient", "conditional", "returned", "paused"],
        "dest": "revoked",
    },
    {"trigger": "revoke_commitment", "source": "approved", "dest": "revoked"},
    {"trigger": "reopen", "source": ["revoked", "not_needed"], "dest": "pending"},
    {"trigger": "pause", "source": ["accepted", "deficient"], "dest": "paused"},
    {"trigger": "unpause_accepted", "source": "paused", "dest": "accepted"},
    {"trigger": "unpause_deficient", "source": "paused", "dest": "deficient"},
    # 减签: a department found not to be needed, closed before it decided.
    {
        "trigger": "remove",
        "source": ["pending", "accepted", "deficient", "returned", "paused"],
        "dest": "not_needed",
    },
)


def _sources(spec: TransitionSpec) -> list[str]:
    return [spec["source"]] if isinstance(spec["source"], str) else list(spec["source"])


@attrs.frozen(eq=False)
class StateMachine:
    """One validated machine of a workflow definition, with the lookup table compiled from it.

    ``machine`` is the ``transitions.Machine`` (no model attached: projects keep their own state,
    so one machine serves them all); ``transitions`` is the definition it was built from, which
    ``approvalflow.diagram`` draws.
    """

    name: str
    states: tuple[str, ...]
    initial: str
    transitions: tuple[TransitionSpec, ...]
    machine: Any = attrs.field(repr=False)
    _table: dict[tuple[str, str], str] = attrs.field(repr=False)

    def next(self, state: str, trigger: str) -> str | None:
        """Where ``trigger`` leads from ``state`` (``state`` itself for an internal transition),
        or ``None`` when the machine has no such transition."""
        return self._table.get((trigger, state))

    def allows(self, state: str, trigger: str) -> bool:
        """Whether the machine has a transition of ``trigger`` from ``state``."""
        return (trigger, state) in self._table

    def triggers(self, state: str) -> list[str]:
        """The triggers the machine accepts in ``state``."""
        found: list[str] = self.machine.get_triggers(state)
        return found

    def leaving(self, state: str) -> list[tuple[str, str]]:
        """``(trigger, destination)`` of every transition that leaves ``state`` for another."""
        return sorted(
            (trigger, dest)
            for (trigger, source), dest in self._table.items()
            if source == state and dest != state
        )

    def sources(self, trigger: str) -> list[str]:
        """The states where ``trigger`` is accepted, in the order the states are listed."""
        return [state for state in self.states if (trigger, state) in self._table]


@attrs.frozen(eq=False)
class WorkflowMachines:
    """A workflow definition's two machines: the project's stages and the approval branch."""

    name: str
    stages: StateMachine
    branch: StateMachine

    def next_stage(self, stage: str, trigger: str, *, what: str | None = None) -> str:
        """The stage ``trigger`` leads to from ``stage``, or ``InvalidTransition``."""
        target = self.stages.next(stage, trigger)
        if target is None:
            raise InvalidTransition(
                f"{what or trigger} is not allowed while the project is {stage}"
            )
        return target

    def next_branch_state(
        self, state: str, trigger: str, *, department: str, what: str | None = None
    ) -> str:
        """The state ``trigger`` leads a branch to, or ``InvalidTransition`` naming the branch."""
        target = self.branch.next(state, trigger)
        if target is None:
            raise InvalidTransition(
                f"{what or trigger} is not allowed while branch approval.{department} is {state}"
            )
        return target


def build_machine(
    name: str, states: Sequence[str], transitions: Iterable[TransitionSpec], initial: str
) -> StateMachine:
    """Build one machine with ``transitions`` and check it, or ``WorkflowDefinitionError``.

    Refused: an initial state, source or destination that is not among ``states``; a state that
    no transition reaches from ``initial``; a trigger with more than one transition from one
    state (which one fires would depend on the order the definition lists them).
    """
    # Imported when the first machine is built, not with the package: `import approvalflow`
    # stays fast for hosts that only read the docs' names or open a store.
    from transitions import Machine

    specs = tuple(transitions)
    known = tuple(states)
    if initial not in known:
        raise WorkflowDefinitionError(f"{name}: the initial state {initial!r} is not a state")
    for spec in specs:
        for source in _sources(spec):
            if source not in known:
                raise WorkflowDefinitionError(
                    f"{name}: {spec['trigger']!r} leaves {source!r}, which is not a state"
                )
        dest = spec["dest"]
        if dest is not None and dest not in known:
            raise WorkflowDefinitionError(
                f"{name}: {spec['trigger']!r} leads to {dest!r}, which is not a state"
            )
    machine = Machine(
        model=None,
        states=list(known),
        transitions=[dict(spec) for spec in specs],
        initial=initial,
        auto_transitions=False,
        send_event=True,
    )
    table: dict[tuple[str, str], str] = {}
    for trigger, event in machine.events.items():
        for source, candidates in event.transitions.items():
            if len(candidates) > 1:
                dests = ", ".join(repr(t.dest or source) for t in candidates)
                raise WorkflowDefinitionError(
                    f"{name}: {trigger!r} from {source!r} is ambiguous: it leads to {dests}"
                )
            table[(trigger, source)] = candidates[0].dest or source
    reached = {initial}
    frontier = [initial]
    while frontier:
        here = frontier.pop()
        for (_, source), dest in table.items():
            if source == here and dest not in reached:
                reached.add(dest)
                frontier.append(dest)
    unreachable = [state for state in known if state not in reached]
    if unreachable:
        raise WorkflowDefinitionError(
            f"{name}: no transition leads from {initial!r} to {', '.join(unreachable)}"
        )
    return StateMachine(name, known, initial, specs, machine, table)


def build_machines(
    name: str,
    *,
    stages: Sequence[str],
    stage_transitions: Iterable[TransitionSpec],
    initial_stage: str,
    branch_states: Sequence[str],
    branch_transitions: Iterable[TransitionSpec],
    initial_branch_state: str,
) -> WorkflowMachines:
    """A workflow definition's machines, built and checked (``WorkflowDefinitionError``)."""
    return WorkflowMachines(
        name,
        build_machine(f"{name} stages", stages, stage_transitions, initial_stage),
        build_machine(f"{name} branch", branch_states, branch_transitions, initial_branch_state),
    )


@cache
def investment_project() -> WorkflowMachines:
    """The built-in workflow's machines, built on first use and shared by every engine."""
    return build_machines(
        WORKFLOW_NAME,
        stages=STAGES,
        stage_transitions=STAGE_TRANSITIONS,
        initial_stage="lead",
        branch_states=BRANCH_STATES,
        branch_transitions=BRANCH_TRANSITIONS,
        initial_branch_state="pending",
    )


def stage_allows(trigger: str, stage: str) -> bool:
    return investment_project().stages.allows(stage, trigger)


def next_stage(stage: str, trigger: str, *, what: str | None = None) -> str:
    """The stage ``trigger`` leads to from ``stage`` in the built-in workflow."""
    return investment_project().next_stage(stage, trigger, what=what)


def next_branch_state(state: str, trigger: str, *, department: str, what: str | None = None) -> str:
    """The state ``trigger`` leads a built-in branch to, or ``InvalidTransition``."""
    return investment_project().next_branch_state(state, trigger, department=department, what=what)
