"""The built-in plugin: WORKFLOW.md's defaults, registered first like any county plugin.

Built-in settings live in ``Settings.default()`` and the built-in route is
``settings.routing.departments`` (plugins add to it); this plugin holds the built-in answers that
are behaviour rather than numbers, and has none today.
"""

from __future__ import annotations
