"""The stores' errors (defined in ``approvalflow.errors``, re-exported here) and key checks:
what a caller meets when storage, not a rule, refuses or fails.

Every one is an ``ApprovalflowError`` (and the built-in class it resembles), so no driver
exception (``sqlite3.OperationalError``, ``psycopg.errors.*``) reaches a caller: the SQL stores
translate them in one place (``approvalflow.stores.sql.SQLStore._translated``).
"""

from __future__ import annotations

from collections.abc import Iterable

from approvalflow.errors import (
    StoreBusy,
    StoreError,
    StoreNotFound,
    StoreUnavailable,
    UnstorableValue,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "StoreBusy",
    "StoreError",
    "StoreNotFound",
    "StoreUnavailable",
    "UnstorableValue",
    "checked_key",
    "checked_keys",
]

MAX_KEY_LENGTH = 500
"""The longest project id, command id or notice id a store keeps, in characters. The engine
refuses far shorter ids first; this is the store's own wall (500 characters of
any script stay under PostgreSQL's 2704-byte limit on a b-tree key)."""


def checked_key(what: str, value: object) -> str:
    """``value`` if it can be a key (``what``: "project id", "command id"...), else
    ``UnstorableValue`` saying why."""
    if not isinstance(value, str):
        raise UnstorableValue(f"a {what} must be text, not {type(value).__name__}")
    if len(value) > MAX_KEY_LENGTH:
        raise UnstorableValue(f"a {what} has at most {MAX_KEY_LENGTH} characters, not {len(value)}")
    if "\x00" in value:
        raise UnstorableValue(f"a {what} cannot contain a NUL character: {value[:40]!r}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableValue(
                f"a {what} cannot contain a lone surrogate: {value[:40]!r}"
            ) from None
    return value


def checked_keys(what: str, values: Iterable[str]) -> list[str]:
    """``values`` each once, in order, each ``checked_key``: a lone text is refused, not
    read as its characters."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise UnstorableValue(f"a collection of {what}s is expected, not {type(values).__name__}")
    return list(dict.fromkeys(checked_key(what, value) for value in values))
