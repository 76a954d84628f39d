"""Stores keep events, snapshots, timers, command ids and the notice outbox.

``open_store(url)`` picks a backend by URL and imports it only then, so ``import approvalflow``
never loads a database driver: ``memory://``, ``sqlite:///path.db``, ``postgresql://...``.
"""

from __future__ import annotations

from approvalflow.stores.base import CommandRecord, OutboxEntry, Store
from approvalflow.stores.memory import MemoryStore

__all__ = ["CommandRecord", "MemoryStore", "OutboxEntry", "Store", "open_store"]


def open_store(url: str | None) -> Store:
    """Open the store named by ``url`` (``None`` or ``memory://``: a fresh in-memory store)."""
    if url is None or url in ("memory://", "memory", ":memory:"):
        return MemoryStore()
    if url.startswith("sqlite:"):
        from approvalflow.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url)
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from approvalflow.stores.postgres import PostgresStore

        return PostgresStore.from_url(url)
    raise ValueError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db or postgresql://..."
    )
