"""The county plugin API: everything a county plugin uses, and the only module it imports
besides ``approvalflow``.

Every name here is public and kept stable across minor versions; the modules these names are
defined in (``approvalflow.rules``, ``approvalflow.states``, ``approvalflow.project``,
``approvalflow.plugins``, ``approvalflow.settings``...) are private and may move or change.
docs/plugins.md teaches the API; this module's docstrings are its reference.

What is here:

- hooks: ``hookimpl`` marks a hook implementation (the hooks are listed in docs/plugins.md);
  ``available_plugins()`` lists the installed ones by entry-point name;
- commands: ``CommandSpec``, ``Party``, ``Context`` (what a rule reads and writes) and the
  argument readers ``read_text``, ``read_choice``, ``read_flag``, ``read_id_list``,
  ``read_text_list``, ``read_amount``, ``read_department``, ``read_materials``, ``read_day``;
- the project: ``ProjectState``, ``Branch``, ``Actor``, ``ActorDirectory``, ``Event``,
  ``Notice``, ``Timer``; stage and branch-state names and sets (``STAGES``, ``TERMINAL``,
  ``BRANCH_STATES``, ``BRANCH_OPEN``...) and ``stage_index``, ``require_stage``,
  ``require_actor``; ``plugin_data_of`` reads a plugin's slice of ``plugin_data``;
- events: ``Fold`` and ``event_folds`` for ``approvalflow_event_folds``;
- 好差评: ``Rating`` (``ProjectState.ratings``, by item), ``RATING_LEVELS``, ``rating_items``
  (what a project can be rated on now) and ``rating_metrics`` (per department and month), for
  a county's points or its own report (docs/ratings.md);
- time: ``SHANGHAI``, ``to_local``, ``local_date``, ``local_month``, ``format_local``,
  ``parse_local``, ``from_iso``, ``Due``, ``WorkingCalendar``, ``OfficialYear``;
- settings: ``Settings``, ``LadderStep``, ``MILESTONES``, ``CountySettings`` and
  ``CountyConfig`` for a county's own numbers;
- errors: every ``ApprovalflowError`` a rule raises, plus ``UnknownEventType``,
  ``UnknownRole``, ``SettingsError`` and ``PluginError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from approvalflow.calendar import (
    SHANGHAI,
    Due,
    OfficialYear,
    WorkingCalendar,
    format_local,
    parse_local,
    to_local,
)
from approvalflow.errors import (
    AlreadyRated,
    AlreadyVoted,
    ApprovalflowError,
    CalendarUnknown,
    InvalidCommand,
    InvalidTransition,
    KeyMaterialMissing,
    NotAuthorized,
    UnknownEventType,
    UnknownMaterial,
    UnknownProject,
    UnknownRole,
)
from approvalflow.model import ROLES, Actor, ActorDirectory, Event, Notice, Timer
from approvalflow.plugins.hookspecs import hookimpl
from approvalflow.plugins.manager import PluginError, available_plugins
from approvalflow.project import Branch, Fold, ProjectState, Rating
from approvalflow.rules import arguments as _arguments
from approvalflow.rules.authorization import Party
from approvalflow.rules.commands import CommandSpec
from approvalflow.rules.context import Context
from approvalflow.rules.metrics import rating_metrics
from approvalflow.rules.ratings import LEVELS as RATING_LEVELS
from approvalflow.rules.ratings import rating_items
from approvalflow.settings import (
    MILESTONES,
    CountyConfig,
    CountySettings,
    LadderStep,
    Settings,
    SettingsError,
)
from approvalflow.states import (
    BRANCH_OPEN,
    BRANCH_STATES,
    FUNDED_STAGES,
    NON_TERMINAL,
    STAGES,
    TERMINAL,
)
from approvalflow.tasks import TaskItem

__all__ = [
    "BRANCH_OPEN",
    "BRANCH_STATES",
    "FUNDED_STAGES",
    "LIFECYCLE",
    "MILESTONES",
    "NON_TERMINAL",
    "RATING_LEVELS",
    "ROLES",
    "SHANGHAI",
    "STAGES",
    "TERMINAL",
    "Actor",
    "ActorDirectory",
    "AlreadyRated",
    "AlreadyVoted",
    "ApprovalflowError",
    "Branch",
    "CalendarUnknown",
    "CommandSpec",
    "Context",
    "CountyConfig",
    "CountySettings",
    "Due",
    "Event",
    "Fold",
    "InvalidCommand",
    "InvalidTransition",
    "KeyMaterialMissing",
    "LadderStep",
    "NotAuthorized",
    "Notice",
    "OfficialYear",
    "Party",
    "PluginError",
    "ProjectState",
    "Rating",
    "Settings",
    "SettingsError",
    "TaskItem",
    "Timer",
    "UnknownEventType",
    "UnknownMaterial",
    "UnknownProject",
    "UnknownRole",
    "WorkingCalendar",
    "available_plugins",
    "event_folds",
    "format_local",
    "from_iso",
    "hookimpl",
    "local_date",
    "local_month",
    "parse_local",
    "plugin_data_of",
    "rating_items",
    "rating_metrics",
    "read_amount",
    "read_choice",
    "read_day",
    "read_department",
    "read_flag",
    "read_id_list",
    "read_materials",
    "read_text",
    "read_text_list",
    "require_actor",
    "require_stage",
    "stage_index",
    "to_local",
]

# -- argument readers: each failure is an InvalidCommand naming the argument ----------------------

read_text = _arguments.text
read_choice = _arguments.choice
read_flag = _arguments.flag
read_id_list = _arguments.id_list
read_amount = _arguments.amount
read_department = _arguments.department
read_materials = _arguments.materials
read_day = _arguments.day_from


def read_text_list(args: Mapping[str, Any], name: str, *, required: bool = True) -> tuple[str, ...]:
    """A non-empty list of non-empty texts (stripped), or ``InvalidCommand`` naming ``name``;
    ``()`` when it is absent and not ``required``."""
    value = args.get(name)
    if value is None and not required:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise InvalidCommand(f"argument {name!r} must be a non-empty list of texts")
    items = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidCommand(f"argument {name!r} must list non-empty texts, found {item!r}")
        items.append(item.strip())
    return tuple(items)


# -- stages -------------------------------------------------------------------------------------

LIFECYCLE: tuple[str, ...] = (
    "lead",
    "negotiating",
    "pre_review",
    "decision",
    "signed",
    "approval",
    "approved",
    "construction",
    "production",
    "effective",
)
"""The top stages in lifecycle order (the endings ``rejected``, ``withdrawn`` and
``terminated`` are not in it); rules say "from signing on" with ``stage_index``."""


def stage_index(stage: str) -> int:
    """The position of ``stage``'s top stage (``approval`` for ``approval.x``) in ``LIFECYCLE``,
    -1 for an ending."""
    top = stage.split(".", 1)[0]
    return LIFECYCLE.index(top) if top in LIFECYCLE else -1


def require_stage(context: Context, first: str, last: str, why: str) -> None:
    """``InvalidTransition`` unless the project is between stages ``first`` and ``last``
    (inclusive, in lifecycle order); ``why`` is the reason the caller reads."""
    index = stage_index(context.state.stage)
    if not stage_index(first) <= index <= stage_index(last):
        raise InvalidTransition(
            f"{context.command} is not allowed while {context.state.id} is "
            f"{context.state.stage}: {why}"
        )


def require_actor(context: Context, allowed: Iterable[str | None], who: str) -> None:
    """``NotAuthorized`` unless the acting actor is one of ``allowed`` (``None`` ignored);
    ``who`` says who may."""
    if context.by not in {a for a in allowed if a}:
        raise NotAuthorized(f"{context.by} may not {context.command} on {context.state.id}: {who}")


# -- plugin data and events ---------------------------------------------------------------------


def plugin_data_of(project: ProjectState, plugin: str) -> Mapping[str, Any]:
    """``plugin``'s slice of ``project.plugin_data``, read-only (empty when nothing is folded).

    Only the plugin's folds write it (see ``event_folds``)."""
    data = project.plugin_data.get(plugin)
    return data if isinstance(data, dict) else {}


def event_folds(plugin: str, folds: Mapping[str, Fold]) -> dict[str, Fold]:
    """``{"<plugin>.<name>": fold}`` for ``approvalflow_event_folds``, from ``{name: fold}``.

    Each fold is called as ``fold(data, payload, at)`` with ``data`` the plugin's own writable
    slice of ``plugin_data``."""
    if not plugin or "." in plugin:
        raise PluginError(f"a plugin name for event types has no dot, not {plugin!r}")
    return {f"{plugin}.{name}": fold for name, fold in folds.items()}


# -- time ---------------------------------------------------------------------------------------


def from_iso(value: str | None) -> datetime | None:
    """A time stored in plugin data as ISO text, as an aware datetime (``None`` stays)."""
    return None if value is None else datetime.fromisoformat(value)


def local_date(moment: datetime) -> date:
    """The county-time (Asia/Shanghai) day of ``moment``."""
    return to_local(moment).date()


def local_month(moment: datetime) -> str:
    """``YYYY-MM`` of ``moment`` in county time (Asia/Shanghai)."""
    return to_local(moment).strftime("%Y-%m")
