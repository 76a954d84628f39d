"""A parsed scenario file (SCENARIOS.md, contract v1) as frozen value objects.

The loader builds these; the runner reads them. Every step, actor and expectation carries the
1-based line of the file where it was written, so a failure can point at it. Times are aware
datetimes in Asia/Shanghai. Values the engine interprets (amounts, settings, command arguments)
are passed through as the file gave them, after the loader's scalar rules (dates stay text, only
``true``/``false`` are booleans, no octal).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeAlias

import attrs

from approvalflow.errors import ScenarioFileError
from approvalflow.model import Actor

__all__ = [
    "ActorSpec",
    "AdvanceStep",
    "CommandStep",
    "ExpectStep",
    "Expectation",
    "Scenario",
    "ScenarioFileError",
    "Step",
]


@attrs.frozen
class ActorSpec:
    """One entry of ``actors:``: who may act in the scenario.

    ``teams`` is ``None`` when the file gives no ``teams`` list (the actor serves every team,
    WORKFLOW.md); ``recuse`` lists project ids.
    """

    id: str
    name: str | None
    roles: tuple[str, ...]
    department: str | None
    teams: tuple[str, ...] | None
    recuse: tuple[str, ...]
    line: int

    def actor(self) -> Actor:
        """The ``Actor`` this entry describes, its recusals as the file gives them (what an
        actors file given to ``serve``, ``worker`` or a counties file means)."""
        return Actor(
            self.id,
            list(self.roles),
            name=self.name,
            department=self.department,
            teams=None if self.teams is None else list(self.teams),
            recuse=list(self.recuse),
        )


@attrs.frozen
class CommandStep:
    """A ``create: <project>`` or ``do: <command>`` step.

    ``command`` is ``"create"`` for create steps. ``args`` holds the ``project:`` fields of a
    create step, or the ``args:`` of a do step (``{}`` when absent). ``error`` is the error
    code the command must fail with, or ``None`` when it must succeed.
    """

    index: int
    line: int
    command: str
    project: str
    by: str
    args: dict[str, Any]
    error: str | None
    command_id: str | None


@attrs.frozen
class AdvanceStep:
    """An ``advance:`` step: either by ``amount`` of ``unit``, or to the local time ``until``.

    Exactly one form is set: ``unit`` is ``None`` (and ``amount`` 0) when ``until`` is given.
    """

    index: int
    line: int
    amount: int
    unit: Literal["wd", "days", "hours"] | None
    until: datetime | None


@attrs.frozen
class RulesStep:
    """A ``rules:`` step: the county publishes new rules (settings overrides, nested, merged
    onto the scenario's ``settings:`` and any earlier ``rules:``). Projects created from here
    on are pinned to them; earlier ones keep theirs until a ``migrate_rules`` command."""

    index: int
    line: int
    settings: dict[str, Any]


@attrs.frozen
class Expectation:
    """One checked thing of an ``expect`` step: a key, the expected value, and its line.

    ``project`` is the created project a state or deadline key names (project ids may contain
    dots, so ``P.1.approval.zj`` names ``P.1``); empty for the other kinds.
    """

    key: str
    value: Any
    line: int
    project: str = ""


@attrs.frozen
class ExpectStep:
    """An ``expect:`` step, its checks grouped by kind, each group in file order.

    - ``states``: key ``P1`` or ``P1.approval.sthj``, value the expected state path (text).
    - ``notices`` / ``no_notices``: key ``notices[i]`` / ``no_notices[i]`` (from 1), value the
      mapping a sent notice must (or must not) contain.
    - ``points``: key a team, value an int.
    - ``metrics``: key a metric name, value a number, ``None``, a text (a plugin's metric
      such as a grade), or a mapping of them.
    - ``deadlines``: key such as ``P1.approval.sthj.supply``, value an aware datetime.
    - ``events``: key ``events[i]`` (from 1), value the mapping a recorded event must contain
      (``type``, ``project``, ``by``, ``on_behalf_of`` and its payload's fields).
    """

    index: int
    line: int
    states: tuple[Expectation, ...]
    notices: tuple[Expectation, ...]
    no_notices: tuple[Expectation, ...]
    points: tuple[Expectation, ...]
    metrics: tuple[Expectation, ...]
    deadlines: tuple[Expectation, ...]
    events: tuple[Expectation, ...] = ()


Step: TypeAlias = CommandStep | AdvanceStep | ExpectStep | RulesStep


@attrs.frozen
class Scenario:
    """A whole scenario file: its name, setup and steps in order.

    ``path`` is the file as given to the loader; ``plugins`` are entry-point names;
    ``settings`` is the nested ``settings:`` mapping as written; ``start`` is the initial
    clock; ``actors`` maps actor id to its spec, in file order.
    """

    name: str
    path: str
    plugins: tuple[str, ...]
    settings: dict[str, Any]
    start: datetime
    actors: dict[str, ActorSpec]
    steps: tuple[Step, ...]
