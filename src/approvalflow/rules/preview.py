"""What-if preview: before a project is submitted, which departments it will need and every
deadline and warning date its stages would carry, on the real calendar, writing nothing.

The preview assumes each stage starts the moment the previous one could at the latest end
(pre-review at ``start``, approval when the decision is signed at ``approval_start``), so the
dates are the limits a county promises, not a forecast.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from approvalflow.calendar import Due, WorkingCalendar, format_local
from approvalflow.project import ProjectState
from approvalflow.rules.context import LadderFunction, RouteFunction, TimeLimitFunction
from approvalflow.rules.ladder import schedule
from approvalflow.settings import LadderStep, Settings

__all__ = ["BranchPreview", "CardPreview", "Preview", "preview"]


@attrs.frozen
class CardPreview:
    """When a step of the warning ladder would show its card, and to whom (roles)."""

    card: str
    offset_wd: int
    at: datetime
    recipients: tuple[str, ...]

    def display(self) -> str:
        """``"YYYY-MM-DD 24:00"``, as deadlines are written."""
        return format_local(self.at)


@attrs.frozen
class BranchPreview:
    department: str
    department_name: str
    time_limit_wd: int
    due: Due
    requires: tuple[str, ...]
    commitment_eligible: bool
    deemed_approval: bool
    supply_due_if_deficient: Due
    reminder_if_deficient: Due
    cards: tuple[CardPreview, ...] = ()


@attrs.frozen
class Preview:
    """Dates and departments for a project that does not exist yet."""

    pre_review_due: Due
    pre_review_members: tuple[str, ...]
    approval_start: datetime
    branches: tuple[BranchPreview, ...]
    # Each member unit's cards should it stay silent, by unit (units without a ladder left out).
    pre_review_cards: Mapping[str, tuple[CardPreview, ...]] = attrs.field(factory=dict)

    @property
    def approval_due(self) -> Due:
        """When the slowest branch's limit ends: the stage's promised end."""
        return max((b.due for b in self.branches), key=lambda due: due.at)

    @property
    def provisional(self) -> bool:
        return self.pre_review_due.provisional or any(b.due.provisional for b in self.branches)


def preview(
    state: ProjectState,
    *,
    settings: Settings,
    calendar: WorkingCalendar,
    route: RouteFunction,
    start: datetime,
    approval_start: datetime,
    time_limit: TimeLimitFunction | None = None,
    ladder: LadderFunction | None = None,
) -> Preview:
    """The dates ``state`` would meet; ``time_limit`` and ``ladder`` are the county's answers
    (default: ``settings.time_limit_wd`` and ``settings.ladder``), as when the items open."""

    def ladder_for(stage: str, dept: str) -> tuple[LadderStep, ...]:
        if ladder is not None:
            return ladder(state, stage, dept)
        return settings.ladder.steps if settings.ladder.enabled else ()

    departments = route(state, settings)
    branches = []
    for dept in departments:
        limit = time_limit(state, dept) if time_limit else settings.time_limit_wd[dept]
        due = calendar.deadline_after(approval_start, limit)
        branches.append(
            BranchPreview(
                department=dept,
                department_name=settings.department_name(dept),
                time_limit_wd=limit,
                due=due,
                requires=settings.requirements.get(dept, ()),
                commitment_eligible=dept in settings.commitment.departments,
                deemed_approval=dept in settings.deemed_approval,
                supply_due_if_deficient=calendar.deadline_after(
                    approval_start, settings.supply_deadline_wd
                ),
                reminder_if_deficient=calendar.deadline_after(
                    approval_start, settings.supply_deadline_wd - settings.reminder_before_wd
                ),
                cards=_cards(calendar, due, ladder_for("approval", dept), approval_start),
            )
        )
    pre_review_due = calendar.deadline_after(start, settings.pre_review.deadline_wd)
    pre_review_cards = {
        unit: cards
        for unit in settings.pre_review.members
        if (cards := _cards(calendar, pre_review_due, ladder_for("pre_review", unit), start))
    }
    return Preview(
        pre_review_due=pre_review_due,
        pre_review_members=settings.pre_review.members,
        approval_start=approval_start,
        branches=tuple(branches),
        pre_review_cards=pre_review_cards,
    )


def _cards(
    calendar: WorkingCalendar, due: Due, steps: Sequence[LadderStep], opened: datetime
) -> tuple[CardPreview, ...]:
    return tuple(
        CardPreview(step.card, step.offset_wd, at, step.recipients)
        for _index, step, at in schedule(calendar, due.at, steps, opened)
    )
