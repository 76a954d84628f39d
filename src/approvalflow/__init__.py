"""approvalflow: the workflow and approval engine for county investment projects.

The public surface is what this module exports (for hosts: ``Engine``, actors, clocks, errors),
and these modules:

- ``approvalflow.plugin``: the county plugin API, the only other module a county plugin imports;
- ``approvalflow.stores``: ``open_store`` and the store classes a host picks by URL;
- what a face for people uses: ``approvalflow.names.Names`` (display names beside the ids),
  ``approvalflow.money.format_amount`` and ``approvalflow.diagram`` (``draw``, ``diagram_svg``);
- the testing helpers ``approvalflow.testing.store_conformance`` (the suite a store backend
  passes) and ``approvalflow.scenario.runner`` (``load``, ``run_file``, ``run_scenario``).

Everything else (``approvalflow.rules``, ``approvalflow.engine``'s internals,
``approvalflow.project``, ``approvalflow.states``, ``approvalflow.settings``,
``approvalflow.plugins``...) is private and may change in any release; the names a plugin needs
from it are re-exported by ``approvalflow.plugin``.
"""

from approvalflow.calendar import Due, OfficialYear, WorkingCalendar
from approvalflow.clock import Clock, ManualClock, SystemClock
from approvalflow.engine import Engine
from approvalflow.errors import (
    AlreadyRated,
    AlreadyRouted,
    AlreadyVoted,
    ApprovalflowError,
    CalendarOutOfRange,
    CalendarUnknown,
    ConcurrencyConflict,
    DuplicateProject,
    InvalidCommand,
    InvalidTransition,
    KeyMaterialMissing,
    NotArchivable,
    NotAuthorized,
    ProjectArchived,
    UnknownEventType,
    UnknownMaterial,
    UnknownProject,
    UnknownRole,
)
from approvalflow.model import (
    Actor,
    ActorDirectory,
    CommandResult,
    Event,
    InMemoryActorDirectory,
    Notice,
    Timer,
)
from approvalflow.money import parse_amount
from approvalflow.plugins import PluginError, hookimpl
from approvalflow.project import Branch, ProjectState
from approvalflow.rules.authorization import Party
from approvalflow.rules.commands import CommandSpec
from approvalflow.rules.context import Context
from approvalflow.settings import LadderStep, Settings, SettingsError

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorDirectory",
    "AlreadyRated",
    "AlreadyRouted",
    "AlreadyVoted",
    "ApprovalflowError",
    "Branch",
    "CalendarOutOfRange",
    "CalendarUnknown",
    "Clock",
    "CommandResult",
    "CommandSpec",
    "ConcurrencyConflict",
    "Context",
    "Due",
    "DuplicateProject",
    "Engine",
    "Event",
    "InMemoryActorDirectory",
    "InvalidCommand",
    "InvalidTransition",
    "KeyMaterialMissing",
    "LadderStep",
    "ManualClock",
    "NotArchivable",
    "NotAuthorized",
    "Notice",
    "OfficialYear",
    "Party",
    "PluginError",
    "ProjectArchived",
    "ProjectState",
    "Settings",
    "SettingsError",
    "SystemClock",
    "Timer",
    "UnknownEventType",
    "UnknownMaterial",
    "UnknownProject",
    "UnknownRole",
    "WorkingCalendar",
    "hookimpl",
    "parse_amount",
]
