"""Stores keep events, snapshots, timers, command ids and the notice outbox.

``open_store(url)`` picks a backend by URL and imports it only then, so ``import approvalflow``
never loads a database driver: ``memory://``, ``sqlite:///path.db``, ``postgresql://...``.
``open_store(url, create=False)`` opens only a store that exists (reading never creates one);
``init_store(url)`` creates one explicitly.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from approvalflow.errors import ApprovalflowError
from approvalflow.stores.base import CommandRecord, OutboxEntry, Store
from approvalflow.stores.memory import MemoryStore

__all__ = [
    "CommandRecord",
    "MemoryStore",
    "OutboxEntry",
    "Store",
    "StoreNotFound",
    "init_store",
    "migrate_store",
    "open_store",
]


class StoreNotFound(ApprovalflowError, LookupError):
    """The URL names a store that does not exist (no file, no schema, no tables)."""

    code = "StoreNotFound"


def open_store(url: str | None, *, create: bool = True) -> Store:
    """Open the store named by ``url`` (``None`` or ``memory://``: a fresh in-memory store).

    With ``create=False`` a store that does not exist yet raises :class:`StoreNotFound`
    instead of being created.
    """
    if url is None or url in ("memory://", "memory", ":memory:"):
        return MemoryStore()
    if url.startswith("sqlite:"):
        from approvalflow.stores.sqlite import SQLiteStore

        if not create:
            _require_sqlite(url)
        return SQLiteStore.from_url(url)
    if url.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        from approvalflow.stores.postgres import PostgresStore

        if not create:
            _require_postgres(url)
        return PostgresStore.from_url(url)
    raise ValueError(
        f"unknown store URL {url!r}: use memory://, sqlite:///path.db or postgresql://..."
    )


def init_store(url: str) -> Store:
    """Create the store named by ``url`` (or open it, up to date, when it exists)."""
    return open_store(url, create=True)


def migrate_store(url: str) -> Store:
    """Bring an existing store's schema up to date; :class:`StoreNotFound` when there is none."""
    return open_store(url, create=False)


def _require_sqlite(url: str) -> None:
    rest = url[len("sqlite://") :].partition("?")[0] if url.startswith("sqlite://") else ""
    if rest in ("", "/") or not rest.startswith("/"):
        return  # in memory, or malformed: SQLiteStore.from_url says why
    path = rest[1:]
    if path == ":memory:":
        return
    if not os.path.isfile(path):
        raise StoreNotFound(f"no store at {path!r} (create one with `approvalflow store init`)")
    import sqlite3

    connection = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)
    try:
        found = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
    except sqlite3.DatabaseError as error:
        raise StoreNotFound(f"{path!r} is not an approvalflow store: {error}") from error
    finally:
        connection.close()
    if found is None:
        raise StoreNotFound(f"{path!r} is not an approvalflow store (it has no meta table)")


def _require_postgres(url: str) -> None:
    import psycopg

    if url.startswith("postgresql+psycopg:"):
        url = "postgresql:" + url[len("postgresql+psycopg:") :]
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    libpq = [(k, v) for k, v in query if k not in ("schema", "cache_size", "lease")]
    conninfo = urlunsplit(parts._replace(query=urlencode(libpq, quote_via=quote)))
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as connection:
        if schemas:
            table = connection.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'meta'",
                (schemas[-1],),
            ).fetchone()
        else:
            table = connection.execute("SELECT to_regclass('meta')").fetchone()
            table = table if table is not None and table[0] is not None else None
    if table is None:
        where = f"schema {schemas[-1]!r}" if schemas else "this database"
        raise StoreNotFound(
            f"no approvalflow store in {where} (create one with `approvalflow store init`)"
        )
