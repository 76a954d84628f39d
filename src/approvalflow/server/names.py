"""Display names for the workbench's pages: the library's ``approvalflow.names.Names``.

The pages ask ``Names.of(settings, actors)`` for each id's name (``actor``, ``team``,
``department``, ``material``, ``state``, ``branch_state``, ``command``, ``card``); each answers
the id itself when no name is known. Ids stay the keys in URLs and forms.
"""

from __future__ import annotations

from approvalflow.names import Names

__all__ = ["Names"]
