"""Carbon copies (抄送), D31: a party to the project copies it, or one branch, to named actors.

The project's leader or a recruiter of its team copies the whole project or any branch; a
department's officer (the handler, once there is one) or head copies their own department's
branch. The actors copied get a ``copy`` notice with the note and are recorded on the project
or the branch; from then on they also receive that scope's outcome notices (``FOLLOWED_KINDS``).
A copy gives no authority: authorisation never reads who was copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from approvalflow.errors import InvalidCommand
from approvalflow.project import ProjectState
from approvalflow.rules import arguments
from approvalflow.rules.branches import officer_branch
from approvalflow.rules.context import Context

__all__ = ["FOLLOWED_KINDS", "check_copy", "copy", "followers"]

# What copied actors keep hearing about: decisions, the end of approval, what goes wrong
# (returns, revocations, overdue limits) and a route changed on the way (加签/减签).
# Operational notices (one-time notices, reminders, urging, a removal's request for consent)
# stay with the people who must act on them.
FOLLOWED_KINDS: frozenset[str] = frozenset(
    {
        "decision",
        "approved",
        "rejected",
        "returned",
        "revoked",
        "overdue",
        "department_added",
        "department_removed",
    }
)


def followers(state: ProjectState, kind: str, fields: Mapping[str, Any]) -> Iterable[str]:
    """Copied actors who also receive a notice of ``kind`` with ``fields``, sorted.

    The engine gives this to every ``Context`` as its ``followers``. A project's copies follow
    all its followed notices; a branch's copies follow those that name its department, and
    those that name none (the project's own outcome).
    """
    if kind not in FOLLOWED_KINDS:
        return ()
    found = set(state.copied)
    department = fields.get("department")
    for dept, branch in state.branches.items():
        if department is None or department == dept:
            found |= branch.copied
    return sorted(found)


def _copies_whole_project(ctx: Context) -> bool:
    """Whether the actor is a party to the whole project: its leader or a recruiter of its team."""
    actor = ctx.actor
    assert actor is not None
    if actor.id == ctx.state.leader:
        return True
    return actor.has_role("recruiter") and actor.serves_team(ctx.state.team)


def check_copy(ctx: Context) -> None:
    """State check: an officer or head copies their department's branch, which must exist."""
    if not _copies_whole_project(ctx):
        officer_branch(ctx)


def copy(ctx: Context) -> None:
    recipients = arguments.id_list(ctx.args, "to")
    if not recipients:
        raise InvalidCommand("argument 'to' must list at least one actor")
    unknown = [actor_id for actor_id in recipients if ctx.actors.get(actor_id) is None]
    if unknown:
        raise InvalidCommand(f"argument 'to': {', '.join(unknown)} not in the actor directory")
    note = arguments.text(ctx.args, "note", required=True)
    department = _scope(ctx)
    ctx.emit("copied", to=recipients, department=department, note=note)
    scope = {"department": department} if department else {}
    ctx.notify("copy", recipients, note=note, by=ctx.by, **scope)


def _scope(ctx: Context) -> str | None:
    """The copied branch's department, or ``None`` for the whole project."""
    assert ctx.actor is not None
    named = ctx.args.get("department")
    if _copies_whole_project(ctx):
        if named is None:
            return None
        return arguments.department(ctx.args, "department", tuple(ctx.state.branches))
    own = ctx.actor.department or ""
    if named is not None and named != own:
        raise InvalidCommand(
            f"argument 'department': {ctx.actor.id} copies {own}'s branch only, not {named!r}"
        )
    return own
