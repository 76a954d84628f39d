"""The warning ladder (预警 / 黄牌 / 红牌): cards shown as an open item nears and passes its
deadline.

A ladder is county data: ordered steps of (card, working days from the deadline, recipients),
fixed in the event that opens a pre-review round or an approval branch, as its deadline is. Cards
are timers derived from state like every deadline: the next step not issued yet falls at 24:00 of
a working day counted from the item's *current* deadline, so an extension or a resume moves the
steps still to come, and a paused or returned branch's cards wait with its clock. Each issued
step is an event (``card_issued``), so it is sent once and a replay gives the same state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, time, timedelta
from itertools import takewhile

from approvalflow.calendar import SHANGHAI, WorkingCalendar, format_local, to_local
from approvalflow.project import Branch, PreReviewRound, Rating
from approvalflow.rules.context import Context, LadderFunction
from approvalflow.settings import LADDER_CARDS, LadderStep
from approvalflow.states import BRANCH_OPEN

__all__ = [
    "CARD_NOTICES",
    "LadderFunction",
    "branch_card_due",
    "card_recipients",
    "fallen_due",
    "issue_card",
    "next_card_at",
    "on_branch_card",
    "on_rating_card",
    "on_unit_card",
    "pending_steps",
    "rating_card_due",
    "schedule",
    "step_time",
    "unit_card_due",
]

# The notice kind each card is sent as.
CARD_NOTICES: dict[str, str] = {card.name: card.notice for card in LADDER_CARDS}

_ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0)


def step_time(calendar: WorkingCalendar, due: datetime, offset_wd: int) -> datetime:
    """When a step ``offset_wd`` working days from the deadline ``due`` falls: 24:00 of a working
    day (the deadline's own day for 0), so never on a day off.

    Plain day arithmetic, with no strictness: a card is a reminder, not a legal deadline, and
    one that falls in a year without official holiday data must not refuse the command that
    opened the branch.
    """
    day = to_local(due).date() - _ONE_DAY  # the deadline's last day
    if offset_wd > 0:
        day = calendar.subtract_working_days(day, offset_wd)
    elif offset_wd < 0:
        day = calendar.add_working_days(day, -offset_wd)
    return datetime.combine(day + _ONE_DAY, _MIDNIGHT, tzinfo=SHANGHAI)


def schedule(
    calendar: WorkingCalendar, due: datetime, steps: Sequence[LadderStep], since: datetime
) -> list[tuple[int, LadderStep, datetime]]:
    """Each step with its time, in order, leaving out those already behind at ``since`` (when
    the deadline was set): a branch opened with 1 wd left gets no "2 wd left" warning."""
    timed = [(i, step, step_time(calendar, due, step.offset_wd)) for i, step in enumerate(steps)]
    return [(i, step, at) for i, step, at in timed if at > since]


def pending_steps(
    calendar: WorkingCalendar,
    due: datetime,
    steps: Sequence[LadderStep],
    issued: Sequence[int],
    since: datetime,
) -> Iterator[tuple[int, LadderStep, datetime]]:
    # Only steps after the last one issued: a ladder climbs, so a milder card skipped earlier
    # is never shown after a harsher one (an extension after a yellow card brings no warning).
    last = max(issued, default=-1)
    for index, step, at in schedule(calendar, due, steps, since):
        if index > last:
            yield index, step, at


def next_card_at(
    calendar: WorkingCalendar,
    due: datetime,
    steps: Sequence[LadderStep],
    issued: Sequence[int],
    since: datetime,
) -> datetime | None:
    """When the next card still owed falls, or ``None`` (no ladder, or every step issued)."""
    return next(
        (at for _index, _step, at in pending_steps(calendar, due, steps, issued, since)), None
    )


def fallen_due(
    ctx: Context,
    due: datetime,
    steps: Sequence[LadderStep],
    issued: Sequence[int],
    since: datetime,
) -> list[tuple[int, LadderStep]]:
    """The steps owed by now, in order (a timer that fires late issues each it passed)."""
    owed = pending_steps(ctx.calendar, due, steps, issued, since)
    return [(index, step) for index, step, _at in takewhile(lambda s: s[2] <= ctx.now, owed)]


def branch_card_due(branch: Branch, calendar: WorkingCalendar) -> datetime | None:
    """When ``branch``'s next card falls, or ``None`` (no ladder, clock stopped, all issued).

    The caller checks that the project is in ``approval``.
    """
    if not branch.ladder or branch.state not in BRANCH_OPEN or branch.due is None:
        return None
    since = branch.due_set_at or branch.opened_at
    return next_card_at(calendar, branch.due, branch.ladder, branch.cards_issued, since)


def unit_card_due(round_: PreReviewRound, unit: str, calendar: WorkingCalendar) -> datetime | None:
    """When a silent pre-review unit's next card falls, or ``None``."""
    steps = round_.ladders.get(unit, ())
    if not steps or round_.closed or unit in round_.opinions:
        return None
    issued = round_.cards_issued.get(unit, ())
    return next_card_at(calendar, round_.due, steps, issued, round_.opened_at)


def rating_card_due(rating: Rating, calendar: WorkingCalendar) -> datetime | None:
    """When an open rectification's next card falls, or ``None`` (no ladder, all issued, not
    open: a rectification awaiting confirmation waits with its cards)."""
    if not rating.ladder or rating.rectification != "open" or rating.due is None:
        return None
    since = rating.due_set_at or rating.at
    return next_card_at(calendar, rating.due, rating.ladder, rating.cards_issued, since)


def on_rating_card(ctx: Context, item: str) -> None:
    """Issue every step of an open rectification's ladder that has fallen due."""
    rating = ctx.state.ratings.get(item)
    if rating is None or rating.rectification != "open" or rating.due is None:
        return
    since = rating.due_set_at or rating.at
    for index, step in fallen_due(ctx, rating.due, rating.ladder, rating.cards_issued, since):
        issue_card(ctx, "rectification", rating.department, index, step, rating.due, item=item)


def on_branch_card(ctx: Context, dept: str) -> None:
    """Issue every step of ``dept``'s ladder that has fallen due and is still owed."""
    state = ctx.state
    branch = state.branches.get(dept)
    if state.stage != "approval" or branch is None or branch.state not in BRANCH_OPEN:
        return
    if branch.due is None:
        return
    since = branch.due_set_at or branch.opened_at
    for index, step in fallen_due(ctx, branch.due, branch.ladder, branch.cards_issued, since):
        issue_card(ctx, "approval", dept, index, step, branch.due)


def on_unit_card(ctx: Context, unit: str) -> None:
    """Issue every step of a silent unit's ladder that has fallen due and is still owed."""
    state = ctx.state
    round_ = state.round
    if state.stage != "pre_review.reviewing" or round_ is None or round_.closed:
        return
    if unit in round_.opinions:
        return
    steps = round_.ladders.get(unit, ())
    issued = round_.cards_issued.get(unit, ())
    for index, step in fallen_due(ctx, round_.due, steps, issued, round_.opened_at):
        issue_card(ctx, "pre_review", unit, index, step, round_.due)


def issue_card(
    ctx: Context,
    stage: str,
    dept: str,
    index: int,
    step: LadderStep,
    due: datetime,
    **extra: str | None,
) -> None:
    """Issue step ``index`` of a ladder: the ``card_issued`` event and its notice, both with
    ``extra`` (the rated ``item``, the ``approval_stage``) beside the stage and department."""
    ctx.emit(
        "card_issued",
        stage=stage,
        department=dept,
        **extra,
        step=index,
        card=step.card,
        offset_wd=step.offset_wd,
        due=due.isoformat(),
    )
    ctx.notify(
        CARD_NOTICES[step.card],
        card_recipients(ctx, step, stage, dept),
        card=step.card,
        department=dept,
        stage=stage,
        **extra,
        due=format_local(due),
        working_days_left=max(step.offset_wd, 0),
        working_days_overdue=max(-step.offset_wd, 0),
    )


def card_recipients(ctx: Context, step: LadderStep, stage: str, dept: str) -> list[str]:
    # "The department" is the role that acts at the stage (WORKFLOW.md: reviewers in
    # pre-review, officers in approval), as for the overdue notice.
    acting = "reviewer" if stage == "pre_review" else "officer"
    found: list[str] = []
    for recipient in step.recipients:
        if recipient == "officer":
            found.extend(ctx.department_actors(dept, acting))
        elif recipient == "head":
            found.extend(ctx.department_actors(dept, "head"))
        elif recipient == "leader":
            found.append(ctx.state.leader)
        else:
            found.extend(a.id for a in ctx.actors if "efficiency_office" in a.roles)
    return found
