"""The PostgreSQL store: the conformance suite, several processes at once, schema versions and
the audit chain, each test in a PostgreSQL schema of its own.

The server is ``APPROVALFLOW_TEST_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/
test``). If it cannot be reached these tests are skipped with a message saying how to run
them - except when ``CI=true``, where they fail: CI must never skip them silently.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from conftest import POSTGRES_URL as URL

from approvalflow.errors import ConcurrencyConflict
from approvalflow.stores import open_store
from approvalflow.stores.audit import verify_chain
from approvalflow.stores.schema import SCHEMA_VERSION, SchemaVersionError
from approvalflow.testing.store_conformance import (
    T0,
    ArchiveAuditConformance,
    StoreConformance,
    append,
    new_project,
    run_concurrent_claimers,
    run_concurrent_notice_claimers,
    run_concurrent_writers,
)

if TYPE_CHECKING:
    from approvalflow.stores.postgres import PostgresStore


def _schema() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[PostgresStore]:
    from approvalflow.stores.postgres import PostgresStore

    store = PostgresStore.from_url(postgres_url, schema=_schema())
    yield store
    store.drop()


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    """A URL naming a fresh schema; the schema is dropped afterwards."""
    from approvalflow.stores.postgres import PostgresStore

    name = _schema()
    separator = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{separator}schema={name}"
    PostgresStore.from_url(postgres_url, schema=name).drop()


def _raw(store: PostgresStore) -> Any:
    """A connection of our own to the store's schema, to change it behind the store's back."""
    import psycopg

    connection = psycopg.connect(URL, autocommit=True)
    connection.execute("SELECT set_config('search_path', %s, false)", (store.schema,))
    return connection


class TestPostgresStore(StoreConformance, ArchiveAuditConformance):
    """Every conformance test, against PostgreSQL (a snapshot every 16 versions)."""

    max_events_folded_by_load = 15

    @pytest.fixture
    def store(self, pg_store: PostgresStore) -> PostgresStore:
        return pg_store


class TestOpening:
    def test_a_url_may_name_the_schema(self, schema_url: str) -> None:
        """``?schema=`` keeps the tables in that schema; other schemas do not see them."""
        from approvalflow.stores.postgres import PostgresStore

        store = open_store(schema_url, create=True)
        assert isinstance(store, PostgresStore) and store.schema == schema_url.rsplit("=", 1)[1]
        new_project(store, "P1")
        store.close()
        with PostgresStore.from_url(URL, schema=_schema()) as other:
            assert other.project_ids() == []
            other.drop()
        again = open_store(schema_url)
        assert again.project_ids() == ["P1"]
        again.close()

    def test_drop_refuses_a_store_without_its_own_schema(self, postgres_url: str) -> None:
        """``drop`` never removes tables it does not own."""
        from approvalflow.stores.postgres import PostgresStore

        store = PostgresStore.__new__(PostgresStore)
        store.schema = None
        with pytest.raises(ValueError, match="opened without"):
            store.drop()

    def test_a_newer_schema_is_refused_naming_both_versions(self, pg_store: PostgresStore) -> None:
        """Old code never writes to a schema it does not know."""
        from approvalflow.stores.postgres import PostgresStore

        with _raw(pg_store) as connection:
            connection.execute("UPDATE meta SET schema_version = 42")
        with pytest.raises(SchemaVersionError, match=rf"version 42.*version {SCHEMA_VERSION}"):
            PostgresStore.from_url(URL, schema=pg_store.schema)

    def test_two_stores_see_each_other_and_conflict(self, pg_store: PostgresStore) -> None:
        """Two connections to one schema: commits are shared, a stale one conflicts."""
        from approvalflow.stores.postgres import PostgresStore

        with PostgresStore.from_url(URL, schema=pg_store.schema) as second:
            state = new_project(pg_store, "P1")
            assert second.load("P1") == state
            append(second, state, [("funds_reported", {"amount": 1})])
            with pytest.raises(ConcurrencyConflict, match="at version 2, not 1"):
                append(pg_store, state, [("funds_reported", {"amount": 2})])


class TestManyProcesses:
    def test_concurrent_writers_lose_nothing_and_apply_nothing_twice(self, schema_url: str) -> None:
        """Four processes adding 20 events each to one project, retrying on conflict: every
        event is stored exactly once, versions run 1..81 with no gap, and the state adds up."""
        run = run_concurrent_writers(schema_url, processes=4, events_each=20)
        assert [e.version for e in run.events] == list(range(1, 82))
        written = Counter((e.payload["worker"], e.payload["number"]) for e in run.events[1:])
        assert written == Counter({(w, n): 1 for w in range(4) for n in range(20)})
        store = open_store(schema_url)
        try:
            state = store.load(run.project)
            assert state is not None and (state.version, state.funds) == (81, 80)
            assert verify_chain(store).ok
        finally:
            store.close()

    def test_concurrent_claimers_never_claim_one_timer_twice(self, schema_url: str) -> None:
        """Four processes claiming the same due timers (``FOR UPDATE SKIP LOCKED``): each timer
        goes to exactly one of them."""
        claimed = run_concurrent_claimers(schema_url, timers=120, processes=4)
        keys = [key for batch in claimed for key in batch]
        assert len(keys) == len(set(keys)) == 120

    def test_concurrent_notice_claimers_deliver_each_notice_once(self, schema_url: str) -> None:
        """Four processes claiming and delivering the same outbox (``FOR UPDATE SKIP
        LOCKED``), each fifth notice failing once and released: every notice is delivered by
        exactly one of them, the failed ones too, and the outbox ends empty."""
        delivered = run_concurrent_notice_claimers(schema_url, notices=120, processes=4)
        ids = [notice_id for batch in delivered for notice_id in batch]
        assert len(ids) == len(set(ids)) == 120
        store = open_store(schema_url)
        try:
            assert store.pending_notices(T0 + timedelta(days=1)) == []
        finally:
            store.close()


class TestAuditChain:
    def _history(self, store: PostgresStore) -> None:
        for project in ("P1", "P2"):
            state = new_project(store, project)
            for amount in (1, 2, 3):
                state = append(store, state, [("funds_reported", {"amount": amount})])

    def test_an_edited_payload_is_named(self, pg_store: PostgresStore) -> None:
        """Changing one event's payload by hand makes ``verify_chain`` name that event."""
        self._history(pg_store)
        assert verify_chain(pg_store).ok
        with _raw(pg_store) as connection:
            connection.execute(
                "UPDATE events SET payload = '{\"amount\":2000}' "
                "WHERE project = 'P1' AND version = 2"
            )
        report = verify_chain(pg_store)
        assert not report.ok and report.first_bad == ("P1", 2)
        assert report.reason is not None and "edited" in report.reason

    def test_removing_the_newest_event_is_caught_by_the_kept_head(
        self, pg_store: PostgresStore
    ) -> None:
        """Deleting the newest event is caught by the project's recorded version; rewriting
        that (and the report row) too is caught by a head the auditor kept of the store."""
        self._history(pg_store)
        kept = pg_store.chain_head()
        with _raw(pg_store) as connection:
            connection.execute("DELETE FROM events WHERE seq = 8")
        report = verify_chain(pg_store)
        assert not report.ok and report.reason is not None
        assert "at version 4 but has 3 events" in report.reason
        with _raw(pg_store) as connection:
            connection.execute("UPDATE projects SET version = 3 WHERE project = 'P2'")
            connection.execute("UPDATE project_summaries SET funds = 3 WHERE project = 'P2'")
        assert verify_chain(pg_store).ok
        report = verify_chain(pg_store, kept)
        assert not report.ok and report.count == 7


def test_url_parameters_with_spaces_survive_a_schema(postgres_url: str) -> None:
    """libpq options such as ``-c synchronous_commit=off`` keep their space when the URL also
    names a schema (the query is re-encoded with %20, not +)."""
    from approvalflow.stores.postgres import PostgresStore

    url = f"{postgres_url}?options=-c%20synchronous_commit%3Doff&schema={_schema()}"
    store = PostgresStore.from_url(url)
    try:
        new_project(store, "P1")
        assert store.project_ids() == ["P1"]
    finally:
        store.drop()
        store.close()


def _table_rows(store: PostgresStore, tables: list[str]) -> dict[str, list[Any]]:
    with _raw(store) as connection:
        return {
            table: sorted(map(repr, connection.execute(f"SELECT * FROM {table}").fetchall()))
            for table in tables
        }


class _Sent:
    """Counts what a store's connection is asked to send (statements, pipelines, cursors),
    through ``execute`` and through the store's hot statements (``stores.libpq``)."""

    def __init__(self, store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        self.cursors = 0
        connection = store._connection
        execute, cursor = connection.execute, connection.cursor

        def counted(query: Any, params: Any = None, **kwargs: Any) -> Any:
            self.statements.append(query.decode() if isinstance(query, bytes) else str(query))
            return execute(query, params, **kwargs)

        sent = self

        class CountedHot:
            def __init__(self, kept: Any) -> None:
                self._kept = kept

            def row(self, statement: bytes, params: Any) -> Any:
                sent.statements.append(statement.decode())
                return self._kept.row(statement, params)

        monkeypatch.setattr(store, "_hot", CountedHot(store._hot))

        def counted_cursor(*args: Any, **kwargs: Any) -> Any:
            self.cursors += 1  # each execute opens one; an executemany would open another
            return cursor(*args, **kwargs)

        def refused(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the commit opened a pipeline or a transaction")

        monkeypatch.setattr(connection, "execute", counted)
        monkeypatch.setattr(connection, "cursor", counted_cursor)
        monkeypatch.setattr(connection, "pipeline", refused)
        monkeypatch.setattr(connection, "transaction", refused)


class TestOneStatementCommit:
    """A commit is one statement, its own transaction, in one round trip (issue 17)."""

    def test_a_commit_after_a_load_sends_one_statement(
        self, pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the project's head known from the load (or the last commit), the guard, the
        events, timers, notices and report rows go as one statement, a hot statement (no
        cursor opened per commit)."""
        from approvalflow.model import Timer, TimerChanges
        from approvalflow.testing.store_conformance import notice

        state = new_project(pg_store, "P1")
        assert pg_store.load("P1") == state
        sent = _Sent(pg_store, monkeypatch)
        timer = Timer("P1", "supply", T0 + timedelta(days=3), "zj")
        after = append(
            pg_store,
            state,
            [("funds_reported", {"amount": 5}), ("funds_reported", {"amount": 6})],
            timers=TimerChanges(set=(timer,)),
            notices=[notice("P1", 0)],
        )
        assert (len(sent.statements), sent.cursors) == (1, 0)
        monkeypatch.undo()
        assert pg_store.load("P1") == after and after.funds == 11
        assert pg_store.timers("P1") == [timer]
        assert [e.notice for e in pg_store.pending_notices(T0)] == [notice("P1", 0)]
        assert verify_chain(pg_store).ok

    def test_a_commits_deletes_read_only_its_own_projects_rows_under_a_kept_plan(
        self, pg_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The server keeps one plan per statement for the connection, often made while the
        tables were small (no statistics yet): a delete joined to its rows by key alone was
        planned as a scan of the county's every timer, so each commit cost more as the store
        grew. Each delete is bounded to the guard's project: planned generic over 40
        projects' timers, every scan of the timers a commit deletes from names the project."""
        import json

        import psycopg

        from approvalflow.model import Timer, TimerChanges

        states = {}
        for n in range(40):
            project = f"P{n}"
            timer = Timer(project, "supply", T0 + timedelta(days=3), "zj")
            states[project] = new_project(pg_store, project, timers=TimerChanges(set=(timer,)))
        sent: list[tuple[bytes, Any]] = []
        hot = pg_store._hot

        class Kept:
            def row(self, statement: bytes, params: Any) -> Any:
                sent.append((statement, params))
                return hot.row(statement, params)

        monkeypatch.setattr(pg_store, "_hot", Kept())
        cancel = TimerChanges(cancel=(("P7", "supply", "zj"),))
        append(pg_store, states["P7"], [("funds_reported", {"amount": 1})], timers=cancel)
        monkeypatch.undo()
        assert pg_store.timers("P7") == [] and len(pg_store.timers("P8")) == 1
        statement, params = sent[-1]
        numbered = statement.decode().split("%s")
        text = "".join(f"{part}${i}" for i, part in enumerate(numbered[:-1], 1)) + numbered[-1]
        assert "DELETE FROM timers" in text
        with _raw(pg_store) as connection:
            connection.execute("SET plan_cache_mode = force_generic_plan")
            connection.execute(f"PREPARE kept AS {text}")
            cursor = psycopg.ClientCursor(connection)
            placeholders = ", ".join(["%s"] * len(params))
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE kept({placeholders})", params)
            row = cursor.fetchone()
            assert row is not None
            plan = row[0] if isinstance(row[0], list) else json.loads(row[0])

        def scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if node.get("Relation Name") == "timers" and "Scan" in node["Node Type"]:
                yield node
            for child in node.get("Plans", []):
                yield from scans(child)

        found = list(scans(plan[0]["Plan"]))
        assert found, plan
        for node in found:
            condition = node.get("Index Cond", "") + node.get("Recheck Cond", "")
            assert "project" in condition, node

    def test_a_commit_deleting_another_projects_rows_is_refused_before_it_is_sent(
        self,
    ) -> None:
        """The bound above would leave another project's rows in place: a commit's deletes are
        its own project's rows, and anything else is a programming error, not a quiet no-op."""
        from approvalflow.stores.postgres import _SET_BASED

        statement = "DELETE FROM timers WHERE county = 'default' AND project = %s AND kind = %s"
        assert "P1" in _SET_BASED.rows_json(statement, [("P1", "supply")], "P1")
        with pytest.raises(AssertionError, match=r"a commit of P1 deletes rows of \['P2'\]"):
            _SET_BASED.rows_json(statement, [("P1", "supply"), ("P2", "supply")], "P1")

    def test_without_the_head_cached_it_is_read_first(
        self, schema_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A store keeping no states reads the head in a round trip of its own, then commits
        in one statement; the chain is the same. (It also reads the state the commit starts
        from first, for the counts the commit changes: D262.)"""
        from approvalflow.stores.postgres import PostgresStore

        store = PostgresStore.from_url(schema_url + "&cache_size=0")
        try:
            state = new_project(store, "P1")
            sent = _Sent(store, monkeypatch)
            append(store, state, [("funds_reported", {"amount": 5})])
            assert [s.split()[0] for s in sent.statements] == ["SELECT", "SELECT", "WITH"]
            assert sent.statements[1].startswith("SELECT hash FROM events")
            assert sent.cursors == 1  # the head's read; the state's load and the commit are hot
            monkeypatch.undo()
            assert verify_chain(store).ok
        finally:
            store.close()

    def test_a_head_changed_behind_the_store_is_refused_writing_nothing(
        self, pg_store: PostgresStore
    ) -> None:
        """The cached head is checked in the commit's own transaction: when the newest
        event's hash was changed by hand, the commit is a conflict saying so, writes nothing,
        and the next try (from a fresh read) commits as it did before this cache."""
        state = append(pg_store, new_project(pg_store, "P1"), [("funds_reported", {"amount": 1})])
        with _raw(pg_store) as connection:
            connection.execute("UPDATE events SET hash = 'edited' WHERE version = 2")
        before = _table_rows(pg_store, ["events", "projects", "project_summaries"])
        with pytest.raises(ConcurrencyConflict, match=r"event at version 2 .*hash differs"):
            append(pg_store, state, [("funds_reported", {"amount": 2})])
        assert _table_rows(pg_store, ["events", "projects", "project_summaries"]) == before
        again = pg_store.load("P1")
        assert again == state
        append(pg_store, again, [("funds_reported", {"amount": 2})])
        assert pg_store.load("P1").version == 3
        report = verify_chain(pg_store)
        assert not report.ok and report.first_bad == ("P1", 2)

    def test_a_refused_commit_writes_no_part_on_any_table(self, pg_store: PostgresStore) -> None:
        """Every part of the one statement waits for the guard (D291, D310): a commit the
        guard refuses (the newest event's hash edited by hand, so its version is free and no
        key collides), with events, a timer cancelled and another set and report rows, is a
        conflict and leaves every table as it was."""
        from approvalflow.model import Timer, TimerChanges

        supply = Timer("P1", "supply", T0 + timedelta(days=3), "zj")
        state = new_project(pg_store, "P1", timers=TimerChanges(set=(supply,)))
        with _raw(pg_store) as connection:
            connection.execute("UPDATE events SET hash = 'edited' WHERE version = 1")
        tables = [
            "events",
            "projects",
            "timers",
            "task_rows",
            "project_summaries",
            "intervals",
            "milestones",
            "outbox",
            "snapshots",
            "commands",
        ]
        before = _table_rows(pg_store, tables)
        later = Timer("P1", "review", T0 + timedelta(days=5), "zj")
        with pytest.raises(ConcurrencyConflict, match=r"event at version 1 .*hash differs"):
            append(
                pg_store,
                state,
                [("funds_reported", {"amount": 2})],
                timers=TimerChanges(set=(later,), cancel=(("P1", "supply", "zj"),)),
            )
        assert _table_rows(pg_store, tables) == before

    def test_a_timer_set_twice_in_one_commit_keeps_the_last(self, pg_store: PostgresStore) -> None:
        """Upserts of one key in one commit end as they did one statement at a time."""
        from approvalflow.model import Timer, TimerChanges

        first = Timer("P1", "supply", T0 + timedelta(days=3), "zj")
        last = Timer("P1", "supply", T0 + timedelta(days=5), "zj")
        state = new_project(pg_store, "P1", timers=TimerChanges(set=(first,)))
        append(
            pg_store,
            state,
            [("funds_reported", {"amount": 1})],
            timers=TimerChanges(set=(first, last), cancel=(("P1", "supply", "zj"),)),
        )
        assert pg_store.timers("P1") == [last]

    @pytest.mark.parametrize("cache_size", [0, 256])
    def test_report_rows_equal_a_rebuild(self, postgres_url: str, cache_size: int) -> None:
        """Commits that replace a project's report rows whole (nothing cached: the rows are
        deleted and written again in the one statement) or in part leave exactly the rows a
        rebuild from every project's state makes."""
        from builders import County

        from approvalflow.stores.postgres import PostgresStore

        store = PostgresStore.from_url(postgres_url, schema=_schema(), cache_size=cache_size)
        try:
            county = County(store=store)
            county.to_approval("P1")
            county.advance(timedelta(days=2))
            county.approve_all("P1")
            county.do("start_construction", "P1", "fuyuan")
            county.to_signed("P2")
            county.to_approval("P3")
            county.advance(timedelta(days=40))
            county.engine.run_due()
            tables = ["milestones", "project_summaries", "intervals", "task_rows"]
            written = _table_rows(store, tables)
            assert written["task_rows"] and written["intervals"]
            store.rebuild_projections()
            assert _table_rows(store, tables) == written
        finally:
            store.drop()
