"""Time limits (限时办结, rule 7): a branch past its limit still open is overdue, once; or, in
departments a county lists under ``deemed_approval``, its silence approves (逾期视为同意)."""

from __future__ import annotations

from approvalflow.rules.branches import complete_if_all_approved
from approvalflow.rules.context import Context
from approvalflow.states import BRANCH_OPEN

__all__ = ["on_acceptance_deadline", "on_limit"]


def on_acceptance_deadline(ctx: Context, dept: str) -> None:
    """Art. 32: no acceptance and no one-time notice in time, so the application counts as
    accepted as of the day it arrived; the branch's time limit runs on unchanged."""
    state = ctx.state
    branch = state.branches.get(dept)
    if state.stage != "approval" or branch is None or branch.state != "pending":
        return
    ctx.move_branch(dept, "deem_accepted", deemed=True, accepted_as_of=branch.opened_at.isoformat())


def on_limit(ctx: Context, dept: str) -> None:
    state = ctx.state
    branch = state.branches.get(dept)
    if state.stage != "approval" or branch is None or branch.state not in BRANCH_OPEN:
        return
    if branch.overdue_sent:
        return
    if dept in ctx.settings.deemed_approval:
        ctx.move_branch(dept, "deem_approved", deemed=True)
        complete_if_all_approved(ctx)
        return
    ctx.emit("branch_overdue", department=dept)
    ctx.notify(
        "overdue",
        (state.leader, *ctx.department_actors(dept, "officer")),
        department=dept,
        stage="approval",
    )
