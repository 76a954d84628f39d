"""Urging (催办, rule 9): the leader presses a department, which is told."""

from __future__ import annotations

from approvalflow.rules import arguments
from approvalflow.rules.context import Context

__all__ = ["urge"]


def urge(ctx: Context) -> None:
    state = ctx.state
    if state.stage == "approval":
        dept = arguments.department(ctx.args, "department", tuple(state.branches))
        role = "officer"
    else:
        dept = arguments.department(ctx.args, "department", ctx.settings.pre_review.members)
        role = "reviewer"
    ctx.emit("urged", department=dept, stage=state.top_stage)
    ctx.notify("urge", ctx.department_actors(dept, role), department=dept, by=ctx.by)
