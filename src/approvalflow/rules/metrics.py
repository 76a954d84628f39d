"""Metrics over a set of projects (rule 12): signing, start and production rates, funds, and
the working days each stage and each department took.

Rates are exact ``Fraction`` values between 0 and 1 (``None`` when nothing is signed); displays
round. Working days count the days after a stage's first day up to its last. An instant at
exactly 00:00 local time is 24:00 of the day before: a timer fired at a deadline (a deemed
approval, a revocation) is stamped with it (docs/decisions.md D9), and a department deemed to
approve at the end of its 5 wd limit took 5 working days, not 6.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.project import ProjectState

__all__ = ["METRIC_NAMES", "compute_metrics"]

METRIC_NAMES = (
    "signed_count",
    "signed_amount",
    "start_rate",
    "production_rate",
    "funds_in_place",
    "funds_rate",
    "stage_days",
    "department_days",
)
_STARTED = ("construction", "production", "effective")
_PRODUCING = ("production", "effective")


def compute_metrics(projects: Iterable[ProjectState], calendar: WorkingCalendar) -> dict[str, Any]:
    states = list(projects)
    signed = [s for s in states if "signed" in s.milestones]
    signed_amount = sum(s.agreed_investment or 0 for s in signed)
    started = sum(1 for s in signed if any(m in s.milestones for m in _STARTED))
    producing = sum(1 for s in signed if any(m in s.milestones for m in _PRODUCING))
    funds = sum(s.funds for s in states)
    return {
        "signed_count": len(signed),
        "signed_amount": signed_amount,
        "start_rate": Fraction(started, len(signed)) if signed else None,
        "production_rate": Fraction(producing, len(signed)) if signed else None,
        "funds_in_place": funds,
        "funds_rate": Fraction(funds, signed_amount) if signed_amount else None,
        "stage_days": _summary(_stage_durations(states, calendar)),
        "department_days": _summary(_department_durations(states, calendar)),
    }


def _stage_durations(states: list[ProjectState], calendar: WorkingCalendar) -> dict[str, list[int]]:
    durations: dict[str, list[int]] = {}
    for state in states:
        for stage, entered in state.stage_entered.items():
            left = state.stage_left.get(stage)
            if left is None:
                continue
            days = calendar.working_days_between(_day(entered), _day(left))
            durations.setdefault(stage, []).append(days)
    return durations


def _department_durations(
    states: list[ProjectState], calendar: WorkingCalendar
) -> dict[str, list[int]]:
    durations: dict[str, list[int]] = {}
    for state in states:
        for dept, branch in state.branches.items():
            if branch.decided_at is None:
                continue
            days = calendar.working_days_between(_day(branch.opened_at), _day(branch.decided_at))
            durations.setdefault(dept, []).append(days)
    return durations


def _day(moment: datetime) -> date:
    """The local day ``moment`` belongs to; exactly 00:00 is the end (24:00) of the day before."""
    local = to_local(moment)
    if local.hour == local.minute == local.second == local.microsecond == 0:
        return local.date() - timedelta(days=1)
    return local.date()


def _summary(durations: dict[str, list[int]]) -> dict[str, dict[str, Any]]:
    return {
        name: {"avg": Fraction(sum(days), len(days)), "max": max(days), "count": len(days)}
        for name, days in sorted(durations.items())
    }
