"""Huguan 壶关 (seed 000, 2025-03): the recruiter owns the landing, the issue loop, the monthly
horse-race board and targets split down to the towns.

Rules, and the seed line each comes from:

- **招落一体: the recruiter is the landing owner.** "明确招引责任人也是落地责任人". From signing on,
  the issue loop belongs to the project's recruiter (the actor who created it): only that
  recruiter, the enterprise (or its agent) and the project's leader may raise an issue; another
  recruiter of the same squad gets ``NotAuthorized``. When an approval branch passes its time
  limit, the recruiter is told too: the built-in ``overdue`` notice goes to the leader, the
  department and the recruiter.
- **问题收集、交办落实: the issue loop.** "在完成项目前期对接、意向签约后,主动延伸服务链条,落细落实
  问题收集、交办落实、全程代理'三项机制'". Commands ``raise_issue`` (from ``signed`` on: the
  formal agreement is the first signing the workflow records), ``assign_issue`` (the project's
  leader assigns it to a department with a deadline of ``issue_deadline_wd`` working days:
  领导包联), ``resolve_issue`` (an officer of that department, or the leader). An assigned
  issue still open at its deadline sends ``huguan.issue_overdue`` to the leader and the
  recruiter, once.
- **赛马榜: the monthly board.** "工作专班办公室每月对各小分队、各乡镇、各部门
  招商引资进展情况进行汇总,对项目招引谋划、签约、开工等情况定期亮晒".
  Metric ``huguan.board``: per month, per squad (team), town and responsible department, the
  projects planned (created), signed (with amount) and
  started. The five squads the seed names always appear, with zeros if idle.
- **目标细化分解到各乡镇: town targets.** "把全年招商引资目标细化分解到...各乡镇". Project field
  ``town``; metric ``huguan.towns``: per town, signed count and amount, started, the target
  and ``min(signed amount / target, 1)`` (G19's typical score).

Own settings (``HuguanSettings``; the seed gives none of these numbers, so each is our default):
``issue_deadline_wd`` 5 (a working week), ``squads`` the five squads of the seed,
``town_targets`` {} (yuan per town; the seed says targets are split, not what they are).
Built-in settings: ``teams`` names the five squads as the seed does (新材料产业招商小分队...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from approvalflow.counties import (
    STARTED,
    completion,
    county_data,
    local_month,
    milestone_month,
    when,
)
from approvalflow.plugin import (
    CommandSpec,
    Context,
    CountyConfig,
    CountySettings,
    Fold,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    Notice,
    Party,
    ProjectState,
    Settings,
    event_folds,
    hookimpl,
    read_text,
    require_actor,
    require_stage,
)

__all__ = ["HuguanSettings", "config", "configure"]

COUNTY = "huguan"
ISSUE_TIMER = "huguan.issue"

# The five special squads of the seed: 新材料、新能源、文旅、数字信创、高端装备制造.
SQUADS = ("new_materials", "new_energy", "culture_tourism", "digital", "high_end_equipment")
# Their names, as the seed writes them ("组建新材料产业、新能源产业、文旅产业、数字信创产业、
# 高端装备制造产业五支专项招商小分队"): the teams' display names on the board and in reports.
SQUAD_NAMES = {
    "new_materials": "新材料产业招商小分队",
    "new_energy": "新能源产业招商小分队",
    "culture_tourism": "文旅产业招商小分队",
    "digital": "数字信创产业招商小分队",
    "high_end_equipment": "高端装备制造产业招商小分队",
}


@attrs.frozen
class HuguanSettings(CountySettings):
    """Huguan's own numbers (see the module docstring for where each default comes from)."""

    issue_deadline_wd: int = 5
    squads: tuple[str, ...] = SQUADS
    town_targets: Mapping[str, int] = attrs.field(factory=dict)


config = CountyConfig(COUNTY, HuguanSettings())
configure = config.configure


@hookimpl
def approvalflow_settings(settings: Settings) -> Mapping[str, Any] | None:
    """The five squads' display names (the ``teams`` setting)."""
    return {"teams": dict(SQUAD_NAMES)}


@hookimpl
def approvalflow_check_settings(settings: Settings) -> Sequence[str]:
    """Refuse ``settings.plugins.huguan`` values that do not fit HuguanSettings."""
    return config.problems(settings)


# -- events ---------------------------------------------------------------------------------------


def _issues(data: dict[str, Any]) -> dict[str, Any]:
    issues: dict[str, Any] = data.setdefault("issues", {})
    return issues


def _raised(data: dict[str, Any], p: Any, at: datetime) -> None:
    _issues(data)[p["issue"]] = {
        "text": p["text"],
        "raised_by": p["raised_by"],
        "raised_at": at.isoformat(),
        "department": None,
        "due": None,
        "status": "open",
    }


def _assigned(data: dict[str, Any], p: Any, at: datetime) -> None:
    issue = _issues(data)[p["issue"]]
    issue.update(department=p["department"], due=p["due"], status="assigned")


def _resolved(data: dict[str, Any], p: Any, at: datetime) -> None:
    issue = _issues(data)[p["issue"]]
    issue.update(status="resolved", resolution=p["resolution"], resolved_at=at.isoformat())


def _overdue(data: dict[str, Any], p: Any, at: datetime) -> None:
    _issues(data)[p["issue"]]["overdue"] = True


FOLDS: Mapping[str, Fold] = event_folds(
    COUNTY,
    {
        "issue_raised": _raised,
        "issue_assigned": _assigned,
        "issue_resolved": _resolved,
        "issue_overdue": _overdue,
    },
)


@hookimpl
def approvalflow_event_folds() -> Mapping[str, Fold]:
    """The issue loop's events."""
    return FOLDS


# -- commands -------------------------------------------------------------------------------------


def _issue(ctx: Context) -> tuple[str, dict[str, Any]]:
    issue_id = read_text(ctx.args, "issue", required=True)
    assert issue_id is not None
    issue = county_data(ctx.state, COUNTY).get("issues", {}).get(issue_id)
    if issue is None:
        raise InvalidCommand(f"{ctx.state.id} has no issue {issue_id!r}")
    return issue_id, issue


def _landing_stage(ctx: Context) -> None:
    require_stage(
        ctx,
        "signed",
        "production",
        "the issue loop runs from signing to production (招落一体: after signing the "
        "recruiter carries the landing)",
    )


def raise_issue(ctx: Context) -> None:
    """Record a problem the landing meets (问题收集)."""
    state = ctx.state
    require_actor(
        ctx,
        (state.recruiter, state.applicant, state.agent, state.leader),
        f"only the landing owner {state.recruiter}, the enterprise or the leader raise issues",
    )
    _landing_stage(ctx)
    issue_id = read_text(ctx.args, "issue", required=True)
    text = read_text(ctx.args, "text", required=True)
    if issue_id in county_data(state, COUNTY).get("issues", {}):
        raise InvalidCommand(f"{state.id} has an issue {issue_id!r} already")
    ctx.emit(f"{COUNTY}.issue_raised", issue=issue_id, text=text, raised_by=ctx.by)
    ctx.notify(f"{COUNTY}.issue_raised", (state.leader, state.recruiter), issue=issue_id, text=text)


def assign_issue(ctx: Context) -> None:
    """The leader assigns an issue to a department, with a deadline (交办落实)."""
    _landing_stage(ctx)
    issue_id, issue = _issue(ctx)
    if issue["status"] != "open":
        raise InvalidTransition(f"issue {issue_id!r} is {issue['status']}, not open")
    dept = ctx.args.get("department")
    if not isinstance(dept, str) or dept not in ctx.settings.departments:
        raise InvalidCommand(
            f"argument 'department' must be a department id "
            f"({', '.join(ctx.settings.departments)}), not {dept!r}"
        )
    due = ctx.working_days_after(config.of(ctx.settings).issue_deadline_wd)
    ctx.emit(f"{COUNTY}.issue_assigned", issue=issue_id, department=dept, due=due.at.isoformat())
    ctx.notify(
        f"{COUNTY}.issue_assigned",
        (*ctx.department_actors(dept, "officer"), ctx.state.recruiter),
        issue=issue_id,
        department=dept,
        text=issue["text"],
        due=due.at.isoformat(),
    )


def resolve_issue(ctx: Context) -> None:
    """The assigned department (or the leader) reports the issue solved."""
    _landing_stage(ctx)
    issue_id, issue = _issue(ctx)
    if issue["status"] != "assigned":
        raise InvalidTransition(f"issue {issue_id!r} is {issue['status']}, not assigned")
    assert ctx.actor is not None
    if ctx.actor.id != ctx.state.leader and ctx.actor.department != issue["department"]:
        raise NotAuthorized(
            f"{ctx.actor.id} may not resolve issue {issue_id!r} of {ctx.state.id}: it is "
            f"assigned to {issue['department']}"
        )
    resolution = read_text(ctx.args, "resolution", required=True)
    ctx.emit(f"{COUNTY}.issue_resolved", issue=issue_id, resolution=resolution)
    ctx.notify(
        f"{COUNTY}.issue_resolved",
        (ctx.state.recruiter, issue["raised_by"]),
        issue=issue_id,
        department=issue["department"],
    )


COMMANDS = (
    CommandSpec(
        "raise_issue",
        (Party.RECRUITER, Party.APPLICANT, Party.LEADER),
        raise_issue,
        ("issue", "text"),
        stage_trigger=None,
        summary="Huguan: raise an issue the landing meets (landing owner, enterprise, leader).",
        title="提出问题",
    ),
    CommandSpec(
        "assign_issue",
        (Party.LEADER,),
        assign_issue,
        ("issue", "department"),
        stage_trigger=None,
        summary="Huguan: the leader assigns an issue to a department, with a deadline.",
        title="交办问题",
    ),
    CommandSpec(
        "resolve_issue",
        (Party.OFFICER, Party.LEADER),
        resolve_issue,
        ("issue", "resolution"),
        stage_trigger=None,
        summary="Huguan: the assigned department reports the issue solved.",
        title="问题办结",
    ),
)


# -- hooks ----------------------------------------------------------------------------------------


@hookimpl
def approvalflow_commands() -> Sequence[CommandSpec]:
    """``raise_issue``, ``assign_issue``, ``resolve_issue``."""
    return COMMANDS


@hookimpl
def approvalflow_project_fields() -> Sequence[str]:
    """``town``: the town (乡镇) the project counts for."""
    return ("town",)


@hookimpl
def approvalflow_timers(project: ProjectState) -> Mapping[tuple[str, str], datetime] | None:
    """Assigned issues' deadlines."""
    timers: dict[tuple[str, str], datetime] = {}
    for issue_id, issue in county_data(project, COUNTY).get("issues", {}).items():
        due = when(issue["due"])
        if issue["status"] == "assigned" and due is not None and not issue.get("overdue"):
            timers[(ISSUE_TIMER, issue_id)] = due
    return timers


@hookimpl
def approvalflow_fire_timer(context: Context, kind: str, branch: str) -> bool | None:
    """An issue past its deadline: tell the leader and the landing owner."""
    state = context.state
    if kind == ISSUE_TIMER:
        issue = county_data(state, COUNTY).get("issues", {}).get(branch)
        if issue is not None and issue["status"] == "assigned" and not issue.get("overdue"):
            context.emit(f"{COUNTY}.issue_overdue", issue=branch)
            context.notify(
                f"{COUNTY}.issue_overdue",
                (state.leader, state.recruiter),
                issue=branch,
                department=issue["department"],
                text=issue["text"],
            )
        return True
    return None


@hookimpl
def approvalflow_notice_recipients(notice: Notice, project: ProjectState) -> Sequence[str] | None:
    """招落一体: the landing owner (the recruiter) hears when an approval branch passes its
    limit, with the leader and the department."""
    if notice.kind == "overdue" and notice.fields.get("stage") == "approval":
        return (project.recruiter,)
    return None


@hookimpl
def approvalflow_metrics(
    projects: Sequence[ProjectState], settings: Settings
) -> Mapping[str, Any] | None:
    """``huguan.board`` (monthly, by squad, town, department) and ``huguan.towns``."""
    own = config.of(settings)
    return {f"{COUNTY}.board": board(projects, own), f"{COUNTY}.towns": towns(projects, own)}


def _row() -> dict[str, int]:
    return {"planned": 0, "signed": 0, "signed_amount": 0, "started": 0}


def board(
    projects: Sequence[ProjectState], own: HuguanSettings | None = None
) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    """The horse-race board: ``{month: {squads|towns|departments: {name: row}}}``.

    A row counts projects planned (created), signed (and their agreed amount) and started that
    month. Every month with any of these lists every configured squad, idle ones at zero.
    """
    squads = (own or config.current).squads
    months: dict[str, dict[str, dict[str, dict[str, int]]]] = {}

    def rows(month: str, state: ProjectState) -> list[dict[str, int]]:
        sheet = months.setdefault(
            month,
            {
                "squads": {squad: _row() for squad in squads},
                "towns": {},
                "departments": {},
            },
        )
        found = [
            sheet["squads"].setdefault(state.team, _row()),
            sheet["departments"].setdefault(state.department, _row()),
        ]
        town = state.extra.get("town")
        if isinstance(town, str):
            found.append(sheet["towns"].setdefault(town, _row()))
        return found

    for state in projects:
        for row in rows(local_month(state.created_at), state):
            row["planned"] += 1
        signed = milestone_month(state, "signed")
        if signed is not None:
            for row in rows(signed, state):
                row["signed"] += 1
                row["signed_amount"] += state.agreed_investment or 0
        started = next((m for m in STARTED if m in state.milestones), None)
        started_month = milestone_month(state, started) if started else None
        if started_month is not None:
            for row in rows(started_month, state):
                row["started"] += 1
    return dict(sorted(months.items()))


def towns(
    projects: Sequence[ProjectState], own: HuguanSettings | None = None
) -> dict[str, dict[str, Any]]:
    """Per town: signed count and amount, started, target and completion (capped at 1)."""
    targets = (own or config.current).town_targets
    result: dict[str, dict[str, Any]] = {
        town: {"signed": 0, "signed_amount": 0, "started": 0} for town in targets
    }
    for state in projects:
        town = state.extra.get("town")
        if not isinstance(town, str):
            continue
        row = result.setdefault(town, {"signed": 0, "signed_amount": 0, "started": 0})
        if "signed" in state.milestones:
            row["signed"] += 1
            row["signed_amount"] += state.agreed_investment or 0
            if any(m in state.milestones for m in STARTED):
                row["started"] += 1
    for town, row in result.items():
        target = targets.get(town)
        row["target"] = target
        row["completion"] = completion(row["signed_amount"], target)
    return dict(sorted(result.items()))
