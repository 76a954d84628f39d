"""Shangnan 商南 (seed 004): five ones with a measure set, monthly squad trips, assign-and-rate
meetings, and the four-rate KPIs.

Rules, and the seed line each comes from:

- **五个一: one measure set.** "严格落实一个招商项目、一名县级领导、一套推进措施、
  一个责任部门、一抓到底'五个一'推进机制".
  The built-in rule 1 gives every project one county leader and one
  responsible department; Shangnan adds the measure set: project field ``measures`` (a list
  of measures) at ``create``, or later by the leader with ``set_measures``. A project without
  its measures may not enter approval: ``apply`` is refused with ``InvalidCommand``.
- **每个小分队每月外出招商对接不少于1次.** ``record_trip`` (a recruiter of the project's squad, or
  its leader: "凡是外出开展活动必须嵌入招商") records a trip for a project or lead. Metrics
  ``shangnan.trips`` (per month, trips per squad) and ``shangnan.trip_shortfall`` (per month,
  the squads below ``trips_per_month``, with how many trips they lack), from the month of the
  first project to the last month with any activity.
- **交办联评会议: assign-and-rate meetings.** "按照'意向项目抓签约、签约项目抓开工、
  开工项目抓投产'的思路,定期组织召开招商落地项目交办联评会议,夯实项目交办责任".
  At a meeting the project's leader assigns a task to a department (``assign_task``); its
  focus follows the project's stage (an intent project: signing; a signed one: starting; a
  started one: production), and it is due in ``task_deadline_wd`` working days. The next meeting
  rates it (``rate_task`` by the leader or the leading group's chair: good, fair or poor); a poor
  rating, or a task still unrated at its deadline, tells the leader and the department
  (``shangnan.task_poor``, ``shangnan.task_overdue``).
- **四率: the four KPIs.** "着力提高协议履约率、资金到位率、项目开工率、竣工投产率". Metrics, exact
  fractions over the signed projects (``None`` when none is signed): ``shangnan.fulfilment_rate``
  (signed projects still performing: not withdrawn, terminated or rejected, over signed),
  ``shangnan.funds_rate`` (funds in place over agreed investment), ``shangnan.start_rate``
  (started over signed), ``shangnan.completion_rate`` (in production or beyond over started:
  "开工项目抓投产"). ``shangnan.kpi_display`` shows them as percentages rounded half up to 0.1 %
  (DOMAIN.md 3.13).
- **Yearly goals.** "力争全年招引项目50个以上,招商到位资金223亿元、外资直投300万美元". Metric
  ``shangnan.goals``: projects and funds in place against 50 and 223亿 (the FDI goal is in
  dollars, which the workflow does not record).

Own settings (``ShangnanSettings``): ``task_deadline_wd`` 20 (about a month, the meetings being
"regular" [A]), ``trips_per_month`` 1 (seed), ``squads`` () (the squads of the projects given;
list them to count idle squads too), ``goal_projects`` 50 and ``goal_funds`` 223亿 (seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import attrs

from approvalflow.counties import STARTED, county_data, local_month, rate, when
from approvalflow.plugin import (
    CommandSpec,
    Context,
    CountyConfig,
    CountySettings,
    Fold,
    InvalidCommand,
    InvalidTransition,
    Party,
    ProjectState,
    Settings,
    event_folds,
    hookimpl,
    read_choice,
    read_text,
    read_text_list,
    require_stage,
)

__all__ = ["ShangnanSettings", "config", "configure", "percent"]

COUNTY = "shangnan"
TASK_TIMER = "shangnan.task"
YI = 100_000_000
RATINGS = ("good", "fair", "poor")
# What a meeting pushes a project towards, by its stage (意向抓签约、签约抓开工、开工抓投产).
FOCUS = {
    "negotiating": "sign",
    "pre_review": "sign",
    "decision": "sign",
    "signed": "start",
    "approval": "start",
    "approved": "start",
    "construction": "production",
}
_NOT_PERFORMING = ("withdrawn", "terminated", "rejected")


@attrs.frozen
class ShangnanSettings(CountySettings):
    """Shangnan's own numbers (see the module docstring for each default's source)."""

    task_deadline_wd: int = 20
    trips_per_month: int = 1
    squads: tuple[str, ...] = ()
    goal_projects: int = 50
    goal_funds: int = 223 * YI


config = CountyConfig(COUNTY, ShangnanSettings())
configure = config.configure


@hookimpl
def approvalflow_check_settings(settings: Settings) -> Sequence[str]:
    """Refuse ``settings.plugins.shangnan`` values that do not fit ShangnanSettings."""
    return config.problems(settings)


# -- events ---------------------------------------------------------------------------------------


def _measures(data: dict[str, Any], p: Any, at: datetime) -> None:
    data["measures"] = list(p["measures"])


def _trip(data: dict[str, Any], p: Any, at: datetime) -> None:
    data.setdefault("trips", []).append({"team": p["team"], "by": p["by"], "at": at.isoformat()})


def _tasks(data: dict[str, Any]) -> dict[str, Any]:
    tasks: dict[str, Any] = data.setdefault("tasks", {})
    return tasks


def _assigned(data: dict[str, Any], p: Any, at: datetime) -> None:
    _tasks(data)[p["task"]] = {
        "text": p["text"],
        "department": p["department"],
        "focus": p["focus"],
        "due": p["due"],
        "rating": None,
        "overdue": False,
    }


def _rated(data: dict[str, Any], p: Any, at: datetime) -> None:
    _tasks(data)[p["task"]]["rating"] = p["rating"]


def _task_overdue(data: dict[str, Any], p: Any, at: datetime) -> None:
    _tasks(data)[p["task"]]["overdue"] = True


FOLDS: Mapping[str, Fold] = event_folds(
    COUNTY,
    {
        "measures_set": _measures,
        "trip_recorded": _trip,
        "task_assigned": _assigned,
        "task_rated": _rated,
        "task_overdue": _task_overdue,
    },
)


@hookimpl
def approvalflow_event_folds() -> Mapping[str, Fold]:
    """The measure set, the squads' trips and the assigned tasks."""
    return FOLDS


def measures_of(project: ProjectState) -> tuple[str, ...]:
    """The project's measure set: the latest ``set_measures``, else the one given at create."""
    recorded = county_data(project, COUNTY).get("measures")
    if recorded:
        return tuple(recorded)
    given = project.extra.get("measures")
    if isinstance(given, list) and all(isinstance(m, str) and m.strip() for m in given):
        return tuple(given)
    return ()


# -- commands -------------------------------------------------------------------------------------


def set_measures(ctx: Context) -> None:
    """The leader sets (replaces) the project's measure set (一套推进措施)."""
    measures = read_text_list(ctx.args, "measures")
    ctx.emit(f"{COUNTY}.measures_set", measures=measures)


def record_trip(ctx: Context) -> None:
    """A squad's trip (or a leader's) to meet this project's investor (外出招商对接)."""
    destination = read_text(ctx.args, "destination", required=True)
    read_text(ctx.args, "note", required=False)
    ctx.emit(f"{COUNTY}.trip_recorded", team=ctx.state.team, by=ctx.by, destination=destination)


def assign_task(ctx: Context) -> None:
    """At an assign-and-rate meeting: a task for a department, its focus set by the stage."""
    require_stage(
        ctx, "negotiating", "construction", "meetings push intent, signed and started projects"
    )
    task = read_text(ctx.args, "task", required=True)
    text = read_text(ctx.args, "text", required=True)
    dept = ctx.args.get("department")
    if not isinstance(dept, str) or dept not in ctx.settings.departments:
        raise InvalidCommand(f"argument 'department' must be a department id, not {dept!r}")
    if task in county_data(ctx.state, COUNTY).get("tasks", {}):
        raise InvalidCommand(f"{ctx.state.id} has a task {task!r} already")
    focus = FOCUS[ctx.state.stage.split(".", 1)[0]]
    due = ctx.working_days_after(config.of(ctx.settings).task_deadline_wd)
    ctx.emit(
        f"{COUNTY}.task_assigned",
        task=task,
        text=text,
        department=dept,
        focus=focus,
        due=due.at.isoformat(),
    )
    ctx.notify(
        f"{COUNTY}.task_assigned",
        (*ctx.department_actors(dept, "officer"), ctx.state.recruiter),
        task=task,
        department=dept,
        focus=focus,
        due=due.at.isoformat(),
    )


def rate_task(ctx: Context) -> None:
    """The next meeting rates an assigned task (联评); a poor rating is escalated."""
    task = read_text(ctx.args, "task", required=True)
    record = county_data(ctx.state, COUNTY).get("tasks", {}).get(task)
    if record is None:
        raise InvalidCommand(f"{ctx.state.id} has no task {task!r}")
    if record["rating"] is not None:
        raise InvalidTransition(f"task {task!r} is rated already ({record['rating']})")
    rating = read_choice(ctx.args, "rating", RATINGS)
    read_text(ctx.args, "note", required=False)
    ctx.emit(f"{COUNTY}.task_rated", task=task, rating=rating)
    if rating == "poor":
        ctx.notify(
            f"{COUNTY}.task_poor",
            (ctx.state.leader, *ctx.department_actors(record["department"], "officer")),
            task=task,
            department=record["department"],
        )


COMMANDS = (
    CommandSpec(
        "set_measures",
        (Party.LEADER,),
        set_measures,
        ("measures",),
        stage_trigger=None,
        summary="Shangnan: the leader sets the project's measure set (five ones).",
        title="确定推进措施",
    ),
    CommandSpec(
        "record_trip",
        (Party.RECRUITER, Party.LEADER),
        record_trip,
        ("destination", "note"),
        stage_trigger=None,
        summary="Shangnan: a squad's (or leader's) trip to meet the investor.",
        title="登记外出招商",
    ),
    CommandSpec(
        "assign_task",
        (Party.LEADER,),
        assign_task,
        ("task", "text", "department"),
        stage_trigger=None,
        summary="Shangnan: assign a task at an assign-and-rate meeting.",
        title="交办任务",
    ),
    CommandSpec(
        "rate_task",
        (Party.LEADER, Party.CHAIR),
        rate_task,
        ("task", "rating", "note"),
        stage_trigger=None,
        summary="Shangnan: rate an assigned task (good, fair, poor).",
        title="评价任务",
    ),
)


# -- hooks ----------------------------------------------------------------------------------------


@hookimpl
def approvalflow_commands() -> Sequence[CommandSpec]:
    """``set_measures``, ``record_trip``, ``assign_task``, ``rate_task``."""
    return COMMANDS


@hookimpl
def approvalflow_project_fields() -> Sequence[str]:
    """``measures``: the project's measure set (a list of texts)."""
    return ("measures",)


@hookimpl
def approvalflow_check_command(context: Context, command: str) -> None:
    """五个一: ``apply`` only once the project has its measure set."""
    if command == "apply" and not measures_of(context.state):
        raise InvalidCommand(
            f"五个一: {context.state.id} has no measure set (一套推进措施); give `measures` at "
            "create or have its leader set_measures before apply"
        )


@hookimpl
def approvalflow_timers(project: ProjectState) -> Mapping[tuple[str, str], datetime] | None:
    """Each assigned task's deadline, until it is rated."""
    timers: dict[tuple[str, str], datetime] = {}
    for task, record in county_data(project, COUNTY).get("tasks", {}).items():
        due = when(record["due"])
        if record["rating"] is None and not record["overdue"] and due is not None:
            timers[(TASK_TIMER, task)] = due
    return timers


@hookimpl
def approvalflow_fire_timer(context: Context, kind: str, branch: str) -> bool | None:
    """A task unrated at its deadline: the leader and the department hear, once."""
    if kind != TASK_TIMER:
        return None
    record = county_data(context.state, COUNTY).get("tasks", {}).get(branch)
    if record is not None and record["rating"] is None and not record["overdue"]:
        context.emit(f"{COUNTY}.task_overdue", task=branch)
        context.notify(
            f"{COUNTY}.task_overdue",
            (context.state.leader, *context.department_actors(record["department"], "officer")),
            task=branch,
            department=record["department"],
            focus=record["focus"],
        )
    return True


@hookimpl
def approvalflow_metrics(
    projects: Sequence[ProjectState], settings: Settings
) -> Mapping[str, Any] | None:
    """The four rates, their display, trips and shortfalls, and the yearly goals."""
    own = config.of(settings)
    rates = four_rates(projects)
    trips = trips_by_month(projects)
    return {
        **{f"{COUNTY}.{name}": value for name, value in rates.items()},
        f"{COUNTY}.kpi_display": {name: percent(value) for name, value in rates.items()},
        f"{COUNTY}.trips": trips,
        f"{COUNTY}.trip_shortfall": shortfall(projects, trips, own),
        f"{COUNTY}.goals": goals(projects, own),
    }


def four_rates(projects: Sequence[ProjectState]) -> dict[str, Fraction | None]:
    """协议履约率, 资金到位率, 项目开工率, 竣工投产率 over the signed projects."""
    signed = [s for s in projects if "signed" in s.milestones]
    performing = sum(1 for s in signed if s.stage not in _NOT_PERFORMING)
    started = [s for s in signed if any(m in s.milestones for m in STARTED)]
    producing = sum(1 for s in started if any(m in s.milestones for m in STARTED[1:]))
    agreed = sum(s.agreed_investment or 0 for s in signed)
    return {
        "fulfilment_rate": rate(performing, len(signed)),
        "funds_rate": rate(sum(s.funds for s in signed), agreed),
        "start_rate": rate(len(started), len(signed)),
        "completion_rate": rate(producing, len(started)),
    }


def percent(value: Fraction | None) -> str | None:
    """A rate as a percentage rounded half up to 0.1 % (``Fraction(6, 11)`` -> ``54.5%``)."""
    if value is None:
        return None
    exact = Decimal(value.numerator) * 100 / Decimal(value.denominator)
    return f"{exact.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def trips_by_month(projects: Sequence[ProjectState]) -> dict[str, dict[str, int]]:
    """``{month: {squad: trips}}``."""
    months: dict[str, dict[str, int]] = {}
    for state in projects:
        for trip in county_data(state, COUNTY).get("trips", []):
            at = when(trip["at"])
            assert at is not None
            row = months.setdefault(local_month(at), {})
            row[trip["team"]] = row.get(trip["team"], 0) + 1
    return dict(sorted(months.items()))


def _months(first: str, last: str) -> list[str]:
    year, month = (int(part) for part in first.split("-"))
    found = []
    while f"{year}-{month:02d}" <= last:
        found.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def shortfall(
    projects: Sequence[ProjectState],
    trips: Mapping[str, Mapping[str, int]],
    own: ShangnanSettings | None = None,
) -> dict[str, dict[str, int]]:
    """``{month: {squad: trips lacking}}`` for the squads below the monthly minimum."""
    if not projects:
        return {}
    own = own or config.current
    squads = own.squads or tuple(sorted({s.team for s in projects}))
    moments = [s.created_at for s in projects]
    moments += [at for s in projects for at in s.milestones.values()]
    months = {local_month(m) for m in moments} | set(trips)
    result: dict[str, dict[str, int]] = {}
    for month in _months(min(months), max(months)):
        lacking = {
            squad: own.trips_per_month - trips.get(month, {}).get(squad, 0)
            for squad in squads
            if trips.get(month, {}).get(squad, 0) < own.trips_per_month
        }
        if lacking:
            result[month] = lacking
    return result


def goals(projects: Sequence[ProjectState], own: ShangnanSettings | None = None) -> dict[str, Any]:
    """Projects attracted and funds in place against the yearly goals."""
    own = own or config.current
    funds = sum(s.funds for s in projects)
    count = sum(1 for s in projects if "signed" in s.milestones)
    return {
        "projects": count,
        "projects_goal": own.goal_projects,
        "projects_progress": rate(count, own.goal_projects),
        "funds": funds,
        "funds_goal": own.goal_funds,
        "funds_progress": rate(funds, own.goal_funds),
    }
