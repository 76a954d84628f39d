"""What the service reads and answers: attrs classes, from which the OpenAPI document is made.

They are the service's own shapes, copied from the engine's objects field by field, so the
published contract changes only when one of these does (and ``docs/openapi.json`` with it),
never because an internal class gained a field.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

import attrs

from approvalflow.calendar import Due
from approvalflow.model import CommandResult, Event, Notice
from approvalflow.project import Branch, ProjectState, Rating, StageRun
from approvalflow.rules.holdups import Holdup
from approvalflow.rules.points import LeaderboardRow
from approvalflow.rules.preview import Preview, StagePreview
from approvalflow.rules.stages import current_stage
from approvalflow.tasks import DoneItem, TaskItem

__all__ = [
    "AuditFinding",
    "AuditHead",
    "AuditReport",
    "BranchView",
    "CommandOutcome",
    "CountyRankView",
    "DeadlineView",
    "DepartmentRankView",
    "DoneView",
    "EventView",
    "HistoryPage",
    "HoldupView",
    "IntakeRequest",
    "IntakeView",
    "LeaderboardEntry",
    "NewProject",
    "NoticeView",
    "OutboxAck",
    "OutboxClaim",
    "OutboxFailure",
    "PreviewBranch",
    "PreviewRequest",
    "PreviewStage",
    "PreviewView",
    "Problem",
    "ProjectView",
    "RatingView",
    "RedBlackView",
    "StageView",
    "TaskView",
]


@attrs.frozen
class Problem:
    """RFC 9457 problem details; ``code`` is the library's stable error code."""

    type: str
    title: str
    status: int
    detail: str
    code: str


@attrs.frozen
class NewProject:
    """``POST /projects``: the new project's id and its fields (WORKFLOW.md rule 1)."""

    id: str
    fields: dict[str, Any]


@attrs.frozen
class EventView:
    project: str
    version: int
    type: str
    at: datetime
    payload: dict[str, Any]
    by: str | None = None
    on_behalf_of: str | None = None
    command_id: str | None = None

    @classmethod
    def of(cls, event: Event) -> EventView:
        return cls(
            event.project,
            event.version,
            event.type,
            event.at,
            dict(event.payload),
            event.by,
            event.on_behalf_of,
            event.command_id,
        )


@attrs.frozen
class NoticeView:
    id: str
    kind: str
    project: str
    recipients: list[str]
    at: datetime
    fields: dict[str, Any]

    @classmethod
    def of(cls, notice: Notice) -> NoticeView:
        return cls(
            notice.id,
            notice.kind,
            notice.project,
            list(notice.recipients),
            notice.at,
            dict(notice.fields),
        )


@attrs.frozen
class CommandOutcome:
    """What a command did (``replayed``: an ``Idempotency-Key`` seen before, nothing written)."""

    project: str
    command: str
    version: int
    state: str
    events: list[EventView]
    notices: list[NoticeView]
    replayed: bool

    @classmethod
    def of(cls, result: CommandResult) -> CommandOutcome:
        return cls(
            result.project,
            result.command,
            result.version,
            result.state,
            [EventView.of(e) for e in result.events],
            [NoticeView.of(n) for n in result.notices],
            result.replayed,
        )


@attrs.frozen
class BranchView:
    department: str
    state: str
    opened_at: datetime
    due: datetime | None
    provisional: bool
    handler: str | None
    deputy: str | None
    outstanding: list[str]
    corrections: list[str]
    supply_due: datetime | None
    commitment: bool
    verify_due: datetime | None
    # The approval stage the branch belongs to; null without stages.
    stage: str | None

    @classmethod
    def of(cls, branch: Branch) -> BranchView:
        return cls(
            branch.department,
            branch.state,
            branch.opened_at,
            branch.due,
            branch.provisional,
            branch.handler,
            branch.deputy,
            sorted(branch.outstanding),
            sorted(branch.corrections),
            branch.supply_due,
            branch.commitment,
            branch.verify_due,
            branch.stage,
        )


@attrs.frozen
class StageView:
    """One approval stage as it ran (审批阶段): its lead, departments, deadline and whether the
    lead issued the combined result (统一出件)."""

    id: str
    name: str
    lead: str
    departments: list[str]
    limit_wd: int
    opened_at: datetime
    due: datetime | None
    provisional: bool
    issued_at: datetime | None
    issued_by: str | None

    @classmethod
    def of(cls, run: StageRun) -> StageView:
        return cls(
            run.id,
            run.name,
            run.lead,
            list(run.departments),
            run.limit_wd,
            run.opened_at,
            run.due,
            run.provisional,
            run.issued_at,
            run.issued_by,
        )


@attrs.frozen
class RatingView:
    """The applicant's rating of one item (好差评) and its rectification, if a bad one opened
    it (``open``, ``rectified``, ``confirmed``)."""

    item: str
    department: str
    score: int
    at: datetime
    text: str | None
    rectification: str | None
    due: datetime | None

    @classmethod
    def of(cls, rating: Rating) -> RatingView:
        return cls(
            rating.item,
            rating.department,
            rating.score,
            rating.at,
            rating.text,
            rating.rectification,
            rating.due,
        )


@attrs.frozen
class DeadlineView:
    """One open deadline, by its scenario key (``P1.approval.zj``); ``day`` is its last day."""

    key: str
    at: datetime
    day: str
    provisional: bool

    @classmethod
    def of(cls, key: str, due: Due) -> DeadlineView:
        return cls(key, due.at, due.day.isoformat(), due.provisional)


@attrs.frozen
class HoldupView:
    """What the project waits on: a department's review or branch, or the applicant."""

    waiting_on: str
    what: str
    due: datetime | None
    state: str
    handler: str | None
    deputy: str | None
    card: str | None

    @classmethod
    def of(cls, holdup: Holdup) -> HoldupView:
        return cls(
            holdup.waiting_on,
            holdup.what,
            holdup.due,
            holdup.state,
            holdup.handler,
            holdup.deputy,
            holdup.card,
        )


@attrs.frozen
class ProjectView:
    """A project now: its stage, branches, open deadlines and who holds it up."""

    id: str
    name: str
    stage: str
    version: int
    team: str
    applicant: str
    leader: str
    recruiter: str
    department: str
    agent: str | None
    investment: int
    agreed_investment: int | None
    funds: int
    created_at: datetime
    branches: list[BranchView]
    deadlines: list[DeadlineView]
    holdups: list[HoldupView]
    # Approval in stages: each stage opened so far, in order (empty without stages), the running
    # one's id, and the total limit over all of them.
    approval_stages: list[StageView]
    current_approval_stage: str | None
    total_due: datetime | None
    ratings: list[RatingView]

    @classmethod
    def of(
        cls, state: ProjectState, deadlines: dict[str, Due], holdups: list[Holdup]
    ) -> ProjectView:
        return cls(
            state.id,
            state.name,
            state.stage,
            state.version,
            state.team,
            state.applicant,
            state.leader,
            state.recruiter,
            state.department,
            state.agent,
            state.investment,
            state.agreed_investment,
            state.funds,
            state.created_at,
            [BranchView.of(b) for b in state.branches.values()],
            [DeadlineView.of(key, due) for key, due in sorted(deadlines.items())],
            [HoldupView.of(h) for h in holdups],
            [StageView.of(run) for run in state.stage_runs.values()],
            running.id if (running := current_stage(state)) is not None else None,
            state.total_due,
            [RatingView.of(r) for r in state.ratings.values()],
        )


@attrs.frozen
class HistoryPage:
    """Events after ``after``, oldest first; ask again with ``next_after`` until it is null."""

    project: str
    events: list[EventView]
    next_after: int | None


@attrs.frozen
class TaskView:
    project: str
    project_name: str
    kind: str
    commands: list[str]
    department: str | None
    deadline: datetime | None
    working_days_left: int | None
    card: str | None
    # The rated item a rectification is about (the commands' ``item`` argument); else null.
    item: str | None = None

    @classmethod
    def of(cls, item: TaskItem) -> TaskView:
        return cls(
            item.project,
            item.project_name,
            item.kind,
            list(item.commands),
            item.department,
            item.deadline,
            item.working_days_left,
            item.card,
            item.item,
        )


@attrs.frozen
class DoneView:
    project: str
    project_name: str
    what: str
    at: datetime
    version: int
    events: list[str]
    by: str | None
    on_behalf_of: str | None

    @classmethod
    def of(cls, item: DoneItem) -> DoneView:
        return cls(
            item.project,
            item.project_name,
            item.what,
            item.at,
            item.version,
            list(item.events),
            item.by,
            item.on_behalf_of,
        )


@attrs.frozen
class PreviewRequest:
    """``POST /preview``: a project's fields, and when it would be submitted and applied for
    (both default to now)."""

    fields: dict[str, Any]
    start: datetime | None = None
    approval_start: datetime | None = None


@attrs.frozen
class PreviewBranch:
    department: str
    time_limit_wd: int
    due: DeadlineView
    requires: list[str]
    commitment_eligible: bool
    deemed_approval: bool
    # Under stages: the stage the branch opens in (a department may be in several).
    stage: str | None


@attrs.frozen
class PreviewStage:
    """An approval stage's dates, were it to open when the one before ends at its limit."""

    id: str
    name: str
    lead: str
    departments: list[str]
    limit_wd: int
    opens: datetime
    due: DeadlineView

    @classmethod
    def of(cls, stage: StagePreview) -> PreviewStage:
        return cls(
            stage.id,
            stage.name,
            stage.lead,
            list(stage.departments),
            stage.limit_wd,
            stage.opens,
            DeadlineView.of(f"stage.{stage.id}", stage.due),
        )


@attrs.frozen
class PreviewView:
    pre_review_due: DeadlineView
    pre_review_members: list[str]
    approval_start: datetime
    approval_due: DeadlineView
    branches: list[PreviewBranch]
    # Approval in stages (empty without), and the total limit over them.
    stages: list[PreviewStage]
    total_due: DeadlineView | None

    @classmethod
    def of(cls, preview: Preview) -> PreviewView:
        return cls(
            DeadlineView.of("pre_review", preview.pre_review_due),
            list(preview.pre_review_members),
            preview.approval_start,
            DeadlineView.of("approval", preview.approval_due),
            [
                PreviewBranch(
                    b.department,
                    b.time_limit_wd,
                    DeadlineView.of(f"approval.{b.department}", b.due),
                    list(b.requires),
                    b.commitment_eligible,
                    b.deemed_approval,
                    b.stage,
                )
                for b in preview.branches
            ],
            [PreviewStage.of(stage) for stage in preview.stages],
            DeadlineView.of("total", preview.total_due) if preview.total_due else None,
        )


@attrs.frozen
class LeaderboardEntry:
    rank: int
    team: str
    points: int
    previous_rank: int | None
    previous_points: int

    @classmethod
    def of(cls, row: LeaderboardRow) -> LeaderboardEntry:
        return cls(row.rank, row.team, row.points, row.previous_rank, row.previous_points)


@attrs.frozen
class AuditHead:
    """The store's head: its event count and a digest of every project's chain head. It
    matches only the store as it was (any commit moves it); a live store is anchored by
    sealed checkpoints (``approvalflow audit seal``)."""

    count: int
    hash: str


@attrs.frozen
class AuditFinding:
    """One thing the verification found wrong: in which project (null: the store as a whole),
    what (``chain``, ``version``, ``snapshot``, ``timer``, ``command``, ``projection``,
    ``replay``, ``legacy``, ``checkpoint``, ``expected``), where, and what is wrong there."""

    project: str | None
    what: str
    where: str
    detail: str


@attrs.frozen
class AuditReport:
    """``ok`` when nothing was found; ``reason`` and ``first_bad_*`` name the first finding,
    ``findings`` all of them (timers and the newest checkpoint's heads included). ``anchor``
    describes the checkpoint whose signature was checked with the service's public key;
    otherwise ``unanchored`` says why nothing vouches for the store."""

    ok: bool
    count: int
    head: str
    first_bad_project: str | None
    first_bad_version: int | None
    reason: str | None
    projects: int
    findings: list[AuditFinding]
    anchor: str | None
    unanchored: str | None


@attrs.frozen
class OutboxClaim:
    """A notice claimed for delivery: acknowledge it before ``claimed_until``, or another
    caller may claim it again."""

    notice: NoticeView
    attempts: int
    last_error: str | None
    claimed_until: datetime


@attrs.frozen
class OutboxAck:
    """``POST /outbox/ack``: notices delivered (they leave the outbox)."""

    notice_ids: list[str]


@attrs.frozen
class OutboxFailure:
    """``POST /outbox/fail``: a notice that could not be delivered, tried again after
    ``retry_after_seconds``."""

    notice_id: str
    error: str
    retry_after_seconds: int = 300


def _rate(value: Any) -> str | int | None:
    """A measure as JSON: an exact fraction as a decimal string (6 places), a count as is."""
    from decimal import Decimal

    if isinstance(value, Fraction):
        return str(round(Decimal(value.numerator) / Decimal(value.denominator), 6))
    return None if value is None else int(value)


@attrs.frozen
class CountyRankView:
    """A county's place on one measure: ``rank`` (``null`` without a value), the county's id
    and name, and the ``value`` (a rate as a decimal string, an amount in yuan, a count)."""

    rank: int | None
    county: str
    name: str
    value: str | int | None

    @classmethod
    def of(cls, row: Any) -> CountyRankView:
        return cls(row.rank, row.county, row.name, _rate(row.value))


@attrs.frozen
class RedBlackView:
    """红黑榜 of one measure: the best counties first, and the worst first."""

    measure: str
    red: list[CountyRankView]
    black: list[CountyRankView]


@attrs.frozen
class DepartmentRankView:
    """A county's department ranked across the province: late items now, then the average
    working days it took per decided branch (a decimal string; ``null`` when none)."""

    rank: int
    county: str
    county_name: str
    department: str
    department_name: str
    late: int
    avg_days: str | None
    decided: int

    @classmethod
    def of(cls, row: Any) -> DepartmentRankView:
        avg = _rate(row.avg_days)
        return cls(
            row.rank,
            row.county,
            row.county_name,
            row.department,
            row.department_name,
            row.late,
            None if avg is None else str(avg),
            row.decided,
        )


@attrs.frozen
class IntakeRequest:
    """``POST /intakes``: an application accepted at the caller's county's hall for a project
    of ``county``: its ``id``, its ``fields`` (as ``create`` takes them), and the ``hall``."""

    county: str
    id: str
    fields: dict[str, Any]
    hall: str | None = None


@attrs.frozen
class HeldByView:
    """Who holds a project up: a department's id (or ``applicant``, ``leader``) and name."""

    party: str
    name: str


@attrs.frozen
class IntakeView:
    """A project the caller's county took in for another county, where it stands now."""

    project: str
    name: str
    county: str
    county_name: str
    stage: str
    stage_name: str
    held_by: list[HeldByView]
    due: datetime | None
    accepted_at: datetime
    accepted_by: str

    @classmethod
    def of(cls, status: Any) -> IntakeView:
        return cls(
            status.project,
            status.name,
            status.county,
            status.county_name,
            status.stage,
            status.stage_name,
            [HeldByView(party, name) for party, name in status.held_by],
            status.due,
            status.accepted_at,
            status.accepted_by,
        )
