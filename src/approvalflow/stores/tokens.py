"""The bearer tokens a county issues to the systems that call its service.

Only a token's SHA-256 is stored, never the token: whoever reads the database cannot call
the service with what they read. Every store keeps the same ``TokenRecord`` rows
(``save_token``, ``token_with_hash``, ``tokens``, ``revoke_token``), and says through
``token_generation`` whether the table may have changed since it last answered, so the service
can keep the records it verified without missing a revocation (D186).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import attrs

__all__ = ["PROVINCE", "TokenRecord", "token_hash"]

PROVINCE = "*"
"""The ``county`` of a province token: it reads the province reports and nothing of a county's
(no county id can be ``*``)."""


def token_hash(token: str) -> str:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@attrs.frozen
class TokenRecord:
    """One issued token: the calling ``system`` it names, and whom it may act as.

    ``actor`` binds the token to one person (every request acts as them); ``trusted`` lets the
    system assert the acting person per request instead (a header). A token with neither may
    only read. ``revoked_at`` is set once, when the token is revoked. ``county`` is the county
    whose data the token reaches (``PROVINCE``: the province reports only; ``None``: a token of
    a one-county service, as tokens were before counties).
    """

    token_id: str
    system: str
    hash: str
    created_at: datetime
    actor: str | None = None
    trusted: bool = False
    revoked_at: datetime | None = None
    county: str | None = None


_COLUMNS = "token_id, system, hash, created_at, actor, trusted, revoked_at, county"


def _record(row: tuple[object, ...]) -> TokenRecord:
    from approvalflow.stores.serialization import parse_datetime

    token_id, system, hashed, created_at, actor, trusted, revoked_at, county = row
    return TokenRecord(
        token_id=str(token_id),
        system=str(system),
        hash=str(hashed),
        created_at=parse_datetime(str(created_at)),
        actor=None if actor is None else str(actor),
        trusted=bool(trusted),
        revoked_at=None if revoked_at is None else parse_datetime(str(revoked_at)),
        county=None if county is None else str(county),
    )


class MemoryTokens:
    """The token methods of the memory store."""

    _token_rows: dict[str, TokenRecord]

    def _token_table(self) -> dict[str, TokenRecord]:
        table: dict[str, TokenRecord] | None = self.__dict__.get("_token_rows")
        if table is None:
            table = self.__dict__["_token_rows"] = {}
        return table

    def save_token(self, record: TokenRecord) -> None:
        """Keep a newly issued token (its id and hash must be new)."""
        table = self._token_table()
        if record.token_id in table or any(r.hash == record.hash for r in table.values()):
            raise ValueError(f"token {record.token_id} exists already")
        table[record.token_id] = record
        self._bump_tokens()

    def _bump_tokens(self) -> None:
        self.__dict__["_token_changes"] = self.__dict__.get("_token_changes", 0) + 1

    def token_generation(self) -> object | None:
        """A value that changes whenever a token is saved or revoked: a memory store's tokens
        change only through this object."""
        changes: int = self.__dict__.get("_token_changes", 0)
        return changes

    def token_with_hash(self, hashed: str) -> TokenRecord | None:
        return next((r for r in self._token_table().values() if r.hash == hashed), None)

    def tokens(self) -> list[TokenRecord]:
        return sorted(self._token_table().values(), key=lambda r: (r.created_at, r.token_id))

    def revoke_token(self, token_id: str, at: datetime) -> bool:
        """Revoke ``token_id``; ``False`` if there is no such token or it was revoked."""
        table = self._token_table()
        record = table.get(token_id)
        if record is None or record.revoked_at is not None:
            return False
        table[token_id] = attrs.evolve(record, revoked_at=at)
        self._bump_tokens()
        return True


class SQLTokens:
    """The token methods of the SQL stores (the ``api_tokens`` table)."""

    _token_changes: int = 0

    def _token_sql(self) -> str:
        return "?" if self._sql.dialect == "sqlite" else "%s"  # type: ignore[attr-defined]

    def token_generation(self) -> object | None:
        """A value that changes whenever the token table may have changed (D186, D287).

        On SQLite: this object's own saves and revocations, and ``PRAGMA data_version``, which
        changes once another connection (``approvalflow token revoke``, a worker) commits
        anything, and is read without touching the disk. On PostgreSQL: the number of tokens
        and of unrevoked ones, counted in one statement. Tokens are only ever added and
        revoked (once each), so any change since the last count changes one of the two: an
        issue adds to both, a revocation takes one from the second. It is a round trip, as
        the lookup it saves is, but reads no row's columns and builds no record."""
        with self._lock:  # type: ignore[attr-defined]
            if self._sql.dialect == "sqlite":  # type: ignore[attr-defined]
                row = self._connection.execute("PRAGMA data_version").fetchone()  # type: ignore[attr-defined]
            else:
                row = self._connection.execute(  # type: ignore[attr-defined]
                    "SELECT count(*), count(*) FILTER (WHERE revoked_at IS NULL) FROM api_tokens"
                ).fetchone()
        return (self._token_changes, *row)

    def save_token(self, record: TokenRecord) -> None:
        from approvalflow.stores.serialization import format_datetime

        p = self._token_sql()
        self._write_one(  # type: ignore[attr-defined]
            f"INSERT INTO api_tokens ({_COLUMNS}) VALUES ({', '.join([p] * 8)})",
            (
                record.token_id,
                record.system,
                record.hash,
                format_datetime(record.created_at),
                record.actor,
                record.trusted,
                None if record.revoked_at is None else format_datetime(record.revoked_at),
                record.county,
            ),
        )
        self._token_changes += 1

    def token_with_hash(self, hashed: str) -> TokenRecord | None:
        p = self._token_sql()
        with self._lock:  # type: ignore[attr-defined]
            row = self._connection.execute(  # type: ignore[attr-defined]
                f"SELECT {_COLUMNS} FROM api_tokens WHERE hash = {p}", (hashed,)
            ).fetchone()
        return None if row is None else _record(tuple(row))

    def tokens(self) -> list[TokenRecord]:
        with self._lock:  # type: ignore[attr-defined]
            rows = self._connection.execute(  # type: ignore[attr-defined]
                f"SELECT {_COLUMNS} FROM api_tokens ORDER BY created_at, token_id"
            ).fetchall()
        return [_record(tuple(row)) for row in rows]

    def revoke_token(self, token_id: str, at: datetime) -> bool:
        from approvalflow.stores.serialization import format_datetime

        p = self._token_sql()
        rows = self._write_one(  # type: ignore[attr-defined]
            f"UPDATE api_tokens SET revoked_at = {p} WHERE token_id = {p} "
            "AND revoked_at IS NULL RETURNING token_id",
            (format_datetime(at), token_id),
        )
        self._token_changes += 1
        return bool(rows)
