"""The engine's fold table: every plugin's event folds, and the refusal to write a project
whose events the engine cannot fold.

Plugins hand their folds over through ``approvalflow_event_folds``; nothing is registered for the
whole process, so two engines in one process with different plugins fold differently, as two
processes would. An event type with a dot (``huguan.issue_raised``) belongs to the plugin named
before the dot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from approvalflow.errors import UnknownEventType
from approvalflow.plugins.manager import PluginError
from approvalflow.project import (
    Fold,
    ProjectState,
    active_folds,
    builtin_event_types,
    folding,
)

if TYPE_CHECKING:
    import pluggy

    from approvalflow.stores.base import Store

__all__ = [
    "FoldTable",
    "UnknownEventType",
    "build_fold_table",
    "plugin_of",
    "with_plugin_folds",
]


def plugin_of(event_type: str) -> str:
    """The plugin an event type belongs to: its name before the first dot."""
    return event_type.split(".", 1)[0]


class FoldTable:
    """Event type -> fold, from an engine's plugins, and the checks that use it."""

    def __init__(self, folds: Mapping[str, Fold]) -> None:
        self.folds: Mapping[str, Fold] = dict(folds)
        self.plugins = frozenset(plugin_of(event_type) for event_type in self.folds)

    def folding(self) -> AbstractContextManager[None]:
        """Fold plugin events with this table inside a ``with`` block."""
        return folding(self.folds)

    def load(self, store: Store, project: str, *, for_command: bool = False) -> ProjectState | None:
        """``store.load(project)`` folded with this table (``for_command``: the store's
        ``load_for_command``, where it has one: a store written before it answers ``load``).

        A state folded earlier without one of these folds (a store's cache, shared with an
        engine that lacks the plugin) is rebuilt from the project's history.
        """
        with folding(self.folds):
            read = getattr(store, "load_for_command", store.load) if for_command else store.load
            state = read(project)
            if state is not None and any(t in self.folds for t in state.unfolded_types):
                state = ProjectState.from_events(store.events(project))
        return state

    def load_many(self, store: Store, projects: Collection[str]) -> dict[str, ProjectState]:
        """``load`` of each of ``projects`` that exists, through the store's ``load_many``
        where it has one (a store written before it is read project by project)."""
        with folding(self.folds):
            read = getattr(store, "load_many", None)
            if read is None:
                loaded = ((project, store.load(project)) for project in projects)
                found = {project: state for project, state in loaded if state is not None}
            else:
                found = read(projects)
            for project, state in found.items():
                if any(t in self.folds for t in state.unfolded_types):
                    found[project] = ProjectState.from_events(store.events(project))
        return found

    def missing(self, state: ProjectState) -> list[str]:
        """What of ``state`` this table cannot fold: event types met without a fold, and
        plugins whose data the project holds (from a snapshot) but that have no fold here."""
        if not state.unfolded_types and not state.plugin_data:
            return []  # most projects, on every commit: nothing of a plugin's to lose
        found = [t for t in state.unfolded_types if t not in self.folds]
        found += [f"{name}.*" for name in state.plugin_data if name not in self.plugins]
        return found

    def check_commit(self, before: ProjectState | None, after: ProjectState, what: str) -> None:
        """Raise ``UnknownEventType`` unless every event of the project, before ``what`` and
        from it, can be folded here."""
        if before is not None and (missing := self.missing(before)):
            plugins = sorted({plugin_of(t) for t in missing})
            raise UnknownEventType(
                f"{what} on {before.id} is refused: the project has events of type "
                f"{', '.join(missing)} that this engine cannot fold; load plugin "
                f"{', '.join(repr(p) for p in plugins)} to write it (writing without it would "
                "lose that plugin's data)"
            )
        if missing := self.missing(after):
            raise UnknownEventType(
                f"{what} on {after.id} emits events of type {', '.join(missing)} that no plugin "
                "of this engine folds (a plugin returns a fold for each of its event types from "
                "approvalflow_event_folds)"
            )


def build_fold_table(manager: pluggy.PluginManager) -> FoldTable:
    """Collect ``approvalflow_event_folds`` from every plugin of ``manager``.

    Raises ``PluginError`` for a type without a plugin prefix, one of another plugin's prefix,
    a built-in type, a fold that is not callable, or a type two plugins fold.
    """
    builtin = builtin_event_types()
    folds: dict[str, Fold] = {}
    owners: dict[str, str] = {}
    for impl in reversed(manager.hook.approvalflow_event_folds.get_hookimpls()):
        answer = impl.function()
        if answer is None:
            continue
        if not isinstance(answer, Mapping):
            raise PluginError(
                f"plugin {impl.plugin_name!r}: approvalflow_event_folds must return a mapping "
                f"of event type to fold, not {answer!r}"
            )
        for event_type, fold in answer.items():
            problem = _fold_problem(event_type, fold, builtin)
            if problem:
                raise PluginError(f"plugin {impl.plugin_name!r}: {problem}")
            if event_type in owners:
                raise PluginError(
                    f"event type {event_type!r} is folded by both {owners[event_type]!r} and "
                    f"{impl.plugin_name!r}"
                )
            owners[event_type] = impl.plugin_name
            folds[event_type] = fold
    return FoldTable(folds)


def _fold_problem(event_type: object, fold: object, builtin: frozenset[str]) -> str | None:
    if not isinstance(event_type, str) or "." not in event_type or event_type.startswith("."):
        return f"event type {event_type!r} must be named <plugin>.<name>"
    if event_type in builtin:
        return f"event type {event_type!r} is built in"
    if not callable(fold):
        return f"the fold of {event_type!r} is not callable"
    return None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def with_plugin_folds(
    method: Callable[Concatenate[Any, _P], _R],
) -> Callable[Concatenate[Any, _P], _R]:
    """Run an engine service's method with its definition's fold table active
    (``self.rules.definition.folds``), so the events its rules emit are folded by the engine's
    own plugins."""

    @functools.wraps(method)
    def run(self: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        folds = self.rules.definition.folds.folds
        if not folds and active_folds() is None:
            return method(self, *args, **kwargs)  # no plugin folds: nothing to make active
        with folding(folds):
            return method(self, *args, **kwargs)

    return run
