"""Outbox claims: workers delivering at once send each notice once, a dead worker's claim runs
out, inline delivery is not doubled by a worker, and the schema migration that added claims.

The store-level rules are in the conformance suite (``StoreConformance``) and the
multi-process runs in ``test_store_sqlite.py``/``test_store_postgres.py``; here two engines or
two store objects share one database, and one worker's channel runs the other worker in the
middle of a delivery, which is the moment two workers used to send the same notice.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import County
from conftest import two_store_objects
from layouts import to_version_8

from approvalflow import Notice, hookimpl
from approvalflow.stores import MemoryStore, schema
from approvalflow.stores.sqlite import SQLiteStore
from approvalflow.testing.store_conformance import T0, new_project, notice

LEASE = timedelta(minutes=5)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two store objects on one database (for memory, one store object twice: it serves one
    process)."""
    if request.param == "memory":
        store = MemoryStore()
        yield store, store
        return
    with two_store_objects(request.param, request, tmp_path) as pair:
        yield pair


class Channel:
    """A notify plugin that records what it delivered and may run something first."""

    def __init__(self, before: Callable[[Notice], None] | None = None) -> None:
        self.sent: list[str] = []
        self.before = before
        self.failing = False

    @hookimpl
    def approvalflow_notify(self, notice: Notice) -> None:
        if self.before is not None:
            before, self.before = self.before, None  # once
            before(notice)
        if self.failing:
            raise ConnectionError("SMS gateway down")
        self.sent.append(notice.id)


def _fill_outbox(store: Any) -> tuple[County, list[str]]:
    """Two projects' meetings leave their notices in the outbox (``deliver="outbox"``)."""
    county = County(store=store, deliver="outbox", plugins=[Channel()])
    for project in ("P1", "P2"):
        county.to_decision(project)
        county.do("convene", project, "chair", present=["chair", "m1", "m2"])
        county.do("close_meeting", project, "chair")
    far = county.clock.now() + timedelta(days=1)
    pending = [entry.notice.id for entry in store.pending_notices(far, 1000)]
    assert len(pending) >= 4
    return county, pending


def _worker(store: Any, county: County, channel: Channel) -> County:
    return County(store=store, deliver="outbox", plugins=[channel], start=county.clock.now())


class TestWorkersAtOnce:
    def test_a_worker_running_mid_delivery_sends_none_of_the_other_s_notices(
        self, two_stores: tuple[Any, Any]
    ) -> None:
        """While the first worker sends its first claimed notice, a second worker delivers the
        outbox: it takes only what the first did not claim. Each notice goes out once, all of
        them go out, and the outbox ends empty."""
        first_store, second_store = two_stores
        county, pending = _fill_outbox(first_store)
        now = county.clock.now()
        second_channel = Channel()
        second = _worker(second_store, county, second_channel)
        first_channel = Channel(before=lambda _: second.engine.deliver_notices(now))
        first = _worker(first_store, county, first_channel)
        assert first.engine.deliver_notices(now, limit=2) == 2
        assert first_channel.sent == pending[:2]
        assert second_channel.sent == pending[2:]
        sent = Counter(first_channel.sent + second_channel.sent)
        assert sent == Counter({notice_id: 1 for notice_id in pending})
        assert first_store.pending_notices(now + timedelta(days=1)) == []

    def test_a_dead_worker_s_notices_go_out_when_its_lease_ends(
        self, two_stores: tuple[Any, Any]
    ) -> None:
        """A worker that claimed and died holds its notices for the lease only: another
        worker sends nothing before the lease ends, and every one of them after it."""
        first_store, second_store = two_stores
        county, pending = _fill_outbox(first_store)
        now = county.clock.now()
        assert [e.notice.id for e in first_store.claim_notices(now, 1000)] == pending
        channel = Channel()
        worker = _worker(second_store, county, channel)
        assert worker.engine.deliver_notices(now + LEASE - timedelta(seconds=1)) == 0
        assert worker.engine.deliver_notices(now + LEASE) == len(pending)
        assert channel.sent == pending

    def test_a_failed_notice_is_retried_by_any_worker_after_its_backoff(
        self, two_stores: tuple[Any, Any]
    ) -> None:
        """A channel failure releases the notice with its backoff (30 s): no worker takes it
        sooner, the next one to come after does, and its attempt is counted."""
        first_store, second_store = two_stores
        county, pending = _fill_outbox(first_store)
        now = county.clock.now()
        failing = Channel()
        failing.failing = True
        assert _worker(first_store, county, failing).engine.deliver_notices(now) == 0
        retry = Channel()
        worker = _worker(second_store, county, retry)
        assert worker.engine.deliver_notices(now + timedelta(seconds=29)) == 0
        assert worker.engine.deliver_notices(now + timedelta(seconds=30)) == len(pending)
        assert retry.sent == pending


class TestInlineDelivery:
    def test_a_worker_does_not_send_what_the_engine_is_delivering_inline(
        self, two_stores: tuple[Any, Any]
    ) -> None:
        """An inline engine's notices are claimed in the commit that writes them: a worker
        delivering the outbox while the engine sends them takes none of them."""
        app_store, worker_store = two_stores
        worker_channel = Channel()
        worker = County(store=worker_store, deliver="outbox", plugins=[worker_channel])

        def run_worker(_: Notice) -> None:
            worker.engine.deliver_notices(worker.clock.now() + timedelta(seconds=1))

        app_channel = Channel(before=run_worker)
        app = County(store=app_store, plugins=[app_channel])
        app.to_decision()
        app.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        app.do("close_meeting", "P1", "chair")
        assert app_channel.sent and worker_channel.sent == []
        assert app_store.pending_notices(app.clock.now() + timedelta(days=1)) == []

    def test_an_inline_failure_is_left_to_the_workers(self, two_stores: tuple[Any, Any]) -> None:
        """A notice whose inline delivery failed is released: a worker sends it after the
        backoff, not before."""
        app_store, worker_store = two_stores
        app_channel = Channel()
        app_channel.failing = True
        app = County(store=app_store, plugins=[app_channel])
        app.to_decision()
        app.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        app.do("close_meeting", "P1", "chair")
        now = app.clock.now()
        failed = [e.notice.id for e in app_store.pending_notices(now + timedelta(days=1))]
        assert failed
        worker_channel = Channel()
        worker = County(store=worker_store, deliver="outbox", plugins=[worker_channel], start=now)
        assert worker.engine.deliver_notices(now) == 0
        assert worker.engine.deliver_notices(now + timedelta(seconds=30)) == len(failed)
        assert worker_channel.sent == failed


class TestClaimsAcrossStoreObjects:
    @pytest.fixture
    def stores(self, two_sql_stores: tuple[Any, Any]) -> tuple[Any, Any]:
        return two_sql_stores

    def test_two_connections_never_claim_the_same_notice(self, stores: tuple[Any, Any]) -> None:
        """Claims through two connections split the outbox between them."""
        first, second = stores
        new_project(first, "P1", notices=[notice("P1", i) for i in range(6)])
        a = [e.notice.id for e in first.claim_notices(T0, 2)]
        b = [e.notice.id for e in second.claim_notices(T0, 10)]
        assert a == ["P1:1:0", "P1:1:1"]
        assert b == [f"P1:1:{i}" for i in range(2, 6)]
        assert first.claim_notices(T0) == [] and second.claim_notices(T0) == []

    def test_a_late_failure_report_leaves_the_new_claim_alone(
        self, stores: tuple[Any, Any]
    ) -> None:
        """A claimer whose lease ran out, and whose notice another claimer took over, reports a
        failure afterwards: the report is ignored, the new claim holds, and its delivery ends
        the notice."""
        first, second = stores
        new_project(first, "P1", notices=[notice("P1", 0)])
        assert len(first.claim_notices(T0)) == 1
        later = T0 + LEASE
        assert [e.notice.id for e in second.claim_notices(later)] == ["P1:1:0"]
        first.mark_failed("P1:1:0", "too late", later + timedelta(seconds=30))
        assert first.claim_notices(later + timedelta(minutes=1)) == []
        (entry,) = first.pending_notices(later + timedelta(days=1))
        assert (entry.attempts, entry.last_error) == (0, None)
        second.mark_delivered(["P1:1:0"])
        assert first.pending_notices(later + timedelta(days=1)) == []


# -- the migration to schema version 4 ----------------------------------------------------------

_V3_DOWNGRADE = [
    *(f"ALTER TABLE outbox DROP COLUMN {column.name}" for column in schema.OUTBOX_CLAIM_COLUMNS),
    "ALTER TABLE snapshots DROP COLUMN digest",  # schema version 8
    "UPDATE meta SET schema_version = 3",
]


def _outbox_before(store: Any) -> tuple[list[str], datetime]:
    """Three notices, one failed once and one claimed, as a version-3 store would hold them
    (apart from the claim, which version 3 had no column for)."""
    new_project(store, "P1", notices=[notice("P1", i) for i in range(3)])
    retry = T0 + timedelta(seconds=30)
    store.mark_failed("P1:1:1", "smtp refused", retry)
    assert [e.notice.id for e in store.claim_notices(T0, 1)] == ["P1:1:0"]
    return ["P1:1:0", "P1:1:1", "P1:1:2"], retry


def _check_after(store: Any, ids: list[str], retry: datetime) -> None:
    """Every notice kept with its attempts and error, none claimed, and claims work."""
    pending = store.pending_notices(retry)
    assert [e.notice.id for e in pending] == ids
    assert [(e.attempts, e.last_error) for e in pending] == [
        (0, None),
        (1, "smtp refused"),
        (0, None),
    ]
    assert [e.notice.id for e in store.claim_notices(T0)] == ["P1:1:0", "P1:1:2"]
    assert [e.notice.id for e in store.claim_notices(retry)] == ["P1:1:1"]
    assert store.claim_notices(retry) == []


class TestMigrationToVersion4:
    def test_a_version_3_sqlite_file_gets_outbox_claims_and_keeps_its_notices(
        self, tmp_path: Path
    ) -> None:
        """Opening a version-3 file adds the claim columns; the notices, their attempts and
        errors are kept, and they are claimed as any others."""
        path = tmp_path / "v3.db"
        with SQLiteStore(path) as store:
            ids, retry = _outbox_before(store)
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            to_version_8(connection, "sqlite")
            for statement in _V3_DOWNGRADE:
                connection.execute(statement)
        finally:
            connection.close()
        with SQLiteStore(path) as store:
            row = store._connection.execute("SELECT schema_version FROM meta").fetchone()
            assert row == (schema.SCHEMA_VERSION,)
            _check_after(store, ids, retry)

    def test_a_version_3_postgres_schema_gets_outbox_claims_and_keeps_its_notices(
        self, postgres_url: str
    ) -> None:
        """The same on PostgreSQL."""
        from approvalflow.stores.postgres import PostgresStore

        name = f"t_{uuid.uuid4().hex[:16]}"
        store = PostgresStore.from_url(postgres_url, schema=name)
        try:
            ids, retry = _outbox_before(store)
            to_version_8(store._connection, "postgresql")
            for statement in _V3_DOWNGRADE:
                store._connection.execute(statement)
            store.close()
            store = PostgresStore.from_url(postgres_url, schema=name)
            row = store._connection.execute("SELECT schema_version FROM meta").fetchone()
            assert row == (schema.SCHEMA_VERSION,)
            _check_after(store, ids, retry)
        finally:
            store.drop()


class TestLeaseOption:
    """The lease is a store option, in the URL too, so a worker started by URL can be given
    one longer than its slowest batch."""

    def _claims_after(self, store: Any) -> tuple[int, int]:
        new_project(store, "P1", notices=[notice("P1", 0)])
        assert len(store.claim_notices(T0)) == 1
        before = len(store.claim_notices(T0 + timedelta(seconds=59)))
        return before, len(store.claim_notices(T0 + timedelta(seconds=60)))

    def test_a_sqlite_url_sets_the_lease(self, tmp_path: Path) -> None:
        with SQLiteStore.from_url(f"sqlite:///{tmp_path}/a.db?lease=60") as store:
            assert self._claims_after(store) == (0, 1)

    def test_a_postgres_url_sets_the_lease_and_libpq_never_sees_it(self, postgres_url: str) -> None:
        from approvalflow.stores.postgres import PostgresStore

        name = f"t_{uuid.uuid4().hex[:16]}"
        store = PostgresStore.from_url(f"{postgres_url}?lease=60&schema={name}")
        try:
            assert self._claims_after(store) == (0, 1)
        finally:
            store.drop()

    @pytest.mark.parametrize("value", ["0", "-5", "soon", "inf", "nan"])
    def test_a_lease_that_is_no_lease_is_refused_and_creates_nothing(
        self, tmp_path: Path, value: str
    ) -> None:
        path = tmp_path / "a.db"
        with pytest.raises(ValueError, match="lease must be"):
            SQLiteStore.from_url(f"sqlite:///{path}?lease={value}")
        assert not path.exists()
        with pytest.raises(ValueError, match="lease must be longer than 0 seconds"):
            SQLiteStore(path, lease=timedelta(0))
        assert not path.exists()


def test_two_workers_marking_the_same_notices_both_finish(postgres_url: str) -> None:
    """Two connections marking overlapping notices delivered, in opposite orders, while a third
    holds one of the rows: neither waits for the other in a cycle (PostgreSQL lock order), both
    return once the row is free, and the notices are gone."""
    import threading

    import psycopg

    from approvalflow.stores.postgres import PostgresStore

    name = f"t_{uuid.uuid4().hex[:16]}"
    first = PostgresStore.from_url(postgres_url, schema=name)
    second = PostgresStore.from_url(postgres_url, schema=name)
    try:
        ids = [f"P1:1:{i}" for i in range(4)]
        new_project(first, "P1", notices=[notice("P1", i) for i in range(4)])
        holder = psycopg.connect(postgres_url)
        holder.execute("SELECT set_config('search_path', %s, false)", (name,))
        holder.execute("SELECT 1 FROM outbox WHERE notice_id = %s FOR UPDATE", (ids[3],))
        errors: list[BaseException] = []

        def mark(store: Any, order: list[str]) -> None:
            try:
                store.mark_delivered(order)
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        threads = [
            threading.Thread(target=mark, args=(first, ids)),
            threading.Thread(target=mark, args=(second, list(reversed(ids)))),
        ]
        for thread in threads:
            thread.start()
        threads[0].join(0.5)
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert first.pending_notices(T0 + timedelta(days=1)) == []
    finally:
        second.close()
        first.drop()
