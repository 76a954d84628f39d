"""The projections as the SQL stores keep them: read models written with each commit.

The read side defines what rows a commit produces for the reports (``approvalflow.readmodels``:
which events and state fields, which local day, which month); a store is given that definition
(a ``ReadModel``) when it is opened and keeps the rows, in the same transaction as the commit
they follow (tables in ``approvalflow.stores.schema``): ``milestones``, ``project_summaries``,
``intervals`` and ``task_rows`` (the task list's open items, each under the party that may act,
as plain columns: ``TaskRow``). This module knows those tables and no rule.

A store writes the difference between the projection of the state it committed last (or loaded)
at the version the commit starts from and the new state's (``ProjectionWrites``); when it does
not know that state it writes the project's rows whole. The SQL the stores share is here too
(``ProjectionSQL``), with their placeholders.

Amounts (``agreed_investment``, ``funds``) are exact whatever their size: ``NUMERIC`` in
PostgreSQL; in SQLite a column without affinity holding an integer, or its decimal text when it
does not fit in 64 bits. SQLite's ``SUM`` fails past 64 bits, so the reports first sum with
``total`` (a float sum, exact while the magnitudes add up to less than 2**53, as any county's
do) and, past that, again exactly: the integers' high and low 32 bits summed apart (each sum
fits in 64 bits for any number of rows) and the texts listed (``group_concat``), added up in
Python (``ProjectionSQL.totals``). No report overflows.
"""

from __future__ import annotations

import heapq
import json
import operator
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

import attrs

from approvalflow.model import Event
from approvalflow.project import ProjectState
from approvalflow.stores.serialization import to_epoch_us

__all__ = [
    "DEPARTMENT",
    "DUE_GROUP_COLUMNS",
    "STAGE",
    "CountsRow",
    "DueGroup",
    "IntervalRow",
    "MilestoneRow",
    "Projection",
    "ProjectionSQL",
    "ProjectionWrites",
    "ReadModel",
    "Summary",
    "SummaryRow",
    "TaskRow",
    "added_counts",
    "all_task_rows",
    "counts_deltas",
    "default_read_model",
    "due_group_key",
    "due_groups_of_rows",
    "interval_rows",
    "keeps_tasks",
    "projection_writes",
    "sqlite_amount",
    "summary_row",
]

STAGE: Literal["stage"] = "stage"
DEPARTMENT: Literal["department"] = "department"

MilestoneRow = tuple[str, str, str, int, int, str]
"""(project, milestone, team, points, at_us, month)."""
SummaryRow = tuple[str, str, str, int | None, int, bool, bool, bool, int]
"""(project, team, stage, agreed_investment, funds, signed, started, producing, created_us)."""
IntervalRow = tuple[str, str, str, str, int, int]
"""(project, kind, name, team, start_day, end_day); days are ``date.toordinal()``."""


class TaskRow(NamedTuple):
    """One open item of a project's task list, kept under one ``party`` that may act on it
    (``actor:guo``, ``role:reviewer``, ``dept:zj``); a ``task_rows`` row, column for column.

    What the row holds is the read side's (``approvalflow.tasks.task_rows``): the item (kind,
    the commands that answer it as one space-separated text, the department it concerns or
    ``""``, what it is about when the kind and department do not say (a rating's item) or
    ``""``, its deadline in epoch microseconds, its card) and what the query-time authorisation
    reads (the project's parties and rule set, the branch's handler and deputy), and ``state``:
    the branch's state on a branch's item, the stage's id on a stage's result, ``""`` otherwise
    (what the late items read, schema version 12). The store compares and selects rows; it
    reads none of their meaning.
    """

    project: str
    party: str
    kind: str
    department: str
    item: str
    command: str
    commands: str
    deadline_us: int | None
    card: str | None
    answered: str
    cards: str
    branch: bool
    commitment_only: bool
    handler: str | None
    deputy: str | None
    deputy_until_us: int | None
    state: str
    project_name: str
    team: str
    applicant: str
    agent: str | None
    leader: str
    fingerprint: str


TASK_COLUMNS: tuple[str, ...] = TaskRow._fields
"""The ``task_rows`` columns, in ``TaskRow`` order."""

TASK_KEY: tuple[str, ...] = ("project", "party", "kind", "department", "item", "command")
"""A task row's key: what identifies one item for one party (``item`` tells apart two items
of one kind and department, as a rating of a branch and one of the stage: ``""`` otherwise)."""

DUE_GROUP_COLUMNS: tuple[str, ...] = (
    "kind",
    "department",
    "state",
    "card",
    "fingerprint",
    "answered",
    "cards",
    "deadline_us",
)
"""The columns ``Store.due_task_groups`` groups the rows due by a moment on: the rows of one
group read as the same late items but for their project (what ``tasks.late_summary_of_groups``
needs to count them without a row each)."""


due_group_key: Callable[[TaskRow], tuple[Any, ...]] = operator.attrgetter(*DUE_GROUP_COLUMNS)
"""A row's values of ``DUE_GROUP_COLUMNS``, in that order."""


@attrs.frozen(order=True)
class DueGroup:
    """The task rows due by a moment that agree on every one of ``DUE_GROUP_COLUMNS``: how
    many there are, and the first of them by project and party (at least one)."""

    count: int
    first: tuple[TaskRow, ...]


def due_groups_of_rows(rows: Iterable[TaskRow], limit: int) -> list[DueGroup]:
    """``rows`` grouped on ``DUE_GROUP_COLUMNS``, each group's first ``max(limit, 1)`` rows by
    project and party: what a store that keeps its rows in memory answers
    ``due_task_groups`` with, and the SQL stores' query gives."""
    by_key: dict[tuple[Any, ...], list[TaskRow]] = {}
    for row in rows:
        key = due_group_key(row)
        found = by_key.get(key)
        if found is None:
            found = by_key[key] = []
        found.append(row)
    keep = max(limit, 1)
    return [
        DueGroup(len(found), tuple(heapq.nsmallest(keep, found, key=_project_party)))
        for found in by_key.values()
    ]


def _project_party(row: TaskRow) -> tuple[str, str]:
    return (row.project, row.party)


CountsRow = tuple[str, str, int, int, int, int, int, int, int]
"""A ``team_month_counts`` row or one project's part of it: team, month (``""``: not signed),
projects, signed, signed amount, started, producing, performing, funds."""

SpanKey = tuple[str, str]
"""(kind, name): ``("stage", "approval")``, ``("department", "zj")``."""

_INT64 = range(-(2**63), 2**63)


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
    """A state's summary, its finished intervals (first and last moment, not yet days) and,
    when the read model keeps the task list, its task rows in parts (``None`` when it does
    not): a part the commit did not change is the very tuple the old projection had."""

    summary: Summary
    spans: dict[SpanKey, tuple[datetime, datetime]]
    tasks: Mapping[str, tuple[TaskRow, ...]] | None = None
    counts: CountsRow | None = None
    """The project's own row of ``team_month_counts`` (``None``: its read model keeps none)."""


class ReadModel(Protocol):
    """What a store needs of the read side to keep its report tables (``approvalflow.readmodels``
    defines the built-in one, ``REPORTS``)."""

    def projection(self, state: ProjectState) -> Projection:
        """The summary, finished intervals and task rows of ``state``. A read model that
        ``keeps_tasks`` also takes ``since``, (the state the commit started from, its
        projection), to reuse the task rows that did not change."""

    def day(self, moment: datetime) -> int:
        """The day (``date.toordinal()``) an interval's end ``moment`` counts as."""

    def milestone_rows(
        self, project: str, team: str, events: Iterable[Event]
    ) -> list[MilestoneRow]:
        """The milestone rows a commit's ``events`` add (the first of a milestone is kept)."""

    def state_milestone_rows(self, state: ProjectState) -> list[MilestoneRow]:
        """Every milestone row of ``state`` (a rebuild from states)."""

    def metric_inputs(
        self, totals: Sequence[Any] | None, intervals: Iterable[Sequence[Any]]
    ) -> Any:
        """What a report is computed from, out of ``ProjectionSQL.summary_totals`` (one row or
        ``None``) and ``ProjectionSQL.interval_counts`` rows, without their team column."""

    def points_of_states(self, states: Iterable[ProjectState], month: str | None) -> dict[str, int]:
        """Points per team over loaded states (for a store that keeps states, not rows)."""

    def points_by_milestone_of_states(
        self, states: Iterable[ProjectState], month: str | None
    ) -> dict[str, dict[str, int]]:
        """Points per team and milestone over loaded states (the memory store's answer)."""

    def metric_inputs_of_states(self, states: Iterable[ProjectState]) -> Any:
        """``metric_inputs`` over loaded states."""


def keeps_tasks(read_model: ReadModel) -> bool:
    """Whether ``read_model`` gives task rows (its ``keeps_tasks``; one that does not say keeps
    none: a store then answers ``task_rows`` with ``None`` and the task list reads every
    project)."""
    return bool(getattr(read_model, "keeps_tasks", False))


def default_read_model() -> ReadModel:
    """The read side's built-in reports (``approvalflow.readmodels.REPORTS``), for a store
    opened without a read model of its own. Imported on first use: the read side depends on the
    stores, never the other way round."""
    from approvalflow.readmodels import REPORTS

    return REPORTS


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
    read_model: ReadModel, project: str, team: str, key: SpanKey, span: tuple[datetime, datetime]
) -> IntervalRow:
    return (project, key[0], key[1], team, read_model.day(span[0]), read_model.day(span[1]))


def interval_rows(read_model: ReadModel, project: str, projection: Projection) -> list[IntervalRow]:
    """Every interval row of a project with this projection."""
    team = projection.summary.team
    return [
        _interval_row(read_model, project, team, key, span)
        for key, span in projection.spans.items()
    ]


@attrs.frozen
class ProjectionWrites:
    """What one commit writes to the projections, in this order: ``clear_intervals`` (delete
    all of the project's intervals first), ``delete_intervals``, ``intervals`` (upserts),
    ``summary`` (an upsert, or ``None`` when unchanged), ``milestones`` (inserts that keep an
    existing row), then the task rows: ``clear_tasks`` (delete all of the project's first),
    ``delete_tasks`` (keys, ``TASK_KEY``), ``tasks`` (inserts), and ``counts``. Only the task
    rows that differ from the old projection's are written."""

    clear_intervals: bool
    delete_intervals: list[tuple[str, str, str]]
    intervals: list[IntervalRow]
    summary: SummaryRow | None
    milestones: list[MilestoneRow]
    clear_tasks: bool = False
    delete_tasks: list[tuple[str, ...]] = attrs.field(factory=list)
    tasks: list[TaskRow] = attrs.field(factory=list)
    counts: list[CountsRow] = attrs.field(factory=list)
    """What to add to ``team_month_counts`` (upserts that add: the new counts less the old)."""


def projection_writes(
    read_model: ReadModel,
    project: str,
    old: Projection | None,
    new: Projection,
    events: Sequence[Event],
    *,
    created: bool,
    before: Projection | None = None,
) -> ProjectionWrites:
    """The writes that take the project's rows from ``old`` to ``new``.

    ``old`` is the projection of the state at the version the commit starts from, or ``None``
    when the store does not know it: then everything is written (the intervals cleared first,
    unless the commit ``created`` the project). The counts are the new projection's less
    the old one's, or ``before``'s (the state at that version, read by the store) when the
    store does not know ``old``.
    """
    team = new.summary.team
    milestones = read_model.milestone_rows(project, team, events)
    was = old if old is not None else before
    counts = counts_deltas(None if created or was is None else was.counts, new.counts)
    if old is None:
        return ProjectionWrites(
            not created,
            [],
            interval_rows(read_model, project, new),
            summary_row(project, new.summary),
            milestones,
            clear_tasks=not created and new.tasks is not None,
            tasks=all_task_rows(new),
            counts=counts,
        )
    deleted = [(project, kind, name) for (kind, name) in old.spans if (kind, name) not in new.spans]
    changed = [
        _interval_row(read_model, project, team, key, span)
        for key, span in new.spans.items()
        if old.spans.get(key) != span
    ]
    summary = summary_row(project, new.summary) if new.summary != old.summary else None
    writes = ProjectionWrites(False, deleted, changed, summary, milestones, counts=counts)
    new_parts, old_parts = new.tasks, old.tasks
    if new_parts is None or new_parts is old_parts:
        return writes
    if old_parts is None:
        writes.tasks.extend(all_task_rows(new))
        return attrs.evolve(writes, clear_tasks=True)
    for key in new_parts.keys() | old_parts.keys():
        old_rows, new_rows = old_parts.get(key, ()), new_parts.get(key, ())
        if old_rows is new_rows or old_rows == new_rows:
            continue
        gone, came = set(old_rows), set(new_rows)
        writes.delete_tasks.extend(
            (r.project, r.party, r.kind, r.department, r.item, r.command) for r in gone - came
        )
        writes.tasks.extend(came - gone)
    return writes


def counts_deltas(old: CountsRow | None, new: CountsRow | None) -> list[CountsRow]:
    """The rows to add to ``team_month_counts`` to take a project's part from ``old`` to
    ``new``: none when they are the same, else ``new`` less ``old``, one row a key."""
    if old == new:
        return []
    found: dict[tuple[str, str], list[int]] = {}
    for row, sign in ((old, -1), (new, 1)):
        if row is None:
            continue
        team, month, *values = row
        total = found.setdefault((team, month), [0] * len(values))
        for i, value in enumerate(values):
            total[i] += sign * value
    return [
        (team, month, *values)  # type: ignore[misc]
        for (team, month), values in sorted(found.items())
        if any(values)
    ]


def added_counts(held: CountsRow | None, row: CountsRow) -> CountsRow:
    """``row`` added to ``held``, a row of the same team and month (or ``None``)."""
    if held is None:
        return row
    team, month, *values = held
    return (team, month, *(a + b for a, b in zip(values, row[2:], strict=True)))  # type: ignore[return-value]


def all_task_rows(projection: Projection) -> list[TaskRow]:
    """Every task row of ``projection`` (none when its read model keeps no task rows)."""
    return [row for rows in (projection.tasks or {}).values() for row in rows]


def sqlite_amount(value: int | None) -> int | str | None:
    """An amount as SQLite keeps it: the integer when it fits in 64 bits, else its text."""
    if value is None or value in _INT64:
        return value
    return str(value)


class ProjectionSQL:
    """The projections' statements in one dialect (``?`` for SQLite, ``%s`` for psycopg)."""

    def __init__(self, dialect: Literal["sqlite", "postgresql"], county: str = "default") -> None:
        # ``county`` is a checked key (``SQLStatements``): written into the text as a literal.
        self.dialect = dialect
        p = "?" if dialect == "sqlite" else "%s"
        self._p = p
        c = f"'{county}'"
        self._county = c
        mine = f"county = {c}"
        self.insert_milestone = (
            "INSERT INTO milestones (county, project, milestone, team, points, at_us, month) "
            f"VALUES ({c}, {p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (county, project, milestone) DO NOTHING"
        )
        self.upsert_summary = (
            "INSERT INTO project_summaries (county, project, team, stage, agreed_investment, "
            f"funds, signed, started, producing, created_us) VALUES ({c}, {p}, {p}, {p}, {p}, "
            f"{p}, {p}, {p}, {p}, {p}) ON CONFLICT (county, project) DO UPDATE "
            "SET team = excluded.team, "
            "stage = excluded.stage, agreed_investment = excluded.agreed_investment, "
            "funds = excluded.funds, signed = excluded.signed, started = excluded.started, "
            "producing = excluded.producing, created_us = excluded.created_us"
        )
        self.clear_intervals = f"DELETE FROM intervals WHERE {mine} AND project = {p}"
        self.delete_interval = (
            f"DELETE FROM intervals WHERE {mine} AND project = {p} AND kind = {p} AND name = {p}"
        )
        self.upsert_interval = (
            "INSERT INTO intervals (county, project, kind, name, team, start_day, end_day) "
            f"VALUES ({c}, {p}, {p}, {p}, {p}, {p}, {p}) "
            "ON CONFLICT (county, project, kind, name) DO UPDATE "
            "SET team = excluded.team, start_day = excluded.start_day, end_day = excluded.end_day"
        )
        # The projects that reached a milestone in a month (``milestones_by_month_kind``).
        self.milestone_projects = (
            f"SELECT project FROM milestones WHERE {mine} AND month = {p} AND milestone = {p} "
            "ORDER BY project"
        )
        self.clear_tasks = f"DELETE FROM task_rows WHERE {mine} AND project = {p}"
        self.delete_task = f"DELETE FROM task_rows WHERE {mine} AND " + " AND ".join(
            f"{column} = {p}" for column in TASK_KEY
        )
        self.insert_task = (
            f"INSERT INTO task_rows (county, {', '.join(TASK_COLUMNS)}) "
            f"VALUES ({c}, {', '.join([p] * len(TASK_COLUMNS))})"
        )
        counted = ("projects", "signed", "signed_amount", "started", "producing")
        added = ", ".join(
            f"{column} = team_month_counts.{column} + excluded.{column}"
            for column in (*counted, "performing", "funds")
        )
        self.add_counts = (
            "INSERT INTO team_month_counts (county, team, month, projects, signed, "
            "signed_amount, started, producing, performing, funds) "
            f"VALUES ({c}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}) "
            f"ON CONFLICT (county, team, month) DO UPDATE SET {added}"
        )
        self.team_month_counts = (
            "SELECT team, month, projects, signed, signed_amount, started, producing, "
            f"performing, funds FROM team_month_counts WHERE {mine} AND projects <> 0"
        )
        self.clear_all = [
            f"DELETE FROM team_month_counts WHERE {mine}",
            f"DELETE FROM milestones WHERE {mine}",
            f"DELETE FROM project_summaries WHERE {mine}",
            f"DELETE FROM intervals WHERE {mine}",
            f"DELETE FROM task_rows WHERE {mine}",
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
            out.append((self.upsert_summary, [self.summary_params(writes.summary)]))
        if writes.milestones:
            out.append((self.insert_milestone, writes.milestones))
        if writes.clear_tasks:
            out.append((self.clear_tasks, [(project,)]))
        if writes.delete_tasks:
            out.append((self.delete_task, writes.delete_tasks))
        if writes.tasks:
            out.append((self.insert_task, writes.tasks))
        if writes.counts:
            out.append((self.add_counts, [self.counts_params(row) for row in writes.counts]))
        return out

    def counts_params(self, row: CountsRow) -> Sequence[Any]:
        """``add_counts``' parameters for ``row`` (SQLite: an amount past 64 bits as its text,
        which the sum turns into a float: ``team_month_counts`` then refuses to answer)."""
        if self.dialect != "sqlite":
            return row
        team, month, projects, signed, amount, started, producing, performing, funds = row
        return (
            team,
            month,
            projects,
            signed,
            sqlite_amount(amount),
            started,
            producing,
            performing,
            sqlite_amount(funds),
        )

    def due_task_rows(self, kinds: Collection[str], until_us: int) -> tuple[str, list[Any]]:
        """Every ``task_rows`` row of one of ``kinds`` whose deadline is at or before
        ``until_us`` (a range of ``task_rows_due``)."""
        where, params = self._due_where(kinds, until_us)
        return f"SELECT {', '.join(TASK_COLUMNS)} FROM task_rows{where}", params

    def due_task_counts(self, kinds: Collection[str], until_us: int) -> tuple[str, list[Any]]:
        """(``DUE_GROUP_COLUMNS``..., count) rows: the ``due_task_rows`` rows counted by group,
        read from the ``task_rows_due`` index alone."""
        group = ", ".join(DUE_GROUP_COLUMNS)
        where, params = self._due_where(kinds, until_us)
        return f"SELECT {group}, COUNT(*) FROM task_rows{where} GROUP BY {group}", params

    def due_task_first(self, first: int) -> str:
        """The first ``first`` rows of one group by project and party (SQLite: a range of the
        ``task_rows_due`` index), its ``DUE_GROUP_COLUMNS`` values the parameters, in order."""
        p = self._p
        match = " AND ".join(
            f"{column} IS {p}" if column == "card" else f"{column} = {p}"
            for column in DUE_GROUP_COLUMNS
        )
        return (
            f"SELECT {', '.join(TASK_COLUMNS)} FROM task_rows WHERE county = {self._county} "
            f"AND {match} ORDER BY project, party LIMIT {int(first)}"
        )

    def due_task_groups(
        self, kinds: Collection[str], until_us: int, first: int
    ) -> tuple[str, list[Any]]:
        """PostgreSQL: each group's count and first ``first`` rows in one statement (the
        counts, then a lateral range of the index per group): (``TASK_COLUMNS``..., count)."""
        group = ", ".join(DUE_GROUP_COLUMNS)
        where, params = self._due_where(kinds, until_us)
        match = " AND ".join(
            f"t.{column} IS NOT DISTINCT FROM g.{column}"
            if column == "card"
            else f"t.{column} = g.{column}"
            for column in DUE_GROUP_COLUMNS
        )
        columns = ", ".join(f"t.{column}" for column in TASK_COLUMNS)
        return (
            f"SELECT {columns}, g.due_count FROM (SELECT {group}, COUNT(*) AS due_count "
            f"FROM task_rows{where} GROUP BY {group}) AS g CROSS JOIN LATERAL "
            f"(SELECT * FROM task_rows AS t WHERE t.county = {self._county} AND {match} "
            f"ORDER BY t.project, t.party LIMIT {int(first)}) AS t",
            params,
        )

    def _due_where(self, kinds: Collection[str], until_us: int) -> tuple[str, list[Any]]:
        p = self._p
        if self.dialect == "sqlite":
            kind = f"kind IN (SELECT value FROM json_each({p}))"
            params: list[Any] = [_json_list(kinds)]
        else:
            kind = f"kind = ANY({p})"
            params = [list(kinds)]
        return (
            f" WHERE county = {self._county} AND deadline_us <= {p} AND {kind}",
            [until_us, *params],
        )

    def task_rows(self, parties: Collection[str]) -> tuple[str, list[Any]]:
        """Every ``task_rows`` row kept under one of ``parties`` (a range of the key each)."""
        p = self._p
        if self.dialect == "sqlite":
            where = f"party IN (SELECT value FROM json_each({p}))"
            params: list[Any] = [_json_list(parties)]
        else:
            where = f"party = ANY({p})"
            params = [list(parties)]
        return (
            f"SELECT {', '.join(TASK_COLUMNS)} FROM task_rows "
            f"WHERE county = {self._county} AND {where}",
            params,
        )

    def summary_params(self, row: SummaryRow) -> Sequence[Any]:
        """``upsert_summary``'s parameters for ``row`` (SQLite binds no integer past 64 bits:
        a larger amount goes as its text, see ``sqlite_amount``)."""
        if self.dialect != "sqlite":
            return row
        project, team, stage, agreed, funds, *rest = row
        return (project, team, stage, sqlite_amount(agreed), sqlite_amount(funds), *rest)

    def _where(
        self, prefix: str, projects: Collection[str] | None, month: str | None = None
    ) -> tuple[str, list[Any]]:
        p = self._p
        clauses: list[str] = [f"county = {self._county}"]
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
        return " WHERE " + " AND ".join(clauses), params

    def milestone_points(
        self, month: str | None, prefix: str, projects: Collection[str] | None
    ) -> tuple[str, list[Any]]:
        """(team, points) rows: points per team, in ``month`` or over all time."""
        where, params = self._where(prefix, projects, month)
        return f"SELECT team, SUM(points) FROM milestones{where} GROUP BY team", params

    def milestone_points_by_kind(
        self, month: str | None, prefix: str, projects: Collection[str] | None
    ) -> tuple[str, list[Any]]:
        """(team, milestone, points) rows: the points per team split by milestone."""
        where, params = self._where(prefix, projects, month)
        return (
            f"SELECT team, milestone, SUM(points) FROM milestones{where} GROUP BY team, milestone",
            params,
        )

    def summary_totals(
        self, projects: Collection[str] | None, *, by_team: bool, exact: bool = False
    ) -> tuple[str, list[Any]]:
        """([team,] signed_count, the signed amount's columns, started, producing, the funds'
        columns) rows, read by ``totals``; ``exact`` for SQLite's exact sums."""
        where, params = self._where("", projects)
        team = "team, " if by_team else ""
        group = " GROUP BY team" if by_team else ""
        amount = self._exact_sum if exact else self._sum
        return (
            f"SELECT {team}"
            "SUM(CASE WHEN signed THEN 1 ELSE 0 END), "
            f"{amount('CASE WHEN signed THEN agreed_investment END')}, "
            "SUM(CASE WHEN signed AND started THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN signed AND producing THEN 1 ELSE 0 END), "
            f"{amount('funds')} FROM project_summaries{where}{group}",
            params,
        )

    def _sum(self, value: str) -> str:
        if self.dialect != "sqlite":
            return f"SUM({value})"  # NUMERIC: exact
        # A float sum that is exact while the sum of the magnitudes stays below 2**53 (every
        # partial sum is then an integer a float holds); ``totals`` checks that bound.
        return f"total({value}), total(abs({value}))"

    def _exact_sum(self, value: str) -> str:
        """SQLite: the integers' high and low 32 bits summed apart, and the texts listed."""
        integer = f"CASE WHEN typeof({value}) = 'integer' THEN {value} END"
        return (
            f"SUM(({integer}) >> 32), SUM(({integer}) & 4294967295), "
            f"group_concat(CASE WHEN typeof({value}) = 'text' THEN {value} END)"
        )

    def totals(
        self, row: Sequence[Any], *, exact: bool = False
    ) -> tuple[int, int, int, int, int] | None:
        """A row of ``summary_totals`` (without its team) as (signed count, signed amount,
        started, producing, funds); ``None`` when the sums must be read again ``exact``."""
        if self.dialect != "sqlite":
            signed, amount, started, producing, funds = (int(value or 0) for value in row)
            return signed, amount, started, producing, funds
        if exact:
            signed, high, low, texts, started, producing, funds_high, funds_low, funds_texts = row
            return (
                int(signed or 0),
                _added(high, low, texts),
                int(started or 0),
                int(producing or 0),
                _added(funds_high, funds_low, funds_texts),
            )
        signed, amount, amount_size, started, producing, funds, funds_size = row
        if max(amount_size or 0, funds_size or 0) >= _EXACT_FLOAT:
            return None
        return (
            int(signed or 0),
            int(amount or 0),
            int(started or 0),
            int(producing or 0),
            int(funds or 0),
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


_EXACT_FLOAT = 2**53


def _added(high: int | None, low: int | None, texts: str | None) -> int:
    total = ((high or 0) << 32) + (low or 0)
    if texts:
        total += sum(int(text) for text in texts.split(","))
    return total


def _json_list(values: Collection[str]) -> str:
    return json.dumps(list(values))


def team_rows(
    summaries: Iterable[Sequence[Any]], intervals: Iterable[Sequence[Any]]
) -> dict[str, tuple[Sequence[Any] | None, list[Sequence[Any]]]]:
    """The ``by_team`` rows of ``ProjectionSQL`` split by their team column, for every team with
    a summary row, in team order."""
    summary_by_team: dict[str, Sequence[Any]] = {}
    for row in summaries:
        summary_by_team[row[0]] = row[1:]
    intervals_by_team: dict[str, list[Sequence[Any]]] = {}
    for row in intervals:
        intervals_by_team.setdefault(row[0], []).append(row[1:])
    return {
        team: (totals, intervals_by_team.get(team, []))
        for team, totals in sorted(summary_by_team.items())
    }
