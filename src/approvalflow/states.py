"""The built-in workflow's states and transitions: the single source of truth.

Two machines describe ``investment_project``: the project's stages, and one small flat machine
that every approval branch (one per department) follows. They are plain data here; ``transitions``
machines are built from them (``stage_machine()``, ``branch_machine()``), once per process and
shared by every project, never one per project. The engine's hot path looks transitions up in
tables derived from the same data (``STAGE_TABLE``, ``BRANCH_TABLE``); a test proves the tables
and the ``transitions`` machines agree.

A transition whose ``dest`` is ``None`` is internal: the command is allowed there and the stage
stays. Triggers named like commands are what users send; the others (``round_passed``...) are
outcomes that rules choose.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypedDict

from approvalflow.errors import InvalidTransition

__all__ = [
    "BRANCH_STATES",
    "BRANCH_TABLE",
    "BRANCH_TRANSITIONS",
    "STAGES",
    "STAGE_TABLE",
    "STAGE_TRANSITIONS",
    "TERMINAL",
    "branch_machine",
    "next_branch_state",
    "next_stage",
    "stage_allows",
    "stage_machine",
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
    {"trigger": "timer", "source": list(NON_TERMINAL), "dest": None},
    {"trigger": "approval_complete", "source": "approval", "dest": "approved"},
    {"trigger": "approval_rejected", "source": "approval", "dest": "rejected"},
    {"trigger": "urge", "source": ["pre_review.reviewing", "approval"], "dest": None},
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
    {"trigger": "reopen", "source": "revoked", "dest": "pending"},
    {"trigger": "pause", "source": ["accepted", "deficient"], "dest": "paused"},
    {"trigger": "unpause_accepted", "source": "paused", "dest": "accepted"},
    {"trigger": "unpause_deficient", "source": "paused", "dest": "deficient"},
)


def _table(specs: tuple[TransitionSpec, ...]) -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for spec in specs:
        sources = [spec["source"]] if isinstance(spec["source"], str) else spec["source"]
        for source in sources:
            table[(spec["trigger"], source)] = spec["dest"] or source
    return table


STAGE_TABLE: dict[tuple[str, str], str] = _table(STAGE_TRANSITIONS)
BRANCH_TABLE: dict[tuple[str, str], str] = _table(BRANCH_TRANSITIONS)


def stage_allows(trigger: str, stage: str) -> bool:
    return (trigger, stage) in STAGE_TABLE


def next_stage(stage: str, trigger: str, *, what: str | None = None) -> str:
    """The stage ``trigger`` leads to from ``stage``, or ``InvalidTransition``."""
    try:
        return STAGE_TABLE[(trigger, stage)]
    except KeyError:
        raise InvalidTransition(
            f"{what or trigger} is not allowed while the project is {stage}"
        ) from None


def next_branch_state(state: str, trigger: str, *, department: str, what: str | None = None) -> str:
    """The state ``trigger`` leads a branch to, or ``InvalidTransition`` naming the branch."""
    try:
        return BRANCH_TABLE[(trigger, state)]
    except KeyError:
        raise InvalidTransition(
            f"{what or trigger} is not allowed while branch approval.{department} is {state}"
        ) from None


def _machine(states: tuple[str, ...], specs: tuple[TransitionSpec, ...], initial: str) -> Any:
    # Imported here: `transitions` is needed to draw or cross-check the machines, not to run a
    # command, and importing it costs more than the rest of the package.
    from transitions import Machine

    return Machine(
        model=None,
        states=list(states),
        transitions=[dict(spec) for spec in specs],
        initial=initial,
        auto_transitions=False,
        send_event=True,
    )


@cache
def stage_machine() -> Any:
    """The shared ``transitions.Machine`` of the project's stages (no model attached)."""
    return _machine(STAGES, STAGE_TRANSITIONS, "lead")


@cache
def branch_machine() -> Any:
    """The shared ``transitions.Machine`` every approval branch follows."""
    return _machine(BRANCH_STATES, BRANCH_TRANSITIONS, "pending")
