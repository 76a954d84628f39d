"""The task list: what each person can act on now (待办), and what they have done (已办).

``open_items`` is a pure read of one project's state: for one actor, every item the project
waits on from them (a review to give, a branch to accept or decide, a vote to cast, materials
to supply, a commitment to verify, a stage's result to issue, a removal to consent to, a
rectification to do or confirm, the next step of the project's life), each with the
command(s) that answer it, its deadline, the working days left and the warning card it shows.
Who may act is decided by the same authorisation the engine runs (``authorize``), so the list
never offers a command the engine would refuse the actor as ``NotAuthorized``; where it may act
follows the stage and branch tables. Plugins add their own kinds of item through the
``approvalflow_task_items`` hook (``Engine.tasks`` merges them).

There is one derivation of the built-in items (D170): ``task_parts`` turns a state into rows,
each item once per party that may act, kind by kind as ``ITEM_KINDS`` lists them. The stores
keep those rows with each commit (their read model), ``Engine.tasks`` selects the rows of the
actor's parties and authorises each (``items_of_rows``), and ``open_items`` does the same over
one loaded state's rows. ``Engine.done`` reads the actor's events by an index
(``Store.actor_events``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from approvalflow.calendar import WorkingCalendar, to_local
from approvalflow.errors import NotAuthorized
from approvalflow.inputs import check_limit, check_moment
from approvalflow.model import Actor, Event
from approvalflow.project import Branch, ProjectState, Rating
from approvalflow.rules import commitment, parallel_approval, stages
from approvalflow.rules.authorization import BranchParties, Party, authorize
from approvalflow.rules.branches import branch_allows
from approvalflow.rules.commands import BUILTIN_COMMANDS
from approvalflow.rules.holdups import Holdup, LateDue
from approvalflow.settings import CARD_RANK, LadderStep, Settings
from approvalflow.states import BRANCH_OPEN, TERMINAL, investment_project, stage_allows
from approvalflow.stores.projections import DueGroup, TaskRow, due_groups_of_rows
from approvalflow.stores.serialization import from_epoch_us, to_epoch_us

if TYPE_CHECKING:
    from approvalflow.engine import Engine

__all__ = [
    "CARD_RANK",
    "ITEM_KINDS",
    "LATE_KINDS",
    "NOT_WAITED_ON",
    "TASK_COMMANDS",
    "TASK_KINDS",
    "DoneItem",
    "ItemKind",
    "TaskItem",
    "actor_parties",
    "done_items",
    "engine_done",
    "engine_tasks",
    "items_of_rows",
    "late_of_rows",
    "late_summary_of_groups",
    "late_summary_of_rows",
    "open_items",
    "part_name",
    "sort_by_urgency",
    "task_parts",
    "task_rows",
    "working_days_left",
]


@attrs.frozen
class ItemKind:
    """One built-in kind of task item: the commands that answer it and the parts of a project's
    task rows it is derived in (``part_name``: ``project``, the project as a whole; ``branch``,
    one branch; ``stage``, the running approval stage; ``removals``, the removals waiting for
    consent; ``rating``, one rating's rectification)."""

    name: str
    commands: tuple[str, ...]
    parts: tuple[str, ...]
    summary: str


ITEM_KINDS: tuple[ItemKind, ...] = (
    ItemKind("review", ("opinion",), ("project",), "a pre-review member unit's opinion"),
    ItemKind(
        "supply_materials",
        ("supply",),
        ("project", "branch"),
        "the one-time notice's list, a deficient branch's, or corrections",
    ),
    ItemKind("convene", ("convene",), ("project",), "the chair opens a leading-group meeting"),
    ItemKind("vote", ("vote",), ("project",), "a member present at the meeting votes"),
    ItemKind("close_meeting", ("close_meeting",), ("project",), "the chair tallies"),
    ItemKind(
        "accept",
        ("accept", "return", "reject"),
        ("branch",),
        "an officer accepts (or returns, or rejects) a pending branch",
    ),
    ItemKind(
        "decide",
        ("approve", "return", "reject"),
        ("branch",),
        "an officer approves (or returns, or rejects) an accepted branch",
    ),
    ItemKind(
        "accept_commitment",
        ("accept_commitment",),
        ("branch",),
        "the applicant pledges for a commitment-eligible branch",
    ),
    ItemKind("verify", ("verify",), ("branch",), "an officer verifies a commitment"),
    ItemKind(
        "consent_removal",
        ("consent_remove_department",),
        ("removals",),
        "the leader consents to a removal (减签) from a priority project",
    ),
    ItemKind(
        "issue_stage_result",
        ("issue_stage_result",),
        ("stage",),
        "the lead department issues a decided stage's result (统一出件)",
    ),
    ItemKind("rectify", ("rectify",), ("rating",), "a department rectifies after a bad rating"),
    ItemKind(
        "confirm_rectification",
        ("confirm_rectification",),
        ("rating",),
        "the applicant or the efficiency office confirms a rectification",
    ),
    ItemKind(
        "next_step",
        (
            "negotiate",
            "submit_pre_review",
            "sign",
            "apply",
            "start_construction",
            "start_production",
            "reach_target",
        ),
        ("project",),
        "the project's own next step: negotiate, submit, sign, apply, start...",
    ),
)
"""Every built-in kind of item, in one table: ``task_parts`` derives each kind's rows in the
parts named here, with these commands (``tests/test_tasks.py`` holds every row to its kind and
requires every kind and command here to come out of the rows), ``open_items`` reads those rows,
and ``TASK_COMMANDS`` (what a reference tries) is the table's commands. A built-in command is
either answered by a kind here or listed in ``NOT_WAITED_ON``; a test holds the two to
``BUILTIN_COMMANDS``, so a new command cannot be left out of both."""

TASK_KINDS: tuple[str, ...] = tuple(kind.name for kind in ITEM_KINDS)
"""The built-in kinds of item; a plugin's items may use kinds of their own."""

TASK_COMMANDS: frozenset[str] = frozenset(c for kind in ITEM_KINDS for c in kind.commands)
"""The built-in commands that answer a wait (``ITEM_KINDS``' commands)."""

NOT_WAITED_ON: frozenset[str] = frozenset(
    {
        "create",
        "withdraw",
        "terminate",
        "delegate",
        "report_funds",
        "urge",
        "copy",
        "transfer",
        "entrust",
        "extend_limit",
        "pause_clock",
        "resume_clock",
        "add_department",
        "remove_department",
        "rate",
        "migrate_rules",
    }
)
"""The built-in commands that are no item: allowed whenever their party chooses, nothing waits
on them (a withdrawal, a transfer, 加签/减签 themselves, a rating: D156...)."""


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
    negative: late); ``card`` is the warning card the item shows, if any. ``item`` is the
    rated item a rectification (or its confirmation) is about, as the ``item`` argument of
    ``rectify`` and ``confirm_rectification`` names it (``approval.two.zj``: a stage's branch;
    ``approval.two``: the stage's result); ``None`` for every other kind (D187).
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
    item: str | None = None


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

    ``settings`` is the rule set the project is pinned to (``Engine.rules_for``). The items
    are the state's task rows (``task_parts``) of the actor's parties, authorised as the
    stores' task list authorises them (``items_of_rows``): one derivation for both (D170).
    """
    parties = set(actor_parties(actor))
    rows = [row for part in task_parts(state).values() for row in part if row.party in parties]
    return items_of_rows(rows, actor, lambda _row: settings, calendar=calendar, now=now)


def _last_card(steps: Sequence[LadderStep], issued: Sequence[int]) -> str | None:
    # Steps are issued in time order, so the last one issued is the card the item shows.
    return steps[issued[-1]].card if issued else None


def sort_by_urgency(items: Iterable[TaskItem]) -> list[TaskItem]:
    """The earliest deadline first (late ones lead), the sharper card first at one deadline
    (``CARD_RANK``, by the ladder's card names; a card it does not know, a plugin's, ranks
    above them all), then items with no deadline; ties by project, kind and department, so the
    order is stable."""
    return sorted(
        items,
        key=lambda i: (
            i.deadline is None,
            i.deadline or datetime.min,
            -(CARD_RANK.get(i.card, len(CARD_RANK) + 1) if i.card else 0),
            i.project,
            i.kind,
            i.department or "",
            i.item or "",
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
    """The task list of ``actor_id``: the store's task rows of its parties, authorised at
    ``now`` (``items_of_rows``), with the plugins' items; over every project's state
    (``open_items``) when the store keeps no task rows."""
    actor = _known(engine, actor_id, "a task list")
    now = engine.clock.now() if now is None else check_moment(now)
    rows = engine.store.task_rows(actor_parties(actor))
    if rows is None:
        found = [
            item
            for state in engine.projects()
            for item in open_items(
                state, engine.rules_for(state), actor, calendar=engine.calendar, now=now
            )
        ]
    else:

        def settings_for(row: TaskRow) -> Settings:
            return engine.rules_for_fingerprint(row.fingerprint, row.project)

        found = items_of_rows(rows, actor, settings_for, calendar=engine.calendar, now=now)
    hook = engine.plugin_manager.hook.approvalflow_task_items
    if hook.get_hookimpls():
        # A plugin's items come from its hook on each open project's state (D109).
        for state in engine.projects():
            if state.stage in TERMINAL:
                continue
            for extra in hook(project=state, settings=engine.rules_for(state)):
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


def engine_done(engine: Engine, actor: str, limit: int | None = None) -> list[DoneItem]:
    """``done_items`` over the events the store holds of ``actor`` (sent by them or on their
    behalf, read by an index), the latest first; with ``limit``, the first ``limit`` of that
    list, read from the actor's latest events only (D175)."""
    _known(engine, actor, "what was done")
    if limit is not None:
        check_limit(limit)
    window = None if limit is None else max(4 * limit, 64)
    while True:
        events = engine.store.actor_events(actor, window)
        complete = window is None or len(events) < window
        items = _done_of_events(events, actor)
        if not complete and events:
            # The oldest moment read may hold part of a command (or of a run of commands that
            # read as one, D175): its items are left out, and every item kept is whole and
            # later than anything not read.
            oldest = min(event.at for event in events)
            items = [item for item in items if item.at > oldest]
        if complete or (limit is not None and len(items) >= limit):
            break
        window = None if window is None else window * 4
    found = sorted(items, key=lambda d: (d.at, d.project, d.version), reverse=True)
    found = found if limit is None else found[:limit]
    names = {
        project: str(event.payload.get("name", project))
        for project, event in engine.store.first_events(
            list(dict.fromkeys(item.project for item in found))
        ).items()
    }
    return [
        attrs.evolve(item, project_name=names.get(item.project, item.project)) for item in found
    ]


def _done_of_events(events: Iterable[Event], actor: str) -> list[DoneItem]:
    """``done_items`` of each project's events among ``events`` (by project and version),
    each named by its project's id until the names are read."""
    by_project: dict[str, list[Event]] = {}
    for event in events:
        by_project.setdefault(event.project, []).append(event)
    found: list[DoneItem] = []
    for project, history in by_project.items():
        found.extend(done_items(history, project, actor))
    return found


# -- the task read model ---------------------------------------------------------------------
#
# An item depends on the actor directory (roles, departments, teams, recusals) and on the rule
# set, which a store knows neither of. So a commit keeps each open item of the project as rows
# keyed by the PARTY that may act: a named actor (``actor:guo``), a role (``role:reviewer``)
# or a department (``dept:zj``). A task list maps the actor to its parties (``actor_parties``),
# selects the rows of those parties, and runs the same authorisation ``open_items`` runs on
# what each row carries (the project's named parties, the branch's handler and deputy, the
# rule set's fingerprint), so it answers the very items ``open_items`` does without loading a
# project. Rows are plain columns: deriving them is a few tuples, and a store compares them
# with the rows the project had to write only the difference.

_SEP = "\x1f"  # between the units of a review row's ``answered`` and ``cards``


def actor_parties(actor: Actor) -> list[str]:
    """Every party ``actor`` belongs to: its id, each of its roles and its department."""
    found = [f"actor:{actor.id}", *(f"role:{role}" for role in sorted(actor.roles))]
    if actor.department:
        found.append(f"dept:{actor.department}")
    return found


def _parties_of(command: str, state: ProjectState) -> tuple[str, ...]:
    """The parties whose actors may send ``command`` on ``state`` (a superset: the
    authorisation at query time decides)."""
    found = _ROLE_PARTIES.get(command)
    if found is not None:
        return found
    named: list[str] = []
    for party in BUILTIN_COMMANDS[command].parties:
        if party is Party.APPLICANT:
            named.append(f"actor:{state.applicant}")
            if state.agent is not None:
                named.append(f"actor:{state.agent}")
        elif party is Party.LEADER:
            named.append(f"actor:{state.leader}")
        elif party in (Party.OFFICER, Party.HANDLER, Party.HEAD):
            named.append("role:officer" if party is not Party.HEAD else "role:head")
        else:
            named.append(f"role:{party.value}")
    return tuple(dict.fromkeys(named))


def _role_parties() -> dict[str, tuple[str, ...]]:
    """The commands whose parties are roles only: their parties do not depend on the state."""
    found: dict[str, tuple[str, ...]] = {}
    for command in TASK_COMMANDS:
        parties = BUILTIN_COMMANDS[command].parties
        if Party.APPLICANT in parties or Party.LEADER in parties:
            continue
        found[command] = tuple(
            dict.fromkeys(
                "role:officer"
                if p in (Party.OFFICER, Party.HANDLER)
                else "role:head"
                if p is Party.HEAD
                else f"role:{p.value}"
                for p in parties
            )
        )
    return found


_ROLE_PARTIES = _role_parties()


_new_row = tuple.__new__  # a TaskRow from a built tuple, without NamedTuple's keyword __new__


def _memo(compute: Callable[[str], Any]) -> Callable[[str], Any]:
    """``compute`` once per argument (the built-in machines' answers never change)."""
    cache: dict[str, Any] = {}

    def get(key: str) -> Any:
        found = cache.get(key, cache)
        if found is cache:
            found = cache[key] = compute(key)
        return found

    return get


@_memo
def _branch_commands(branch_state: str) -> str:
    """The officer's commands a branch in ``branch_state`` takes, space-separated, or ``""``."""
    machine = investment_project().branch
    return " ".join(c for c in _OFFICER_COMMANDS if branch_allows(machine, branch_state, c))


_verifies_in = _memo(lambda stage: stage_allows("verify", stage))


_NO_BRANCH: tuple[Any, ...] = (False, False, None, None, None, "")
_PLEDGE: tuple[Any, ...] = (False, True, None, None, None, "")
_HEAD = ""
"""The part of a project's task rows that no branch holds (departments are never empty)."""
_STAGE = "\x1fstage"
_REMOVALS = "\x1fremovals"
_RATING = "\x1frating:"
"""The parts of the running stage's result, the removals waiting for consent, and each
rating's rectification (``_RATING`` + its item); no department holds a control character."""


class _RowMaker:
    """Builds one state's task rows: plain tuples, each distinct deadline converted once."""

    __slots__ = ("common", "moments", "named", "project", "state")

    def __init__(self, state: ProjectState) -> None:
        self.state = state
        self.project = state.id
        self.common = (
            state.name,
            state.team,
            state.applicant,
            state.agent,
            state.leader,
            state.settings_fingerprint,
        )
        self.moments: dict[datetime, int] = {}
        self.named: dict[str, tuple[str, ...]] = {}

    def us(self, moment: datetime) -> int:
        found = self.moments.get(moment)
        if found is None:
            found = self.moments[moment] = to_epoch_us(moment)
        return found

    def add(
        self,
        rows: list[TaskRow],
        kind: str,
        commands: str,
        department: str = "",
        deadline: datetime | None = None,
        card: str | None = None,
        parties: Iterable[str] | None = None,
        answered: str = "",
        cards: str = "",
        tail: tuple[Any, ...] = _NO_BRANCH,
        item: str = "",
    ) -> None:
        command = commands.split(" ", 1)[0] if " " in commands else commands
        deadline_us = None if deadline is None else self.us(deadline)
        head = (
            kind,
            department,
            item,
            command,
            commands,
            deadline_us,
            card,
            answered,
            cards,
            *tail,
        )
        if parties is None:
            parties = self.named.get(command)
            if parties is None:
                parties = self.named[command] = _parties_of(command, self.state)
        project, common = self.project, self.common
        for party in parties:
            rows.append(_new_row(TaskRow, (project, party, *head, *common)))

    def on_branch(self, branch: Branch) -> tuple[Any, ...]:
        until = branch.deputy_until
        return (
            True,
            False,
            branch.handler,
            branch.deputy,
            None if until is None else self.us(until),
            branch.state,
        )

    def head(self, revoked: bool) -> tuple[TaskRow, ...]:
        """The rows of the project as a whole: its next step, the review, the meeting..."""
        state = self.state
        stage = state.stage
        rows: list[TaskRow] = []
        add = self.add
        for command in _NEXT_STEPS.get(stage, ()):
            add(rows, "next_step", command)
        if stage == "pre_review.reviewing" and state.round is not None:
            round_ = state.round
            units = sorted(set(round_.ladders) | set(round_.cards_issued))
            cards = _SEP.join(
                f"{unit}={card}"
                for unit in units
                if (
                    card := _last_card(
                        round_.ladders.get(unit, ()), round_.cards_issued.get(unit, ())
                    )
                )
            )
            add(
                rows,
                "review",
                "opinion",
                deadline=round_.due,
                answered=_SEP.join(sorted(round_.opinions)),
                cards=cards,
            )
        elif stage == "pre_review.awaiting_materials":
            add(rows, "supply_materials", "supply")
        elif stage == "decision.pending":
            add(rows, "convene", "convene")
        elif stage == "decision.meeting" and state.meeting is not None:
            meeting = state.meeting
            voters = [f"actor:{a}" for a in sorted(meeting.present) if a not in meeting.votes]
            if voters:
                add(rows, "vote", "vote", parties=voters)
            add(rows, "close_meeting", "close_meeting")
        if revoked:
            add(rows, "next_step", "apply")
        return tuple(rows)

    def branch(
        self, dept: str, branch: Branch, approval: bool, verify: bool
    ) -> tuple[TaskRow, ...]:
        """The rows of one branch: to accept or decide, supplies, a pledge, a verification."""
        rows: list[TaskRow] = []
        add = self.add
        if approval:
            branch_state = branch.state
            commands = _branch_commands(branch_state)
            if commands:
                add(
                    rows,
                    "accept" if branch_state == "pending" else "decide",
                    commands,
                    dept,
                    branch.due,
                    _last_card(branch.ladder, branch.cards_issued),
                    (f"dept:{dept}",),
                    tail=self.on_branch(branch),
                )
            if branch.outstanding or branch_state == "returned":
                add(rows, "supply_materials", "supply", dept, branch.supply_due)
            if branch_state == "pending":
                add(rows, "accept_commitment", "accept_commitment", dept, branch.due, tail=_PLEDGE)
        if verify and commitment.awaiting_verification(branch):
            add(
                rows,
                "verify",
                "verify",
                dept,
                branch.verify_due,
                parties=(f"dept:{dept}",),
                tail=self.on_branch(branch),
            )
        return tuple(rows)

    def stage_result(self) -> tuple[TaskRow, ...]:
        """The running stage's combined result, once ``issue_stage_result``'s own check
        (``stages.issue_refusal``) would take it: for the officers of its lead department
        (the row's party, D143)."""
        state = self.state
        run = stages.current_stage(state)
        if run is None or not stages.stage_ready(state, run):
            return ()
        rows: list[TaskRow] = []
        self.add(
            rows,
            "issue_stage_result",
            "issue_stage_result",
            run.lead,
            run.due,
            _last_card(run.ladder, run.cards_issued),
            (f"dept:{run.lead}",),
            tail=(False, False, None, None, None, run.id),
        )
        return tuple(rows)

    def removals(self) -> tuple[TaskRow, ...]:
        """The leader's consent to each removal (减签) waiting on a priority project."""
        rows: list[TaskRow] = []
        for request in self.state.removal_requests:
            self.add(rows, "consent_removal", "consent_remove_department", request.department)
        return tuple(rows)

    def rating(self, item: str, rating: Rating) -> tuple[TaskRow, ...]:
        """好差评: an open rectification for the rated department's officers, with its deadline
        and card, or a rectified one for the applicant and the efficiency office to confirm.
        Rating itself is no item: it is the enterprise's choice (D156)."""
        rows: list[TaskRow] = []
        dept = rating.department
        if rating.rectification == "open":
            self.add(
                rows,
                "rectify",
                "rectify",
                dept,
                rating.due,
                _last_card(rating.ladder, rating.cards_issued),
                (f"dept:{dept}",),
                item=item,
            )
        elif rating.rectification == "rectified":
            self.add(rows, "confirm_rectification", "confirm_rectification", dept, item=item)
        return tuple(rows)


def _revoked(state: ProjectState) -> bool:
    """Whether ``apply`` waits on the applicant during approval (re-opening revoked branches)."""
    return state.stage == "approval" and parallel_approval.apply_refusal(state) is None


def _same_parties(old: ProjectState, new: ProjectState) -> bool:
    """Whether every row of ``old`` and ``new`` carries the same project columns (name, named
    parties, rule set) and the same stage: only then may a part's rows be reused."""
    return (
        old.stage == new.stage
        and old.settings_fingerprint == new.settings_fingerprint
        and old.agent == new.agent
        and old.applicant == new.applicant
        and old.leader == new.leader
        and old.team == new.team
        and old.name == new.name
    )


def task_parts(
    state: ProjectState,
    since: tuple[ProjectState, Mapping[str, tuple[TaskRow, ...]]] | None = None,
) -> dict[str, tuple[TaskRow, ...]]:
    """The task read model's rows of ``state`` in parts, each a tuple (every item it waits on,
    once for every party that may act): ``""`` for the project as a whole, one part per branch
    with rows, and parts for the running stage's result, the removals waiting for consent and
    each rating's rectification (``ITEM_KINDS`` names each kind's part). Pure: the state alone,
    no actor, no rule set.

    ``since`` is the state the commit started from and its parts: a part whose source the
    commit did not write to is taken from it as the very same tuple (a state's round, meeting,
    branches and ratings are copy-on-write, ``ProjectState.clone``, so an untouched one is the
    same object), and a store that sees the same tuple writes nothing for it. On the command
    path of the SQL stores, so it builds plain tuples and derives only what changed.
    """
    stage = state.stage
    terminal = stage in TERMINAL
    if terminal and not state.ratings:
        return {}
    maker = _RowMaker(state)
    parts: dict[str, tuple[TaskRow, ...]] = {}
    old_state, old_parts = since if since is not None else (None, None)
    reuse = old_state is not None and old_parts is not None and _same_parties(old_state, state)
    old: Mapping[str, tuple[TaskRow, ...]] = old_parts if reuse and old_parts is not None else {}
    if state.ratings:
        old_ratings = old_state.ratings if reuse and old_state is not None else {}
        for item, rating in state.ratings.items():
            key = _RATING + item
            if old_ratings.get(item) is rating:
                rows = old.get(key, ())
            else:
                rows = maker.rating(item, rating)
            if rows:
                parts[key] = rows
    if terminal:
        return parts
    revoked = _revoked(state)
    if (
        reuse
        and old_state is not None
        and old_state.round is state.round
        and old_state.meeting is state.meeting
        and _revoked(old_state) == revoked
    ):
        head = old.get(_HEAD, ())
    else:
        head = maker.head(revoked)
    if head:
        parts[_HEAD] = head
    approval = stage == "approval"
    verify = _verifies_in(stage)
    if approval or verify:
        old_branches = old_state.branches if reuse and old_state is not None else {}
        for dept, branch in state.branches.items():
            if old_branches.get(dept) is branch:
                rows = old.get(dept, ())
            else:
                rows = maker.branch(dept, branch, approval, verify)
            if rows:
                parts[dept] = rows
    if approval:
        if state.removal_requests:
            if (
                reuse
                and old_state is not None
                and old_state.removal_requests is state.removal_requests
            ):
                rows = old.get(_REMOVALS, ())
            else:
                rows = maker.removals()
            if rows:
                parts[_REMOVALS] = rows
        if state.stage_runs:
            # Whether the stage is ready reads its branches: derived afresh (one row at most).
            rows = maker.stage_result()
            if rows:
                parts[_STAGE] = rows
    return parts


def part_name(key: str) -> str:
    """What a key of ``task_parts`` is the part of (``ItemKind.parts``): ``project``,
    ``branch``, ``stage``, ``removals`` or ``rating``."""
    if key == _HEAD:
        return "project"
    if key == _STAGE:
        return "stage"
    if key == _REMOVALS:
        return "removals"
    if key.startswith(_RATING):
        return "rating"
    return "branch"


def task_rows(state: ProjectState) -> frozenset[TaskRow]:
    """Every task row of ``state`` (``task_parts``, flattened)."""
    return frozenset(row for rows in task_parts(state).values() for row in rows)


def items_of_rows(
    rows: Iterable[TaskRow],
    actor: Actor,
    settings_for: Callable[[TaskRow], Settings],
    *,
    calendar: WorkingCalendar,
    now: datetime,
) -> list[TaskItem]:
    """The items ``rows`` hold for ``actor`` at ``now``, most urgent first: the items
    ``open_items`` gives on the rows' projects. ``settings_for`` gives the rule set a row's
    project is pinned to (by its ``fingerprint``); days left and cards are read at ``now``."""
    found: dict[tuple[object, ...], TaskItem] = {}
    # What many rows share, read once a list: a rule set, a command text, a deadline (deadlines
    # fall at the end of a working day, so a list has a few hundred distinct ones at most).
    rule_sets: dict[str, Settings] = {}
    command_tuples: dict[str, tuple[str, ...]] = {}
    deadlines: dict[int, tuple[datetime, int | None]] = {}
    for row in rows:
        department: str | None = row.department or None
        card = row.card
        if row.kind == "review":
            department = actor.department
            if department is None or department in row.answered.split(_SEP):
                continue
            card = None
            for pair in row.cards.split(_SEP) if row.cards else ():
                unit, _, unit_card = pair.partition("=")
                if unit == department:
                    card = unit_card
        elif row.branch and actor.department != row.department:
            continue
        commands = command_tuples.get(row.commands)
        if commands is None:
            commands = command_tuples[row.commands] = tuple(row.commands.split(" "))
        key = (row.project, row.kind, commands, department, row.item)
        if key in found:
            continue  # the same item under another of the actor's parties
        settings = rule_sets.get(row.fingerprint)
        if settings is None:
            settings = rule_sets[row.fingerprint] = settings_for(row)
        if row.commitment_only and row.department not in settings.commitment.departments:
            continue
        branch = (
            BranchParties(
                row.department,
                row.handler,
                row.deputy,
                None if row.deputy_until_us is None else from_epoch_us(row.deputy_until_us),
            )
            if row.branch
            else None
        )
        try:
            authorize(
                BUILTIN_COMMANDS[row.command].parties,
                actor,
                command=row.command,
                project_id=row.project,
                team=row.team,
                applicant=row.applicant,
                agent=row.agent,
                leader=row.leader,
                settings=settings,
                branch=branch,
                now=now,
            )
        except NotAuthorized:
            continue
        deadline: datetime | None = None
        days_left: int | None = None
        if row.deadline_us is not None:
            known = deadlines.get(row.deadline_us)
            if known is None:
                moment = from_epoch_us(row.deadline_us)
                known = deadlines[row.deadline_us] = (
                    moment,
                    working_days_left(moment, calendar, now),
                )
            deadline, days_left = known
        found[key] = TaskItem(
            actor=actor.id,
            project=row.project,
            project_name=row.project_name,
            kind=row.kind,
            commands=commands,
            department=department,
            deadline=deadline,
            working_days_left=days_left,
            card=card,
            item=row.item or None,
        )
    return sort_by_urgency(found.values())


# -- the late items, from the same rows --------------------------------------------------------

LATE_KINDS: tuple[str, ...] = ("review", "accept", "decide", "issue_stage_result")
"""The kinds of task row a late item can be read from: a pre-review round's review, a branch to
accept or decide, and a stage's result (what ``rules.holdups.holdups`` waits on with a
deadline, the applicant and the leader aside)."""


def late_of_rows(
    rows: Iterable[TaskRow],
    settings_for: Callable[[TaskRow], Settings],
    now: datetime,
) -> dict[str, list[Holdup]]:
    """``rules.holdups.late_items`` read from the task rows of ``LATE_KINDS`` due at or before
    ``now`` (``Store.due_task_rows``): the same holdups, by department, without loading a
    project. A review row stands for every member unit of the project's rule set that has not
    answered (``settings_for`` gives the rule set, by the row's fingerprint)."""
    late: dict[str, list[Holdup]] = {}
    rule_sets: dict[str, Settings] = {}
    moments: dict[int, datetime] = {}
    for row in rows:
        if row.deadline_us is None:
            continue
        due = moments.get(row.deadline_us)
        if due is None:
            due = moments[row.deadline_us] = from_epoch_us(row.deadline_us)
        if due > now:
            continue
        if row.kind == "review":
            settings = rule_sets.get(row.fingerprint)
            if settings is None:
                settings = rule_sets[row.fingerprint] = settings_for(row)
            answered = set(row.answered.split(_SEP)) if row.answered else set()
            cards = dict(
                pair.partition("=")[::2] for pair in (row.cards.split(_SEP) if row.cards else ())
            )
            for unit in settings.pre_review.members:
                if unit not in answered:
                    late.setdefault(unit, []).append(
                        Holdup(row.project, unit, "pre_review", due, "silent", card=cards.get(unit))
                    )
        elif row.kind in ("accept", "decide"):
            if row.state not in BRANCH_OPEN:
                continue  # a returned branch waits on the applicant's corrections
            deputy = row.deputy
            if row.deputy_until_us is not None and to_epoch_us(now) >= row.deputy_until_us:
                deputy = None
            late.setdefault(row.department, []).append(
                Holdup(
                    row.project,
                    row.department,
                    "approval",
                    due,
                    row.state,
                    handler=row.handler,
                    deputy=deputy,
                    card=row.card,
                )
            )
        elif row.kind == "issue_stage_result":
            late.setdefault(row.department, []).append(
                Holdup(row.project, row.department, "stage_result", due, row.state, card=row.card)
            )
    for items in late.values():
        items.sort(key=lambda h: (h.due, h.project))
    return dict(sorted(late.items()))


def late_summary_of_rows(
    rows: Iterable[TaskRow],
    settings_for: Callable[[TaskRow], Settings],
    now: datetime,
    limit: int,
) -> dict[str, list[LateDue]]:
    """``rules.holdups.late_summary`` of ``late_of_rows``: the rows grouped as a store groups
    them (``projections.due_groups_of_rows``), then ``late_summary_of_groups``."""
    until = to_epoch_us(now)
    due = (row for row in rows if row.deadline_us is not None and row.deadline_us <= until)
    return late_summary_of_groups(due_groups_of_rows(due, limit), settings_for, now, limit)


def late_summary_of_groups(
    groups: Iterable[DueGroup],
    settings_for: Callable[[TaskRow], Settings],
    now: datetime,
    limit: int,
) -> dict[str, list[LateDue]]:
    """``rules.holdups.late_summary`` of ``late_of_rows`` read from the groups of the rows due
    by ``now`` (``Store.due_task_groups``), without a row, let alone a ``Holdup``, for every
    late item: a group's rows share their late items but for the project (a review's rule
    set, answered units, cards and deadline; a branch's department, state, card and deadline),
    so a group is counted whole and only each department and deadline's first ``limit`` items
    (by project) are made, from the first rows of its groups: a board of tens of thousands of
    late items reads a few hundred rows."""
    until = to_epoch_us(now)
    parts_of: dict[tuple[str, int], list[tuple[DueGroup, str | None]]] = {}
    for group in groups:
        head = group.first[0]
        due_us = head.deadline_us
        if due_us is None or due_us > until:
            continue
        kind = head.kind
        if kind == "review":
            settings = settings_for(head)
            done = head.answered.split(_SEP) if head.answered else ()
            for unit in settings.pre_review.members:
                if unit not in done:
                    parts_of.setdefault((unit, due_us), []).append((group, _card_of(head, unit)))
        elif kind == "issue_stage_result" or (
            kind in ("accept", "decide") and head.state in BRANCH_OPEN
        ):
            parts_of.setdefault((head.department, due_us), []).append((group, head.card))
    summary: dict[str, list[LateDue]] = {}
    for (dept, due_us), parts in sorted(parts_of.items()):
        count = sum(group.count for group, _ in parts)
        cards = frozenset(card for _, card in parts if card)
        candidates = heapq.nsmallest(
            limit, (row for group, _ in parts for row in group.first), key=lambda row: row.project
        )
        late = late_of_rows(candidates, settings_for, now).get(dept, [])
        first = tuple(item for item in late if to_epoch_us(item.due or now) == due_us)[:limit]
        summary.setdefault(dept, []).append(
            LateDue(dept, from_epoch_us(due_us), count, cards, first)
        )
    return summary


def _card_of(row: TaskRow, unit: str) -> str | None:
    """The card a late row shows for ``unit`` (a review's per unit, else the row's)."""
    if row.kind != "review":
        return row.card
    for pair in row.cards.split(_SEP) if row.cards else ():
        name, _, card = pair.partition("=")
        if name == unit:
            return card
    return None
