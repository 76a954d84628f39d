"""Return for correction (退回补正, rule 6).

A return stops the branch's clock and lists the corrections once. When every correction is
supplied the branch goes back where it was, with the working days that were left: those after
the day of the return up to the old deadline, counted again from the day of the supply.
"""

from __future__ import annotations

from datetime import timedelta

from approvalflow.calendar import to_local
from approvalflow.rules import arguments
from approvalflow.rules.branches import officer_branch
from approvalflow.rules.context import Context

__all__ = ["on_supply", "return_for_correction"]

_ONE_DAY = timedelta(days=1)


def return_for_correction(ctx: Context) -> None:
    branch = officer_branch(ctx)
    corrections = arguments.materials(ctx.args, "corrections", ctx.settings, non_empty=True)
    remaining = 0
    if branch.due is not None:
        # Local days on both ends: a clock in UTC must count the same days (D76).
        deadline_day = (to_local(branch.due) - _ONE_DAY).date()
        remaining = ctx.calendar.working_days_between(to_local(ctx.now).date(), deadline_day)
    ctx.move_branch(
        branch.department,
        "return",
        corrections=corrections,
        remaining_wd=remaining,
        returned_from=branch.state,
    )
    ctx.notify(
        "returned",
        (ctx.state.applicant, ctx.state.agent),
        department=branch.department,
        corrections=corrections,
    )


def on_supply(ctx: Context) -> None:
    for dept, branch in list(ctx.state.branches.items()):
        if branch.state != "returned" or branch.corrections:
            continue
        target = branch.returned_from or "pending"
        if target == "deficient" and not branch.outstanding:
            target = "accepted"
        due = ctx.resumed_deadline(branch.remaining_wd)
        ctx.move_branch(
            dept, f"resume_{target}", due=due.at.isoformat(), provisional=due.provisional
        )
