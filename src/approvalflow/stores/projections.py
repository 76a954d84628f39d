"""The projections: what the SQL stores keep beside the events so that reports are queries.

The leaderboard and the metrics (rules 11 and 12) read a few facts of every project; loading
100,000 projects to read them took 45 s. So each commit also writes, in the same transaction,
rows derived from what it commits (tables in ``approvalflow.stores.schema``):

- ``milestones`` (project, milestone): team, points, at_us, month. From the commit's
  ``milestone_reached`` events: the first event of a milestone is kept (``ON CONFLICT DO
  NOTHING``), as the fold keeps it (``ProjectState.milestones`` and ``milestone_points``).
- ``project_summaries`` (project): team, stage, agreed_investment, funds, signed, started,
  producing, created_us. From the committed state, written when one of them changed.
- ``intervals`` (project, kind, name): team, start_day, end_day. From the committed state: each
  stage left (``stage_entered`` to ``stage_left``, kind ``stage``) and each department decided
  (the branch's ``opened_at`` to ``decided_at``, kind ``department``); written when one
  changed, deleted when it went away (a stage entered again, a branch revoked or reopened).

This module is the one place that knows which events and state fields those rows come from; it
knows no database and decides nothing itself. What is a rule is the rules': which month a
milestone scores in (``rules.points.milestone_month``), which local day a moment counts as
(``rules.metrics.metric_day``) and which milestones mean signed, started and producing
(``rules.metrics.milestone_flags``). A change to any of them, or to what a table holds, needs a
schema migration that rebuilds the projections (``Migration(rebuild_projections=True)``).

A store writes the difference between the projection of the state it committed last (or loaded)
at the version the commit starts from and the new state's (``ProjectionWrites``); when it does
not know that state it writes the project's rows whole. The SQL the stores share is here too
(``ProjectionSQL``), with their placeholders.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

import attrs

from approvalflow.model import Event
from approvalflow.project import ProjectState
from approvalflow.rules.metrics import MetricInputs, metric_day, milestone_flags
from approvalflow.rules.points import milestone_month
from approvalflow.stores.serialization import to_epoch_us

__all__ = [
    "MILESTONE_EVENT",
    "IntervalRow",
    "MilestoneRow",
    "Projection",
    "ProjectionSQL",
    "ProjectionWrites",
    "Summary",
    "SummaryRow",
    "interval_rows",
    "metric_inputs_from_rows",
    "milestone_rows",
    "projection_of",
    "projection_writes",
    "state_milestone_rows",
    "summary_row",
    "team_inputs_from_rows",
]

MILESTONE_EVENT = "milestone_reached"
STAGE: Literal["stage"] = "stage"
DEPARTMENT: Literal["department"] = "department"

MilestoneRow = tuple[str, str, str, int, int, str]
"""(project, milestone, team, points, at_us, month)."""
SummaryRow = tuple[str, str, str, int | None, int, bool, bool, bool, int]
"""(project, team, stage, agreed_investment, funds, signed, started, producing, created_us)."""
IntervalRow = tuple[str, str, str, str, int, int]
"""(project, kind, name, team, start_day, end_day); days are ``date.toordinal()``."""

SpanKey = tuple[str, str]
"""(kind, name): ``("stage", "approval")``, ``("department", "zj")``."""


class Summary(NamedTuple):
    """The summary fields of a state, compared to decide whether to write the row."""

    team: str
    stage: str
    agreed_investment: int | None
    funds: int
    signed: bool
    started: bool
    producing: bool
    created_at: datetime


class Projection(NamedTuple):
    """A state's summary and its finished intervals (first and last moment, not yet days)."""

    summary: Summary
    spans: dict[SpanKey, tuple[datetime, datetime]]


def projection_of(state: ProjectState) -> Projection:
    """The projection of ``state`` (cheap: no day is computed until a row is written)."""
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
    return Projection(summary, spans)


def summary_row(project: str, summary: Summary) -> SummaryRow:
    return (
        project,
        summary.team,
        summary.stage,
        summary.agreed_investment,
        summary.funds,
        summary.signed,
        summary.started,
        summary.producing,
        to_epoch_us(summary.created_at),
    )


def _interval_row(
    project: str, team: str, key: SpanKey, span: tuple[datetime, datetime]
) -> IntervalRow:
    return (
        project,
        key[0],
        key[1],
        team,
        metric_day(span[0]).toordinal(),
        metric_day(span[1]).toordinal(),
    )


def interval_rows(project: str, projection: Projection) -> list[IntervalRow]:
    """Every interval row of a project with this projection."""
    team = projection.summary.team
    return [_interval_row(project, team, key, span) for key, span in projection.spans.items()]


def milestone_rows(project: str, team: str, events: Iterable[Event]) -> list[MilestoneRow]:
    """The rows of the ``milestone_reached`` events among ``events`` (in order: the first one
    of a milestone is the one kept)."""
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


def state_milestone_rows(state: ProjectState) -> list[MilestoneRow]:
    """The rows of every milestone ``state`` has reached: the same rows its events gave (the
    fold keeps each milestone's first event), for a rebuild or a bulk load without events."""
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


@attrs.frozen
class ProjectionWrites:
    """What one commit writes to the projections, in this order: ``clear_intervals`` (delete
    all of the project's intervals first), ``delete_intervals``, ``intervals`` (upserts),
    ``summary`` (an upsert, or ``None`` when unchanged), ``milestones`` (inserts that keep an
    existing row)."""

    clear_intervals: bool
    delete_intervals: list[tuple[str, str, str]]
    intervals: list[IntervalRow]
    summary: SummaryRow | None
    milestones: list[MilestoneRow]


def projection_writes(
    project: str,
    old: Projection | None,
    new: Projection,
    events: Sequence[Event],
    *,
    created: bool,
) -> ProjectionWrites:
    """The writes that take the project's rows from ``old`` to ``new``.

    ``old`` is the projection of the state at the version the commit starts from, or ``None``
    when the store does not know it: then everything is written (the intervals cleared first,
    unless the commit ``created`` the project).
    """
    team = new.summary.team
    milestones = milestone_rows(project, team, events)
    if old is None:
        return ProjectionWrites(
            not created,
            [],
            interval_rows(project, new),
            summary_row(project, new.summary),
            milestones,
        )
    deleted = [(project, kind, name) for (kind, name) in old.spans if (kind, name) not in new.spans]
    changed = [
        _interval_row(project, team, key, span)
        for key, span in new.spans.items()
        if old.spans.get(key) != span
    ]
    summary = summary_row(project, new.summary) if new.summary != old.summary else None
    return ProjectionWrites(False, deleted, changed, summary, milestones)


def metric_inputs_from_rows(
    summaries: Iterable[Sequence[Any]], intervals: Iterable[Sequence[Any]]
) -> MetricInputs:
    """``MetricInputs`` from the rows of ``ProjectionSQL.summary_totals`` (one) and
    ``ProjectionSQL.interval_counts``, without their team column."""
    totals = [0, 0, 0, 0, 0]
    for row in summaries:
        totals = [int(value or 0) for value in row]
    stage_spans: dict[tuple[str, int, int], int] = {}
    department_spans: dict[tuple[str, int, int], int] = {}
    for kind, name, start_day, end_day, count in intervals:
        spans = stage_spans if kind == STAGE else department_spans
        key = (name, int(start_day), int(end_day))
        spans[key] = spans.get(key, 0) + int(count)
    signed_count, signed_amount, started, producing, funds = totals
    return MetricInputs(
        signed_count, signed_amount, started, producing, funds, stage_spans, department_spans
    )


class ProjectionSQL:
    """The projections' statements in one dialect (``?`` for SQLite, ``%s`` for psycopg)."""

    def __init__(self, dialect: Literal["sqlite", "postgresql"]) -> None:
        self.dialect = dialect
        p = "?" if dialect == "sqlite" else "%s"
        self._p = p
        self.insert_milestone = (
            "INSERT INTO milestones (project, milestone, team, points, at_us, month) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (project, milestone) DO NOTHING"
        )
        self.upsert_summary = (
            "INSERT INTO project_summaries (project, team, stage, agreed_investment, funds, "
            f"signed, started, producing, created_us) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, "
            f"{p}, {p}) ON CONFLICT (project) DO UPDATE SET team = excluded.team, "
            "stage = excluded.stage, agreed_investment = excluded.agreed_investment, "
            "funds = excluded.funds, signed = excluded.signed, started = excluded.started, "
            "producing = excluded.producing, created_us = excluded.created_us"
        )
        self.clear_intervals = f"DELETE FROM intervals WHERE project = {p}"
        self.delete_interval = (
            f"DELETE FROM intervals WHERE project = {p} AND kind = {p} AND name = {p}"
        )
        self.upsert_interval = (
            "INSERT INTO intervals (project, kind, name, team, start_day, end_day) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (project, kind, name) DO UPDATE "
            "SET team = excluded.team, start_day = excluded.start_day, end_day = excluded.end_day"
        )
        self.clear_all = [
            "DELETE FROM milestones",
            "DELETE FROM project_summaries",
            "DELETE FROM intervals",
        ]

    def statements(self, writes: ProjectionWrites, project: str) -> list[tuple[str, list[Any]]]:
        """``writes`` as (statement, rows) pairs, each to run with ``executemany``."""
        out: list[tuple[str, list[Any]]] = []
        if writes.clear_intervals:
            out.append((self.clear_intervals, [(project,)]))
        if writes.delete_intervals:
            out.append((self.delete_interval, writes.delete_intervals))
        if writes.intervals:
            out.append((self.upsert_interval, writes.intervals))
        if writes.summary is not None:
            out.append((self.upsert_summary, [writes.summary]))
        if writes.milestones:
            out.append((self.insert_milestone, writes.milestones))
        return out

    def _where(
        self, prefix: str, projects: Collection[str] | None, month: str | None = None
    ) -> tuple[str, list[Any]]:
        p = self._p
        clauses: list[str] = []
        params: list[Any] = []
        if month is not None:
            clauses.append(f"month = {p}")
            params.append(month)
        if prefix:
            if self.dialect == "sqlite":
                clauses.append(f"substr(project, 1, {p}) = {p}")
            else:
                clauses.append(f"left(project, {p}) = {p}")
            params.extend((len(prefix), prefix))
        if projects is not None:
            if self.dialect == "sqlite":
                # One parameter however many ids (SQLite caps the number of parameters).
                clauses.append(f"project IN (SELECT value FROM json_each({p}))")
                params.append(_json_list(projects))
            else:
                clauses.append(f"project = ANY({p})")
                params.append(list(projects))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def milestone_points(
        self, month: str | None, prefix: str, projects: Collection[str] | None
    ) -> tuple[str, list[Any]]:
        """(team, points) rows: points per team, in ``month`` or over all time."""
        where, params = self._where(prefix, projects, month)
        return f"SELECT team, SUM(points) FROM milestones{where} GROUP BY team", params

    def summary_totals(
        self, projects: Collection[str] | None, *, by_team: bool
    ) -> tuple[str, list[Any]]:
        """([team,] signed_count, signed_amount, started, producing, funds) rows."""
        where, params = self._where("", projects)
        team = "team, " if by_team else ""
        group = " GROUP BY team" if by_team else ""
        return (
            f"SELECT {team}"
            "SUM(CASE WHEN signed THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN signed THEN COALESCE(agreed_investment, 0) ELSE 0 END), "
            "SUM(CASE WHEN signed AND started THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN signed AND producing THEN 1 ELSE 0 END), "
            f"SUM(funds) FROM project_summaries{where}{group}",
            params,
        )

    def interval_counts(
        self, projects: Collection[str] | None, *, by_team: bool
    ) -> tuple[str, list[Any]]:
        """([team,] kind, name, start_day, end_day, count) rows."""
        where, params = self._where("", projects)
        team = "team, " if by_team else ""
        return (
            f"SELECT {team}kind, name, start_day, end_day, COUNT(*) FROM intervals{where} "
            f"GROUP BY {team}kind, name, start_day, end_day",
            params,
        )


def _json_list(values: Collection[str]) -> str:
    return json.dumps(list(values))


def team_inputs_from_rows(
    summaries: Iterable[Sequence[Any]], intervals: Iterable[Sequence[Any]]
) -> dict[str, MetricInputs]:
    """``MetricInputs`` per team from the ``by_team`` rows of ``ProjectionSQL``."""
    summary_by_team: dict[str, list[Sequence[Any]]] = {}
    for row in summaries:
        summary_by_team.setdefault(row[0], []).append(row[1:])
    intervals_by_team: dict[str, list[Sequence[Any]]] = {}
    for row in intervals:
        intervals_by_team.setdefault(row[0], []).append(row[1:])
    return {
        team: metric_inputs_from_rows(rows, intervals_by_team.get(team, ()))
        for team, rows in sorted(summary_by_team.items())
    }
