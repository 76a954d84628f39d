"""Notice-and-commitment (告知承诺制, rule 8): the applicant's pledge approves a branch at once;
the officer verifies later. A failed or missed verification revokes the branch and tells the
leader; a project that has left ``approval`` keeps its stage (the leader decides)."""

from __future__ import annotations

from approvalflow.errors import InvalidCommand, InvalidTransition
from approvalflow.project import Branch
from approvalflow.rules import arguments
from approvalflow.rules.branches import complete_if_all_approved, officer_branch
from approvalflow.rules.context import Context

__all__ = [
    "accept_commitment",
    "awaiting_verification",
    "check_accept_commitment",
    "check_verify",
    "on_verify_deadline",
    "verify",
]


def check_accept_commitment(ctx: Context) -> None:
    """State check before arguments: a named branch that is not pending is InvalidTransition.

    WORKFLOW.md reports a wrong state before any argument error, so this runs as a precheck
    (before unknown arguments are refused); a missing or unknown department is left to the
    rule, which reports it as an argument error.
    """
    dept = ctx.args.get("department")
    branch = ctx.state.branches.get(dept) if isinstance(dept, str) else None
    if branch is not None and branch.state != "pending":
        raise InvalidTransition(
            f"accept_commitment needs branch approval.{dept} pending, but it is {branch.state}"
        )


def accept_commitment(ctx: Context) -> None:
    dept = arguments.department(ctx.args, "department", tuple(ctx.state.branches))
    branch = ctx.state.branches[dept]
    if branch.state != "pending":
        raise InvalidTransition(
            f"accept_commitment needs branch approval.{dept} pending, but it is {branch.state}"
        )
    if dept not in ctx.settings.commitment.departments:
        raise InvalidCommand(
            f"{dept} is not commitment-eligible here (eligible: "
            f"{', '.join(ctx.settings.commitment.departments) or 'none'})"
        )
    due = ctx.working_days_after(ctx.settings.commitment.verify_wd)
    ctx.move_branch(dept, "accept_commitment", commitment=True, verify_due=due.at.isoformat())
    complete_if_all_approved(ctx)


def awaiting_verification(branch: Branch) -> bool:
    """Whether ``branch`` was approved on a commitment that is not verified yet: what
    ``verify`` needs, its deadline watches, and the task list offers."""
    return branch.commitment and branch.state == "approved" and not branch.verified


def check_verify(ctx: Context) -> None:
    branch = officer_branch(ctx)
    if not awaiting_verification(branch):
        raise InvalidTransition(
            f"branch approval.{branch.department} of {ctx.state.id} has no commitment "
            f"awaiting verification (it is {branch.state})"
        )


def verify(ctx: Context) -> None:
    branch = officer_branch(ctx)
    passed = arguments.flag(ctx.args, "passed")
    ctx.emit("commitment_verified", department=branch.department, passed=passed)
    if not passed:
        _revoke(ctx, branch.department, "commitment_failed")


def on_verify_deadline(ctx: Context, dept: str) -> None:
    branch = ctx.state.branches.get(dept)
    if branch is None or not awaiting_verification(branch):
        return
    _revoke(ctx, dept, "commitment_unverified")


def _revoke(ctx: Context, dept: str, reason: str) -> None:
    ctx.move_branch(dept, "revoke_commitment", reason=reason)
    ctx.notify(
        "revoked",
        (ctx.state.applicant, ctx.state.leader),
        department=dept,
        reason=reason,
        materials=[],
    )
