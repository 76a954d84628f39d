"""How the engine combines the answers of collected hooks, in registration order.

pluggy calls the plugin registered last first; the hooks here are specified in registration
order (the built-in plugin, then the engine's plugins as named), so the engine walks
``get_hookimpls()`` itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from approvalflow.errors import InvalidCommand, UnknownRole
from approvalflow.model import ROLES, Actor, ActorDirectory, Notice
from approvalflow.plugins.manager import PluginError

if TYPE_CHECKING:
    import pluggy

    from approvalflow.project import ProjectState
    from approvalflow.settings import Settings

__all__ = [
    "UnknownRole",
    "check_roles",
    "declared_roles",
    "merged_settings",
    "route",
    "with_added_recipients",
]


def _call(impl: Any, **kwargs: Any) -> Any:
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _in_order(hook: Any) -> list[Any]:
    # get_hookimpls() lists implementations in the order pluggy calls them last to first.
    return list(hook.get_hookimpls())


def merged_settings(manager: pluggy.PluginManager, base: Settings) -> Settings:
    """``base`` with every plugin's ``approvalflow_settings`` merged over it, in registration
    order, each plugin given the settings so far."""
    merged = base
    for impl in _in_order(manager.hook.approvalflow_settings):
        overrides = _call(impl, settings=merged)
        if overrides:
            merged = merged.merged(overrides)
    return merged


def route(
    manager: pluggy.PluginManager, project: ProjectState, settings: Settings
) -> tuple[str, ...]:
    """The built-in route followed by every plugin's additions, each department once."""
    departments = dict.fromkeys(settings.routing.departments)
    for impl in _in_order(manager.hook.approvalflow_route):
        added = _call(impl, project=project, settings=settings)
        if added is None:
            continue
        if isinstance(added, str) or not isinstance(added, Iterable):
            raise InvalidCommand(
                f"plugin {impl.plugin_name!r} must route a list of departments, not {added!r}"
            )
        departments.update(dict.fromkeys(added))
    unknown = [d for d in departments if d not in settings.time_limit_wd]
    if unknown:
        raise InvalidCommand(
            f"the routing rule picked {', '.join(map(str, unknown))}, which have no time limit"
        )
    return tuple(departments)


def with_added_recipients(
    manager: pluggy.PluginManager,
    notices: Sequence[Notice],
    project: ProjectState,
    settings: Settings,
    actors: ActorDirectory,
) -> list[Notice]:
    """``notices`` with every plugin's ``approvalflow_notice_recipients`` added to each, in
    registration order, each actor once."""
    impls = _in_order(manager.hook.approvalflow_notice_recipients)
    if not impls:
        return list(notices)
    result = []
    for notice in notices:
        recipients = dict.fromkeys(notice.recipients)
        for impl in impls:
            added = _call(impl, notice=notice, project=project, settings=settings, actors=actors)
            if added is None:
                continue
            if isinstance(added, str) or not isinstance(added, Iterable):
                raise PluginError(
                    f"plugin {impl.plugin_name!r} must add a list of actor ids to notice "
                    f"{notice.kind!r}, not {added!r}"
                )
            recipients.update(dict.fromkeys(a for a in added if a))
        found = tuple(recipients)
        result.append(
            notice if found == notice.recipients else attrs.evolve(notice, recipients=found)
        )
    return result


def declared_roles(manager: pluggy.PluginManager) -> frozenset[str]:
    """WORKFLOW.md's roles and every role a plugin declares."""
    roles = set(ROLES)
    for impl in _in_order(manager.hook.approvalflow_roles):
        answer = _call(impl)
        if answer is None:
            continue
        if isinstance(answer, str) or not all(isinstance(r, str) and r for r in answer):
            raise PluginError(
                f"plugin {impl.plugin_name!r} must declare roles as a list of names, not {answer!r}"
            )
        roles.update(answer)
    return frozenset(roles)


def check_roles(actors: Iterable[Actor], known: Mapping[str, object] | frozenset[str]) -> None:
    """Raise ``UnknownRole`` naming every actor with a role outside ``known``."""
    wrong = [
        f"{actor.id} ({', '.join(sorted(actor.roles - set(known)))})"
        for actor in actors
        if not actor.roles <= set(known)
    ]
    if wrong:
        raise UnknownRole(
            f"unknown role for {'; '.join(wrong)}: roles are {', '.join(sorted(known))} "
            "(a plugin declares its own with approvalflow_roles)"
        )
