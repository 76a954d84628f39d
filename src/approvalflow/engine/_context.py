"""Building the context a rule (a command's or a timer's) runs on, and finding its actor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from approvalflow.engine.definition import RuleBook
from approvalflow.errors import NotAuthorized
from approvalflow.model import Actor, ActorDirectory
from approvalflow.project import ProjectState
from approvalflow.rules import copies
from approvalflow.rules.context import Context
from approvalflow.settings import Settings

__all__ = ["build_context", "find_actor"]


def build_context(
    rules: RuleBook,
    actors: ActorDirectory,
    state: ProjectState,
    now: datetime,
    command: str,
    args: Mapping[str, Any],
    actor: Actor | None,
    command_id: str | None,
    settings: Settings | None = None,
) -> Context:
    """What a rule (a command's or a timer's) reads and writes: ``state`` under its own rule
    set (or ``settings``), with the definition's calendar and plugin answers."""
    definition = rules.definition
    return Context(
        state=state,
        settings=rules.rules_for(state) if settings is None else settings,
        calendar=definition.calendar,
        actors=actors,
        now=now,
        command=command,
        args=args,
        actor=actor,
        command_id=command_id,
        route=definition.route,
        time_limit=rules.time_limit if definition.has_limit_hooks else None,
        ladder=rules.ladder if definition.has_ladder_hooks else None,
        followers=copies.followers,
        machines=definition.machines,
    )


def find_actor(actors: ActorDirectory, actor_id: str, command: str, project: str) -> Actor:
    actor = actors.get(actor_id) if isinstance(actor_id, str) else None
    if actor is None:
        raise NotAuthorized(
            f"{actor_id!r} may not {command} on {project}: not in the actor directory"
        )
    return actor
