"""The task list: what each person can act on now (待办), and what they have done (已办).

``open_items`` is a pure read of one project's state: for one actor, every item the project
waits on from them (a review to give, a branch to accept or decide, a vote to cast, materials
to supply, a commitment to verify, the next step of the project's life), each with the
command(s) that answer it, its deadline, the working days left and the warning card it shows.
Who may act is decided by the same authorisation the engine runs (``authorize``), so the list
never offers a command the engine would refuse the actor as ``NotAuthorized``; where it may act
follows the stage and branch tables. Plugins add their own kinds of item through the
``approvalflow_task_items`` hook (``Engine.tasks`` merges them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.errors import NotAuthorized
from approvalflow.model import Actor, Event
from approvalflow.project import Branch, ProjectState
from approvalflow.rules import stages
from approvalflow.rules.authorization import BranchParties, authorize
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.settings import LadderStep, Settings
from approvalflow.states import TERMINAL, investment_project, stage_allows

if TYPE_CHECKING:
    from approvalflow.engine import Engine

__all__ = [
    "CARD_RANK",
    "TASK_COMMANDS",
    "TASK_KINDS",
    "DoneItem",
    "TaskItem",
    "done_items",
    "engine_done",
    "engine_tasks",
    "open_items",
    "sort_by_urgency",
    "working_days_left",
]

TASK_KINDS: tuple[str, ...] = (
    "review",  # a pre-review member unit's opinion
    "supply_materials",  # the one-time notice's list, a deficient branch's, or corrections
    "convene",  # the chair opens a leading-group meeting
    "vote",  # a member present at the meeting votes
    "close_meeting",  # the chair tallies
    "accept",  # an officer accepts (or returns, or rejects) a pending branch
    "decide",  # an officer approves (or returns, or rejects) an accepted branch
    "accept_commitment",  # the applicant pledges for a commitment-eligible branch
    "verify",  # an officer verifies a commitment
    "consent_removal",  # the leader consents to a removal (减签) from a priority project
    "issue_stage_result",  # the lead department issues a decided stage's result (统一出件)
    "rectify",  # a department rectifies after a bad rating (差评整改)
    "confirm_rectification",  # the applicant or the efficiency office confirms it
    "next_step",  # the project's own next step: negotiate, submit, sign, apply, start...
)
"""The built-in kinds of item; a plugin's items may use kinds of their own."""

TASK_COMMANDS: frozenset[str] = frozenset(
    {
        "negotiate",
        "submit_pre_review",
        "opinion",
        "supply",
        "convene",
        "vote",
        "close_meeting",
        "sign",
        "apply",
        "accept",
        "return",
        "approve",
        "reject",
        "accept_commitment",
        "verify",
        "consent_remove_department",
        "issue_stage_result",
        "rectify",
        "confirm_rectification",
        "start_construction",
        "start_production",
        "reach_target",
    }
)
"""The built-in commands that answer a wait. Commands allowed at any time (``withdraw``,
``terminate``, ``delegate``, ``report_funds``, ``urge``, ``copy``...) are not items: nothing
waits on them."""

CARD_RANK: Mapping[str, int] = {"early_warning": 1, "yellow_card": 2, "red_card": 3}
"""The built-in ladder's cards, mildest first; an unknown card ranks above them all."""

_NEXT_STEPS: Mapping[str, tuple[str, ...]] = {
    "lead": ("negotiate",),
    "negotiating": ("submit_pre_review",),
    "decision.approved": ("sign",),
    "signed": ("apply",),
    "approved": ("start_construction",),
    "construction": ("start_production",),
    "production": ("reach_target",),
}
_OFFICER_COMMANDS = ("accept", "approve", "return", "reject")
_ONE_DAY = timedelta(days=1)


def _tuple_of_str(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class TaskItem:
    """One thing a project waits on from ``actor``.

    ``commands`` are the commands that answer it (``accept`` on a pending branch, or ``return``
    or ``reject`` it); ``department`` names the unit or branch it concerns, if any.
    ``deadline`` is the moment it is due (24:00 local of the last working day), ``None`` when
    no deadline runs; ``working_days_left`` counts from today to that day (0: due tonight,
    negative: late); ``card`` is the warning card the item shows, if any.
    """

    actor: str
    project: str
    project_name: str
    kind: str
    commands: tuple[str, ...] = attrs.field(converter=_tuple_of_str)
    department: str | None = None
    deadline: datetime | None = None
    working_days_left: int | None = None
    card: str | None = None


@attrs.frozen
class DoneItem:
    """One command ``actor`` sent (or an agent or deputy sent for them): what it recorded.

    ``what`` is the first event the command recorded (``opinion_given``, ``branch_accepted``...),
    ``events`` all of them; ``version`` is the project's version after it.
    """

    actor: str
    project: str
    project_name: str
    what: str
    at: datetime
    version: int
    events: tuple[str, ...] = attrs.field(converter=_tuple_of_str, default=())
    by: str | None = None
    on_behalf_of: str | None = None


def working_days_left(
    deadline: datetime | None, calendar: WorkingCalendar, now: datetime
) -> int | None:
    """Working days from ``now``'s day to the deadline's last day; negative once it passed."""
    if deadline is None:
        return None
    today = to_local(now).date()
    due_day = (to_local(deadline) - _ONE_DAY).date()
    if due_day >= today:
        return calendar.working_days_between(today, due_day)
    return -calendar.working_days_between(due_day, today)


def open_items(
    state: ProjectState,
    settings: Settings,
    actor: Actor,
    *,
    calendar: WorkingCalendar,
    now: datetime,
) -> list[TaskItem]:
    """Every item ``state`` waits on from ``actor`` at ``now``, most urgent first.

    ``settings`` is the rule set the project is pinned to (``Engine.rules_for``).
    """
    if state.stage in TERMINAL and not state.ratings:
        return []
    found: list[TaskItem] = []

    def may(command: str, branch: Branch | None = None) -> bool:
        parties = (
            BranchParties(branch.department, branch.handler, branch.deputy, branch.deputy_until)
            if branch is not None
            else None
        )
        try:
            authorize(
                BUILTIN_COMMANDS[command].parties,
                actor,
                command=command,
                project_id=state.id,
                team=state.team,
                applicant=state.applicant,
                agent=state.agent,
                leader=state.leader,
                settings=settings,
                branch=parties,
                now=now,
            )
        except NotAuthorized:
            return False
        return True

    def add(
        kind: str,
        commands: Sequence[str],
        department: str | None = None,
        deadline: datetime | None = None,
        card: str | None = None,
    ) -> None:
        found.append(
            TaskItem(
                actor=actor.id,
                project=state.id,
                project_name=state.name,
                kind=kind,
                commands=tuple(commands),
                department=department,
                deadline=deadline,
                working_days_left=working_days_left(deadline, calendar, now),
                card=card,
            )
        )

    if state.ratings:
        _rectification_items(state, actor, may, add)
    if state.stage in TERMINAL:
        return sort_by_urgency(found)
    stage = state.stage
    steps = [c for c in _NEXT_STEPS.get(stage, ()) if may(c)]
    if steps:
        add("next_step", steps)
    if stage == "pre_review.reviewing" and state.round is not None:
        unit = actor.department
        round_ = state.round
        if unit is not None and unit not in round_.opinions and may("opinion"):
            card = _last_card(round_.ladders.get(unit, ()), round_.cards_issued.get(unit, ()))
            add("review", ["opinion"], unit, round_.due, card)
    elif stage == "pre_review.awaiting_materials":
        if may("supply"):
            add("supply_materials", ["supply"])
    elif stage == "decision.pending":
        if may("convene"):
            add("convene", ["convene"])
    elif stage == "decision.meeting" and state.meeting is not None:
        meeting = state.meeting
        if actor.id in meeting.present and actor.id not in meeting.votes and may("vote"):
            add("vote", ["vote"])
        if may("close_meeting"):
            add("close_meeting", ["close_meeting"])
    if stage == "approval":
        _approval_items(state, settings, actor, may, add)
    if stage_allows("verify", stage) and actor.department in state.branches:
        branch = state.branches[actor.department]
        awaiting = branch.commitment and branch.state == "approved" and not branch.verified
        if awaiting and may("verify", branch):
            add("verify", ["verify"], branch.department, branch.verify_due)
    return sort_by_urgency(found)


def _approval_items(
    state: ProjectState,
    settings: Settings,
    actor: Actor,
    may: Callable[..., bool],
    add: Callable[..., None],
) -> None:
    """The approval stage's items: the actor's own branch, the applicant's supplies and
    pledges, the leader's consent to a removal, a re-application for revoked branches, and
    under stages the lead department's combined result once every branch of the running stage
    is approved."""
    branch = state.branches.get(actor.department) if actor.department else None
    if branch is not None:
        commands = [
            c for c in _OFFICER_COMMANDS if investment_project().branch.allows(branch.state, c)
        ]
        if commands and may(commands[0], branch):
            kind = "accept" if branch.state == "pending" else "decide"
            add(
                kind,
                commands,
                branch.department,
                branch.due,
                _last_card(branch.ladder, branch.cards_issued),
            )
    if may("supply"):
        for dept, other in state.branches.items():
            if other.outstanding or other.state == "returned":
                add("supply_materials", ["supply"], dept, other.supply_due)
    if may("accept_commitment"):
        for dept, other in state.branches.items():
            if other.state == "pending" and dept in settings.commitment.departments:
                add("accept_commitment", ["accept_commitment"], dept, other.due)
    if state.removal_requests and may("consent_remove_department"):
        for request in state.removal_requests:
            add("consent_removal", ["consent_remove_department"], request.department)
    if any(b.state == "revoked" for b in state.branches.values()) and may("apply"):
        add("next_step", ["apply"])
    run = stages.current_stage(state)
    if (
        run is not None
        and actor.department == run.lead
        and stages.stage_ready(state, run)
        and may("issue_stage_result")
    ):
        add(
            "issue_stage_result",
            ["issue_stage_result"],
            run.lead,
            run.due,
            _last_card(run.ladder, run.cards_issued),
        )


def _rectification_items(
    state: ProjectState,
    actor: Actor,
    may: Callable[..., bool],
    add: Callable[..., None],
) -> None:
    """好差评: the department's open rectifications, with their deadline and card, and the
    rectified ones awaiting the applicant's or the efficiency office's confirmation. Rating
    itself is not an item: it is the enterprise's choice (D156)."""
    for rating in state.ratings.values():
        if rating.rectification == "open" and rating.department == actor.department:
            if may("rectify"):
                add(
                    "rectify",
                    ["rectify"],
                    rating.department,
                    rating.due,
                    _last_card(rating.ladder, rating.cards_issued),
                )
        elif rating.rectification == "rectified" and may("confirm_rectification"):
            add("confirm_rectification", ["confirm_rectification"], rating.department)


def _last_card(steps: Sequence[LadderStep], issued: Sequence[int]) -> str | None:
    # Steps are issued in time order, so the last one issued is the card the item shows.
    return steps[issued[-1]].card if issued else None


def sort_by_urgency(items: Iterable[TaskItem]) -> list[TaskItem]:
    """The earliest deadline first (late ones lead), the sharper card first at one deadline,
    then items with no deadline; ties by project, kind and department, so the order is stable."""
    return sorted(
        items,
        key=lambda i: (
            i.deadline is None,
            i.deadline or datetime.min,
            -(CARD_RANK.get(i.card, len(CARD_RANK) + 1) if i.card else 0),
            i.project,
            i.kind,
            i.department or "",
        ),
    )


def done_items(history: Iterable[Event], project_name: str, actor: str) -> list[DoneItem]:
    """The commands in one project's ``history`` that ``actor`` sent, or that an agent or
    deputy sent on their behalf, oldest first. A command's events are consecutive and share
    their moment, sender and command id (so two commands of one sender at the very same
    moment, as on a test's stopped clock, read as one)."""
    found: list[DoneItem] = []
    last_key: tuple[object, ...] | None = None
    for event in history:
        key = (event.at, event.by, event.on_behalf_of, event.command_id)
        if event.by != actor and event.on_behalf_of != actor:
            last_key = key
            continue
        if key == last_key and found:
            previous = found[-1]
            found[-1] = attrs.evolve(
                previous, version=event.version, events=(*previous.events, event.type)
            )
            continue
        last_key = key
        found.append(
            DoneItem(
                actor=actor,
                project=event.project,
                project_name=project_name,
                what=event.type,
                at=event.at,
                version=event.version,
                events=(event.type,),
                by=event.by,
                on_behalf_of=event.on_behalf_of,
            )
        )
    return found


def _known(engine: Engine, actor_id: str, what: str) -> Actor:
    actor = engine.actors.get(actor_id) if isinstance(actor_id, str) else None
    if actor is None:
        raise NotAuthorized(f"{actor_id!r} may not read {what}: not in the actor directory")
    return actor


def engine_tasks(engine: Engine, actor_id: str, now: datetime | None = None) -> list[TaskItem]:
    """``open_items`` over every project of ``engine``'s store, with the plugins' items."""
    actor = _known(engine, actor_id, "a task list")
    now = now or engine.clock.now()
    hook = engine.plugin_manager.hook.approvalflow_task_items
    with_plugins = bool(hook.get_hookimpls())
    found: list[TaskItem] = []
    for state in engine.projects():
        settings = engine.rules_for(state)
        found.extend(open_items(state, settings, actor, calendar=engine.calendar, now=now))
        if with_plugins and state.stage not in TERMINAL:
            for extra in hook(project=state, settings=settings):
                found.extend(
                    attrs.evolve(
                        item,
                        working_days_left=working_days_left(item.deadline, engine.calendar, now),
                    )
                    if item.working_days_left is None and item.deadline is not None
                    else item
                    for item in extra or ()
                    if item.actor == actor.id
                )
    return sort_by_urgency(found)


def engine_done(engine: Engine, actor: str) -> list[DoneItem]:
    """``done_items`` over every project of ``engine``'s store, the latest first."""
    _known(engine, actor, "what was done")
    found: list[DoneItem] = []
    for state in engine.projects():
        found.extend(done_items(engine.store.events(state.id), state.name, actor))
    return sorted(found, key=lambda d: (d.at, d.project, d.version), reverse=True)
