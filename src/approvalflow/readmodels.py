"""The read side's projections: what rows each commit produces for the built-in reports.

The leaderboard and the metrics (rules 11 and 12) read a few facts of every project. The SQL
stores keep them as read models beside the events (tables in ``approvalflow.stores.schema``,
written in the same transaction as the commit they follow), so a report is a query, not a load
of every project. This module defines those read models; the stores keep them and know no rule
(``approvalflow.stores.projections.ReadModel`` is what they need of it):

- ``milestones`` (project, milestone): team, points, at_us, month. From the commit's
  ``milestone_reached`` events: the first event of a milestone is kept, as the fold keeps it
  (``ProjectState.milestones`` and ``milestone_points``); ``month`` is the leaderboard's
  (``rules.points.milestone_month``).
- ``project_summaries`` (project): team, stage, agreed_investment, funds, signed, started,
  producing, created_us. From the committed state; ``signed``/``started``/``producing`` are
  ``rules.metrics.milestone_flags``.
- ``intervals`` (project, kind, name): team, start_day, end_day. Each stage left
  (``stage_entered`` to ``stage_left``, kind ``stage``) and each department decided (the
  branch's ``opened_at`` to ``decided_at``, kind ``department``), as the local days
  ``rules.metrics.metric_day`` counts them.

- ``task_rows`` (project, party, kind, department, command): the task list's open items, each
  under every party that may act on it (``approvalflow.tasks.task_rows``: plain columns, no
  encoded text); the task list selects the rows of the actor's parties and authorises each at
  query time, as ``open_items`` does. Only the rows that changed are written. The late items
  read the same rows (``approvalflow.tasks.late_of_rows``: reviews, branches and stage
  results due by a moment), with the branch's state or the stage's id in ``state``.

- ``team_month_counts`` (team, month): projects, signed, signed_amount, started, producing,
  performing, funds. Each project's part (``rules.metrics.cohort_counts``: its team and the
  month it was signed in, ``""`` when not signed) is added by the commit that changes it, less
  its part before (schema version 15): the metrics page's rates by team and month are a read
  of a few hundred rows, not a scan of every project (D258).

A change to any of these needs a schema migration that rebuilds the projections
(``Migration(rebuild_projections=True)`` in ``approvalflow.stores.schema``).

``REPORTS`` is the read model every store keeps unless it is given another one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from approvalflow.model import Event
from approvalflow.project import ProjectState
from approvalflow.rules.metrics import (
    MetricInputs,
    cohort_counts,
    metric_day,
    metric_inputs,
    milestone_flags,
)
from approvalflow.rules.points import milestone_month, points_by_milestone, points_by_team
from approvalflow.stores.projections import (
    DEPARTMENT,
    STAGE,
    MilestoneRow,
    Projection,
    SpanKey,
    Summary,
)
from approvalflow.stores.serialization import to_epoch_us
from approvalflow.tasks import task_parts

__all__ = ["MILESTONE_EVENT", "REPORTS", "Reports"]

MILESTONE_EVENT = "milestone_reached"


class Reports:
    """The built-in reports' read model: milestone points, signing, funds and intervals, and
    the task list's rows. ``Reports(tasks=False)`` keeps no task rows (a store opened with it
    answers ``task_rows`` with ``None``, and the task list reads every project: for measuring
    what the task rows cost a commit)."""

    def __init__(self, *, tasks: bool = True) -> None:
        self.tasks = tasks

    @property
    def keeps_tasks(self) -> bool:
        """Whether ``projection`` gives the task list's rows."""
        return self.tasks

    def projection(
        self, state: ProjectState, since: tuple[ProjectState, Projection] | None = None
    ) -> Projection:
        """The summary, finished intervals and task rows of ``state`` (cheap: no day is
        computed until a row is written, see ``day``). ``since`` is the state the commit
        started from and its projection: the parts of its task rows the commit did not change
        are reused (``tasks.task_parts``), the others derived."""
        signed, started, producing = milestone_flags(state.milestones)
        summary = Summary(
            state.team,
            state.stage,
            state.agreed_investment,
            state.funds,
            signed,
            started,
            producing,
            state.created_at,
        )
        spans: dict[SpanKey, tuple[datetime, datetime]] = {}
        left = state.stage_left
        for stage, entered in state.stage_entered.items():
            end = left.get(stage)
            if end is not None:
                spans[(STAGE, stage)] = (entered, end)
        for dept, branch in state.branches.items():
            if branch.decided_at is not None:
                spans[(DEPARTMENT, dept)] = (branch.opened_at, branch.decided_at)
        tasks = None
        if self.tasks:
            old = since[1].tasks if since is not None else None
            tasks = task_parts(
                state, (since[0], old) if since is not None and old is not None else None
            )
        team, month, counts = cohort_counts(state)
        return Projection(summary, spans, tasks, (team, month or "", *attrs.astuple(counts)))

    def day(self, moment: datetime) -> int:
        """The local day ``moment`` counts as in the metrics, as ``date.toordinal()``."""
        return metric_day(moment).toordinal()

    def milestone_rows(
        self, project: str, team: str, events: Iterable[Event]
    ) -> list[MilestoneRow]:
        """The rows of the ``milestone_reached`` events among ``events`` (in order: the first
        one of a milestone is the one kept)."""
        return [
            (
                project,
                event.payload["milestone"],
                team,
                event.payload["points"],
                to_epoch_us(event.at),
                milestone_month(event.at),
            )
            for event in events
            if event.type == MILESTONE_EVENT
        ]

    def state_milestone_rows(self, state: ProjectState) -> list[MilestoneRow]:
        """The rows of every milestone ``state`` has reached: the same rows its events gave
        (the fold keeps each milestone's first event), for a rebuild without events."""
        return [
            (
                state.id,
                milestone,
                state.team,
                state.milestone_points.get(milestone, 0),
                to_epoch_us(at),
                milestone_month(at),
            )
            for milestone, at in state.milestones.items()
        ]

    def metric_inputs(
        self, totals: Sequence[Any] | None, intervals: Iterable[Sequence[Any]]
    ) -> MetricInputs:
        """``MetricInputs`` from the store's sums over ``project_summaries`` (signed count,
        signed amount, started, producing, funds; ``None`` for no project) and its counts of
        ``intervals`` (kind, name, start day, end day, count)."""
        signed_count, signed_amount, started, producing, funds = (
            (int(value or 0) for value in totals) if totals is not None else (0, 0, 0, 0, 0)
        )
        stage_spans: dict[tuple[str, int, int], int] = {}
        department_spans: dict[tuple[str, int, int], int] = {}
        for kind, name, start_day, end_day, count in intervals:
            spans = stage_spans if kind == STAGE else department_spans
            key = (name, int(start_day), int(end_day))
            spans[key] = spans.get(key, 0) + int(count)
        return MetricInputs(
            signed_count, signed_amount, started, producing, funds, stage_spans, department_spans
        )

    def points_of_states(self, states: Iterable[ProjectState], month: str | None) -> dict[str, int]:
        """Points per team over loaded states (the memory store's answer)."""
        return points_by_team(states, month=month)

    def points_by_milestone_of_states(
        self, states: Iterable[ProjectState], month: str | None
    ) -> dict[str, dict[str, int]]:
        """Points per team and milestone over loaded states (the memory store's answer)."""
        return points_by_milestone(states, month=month)

    def metric_inputs_of_states(self, states: Iterable[ProjectState]) -> MetricInputs:
        """``MetricInputs`` over loaded states (the memory store's answer)."""
        return metric_inputs(states)


REPORTS = Reports()
"""The read model of the built-in reports."""
