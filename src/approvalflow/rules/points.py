"""Lifecycle points (积分) and the monthly leaderboard (赛马榜), rule 11.

Points are earned once per project and milestone, at the value the settings had when the
milestone was reached (it is recorded in the ``milestone_reached`` event), so a county that
changes its table does not rewrite last month's board.

The board is ranked from points per team (``rank_teams``), so a store that sums the points with a
query (``Store.milestone_points``) gives the same board as ``leaderboard`` over loaded states.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

from approvalflow.calendar import SHANGHAI
from approvalflow.project import ProjectState

__all__ = [
    "LeaderboardRow",
    "leaderboard",
    "milestone_month",
    "points_by_team",
    "previous_month",
    "rank_teams",
]


def points_by_team(projects: Iterable[ProjectState], *, month: str | None = None) -> dict[str, int]:
    """Points per team, over all time or within ``month`` (``YYYY-MM``, Shanghai time)."""
    totals: dict[str, int] = {}
    for state in projects:
        for milestone, at in state.milestones.items():
            if month is not None and milestone_month(at) != month:
                continue
            totals[state.team] = totals.get(state.team, 0) + state.milestone_points.get(
                milestone, 0
            )
    return totals


def points_by_milestone(
    projects: Iterable[ProjectState], *, month: str | None = None
) -> dict[str, dict[str, int]]:
    """Points per team and milestone, over all time or within ``month``: the board's bars
    split by what earned them."""
    found: dict[str, dict[str, int]] = {}
    for state in projects:
        for milestone, at in state.milestones.items():
            if month is not None and milestone_month(at) != month:
                continue
            per = found.setdefault(state.team, {})
            per[milestone] = per.get(milestone, 0) + state.milestone_points.get(milestone, 0)
    return found


@attrs.frozen
class LeaderboardRow:
    rank: int
    team: str
    points: int
    previous_rank: int | None
    previous_points: int


def leaderboard(projects: Iterable[ProjectState], month: str) -> list[LeaderboardRow]:
    """Teams ranked by points earned in ``month``, with last month's rank and points.

    Ties share a rank (1, 2, 2, 4) and are listed by team id.
    """
    states = list(projects)
    return rank_teams(
        points_by_team(states, month=month),
        points_by_team(states, month=previous_month(month)),
    )


def rank_teams(this: dict[str, int], before: dict[str, int]) -> list[LeaderboardRow]:
    """The board from points per team earned in the month (``this``) and the month before."""
    previous_ranks = _ranks(before)
    rows = []
    for team, rank in _ranks(this).items():
        rows.append(
            LeaderboardRow(rank, team, this[team], previous_ranks.get(team), before.get(team, 0))
        )
    return sorted(rows, key=lambda row: (row.rank, row.team))


def _ranks(points: dict[str, int]) -> dict[str, int]:
    ordered = sorted(points.items(), key=lambda item: (-item[1], item[0]))
    ranks: dict[str, int] = {}
    for position, (team, value) in enumerate(ordered, start=1):
        tied = [t for t, v in ordered[: position - 1] if v == value]
        ranks[team] = ranks[tied[0]] if tied else position
    return ranks


def milestone_month(at: datetime) -> str:
    """The month (``YYYY-MM``, Shanghai time) whose board a milestone reached at ``at`` is on."""
    # 00:00 is 24:00 of the day before: a milestone reached by a timer at the deadline that
    # ends a month's last day (docs/decisions.md D9) belongs to that month's board.
    local = at.astimezone(SHANGHAI)
    if local.hour == local.minute == local.second == local.microsecond == 0:
        local -= timedelta(microseconds=1)
    return local.strftime("%Y-%m")


def previous_month(month: str) -> str:
    """The month before ``month`` (``YYYY-MM``)."""
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"
