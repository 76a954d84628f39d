"""Jiangle 将乐 (seed 002, 2022-08): instant pre-review, collective decision, 23-step points,
park one-stop with full agency, a task force per project, positive and negative conduct lists.

Rules, and the seed line each comes from:

- **即时初审, 一次性告知.** "由即时初审工作成员单位对项目投资规模、投资强度、
  科技含量、发展前景等开展分析研判,在三日内对项目合规性提出意见并一次性告知所需补齐材料".
  The built-in rule 2 is this mechanism; Jiangle sets its numbers explicitly so a change of
  built-in defaults never changes Jiangle: member units gxj (the 工信局 runs the 招商服务中心), fgw,
  zrzy, sthj; 3 working days (the seed says 三日; we count working days, DOMAIN.md 3.3);
  silence is overdue.
- **集体决策.** "由招商引资工作领导小组集体研究决定是否同意项目落地建设". The built-in rule 3, set
  explicitly: quorum more than half the group, approval more than half of those present.
- **23 steps, points each.** "把招商项目洽谈、签约、开工、投产整个生命周期进一步细分为23个工作步骤,
  每完成一个步骤给予一定积分". The list and weights are unpublished; ``STEPS`` is ours [A]: 23
  steps from negotiation to production worth 100 points in all, replacing the built-in table
  (``lead`` and ``effective`` lie outside the 23 and earn nothing). Seven are milestones the
  engine reaches itself (negotiating, pre-review passed, decision approved, signed, approval
  complete, construction, production); the others are recorded with ``record_step``, each
  allowed only once its stage is reached (and, for a step tied to a department's permit, once
  that branch is approved). Metric ``jiangle.steps_completed``: steps completed per team.
- **入园通办, 全流程帮办代办.** "建立项目'入园通办'机制,提供'全流程帮办代办'服务,实现能评、环评、
  安评等代办审批事项20余项". Every project's approvals are filed through an agent: ``apply`` is
  refused (``InvalidCommand``) until the project has an agent (``create`` with ``agent`` or
  ``delegate``) and its task force.
- **一个项目、一个专班、一套政策、一抓到底.** ``form_task_force`` (the project's leader, once the
  leading group has approved it: "对于经集体决策同意落地的项目...工作专班紧盯") names the members
  and the policy package; the members are told (``jiangle.task_force_formed``). A project has
  one task force: forming a second is ``InvalidTransition``.
- **正负面清单: 10 positive and 10 negative items.** "明确优化涉企服务、推动经贸活动等
  10项'正面清单',划清不得政策歧视、违规干预市场等10项'负面清单'".
  ``record_conduct`` (the project's leader) records an item of either list against a unit;
  a positive item adds ``positive_points`` (2) to the project's team, a negative one takes
  ``negative_points`` (5) away [A: the seed gives no weights]. Only the two named items of each list
  are from the seed; the other eight are common items of such lists [A], to be replaced by the
  county's published list. Metric ``jiangle.conduct``: per unit, positive and negative items.

Own settings (``JiangleSettings``): ``step_points`` (the 23-step table), ``positive`` and
``negative`` (id -> item), ``positive_points`` 2, ``negative_points`` 5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from approvalflow.counties import county_data
from approvalflow.plugin import (
    MILESTONES,
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
    read_id_list,
    read_text,
    require_stage,
)

__all__ = ["STEPS", "JiangleSettings", "Step", "config", "configure"]

COUNTY = "jiangle"


@attrs.frozen
class Step:
    """One of the 23 lifecycle steps.

    ``recorded``: completed by ``record_step`` (else the engine reaches it itself);
    ``earliest``: the first stage in which it may be recorded; ``branch``: a department whose
    approval branch must be approved (or conditional) first, when the step is that permit.
    """

    id: str
    name: str
    points: int
    recorded: bool = True
    earliest: str = "negotiating"
    branch: str | None = None


STEPS: tuple[Step, ...] = (
    Step("negotiating", "项目洽谈", 2, recorded=False),
    Step("site_visit", "实地考察", 2),
    Step("intent_letter", "意向协议", 3),
    Step("pre_review_submitted", "提交即时初审", 2, earliest="pre_review"),
    Step("pre_review_passed", "即时初审通过", 3, recorded=False),
    Step("decision_approved", "集体决策通过", 4, recorded=False),
    Step("signed", "正式签约", 8, recorded=False),
    Step("company_registered", "企业注册", 3, earliest="signed"),
    Step("task_force_named", "成立工作专班", 2, earliest="decision"),
    Step("agent_assigned", "代办员到位", 2),
    Step("project_filed", "立项备案", 4, earliest="approval", branch="fgw"),
    Step("land_secured", "用地落实", 6, earliest="approval", branch="zrzy"),
    Step("energy_review", "能评", 3, earliest="approval", branch="fgw"),
    Step("environmental_review", "环评", 3, earliest="approval", branch="sthj"),
    Step("safety_review", "安评", 3, earliest="approval", branch="yj"),
    Step("planning_permit", "规划许可", 4, earliest="approval", branch="zrzy"),
    Step("construction_permit", "施工许可", 5, earliest="approval", branch="zj"),
    Step("approval_complete", "审批办结", 5, recorded=False),
    Step("construction", "开工建设", 10, recorded=False),
    Step("main_structure", "主体完工", 6, earliest="construction"),
    Step("equipment_installed", "设备安装", 5, earliest="construction"),
    Step("trial_production", "试生产", 5, earliest="construction"),
    Step("production", "竣工投产", 10, recorded=False),
)
STEP_BY_ID = {step.id: step for step in STEPS}

# The seed names two items of each list; the rest are usual items of such lists [A].
POSITIVE = {
    "P01": "优化涉企服务",
    "P02": "推动经贸活动",
    "P03": "首问负责",
    "P04": "一次性告知",
    "P05": "限时办结",
    "P06": "帮办代办",
    "P07": "政策兑现到位",
    "P08": "协调解决企业难题",
    "P09": "上门服务",
    "P10": "政务信息公开",
}
NEGATIVE = {
    "N01": "政策歧视",
    "N02": "违规干预市场",
    "N03": "推诿拖延",
    "N04": "擅自增加审批材料",
    "N05": "多次告知补正",
    "N06": "违规收费",
    "N07": "吃拿卡要",
    "N08": "新官不理旧账",
    "N09": "重复检查",
    "N10": "泄露商业秘密",
}


@attrs.frozen
class JiangleSettings(CountySettings):
    """Jiangle's own numbers (see the module docstring for each default's source)."""

    step_points: Mapping[str, int] = attrs.field(
        factory=lambda: {step.id: step.points for step in STEPS}
    )
    positive: Mapping[str, str] = attrs.field(factory=lambda: dict(POSITIVE))
    negative: Mapping[str, str] = attrs.field(factory=lambda: dict(NEGATIVE))
    positive_points: int = 2
    negative_points: int = 5


config = CountyConfig(COUNTY, JiangleSettings())
configure = config.configure


@hookimpl
def approvalflow_check_settings(settings: Settings) -> Sequence[str]:
    """Refuse ``settings.plugins.jiangle`` values that do not fit JiangleSettings."""
    return config.problems(settings)


# -- events ---------------------------------------------------------------------------------------


def _task_force(data: dict[str, Any], p: Any, at: datetime) -> None:
    data["task_force"] = {"members": list(p["members"]), "policy": p.get("policy")}


def _conduct(data: dict[str, Any], p: Any, at: datetime) -> None:
    data.setdefault("conduct", []).append(
        {
            "item": p["item"],
            "list": p["list"],
            "department": p["department"],
            "at": at.isoformat(),
        }
    )


FOLDS: Mapping[str, Fold] = event_folds(
    COUNTY, {"task_force_formed": _task_force, "conduct_recorded": _conduct}
)


@hookimpl
def approvalflow_event_folds() -> Mapping[str, Fold]:
    """The task force and the conduct lists."""
    return FOLDS


# -- commands -------------------------------------------------------------------------------------


def record_step(ctx: Context) -> None:
    """Record one of the 23 steps the engine does not reach itself; its points follow."""
    step_id = read_choice(ctx.args, "step", [step.id for step in STEPS if step.recorded])
    step = STEP_BY_ID[step_id]
    state = ctx.state
    require_stage(ctx, step.earliest, "production", f"step {step.id} ({step.name}) comes later")
    if step.id in state.milestones:
        raise InvalidTransition(f"step {step.id} of {state.id} is completed already")
    if step.branch is not None:
        branch = state.branches.get(step.branch)
        if branch is None or branch.state not in ("approved", "conditional"):
            found = "has no such branch" if branch is None else f"is {branch.state}"
            raise InvalidTransition(
                f"step {step.id} needs approval.{step.branch} approved; it {found}"
            )
    if step.id == "agent_assigned" and state.agent is None:
        raise InvalidTransition(f"{state.id} has no agent yet (delegate first)")
    ctx.milestone(step.id)


def form_task_force(ctx: Context) -> None:
    """The project's one task force (一个项目一个专班), with its policy package."""
    require_stage(
        ctx, "decision", "production", "a task force follows the leading group's approval"
    )
    state = ctx.state
    if state.stage.startswith("decision.") and state.stage != "decision.approved":
        raise InvalidTransition(
            f"form_task_force needs the leading group's approval; {state.id} is {state.stage}"
        )
    if "task_force" in county_data(state, COUNTY):
        raise InvalidTransition(f"{state.id} has its task force already (一个项目一个专班)")
    members = read_id_list(ctx.args, "members")
    if not members:
        raise InvalidCommand("argument 'members' must name at least one actor")
    unknown = [m for m in members if ctx.actors.get(m) is None]
    if unknown:
        raise InvalidCommand(f"members {', '.join(unknown)} are not in the actor directory")
    policy = read_text(ctx.args, "policy", required=False)
    ctx.emit(f"{COUNTY}.task_force_formed", members=members, policy=policy)
    ctx.milestone("task_force_named")
    if state.agent is not None:
        ctx.milestone("agent_assigned")
    ctx.notify(f"{COUNTY}.task_force_formed", members, policy=policy)


def record_conduct(ctx: Context) -> None:
    """An item of the positive or negative list, for a unit; it moves the team's points."""
    own = config.of(ctx.settings)
    item = read_choice(ctx.args, "item", [*own.positive, *own.negative])
    listing = "positive" if item in own.positive else "negative"
    dept = ctx.args.get("department", ctx.state.department)
    if dept not in ctx.settings.departments:
        raise InvalidCommand(f"argument 'department': {dept!r} is not a department")
    read_text(ctx.args, "note", required=False)
    points = own.positive_points if listing == "positive" else -own.negative_points
    event = ctx.emit(f"{COUNTY}.conduct_recorded", item=item, list=listing, department=dept)
    # Points live in milestones (rule 11); a conduct item is one more, named after its event
    # so it is unique, and it may be negative, which the settings table cannot express.
    ctx.emit(
        "milestone_reached",
        milestone=f"{COUNTY}.conduct.{event.version}",
        team=ctx.state.team,
        points=points,
    )


COMMANDS = (
    CommandSpec(
        "record_step",
        (Party.RECRUITER,),
        record_step,
        ("step",),
        stage_trigger=None,
        summary="Jiangle: record a completed lifecycle step (23-step points).",
        title="登记完成环节",
    ),
    CommandSpec(
        "form_task_force",
        (Party.LEADER,),
        form_task_force,
        ("members", "policy"),
        stage_trigger=None,
        summary="Jiangle: the project's task force and policy package.",
        title="组建工作专班",
    ),
    CommandSpec(
        "record_conduct",
        (Party.LEADER,),
        record_conduct,
        ("item", "department", "note"),
        stage_trigger=None,
        summary="Jiangle: a positive or negative list item for a unit (moves points).",
        title="记入正负面清单",
    ),
)


# -- hooks ----------------------------------------------------------------------------------------


@hookimpl
def approvalflow_settings(settings: Settings) -> Mapping[str, Any] | None:
    """Pre-review and decision numbers set explicitly; the 23-step points table."""
    points: dict[str, int | None] = {name: None for name in MILESTONES}
    points.update(config.current.step_points)
    return {
        "pre_review": {
            "members": ["gxj", "fgw", "zrzy", "sthj"],
            "deadline_wd": 3,
            "silence": "overdue",
        },
        "decision": {"quorum": 0.5, "majority": 0.5},
        "points": points,
    }


@hookimpl
def approvalflow_commands() -> Sequence[CommandSpec]:
    """``record_step``, ``form_task_force``, ``record_conduct``."""
    return COMMANDS


@hookimpl
def approvalflow_check_command(context: Context, command: str) -> None:
    """入园通办: ``apply`` only once the project has its agent and task force."""
    if command != "apply":
        return
    project = context.state
    missing = []
    if project.agent is None:
        missing.append("an agent (delegate)")
    if "task_force" not in county_data(project, COUNTY):
        missing.append("its task force (form_task_force)")
    if missing:
        raise InvalidCommand(
            f"入园通办: {project.id}'s approvals are filed by its agent with its task force; "
            f"it needs {' and '.join(missing)} first"
        )


@hookimpl
def approvalflow_metrics(
    projects: Sequence[ProjectState], settings: Settings
) -> Mapping[str, Any] | None:
    """``jiangle.steps_completed`` (per team) and ``jiangle.conduct`` (per unit)."""
    steps: dict[str, int] = {}
    conduct: dict[str, dict[str, int]] = {}
    for state in projects:
        done = sum(1 for step in STEPS if step.id in state.milestones)
        steps[state.team] = steps.get(state.team, 0) + done
        for record in county_data(state, COUNTY).get("conduct", []):
            row = conduct.setdefault(record["department"], {"positive": 0, "negative": 0})
            row[record["list"]] += 1
    return {f"{COUNTY}.steps_completed": steps, f"{COUNTY}.conduct": conduct}
