"""The SQL stores' cache of project states, so a ``load`` need not decode a snapshot.

Each store object keeps the last state it committed or loaded per project (and the projection
of that state once known), at most ``size`` projects, least recently used first out. An entry
is only ever trusted after the database confirmed, in the statement that read the project's row,
that the project is still at the entry's version: another process (or another store object)
that committed since has moved the version, and the state is then read from the database again.
A project's state at a given version is the same whoever computes it (the fold is
deterministic), so the check is exact. (Rows edited by hand without moving the version are
not noticed by a store object that has the project cached: open a new one after such surgery.)
``load_for_command`` is the one exception: it hands a command the entry without that check,
since the command's commit checks the version in its guard anyway, and a commit the guard
refuses drops the entry (D306).

Entries are never handed out: ``load`` returns ``clone()`` of one (copy-on-write, a few
microseconds). ``commit`` keeps the very state it was given, as ``MemoryStore`` does: the
``Store`` contract is that a committed state is not changed afterwards.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from approvalflow.project import ProjectState
from approvalflow.stores.projections import Projection

__all__ = ["DEFAULT_CACHE_SIZE", "CachedState", "StateCache"]

DEFAULT_CACHE_SIZE = 256
"""What the cache is for is the hot path: a project's state reused by the next command on it
(and by the catch-up and the observers around one command), which needs a handful of entries.
A project state is 5-16 KiB in memory (more in approval, with its branches), so 256 of them
stay within a few MiB and the cache is full, and stops growing, early in a process's life; a
cache of every project a long-lived worker ever touches grew like a leak for hours (the soak
run: RSS +17-34% over its second half at 10,000, +1-2.5% at 200)."""


class CachedState(NamedTuple):
    state: ProjectState
    projection: Projection | None
    head: str | None = None
    """The hash of the project's event at ``state.version``, when the store knows it (the
    next commit's events chain from it; PostgreSQL checks it in the commit's guard)."""


class StateCache:
    """A bounded LRU map from project id to ``CachedState``; ``size`` 0 keeps nothing.

    Not thread-safe by itself: the stores call it under their own lock.
    """

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        if size < 0:
            raise ValueError(f"cache_size must be at least 0, not {size}")
        self.size = size
        self._entries: OrderedDict[str, CachedState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, project: str) -> CachedState | None:
        entry = self._entries.get(project)
        if entry is not None:
            self._entries.move_to_end(project)
        return entry

    def version(self, project: str) -> int:
        """The cached state's version, or -1 (no project has it) when nothing is cached."""
        entry = self._entries.get(project)
        return entry.state.version if entry is not None else -1

    def put(
        self,
        project: str,
        state: ProjectState,
        projection: Projection | None,
        head: str | None = None,
    ) -> None:
        if not self.size:
            return
        entries = self._entries
        entries[project] = CachedState(state, projection, head)
        entries.move_to_end(project)
        if len(entries) > self.size:
            entries.popitem(last=False)

    def drop(self, project: str) -> None:
        self._entries.pop(project, None)

    def clear(self) -> None:
        self._entries.clear()
