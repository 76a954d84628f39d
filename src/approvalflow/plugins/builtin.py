"""The built-in plugin: WORKFLOW.md's defaults, registered first like any county plugin.

Built-in settings live in ``Settings.default()``; this plugin holds the built-in answers that are
behaviour rather than numbers.
"""

from __future__ import annotations

from approvalflow.plugins.hookspecs import hookimpl
from approvalflow.project import ProjectState
from approvalflow.settings import Settings


@hookimpl(trylast=True)
def approvalflow_route(project: ProjectState, settings: Settings) -> list[str]:
    """Every department of ``routing.departments``."""
    return list(settings.routing.departments)
