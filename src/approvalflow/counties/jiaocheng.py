"""Jiaocheng 交城 (seed 001, 2023): firm bosses as chain leaders with priority, the
administrative-approval bureau as lead department, notify-and-commit, department targets.

Rules, and the seed line each comes from:

- **链长制: firm bosses as chain leaders, with priority.** "聘请华鑫焦化、美锦煤化工、宏特煤化工、
  利虎玻璃、新天源医药、国锦煤电等行业龙头、重点骨干企业负责人为相关产业链链长 ... 凡是各产业链链长
  招引的落地项目,优先保障生产要素供给,优先享受土地、财政等政策支持". Project field ``chain``
  names the chain whose leader brought the project (one of ``chain_leaders``; an unknown chain
  is refused at ``apply`` with ``InvalidCommand``). Such a project is a *priority project*:
  when one of its approval branches passes its time limit, the leading group's chair (the
  county's top leaders answer for attraction: "由县委书记、县长...亲自负责") is told as well:
  the chair is added to the built-in ``overdue`` notice. Metric ``jiaocheng.chains``: per
  chain, projects, signed, signed amount and started.
- **行政审批服务管理局 as lead department.** "交城县行政审批服务管理局作为招商引资工作的牵头部门".
  The bureau (``xzsp``) coordinates every approval: when any branch passes its limit, its
  officers are added to the built-in ``overdue`` notice naming the late department
  ("专班推进,一对一服务项目建设").
- **The six shifts (六个转变).** Of the six, two are workflow rules: serial to parallel approval
  (the built-in rule 4, kept) and approval to pledge (由"审批制"向"承诺制"转变): notify-and-commit
  is switched on for ``commitment_departments``. The seed names no department; we choose
  ``fgw`` (project filing) and ``zj`` (construction permit), the two most often run on pledges
  (G15), never ``sthj`` or ``yj`` (ecology and safety are excluded, DOMAIN.md 3.9). The other
  four (two-way handling, cross-region intake, e-procurement, the "caring hall") are service
  channels, not rules of a project's workflow.
- **Department targets and year-end score.** "将全年目标任务细化分解到各个部门,实施动态管理,
  定期通报,将招商引资工作纳入年终绩效考核". Metric ``jiaocheng.department_scores``: per
  responsible department, projects signed against its target and the score
  ``min(signed / target, 1) x 100`` (G19's usual form).

Own settings (``JiaochengSettings``): ``chain_leaders`` the six firms of the seed;
``commitment_departments`` (fgw, zj) as above; ``department_targets`` {} and
``default_target`` 1 signed project a year [A: the seed publishes no target].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from approvalflow.counties import completion, count_landing, landing_row
from approvalflow.plugin import (
    ActorDirectory,
    Context,
    CountyConfig,
    CountySettings,
    InvalidCommand,
    Notice,
    ProjectState,
    Settings,
    hookimpl,
)

__all__ = ["JiaochengSettings", "config", "configure"]

COUNTY = "jiaocheng"
LEAD_DEPARTMENT = "xzsp"

# The six firms whose heads the seed names as chain leaders.
CHAIN_LEADERS = {
    "huaxin_coking": "华鑫焦化",
    "meijin_coal_chemical": "美锦煤化工",
    "hongte_coal_chemical": "宏特煤化工",
    "lihu_glass": "利虎玻璃",
    "xintianyuan_pharma": "新天源医药",
    "guojin_power": "国锦煤电",
}


@attrs.frozen
class JiaochengSettings(CountySettings):
    """Jiaocheng's own numbers (see the module docstring for each default's source)."""

    chain_leaders: Mapping[str, str] = attrs.field(factory=lambda: dict(CHAIN_LEADERS))
    commitment_departments: tuple[str, ...] = ("fgw", "zj")
    department_targets: Mapping[str, int] = attrs.field(factory=dict)
    default_target: int = 1


config = CountyConfig(COUNTY, JiaochengSettings())
configure = config.configure


def is_priority(project: ProjectState, settings: Settings) -> bool:
    """A project brought by a chain leader (链长招引的项目)."""
    return project.extra.get("chain") in config.of(settings).chain_leaders


@hookimpl
def approvalflow_check_settings(settings: Settings) -> Sequence[str]:
    """Refuse ``settings.plugins.jiaocheng`` values that do not fit JiaochengSettings."""
    return config.problems(settings)


@hookimpl
def approvalflow_settings(settings: Settings) -> Mapping[str, Any] | None:
    """Notify-and-commit for the pledge departments (审批制 to 承诺制)."""
    return {"commitment": {"departments": list(config.current.commitment_departments)}}


@hookimpl
def approvalflow_project_fields() -> Sequence[str]:
    """``chain``: the chain whose leader (a firm's head) brought the project."""
    return ("chain",)


@hookimpl
def approvalflow_check_command(context: Context, command: str) -> None:
    """Refuses ``apply`` for a project naming an unknown chain."""
    if command != "apply":
        return
    project = context.state
    chain = project.extra.get("chain")
    leaders = config.of(context.settings).chain_leaders
    if chain is not None and chain not in leaders:
        raise InvalidCommand(
            f"chain {chain!r} of {project.id} has no chain leader here "
            f"(chains: {', '.join(leaders)})"
        )


@hookimpl
def approvalflow_notice_recipients(
    notice: Notice, project: ProjectState, settings: Settings, actors: ActorDirectory
) -> Sequence[str] | None:
    """A branch past its limit: xzsp coordinates; for a priority project the chair hears."""
    if notice.kind != "overdue" or notice.fields.get("stage") != "approval":
        return None
    told = [
        actor.id
        for actor in actors
        if actor.department == LEAD_DEPARTMENT and actor.has_role("officer")
    ]
    if is_priority(project, settings):
        told += [actor.id for actor in actors if actor.has_role("chair")]
    return told


@hookimpl
def approvalflow_metrics(
    projects: Sequence[ProjectState], settings: Settings
) -> Mapping[str, Any] | None:
    """``jiaocheng.chains`` and ``jiaocheng.department_scores``."""
    own = config.of(settings)
    return {
        f"{COUNTY}.chains": chains(projects, own),
        f"{COUNTY}.department_scores": department_scores(projects, own),
    }


def chains(
    projects: Sequence[ProjectState], own: JiaochengSettings | None = None
) -> dict[str, dict[str, int]]:
    """Per chain leader's chain: projects brought, signed, signed amount, started."""
    result = {chain: landing_row() for chain in (own or config.current).chain_leaders}
    for state in projects:
        row = result.get(state.extra.get("chain", ""))
        if row is not None:
            count_landing(row, state)
    return result


def department_scores(
    projects: Sequence[ProjectState], own: JiaochengSettings | None = None
) -> dict[str, dict[str, Any]]:
    """Per responsible department: target, signed, and ``min(signed / target, 1) x 100``."""
    own = own or config.current
    signed: dict[str, int] = dict.fromkeys(own.department_targets, 0)
    for state in projects:
        signed.setdefault(state.department, 0)
        if "signed" in state.milestones:
            signed[state.department] += 1
    result: dict[str, dict[str, Any]] = {}
    for dept, count in sorted(signed.items()):
        target = own.department_targets.get(dept, own.default_target)
        share = completion(count, target)
        result[dept] = {
            "target": target,
            "signed": count,
            "score": None if share is None else share * 100,
        }
    return result
