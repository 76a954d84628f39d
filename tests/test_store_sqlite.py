"""The SQLite store: the conformance suite, durability, schema versions, the audit chain,
several processes on one file, and the JSON it keeps."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import Notice, Timer, TimerChanges
from approvalflow.project import Branch, Meeting, PreReviewRound, ProjectState
from approvalflow.settings import LadderStep
from approvalflow.stores import UnstorableValue, open_store, schema
from approvalflow.stores.audit import GENESIS, ChainReport, event_hash, verify_chain
from approvalflow.stores.base import CommandRecord
from approvalflow.stores.serialization import (
    event_from_json,
    event_to_json,
    notice_from_json,
    notice_to_json,
    state_from_json,
    state_to_json,
)
from approvalflow.stores.sqlite import SQLiteStore
from approvalflow.testing.store_conformance import (
    SHANGHAI,
    T0,
    ArchiveAuditConformance,
    StoreConformance,
    append,
    created_event,
    new_project,
    notice,
    run_concurrent_claimers,
    run_concurrent_notice_claimers,
    run_concurrent_writers,
)


class TestSQLiteStore(StoreConformance, ArchiveAuditConformance):
    """Every conformance test, against an SQLite file with the default settings (a snapshot
    every 16 versions, so ``load`` folds up to 15 events)."""

    max_events_folded_by_load = 15

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "store.db")
        yield store
        store.close()


class TestSQLiteStoreWithASnapshotEveryCommit(StoreConformance, ArchiveAuditConformance):
    """Every conformance test with a snapshot at every commit, so ``load`` reads one row and
    folds nothing."""

    max_events_folded_by_load = 0

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        store = SQLiteStore(tmp_path / "store.db", snapshot_every=1)
        yield store
        store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db_path)
    yield store
    store.close()


def _raw(path: Path) -> sqlite3.Connection:
    """A connection of our own to the store's file, to change it behind the store's back."""
    return sqlite3.connect(path, isolation_level=None)


class TestOpening:
    def test_urls_name_relative_absolute_and_in_memory_databases(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``sqlite:///rel.db`` is relative to the working directory, ``sqlite:////abs.db`` is
        absolute, ``sqlite:///:memory:`` lives and dies with the store."""
        monkeypatch.chdir(tmp_path)
        with SQLiteStore.from_url("sqlite:///relative.db") as relative:
            assert relative.path == "relative.db"
        assert (tmp_path / "relative.db").exists()
        absolute = tmp_path / "absolute.db"
        store = open_store(f"sqlite:///{absolute}", create=True)
        assert isinstance(store, SQLiteStore) and store.path == str(absolute)
        store.close()
        with SQLiteStore.from_url("sqlite:///:memory:") as memory:
            new_project(memory, "P1")
            assert memory.project_ids() == ["P1"]

    def test_url_options_are_checked(self, tmp_path: Path) -> None:
        """Known options are applied; an unknown one or a bad value is an error, not ignored."""
        with SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?synchronous=normal") as store:
            assert store._connection.execute("PRAGMA synchronous").fetchone()[0] == 1
        with pytest.raises(ValueError, match="unknown SQLite URL options"):
            SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?sync=off")
        with pytest.raises(ValueError, match="synchronous"):
            SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?synchronous=sometimes")
        with pytest.raises(ValueError, match="three slashes"):
            SQLiteStore.from_url("sqlite://a.db")

    def test_a_file_is_in_wal_mode_and_syncs_every_commit_by_default(
        self, store: SQLiteStore
    ) -> None:
        """An acknowledged commit survives a power cut: WAL with ``synchronous=FULL`` (2)."""
        assert store._connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._connection.execute("PRAGMA synchronous").fetchone()[0] == 2

    def test_claims_leave_every_command_synced(self, store: SQLiteStore) -> None:
        """The claims' bookkeeping commits without a sync of its own (its loss in a power cut
        only repeats a claim); commands are still synced: the setting is FULL afterwards."""
        timer = Timer("P1", "pre_review", T0)
        new_project(store, "P1", timers=TimerChanges(set=(timer,)), notices=[notice("P1", 0)])
        assert store.claim_due(T0) == [timer]
        assert len(store.claim_notices(T0)) == 1
        store.mark_failed("P1:1:0", "busy", T0)
        assert len(store.claim_notices(T0)) == 1
        store.mark_delivered(["P1:1:0"])
        assert store._connection.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert store.pending_notices(T0 + timedelta(days=1)) == []

    def test_everything_survives_closing_and_reopening(self, db_path: Path) -> None:
        """State, events, timers, notices, command ids and the chain are all in the file."""
        with SQLiteStore(db_path) as store:
            record = CommandRecord("cmd-1", "P1", "create", "fp", 1, 1)
            timer = Timer("P1", "pre_review", T0 + timedelta(days=3))
            state = new_project(
                store,
                "P1",
                command=record,
                timers=TimerChanges(set=(timer,)),
                notices=[notice("P1", 0)],
            )
            state = append(store, state, [("funds_reported", {"amount": 9})])
            head = store.chain_head()
        with SQLiteStore(db_path) as store:
            assert store.load("P1") == state
            assert [e.version for e in store.events("P1")] == [1, 2]
            assert store.timers("P1") == [timer]
            assert [e.notice.id for e in store.pending_notices(T0)] == ["P1:1:0"]
            assert store.command("cmd-1") == record
            assert verify_chain(store, head).ok


class TestIdlePolling:
    def test_a_worker_with_nothing_due_does_not_wait_for_the_write_lock(
        self, db_path: Path
    ) -> None:
        """With another process holding the write lock, polling for timers and notices when
        nothing is due answers at once (it would wait ``busy_timeout`` for a write)."""
        store = SQLiteStore(db_path, busy_timeout=0.05)
        blocker = _raw(db_path)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            assert store.claim_due(T0) == []
            assert store.claim_notices(T0) == []
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            store.close()

    def test_a_worker_with_something_due_claims_it(self, db_path: Path) -> None:
        with SQLiteStore(db_path) as store:
            timer = Timer("P1", "branch_limit", T0, "zj")
            new_project(store, "P1", timers=TimerChanges(set=(timer,)))
            assert store.claim_due(T0 + timedelta(hours=1), prefix="P2") == []
            assert store.claim_due(T0 + timedelta(hours=1)) == [timer]


class TestSchemaVersions:
    def test_a_newer_schema_is_refused_naming_both_versions(self, db_path: Path) -> None:
        """Old code never writes to a schema it does not know: it says which versions differ."""
        SQLiteStore(db_path).close()
        with _raw(db_path) as connection:
            connection.execute("UPDATE meta SET schema_version = 99")
        with pytest.raises(
            schema.SchemaVersionError, match=rf"version 99.*version {schema.SCHEMA_VERSION}"
        ):
            SQLiteStore(db_path)

    def test_an_older_schema_is_migrated_and_keeps_its_data(
        self, db_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A file at the current version opened by code one version newer gets that version's
        migration, and its projects are still there."""
        with SQLiteStore(db_path) as store:
            state = new_project(store, "P1")
        newer = schema.SCHEMA_VERSION + 1
        step = schema.Migration(
            newer, "a table for reports", lambda dialect: ["CREATE TABLE reports (name TEXT)"]
        )
        monkeypatch.setattr(schema, "SCHEMA_VERSION", newer)
        monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, step))
        with SQLiteStore(db_path) as store:
            assert store.load("P1") == state
        with _raw(db_path) as connection:
            assert connection.execute("SELECT schema_version FROM meta").fetchone()[0] == newer
            assert connection.execute("SELECT count(*) FROM reports").fetchone()[0] == 0

    def test_a_missing_migration_step_is_an_error(self) -> None:
        """A version with no step leading to it stops the upgrade instead of skipping it."""
        with pytest.raises(schema.SchemaVersionError, match="no migration from schema version 1"):
            schema.upgrade_statements(1, "sqlite", current=2, migrations=())

    def test_both_dialects_come_from_one_definition(self) -> None:
        """The same tables in both dialects; only types and the serial key differ."""
        sqlite_ddl = "\n".join(schema.create_statements("sqlite"))
        postgres_ddl = "\n".join(schema.create_statements("postgresql"))
        assert "INTEGER PRIMARY KEY AUTOINCREMENT" in sqlite_ddl
        assert "BIGSERIAL PRIMARY KEY" in postgres_ddl
        for table in schema.TABLES:
            assert f"CREATE TABLE IF NOT EXISTS {table.name} " in sqlite_ddl
            assert f"CREATE TABLE IF NOT EXISTS {table.name} " in postgres_ddl
        assert "UNIQUE (county, project, version)" in sqlite_ddl
        assert "UNIQUE (county, project, version)" in postgres_ddl


class TestAuditChain:
    def _history(self, store: SQLiteStore) -> None:
        for project in ("P1", "P2"):
            state = new_project(store, project)
            for amount in (1, 2, 3):
                state = append(store, state, [("funds_reported", {"amount": amount})])

    def test_an_untouched_store_verifies(self, store: SQLiteStore) -> None:
        """Each project's events link to the project's previous one, from GENESIS; the
        database numbers them (``seq``) in commit order, outside any hash."""
        assert verify_chain(store) == ChainReport(True, 0, GENESIS)
        self._history(store)
        report = verify_chain(store, store.chain_head())
        assert (report.ok, report.count, report.head) == (True, 8, store.chain_head().hash)
        assert [link.seq for link in store.iter_chain()] == list(range(1, 9))
        for project in ("P1", "P2"):
            chain = store.project_chain(project)
            # No stored prev_hash (schema version 9): each hash chains from the one before.
            previous = GENESIS
            for link in chain:
                assert link.prev_hash is None
                assert link.hash == event_hash(previous, link.event)
                previous = link.hash

    def test_an_edited_payload_is_named(self, store: SQLiteStore, db_path: Path) -> None:
        """Changing one event's payload by hand makes ``verify_chain`` name that event."""
        self._history(store)
        with _raw(db_path) as connection:
            connection.execute(
                "UPDATE events SET payload = '{\"amount\":2000}' "
                "WHERE project = 'P2' AND version = 3"
            )
        report = verify_chain(store)
        assert not report.ok
        assert report.first_bad == ("P2", 3)
        assert report.reason is not None and "edited" in report.reason

    def test_a_removed_middle_event_is_named(self, store: SQLiteStore, db_path: Path) -> None:
        """Deleting an event in the middle leaves a gap at the event after it."""
        self._history(store)
        with _raw(db_path) as connection:
            connection.execute("DELETE FROM events WHERE project = 'P1' AND version = 2")
        report = verify_chain(store)
        assert not report.ok and report.first_bad == ("P1", 3)

    def test_reordered_events_are_named(self, store: SQLiteStore, db_path: Path) -> None:
        """Swapping two events' places in a project's chain is caught at the first of them."""
        self._history(store)
        with _raw(db_path) as connection:
            connection.execute(
                "UPDATE events SET version = -version WHERE project = 'P1' AND version IN (2, 3)"
            )
            connection.execute(
                "UPDATE events SET version = 5 + version WHERE project = 'P1' "
                "AND version IN (-2, -3)"
            )
        report = verify_chain(store)
        assert not report.ok and report.first_bad == ("P1", 2)
        assert report.reason is not None and "reordered" in report.reason

    def test_removing_the_newest_event_is_caught(self, store: SQLiteStore, db_path: Path) -> None:
        """Deleting a project's newest event is caught by the version the project's row
        records; if that is rewritten too, by a head the auditor kept of the unchanged store."""
        self._history(store)
        kept = store.chain_head()
        with _raw(db_path) as connection:
            connection.execute("DELETE FROM events WHERE project = 'P2' AND version = 4")
        report = verify_chain(store)
        assert not report.ok and report.first_bad is None
        assert report.reason is not None and "at version 4 but has 3 events" in report.reason
        with _raw(db_path) as connection:
            connection.execute("UPDATE projects SET version = 3 WHERE project = 'P2'")
        report = verify_chain(store)  # the report projection still counts the removed funds
        assert not report.ok and report.reason is not None and "summary" in report.reason
        with _raw(db_path) as connection:
            connection.execute("UPDATE project_summaries SET funds = 3 WHERE project = 'P2'")
        assert verify_chain(store).ok  # consistent on its own: only an anchor can tell
        report = verify_chain(store, kept)
        assert not report.ok and report.count == 7
        assert report.reason is not None and "changed since" in report.reason
        assert verify_chain(store, store.chain_head()).ok

    def test_a_memory_store_has_no_chain(self) -> None:
        """Asking to verify a store without a chain is an error, not a silent pass."""
        from approvalflow.stores import MemoryStore

        with pytest.raises(TypeError, match="keeps no audit chain"):
            verify_chain(MemoryStore())


class TestManyProcesses:
    def test_concurrent_writers_lose_nothing_and_apply_nothing_twice(self, db_path: Path) -> None:
        """Four processes adding 20 events each to one project, retrying on conflict: every
        event is stored exactly once, versions run 1..81 with no gap, and the state adds up."""
        run = run_concurrent_writers(f"sqlite:///{db_path}", processes=4, events_each=20)
        assert [e.version for e in run.events] == list(range(1, 82))
        written = Counter((e.payload["worker"], e.payload["number"]) for e in run.events[1:])
        assert written == Counter({(w, n): 1 for w in range(4) for n in range(20)})
        with SQLiteStore(db_path) as store:
            state = store.load(run.project)
            assert state is not None and (state.version, state.funds) == (81, 80)
            assert verify_chain(store).ok

    def test_concurrent_claimers_never_claim_one_timer_twice(self, db_path: Path) -> None:
        """Four processes claiming the same due timers: each timer goes to exactly one."""
        claimed = run_concurrent_claimers(f"sqlite:///{db_path}", timers=120, processes=4)
        keys = [key for batch in claimed for key in batch]
        assert len(keys) == len(set(keys)) == 120

    def test_concurrent_notice_claimers_deliver_each_notice_once(self, db_path: Path) -> None:
        """Four processes claiming and delivering the same outbox, each fifth
        notice failing once and released: every notice is delivered by exactly one of them,
        the failed ones too, and the outbox ends empty."""
        delivered = run_concurrent_notice_claimers(f"sqlite:///{db_path}", notices=120, processes=4)
        ids = [notice_id for batch in delivered for notice_id in batch]
        assert len(ids) == len(set(ids)) == 120
        with SQLiteStore(db_path) as store:
            assert store.pending_notices(T0 + timedelta(days=1)) == []

    def test_a_second_connection_sees_commits_and_conflicts(self, db_path: Path) -> None:
        """Two stores on one file: each sees the other's commits, and a stale one conflicts."""
        with SQLiteStore(db_path) as first, SQLiteStore(db_path) as second:
            state = new_project(first, "P1")
            assert second.load("P1") == state
            append(second, state, [("funds_reported", {"amount": 1})])
            with pytest.raises(ConcurrencyConflict, match="at version 2, not 1"):
                append(first, state, [("funds_reported", {"amount": 2})])


class TestSerialization:
    def _state(self) -> ProjectState:
        at = T0 + timedelta(hours=1)
        state = ProjectState.created(created_event("P1", extra={"jobs": [1, 2], "park": "东区"}))
        state.materials = frozenset({"plan", "eia"})
        state.round = PreReviewRound(
            1, at, at + timedelta(days=3), opinions={"dev": {"verdict": "pass", "missing": []}}
        )
        state.meeting = Meeting(2, ("m1", "m2"), {"m1": "yes"})
        state.branches["zj"] = Branch(
            "zj",
            "accepted",
            at.astimezone(UTC),
            at.astimezone(timezone(timedelta(hours=8))),
            corrections=frozenset({"fire"}),
            deficient=("fire", "water"),
            outstanding=frozenset({"water"}),
        )
        state.milestones["signed"] = at
        state.plugin_data["county"] = {"ids": [3, 4], "flag": None}
        return state

    def test_a_project_state_round_trips_exactly(self) -> None:
        """Nested branches, rounds, meetings, frozensets, tuples and three kinds of tzinfo all
        read back equal, with the tzinfo they were written with."""
        state = self._state()
        again = state_from_json(state_to_json(state))
        assert again == state
        assert again.created_at.tzinfo is SHANGHAI
        branch = again.branches["zj"]
        assert branch.opened_at.tzinfo is UTC
        assert branch.due is not None and branch.due.utcoffset() == timedelta(hours=8)
        assert isinstance(branch.corrections, frozenset) and branch.deficient == ("fire", "water")
        assert again.meeting is not None and again.meeting.present == ("m1", "m2")

    def test_a_warning_ladder_round_trips_and_old_snapshots_load_without_one(self) -> None:
        """A branch's and a round's ladder, issued cards and when the deadline was set read
        back equal; a snapshot written before the ladder existed loads with none."""
        state = self._state()
        steps = (LadderStep("warning", 2, ["officer"]), LadderStep("red", -3, ["leader"]))
        assert state.round is not None
        state.round.ladders = {"dev": steps}
        state.round.cards_issued = {"dev": (0,)}
        branch = state.branches["zj"]
        branch.ladder, branch.cards_issued, branch.due_set_at = steps, (0, 1), T0
        assert state_from_json(state_to_json(state)) == state
        data = json.loads(state_to_json(self._state()))
        for name in ("ladder", "cards_issued", "due_set_at"):
            del data["branches"]["zj"][name]
        for name in ("ladders", "cards_issued"):
            del data["round"][name]
        old = state_from_json(json.dumps(data))
        assert old.branches["zj"].ladder == () and old.branches["zj"].due_set_at is None
        assert old.round is not None and old.round.cards_issued == {}

    def test_events_and_notices_round_trip_exactly(self) -> None:
        """An event and a notice read back equal, recipients as a tuple."""
        event = created_event("P1", T0, command_id="c1")
        assert event_from_json(event_to_json(event)) == event
        sent = Notice("P1:1:0", "urge", "P1", ("a", "b"), T0, {"materials": ["x"]})
        assert notice_from_json(notice_to_json(sent)) == sent

    def test_non_json_data_is_refused_when_written(self, store: SQLiteStore) -> None:
        """A payload the store could not read back as it was is refused at commit time, and
        nothing is written."""
        state = new_project(store, "P1")
        with pytest.raises(UnstorableValue, match="JSON data only"):
            append(store, state, [("funds_reported", {"amount": 1, "when": datetime.now(UTC)})])
        assert [e.version for e in store.events("P1")] == [1]
