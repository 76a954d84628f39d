"""Who handles a department's branch: transfer (转办) and entrustment (委托), D29 and D30.

Any officer of a department may act on its branch until a ``transfer`` names a handler
(经办人): from then on only the handler, the deputy they entrusted, or the department's head
takes the branch's officer commands (``authorization.Party.OFFICER``). The head, the handler
(or, while there is none, any officer of the department) transfers the branch to another officer
of the same department, with a reason. The handler alone entrusts a deputy of the same
department (``to: null`` ends it); the entrustment may end on a date, and ends when the branch
changes hands. The deputy acts in their own name for the handler: events record ``by`` the
deputy and ``on_behalf_of`` the handler.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from approvalflow.calendar import SHANGHAI, format_local, to_local
from approvalflow.errors import InvalidCommand, InvalidTransition
from approvalflow.model import Actor
from approvalflow.project import Branch
from approvalflow.rules import arguments
from approvalflow.rules.branches import officer_branch
from approvalflow.rules.context import Context

__all__ = ["check_handled_branch", "entrust", "has_officer_work", "transfer"]

# Branch states in which the department still has something to do.
_WORK_STATES = frozenset({"pending", "accepted", "deficient", "returned", "paused"})


def has_officer_work(branch: Branch) -> bool:
    """Whether the department still has to act on ``branch`` (decide it or verify a pledge)."""
    if branch.state in _WORK_STATES:
        return True
    return branch.state == "approved" and branch.commitment and not branch.verified


def check_handled_branch(ctx: Context) -> None:
    """State check: the actor's department has a branch, and work is left on it."""
    branch = officer_branch(ctx)
    if not has_officer_work(branch):
        raise InvalidTransition(
            f"{ctx.command} is not allowed while branch approval.{branch.department} is "
            f"{branch.state}: the department has nothing left to do on it"
        )


def transfer(ctx: Context) -> None:
    branch = officer_branch(ctx)
    dept = branch.department
    handler = _officer_of(ctx, "to", dept, ctx.args.get("to"))
    reason = arguments.text(ctx.args, "reason", required=True)
    if handler.id == branch.handler:
        raise InvalidCommand(f"{handler.id} handles approval.{dept} already")
    previous, ended = branch.handler, branch.deputy
    ctx.emit(
        "branch_transferred",
        department=dept,
        handler=handler.id,
        previous=previous,
        reason=reason,
        ended_deputy=ended,
    )
    ctx.notify(
        "transferred",
        (handler.id, previous, ended),
        department=dept,
        handler=handler.id,
        previous=previous,
        reason=reason,
        by=ctx.by,
    )


def entrust(ctx: Context) -> None:
    branch = officer_branch(ctx)
    dept = branch.department
    if "to" not in ctx.args:
        raise InvalidCommand("argument 'to' is required (an officer's actor id, or null to end)")
    reason = arguments.text(ctx.args, "reason", required=False)
    to = ctx.args["to"]
    if to is None:
        if "until" in ctx.args and ctx.args["until"] is not None:
            raise InvalidCommand("argument 'until' dates an entrustment; ending one takes none")
        if branch.deputy is None:
            raise InvalidCommand(f"approval.{dept} has no entrustment to end")
        _record(ctx, branch, None, None, reason)
        return
    deputy = _officer_of(ctx, "to", dept, to)
    if deputy.id == branch.handler:
        raise InvalidCommand(f"{deputy.id} handles approval.{dept}; entrust another officer")
    last_day = arguments.day_from(ctx.args, "until", to_local(ctx.now).date())
    # In force through the whole of its last day: it ends at 24:00.
    until = (
        datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=SHANGHAI)
        if last_day is not None
        else None
    )
    _record(ctx, branch, deputy.id, until, reason)


def _record(
    ctx: Context, branch: Branch, deputy: str | None, until: datetime | None, reason: str | None
) -> None:
    previous = branch.deputy
    ctx.emit(
        "branch_entrusted",
        department=branch.department,
        handler=branch.handler,
        deputy=deputy,
        until=until.isoformat() if until else None,
        previous=previous,
        reason=reason,
    )
    ctx.notify(
        "entrusted",
        (deputy, previous),
        department=branch.department,
        handler=branch.handler,
        deputy=deputy,
        until=format_local(until) if until else None,
    )


def _officer_of(ctx: Context, name: str, dept: str, value: object) -> Actor:
    """The actor ``value`` names, who must be an officer of ``dept``."""
    if not isinstance(value, str) or not value:
        raise InvalidCommand(f"argument {name!r} must be an officer's actor id, not {value!r}")
    actor = ctx.actors.get(value)
    if actor is None:
        raise InvalidCommand(f"argument {name!r}: {value!r} is not in the actor directory")
    if "officer" not in actor.roles:
        raise InvalidCommand(f"argument {name!r}: {value!r} is not an officer")
    if actor.department != dept:
        raise InvalidCommand(
            f"argument {name!r}: {value!r} is an officer of {actor.department}, not of {dept}; "
            "a branch stays within its department"
        )
    return actor
