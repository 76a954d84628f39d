"""Value objects the engine speaks in: actors, events, notices and timers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs

__all__ = [
    "ESCALATION_KINDS",
    "NOTICE_KINDS",
    "ROLES",
    "Actor",
    "ActorDirectory",
    "CommandResult",
    "Event",
    "InMemoryActorDirectory",
    "Notice",
    "Timer",
    "TimerChanges",
]

# WORKFLOW.md's notice kinds, then the warning ladder's cards (预警, 黄牌, 红牌; sent only when
# a county has a ladder), then approval in stages' (sent only when a county has stages); plugins
# may add their own.
NOTICE_KINDS: tuple[str, ...] = (
    "pre_review_notice",
    "decision",
    "returned",
    "reminder",
    "revoked",
    "overdue",
    "urge",
    "approved",
    "rejected",
    "copy",
    "transferred",
    "entrusted",
    "department_added",
    "department_removed",
    "removal_consent",
    "removal_declined",
    "early_warning",
    "yellow_card",
    "red_card",
    "stage_opened",
    "stage_decided",
    "stage_result_issued",
    # 好差评: a rating (to forward to the provincial system) and its rectification's steps.
    "rating_recorded",
    "rectified",
    "rectification_closed",
    "rectification_reopened",
    "rectification_warning",
)
# Escalations (rule 1): notices that take a lapse above the department, to the project's leader
# and, for a red card, to the efficiency office (效能办).
ESCALATION_KINDS: frozenset[str] = frozenset({"overdue", "revoked", "rejected", "red_card"})

ROLES: tuple[str, ...] = (
    "recruiter",
    "applicant",
    "agent",
    "reviewer",
    "member",
    "chair",
    "officer",
    "leader",
    "head",  # a department's head (负责人): names the authority for an extension
    "efficiency_office",  # the county's efficiency office (效能办): receives red cards
)


def _frozenset_of_str(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _optional_teams(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen
class Actor:
    """A person or organisation known to the host's directory.

    ``teams`` of ``None`` means the actor serves every team; ``recuse`` lists project ids the
    actor may not vote on.
    """

    id: str
    roles: frozenset[str] = attrs.field(converter=_frozenset_of_str)
    name: str | None = None
    department: str | None = None
    teams: frozenset[str] | None = attrs.field(default=None, converter=_optional_teams)
    recuse: frozenset[str] = attrs.field(factory=frozenset, converter=_frozenset_of_str)

    def has_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)

    def serves_team(self, team: str) -> bool:
        return self.teams is None or team in self.teams

    @property
    def display(self) -> str:
        return self.name or self.id


@runtime_checkable
class ActorDirectory(Protocol):
    """What the engine needs from the host's directory of people."""

    def get(self, actor_id: str) -> Actor | None:
        """The actor with this id, or ``None``."""

    def __iter__(self) -> Iterator[Actor]:
        """Every actor (used for the leading group's size and for notice recipients)."""


class InMemoryActorDirectory:
    """An actor directory held in memory; the host may replace it with its own."""

    def __init__(self, actors: Iterable[Actor] = ()) -> None:
        self._actors: dict[str, Actor] = {}
        self._by_department: dict[tuple[str, str], tuple[str, ...]] | None = None
        for actor in actors:
            self.add(actor)

    def add(self, actor: Actor) -> None:
        self._actors[actor.id] = actor
        self._by_department = None

    def get(self, actor_id: str) -> Actor | None:
        return self._actors.get(actor_id)

    def __iter__(self) -> Iterator[Actor]:
        return iter(self._actors.values())

    def __len__(self) -> int:
        return len(self._actors)


@attrs.frozen
class Event:
    """One fact in a project's history. Events are never changed once stored.

    ``by`` is the person who acted (``None`` for the engine's own timers); ``on_behalf_of`` is
    the party they acted for: the applicant when its agent acts, a branch's handler when the
    deputy they entrusted acts.
    """

    project: str
    version: int
    type: str
    at: datetime
    payload: Mapping[str, Any] = attrs.field(factory=dict)
    by: str | None = None
    on_behalf_of: str | None = None
    command_id: str | None = None


@attrs.frozen
class Notice:
    """Something people must be told, delivered through the plugins' notify hooks.

    ``id`` is stable (project, version, index), so a channel can drop a duplicate delivery.
    ``fields`` holds the kind's own data (materials, department, tally...).
    """

    id: str
    kind: str
    project: str
    recipients: tuple[str, ...]
    at: datetime
    fields: Mapping[str, Any] = attrs.field(factory=dict)

    def per_recipient(self) -> list[dict[str, Any]]:
        """One flat mapping per recipient, as scenario files see notices."""
        base = {"kind": self.kind, "project": self.project, **self.fields}
        return [{**base, "to": recipient} for recipient in self.recipients]


@attrs.frozen
class Timer:
    """A deadline the engine must act on. ``(project, kind, branch)`` is its stable key."""

    project: str
    kind: str
    due: datetime
    branch: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.project, self.kind, self.branch)


@attrs.frozen
class TimerChanges:
    """Timers a commit sets (replacing any with the same key) and keys it cancels."""

    set: tuple[Timer, ...] = ()
    cancel: tuple[tuple[str, str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.cancel)


@attrs.frozen
class CommandResult:
    """What a successful command did. A repeated ``command_id`` returns the first result."""

    project: str
    command: str
    version: int
    state: str
    events: tuple[Event, ...]
    notices: tuple[Notice, ...]
    replayed: bool = False


def freeze_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Payloads are plain JSON-like data: lists, not tuples or sets (stable across stores)."""
    return {key: _plain(value) for key, value in payload.items()}


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:  # the common case, checked first and exactly
        return value
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(item) for item in value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value
