"""Statutory and promised limits, and extensions (issue 9).

A department promises ``time_limit_wd`` (承诺时限) inside the statutory limit
(``statutory_limit_wd``, 法定时限). An extension adds working days to an open branch's limit; it
needs a named authority (the department's head, or the project's leader) and a reason, and all
extensions together may add at most ``extension_wd`` (the Licensing Law's 20 + 10 days by the
agency head). The history records who extended, on whose authority, why and to when.
"""

from __future__ import annotations

from datetime import timedelta

from approvalflow.errors import InvalidCommand, InvalidTransition
from approvalflow.rules import arguments
from approvalflow.rules.branches import officer_branch
from approvalflow.rules.context import Context
from approvalflow.states import BRANCH_OPEN

__all__ = ["check_extend", "extend_limit"]

_ONE_DAY = timedelta(days=1)


def extend_limit(ctx: Context) -> None:
    branch = officer_branch(ctx)
    dept = branch.department
    days = ctx.args.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InvalidCommand(
            f"argument 'days' must be a whole number of working days, not {days!r}"
        )
    reason = arguments.text(ctx.args, "reason", required=True)
    authority_id = ctx.args.get("authority")
    authority = ctx.actors.get(authority_id) if isinstance(authority_id, str) else None
    if authority is None:
        raise InvalidCommand(f"argument 'authority' must name an actor, not {authority_id!r}")
    is_head = "head" in authority.roles and authority.department == dept
    if not is_head and authority.id != ctx.state.leader:
        raise InvalidCommand(
            f"{authority.id} may not extend {dept}'s limit: the authority must be {dept}'s head "
            f"or the project's leader {ctx.state.leader}"
        )
    allowed = ctx.settings.extension_wd - branch.extended_wd
    if days > allowed:
        raise InvalidCommand(
            f"{dept}'s limit was extended by {branch.extended_wd} wd already; at most "
            f"{ctx.settings.extension_wd} in all (this asks {days})"
        )
    assert branch.due is not None  # open branches always carry their limit
    # From the last day of the current limit, `days` more working days.
    new_due = ctx.calendar.deadline_after(branch.due - _ONE_DAY, days)
    ctx.emit(
        "limit_extended",
        department=dept,
        days=days,
        authority=authority.id,
        reason=reason,
        due=new_due.at.isoformat(),
        previous_due=branch.due.isoformat(),
    )


def check_extend(ctx: Context) -> None:
    """State check before arguments: only a branch whose clock runs can be extended."""
    branch = officer_branch(ctx)
    if branch.state not in BRANCH_OPEN:
        raise InvalidTransition(
            f"extend_limit needs branch approval.{branch.department} open "
            f"(pending, accepted or deficient), but it is {branch.state}"
        )
