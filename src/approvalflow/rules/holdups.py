"""Who is holding a project up, and a county's late items by department (issue 9).

Pure reads of project state: which review or branch the project waits on now, with its
deadline; and, over many projects, every open item already past its deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.project import ProjectState
from approvalflow.rules import stages
from approvalflow.settings import LadderStep, Settings
from approvalflow.states import BRANCH_OPEN

__all__ = ["Holdup", "LateDue", "holdups", "late_items", "late_summary"]

_ONE_DAY = timedelta(days=1)


@attrs.frozen
class Holdup:
    """One thing a project waits on: a department's review or branch, or the applicant."""

    project: str
    waiting_on: str  # a department id, "applicant", or "leader"
    # "pre_review", "approval", "materials", "corrections", "removal_consent", "stage_result",
    # "verification" (a commitment the stage's result waits on, D308)
    what: str
    due: datetime | None
    state: str
    # On a branch: its handler (经办人) and the deputy acting for them (委托), when named.
    handler: str | None = None
    deputy: str | None = None
    # The warning ladder's last card shown on this item (warning, yellow, red), if any.
    card: str | None = None

    def working_days_left(self, calendar: WorkingCalendar, now: datetime) -> int | None:
        """Working days from ``now``'s day to the deadline's; negative once it has passed."""
        if self.due is None:
            return None
        today = to_local(now).date()
        due_day = (to_local(self.due) - _ONE_DAY).date()
        if due_day >= today:
            return calendar.working_days_between(today, due_day)
        return -calendar.working_days_between(due_day, today)


def holdups(state: ProjectState, settings: Settings, now: datetime | None = None) -> list[Holdup]:
    """What ``state`` waits on now, the earliest deadline first (the critical path's head).

    A branch names its handler, and their deputy while the entrustment is in force at ``now``
    (any named deputy when ``now`` is ``None``).
    """
    found: list[Holdup] = []
    if state.stage == "pre_review.reviewing" and state.round is not None:
        round_ = state.round
        for unit in settings.pre_review.members:
            if unit not in round_.opinions:
                card = _last_card(round_.ladders.get(unit, ()), round_.cards_issued.get(unit, ()))
                found.append(Holdup(state.id, unit, "pre_review", round_.due, "silent", card=card))
    elif state.stage == "pre_review.awaiting_materials":
        found.append(Holdup(state.id, "applicant", "materials", None, "awaiting_materials"))
    elif state.stage == "approval":
        for dept, branch in state.branches.items():
            if branch.state in BRANCH_OPEN:
                deputy = branch.deputy if now is None else branch.deputy_at(now)
                found.append(
                    Holdup(
                        state.id,
                        dept,
                        "approval",
                        branch.due,
                        branch.state,
                        handler=branch.handler,
                        deputy=deputy,
                        card=_last_card(branch.ladder, branch.cards_issued),
                    )
                )
            elif branch.state == "returned":
                found.append(Holdup(state.id, "applicant", "corrections", None, dept))
            if branch.outstanding:
                found.append(Holdup(state.id, "applicant", "materials", branch.supply_due, dept))
        for request in state.removal_requests:
            # 减签 on a priority project: the leader's consent, the branch still running.
            found.append(Holdup(state.id, "leader", "removal_consent", None, request.department))
        run = stages.current_stage(state)
        if run is not None and not stages.waiting_on(state, run):
            # Every branch decided, and the result waits on a commitment's verification by a
            # department the next stage opens again (D308).
            for dept in stages.unverified_pledges(state):
                branch = state.branches[dept]
                found.append(
                    Holdup(state.id, dept, "verification", branch.verify_due, branch.state)
                )
        if run is not None and stages.stage_ready(state, run):
            # Every branch of the stage decided: the lead department's combined result is due.
            found.append(
                Holdup(
                    state.id,
                    run.lead,
                    "stage_result",
                    run.due,
                    run.id,
                    card=_last_card(run.ladder, run.cards_issued),
                )
            )
    return sorted(found, key=lambda h: (h.due is None, h.due or datetime.min, h.waiting_on))


def _last_card(steps: Sequence[LadderStep], issued: Sequence[int]) -> str | None:
    # Steps are issued in time order, so the last one issued is the card the item shows.
    return steps[issued[-1]].card if issued else None


def late_items(
    states: Iterable[ProjectState],
    settings: Settings | Callable[[ProjectState], Settings],
    now: datetime,
) -> dict[str, list[Holdup]]:
    """Every open review or branch past its deadline at ``now``, by department.

    ``settings`` may be a function giving each project's own rule set (``Engine.rules_for``).
    """
    rules_for = settings if callable(settings) else (lambda _state: settings)
    late: dict[str, list[Holdup]] = {}
    for state in states:
        for item in holdups(state, rules_for(state), now):
            # A verification is not a late item (D308): the late board counts reviews,
            # branches and stage results (``tasks.LATE_KINDS``), as the stores' rows do.
            if (
                item.waiting_on != "applicant"
                and item.what != "verification"
                and item.due is not None
                and item.due <= now
            ):
                late.setdefault(item.waiting_on, []).append(item)
    for items in late.values():
        items.sort(key=lambda h: (h.due, h.project))
    return dict(sorted(late.items()))


@attrs.frozen
class LateDue:
    """A department's late items that fell due at one moment: how many, the cards they show,
    and the first ``limit`` of them as ``late_items`` lists them (by project)."""

    department: str
    due: datetime
    count: int
    cards: frozenset[str]
    first: tuple[Holdup, ...]


def late_summary(late: Mapping[str, Sequence[Holdup]], limit: int) -> dict[str, list[LateDue]]:
    """``late_items``' answer by department and deadline, the earliest first, each with its
    first ``limit`` items (what a board shows without every item)."""
    found: dict[str, list[LateDue]] = {}
    for dept, items in late.items():
        groups: dict[datetime, list[Holdup]] = {}
        for item in items:
            assert item.due is not None  # a late item has a deadline
            groups.setdefault(item.due, []).append(item)
        found[dept] = [
            LateDue(
                dept,
                due,
                len(group),
                frozenset(item.card for item in group if item.card),
                tuple(group[:limit]),
            )
            for due, group in sorted(groups.items())
        ]
    return found
