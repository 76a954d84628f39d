"""Gaoqing 高青 (seed 003, 2024 Q1): A/B/C unit classes, five industrial chains with five roles,
the chain headquarters' weekly visits, and the spring 100-day campaign's targets.

Rules, and the seed line each comes from:

- **分级分类: units in classes A, B, C.** "出台《招商引资分级分类管理办法(试行)》,
  根据各单位职能情况,将所有部门单位分为ABC三类". The criteria are unpublished [A]: units
  whose function is attraction or industry (investment-promotion centre, 工信, 发改, the
  towns) are A, the other economic and approving departments B, every other unit C. Each
  class has a yearly target of signed projects (A 3, B 2, C 1 [A]). Metric ``gaoqing.units``: per
  responsible unit, its class, target, projects signed and score ``min(signed / target, 1) x 100``.
- **Five chains, five roles.** "围绕新材料、健康医药、新能源、临港物流、农文旅等产业,
  成立五大产业链招商专班 ... 构建'县级链长+副链长+链主+牵头部门+配合部门'的工作推进体系".
  Project field ``chain`` (``new_materials``, ``health``, ``new_energy``, ``port_logistics``,
  ``agri_tourism``; another value is refused at ``apply``). Each chain has a lead and supporting
  departments and its anchor firms (链主; the seed names 飞源化工 and 金洋药业) in the settings; its
  链长 and 副链长 are people, so they come from the actor directory: an actor with role
  ``chain_leader`` (``deputy_chain_leader``) whose ``teams`` list the chain. When a chain project's
  approval branch passes its limit, the chain leader, the deputies and the lead department's
  officers are added to the built-in ``overdue`` notice. Metric ``gaoqing.chains``: per chain,
  projects, signed, amount, started, visits and missed visits.
- **指挥部每周调研: weekly headquarters visits.** "产业链招商工作指挥部发挥了重要的引领作用,
  指挥部每周赴各镇办和部门调研项目推进情况 ... 协助各部门与镇办快速完成立项等审批手续,
  力促在谈项目快签约".
  A chain project from negotiation until construction starts needs a visit every
  ``visit_interval_days`` (7) days: by 24:00 of the seventh day after the day talks began, the
  last visit, or the last missed week. An officer of the headquarters (department ``hq``)
  records one with ``record_visit`` (findings, and the departments it will help with their
  filings, who are told: ``gaoqing.visit_assist``). A week without one sends
  ``gaoqing.visit_missed`` to the chain leader and the headquarters, and the next week starts.
- **百日攻坚: the 100-day campaign.** "从2月下旬到5月底,集中100天时间开展春季'上门招商'百日攻坚
  行动 ... 力争上半年全县到位省外资金超过30亿元,新引进过亿元项目不少于20个". Project field
  ``origin`` (the investor's province). Metric ``gaoqing.campaign`` over the projects signed in
  the target period (H1 2024): funds in place of projects from outside ``home_province``
  (山东) against more than 30亿, new projects over 1亿 against at least 20, each with its
  progress, and how many were signed within the 100 days (2024-02-22 to 2024-05-31).
  The project state keeps funds as a running total, so funds count by the project's signing
  date, not by the date each payment was reported.

Own settings (``GaoqingSettings``): ``unit_classes``, ``class_targets``, ``chains``,
``hq_department``, ``visit_interval_days``, ``campaign`` (``CampaignSettings``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import Any

import attrs

from approvalflow.counties import (
    completion,
    count_landing,
    county_data,
    landing_row,
    signed_in,
    when,
)
from approvalflow.plugin import (
    SHANGHAI,
    ActorDirectory,
    CommandSpec,
    Context,
    CountyConfig,
    CountySettings,
    Fold,
    InvalidCommand,
    NotAuthorized,
    Notice,
    Party,
    ProjectState,
    Settings,
    event_folds,
    hookimpl,
    read_id_list,
    read_text,
    require_stage,
    stage_index,
    to_local,
)

__all__ = ["CampaignSettings", "ChainSpec", "GaoqingSettings", "config", "configure"]

COUNTY = "gaoqing"
VISIT_TIMER = "gaoqing.visit"
YI = 100_000_000

# Units Gaoqing has beyond the built-in departments (the seed names the centre, the HQ and
# two towns; the chains' lead departments are the sector authorities).
DEPARTMENTS = {
    "tzcj": "投资促进中心",
    "hq": "产业链招商工作指挥部",
    "jt": "交通运输局",
    "nync": "农业农村局",
    "wlj": "文化和旅游局",
    "wjj": "卫生健康局",
    "changjia": "常家镇",
    "tangfang": "唐坊镇",
}

UNIT_CLASSES = {
    **dict.fromkeys(("tzcj", "gxj", "fgw", "changjia", "tangfang"), "A"),
    **dict.fromkeys(("zrzy", "zj", "sthj", "yj", "xzsp", "jt", "nync", "wlj", "wjj"), "B"),
}


@attrs.frozen
class ChainSpec:
    """One industrial chain's standing roles: lead and supporting departments, anchor firms."""

    name: str
    lead_department: str
    support_departments: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()


CHAINS = {
    "new_materials": ChainSpec("新材料", "gxj", ("zrzy", "sthj"), ("飞源化工",)),
    "health": ChainSpec("健康医药", "wjj", ("gxj", "fgw"), ("金洋药业",)),
    "new_energy": ChainSpec("新能源", "fgw", ("gxj", "zrzy")),
    "port_logistics": ChainSpec("临港物流", "jt", ("zrzy", "fgw")),
    "agri_tourism": ChainSpec("农文旅", "nync", ("wlj", "zrzy")),
}


@attrs.frozen
class CampaignSettings:
    """The 100-day drive and the half-year targets it serves."""

    drive_start: date = date(2024, 2, 22)
    drive_end: date = date(2024, 5, 31)
    period_start: date = date(2024, 1, 1)
    period_end: date = date(2024, 6, 30)
    funds_target: int = 30 * YI
    projects_target: int = 20
    project_floor: int = 1 * YI
    home_province: str = "山东"


@attrs.frozen
class GaoqingSettings(CountySettings):
    """Gaoqing's own numbers (see the module docstring for each default's source)."""

    unit_classes: Mapping[str, str] = attrs.field(factory=lambda: dict(UNIT_CLASSES))
    default_class: str = "C"
    class_targets: Mapping[str, int] = attrs.field(factory=lambda: {"A": 3, "B": 2, "C": 1})
    chains: Mapping[str, ChainSpec] = attrs.field(factory=lambda: dict(CHAINS))
    hq_department: str = "hq"
    visit_interval_days: int = 7
    campaign: CampaignSettings = attrs.field(factory=CampaignSettings)


config = CountyConfig(COUNTY, GaoqingSettings())
configure = config.configure


@hookimpl
def approvalflow_check_settings(settings: Settings) -> Sequence[str]:
    """Refuse ``settings.plugins.gaoqing`` values that do not fit GaoqingSettings."""
    return config.problems(settings)


# -- events ---------------------------------------------------------------------------------------


def _visited(data: dict[str, Any], p: Any, at: datetime) -> None:
    data.setdefault("visits", []).append(at.isoformat())


def _missed(data: dict[str, Any], p: Any, at: datetime) -> None:
    data.setdefault("missed", []).append(p["due"])


FOLDS: Mapping[str, Fold] = event_folds(
    COUNTY, {"visit_recorded": _visited, "visit_missed": _missed}
)


@hookimpl
def approvalflow_event_folds() -> Mapping[str, Fold]:
    """Visits made and missed."""
    return FOLDS


# -- chains and visits ----------------------------------------------------------------------------


def chain_of(project: ProjectState, own: GaoqingSettings) -> str | None:
    chain = project.extra.get("chain")
    return chain if isinstance(chain, str) and chain in own.chains else None


def chain_people(actors: ActorDirectory, chain: str, role: str) -> list[str]:
    """Actors holding ``role`` (``chain_leader``, ``deputy_chain_leader``) for ``chain``."""
    return [
        actor.id
        for actor in actors
        if actor.has_role(role) and actor.teams is not None and chain in actor.teams
    ]


def _in_visit_window(project: ProjectState) -> bool:
    # From negotiation ("在谈项目") until construction starts ("签约项目快落地").
    return stage_index("negotiating") <= stage_index(project.stage) <= stage_index("approved")


def next_visit_due(project: ProjectState, own: GaoqingSettings) -> datetime | None:
    """When the chain project's next weekly visit is due, or ``None`` outside the window."""
    if chain_of(project, own) is None or not _in_visit_window(project):
        return None
    data = county_data(project, COUNTY)
    # Weeks run from the end of a day (deadlines end at 24:00 local): the day negotiation
    # began, the day of the last visit, or the deadline a missed week ended on.
    days = [project.stage_entered.get("negotiating", project.created_at)]
    days += [moment for moment in map(when, data.get("visits", [])) if moment]
    ends = [_end_of_day(moment) for moment in days]
    ends += [moment for moment in map(when, data.get("missed", [])) if moment]
    return max(ends) + timedelta(days=own.visit_interval_days)


def _end_of_day(moment: datetime) -> datetime:
    next_day = to_local(moment).date() + timedelta(days=1)
    return datetime.combine(next_day, time(0), tzinfo=SHANGHAI)


def record_visit(ctx: Context) -> None:
    """The headquarters' visit to a project in talks or in approval (指挥部每周调研)."""
    hq = config.of(ctx.settings).hq_department
    assert ctx.actor is not None
    if ctx.actor.department != hq:
        raise NotAuthorized(
            f"{ctx.actor.id} may not record_visit on {ctx.state.id}: is not an officer of {hq}"
        )
    require_stage(ctx, "negotiating", "approved", "visits run from talks until construction")
    findings = read_text(ctx.args, "findings", required=True)
    assist = read_id_list(ctx.args, "assist", required=False)
    unknown = [d for d in assist if d not in ctx.settings.departments]
    if unknown:
        raise InvalidCommand(f"argument 'assist': {', '.join(unknown)} are not departments")
    ctx.emit(f"{COUNTY}.visit_recorded", findings=findings, assist=assist)
    for dept in assist:
        ctx.notify(
            f"{COUNTY}.visit_assist",
            ctx.department_actors(dept, "officer"),
            department=dept,
            findings=findings,
        )


COMMANDS = (
    CommandSpec(
        "record_visit",
        (Party.OFFICER,),
        record_visit,
        ("findings", "assist"),
        stage_trigger=None,
        summary="Gaoqing: the chain headquarters' weekly visit, and the filings it helps with.",
        title="链长办走访",
    ),
)


# -- hooks ----------------------------------------------------------------------------------------


@hookimpl
def approvalflow_settings(settings: Settings) -> Mapping[str, Any] | None:
    """Gaoqing's units: the investment-promotion centre, the chain HQ, sector bureaus, towns."""
    return {"departments": dict(DEPARTMENTS)}


@hookimpl
def approvalflow_commands() -> Sequence[CommandSpec]:
    """``record_visit``."""
    return COMMANDS


@hookimpl
def approvalflow_project_fields() -> Sequence[str]:
    """``chain`` (one of the five) and ``origin`` (the investor's province)."""
    return ("chain", "origin")


@hookimpl
def approvalflow_roles() -> Sequence[str]:
    """链长 and 副链长: people of the directory, their ``teams`` naming their chains."""
    return ("chain_leader", "deputy_chain_leader")


@hookimpl
def approvalflow_check_command(context: Context, command: str) -> None:
    """Refuses ``apply`` for a chain that is not one of the five."""
    if command != "apply":
        return
    project = context.state
    chain = project.extra.get("chain")
    known = config.of(context.settings).chains
    if chain is not None and chain not in known:
        raise InvalidCommand(
            f"chain {chain!r} of {project.id} is not one of Gaoqing's chains ({', '.join(known)})"
        )


@hookimpl
def approvalflow_notice_recipients(
    notice: Notice, project: ProjectState, settings: Settings, actors: ActorDirectory
) -> Sequence[str] | None:
    """A chain project's branch past its limit: the chain leader, the deputies and the lead
    department's officers hear, with the leader and the department."""
    if notice.kind != "overdue" or notice.fields.get("stage") != "approval":
        return None
    own = config.of(settings)
    chain = chain_of(project, own)
    if chain is None:
        return None
    lead = own.chains[chain].lead_department
    return (
        *chain_people(actors, chain, "chain_leader"),
        *chain_people(actors, chain, "deputy_chain_leader"),
        *(a.id for a in actors if a.department == lead and a.has_role("officer")),
    )


@hookimpl
def approvalflow_timers(
    project: ProjectState, settings: Settings
) -> Mapping[tuple[str, str], datetime] | None:
    """A chain project's weekly visit."""
    own = config.of(settings)
    if chain_of(project, own) is None:
        return None
    timers: dict[tuple[str, str], datetime] = {}
    due = next_visit_due(project, own)
    if due is not None:
        timers[(VISIT_TIMER, "")] = due
    return timers


@hookimpl
def approvalflow_fire_timer(context: Context, kind: str, branch: str) -> bool | None:
    """A week without a visit."""
    state = context.state
    own = config.of(context.settings)
    chain = chain_of(state, own)
    if kind == VISIT_TIMER:
        if chain is not None and next_visit_due(state, own) == context.now:
            context.emit(f"{COUNTY}.visit_missed", due=context.now.isoformat())
            context.notify(
                f"{COUNTY}.visit_missed",
                (
                    *chain_people(context.actors, chain, "chain_leader"),
                    *context.department_actors(own.hq_department, "officer"),
                ),
                chain=chain,
            )
        return True
    return None


@hookimpl
def approvalflow_metrics(
    projects: Sequence[ProjectState], settings: Settings
) -> Mapping[str, Any] | None:
    """``gaoqing.chains``, ``gaoqing.units`` and ``gaoqing.campaign``."""
    own = config.of(settings)
    return {
        f"{COUNTY}.chains": chains(projects, own),
        f"{COUNTY}.units": units(projects, own),
        f"{COUNTY}.campaign": campaign(projects, own),
    }


def chains(
    projects: Sequence[ProjectState], own: GaoqingSettings | None = None
) -> dict[str, dict[str, int]]:
    """Per chain: projects, signed, signed amount, started, visits, missed visits."""
    own = own or config.current
    result = {chain: {**landing_row(), "visits": 0, "missed_visits": 0} for chain in own.chains}
    for state in projects:
        chain = chain_of(state, own)
        if chain is None:
            continue
        row = result[chain]
        count_landing(row, state)
        data = county_data(state, COUNTY)
        row["visits"] += len(data.get("visits", []))
        row["missed_visits"] += len(data.get("missed", []))
    return result


def unit_class(unit: str, own: GaoqingSettings | None = None) -> str:
    own = own or config.current
    return own.unit_classes.get(unit, own.default_class)


def units(
    projects: Sequence[ProjectState], own: GaoqingSettings | None = None
) -> dict[str, dict[str, Any]]:
    """Per responsible unit: class, target, signed, and ``min(signed / target, 1) x 100``."""
    own = own or config.current
    signed: dict[str, int] = {}
    for state in projects:
        signed.setdefault(state.department, 0)
        if "signed" in state.milestones:
            signed[state.department] += 1
    result: dict[str, dict[str, Any]] = {}
    for unit, count in sorted(signed.items()):
        grade = unit_class(unit, own)
        target = own.class_targets.get(grade, 0)
        share = completion(count, target)
        result[unit] = {
            "class": grade,
            "target": target,
            "signed": count,
            "score": None if share is None else share * 100,
        }
    return result


def campaign(
    projects: Sequence[ProjectState], own: GaoqingSettings | None = None
) -> dict[str, Any]:
    """The half-year targets the 100-day drive serves, over projects signed in the period."""
    spec = (own or config.current).campaign
    cohort = [s for s in projects if signed_in(s, spec.period_start, spec.period_end)]
    out_of_province = [
        s
        for s in cohort
        if isinstance(s.extra.get("origin"), str) and s.extra["origin"] != spec.home_province
    ]
    funds = sum(s.funds for s in out_of_province)
    big = sum(1 for s in cohort if (s.agreed_investment or 0) > spec.project_floor)
    return {
        "out_of_province_funds": funds,
        "funds_target": spec.funds_target,
        "funds_progress": Fraction(funds, spec.funds_target),
        "funds_met": funds > spec.funds_target,  # "超过": strictly more
        "new_projects": big,
        "projects_target": spec.projects_target,
        "projects_progress": Fraction(big, spec.projects_target),
        "projects_met": big >= spec.projects_target,  # "不少于": at least
        "drive_signed": sum(1 for s in cohort if signed_in(s, spec.drive_start, spec.drive_end)),
    }
