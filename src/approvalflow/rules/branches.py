"""What every mechanism does with approval branches: find the officer's, check a command fits
its state, and close the approval stage once every branch is approved.

Mechanisms import this module and never each other for these, so ``rules/`` stays acyclic.
"""

from __future__ import annotations

from approvalflow.errors import InvalidTransition
from approvalflow.project import Branch
from approvalflow.rules import stages
from approvalflow.rules.context import Context
from approvalflow.states import StateMachine

__all__ = ["branch_allows", "check_branch", "complete_if_all_approved", "officer_branch"]

# The branch trigger a command fires where it differs from the command's name.
_SETTLED = frozenset({"approved", "not_needed"})
_COMMAND_TRIGGERS = {"pause_clock": "pause", "resume_clock": "unpause_accepted"}


def officer_branch(ctx: Context) -> Branch:
    """The branch of the acting officer's department, or ``InvalidTransition``."""
    assert ctx.actor is not None
    dept = ctx.actor.department or ""
    branch = ctx.state.branches.get(dept)
    if branch is None:
        raise InvalidTransition(
            f"{ctx.state.id} has no approval branch for department {dept} "
            f"(branches: {', '.join(ctx.state.branches) or 'none'})"
        )
    return branch


def branch_allows(machine: StateMachine, branch_state: str, command: str) -> bool:
    """Whether ``command`` fits a branch in ``branch_state``: what ``check_branch`` asks, and
    what the task list asks before it offers an officer's command."""
    return machine.allows(branch_state, _COMMAND_TRIGGERS.get(command, command))


def check_branch(ctx: Context) -> None:
    """State check for officer commands: the branch exists and the command fits its state."""
    branch = officer_branch(ctx)
    if not branch_allows(ctx.machines.branch, branch.state, ctx.command):
        raise InvalidTransition(
            f"{ctx.command} is not allowed while branch approval.{branch.department} is "
            f"{branch.state}"
        )


def complete_if_all_approved(ctx: Context) -> None:
    """Move the project to ``approved`` once every branch is approved (rule 4), or closed as
    not needed."""
    state = ctx.state
    if state.stage != "approval" or not state.branches:
        return
    if stages.staged(state):
        # Under stages the running stage's lead department issues the result (统一出件).
        stages.on_branches_decided(ctx)
        return
    # A branch closed as not needed (减签) is settled, but approves nothing: at least one
    # department must have approved (D149).
    settled = all(branch.state in _SETTLED for branch in state.branches.values())
    if settled and any(branch.state == "approved" for branch in state.branches.values()):
        ctx.move("approval_complete")
        ctx.milestone("approval_complete")
        ctx.notify("approved", (state.applicant, state.recruiter, state.leader))
