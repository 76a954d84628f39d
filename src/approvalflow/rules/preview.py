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

__all__ = ["BranchPreview", "CardPreview", "Preview", "StagePreview", "preview"]


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
    # Under approval in stages: the stage the branch opens in (a department may be in several).
    stage: str | None = None


@attrs.frozen
class StagePreview:
    """An approval stage's dates, were it to open when the one before ends at the latest (its
    limit): the lead department, the routed departments, its deadline and cards."""

    id: str
    name: str
    lead: str
    departments: tuple[str, ...]
    limit_wd: int
    opens: datetime
    due: Due
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
    # Approval in stages: each stage in order, and the total limit over them (with its cards).
    stages: tuple[StagePreview, ...] = ()
    total_due: Due | None = None
    total_cards: tuple[CardPreview, ...] = ()

    @property
    def approval_due(self) -> Due:
        """The promised end of approval: the slowest branch's limit; under stages the total
        limit, or without one the last stage's."""
        if self.total_due is not None:
            return self.total_due
        if self.stages:
            return self.stages[-1].due
        return max((b.due for b in self.branches), key=lambda due: due.at)

    @property
    def provisional(self) -> bool:
        return (
            self.pre_review_due.provisional
            or any(b.due.provisional for b in self.branches)
            or any(s.due.provisional for s in self.stages)
            or (self.total_due is not None and self.total_due.provisional)
        )


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
    # Without stages every branch opens at approval_start; under stages each stage's branches
    # open when the stage does, the one before ending at its limit.
    openings: list[tuple[str | None, str, datetime]] = []
    stage_previews: list[StagePreview] = []
    total_due: Due | None = None
    total_cards: tuple[CardPreview, ...] = ()
    county_steps = settings.ladder.steps if settings.ladder.enabled else ()
    if settings.approval.stages:
        opens = approval_start
        for spec in settings.approval.stages:
            routed = tuple(d for d in spec.departments if d in departments or d == spec.lead)
            stage_due = calendar.deadline_after(opens, spec.limit_wd)
            stage_previews.append(
                StagePreview(
                    id=spec.id,
                    name=spec.name,
                    lead=spec.lead,
                    departments=routed,
                    limit_wd=spec.limit_wd,
                    opens=opens,
                    due=stage_due,
                    cards=_cards(calendar, stage_due, county_steps, opens),
                )
            )
            openings.extend((spec.id, dept, opens) for dept in routed)
            opens = stage_due.at
        if settings.approval.total_limit_wd is not None:
            total_due = calendar.deadline_after(approval_start, settings.approval.total_limit_wd)
            total_cards = _cards(calendar, total_due, county_steps, approval_start)
    else:
        openings = [(None, dept, approval_start) for dept in departments]
    branches = []
    for stage_id, dept, opened in openings:
        limit = time_limit(state, dept) if time_limit else settings.time_limit_wd[dept]
        due = calendar.deadline_after(opened, limit)
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
                    opened, settings.supply_deadline_wd
                ),
                reminder_if_deficient=calendar.deadline_after(
                    opened, settings.supply_deadline_wd - settings.reminder_before_wd
                ),
                cards=_cards(calendar, due, ladder_for("approval", dept), opened),
                stage=stage_id,
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
        stages=tuple(stage_previews),
        total_due=total_due,
        total_cards=total_cards,
    )


def _cards(
    calendar: WorkingCalendar, due: Due, steps: Sequence[LadderStep], opened: datetime
) -> tuple[CardPreview, ...]:
    return tuple(
        CardPreview(step.card, step.offset_wd, at, step.recipients)
        for _index, step, at in schedule(calendar, due.at, steps, opened)
    )
