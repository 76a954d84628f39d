"""What-if preview: before a project is submitted, which departments it will need and every
deadline and warning date its stages would carry, on the real calendar, writing nothing.

The preview assumes each stage starts the moment the previous one could at the latest end
(pre-review at ``start``, approval when the decision is signed at ``approval_start``), so the
dates are the limits a county promises, not a forecast.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from approvalflow.calendar import Due, WorkingCalendar
from approvalflow.project import ProjectState
from approvalflow.rules.context import RouteFunction
from approvalflow.settings import Settings

__all__ = ["BranchPreview", "Preview", "preview"]


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


@attrs.frozen
class Preview:
    """Dates and departments for a project that does not exist yet."""

    pre_review_due: Due
    pre_review_members: tuple[str, ...]
    approval_start: datetime
    branches: tuple[BranchPreview, ...]

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
) -> Preview:
    departments = route(state, settings)
    branches = []
    for dept in departments:
        limit = settings.time_limit_wd[dept]
        branches.append(
            BranchPreview(
                department=dept,
                department_name=settings.department_name(dept),
                time_limit_wd=limit,
                due=calendar.deadline_after(approval_start, limit),
                requires=settings.requirements.get(dept, ()),
                commitment_eligible=dept in settings.commitment.departments,
                deemed_approval=dept in settings.deemed_approval,
                supply_due_if_deficient=calendar.deadline_after(
                    approval_start, settings.supply_deadline_wd
                ),
                reminder_if_deficient=calendar.deadline_after(
                    approval_start, settings.supply_deadline_wd - settings.reminder_before_wd
                ),
            )
        )
    return Preview(
        pre_review_due=calendar.deadline_after(start, settings.pre_review.deadline_wd),
        pre_review_members=settings.pre_review.members,
        approval_start=approval_start,
        branches=tuple(branches),
    )
