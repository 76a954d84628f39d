"""The PostgreSQL store's hot statements through libpq (``approvalflow.stores.libpq``): what
they send, what they refuse, and how they fail (issue 17, D290)."""

from __future__ import annotations

import select
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from approvalflow.errors import ConcurrencyConflict
from approvalflow.stores.base import CommandRecord
from approvalflow.stores.errors import StoreUnavailable, UnstorableValue
from approvalflow.testing.store_conformance import append, new_project

if TYPE_CHECKING:
    from approvalflow.stores.postgres import PostgresStore

pytest.importorskip("psycopg")


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[PostgresStore]:
    from approvalflow.stores.postgres import PostgresStore

    store = PostgresStore.from_url(postgres_url, schema=f"t_{uuid.uuid4().hex[:16]}")
    yield store
    store.drop()


class TestHotStatements:
    """One prepared statement per text and connection, its first row read in binary."""

    def test_values_of_every_kind_go_and_come_back(self, pg_store: PostgresStore) -> None:
        """Text (with non-ASCII), integers past 32 bits, booleans, bytes and NULL are sent
        as text and read back as the Python values they were."""
        row = pg_store._hot.row(
            b"SELECT %s::text, %s::bigint, %s::int, %s::boolean, %s::bytea, %s::text",
            ["富远铝业 'x'", 2**40, -7, True, b"\x00\xff", None],
        )
        assert row == ("富远铝业 'x'", 2**40, -7, True, b"\x00\xff", None)

    def test_a_statement_returning_no_row_reads_none(self, pg_store: PostgresStore) -> None:
        """No row is ``None``, as ``fetchone`` says."""
        assert pg_store._hot.row(b"SELECT 1 WHERE %s::int = 2", [1]) is None

    def test_a_text_with_a_nul_is_refused_before_it_is_sent(self, pg_store: PostgresStore) -> None:
        """libpq ends a text parameter at its first NUL: such a value would arrive cut
        short, so it is refused and nothing is sent."""
        with pytest.raises(UnstorableValue, match="NUL"):
            pg_store._hot.row(b"SELECT %s::text", ["before\x00after"])
        assert pg_store._hot.row(b"SELECT %s::text", ["after"]) == ("after",)

    def test_a_statement_the_session_forgot_is_prepared_again(
        self, pg_store: PostgresStore
    ) -> None:
        """After ``DEALLOCATE ALL`` (as a pooler may send between clients) the server knows
        no prepared statement; the next load and commit prepare theirs again and work."""
        state = new_project(pg_store, "P1")
        assert pg_store.load("P1") == state
        pg_store._connection.execute("DEALLOCATE ALL")
        after = append(pg_store, state, [("funds_reported", {"amount": 5})])
        assert pg_store.load("P1") == after

    def test_the_servers_error_keeps_its_class(self, pg_store: PostgresStore) -> None:
        """A refused statement raises the ``psycopg.errors`` class of its SQLSTATE, which the
        store translates: a commit on a taken command id is a conflict, as before."""
        import psycopg

        with pytest.raises(psycopg.errors.DivisionByZero):
            pg_store._hot.row(b"SELECT 1 / %s::int", [0])
        assert pg_store._hot.row(b"SELECT %s::int", [3]) == (3,)
        state = new_project(pg_store, "P1")
        first = CommandRecord("c1", "P1", "report_funds", "f", 2, 2)
        state = append(pg_store, state, [("funds_reported", {"amount": 1})], command=first)
        with pytest.raises(ConcurrencyConflict, match="command id 'c1' is taken"):
            append(pg_store, state, [("funds_reported", {"amount": 2})], command=first)

    def test_an_interruption_in_flight_closes_the_connection(
        self, pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Ctrl-C while a statement waits leaves libpq's state unknown: the connection is
        closed, and the store says it is unavailable instead of reading stale results."""
        state = new_project(pg_store, "P1")

        class Interrupted:
            def register(self, *args: Any) -> None:
                pass

            def poll(self, *args: Any) -> Any:
                raise KeyboardInterrupt

        monkeypatch.setattr(select, "poll", Interrupted)
        with pytest.raises(KeyboardInterrupt):
            pg_store.load("P2")
        monkeypatch.undo()
        assert pg_store._connection.closed
        with pytest.raises(StoreUnavailable):
            pg_store.load(state.id)


class TestCommitGates:
    """The one statement's parts wait only for the guard and for an earlier part on their
    own table (D291)."""

    def test_only_a_part_on_a_table_written_before_waits_for_it(self) -> None:
        """An insert after a delete on the same table reads the delete's row count first;
        parts on other tables wait for the guard alone."""
        from approvalflow.stores.postgres import _one_statement

        text = _one_statement(
            "UPDATE projects SET version = %s WHERE project = %s RETURNING 1",
            [
                "INSERT INTO events (project, version) VALUES (%s, %s)",
                "DELETE FROM task_rows WHERE project = %s",
                "INSERT INTO task_rows (project, party) VALUES (%s, %s)",
                "INSERT INTO milestones (project, milestone) VALUES (%s, %s)",
            ],
        )
        parts = text.split("), s")
        assert "FROM guard" in parts[1] and "count(*)" not in parts[1]
        assert "count(*)" not in parts[2]
        assert "(SELECT count(*) FROM s1) >= 0" in parts[3]
        assert "count(*)" not in parts[4].split(" SELECT (SELECT count(*) FROM guard)")[0]
