"""What a rule is given and what it gives back.

A rule is a plain function of a ``Context``: the project's state (a private copy), the command's
actor and arguments, the settings, the calendar, the actor directory and the time. It reads
nothing else (no store, no clock, no plugin manager) and answers by emitting events and notices
through the context, or by raising an ``ApprovalflowError``. Each emitted event is folded into the
copy at once, so later checks in the same command see its effect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from approvalflow.calendar import Due, WorkingCalendar, to_local
from approvalflow.model import Actor, ActorDirectory, Event, Notice, freeze_payload
from approvalflow.project import ProjectState
from approvalflow.settings import LadderStep, Settings
from approvalflow.states import WorkflowMachines, investment_project

__all__ = ["Context"]

RouteFunction = Callable[[ProjectState, Settings], tuple[str, ...]]
TimeLimitFunction = Callable[[ProjectState, str], int]
LadderFunction = Callable[[ProjectState, str, str], tuple[LadderStep, ...]]
FollowersFunction = Callable[[ProjectState, str, Mapping[str, Any]], Iterable[str]]


@attrs.define
class Context:
    state: ProjectState
    settings: Settings
    calendar: WorkingCalendar
    actors: ActorDirectory
    now: datetime
    command: str
    args: Mapping[str, Any] = attrs.field(factory=dict)
    actor: Actor | None = None
    on_behalf_of: str | None = None
    command_id: str | None = None
    route: RouteFunction | None = None
    time_limit: TimeLimitFunction | None = None
    ladder: LadderFunction | None = None
    followers: FollowersFunction | None = None
    """Who else receives a notice of a kind, with its fields (the engine's carbon copies)."""
    machines: WorkflowMachines = attrs.field(factory=investment_project)
    events: list[Event] = attrs.field(factory=list)
    notices: list[Notice] = attrs.field(factory=list)

    @property
    def by(self) -> str | None:
        return self.actor.id if self.actor else None

    # -- events -----------------------------------------------------------------------------

    def emit(self, event_type: str, **payload: Any) -> Event:
        """Record a fact and fold it into the working copy of the state."""
        event = Event(
            project=self.state.id,
            version=self.state.version + 1,
            type=event_type,
            at=self.now,
            payload=freeze_payload(payload),
            by=self.by,
            on_behalf_of=self.on_behalf_of,
            command_id=self.command_id,
        )
        self.state.apply(event)
        self.events.append(event)
        return event

    def move(self, trigger: str, *, what: str | None = None, **payload: Any) -> str:
        """Move the project's stage by ``trigger`` (checked against the workflow's machine)."""
        source = self.state.stage
        target = self.machines.next_stage(source, trigger, what=what)
        if target != source:
            self.emit(
                "stage_changed", **{"from": source, "to": target, "trigger": trigger}, **payload
            )
        return target

    def move_branch(self, department: str, trigger: str, **payload: Any) -> str:
        """Move one approval branch by ``trigger`` (checked against the branch machine)."""
        branch = self.state.branches[department]
        target = self.machines.next_branch_state(branch.state, trigger, department=department)
        self.emit(
            "branch_changed",
            department=department,
            **{"from": branch.state, "to": target, "trigger": trigger},
            **payload,
        )
        return target

    def milestone(self, name: str) -> None:
        """Award the team its points for ``name``, once per project."""
        if name in self.state.milestones:
            return
        self.emit(
            "milestone_reached",
            milestone=name,
            team=self.state.team,
            points=self.settings.points.get(name, 0),
        )

    # -- notices ----------------------------------------------------------------------------

    def notify(self, kind: str, recipients: Iterable[str | None], **fields: Any) -> None:
        """Queue a notice; recipients are de-duplicated in order, ``None`` dropped.

        The ``followers`` of the notice (the actors a project or branch was copied to, D31)
        are added after the named recipients.
        """
        unique = tuple(dict.fromkeys(r for r in recipients if r))
        extra = self.followers(self.state, kind, fields) if self.followers else ()
        if extra:
            unique = tuple(dict.fromkeys((*unique, *extra)))
        if not unique:
            return
        version = self.state.version
        notice = Notice(
            id=f"{self.state.id}:{version}:{len(self.notices) + 1}",
            kind=kind,
            project=self.state.id,
            recipients=unique,
            at=self.now,
            fields=freeze_payload(fields),
        )
        self.notices.append(notice)

    def department_actors(self, department: str, role: str) -> tuple[str, ...]:
        """The actors of ``department`` who hold ``role`` ("department X" in WORKFLOW.md)."""
        return tuple(
            actor.id
            for actor in self.actors
            if actor.department == department and role in actor.roles
        )

    def time_limit_wd(self, department: str) -> int:
        """The branch time limit for ``department`` on this project (a plugin may set it)."""
        if self.time_limit is not None:
            return self.time_limit(self.state, department)
        return self.settings.time_limit_wd[department]

    def ladder_for(self, stage: str, department: str) -> tuple[LadderStep, ...]:
        """The warning ladder for ``department``'s item in ``stage`` (``pre_review`` or
        ``approval``) on this project: a plugin's answer, else ``settings.ladder``."""
        if self.ladder is not None:
            return self.ladder(self.state, stage, department)
        return self.settings.ladder.steps if self.settings.ladder.enabled else ()

    # -- time -------------------------------------------------------------------------------

    def working_days_after(self, days: int, start: datetime | None = None) -> Due:
        return self.calendar.deadline_after(start or self.now, days)

    def resumed_deadline(self, remaining_wd: int | None) -> Due:
        """The deadline of a branch clock restarting now with ``remaining_wd`` working days
        left. With none left: the end of today, or of the next working day when today is a
        day off, so that no deadline falls on a day off (D8)."""
        days = remaining_wd or 0
        if days == 0 and not self.calendar.is_working_day(to_local(self.now).date()):
            days = 1
        return self.working_days_after(days)
