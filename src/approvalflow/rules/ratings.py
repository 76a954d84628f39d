"""Service evaluation (好差评) and rectification (整改).

GB/T 39734-2020 (政务服务评价工作指南) and 国办发〔2019〕51号: the applicant rates each finished
service on five levels; a bad rating (不满意, 非常不满意) is sent back to the department, which
rectifies it within a county's number of working days (15 by default), and the applicant or the
efficiency office (效能办) confirms the rectification, or sends it back.

Here a "service" is an item that can be rated (``rating_items``): each decided approval branch
(``approval.<dept>``, approved, conditional or rejected) and the approval stage once the project
completed it (``approval``, against ``settings.ratings.stage_department``). Under stages
(``rules.stages``) each stage is a service of its own: each decided branch of a stage
(``approval.<stage>.<dept>``: a department may serve in several stages) and each stage whose lead
issued the combined result (``approval.<stage>``, against that lead; D168). The rectification is
watched like a branch limit: a warning, an overdue notice at its deadline (once), and the warning
ladder's cards when a county has a ladder. Its deadlines are timers derived from state
(``approvalflow.rules.timers``).
"""

from __future__ import annotations

from collections.abc import Mapping

from approvalflow.calendar import format_local
from approvalflow.errors import AlreadyRated, InvalidCommand, InvalidTransition, NotAuthorized
from approvalflow.project import Branch, ProjectState, Rating
from approvalflow.rules import arguments, stages
from approvalflow.rules.context import Context
from approvalflow.rules.ladder import step_time
from approvalflow.settings import Settings

__all__ = [
    "DECIDED_BRANCH_STATES",
    "LEVELS",
    "STAGE_ITEM",
    "check_confirm",
    "check_rate",
    "check_rectify",
    "confirm_rectification",
    "on_rectification_due",
    "on_rectification_warning",
    "rate",
    "rating_items",
    "rectify",
]

LEVELS: Mapping[int, str] = {
    5: "非常满意",
    4: "满意",
    3: "基本满意",
    2: "不满意",
    1: "非常不满意",
}
"""GB/T 39734-2020's five levels, by score."""

STAGE_ITEM = "approval"
"""The item of the approval stage as a whole (the single stage of the built-in workflow)."""

DECIDED_BRANCH_STATES: frozenset[str] = frozenset({"approved", "conditional", "rejected"})
"""A branch in one of these states has been decided (conditional: approved, permit withheld)."""


def rating_items(state: ProjectState, settings: Settings) -> dict[str, str]:
    """The items of ``state`` that can be rated now, each with the department it rates.

    Every decided approval branch (``approval.<dept>``), and the approval stage (``approval``)
    once the project completed it (the ``approval_complete`` milestone); under stages, each
    stage's decided branches (``approval.<stage>.<dept>``) and each stage whose result was
    issued (``approval.<stage>``, against its lead). Items rated already are
    included: whether one may be rated again is the rule's question (``AlreadyRated``). A
    workflow with more stages extends this one function.
    """
    found: dict[str, str] = {}
    if stages.staged(state):
        for stage_id, run in state.stage_runs.items():
            for dept, branch in stages.stage_branches(state, run).items():
                if _decided(branch):
                    found[f"{STAGE_ITEM}.{stage_id}.{dept}"] = dept
            if run.issued_at is not None:
                found[f"{STAGE_ITEM}.{stage_id}"] = run.lead
        return found
    for dept, branch in state.branches.items():
        if _decided(branch):
            found[f"{STAGE_ITEM}.{dept}"] = dept
    if "approval_complete" in state.milestones:
        found[STAGE_ITEM] = settings.ratings.stage_department
    return found


def _decided(branch: Branch) -> bool:
    return branch.state in DECIDED_BRANCH_STATES and branch.decided_at is not None


# -- rate -----------------------------------------------------------------------------------


def check_rate(ctx: Context) -> None:
    """State check before the arguments: nothing decided yet, or the named item not decided."""
    items = rating_items(ctx.state, ctx.settings)
    if not items:
        raise InvalidTransition(
            f"rate: nothing of {ctx.state.id} has been decided yet (a decided branch or the "
            "completed approval stage can be rated)"
        )
    item = ctx.args.get("item")
    if isinstance(item, str) and item not in items and _could_be_item(ctx.state, item):
        raise InvalidTransition(
            f"rate: {item} of {ctx.state.id} has not been decided yet "
            f"(decided: {', '.join(sorted(items))})"
        )


def _could_be_item(state: ProjectState, item: str) -> bool:
    """Whether ``item`` names something of ``state`` that may be decided later."""
    prefix, _, rest = item.partition(".")
    if prefix != STAGE_ITEM:
        return False
    if not stages.staged(state):
        return rest == "" or rest in state.branches
    stage_id, _, dept = rest.partition(".")
    spec = next((s for s in state.stage_plan if s.id == stage_id), None)
    return spec is not None and (dept == "" or dept in stages.stage_departments(state, spec))


def rate(ctx: Context) -> None:
    state = ctx.state
    items = rating_items(state, ctx.settings)
    item = arguments.text(ctx.args, "item", required=True)
    assert item is not None
    if item not in items:
        raise InvalidCommand(
            f"argument 'item': {item!r} is no item of {state.id} that can be rated "
            f"(decided: {', '.join(sorted(items))})"
        )
    score = ctx.args.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or score not in LEVELS:
        raise InvalidCommand(
            f"argument 'score' must be a whole number from 1 (非常不满意) to 5 (非常满意), "
            f"got {score!r}"
        )
    text = arguments.text(ctx.args, "text", required=False)
    if item in state.ratings:
        earlier = state.ratings[item]
        raise AlreadyRated(
            f"{item} of {state.id} was rated already ({earlier.score}, "
            f"{LEVELS[earlier.score]}, on {format_local(earlier.at)}): one rating per item"
        )
    dept = items[item]
    ctx.emit(
        "rated",
        item=item,
        department=dept,
        score=score,
        level=LEVELS[score],
        text=text,
        rated_by=ctx.by,
    )
    rectification_due: str | None = None
    if score <= 2:
        rectification_due = _open_rectification(ctx, item, dept)
    ctx.notify(
        "rating_recorded",
        (*ctx.department_actors(dept, "officer"), *_efficiency_office(ctx)),
        item=item,
        department=dept,
        department_name=ctx.settings.department_name(dept),
        score=score,
        level=LEVELS[score],
        text=text,
        rated_at=format_local(ctx.now),
        rated_by=ctx.by,
        on_behalf_of=ctx.on_behalf_of,
        applicant=state.applicant,
        project_name=state.name,
        project_code=state.project_code,
        rectification_due=rectification_due,
    )


def _open_rectification(ctx: Context, item: str, dept: str) -> str:
    settings = ctx.settings.ratings
    due = ctx.working_days_after(settings.rectification_wd)
    warning_due = (
        step_time(ctx.calendar, due.at, settings.warning_before_wd)
        if settings.warning_before_wd > 0
        else None
    )
    ctx.emit(
        "rectification_opened",
        item=item,
        department=dept,
        due=due.at.isoformat(),
        provisional=due.provisional,
        warning_due=warning_due.isoformat() if warning_due else None,
        ladder=[step.to_dict() for step in ctx.ladder_for("rectification", dept)],
    )
    return format_local(due.at)


# -- rectify --------------------------------------------------------------------------------


def _open_of(state: ProjectState, dept: str | None, status: str) -> list[Rating]:
    return [
        rating
        for rating in state.ratings.values()
        if rating.rectification == status and (dept is None or rating.department == dept)
    ]


def check_rectify(ctx: Context) -> None:
    """The officer's department must owe a rectification; naming another's is not theirs."""
    dept = ctx.actor.department if ctx.actor else None
    item = ctx.args.get("item")
    named = ctx.state.ratings.get(item) if isinstance(item, str) else None
    if named is not None and named.rectification is not None and named.department != dept:
        raise NotAuthorized(
            f"{ctx.by} may not rectify {item} of {ctx.state.id}: it is {named.department}'s "
            f"rectification, and {ctx.by} is of {dept}"
        )
    if named is not None and named.rectification is not None and named.rectification != "open":
        raise InvalidTransition(
            f"rectify: the rectification of {item} of {ctx.state.id} is {named.rectification}, "
            "not open"
        )
    if not _open_of(ctx.state, dept, "open"):
        raise InvalidTransition(f"rectify: {dept} owes no rectification on {ctx.state.id}")


def rectify(ctx: Context) -> None:
    dept = ctx.actor.department if ctx.actor else None
    rating = _chosen(ctx, _open_of(ctx.state, dept, "open"), "rectify")
    text = arguments.text(ctx.args, "text", required=True)
    ctx.emit("rectified", item=rating.item, department=rating.department, text=text)
    state = ctx.state
    ctx.notify(
        "rectified",
        (state.applicant, state.agent, *_efficiency_office(ctx)),
        item=rating.item,
        department=rating.department,
        text=text,
        due=format_local(rating.due) if rating.due else None,
    )


def _chosen(ctx: Context, candidates: list[Rating], command: str) -> Rating:
    """The rating the command is about: ``item`` if given, else the only candidate."""
    item = arguments.text(ctx.args, "item", required=False)
    if item is None:
        if len(candidates) == 1:
            return candidates[0]
        raise InvalidCommand(
            f"argument 'item' is required: {command} could be about "
            f"{', '.join(sorted(r.item for r in candidates))}"
        )
    for rating in candidates:
        if rating.item == item:
            return rating
    raise InvalidCommand(
        f"argument 'item': {item!r} is not awaiting {command} on {ctx.state.id} "
        f"(awaiting: {', '.join(sorted(r.item for r in candidates))})"
    )


# -- confirm_rectification ------------------------------------------------------------------


def check_confirm(ctx: Context) -> None:
    item = ctx.args.get("item")
    named = ctx.state.ratings.get(item) if isinstance(item, str) else None
    if named is not None and named.rectification not in (None, "rectified"):
        raise InvalidTransition(
            f"confirm_rectification: the rectification of {item} of {ctx.state.id} is "
            f"{named.rectification}, not rectified"
        )
    if not _open_of(ctx.state, None, "rectified"):
        raise InvalidTransition(
            f"confirm_rectification: no rectification of {ctx.state.id} awaits confirmation"
        )


def confirm_rectification(ctx: Context) -> None:
    rating = _chosen(ctx, _open_of(ctx.state, None, "rectified"), "confirm_rectification")
    confirmed = arguments.flag(ctx.args, "confirmed")
    reason = arguments.text(ctx.args, "reason", required=not confirmed)
    ctx.emit(
        "rectification_confirmed",
        item=rating.item,
        department=rating.department,
        confirmed=confirmed,
        reason=reason,
    )
    state = ctx.state
    officers = ctx.department_actors(rating.department, "officer")
    ctx.notify(
        "rectification_closed" if confirmed else "rectification_reopened",
        (*officers, state.applicant, state.agent, *_efficiency_office(ctx)),
        item=rating.item,
        department=rating.department,
        reason=reason,
        due=format_local(rating.due) if rating.due else None,
    )


# -- deadlines ------------------------------------------------------------------------------


def on_rectification_warning(ctx: Context, item: str) -> None:
    rating = ctx.state.ratings.get(item)
    if rating is None or rating.rectification != "open" or rating.warning_sent:
        return
    ctx.emit("rectification_warned", item=item, department=rating.department)
    ctx.notify(
        "rectification_warning",
        ctx.department_actors(rating.department, "officer"),
        item=item,
        department=rating.department,
        due=format_local(rating.due) if rating.due else None,
        working_days_left=ctx.settings.ratings.warning_before_wd,
    )


def on_rectification_due(ctx: Context, item: str) -> None:
    rating = ctx.state.ratings.get(item)
    if rating is None or rating.rectification != "open" or rating.overdue_sent:
        return
    ctx.emit("rectification_overdue", item=item, department=rating.department)
    ctx.notify(
        "overdue",
        (
            ctx.state.leader,
            *ctx.department_actors(rating.department, "officer"),
            *_efficiency_office(ctx),
        ),
        department=rating.department,
        stage="rectification",
        item=item,
    )


def _efficiency_office(ctx: Context) -> tuple[str, ...]:
    return tuple(a.id for a in ctx.actors if "efficiency_office" in a.roles)
