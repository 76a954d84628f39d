"""County plugins: hook specifications, the built-in plugin and the plugin manager."""

from approvalflow.plugins.hookspecs import hookimpl, hookspec
from approvalflow.plugins.manager import (
    ENTRY_POINT_GROUP,
    PluginError,
    available_plugins,
    build_plugin_manager,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "available_plugins",
    "build_plugin_manager",
    "hookimpl",
    "hookspec",
]
