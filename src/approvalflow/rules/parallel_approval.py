"""Parallel approval (并联审批, rule 4): one branch per department, each on its own clock.

``apply`` opens the branches the routing rule picks; branches move independently and in any
order; the stage ends ``approved`` when every branch is approved, ``rejected`` on any rejection.
"""

from __future__ import annotations

from approvalflow.errors import InvalidCommand, InvalidTransition
from approvalflow.project import ProjectState
from approvalflow.rules import arguments, fault_tolerant, stages
from approvalflow.rules.branches import complete_if_all_approved, officer_branch
from approvalflow.rules.context import Context
from approvalflow.rules.lifecycle import reject_project
from approvalflow.settings import Settings

__all__ = [
    "accept",
    "apply",
    "apply_refusal",
    "approve",
    "check_apply",
    "default_route",
    "reject",
]


def default_route(state: ProjectState, settings: Settings) -> tuple[str, ...]:
    """Built-in routing: every department of ``routing.departments``."""
    return settings.routing.departments


def apply_refusal(state: ProjectState) -> str | None:
    """Why ``apply`` is refused in ``state``'s stage (during approval it only re-opens revoked
    branches), or ``None``: ``check_apply`` refuses with this text, and the task list offers
    ``apply`` in approval only when it is ``None``."""
    if state.stage == "approval" and not any(b.state == "revoked" for b in state.branches.values()):
        return f"apply during approval re-opens revoked branches, and {state.id} has none"
    return None


def check_apply(ctx: Context) -> None:
    refusal = apply_refusal(ctx.state)
    if refusal is not None:
        raise InvalidTransition(refusal)


def apply(ctx: Context) -> None:
    state = ctx.state
    requested = arguments.id_list(ctx.args, "departments", required=False)
    for dept in requested:
        if dept not in ctx.settings.time_limit_wd:
            raise InvalidCommand(
                f"departments: {dept!r} is not an approving department "
                f"({', '.join(ctx.settings.time_limit_wd)})"
            )
    if state.stage == "approval":
        revoked = [d for d, b in state.branches.items() if b.state == "revoked"]
        not_revoked = [d for d in requested if d not in revoked]
        if not_revoked:
            raise InvalidCommand(
                f"departments: {', '.join(not_revoked)} not revoked; apply during approval "
                f"re-opens only revoked branches ({', '.join(revoked)})"
            )
        for dept in requested or revoked:
            _open_branch(ctx, dept)
        return
    if "departments" in ctx.args and not requested:
        raise InvalidCommand("departments must name at least one department")
    route = ctx.route or default_route
    departments = requested or route(state, ctx.settings)
    if not departments:
        raise InvalidCommand(f"the routing rule picked no department for {state.id}")
    ctx.move("apply")
    if ctx.settings.approval.stages:
        stages.start(ctx, tuple(departments))
        return
    for dept in departments:
        _open_branch(ctx, dept)


_open_branch = stages.open_branch


def accept(ctx: Context) -> None:
    branch = officer_branch(ctx)
    deficient = arguments.materials(ctx.args, "deficient", ctx.settings, non_empty=False)
    if deficient:
        fault_tolerant.accept_deficient(ctx, branch, deficient)
    else:
        ctx.move_branch(branch.department, "accept")


def approve(ctx: Context) -> None:
    branch = officer_branch(ctx)
    ctx.move_branch(branch.department, "approve")
    complete_if_all_approved(ctx)


def reject(ctx: Context) -> None:
    branch = officer_branch(ctx)
    reason = arguments.text(ctx.args, "reason", required=True)
    ctx.move_branch(branch.department, "reject", reason=reason)
    reject_project(ctx, "approval_rejected", [f"{branch.department}: {reason}"])
