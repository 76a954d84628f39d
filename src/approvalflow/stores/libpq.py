"""The PostgreSQL store's two hot statements (the ``load`` and the commit), sent through
psycopg's libpq wrapper (``psycopg.pq``) instead of a cursor.

Each command runs each of them once. Through ``Cursor.execute`` each cost the client more
CPU than the statement's own work (a cursor's state, query conversion, the prepared-statement
manager, adapters and loaders, then a row maker: measured in docs/performance.md); here one
call prepares the statement once per connection under its own name, sends its parameters
as text and reads the one row it returns in binary. Everything else the store sends still
goes through psycopg's connection.

What a caller may rely on:

- The statements are the store's own, with ``%s`` placeholders and no other ``%``; the
  parameters are ``None``, ``bool``, ``int``, ``str`` or ``bytes`` (sent as bytea's text
  form). Text holding a NUL character is refused (``UnstorableValue``) before anything is
  sent: a text parameter ends at its first NUL in libpq.
- Errors are psycopg's: the server's error as the ``psycopg.errors`` class of its SQLSTATE
  (``UniqueViolation`` with its constraint, ``LockNotAvailable``...), a broken connection as
  ``psycopg.OperationalError``, so the store translates them as before.
- A statement whose prepared name the server no longer knows (``DEALLOCATE ALL``, as a
  pooler may send) is prepared again and sent once more.
- An interruption (``KeyboardInterrupt``) while the statement is in flight closes the
  connection: libpq's state is then unknown, and the store reports ``StoreUnavailable``
  after it instead of reading another statement's results.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors, pq

from approvalflow.stores.errors import UnstorableValue

__all__ = ["HotStatements"]

_OK = pq.ExecStatus.COMMAND_OK
_ROWS = pq.ExecStatus.TUPLES_OK
_FAILED = pq.ExecStatus.FATAL_ERROR
_INTEGERS = frozenset({20, 21, 23})  # int8, int2, int4
_BYTEA = 17
_BOOL = 16
_TEXTS = frozenset({25, 1043, 19})  # text, varchar, name
_FORGOTTEN = b"26000"  # invalid_sql_statement_name: no prepared statement of that name


class HotStatements:
    """Prepared statements of one connection, each run for its first row."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._names: dict[bytes, bytes] = {}
        self._encoding = connection.info.encoding

    def row(self, statement: bytes, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row ``statement`` returns for ``params`` (``None`` if it returns none).

        :raises psycopg.Error: the server refused it, or the connection failed.
        :raises UnstorableValue: a parameter no text column can take.
        """
        values = [self._param(value) for value in params]
        name = self._names.get(statement)
        if name is None:
            name = self._prepare(statement)
        result = self._run(name, values)
        if (
            result.status == _FAILED
            and result.error_field(pq.DiagnosticField.SQLSTATE) == _FORGOTTEN
        ):
            # The session forgot its prepared statements (``DEALLOCATE ALL``): once more.
            self._names.clear()
            result = self._run(self._prepare(statement), values)
        if result.status != _ROWS:
            raise errors.error_from_result(result, encoding=self._encoding)
        if result.ntuples == 0:
            return None
        return tuple(self._value(result, column) for column in range(result.nfields))

    def _prepare(self, statement: bytes) -> bytes:
        pieces = statement.split(b"%s")
        if any(b"%" in piece for piece in pieces):
            raise AssertionError("a hot statement has only %s placeholders")
        query = pieces[0] + b"".join(
            b"$%d" % number + piece for number, piece in enumerate(pieces[1:], 1)
        )
        name = b"approvalflow_%d" % len(self._names)
        pgconn = self._connection.pgconn
        pgconn.send_prepare(name, query)
        result = self._wait(pgconn)
        if result.status != _OK:
            raise errors.error_from_result(result, encoding=self._encoding)
        self._names[statement] = name
        return name

    def _run(self, name: bytes, values: list[bytes | None]) -> pq.abc.PGresult:
        pgconn = self._connection.pgconn
        pgconn.send_query_prepared(name, values, result_format=pq.Format.BINARY)
        return self._wait(pgconn)

    def _wait(self, pgconn: pq.abc.PGconn) -> pq.abc.PGresult:
        """Every result of the statement sent last, the error if there was one."""
        try:
            socket = pgconn.socket
            while pgconn.flush():
                select.select([], [socket], [])
            poller = select.poll()
            poller.register(socket, select.POLLIN)
            found: pq.abc.PGresult | None = None
            while True:
                while pgconn.is_busy():
                    poller.poll()
                    pgconn.consume_input()
                result = pgconn.get_result()
                if result is None:
                    break
                if found is None or result.status == _FAILED:
                    found = result
        except (psycopg.Error, OSError):
            raise
        except BaseException:
            # Interrupted with the statement in flight: its results would be read by the
            # next statement. Nothing of it is trusted; the store is unavailable from here.
            self._connection.close()
            raise
        if found is None:
            raise psycopg.OperationalError(
                pgconn.error_message.decode(self._encoding, "replace") or "no result"
            )
        return found

    def _param(self, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            encoded = value.encode(self._encoding)
            if b"\x00" in encoded:
                raise UnstorableValue("text with a NUL character, which PostgreSQL cannot keep")
            return encoded
        if isinstance(value, bool):
            return b"t" if value else b"f"
        if isinstance(value, int):
            return b"%d" % value
        if isinstance(value, bytes | bytearray | memoryview):
            return b"\\x" + bytes(value).hex().encode()
        raise TypeError(f"{type(value).__name__} is not a parameter of a hot statement")

    def _value(self, result: pq.abc.PGresult, column: int) -> Any:
        data = result.get_value(0, column)
        if data is None:
            return None
        kind = result.ftype(column)
        if kind in _INTEGERS:
            return int.from_bytes(data, "big", signed=True)
        if kind == _BYTEA:
            return bytes(data)
        if kind in _TEXTS:
            return bytes(data).decode(self._encoding)
        if kind == _BOOL:
            return data != b"\x00"
        raise TypeError(f"a hot statement returned a column of type oid {kind}")
