"""Hook specifications: every point where a county plugin changes or observes the engine.

Hook names start with ``approvalflow_``. Decision hooks that must give one answer are
``firstresult`` (the first plugin that returns something other than ``None`` wins; later
registered plugins are asked first, as pluggy does). Hooks that add things up (settings, commands,
folds, roles, routes, recipients, metrics) collect every plugin's answer, in registration order.
Observation hooks return nothing and must not raise; the engine logs and survives a hook that
does.

A county imports ``hookimpl`` (and everything else it needs) from ``approvalflow.plugin``; this
module is private.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from datetime import datetime

    from approvalflow.calendar import OfficialYear, WorkingCalendar
    from approvalflow.model import ActorDirectory, Event, Notice
    from approvalflow.project import Fold, ProjectState
    from approvalflow.rules.commands import CommandSpec
    from approvalflow.rules.context import Context
    from approvalflow.settings import LadderStep, Settings
    from approvalflow.tasks import TaskItem

PROJECT_NAME = "approvalflow"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

# -- configuration: asked once when an engine is built ------------------------------------------


@hookspec
def approvalflow_settings(settings: Settings) -> Mapping[str, Any] | None:
    """Return settings overrides (WORKFLOW.md keys, nested), or ``None``.

    Every plugin's overrides are merged over the built-in settings, in registration order, and a
    scenario's ``settings:`` is merged last.

    :param settings: the settings so far (built-in plus plugins registered earlier).
    """


@hookspec
def approvalflow_check_settings(settings: Settings) -> Sequence[str] | None:
    """Return what is wrong with this plugin's part of the finished ``settings`` (its
    ``settings.plugins[<name>]``), one ``settings.plugins.<name>.<key>: reason`` each, or
    ``None``. Any problem makes the engine refuse the settings with ``SettingsError``.
    """


@hookspec
def approvalflow_official_calendar() -> Sequence[OfficialYear] | None:
    """Return official holiday data (``OfficialYear``) for years the package lacks or gets wrong.

    Years given here count as official: their deadlines are no longer provisional.
    """


@hookspec
def approvalflow_commands() -> Sequence[CommandSpec] | None:
    """Return extra commands (``CommandSpec``) this plugin adds to the workflow."""


@hookspec
def approvalflow_project_fields() -> Sequence[str] | None:
    """Return names of extra project fields ``create`` accepts (kept in ``state.extra``)."""


@hookspec
def approvalflow_event_folds() -> Mapping[str, Fold] | None:
    """Return this plugin's event folds: event type (``<plugin>.<name>``) -> fold.

    A fold is ``fold(data, payload, at)``: it changes ``data``, the plugin's own slice of
    ``plugin_data``, from the event's payload and time. The engine folds a project's events with
    the folds of its own plugins only, and refuses to write a project holding an event type it
    has no fold for (``UnknownEventType``), so every event type a plugin emits needs a fold here
    (one that does nothing is fine). Two plugins folding one type is a ``PluginError``.
    """


@hookspec
def approvalflow_roles() -> Sequence[str] | None:
    """Return the roles this plugin's actors may hold besides WORKFLOW.md's.

    An actor with a role that is neither built in nor declared by a plugin of the engine is
    refused when the engine is built (``UnknownRole``), so a role typo fails up front.
    """


# -- decisions: asked while a command runs; pure, no I/O ----------------------------------------


@hookspec
def approvalflow_route(project: ProjectState, settings: Settings) -> Sequence[str] | None:
    """Return departments ``project``'s approval needs besides the built-in route, or ``None``.

    The route is the built-in one (``settings.routing.departments``) followed by every plugin's
    additions in registration order, each department once. To refuse ``apply``, use
    ``approvalflow_check_command``.

    :param project: the project as it is when ``apply`` runs (fields, ``emissions``, ``extra``).
    :param settings: the project's settings.
    """


@hookspec
def approvalflow_timers(
    project: ProjectState, settings: Settings, calendar: WorkingCalendar
) -> Mapping[tuple[str, str], datetime] | None:
    """Return the deadlines this plugin's own rules wait on for ``project``, or ``None``.

    Keys are ``(kind, branch)``; name kinds after the plugin (``huguan.issue``) so they never
    clash. Like the built-in timers they are derived from state (usually ``project.plugin_data``):
    the engine stores what changed after every command, and a timer disappears when the plugin
    stops returning it. ``settings`` and ``calendar`` let a plugin count working days itself.
    A timer due at 00:00 (24:00 of a working day) is also listed by ``Engine.deadlines``.
    """


@hookspec(firstresult=True)
def approvalflow_fire_timer(context: Context, kind: str, branch: str) -> bool | None:
    """Handle a due timer of a ``kind`` this plugin returned from ``approvalflow_timers``.

    Emit events and notices through ``context`` (its ``now`` is the due time) and return
    ``True``; return ``None`` for kinds that are not yours.
    """


@hookspec(firstresult=True)
def approvalflow_time_limit(
    project: ProjectState, department: str, settings: Settings
) -> int | None:
    """Return the working days ``department``'s branch gets on ``project``, or ``None`` for
    ``settings.time_limit_wd`` (a priority lane for chain projects, say). Asked when the branch
    opens; the answer is recorded in its deadline."""


@hookspec(firstresult=True)
def approvalflow_ladder(
    project: ProjectState, stage: str, department: str, settings: Settings
) -> Sequence[LadderStep] | None:
    """Return the warning ladder (预警/黄牌/红牌) for ``department``'s item on ``project``, or
    ``None`` for ``settings.ladder`` (its ``steps`` when ``enabled``, else none).

    Asked when the item opens: ``stage`` is ``"pre_review"`` (a member unit, each time a round
    opens), ``"approval"`` (a branch, when ``apply`` opens or re-opens it) or
    ``"rectification"`` (a bad rating's rectification, when the rating opens it). The answer is
    recorded in that event, so changing the rule later does not move open items' cards. Return
    ``[]`` for no cards; steps are ``LadderStep`` objects (or mappings with ``card``, ``offset_wd``
    and ``recipients``), mildest and earliest first. A bad ladder fails the command with
    ``InvalidCommand``.
    """


@hookspec
def approvalflow_check_command(context: Context, command: str) -> None:
    """Refuse a command by raising an ``ApprovalflowError`` (its code is what the caller sees).

    Called after the built-in checks (authorisation, stage, arguments) and before the rule, for
    every command including ``create`` (``context.args`` holds the fields). Nothing is stored
    when it raises. Read ``context``; do not emit.
    """


@hookspec
def approvalflow_after_command(context: Context, command: str) -> None:
    """Add to what a command does: emit events or notices through ``context`` after the rule ran
    and before anything is stored, in the same commit (raising fails the command whole)."""


@hookspec
def approvalflow_after_timer(context: Context, kind: str, branch: str) -> None:
    """Add to what a fired timer (built-in or a plugin's) does: emit events or notices through
    ``context`` after its rule ran and before anything is stored, in the same commit.
    ``context.now`` is the due time; ``context.events`` is what the timer's rule emitted."""


@hookspec
def approvalflow_notice_recipients(
    notice: Notice, project: ProjectState, settings: Settings, actors: ActorDirectory
) -> Sequence[str] | None:
    """Return actors to add to ``notice``'s recipients, or ``None``.

    Asked for every notice (built-in or a plugin's, from a command or a fired timer) before it is
    stored; every plugin's answer is added in registration order, each actor once. Pure: read
    ``notice`` (``kind``, ``fields``), ``project`` (the state after the command),
    ``settings`` (the project's own) and ``actors`` (the directory, to name a department's
    officers or the holders of a role).
    """


@hookspec
def approvalflow_metrics(
    projects: Sequence[ProjectState], settings: Settings
) -> Mapping[str, Any] | None:
    """Return extra metrics over ``projects`` (a county's own KPIs), by name."""


@hookspec
def approvalflow_task_items(project: ProjectState, settings: Settings) -> Sequence[TaskItem] | None:
    """Return the items ``project`` waits on that only this plugin knows of (an issue the
    county assigned, a check of its own), each naming the ``actor`` it is for, or ``None``.

    Collected into ``Engine.tasks``; must be pure and fast (it runs for every open project).
    """


# -- observation: after a command is stored ------------------------------------------------------


@hookspec
def approvalflow_notify(notice: Notice) -> None:
    """Deliver ``notice`` through a channel (SMS, WeChat Work, DingTalk, e-mail, OA...).

    Called after the command is stored, once per notice and channel. Raising marks the delivery
    failed: the notice stays in the outbox and is retried later with backoff (``notice.id`` is
    stable, so a channel can drop duplicates); the command that produced it still succeeded.
    """


@hookspec
def approvalflow_escalation(notice: Notice) -> None:
    """Observe an escalation: an ``overdue``, ``revoked`` or ``rejected`` notice (rule 1).

    Called after ``approvalflow_notify`` for the same notice; for a county's own ledger of
    escalations (督办台账) or an efficiency office's feed. Must not raise (it is logged if it does).
    """


@hookspec
def approvalflow_event(event: Event, project: ProjectState) -> None:
    """Observe ``event`` after it is stored; ``project`` is the state after the command."""
