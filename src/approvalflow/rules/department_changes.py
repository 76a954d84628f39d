"""Adding and removing a department on the way (加签/减签, issue 18).

A department of the running approval stage finds that another must give its opinion (住建 needs
人防), or that a routed one is not needed. ``add_department`` opens a branch for the added
department in the running stage, on its own limit counted from now, exactly as ``apply`` opens
a routed one. ``remove_department`` closes an undecided branch as ``not_needed``: settled for
the stage's completion, never an approval by that department. On a priority project
(重点项目) the removal waits for the leader's ``consent_remove_department``.

Who may: an officer of a department with a branch in the running stage (or the stage's lead
department), authorised like any command on the officer's own branch (D29). The running stage
and its branches are read through ``running_branches`` and ``running_lead`` only.
"""

from __future__ import annotations

from approvalflow.calendar import format_local
from approvalflow.errors import AlreadyRouted, InvalidCommand, InvalidTransition
from approvalflow.project import Branch, ProjectState, RemovalRequest
from approvalflow.rules import arguments, stages
from approvalflow.rules.branches import complete_if_all_approved
from approvalflow.rules.context import Context

# The one way a branch opens, routed or added (``stages.open_branch`` once stages exist).
from approvalflow.rules.stages import open_branch

__all__ = [
    "NOT_NEEDED",
    "UNDECIDED",
    "add_department",
    "check_department_change",
    "consent_remove_department",
    "pending_removal",
    "remove_department",
    "running_branches",
    "running_lead",
]

NOT_NEEDED = "not_needed"
UNDECIDED = frozenset({"pending", "accepted", "deficient", "returned", "paused"})
"""Branch states a removal may close: the department has not decided."""


def running_branches(state: ProjectState) -> dict[str, Branch]:
    """The running approval stage's branches, by department (without stages: all of them)."""
    if not stages.staged(state):
        return state.branches
    run = stages.current_stage(state)
    return stages.stage_branches(state, run) if run is not None else {}


def running_lead(state: ProjectState) -> str | None:
    """The running stage's lead department (牵头部门), if the stage has one (none without
    stages)."""
    run = stages.current_stage(state) if stages.staged(state) else None
    return run.lead if run is not None else None


def check_department_change(ctx: Context) -> None:
    """State check: the actor's department leads the running stage or has a branch in it."""
    assert ctx.actor is not None
    dept = ctx.actor.department or ""
    state = ctx.state
    if dept and dept == running_lead(state):
        return
    branches = running_branches(state)
    branch = branches.get(dept)
    if branch is None or branch.state == NOT_NEEDED:
        why = "was removed from it" if branch is not None else "has no branch in it"
        raise InvalidTransition(
            f"{ctx.command} on {state.id} is for the lead department or a department routed "
            f"in its running approval stage; {dept} {why} "
            f"(branches: {', '.join(branches) or 'none'})"
        )


def add_department(ctx: Context) -> None:
    state = ctx.state
    dept = _department(ctx)
    if dept not in ctx.settings.time_limit_wd:
        raise InvalidCommand(
            f"argument 'department': {dept!r} is not an approving department "
            f"({', '.join(ctx.settings.time_limit_wd)})"
        )
    existing = running_branches(state).get(dept)
    if existing is not None and existing.state != NOT_NEEDED:
        hint = {
            "revoked": "; apply re-opens a revoked branch",
        }.get(existing.state, "")
        raise AlreadyRouted(
            f"approval.{dept} of {state.id} is in the running stage already "
            f"({existing.state}){hint}"
        )
    reason = arguments.text(ctx.args, "reason", required=True)
    assert reason is not None
    assert ctx.actor is not None
    ctx.emit(
        "department_added",
        department=dept,
        reason=reason,
        by_department=ctx.actor.department,
    )
    open_branch(ctx, dept)
    branch = ctx.state.branches[dept]
    ctx.notify(
        "department_added",
        (*ctx.department_actors(dept, "officer"), state.applicant, state.agent),
        department=dept,
        reason=reason,
        by=ctx.by,
        due=format_local(branch.due) if branch.due else None,
    )


def remove_department(ctx: Context) -> None:
    state = ctx.state
    dept = _department(ctx)
    branches = running_branches(state)
    branch = branches.get(dept)
    if branch is None:
        raise InvalidCommand(
            f"argument 'department': {dept!r} has no branch in {state.id}'s running stage "
            f"({', '.join(branches) or 'none'})"
        )
    if branch.state not in UNDECIDED:
        raise InvalidTransition(
            f"approval.{dept} of {state.id} is {branch.state}: only a branch the department "
            "has not decided is closed as not needed"
        )
    if any(r.department == dept for r in state.removal_requests):
        raise InvalidTransition(
            f"the removal of {dept} from {state.id} waits for the leader {state.leader}'s "
            "consent already"
        )
    _not_the_last(state, dept)
    reason = arguments.text(ctx.args, "reason", required=True)
    assert reason is not None
    assert ctx.actor is not None
    if state.priority:
        ctx.emit(
            "department_removal_requested",
            department=dept,
            reason=reason,
            by=ctx.by,
            by_department=ctx.actor.department,
        )
        ctx.notify(
            "removal_consent",
            (state.leader,),
            department=dept,
            reason=reason,
            by=ctx.by,
        )
        return
    _close(ctx, dept, reason, ctx.actor.department, consented_by=None)


def consent_remove_department(ctx: Context) -> None:
    state = ctx.state
    dept = _department(ctx)
    request = next((r for r in state.removal_requests if r.department == dept), None)
    if request is None:
        waiting = ", ".join(r.department for r in state.removal_requests) or "none"
        raise InvalidTransition(
            f"no removal of {dept} from {state.id} waits for consent (waiting: {waiting})"
        )
    consent = arguments.flag(ctx.args, "consent")
    if consent:
        _not_the_last(state, dept)
    reason = arguments.text(ctx.args, "reason", required=not consent)
    ctx.emit("department_removal_answered", department=dept, consent=consent, reason=reason)
    if consent:
        _close(ctx, dept, request.reason, request.by_department, consented_by=ctx.by)
        return
    ctx.notify(
        "removal_declined",
        (request.by,),
        department=dept,
        reason=reason,
        by=ctx.by,
    )


def pending_removal(state: ProjectState, department: str) -> RemovalRequest | None:
    """The removal of ``department`` waiting for the leader's consent, if any."""
    return next((r for r in state.removal_requests if r.department == department), None)


def _close(
    ctx: Context, dept: str, reason: str, by_department: str | None, consented_by: str | None
) -> None:
    branch = ctx.state.branches[dept]
    handler = branch.handler
    ctx.move_branch(
        dept,
        "remove",
        reason=reason,
        by_department=by_department,
        **({"consented_by": consented_by} if consented_by else {}),
    )
    ctx.notify(
        "department_removed",
        (*ctx.department_actors(dept, "officer"), handler, ctx.state.applicant, ctx.state.agent),
        department=dept,
        reason=reason,
        by=ctx.by,
    )
    complete_if_all_approved(ctx)


def _not_the_last(state: ProjectState, dept: str) -> None:
    """Refuse to close the last branch of the stage that is not ``not_needed`` (D150)."""
    if all(other.state == NOT_NEEDED for d, other in running_branches(state).items() if d != dept):
        raise InvalidTransition(
            f"{dept} is the last department of {state.id}'s running stage: removing it would "
            "complete the stage with no department having decided (reject, withdraw or "
            "terminate instead)"
        )


def _department(ctx: Context) -> str:
    value = ctx.args.get("department")
    if not isinstance(value, str) or not value.strip():
        raise InvalidCommand("argument 'department' is required (a department id)")
    return value
