"""Display names for the ids people read: actors, teams, departments, materials, states,
commands and cards.

Ids stay the stable keys everywhere (stores, URLs, the API, JSON and CSV columns); a name is
only what a person reads beside one. ``Names.of(settings, actors)`` gathers them once from the
county's settings (``departments``, ``teams``, the material catalogue, the approval stages'
names), the actor directory (``Actor.name``) and ``display.py``'s Chinese names. Every lookup
answers the id itself when no name is known, never an error::

    names = Names.of(engine.settings, directory)
    names.actor("guo")                 # '郭强'
    names.labelled("actor", "guo")     # '郭强 (guo)'
    names.labelled("team", "nobody")   # 'nobody' (no name known: the id alone)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, get_args

import attrs

from approvalflow.display import (
    BRANCH_STATE_NAMES,
    CARD_NAMES,
    COMMAND_NAMES,
    NOTICE_NAMES,
    ROLE_NAMES,
    STATE_NAMES,
    TRANSITION_NAMES,
)

if TYPE_CHECKING:
    from approvalflow.model import Actor
    from approvalflow.rules.commands import CommandSpec
    from approvalflow.settings import Settings

__all__ = ["KINDS", "Kind", "Names"]

Kind = Literal[
    "actor",
    "team",
    "department",
    "material",
    "state",
    "branch_state",
    "command",
    "transition",
    "card",
    "notice",
    "role",
]

#: The kinds of id :meth:`Names.name` and :meth:`Names.labelled` know.
KINDS: tuple[str, ...] = get_args(Kind)


def _frozen_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen(hash=False)
class Names:
    """The display names of one county's ids. Build it with :meth:`of`; treat it as read-only.

    Each method answers the display name, or the id itself when none is known (a name equal
    to its id counts as unknown in :meth:`labelled`).
    """

    actors: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    teams: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    departments: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    materials: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    states: Mapping[str, str] = attrs.field(
        factory=lambda: dict(STATE_NAMES), converter=_frozen_map
    )
    commands: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    """County commands' titles (``CommandSpec.title``), beside the built-ins' names."""

    @classmethod
    def of(
        cls,
        settings: Settings,
        actors: Iterable[Actor] | None = None,
        commands: Mapping[str, CommandSpec] | None = None,
    ) -> Names:
        """The names of ``settings`` (departments, teams, materials, approval stages), of
        ``actors`` (a list of :class:`~approvalflow.model.Actor` or an actor directory; an
        actor without a ``name`` keeps its id) and of ``commands`` (``Engine.commands``: a
        county command's ``title``)."""
        states = dict(STATE_NAMES)
        for stage in settings.approval.stages:
            states.setdefault(stage.id, stage.name)
        return cls(
            actors={actor.id: actor.name for actor in actors or () if actor.name},
            teams=settings.teams,
            departments=settings.departments,
            materials={key: info.name for key, info in settings.materials.items()},
            states=states,
            commands={name: spec.title for name, spec in (commands or {}).items() if spec.title},
        )

    def actor(self, actor_id: str) -> str:
        """``郭强`` for ``guo``: the directory's name of the person or organisation."""
        return self.actors.get(actor_id, actor_id)

    def team(self, team_id: str) -> str:
        """The investment-promotion team's name (the ``teams`` setting)."""
        return self.teams.get(team_id, team_id)

    def department(self, department_id: str) -> str:
        """``发改`` for ``fgw`` (the ``departments`` setting)."""
        return self.departments.get(department_id, department_id)

    def material(self, material_id: str) -> str:
        """``营业执照`` for ``business_license`` (the ``materials`` catalogue)."""
        return self.materials.get(material_id, material_id)

    def state(self, state_id: str) -> str:
        """``并联审批`` for ``approval``; an approval stage's name for its id."""
        return self.states.get(state_id, state_id)

    def branch_state(self, state_id: str) -> str:
        """``容缺受理`` for ``deficient``: a department's branch state."""
        return BRANCH_STATE_NAMES.get(state_id, state_id)

    def command(self, name: str) -> str:
        """``受理`` for ``accept``; a county command's ``title`` (its id when it has none)."""
        found = self.commands.get(name)
        return found if found is not None else COMMAND_NAMES.get(name, name)

    def transition(self, trigger: str) -> str:
        """A diagram edge's label: a command's name or the engine's own move (``时限到期``)."""
        return TRANSITION_NAMES.get(trigger, trigger)

    def card(self, card: str) -> str:
        """``黄牌`` for ``yellow``: the warning ladder's cards."""
        return CARD_NAMES.get(card, card)

    def notice(self, kind: str) -> str:
        """``一次性告知`` for ``pre_review_notice``."""
        return NOTICE_NAMES.get(kind, kind)

    def role(self, role: str) -> str:
        """``包联领导`` for ``leader``."""
        return ROLE_NAMES.get(role, role)

    def name(self, kind: str, value: str) -> str:
        """The display name of ``value`` as a ``kind`` of :data:`KINDS` (``ValueError`` for
        another kind: that is a mistake in the caller, not an unknown id)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind of name {kind!r} (known: {', '.join(KINDS)})")
        lookup: str = getattr(self, kind)(value)
        return lookup

    def labelled(self, kind: str, value: str) -> str:
        """``郭强 (guo)``: the name with the id in brackets, as the CLI prints people and
        units; the id alone when no name is known."""
        shown = self.name(kind, value)
        return value if shown == value else f"{shown} ({value})"

    def many(self, kind: str, values: Iterable[str], separator: str = ", ") -> str:
        """Several ids of one kind, each :meth:`labelled`, joined."""
        return separator.join(self.labelled(kind, value) for value in values)
