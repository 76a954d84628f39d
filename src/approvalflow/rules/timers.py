"""Timers are derived from state, never bookkept by hand.

``timers_for(state)`` says which deadlines a project is waiting on now; the engine stores the
difference after every command, so a timer can never outlive the condition that set it. Firing
one runs the rule that owns that deadline; each rule re-checks its condition first, so a stale
timer does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from approvalflow.calendar import WorkingCalendar
from approvalflow.project import ProjectState
from approvalflow.rules import (
    commitment,
    fault_tolerant,
    ladder,
    pre_review,
    ratings,
    stages,
    time_limits,
)
from approvalflow.rules.context import Context
from approvalflow.states import BRANCH_OPEN, TERMINAL

__all__ = ["TIMER_KINDS", "fire", "timers_for"]

TimerKey = tuple[str, str]  # (kind, branch)

PRE_REVIEW_DEADLINE = "pre_review_deadline"
BRANCH_LIMIT = "branch_limit"
SUPPLY_REMINDER = "supply_reminder"
SUPPLY_DEADLINE = "supply_deadline"
VERIFY_DEADLINE = "verify_deadline"
ACCEPTANCE_DEADLINE = "acceptance_deadline"
# Warning ladder cards, per branch and per silent pre-review unit. Timers due at the same
# instant fire in (kind, branch) order, and these names sort after the limit each follows
# ("branch_limit" < "ladder", "pre_review_deadline" < "pre_review_ladder"): at the deadline the
# limit's own rule (overdue, deemed approval, deemed pass) runs before a card due then.
LADDER = "ladder"
PRE_REVIEW_LADDER = "pre_review_ladder"
# A bad rating's rectification (好差评整改), by item: its deadline, the warning before it and its
# cards ("rectification_due" < "rectification_ladder": the overdue notice before a card due then).
RECTIFICATION_DUE = "rectification_due"
RECTIFICATION_WARNING = "rectification_warning"
RECTIFICATION_LADDER = "rectification_ladder"
TIMER_KINDS = (
    PRE_REVIEW_DEADLINE,
    BRANCH_LIMIT,
    SUPPLY_REMINDER,
    SUPPLY_DEADLINE,
    VERIFY_DEADLINE,
    ACCEPTANCE_DEADLINE,
    LADDER,
    PRE_REVIEW_LADDER,
    stages.STAGE_LIMIT,
    stages.STAGE_LIMIT_CARD,
    stages.TOTAL_LIMIT,
    stages.TOTAL_LIMIT_CARD,
    RECTIFICATION_DUE,
    RECTIFICATION_WARNING,
    RECTIFICATION_LADDER,
)


def timers_for(state: ProjectState, calendar: WorkingCalendar) -> dict[TimerKey, datetime]:
    """Every deadline ``state`` waits on, by (kind, branch); ``calendar`` places ladder cards."""
    timers: dict[TimerKey, datetime] = {}
    if state.ratings:
        # A rectification is the department's, whatever became of the project (D154).
        _rectification_timers(state, calendar, timers)
    if state.stage in TERMINAL:
        return timers
    round_ = state.round
    if state.stage == "pre_review.reviewing" and round_:
        if not round_.overdue_sent:
            timers[(PRE_REVIEW_DEADLINE, "")] = round_.due
        for unit in round_.ladders:
            card = ladder.unit_card_due(round_, unit, calendar)
            if card is not None:
                timers[(PRE_REVIEW_LADDER, unit)] = card
    in_approval = state.stage == "approval"
    for dept, branch in state.branches.items():
        if in_approval and branch.state in BRANCH_OPEN and not branch.overdue_sent and branch.due:
            timers[(BRANCH_LIMIT, dept)] = branch.due
        if in_approval and branch.ladder:
            card = ladder.branch_card_due(branch, calendar)
            if card is not None:
                timers[(LADDER, dept)] = card
        if in_approval and branch.state == "pending" and branch.accept_due:
            timers[(ACCEPTANCE_DEADLINE, dept)] = branch.accept_due
        if branch.outstanding and branch.state in fault_tolerant.SUPPLY_STATES:
            if branch.supply_due:
                timers[(SUPPLY_DEADLINE, dept)] = branch.supply_due
            if branch.reminder_due and not branch.reminder_sent:
                timers[(SUPPLY_REMINDER, dept)] = branch.reminder_due
        awaiting_verification = branch.commitment and not branch.verified
        if awaiting_verification and branch.state == "approved" and branch.verify_due:
            timers[(VERIFY_DEADLINE, dept)] = branch.verify_due
    if state.stage_plan:
        timers.update(stages.timers(state, calendar))
    return timers


def _rectification_timers(
    state: ProjectState, calendar: WorkingCalendar, timers: dict[TimerKey, datetime]
) -> None:
    for item, rating in state.ratings.items():
        if rating.rectification != "open" or rating.due is None:
            continue
        if not rating.overdue_sent:
            timers[(RECTIFICATION_DUE, item)] = rating.due
        if rating.warning_due is not None and not rating.warning_sent:
            timers[(RECTIFICATION_WARNING, item)] = rating.warning_due
        card = ladder.rating_card_due(rating, calendar)
        if card is not None:
            timers[(RECTIFICATION_LADDER, item)] = card


_FIRE: dict[str, Callable[[Context, str], None]] = {
    PRE_REVIEW_DEADLINE: lambda ctx, _branch: pre_review.on_deadline(ctx),
    BRANCH_LIMIT: time_limits.on_limit,
    SUPPLY_REMINDER: fault_tolerant.on_reminder,
    SUPPLY_DEADLINE: fault_tolerant.on_supply_deadline,
    VERIFY_DEADLINE: commitment.on_verify_deadline,
    ACCEPTANCE_DEADLINE: time_limits.on_acceptance_deadline,
    LADDER: ladder.on_branch_card,
    PRE_REVIEW_LADDER: ladder.on_unit_card,
    stages.STAGE_LIMIT: stages.on_stage_limit,
    stages.STAGE_LIMIT_CARD: stages.on_stage_card,
    stages.TOTAL_LIMIT: stages.on_total_limit,
    stages.TOTAL_LIMIT_CARD: stages.on_total_card,
    RECTIFICATION_DUE: ratings.on_rectification_due,
    RECTIFICATION_WARNING: ratings.on_rectification_warning,
    RECTIFICATION_LADDER: ladder.on_rating_card,
}


def fire(ctx: Context, kind: str, branch: str) -> None:
    """Run the rule that owns a due timer of ``kind``."""
    handler = _FIRE.get(kind)
    if handler is None:
        raise ValueError(f"unknown timer kind {kind!r}")
    handler(ctx, branch)
