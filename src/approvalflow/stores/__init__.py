"""Stores keep events, snapshots, timers, command ids and the notice outbox.

``open_store(url)`` picks a backend by URL and imports it only then, so ``import approvalflow``
never loads a database driver: ``memory://``, ``sqlite:///path.db``, ``postgresql://...``.

Opening reads: ``open_store`` opens a store that exists and is current, and creates or migrates
nothing unless asked (``create=True``, ``migrate=True``); a missing store is ``StoreNotFound``,
an older one ``SchemaVersionError``. ``init_store`` creates a store, ``migrate_store`` brings
one to the current schema (the ``approvalflow store init`` and ``store migrate`` commands).
"""

from __future__ import annotations

from approvalflow.stores.base import CommandRecord, OutboxEntry, Store
from approvalflow.stores.errors import (
    StoreBusy,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    UnstorableValue,
)
from approvalflow.stores.memory import MemoryStore
from approvalflow.stores.projections import ReadModel

__all__ = [
    "CommandRecord",
    "MemoryStore",
    "OutboxEntry",
    "ReadModel",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "UnstorableValue",
    "init_store",
    "migrate_store",
    "open_store",
]

_MEMORY = ("memory://", "memory", ":memory:")


def open_store(
    url: str | None,
    *,
    create: bool = False,
    migrate: bool = False,
    read_model: ReadModel | None = None,
) -> Store:
    """Open the store named by ``url`` (``None`` or ``memory://``: a fresh in-memory store).

    :param create: make the store (the SQLite file, the PostgreSQL schema and tables) if it is
        missing; without it a missing store raises ``StoreNotFound`` and nothing is created.
    :param migrate: bring a store of an older schema version to the current one; without it
        such a store raises ``SchemaVersionError`` and is left as it is.
    :param read_model: the report projections the store keeps (default: the built-in reports,
        ``approvalflow.readmodels.REPORTS``).
    :raises ValueError: ``url`` names no known kind of store, or has a bad option.
    """
    if url is None or url in _MEMORY:
        return MemoryStore(read_model=read_model)
    if url.startswith("sqlite:"):
        from approvalflow.stores.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, create=create, migrate=migrate, read_model=read_model)
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from approvalflow.stores.postgres import PostgresStore

        return PostgresStore.from_url(url, create=create, migrate=migrate, read_model=read_model)
    raise ValueError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db or postgresql://..."
    )


def init_store(url: str) -> bool:
    """Create the store named by ``url`` if it is missing; return whether it was created.

    A store that exists already is left as it is (an older one raises ``SchemaVersionError``:
    migrate it with ``migrate_store``).
    """
    if url in _MEMORY:
        return True
    try:
        open_store(url).close()
    except StoreNotFound:
        open_store(url, create=True).close()
        return True
    return False


def migrate_store(url: str) -> tuple[int, int]:
    """Bring the store named by ``url`` to the current schema version, in one transaction;
    return the versions before and after (equal when there was nothing to do).

    :raises StoreNotFound: there is no store to migrate (create it with ``init_store``).
    """
    from approvalflow.stores.schema import SCHEMA_VERSION, SchemaVersionError

    if url in _MEMORY:
        return (SCHEMA_VERSION, SCHEMA_VERSION)
    try:
        open_store(url).close()
    except SchemaVersionError as error:
        found = getattr(error, "found", None)
        if found is None:
            raise
        open_store(url, migrate=True).close()
        return (int(found), SCHEMA_VERSION)
    return (SCHEMA_VERSION, SCHEMA_VERSION)
