"""Clock pauses with reasons (issue 9): hearings, expert reviews, testing and on-site surveys
stop a branch's time limit, as the Administrative Licensing Law (art. 45) allows.

``pause_clock`` records who paused, why and until when it is expected to last; the branch is
``paused`` and its limit stops, as for a return. ``resume_clock`` takes it back to where it was
with the working days that were left, counted from the day of the resume. A deficient branch's
supply deadline keeps running: it is the applicant's promise, not the department's clock.
"""

from __future__ import annotations

from datetime import timedelta

from approvalflow.calendar import to_local
from approvalflow.rules import arguments
from approvalflow.rules.branches import officer_branch
from approvalflow.rules.context import Context

__all__ = ["PAUSE_REASONS", "pause_clock", "resume_clock"]

PAUSE_REASONS = ("hearing", "expert_review", "testing", "survey")
_ONE_DAY = timedelta(days=1)


def pause_clock(ctx: Context) -> None:
    branch = officer_branch(ctx)
    reason = arguments.choice(ctx.args, "reason", PAUSE_REASONS)
    note = arguments.text(ctx.args, "note", required=False)
    today = to_local(ctx.now).date()
    until_day = arguments.day_from(ctx.args, "until", today)
    until = until_day.isoformat() if until_day else None
    remaining = 0
    if branch.due is not None:
        # Local days on both ends: a clock in UTC must count the same days (D76).
        remaining = ctx.calendar.working_days_between(
            today, (to_local(branch.due) - _ONE_DAY).date()
        )
    ctx.move_branch(
        branch.department,
        "pause",
        remaining_wd=remaining,
        returned_from=branch.state,
        reason=reason,
        until=until,
        note=note,
    )


def resume_clock(ctx: Context) -> None:
    branch = officer_branch(ctx)
    target = branch.returned_from or "accepted"
    due = ctx.resumed_deadline(branch.remaining_wd)
    ctx.move_branch(
        branch.department, f"unpause_{target}", due=due.at.isoformat(), provisional=due.provisional
    )
