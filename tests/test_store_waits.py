"""Every wait a store makes is bounded, and one that runs out says what waited and for how long
as a library error (``StoreBusy``), having written nothing; an unreachable or broken database
is ``StoreUnavailable``. The lock is held by a second connection, as a writer paused inside its
commit (a frozen VM, a long GC pause) would hold it; the timeouts are short for the test."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from approvalflow.errors import ApprovalflowError
from approvalflow.stores import StoreBusy, StoreUnavailable, open_store
from approvalflow.testing.store_conformance import T0, append, new_project, notice

if TYPE_CHECKING:
    from approvalflow.stores.postgres import PostgresStore


class TestSQLite:
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'busy.db'}?busy_timeout=0.2"

    @pytest.fixture
    def holder(self, url: str, tmp_path: Path) -> Iterator[sqlite3.Connection]:
        """A second connection inside a write transaction on the store's file."""
        open_store(url, create=True).close()
        connection = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        yield connection
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        connection.close()

    def test_a_commit_waits_busy_timeout_then_says_so_and_writes_nothing(
        self, url: str, holder: sqlite3.Connection
    ) -> None:
        store = open_store(url)
        try:
            started = time.monotonic()
            with pytest.raises(StoreBusy, match=r"waited 0\.2 s .*write lock.*busy\.db") as caught:
                new_project(store, "P1", notices=[notice("P1", 1)])
            assert 0.15 <= time.monotonic() - started < 5
            assert isinstance(caught.value, ApprovalflowError)
            assert not isinstance(caught.value.__cause__, StoreBusy)  # the driver's, kept
            holder.execute("ROLLBACK")
            assert store.project_ids() == [] and store.load("P1") is None
            assert store.pending_notices(T0) == []
            new_project(store, "P1")  # the store works on once the lock is free
            assert store.project_ids() == ["P1"]
        finally:
            store.close()

    def test_claims_and_their_bookkeeping_are_bounded_too(self, url: str, tmp_path: Path) -> None:
        store = open_store(url, create=True)
        try:
            state = new_project(store, "P1", notices=[notice("P1", 1)])
            append(store, state, [("funds_reported", {"amount": 1})])
            connection = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            try:
                with pytest.raises(StoreBusy):
                    store.claim_notices(T0)
                with pytest.raises(StoreBusy):
                    store.mark_delivered(["P1:1"])
                with pytest.raises(StoreBusy):
                    store.record_plugins(["console"])
            finally:
                connection.execute("ROLLBACK")
                connection.close()
            assert store.recorded_plugins() == ()
            assert len(store.claim_notices(T0)) == 1
        finally:
            store.close()


def _schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[str, PostgresStore]]:
    """A URL of a fresh store with short waits, and a store opened on it (dropped after)."""
    created = _created(postgres_url)
    bounds = "lock_timeout=0.3&statement_timeout=20&idle_in_transaction_session_timeout=0.5"
    url = f"{created.url}&{bounds}"
    store = open_store(url)
    yield url, store  # type: ignore[misc]
    store.close()
    created.store.drop()


class _Created:
    def __init__(self, url: str, store: Any) -> None:
        self.url = url
        self.store = store


def _created(postgres_url: str) -> _Created:
    """A fresh store created with the default bounds: creating one waits for a lock shared by
    every store the server's other clients are creating, longer than the tests' short bounds
    allow on a busy server."""
    separator = "&" if "?" in postgres_url else "?"
    url = f"{postgres_url}{separator}schema={_schema()}"
    return _Created(url, open_store(url, create=True))


def _other(postgres_url: str, store: PostgresStore) -> Any:
    """A second connection to the store's schema, as another process would hold one."""
    import psycopg

    connection = psycopg.connect(postgres_url, autocommit=True)
    connection.execute("SELECT set_config('search_path', %s, false)", (store.schema,))
    return connection


class TestPostgres:
    def test_a_commit_behind_a_paused_writer_waits_lock_timeout_and_writes_nothing(
        self, pg: tuple[str, PostgresStore], postgres_url: str
    ) -> None:
        """The paused writer holds the project's row: the next commit to it waits
        ``lock_timeout`` and is refused with ``StoreBusy``, then works once the row is free."""
        _url, store = pg
        state = new_project(store, "P1")
        paused = _other(postgres_url, store)
        paused.execute("BEGIN")
        paused.execute("UPDATE projects SET version = version WHERE project = 'P1'")
        started = time.monotonic()
        with pytest.raises(StoreBusy, match=r"lock_timeout \(0\.3 s\)"):
            append(store, state, [("funds_reported", {"amount": 5})], notices=[notice("P1", 2)])
        assert 0.25 <= time.monotonic() - started < 10
        paused.execute("ROLLBACK")
        paused.close()
        assert [e.version for e in store.events("P1")] == [1]
        assert store.pending_notices(T0) == []
        append(store, state, [("funds_reported", {"amount": 5})])
        assert store.load("P1").funds == 5  # type: ignore[union-attr]

    def test_a_paused_writer_holds_up_no_other_project(
        self, pg: tuple[str, PostgresStore], postgres_url: str
    ) -> None:
        """A writer paused inside its commit to P1, events inserted, holds P1's row and
        nothing store-wide: each project has its own chain, so commits to other projects go on
        at once (no lock_timeout wait), and P1 is still guarded."""
        _url, store = pg
        state = new_project(store, "P1")
        paused = _other(postgres_url, store)
        paused.execute("BEGIN")
        paused.execute("UPDATE projects SET version = 2 WHERE project = 'P1' AND version = 1")
        paused.execute(
            "INSERT INTO events (project, version, type, at, payload, hash) "
            "SELECT project, 2, 'funds_reported', at, '{\"amount\":1}', hash "
            "FROM events WHERE project = 'P1'"
        )
        try:
            started = time.monotonic()
            other = new_project(store, "P2")
            append(store, other, [("funds_reported", {"amount": 3})])
            assert time.monotonic() - started < 0.25  # lock_timeout is 0.3 s
            with pytest.raises(StoreBusy, match="lock_timeout"):
                append(store, state, [("funds_reported", {"amount": 5})])
        finally:
            paused.execute("ROLLBACK")
            paused.close()
        assert store.project_ids() == ["P1", "P2"]
        assert [e.version for e in store.events("P1")] == [1]

    def test_the_server_ends_a_paused_writers_transaction(
        self, pg: tuple[str, PostgresStore], postgres_url: str
    ) -> None:
        """A store's own session is bounded by ``idle_in_transaction_session_timeout``: when it
        pauses inside a transaction, the server ends it and frees its locks, so the others
        go on; the paused store then says ``StoreUnavailable``."""
        url, store = pg
        new_project(store, "P1")
        store._connection.execute("BEGIN")
        store._connection.execute("UPDATE projects SET version = version WHERE project = 'P1'")
        time.sleep(1.0)  # paused inside its transaction, past the 0.5 s bound
        other = open_store(url.replace("lock_timeout=0.3", "lock_timeout=10"))
        try:
            started = time.monotonic()
            state = other.load("P1")
            assert state is not None
            append(other, state, [("funds_reported", {"amount": 1})])
            assert time.monotonic() - started < 5
        finally:
            other.close()
        with pytest.raises(StoreUnavailable):
            store.project_ids()

    def test_a_statement_past_statement_timeout_is_cancelled(self, postgres_url: str) -> None:
        created = _created(postgres_url)
        store: Any = open_store(f"{created.url}&statement_timeout=0.3&lock_timeout=0")
        try:
            state = new_project(store, "P1")
            paused = _other(postgres_url, store)
            paused.execute("BEGIN")
            paused.execute("UPDATE projects SET version = version WHERE project = 'P1'")
            try:
                with pytest.raises(StoreBusy, match=r"statement_timeout \(0\.3 s\)"):
                    append(store, state, [("funds_reported", {"amount": 5})])
            finally:
                paused.execute("ROLLBACK")
                paused.close()
            assert [e.version for e in store.events("P1")] == [1]
        finally:
            store.close()
            created.store.drop()

    def test_every_wait_has_a_bound_by_default(self, postgres_url: str) -> None:
        """The defaults: 30 s for a lock, 60 s for a statement, 30 s idle in a transaction,
        10 s to connect, and TCP keepalives that find a dead peer in about a minute; a URL
        option changes one."""
        from psycopg.conninfo import conninfo_to_dict

        separator = "&" if "?" in postgres_url else "?"
        url = f"{postgres_url}{separator}schema={_schema()}&keepalives_idle=5"
        store: Any = open_store(url, create=True)
        try:
            show = store._connection.execute
            assert show("SHOW lock_timeout").fetchone() == ("30s",)
            assert show("SHOW statement_timeout").fetchone() == ("1min",)
            assert show("SHOW idle_in_transaction_session_timeout").fetchone() == ("30s",)
            params = conninfo_to_dict(store._conninfo)
            assert params["connect_timeout"] == "10"
            assert (params["keepalives"], params["keepalives_idle"]) == ("1", "5")
            assert (params["keepalives_interval"], params["keepalives_count"]) == ("10", "3")
        finally:
            store.drop()

    def test_an_unreachable_server_is_store_unavailable(self) -> None:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:9\b"):
            open_store("postgresql://postgres@127.0.0.1:9/test?connect_timeout=2")
        assert time.monotonic() - started < 10

    def test_a_bad_timeout_option_is_refused(self, postgres_url: str) -> None:
        separator = "&" if "?" in postgres_url else "?"
        with pytest.raises(ValueError, match="lock_timeout"):
            open_store(f"{postgres_url}{separator}lock_timeout=soon")
