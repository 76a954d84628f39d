"""Metrics over a set of projects (rule 12): signing, start and production rates, funds, and
the working days each stage and each department took.

Rates are exact ``Fraction`` values between 0 and 1 (``None`` when nothing is signed); displays
round. Working days count the days after a stage's first day up to its last. An instant at
exactly 00:00 local time is 24:00 of the day before: a timer fired at a deadline (a deemed
approval, a revocation) is stamped with it (docs/decisions.md D9), and a department deemed to
approve at the end of its 5 wd limit took 5 working days, not 6.

The metrics are computed in two steps, so a store can do the first with a query:
``metric_inputs`` reduces the projects to counts, sums and how many stage and department
intervals ran from one day to another (``MetricInputs``), and ``metrics_from_inputs`` turns
those into the metrics, counting the working days of each distinct pair of days once.
``compute_metrics`` does both over loaded project states.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

import attrs

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.project import ProjectState
from approvalflow.rules.points import milestone_month

__all__ = [
    "METRIC_NAMES",
    "NOT_PERFORMING",
    "RATING_FIGURES",
    "MetricInputs",
    "TeamMonthCounts",
    "cohort_counts",
    "compute_metrics",
    "metric_day",
    "metric_inputs",
    "metrics_from_inputs",
    "milestone_flags",
    "rating_metrics",
    "team_month_counts",
]

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
Spans = Mapping[tuple[str, int, int], int]
"""``(stage or department, first day, last day) -> how many``; days are ``date.toordinal()``."""


@attrs.frozen
class MetricInputs:
    """What the metrics of some projects are computed from.

    ``signed_count`` counts the signed projects, ``signed_amount`` sums their agreed investment,
    ``started`` and ``producing`` count the signed ones that started construction or production,
    ``funds`` sums every project's funds in place. ``stage_spans`` and ``department_spans``
    count the stages left and the departments decided by name and pair of days (``metric_day``
    of the first and the last moment, as ordinals).
    """

    signed_count: int = 0
    signed_amount: int = 0
    started: int = 0
    producing: int = 0
    funds: int = 0
    stage_spans: Spans = attrs.field(factory=dict)
    department_spans: Spans = attrs.field(factory=dict)

    def __add__(self, other: MetricInputs) -> MetricInputs:
        """The inputs of both sets of projects together (they must not overlap)."""
        return MetricInputs(
            self.signed_count + other.signed_count,
            self.signed_amount + other.signed_amount,
            self.started + other.started,
            self.producing + other.producing,
            self.funds + other.funds,
            _add_spans(self.stage_spans, other.stage_spans),
            _add_spans(self.department_spans, other.department_spans),
        )


def _add_spans(first: Spans, second: Spans) -> dict[tuple[str, int, int], int]:
    total = dict(first)
    for key, count in second.items():
        total[key] = total.get(key, 0) + count
    return total


NOT_PERFORMING = frozenset({"withdrawn", "terminated", "rejected"})
"""The stages of a signed project that no longer performs its agreement (协议履约率's
complement, the seeds' reading: DOMAIN.md 3.13)."""


@attrs.frozen
class TeamMonthCounts:
    """What the four rates of a team's projects signed in one month are computed from (or of
    its projects not signed): how many ``projects``, how many ``signed`` (with their
    ``signed_amount``), ``started``, ``producing`` and still ``performing`` (signed and not
    withdrawn, terminated or rejected), and their ``funds`` in place. Kept by the commits as
    counts (``team_month_counts`` in the SQL stores), so the metrics page reads no project."""

    projects: int = 0
    signed_count: int = 0
    signed_amount: int = 0
    started: int = 0
    producing: int = 0
    performing: int = 0
    funds: int = 0

    def __add__(self, other: TeamMonthCounts) -> TeamMonthCounts:
        return TeamMonthCounts(
            *(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other), strict=True))
        )

    def figures(self) -> dict[str, Any]:
        """The metrics these counts give, by ``METRIC_NAMES``' names where they are the same
        (``metrics_from_inputs``' values for the same projects), and ``fulfilment_rate``
        (performing / signed): exact fractions, ``None`` with nothing signed."""
        signed, amount = self.signed_count, self.signed_amount
        return {
            "signed_count": signed,
            "signed_amount": amount,
            "start_rate": Fraction(self.started, signed) if signed else None,
            "production_rate": Fraction(self.producing, signed) if signed else None,
            "funds_in_place": self.funds,
            "funds_rate": Fraction(self.funds, amount) if amount else None,
            "fulfilment_rate": Fraction(self.performing, signed) if signed else None,
        }


def cohort_counts(state: ProjectState) -> tuple[str, str | None, TeamMonthCounts]:
    """The project's team, the month it was signed in (``rules.points.milestone_month``, as
    ``Engine.signed_in``; ``None`` when it is not signed) and its own counts."""
    signed, started, producing = milestone_flags(state.milestones)
    at = state.milestones.get("signed")
    month = milestone_month(at) if signed and at is not None else None
    return (
        state.team,
        month,
        TeamMonthCounts(
            1,
            int(signed),
            (state.agreed_investment or 0) if signed else 0,
            int(signed and started),
            int(signed and producing),
            int(signed and state.stage not in NOT_PERFORMING),
            state.funds,
        ),
    )


def team_month_counts(
    projects: Iterable[ProjectState],
) -> dict[tuple[str, str | None], TeamMonthCounts]:
    """``cohort_counts`` added up by team and signing month, in that order (``None`` last)."""
    found: dict[tuple[str, str | None], TeamMonthCounts] = {}
    for state in projects:
        team, month, counts = cohort_counts(state)
        key = (team, month)
        found[key] = found[key] + counts if key in found else counts
    return dict(sorted(found.items(), key=lambda item: _team_month_order(item[0])))


def _team_month_order(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    return (key[0], key[1] is None, key[1] or "")


def milestone_flags(milestones: Container[str]) -> tuple[bool, bool, bool]:
    """Whether the milestones reached (``ProjectState.milestones``) mean signed, started
    (construction or later) and producing."""
    return (
        "signed" in milestones,
        "construction" in milestones or "production" in milestones or "effective" in milestones,
        "production" in milestones or "effective" in milestones,
    )


def metric_inputs(projects: Iterable[ProjectState]) -> MetricInputs:
    """The inputs of ``projects`` (each one counted once per time it is given)."""
    signed_count = signed_amount = started = producing = funds = 0
    stage_spans: dict[tuple[str, int, int], int] = {}
    department_spans: dict[tuple[str, int, int], int] = {}
    for state in projects:
        funds += state.funds
        signed, has_started, has_produced = milestone_flags(state.milestones)
        if signed:
            signed_count += 1
            signed_amount += state.agreed_investment or 0
            started += has_started
            producing += has_produced
        for stage, entered in state.stage_entered.items():
            left = state.stage_left.get(stage)
            if left is not None:
                key = (stage, metric_day(entered).toordinal(), metric_day(left).toordinal())
                stage_spans[key] = stage_spans.get(key, 0) + 1
        for dept, branch in state.branches.items():
            if branch.decided_at is not None:
                key = (
                    dept,
                    metric_day(branch.opened_at).toordinal(),
                    metric_day(branch.decided_at).toordinal(),
                )
                department_spans[key] = department_spans.get(key, 0) + 1
    return MetricInputs(
        signed_count, signed_amount, started, producing, funds, stage_spans, department_spans
    )


def metrics_from_inputs(inputs: MetricInputs, calendar: WorkingCalendar) -> dict[str, Any]:
    """The built-in metrics (``METRIC_NAMES``) from ``inputs``."""
    signed = inputs.signed_count
    signed_amount = inputs.signed_amount
    return {
        "signed_count": signed,
        "signed_amount": signed_amount,
        "start_rate": Fraction(inputs.started, signed) if signed else None,
        "production_rate": Fraction(inputs.producing, signed) if signed else None,
        "funds_in_place": inputs.funds,
        "funds_rate": Fraction(inputs.funds, signed_amount) if signed_amount else None,
        "stage_days": _summary(inputs.stage_spans, calendar),
        "department_days": _summary(inputs.department_spans, calendar),
    }


def compute_metrics(projects: Iterable[ProjectState], calendar: WorkingCalendar) -> dict[str, Any]:
    return metrics_from_inputs(metric_inputs(projects), calendar)


def metric_day(moment: datetime) -> date:
    """The local day ``moment`` belongs to; exactly 00:00 is the end (24:00) of the day before."""
    local = to_local(moment)
    if local.hour == local.minute == local.second == local.microsecond == 0:
        return local.date() - timedelta(days=1)
    return local.date()


def _summary(spans: Spans, calendar: WorkingCalendar) -> dict[str, dict[str, Any]]:
    # name -> [total days, how many, max]; each distinct pair of days is counted once.
    found: dict[str, list[int]] = {}
    days_of: dict[tuple[int, int], int] = {}
    for (name, first, last), count in spans.items():
        if count <= 0:
            continue
        days = days_of.get((first, last))
        if days is None:
            days = days_of[(first, last)] = calendar.working_days_between(
                date.fromordinal(first), date.fromordinal(last)
            )
        entry = found.get(name)
        if entry is None:
            found[name] = [days * count, count, days]
        else:
            entry[0] += days * count
            entry[1] += count
            entry[2] = max(entry[2], days)
    return {
        name: {"avg": Fraction(total, count), "max": biggest, "count": count}
        for name, (total, count, biggest) in sorted(found.items())
    }


RATING_FIGURES = (
    "count",
    "average",
    "bad",
    "rectifications",
    "on_time",
    "late",
    "open",
)
"""The figures of ``rating_metrics``, per department and month."""


def rating_metrics(
    projects: Iterable[ProjectState], month: str | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """好差评 per department and month: ``{department: {YYYY-MM: figures}}``.

    Each rating counts in the month it was given (Shanghai time; 00:00 is the day before, as
    for the leaderboard), its rectification with it: ``count`` ratings, their ``average`` score
    (an exact fraction), ``bad`` ones (1 or 2), ``rectifications`` opened, of which ``on_time``
    (confirmed without passing the deadline), ``late`` (the deadline passed before a confirmed
    rectification) and ``open`` (neither yet). ``month`` keeps that month only.
    """
    totals: dict[tuple[str, str], list[int]] = {}
    for state in projects:
        for rating in state.ratings.values():
            rated_in = milestone_month(rating.at)
            if month is not None and rated_in != month:
                continue
            entry = totals.setdefault((rating.department, rated_in), [0] * 7)
            entry[0] += 1
            entry[1] += rating.score
            if rating.bad:
                entry[2] += 1
            if rating.rectification is not None:
                entry[3] += 1
                on_time = rating.on_time
                entry[4 if on_time else 5 if on_time is False else 6] += 1
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for (dept, rated_in), (count, score, bad, opened, in_time, late, pending) in sorted(
        totals.items()
    ):
        found.setdefault(dept, {})[rated_in] = {
            "count": count,
            "average": Fraction(score, count),
            "bad": bad,
            "rectifications": opened,
            "on_time": in_time,
            "late": late,
            "open": pending,
        }
    return found
