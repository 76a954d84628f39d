"""A project's state: the fold of its events.

``ProjectState.apply(event)`` is the only way state changes, both when a rule emits a new event
and when a project is rebuilt from its history, so the two can never disagree (a test replays
every scenario's history to prove it). The state is mutable for speed; the engine works on a
``clone()`` so that a command that fails part-way changes nothing.

A plugin's event types (``<plugin>.<name>``) are folded by the folds of the engine that reads or
writes the project (``folding``), never by a table shared by the process: an event whose fold is
not at hand is recorded in ``unfolded_types`` and the engine refuses to write the project (see
``approvalflow.plugins.folds``), so a process without the plugin cannot lose the plugin's data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from datetime import datetime
from typing import Any

import attrs

from approvalflow.model import Event
from approvalflow.settings import ApprovalStageSettings, LadderStep

__all__ = [
    "Branch",
    "Fold",
    "Meeting",
    "PreReviewRound",
    "ProjectState",
    "Rating",
    "RemovalRequest",
    "StageRun",
    "active_folds",
    "folding",
]

Fold = Callable[[dict[str, Any], Mapping[str, Any], datetime], None]
"""A plugin's fold: ``fold(data, payload, at)`` changes ``data``, the plugin's own slice of
``ProjectState.plugin_data`` (``plugin_data[<plugin>]``), and nothing else."""

_ACTIVE_FOLDS: ContextVar[Mapping[str, Fold] | None] = ContextVar(
    "approvalflow_active_folds", default=None
)


def active_folds() -> Mapping[str, Fold] | None:
    """The folds active for plugin event types here, if a ``folding`` block set any."""
    return _ACTIVE_FOLDS.get()


class folding:
    """Fold plugin event types with ``folds`` (event type -> fold) inside the block.

    A class rather than a generator context manager: it is entered on every command and timer,
    and a block nested in one with the same folds (a load inside a command) sets nothing.
    """

    __slots__ = ("_folds", "_token")

    def __init__(self, folds: Mapping[str, Fold]) -> None:
        self._folds = folds
        self._token: Token[Mapping[str, Fold] | None] | None = None

    def __enter__(self) -> None:
        active = _ACTIVE_FOLDS.get()
        # No plugin folds and none active (an engine without county plugins): nothing to set.
        if active is not self._folds and (self._folds or active is not None):
            self._token = _ACTIVE_FOLDS.set(self._folds)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _ACTIVE_FOLDS.reset(self._token)
            self._token = None


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


@attrs.define(slots=True)
class PreReviewRound:
    number: int
    opened_at: datetime
    due: datetime
    provisional: bool = False
    opinions: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    overdue_sent: bool = False
    closed: bool = False
    # Warning ladder: each unit's steps (fixed when the round opened) and those issued so far.
    ladders: dict[str, tuple[LadderStep, ...]] = attrs.field(factory=dict)
    cards_issued: dict[str, tuple[int, ...]] = attrs.field(factory=dict)

    def clone(self) -> PreReviewRound:
        return attrs.evolve(
            self, opinions=dict(self.opinions), cards_issued=dict(self.cards_issued)
        )


@attrs.define(slots=True)
class Meeting:
    number: int
    present: tuple[str, ...]
    votes: dict[str, str] = attrs.field(factory=dict)

    def clone(self) -> Meeting:
        return attrs.evolve(self, votes=dict(self.votes))


@attrs.define(slots=True)
class Branch:
    """One department's part of the approval stage (``approval.<department>``)."""

    department: str
    state: str
    opened_at: datetime
    due: datetime | None
    provisional: bool = False
    overdue_sent: bool = False
    # Return for correction: what is outstanding, where to go back to, what time was left.
    corrections: frozenset[str] = frozenset()
    returned_from: str | None = None
    remaining_wd: int | None = None
    # Fault-tolerant acceptance: materials listed deficient and still outstanding.
    deficient: tuple[str, ...] = ()
    outstanding: frozenset[str] = frozenset()
    supply_due: datetime | None = None
    reminder_due: datetime | None = None
    reminder_sent: bool = False
    deficient_barred: bool = False
    # Notice-and-commitment.
    commitment: bool = False
    verify_due: datetime | None = None
    verified: bool = False
    decided_at: datetime | None = None
    # Deemed acceptance (art. 32): when silence at `pending` counts as acceptance.
    accept_due: datetime | None = None
    # Working days added to the promised limit by extensions, each granted by an authority.
    extended_wd: int = 0
    # Who handles the branch (经办人, named by a transfer), the officer they entrusted to act
    # for them (委托) and the end of that entrustment; the actors the branch was copied to (抄送).
    handler: str | None = None
    deputy: str | None = None
    deputy_until: datetime | None = None
    copied: frozenset[str] = frozenset()
    # When `due` was last set (opening, resume, extension): ladder steps already behind the
    # deadline's schedule then are skipped, never issued late.
    due_set_at: datetime | None = None
    # Warning ladder: the steps fixed when the branch opened, and the indexes issued so far.
    ladder: tuple[LadderStep, ...] = ()
    cards_issued: tuple[int, ...] = ()
    # The approval stage the branch belongs to (None: the single stage of projects without
    # stages).
    stage: str | None = None

    def clone(self) -> Branch:
        return attrs.evolve(self)

    def deputy_at(self, moment: datetime) -> str | None:
        """The handler's deputy if the entrustment is in force at ``moment``, else ``None``."""
        if self.deputy is None or (self.deputy_until is not None and moment >= self.deputy_until):
            return None
        return self.deputy


@attrs.frozen
class RemovalRequest:
    """A department's removal (减签) from a priority project, waiting for the leader's consent."""

    department: str
    by: str | None
    by_department: str | None
    reason: str
    at: datetime


# Branch states in which a removal may still wait: the department has not decided.
_UNDECIDED = frozenset({"pending", "accepted", "deficient", "returned", "paused"})


@attrs.define(slots=True)
class StageRun:
    """One approval stage as it ran in a project (审批阶段): opened when the one before issued
    its result (the first at ``apply``), run by its lead department (牵头部门), which issues the
    combined result (统一出件) once every branch of the stage is approved."""

    id: str
    name: str
    lead: str
    opened_at: datetime
    due: datetime | None
    limit_wd: int
    provisional: bool = False
    # The departments whose branches the stage opened, in order.
    departments: tuple[str, ...] = ()
    overdue_sent: bool = False
    decided_at: datetime | None = None
    issued_at: datetime | None = None
    issued_by: str | None = None
    ladder: tuple[LadderStep, ...] = ()
    cards_issued: tuple[int, ...] = ()
    # Branches of this stage a later stage replaced (the same department again), as they ended.
    closed_branches: dict[str, Branch] = attrs.field(factory=dict)

    def clone(self) -> StageRun:
        return attrs.evolve(self, closed_branches=dict(self.closed_branches))


@attrs.define(slots=True)
class Rating:
    """The applicant's rating of one decided item (好差评) and the rectification (整改) a bad
    one opens. ``item`` is ``approval.<dept>`` (a decided branch) or ``approval`` (the stage,
    rated against the county's ``ratings.stage_department``); under stages
    ``approval.<stage>.<dept>`` or ``approval.<stage>`` (rated against the stage's lead).

    ``rectification`` is ``None`` (a good rating), ``open`` (the department owes it, also after
    a reopening), ``rectified`` (awaiting confirmation) or ``confirmed`` (closed).
    """

    item: str
    department: str
    score: int
    at: datetime
    by: str | None = None
    text: str | None = None
    rectification: str | None = None
    due: datetime | None = None
    due_set_at: datetime | None = None
    warning_due: datetime | None = None
    rectified_at: datetime | None = None
    rectified_text: str | None = None
    confirmed_at: datetime | None = None
    reopened: int = 0
    warning_sent: bool = False
    overdue_sent: bool = False
    ladder: tuple[LadderStep, ...] = ()
    cards_issued: tuple[int, ...] = ()

    def clone(self) -> Rating:
        return attrs.evolve(self)

    @property
    def bad(self) -> bool:
        """A rating of 1 (非常不满意) or 2 (不满意): it opens a rectification."""
        return self.score <= 2

    @property
    def on_time(self) -> bool | None:
        """Whether the rectification was confirmed without passing its deadline (``None``: no
        rectification, or not settled yet)."""
        if self.rectification is None:
            return None
        if self.overdue_sent:
            return False
        return True if self.rectification == "confirmed" else None


@attrs.define(slots=True)
class ProjectState:
    id: str
    name: str
    investment: int
    applicant: str
    leader: str
    department: str
    team: str
    recruiter: str
    created_at: datetime
    settings_fingerprint: str
    rules_version: str = ""
    agent: str | None = None
    industry: str | None = None
    project_code: str | None = None
    emissions: bool = True
    # 重点项目: a priority project; removing a department from it needs the leader's consent.
    priority: bool = False
    extra: dict[str, Any] = attrs.field(factory=dict)
    # Actors the whole project was copied to (抄送); a branch keeps its own.
    copied: frozenset[str] = frozenset()
    stage: str = "lead"
    version: int = 0
    materials: frozenset[str] = frozenset()
    round: PreReviewRound | None = None
    round_count: int = 0
    pre_review_missing: frozenset[str] = frozenset()
    pre_review_supplied: frozenset[str] = frozenset()
    meeting: Meeting | None = None
    meeting_count: int = 0
    agreed_investment: int | None = None
    funds: int = 0
    branches: dict[str, Branch] = attrs.field(factory=dict)
    # Removals (减签) waiting for the leader's consent, in the order asked.
    removal_requests: tuple[RemovalRequest, ...] = ()
    # 好差评: the applicant's ratings by item, each with the rectification a bad one opens.
    ratings: dict[str, Rating] = attrs.field(factory=dict)
    milestones: dict[str, datetime] = attrs.field(factory=dict)
    milestone_points: dict[str, int] = attrs.field(factory=dict)
    stage_entered: dict[str, datetime] = attrs.field(factory=dict)
    stage_left: dict[str, datetime] = attrs.field(factory=dict)
    # Approval in stages (rules/stages.py): the stages fixed at `apply`, each stage as it ran
    # (in order; the last one not issued is running), and the total limit over all of them.
    stage_plan: tuple[ApprovalStageSettings, ...] = ()
    stage_route: tuple[str, ...] = ()
    stage_runs: dict[str, StageRun] = attrs.field(factory=dict)
    total_limit_wd: int | None = None
    total_due: datetime | None = None
    total_provisional: bool = False
    total_overdue_sent: bool = False
    total_ladder: tuple[LadderStep, ...] = ()
    total_cards_issued: tuple[int, ...] = ()
    plugin_data: dict[str, Any] = attrs.field(factory=dict)
    # Plugin event types met without their fold, in order (never stored: a project with any is
    # refused before it is written).
    unfolded_types: tuple[str, ...] = attrs.field(default=(), init=False, eq=False, repr=False)
    # Copy-on-write bookkeeping for clone(): which nested parts this copy owns already.
    _owned: set[str] = attrs.field(factory=set, init=False, eq=False, repr=False)

    @property
    def top_stage(self) -> str:
        return self.stage.split(".", 1)[0]

    def clone(self) -> ProjectState:
        """A copy that can be changed without touching this state.

        Branches, the open round and the meeting are shared until the copy's fold first writes
        to one of them (see ``_branch_for_write``): a command changes one or two branches, and
        copying all of them on every command was a fifth of its cost.
        """
        new: ProjectState = _NEW(ProjectState)
        for name in _COPIED_AS_IS:
            _SET(new, name, getattr(self, name))
        _SET(new, "extra", dict(self.extra))
        _SET(new, "branches", dict(self.branches))
        _SET(new, "ratings", dict(self.ratings) if self.ratings else {})
        _SET(new, "milestones", dict(self.milestones))
        _SET(new, "milestone_points", dict(self.milestone_points))
        _SET(new, "stage_entered", dict(self.stage_entered))
        _SET(new, "stage_left", dict(self.stage_left))
        _SET(new, "stage_runs", dict(self.stage_runs))
        _SET(
            new,
            "plugin_data",
            {key: _copy_plain(value) for key, value in self.plugin_data.items()}
            if self.plugin_data
            else {},
        )
        _SET(new, "unfolded_types", self.unfolded_types)
        _SET(new, "_owned", set())
        return new

    def _branch_for_write(self, department: str) -> Branch:
        if department not in self._owned:
            self.branches[department] = self.branches[department].clone()
            self._owned.add(department)
        return self.branches[department]

    def _run_for_write(self, stage_id: str) -> StageRun:
        key = f"@stage:{stage_id}"
        if key not in self._owned:
            self.stage_runs[stage_id] = self.stage_runs[stage_id].clone()
            self._owned.add(key)
        return self.stage_runs[stage_id]

    @property
    def running_stage(self) -> StageRun | None:
        """The approval stage running now: the last one opened and not issued, if any."""
        if not self.stage_runs:
            return None
        last = next(reversed(self.stage_runs.values()))
        return last if last.issued_at is None else None

    def _rating_for_write(self, item: str) -> Rating:
        key = f"@rating:{item}"
        if key not in self._owned:
            self.ratings[item] = self.ratings[item].clone()
            self._owned.add(key)
        return self.ratings[item]

    def _round_for_write(self) -> PreReviewRound:
        assert self.round is not None
        if "@round" not in self._owned:
            self.round = self.round.clone()
            self._owned.add("@round")
        return self.round

    def _meeting_for_write(self) -> Meeting:
        assert self.meeting is not None
        if "@meeting" not in self._owned:
            self.meeting = self.meeting.clone()
            self._owned.add("@meeting")
        return self.meeting

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> ProjectState:
        """Rebuild a project from its full history (the first event is ``created``)."""
        iterator = iter(events)
        first = next(iterator)
        state = cls.created(first)
        for event in iterator:
            state.apply(event)
        return state

    @classmethod
    def created(cls, event: Event) -> ProjectState:
        if event.type != "created":
            raise ValueError(f"a project's history starts with 'created', not {event.type!r}")
        p = event.payload
        state = cls(
            id=event.project,
            name=p["name"],
            investment=p["investment"],
            applicant=p["applicant"],
            leader=p["leader"],
            department=p["department"],
            team=p["team"],
            recruiter=p["recruiter"],
            created_at=event.at,
            settings_fingerprint=p["settings_fingerprint"],
            rules_version=p.get("rules_version", ""),
            agent=p.get("agent"),
            industry=p.get("industry"),
            project_code=p.get("project_code"),
            emissions=p.get("emissions", True),
            priority=p.get("priority", False),
            extra=dict(p.get("extra", {})),
            version=event.version,
        )
        state.stage_entered["lead"] = event.at
        return state

    def apply(self, event: Event) -> None:
        """Fold one event into this state."""
        if event.version != self.version + 1:
            raise ValueError(
                f"event {event.project}@{event.version} does not follow version {self.version}"
            )
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event.payload, event.at)
        elif "." in event.type:
            self._fold_plugin_event(event)
        self.version = event.version

    def _fold_plugin_event(self, event: Event) -> None:
        folds = _ACTIVE_FOLDS.get()
        fold = folds.get(event.type) if folds is not None else None
        if fold is None:
            if event.type not in self.unfolded_types:
                self.unfolded_types = (*self.unfolded_types, event.type)
            return
        plugin = event.type.split(".", 1)[0]
        data = self.plugin_data.get(plugin)
        if not isinstance(data, dict):
            data = self.plugin_data[plugin] = {}
        fold(data, event.payload, event.at)


_NEW = object.__new__
_SET = object.__setattr__
_COPIED_AS_IS: tuple[str, ...] = ()  # filled below, once the class exists


def _copy_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_plain(item) for item in value]
    return value


_COPIED_AS_IS = tuple(
    field.name
    for field in attrs.fields(ProjectState)
    if field.name
    not in {
        "extra",
        "branches",
        "ratings",
        "milestones",
        "milestone_points",
        "stage_entered",
        "stage_left",
        "stage_runs",
        "plugin_data",
        "unfolded_types",
        "_owned",
    }
)

Handler = Callable[[ProjectState, Any, datetime], None]
_HANDLERS: dict[str, Handler] = {}


def _on(event_type: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[event_type] = handler
        return handler

    return register


def builtin_event_types() -> frozenset[str]:
    """The event types the built-in fold knows (a plugin may not fold them)."""
    return frozenset(_HANDLERS)


@_on("stage_changed")
def _stage_changed(state: ProjectState, p: Any, at: datetime) -> None:
    old_top, new = state.top_stage, p["to"]
    state.stage = new
    new_top = new.split(".", 1)[0]
    if new_top != old_top:
        state.stage_left[old_top] = at
        state.stage_entered.setdefault(new_top, at)
        # A stage entered again (a meeting without quorum never leaves `decision`) keeps its
        # first entry; leaving again moves its end.
        state.stage_left.pop(new_top, None)


@_on("milestone_reached")
def _milestone(state: ProjectState, p: Any, at: datetime) -> None:
    if p["milestone"] not in state.milestones:
        state.milestones[p["milestone"]] = at
        state.milestone_points[p["milestone"]] = p["points"]


@_on("materials_submitted")
def _submitted(state: ProjectState, p: Any, at: datetime) -> None:
    state.materials = state.materials | frozenset(p["materials"])


@_on("materials_supplied")
def _supplied(state: ProjectState, p: Any, at: datetime) -> None:
    supplied = frozenset(p["materials"])
    state.materials = state.materials | supplied
    if state.stage == "pre_review.awaiting_materials":
        state.pre_review_supplied = state.pre_review_supplied | (
            supplied & state.pre_review_missing
        )
    for dept, branch in state.branches.items():
        if branch.outstanding & supplied or branch.corrections & supplied:
            owned = state._branch_for_write(dept)
            owned.outstanding = owned.outstanding - supplied
            owned.corrections = owned.corrections - supplied


@_on("pre_review_round_opened")
def _round_opened(state: ProjectState, p: Any, at: datetime) -> None:
    state.round = PreReviewRound(
        number=p["round"],
        opened_at=at,
        due=_when(p["due"]) or at,
        provisional=p["provisional"],
        ladders={unit: _ladder(steps) for unit, steps in p.get("ladders", {}).items()},
    )
    state._owned.add("@round")
    state.round_count = p["round"]
    state.pre_review_missing = frozenset()
    state.pre_review_supplied = frozenset()


@_on("opinion_given")
def _opinion(state: ProjectState, p: Any, at: datetime) -> None:
    assert state.round is not None
    state._round_for_write().opinions[p["unit"]] = {
        "verdict": p["verdict"],
        "missing": list(p.get("missing", [])),
        "reason": p.get("reason"),
        "by": p.get("reviewer"),
        "deemed": p.get("deemed", False),
    }


@_on("pre_review_round_closed")
def _round_closed(state: ProjectState, p: Any, at: datetime) -> None:
    assert state.round is not None
    state._round_for_write().closed = True
    state.pre_review_missing = frozenset(p.get("missing", []))
    state.pre_review_supplied = frozenset()


@_on("pre_review_overdue")
def _round_overdue(state: ProjectState, p: Any, at: datetime) -> None:
    assert state.round is not None
    state._round_for_write().overdue_sent = True


@_on("meeting_convened")
def _convened(state: ProjectState, p: Any, at: datetime) -> None:
    state.meeting = Meeting(number=p["meeting"], present=tuple(p["present"]))
    state._owned.add("@meeting")
    state.meeting_count = p["meeting"]


@_on("vote_cast")
def _vote(state: ProjectState, p: Any, at: datetime) -> None:
    assert state.meeting is not None
    state._meeting_for_write().votes[p["member"]] = p["vote"]


@_on("meeting_closed")
def _meeting_closed(state: ProjectState, p: Any, at: datetime) -> None:
    state.meeting = None


@_on("signed")
def _signed(state: ProjectState, p: Any, at: datetime) -> None:
    state.agreed_investment = p["agreed_investment"]


@_on("funds_reported")
def _funds(state: ProjectState, p: Any, at: datetime) -> None:
    state.funds += p["amount"]


@_on("delegated")
def _delegated(state: ProjectState, p: Any, at: datetime) -> None:
    state.agent = p["agent"]


@_on("rules_migrated")
def _rules_migrated(state: ProjectState, p: Any, at: datetime) -> None:
    state.settings_fingerprint = p["to_fingerprint"]
    state.rules_version = p["to_version"]


@_on("branch_opened")
def _branch_opened(state: ProjectState, p: Any, at: datetime) -> None:
    dept = p["department"]
    previous = state.branches.get(dept)
    running = state.running_stage
    stage_id = running.id if running is not None else None
    if previous is not None and previous.stage is not None and previous.stage != stage_id:
        # The department again in a later stage: its branch of the earlier stage is kept there.
        state._run_for_write(previous.stage).closed_branches[dept] = previous
        previous = None
    if running is not None and dept not in running.departments:
        run = state._run_for_write(running.id)
        run.departments = (*run.departments, dept)
    state.branches[dept] = Branch(
        department=dept,
        state="pending",
        opened_at=at,
        due=_when(p["due"]),
        provisional=p["provisional"],
        deficient_barred=previous.deficient_barred if previous else False,
        accept_due=_when(p.get("accept_due")),
        due_set_at=at,
        ladder=_ladder(p.get("ladder", ())),
        stage=stage_id,
    )
    if previous is not None:
        # A re-opened branch stays with the people who had it (D29) and its copies (D31).
        branch = state.branches[dept]
        branch.handler = previous.handler
        branch.deputy, branch.deputy_until = previous.deputy, previous.deputy_until
        branch.copied = previous.copied
    state._owned.add(dept)


def _ladder(steps: Iterable[Any]) -> tuple[LadderStep, ...]:
    return tuple(LadderStep.from_dict(step) for step in steps)


def _branch(state: ProjectState, p: Any) -> Branch:
    return state._branch_for_write(p["department"])


@_on("branch_changed")
def _branch_changed(state: ProjectState, p: Any, at: datetime) -> None:
    """A branch moves to another state; the payload carries what that move sets."""
    branch = _branch(state, p)
    branch.state = p["to"]
    for field in ("supply_due", "reminder_due", "verify_due", "due"):
        if field in p:
            setattr(branch, field, _when(p[field]))
    if "due" in p:
        branch.due_set_at = at
    if "provisional" in p:
        branch.provisional = p["provisional"]
    if "deficient" in p:
        branch.deficient = tuple(p["deficient"])
        branch.outstanding = frozenset(p["deficient"])
    if "corrections" in p:
        branch.corrections = frozenset(p["corrections"])
    if "remaining_wd" in p:  # a return or a pause stops the clock
        branch.returned_from = p["returned_from"]
        branch.remaining_wd = p["remaining_wd"]
    if p["to"] != "pending" or p["trigger"] == "return":
        # Accepted, or told what to correct (the one-time notice): silence no longer accepts.
        branch.accept_due = None
    if p["to"] not in ("returned", "paused"):
        branch.returned_from = None
        branch.remaining_wd = None
    if p.get("commitment"):
        branch.commitment = True
    if p["to"] in ("approved", "conditional", "rejected") and branch.decided_at is None:
        branch.decided_at = at
    if p["to"] == "revoked":
        branch.deficient_barred = branch.deficient_barred or bool(branch.deficient)
        branch.outstanding = frozenset()
        branch.supply_due = branch.reminder_due = branch.verify_due = None
        branch.decided_at = None
    if p["to"] in ("accepted", "approved") and not branch.outstanding:
        branch.supply_due = branch.reminder_due = None
    if p["to"] == "not_needed":
        # Closed as not needed (减签): nothing is owed on it any more.
        branch.outstanding = branch.corrections = frozenset()
        branch.supply_due = branch.reminder_due = branch.verify_due = None
    if state.removal_requests and p["to"] not in _UNDECIDED:
        # A removal waits only while the department has not decided (or was removed).
        _drop_request(state, branch.department)


def _drop_request(state: ProjectState, department: str) -> None:
    state.removal_requests = tuple(r for r in state.removal_requests if r.department != department)


@_on("department_added")
def _department_added(state: ProjectState, p: Any, at: datetime) -> None:
    """A department added to the running stage (加签); its ``branch_opened`` follows."""


@_on("department_removal_requested")
def _removal_requested(state: ProjectState, p: Any, at: datetime) -> None:
    state.removal_requests = (
        *state.removal_requests,
        RemovalRequest(
            department=p["department"],
            by=p.get("by"),
            by_department=p.get("by_department"),
            reason=p["reason"],
            at=at,
        ),
    )


@_on("department_removal_answered")
def _removal_answered(state: ProjectState, p: Any, at: datetime) -> None:
    """The leader's answer; on consent the ``branch_changed`` to ``not_needed`` follows."""
    _drop_request(state, p["department"])


@_on("limit_extended")
def _limit_extended(state: ProjectState, p: Any, at: datetime) -> None:
    branch = _branch(state, p)
    branch.due = _when(p["due"])
    branch.due_set_at = at
    branch.extended_wd += p["days"]
    branch.overdue_sent = branch.overdue_sent and branch.due is not None and branch.due <= at


@_on("branch_overdue")
def _branch_overdue(state: ProjectState, p: Any, at: datetime) -> None:
    _branch(state, p).overdue_sent = True


@_on("card_issued")
def _card_issued(state: ProjectState, p: Any, at: datetime) -> None:
    if p["stage"] == "approval_stage":
        run = state._run_for_write(p["approval_stage"])
        run.cards_issued = (*run.cards_issued, p["step"])
    elif p["stage"] == "approval_total":
        state.total_cards_issued = (*state.total_cards_issued, p["step"])
    elif p["stage"] == "rectification":
        rating = state._rating_for_write(p["item"])
        rating.cards_issued = (*rating.cards_issued, p["step"])
    elif p["stage"] == "pre_review":
        round_ = state._round_for_write()
        unit = p["department"]
        round_.cards_issued[unit] = (*round_.cards_issued.get(unit, ()), p["step"])
    else:
        branch = _branch(state, p)
        branch.cards_issued = (*branch.cards_issued, p["step"])


@_on("branch_reminded")
def _branch_reminded(state: ProjectState, p: Any, at: datetime) -> None:
    _branch(state, p).reminder_sent = True


@_on("commitment_verified")
def _verified(state: ProjectState, p: Any, at: datetime) -> None:
    branch = _branch(state, p)
    branch.verified = True
    branch.verify_due = None


@_on("branch_transferred")
def _transferred(state: ProjectState, p: Any, at: datetime) -> None:
    branch = _branch(state, p)
    branch.handler = p["handler"]
    # The entrustment was the previous handler's; it ends with their handling.
    branch.deputy = branch.deputy_until = None


@_on("branch_entrusted")
def _entrusted(state: ProjectState, p: Any, at: datetime) -> None:
    branch = _branch(state, p)
    branch.deputy = p["deputy"]
    branch.deputy_until = _when(p.get("until"))


@_on("copied")
def _copied(state: ProjectState, p: Any, at: datetime) -> None:
    if p.get("department"):
        branch = _branch(state, p)
        branch.copied = branch.copied | frozenset(p["to"])
    else:
        state.copied = state.copied | frozenset(p["to"])


@_on("approval_stages_planned")
def _stages_planned(state: ProjectState, p: Any, at: datetime) -> None:
    state.stage_plan = tuple(
        ApprovalStageSettings(
            stage["id"],
            stage["name"],
            tuple(stage["departments"]),
            stage["lead"],
            stage["limit_wd"],
        )
        for stage in p["stages"]
    )
    state.stage_route = tuple(p["route"])
    state.total_limit_wd = p.get("total_limit_wd")
    state.total_due = _when(p.get("total_due"))
    state.total_provisional = p.get("total_provisional", False)
    state.total_ladder = _ladder(p.get("total_ladder", ()))


@_on("approval_stage_opened")
def _stage_opened(state: ProjectState, p: Any, at: datetime) -> None:
    state.stage_runs[p["stage"]] = StageRun(
        id=p["stage"],
        name=p["name"],
        lead=p["lead"],
        opened_at=at,
        due=_when(p["due"]),
        limit_wd=p["limit_wd"],
        provisional=p.get("provisional", False),
        ladder=_ladder(p.get("ladder", ())),
    )
    state._owned.add(f"@stage:{p['stage']}")


@_on("approval_stage_decided")
def _stage_decided(state: ProjectState, p: Any, at: datetime) -> None:
    state._run_for_write(p["stage"]).decided_at = at


@_on("approval_stage_result_issued")
def _stage_issued(state: ProjectState, p: Any, at: datetime) -> None:
    run = state._run_for_write(p["stage"])
    run.issued_at = at
    run.issued_by = p.get("issued_by")


@_on("approval_stage_overdue")
def _stage_overdue(state: ProjectState, p: Any, at: datetime) -> None:
    state._run_for_write(p["stage"]).overdue_sent = True


@_on("approval_total_overdue")
def _total_overdue(state: ProjectState, p: Any, at: datetime) -> None:
    state.total_overdue_sent = True


@_on("rated")
def _rated(state: ProjectState, p: Any, at: datetime) -> None:
    state.ratings[p["item"]] = Rating(
        item=p["item"],
        department=p["department"],
        score=p["score"],
        at=at,
        by=p.get("rated_by"),
        text=p.get("text"),
    )
    state._owned.add(f"@rating:{p['item']}")


@_on("rectification_opened")
def _rectification_opened(state: ProjectState, p: Any, at: datetime) -> None:
    rating = state._rating_for_write(p["item"])
    rating.rectification = "open"
    rating.due = _when(p["due"])
    rating.due_set_at = at
    rating.warning_due = _when(p.get("warning_due"))
    rating.ladder = _ladder(p.get("ladder", ()))


@_on("rectified")
def _rectified(state: ProjectState, p: Any, at: datetime) -> None:
    rating = state._rating_for_write(p["item"])
    rating.rectification = "rectified"
    rating.rectified_at = at
    rating.rectified_text = p["text"]


@_on("rectification_confirmed")
def _rectification_confirmed(state: ProjectState, p: Any, at: datetime) -> None:
    rating = state._rating_for_write(p["item"])
    if p["confirmed"]:
        rating.rectification = "confirmed"
        rating.confirmed_at = at
    else:
        rating.rectification = "open"
        rating.reopened += 1


@_on("rectification_warned")
def _rectification_warned(state: ProjectState, p: Any, at: datetime) -> None:
    state._rating_for_write(p["item"]).warning_sent = True


@_on("rectification_overdue")
def _rectification_overdue(state: ProjectState, p: Any, at: datetime) -> None:
    state._rating_for_write(p["item"]).overdue_sent = True
