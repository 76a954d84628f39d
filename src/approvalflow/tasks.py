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

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.errors import NotAuthorized
from approvalflow.model import Actor, Event
from approvalflow.project import Branch, ProjectState
from approvalflow.rules.authorization import BranchParties, authorize
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.settings import LadderStep, Settings
from approvalflow.states import TERMINAL, investment_project, stage_allows
from approvalflow.stores.serialization import from_epoch_us, to_epoch_us

if TYPE_CHECKING:
    from approvalflow.engine import Engine

__all__ = [
    "CARD_RANK",
    "TASK_COMMANDS",
    "TASK_KINDS",
    "DoneItem",
    "TaskItem",
    "TaskRow",
    "actor_parties",
    "done_items",
    "engine_done",
    "engine_tasks",
    "items_of_rows",
    "open_items",
    "sort_by_urgency",
    "task_records",
    "task_row_json",
    "task_row_of_json",
    "task_rows",
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
    if state.stage in TERMINAL:
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
    pledges, and a re-application for revoked branches."""
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
    if any(b.state == "revoked" for b in state.branches.values()) and may("apply"):
        add("next_step", ["apply"])


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
    rows = [
        task_row_of_json(party, text)
        for party, text in engine.store.task_rows(actor_parties(actor))
    ]
    rule_sets: dict[str, Settings] = {}

    def settings_for(fingerprint: str) -> Settings:
        # One project per rule set is loaded to read it (its rules_for), never one per item.
        found = rule_sets.get(fingerprint)
        if found is None:
            row = next(r for r in rows if r.settings_fingerprint == fingerprint)
            state = engine.store.load(row.project)
            found = engine.settings if state is None else engine.rules_for(state)
            rule_sets[fingerprint] = found
        return found

    found = items_of_rows(rows, actor, settings_for, calendar=engine.calendar, now=now)
    hook = engine.plugin_manager.hook.approvalflow_task_items
    if not hook.get_hookimpls():
        return found
    # A plugin's items come from its hook on each project's state (not kept by the stores).
    for state in engine.projects():
        settings = engine.rules_for(state)
        if state.stage not in TERMINAL:
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


# -- the task read model ---------------------------------------------------------------------
#
# An item depends on the actor directory (roles, departments, teams, recusals), which a store
# does not know. So a commit keeps each open item of the project as rows keyed by the PARTY that
# may act: a named actor (``actor:guo``), a role (``role:recruiter``) or a department
# (``dept:zj``). A task list maps the actor to its parties (``actor_parties``), selects the rows
# of those parties, and runs the same authorisation ``open_items`` runs on what each row carries
# (the project's named parties and the branch's handler and deputy), so it answers the very
# items ``open_items`` does without loading a project.


def _no_strings() -> tuple[str, ...]:
    return ()


def _no_cards() -> dict[str, str]:
    return {}


@attrs.frozen
class TaskRow:
    """One open item of a project, for the actors of one ``party``.

    ``check`` is the command whose authorisation decides whether an actor of the party may
    act; ``branch`` the named parties of the branch the item concerns. A ``review`` row
    (``department`` ``None``) stands for every unit yet to answer: the actor's own unit, unless
    it is among ``answered``; ``cards`` is each unit's warning card. ``commitment_only`` keeps
    an ``accept_commitment`` item to the departments the rule set lets commit.
    """

    project: str
    project_name: str
    party: str
    kind: str
    commands: tuple[str, ...] = attrs.field(converter=_tuple_of_str)
    check: str
    team: str
    applicant: str
    agent: str | None
    leader: str
    settings_fingerprint: str
    department: str | None = None
    deadline: datetime | None = None
    card: str | None = None
    branch: BranchParties | None = None
    answered: tuple[str, ...] = attrs.field(converter=_tuple_of_str, factory=_no_strings)
    cards: dict[str, str] = attrs.field(factory=_no_cards)
    commitment_only: bool = False


def _command_parties(command: str, state: ProjectState, department: str | None) -> list[str]:
    """The parties whose actors may send ``command`` on ``state`` (a superset: the
    authorisation at query time decides)."""
    from approvalflow.rules.authorization import Party

    if department is not None:
        return [f"dept:{department}"]
    found: list[str] = []
    for party in BUILTIN_COMMANDS[command].parties:
        if party is Party.APPLICANT:
            found.append(f"actor:{state.applicant}")
            if state.agent is not None:
                found.append(f"actor:{state.agent}")
        elif party is Party.LEADER:
            found.append(f"actor:{state.leader}")
        elif party in (Party.OFFICER, Party.HANDLER):
            found.append("role:officer")
        else:
            found.append(f"role:{party.value}")
    return list(dict.fromkeys(found))


def actor_parties(actor: Actor) -> list[str]:
    """Every party ``actor`` belongs to: its id, each of its roles and its department."""
    found = [f"actor:{actor.id}", *(f"role:{role}" for role in sorted(actor.roles))]
    if actor.department:
        found.append(f"dept:{actor.department}")
    return found


def task_rows(state: ProjectState) -> list[TaskRow]:
    """The task read model's rows of ``state``: every item it waits on, for every party that
    may act. Pure: the state alone, no actor, no rule set."""
    if state.stage in TERMINAL:
        return []
    rows: list[TaskRow] = []

    def add(
        kind: str,
        commands: Sequence[str],
        department: str | None = None,
        deadline: datetime | None = None,
        card: str | None = None,
        *,
        branch: Branch | None = None,
        parties: Sequence[str] | None = None,
        **extra: Any,
    ) -> None:
        check = commands[0]
        for party in parties or _command_parties(check, state, None):
            rows.append(
                TaskRow(
                    project=state.id,
                    project_name=state.name,
                    party=party,
                    kind=kind,
                    commands=tuple(commands),
                    check=check,
                    team=state.team,
                    applicant=state.applicant,
                    agent=state.agent,
                    leader=state.leader,
                    settings_fingerprint=state.settings_fingerprint,
                    department=department,
                    deadline=deadline,
                    card=card,
                    branch=(
                        BranchParties(
                            branch.department, branch.handler, branch.deputy, branch.deputy_until
                        )
                        if branch is not None
                        else None
                    ),
                    **extra,
                )
            )

    stage = state.stage
    for command in _NEXT_STEPS.get(stage, ()):
        add("next_step", [command])
    if stage == "pre_review.reviewing" and state.round is not None:
        round_ = state.round
        units = set(round_.ladders) | set(round_.cards_issued)
        cards = {
            unit: card
            for unit in units
            if (card := _last_card(round_.ladders.get(unit, ()), round_.cards_issued.get(unit, ())))
        }
        add(
            "review",
            ["opinion"],
            deadline=round_.due,
            answered=tuple(sorted(round_.opinions)),
            cards=cards,
        )
    elif stage == "pre_review.awaiting_materials":
        add("supply_materials", ["supply"])
    elif stage == "decision.pending":
        add("convene", ["convene"])
    elif stage == "decision.meeting" and state.meeting is not None:
        meeting = state.meeting
        voters = [f"actor:{a}" for a in sorted(meeting.present) if a not in meeting.votes]
        if voters:
            add("vote", ["vote"], parties=voters)
        add("close_meeting", ["close_meeting"])
    if stage == "approval":
        for dept, branch in state.branches.items():
            commands = [
                c for c in _OFFICER_COMMANDS if investment_project().branch.allows(branch.state, c)
            ]
            if commands:
                kind = "accept" if branch.state == "pending" else "decide"
                card = _last_card(branch.ladder, branch.cards_issued)
                add(kind, commands, dept, branch.due, card, branch=branch, parties=[f"dept:{dept}"])
        for dept, other in state.branches.items():
            if other.outstanding or other.state == "returned":
                add("supply_materials", ["supply"], dept, other.supply_due)
        for dept, other in state.branches.items():
            if other.state == "pending":
                add(
                    "accept_commitment",
                    ["accept_commitment"],
                    dept,
                    other.due,
                    commitment_only=True,
                )
        if any(b.state == "revoked" for b in state.branches.values()):
            add("next_step", ["apply"])
    if stage_allows("verify", stage):
        for dept, branch in state.branches.items():
            if branch.commitment and branch.state == "approved" and not branch.verified:
                add(
                    "verify",
                    ["verify"],
                    dept,
                    branch.verify_due,
                    branch=branch,
                    parties=[f"dept:{dept}"],
                )
    return rows


def items_of_rows(
    rows: Iterable[TaskRow],
    actor: Actor,
    settings_for: Callable[[str], Settings],
    *,
    calendar: WorkingCalendar,
    now: datetime,
) -> list[TaskItem]:
    """The items ``rows`` hold for ``actor`` at ``now``, most urgent first: the items
    ``open_items`` gives on the rows' projects. ``settings_for`` gives the rule set of a
    fingerprint (``Engine.rules_for_fingerprint``)."""
    found: dict[tuple[object, ...], TaskItem] = {}
    for row in rows:
        department = row.department
        card = row.card
        if row.kind == "review":
            department = actor.department
            if department is None or department in row.answered:
                continue
            card = row.cards.get(department)
        elif row.branch is not None and actor.department != row.branch.department:
            continue
        settings = settings_for(row.settings_fingerprint)
        if row.commitment_only and row.department not in settings.commitment.departments:
            continue
        try:
            authorize(
                BUILTIN_COMMANDS[row.check].parties,
                actor,
                command=row.check,
                project_id=row.project,
                team=row.team,
                applicant=row.applicant,
                agent=row.agent,
                leader=row.leader,
                settings=settings,
                branch=row.branch,
                now=now,
            )
        except NotAuthorized:
            continue
        key = (row.project, row.kind, row.commands, department)
        if key not in found:
            found[key] = TaskItem(
                actor=actor.id,
                project=row.project,
                project_name=row.project_name,
                kind=row.kind,
                commands=row.commands,
                department=department,
                deadline=row.deadline,
                working_days_left=working_days_left(row.deadline, calendar, now),
                card=card,
            )
    return sort_by_urgency(found.values())


def _moment(value: datetime | None) -> int | None:
    return None if value is None else to_epoch_us(value)


def _of_moment(value: int | None) -> datetime | None:
    return None if value is None else from_epoch_us(value)


def task_row_json(row: TaskRow) -> str:
    """``row`` as the text a store keeps (the store reads only its party)."""
    branch = row.branch
    return json.dumps(
        [
            row.project,
            row.project_name,
            row.kind,
            list(row.commands),
            row.check,
            row.team,
            row.applicant,
            row.agent,
            row.leader,
            row.settings_fingerprint,
            row.department,
            _moment(row.deadline),
            row.card,
            None
            if branch is None
            else [branch.department, branch.handler, branch.deputy, _moment(branch.deputy_until)],
            list(row.answered),
            row.cards,
            row.commitment_only,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def task_row_of_json(party: str, text: str) -> TaskRow:
    """The ``TaskRow`` of ``party`` a store kept as ``text`` (``task_row_json``)."""
    (
        project,
        project_name,
        kind,
        commands,
        check,
        team,
        applicant,
        agent,
        leader,
        fingerprint,
        department,
        deadline,
        card,
        branch,
        answered,
        cards,
        commitment_only,
    ) = json.loads(text)
    return TaskRow(
        project=project,
        project_name=project_name,
        party=party,
        kind=kind,
        commands=commands,
        check=check,
        team=team,
        applicant=applicant,
        agent=agent,
        leader=leader,
        settings_fingerprint=fingerprint,
        department=department,
        deadline=_of_moment(deadline),
        card=card,
        branch=None
        if branch is None
        else BranchParties(branch[0], branch[1], branch[2], _of_moment(branch[3])),
        answered=answered,
        cards=cards,
        commitment_only=commitment_only,
    )


def task_records(state: ProjectState) -> tuple[tuple[str, str], ...]:
    """(party, text) of every row of ``state``'s task read model, as a store keeps them."""
    return tuple((row.party, task_row_json(row)) for row in task_rows(state))
