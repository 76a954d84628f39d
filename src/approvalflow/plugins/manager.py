"""Building a plugin manager from entry-point names and plugin objects."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy

from approvalflow.errors import PluginError
from approvalflow.plugins import hookspecs

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "available_plugins", "build_plugin_manager"]

ENTRY_POINT_GROUP = "approvalflow"


def available_plugins() -> dict[str, str]:
    """Installed plugins: entry-point name -> ``module:attr``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin(name: str) -> Any:
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(sorted(available_plugins())) or "none installed"
        raise PluginError(f"no approvalflow plugin named {name!r} (installed: {known})")
    try:
        return matches[0].load()
    except Exception as exc:  # a broken plugin must name itself, whatever broke
        raise PluginError(f"plugin {name!r} ({matches[0].value}) failed to load: {exc}") from exc


def build_plugin_manager(plugins: Iterable[str | object] = ()) -> pluggy.PluginManager:
    """A manager with the built-in plugin, then ``plugins`` (entry-point names or objects).

    Only the plugins named here are active, so several installed counties never collide.
    Raises ``PluginError`` for an unknown or broken plugin, or a hook that matches no spec.
    """
    from approvalflow.plugins import builtin

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name="builtin")
    for plugin in plugins:
        if isinstance(plugin, str):
            obj, name = load_plugin(plugin), plugin
        else:
            obj, name = plugin, getattr(plugin, "__name__", None) or type(plugin).__name__
        if manager.is_registered(obj):
            continue
        try:
            manager.register(obj, name=name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} cannot be registered: {exc}") from exc
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (is a hook name misspelled?)") from exc
    return manager
