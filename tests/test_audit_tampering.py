"""The audit against an attacker who can write the database (issue 17): each case is done as
such a person would do it, with plain SQL and the public hash functions, on SQLite and on
PostgreSQL, and ``audit verify`` (or, for an edited snapshot, every load) catches it. Without
the sealing key, only the sealed checkpoint tells a consistent rewrite from the truth."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import County
from layouts import to_version_8

from approvalflow.cli import main
from approvalflow.engine.definition import RuleBook
from approvalflow.errors import CheckpointError, InvalidTransition
from approvalflow.model import Event
from approvalflow.stores import schema
from approvalflow.stores.audit import (
    GENESIS,
    AuditReport,
    ChainHead,
    chain_hash,
    event_hash,
    snapshot_digest,
    verify_store,
)
from approvalflow.stores.checkpoints import Checkpoint, load_key, newest_checkpoint, seal
from approvalflow.stores.serialization import (
    canonical_event_json,
    event_from_row,
    pack_state,
    unpack_state,
)

Raw = Callable[..., list[Any]]


class Place:
    """A store for the county's engine, the same store opened afresh, and a raw connection
    for the attacker."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.path = tmp_path / "county.db"
            self.url = f"sqlite:///{self.path}"
        else:
            base = request.getfixturevalue("postgres_url")
            self.schema = f"t_{uuid.uuid4().hex[:16]}"
            self.base = base
            self.url = f"{base}?schema={self.schema}"
        self.opened: list[Any] = []

    def open(self) -> Any:
        if self.kind == "sqlite":
            from approvalflow.stores.sqlite import SQLiteStore

            store: Any = SQLiteStore(self.path, snapshot_every=1)
        else:
            from approvalflow.stores.postgres import PostgresStore

            store = PostgresStore.from_url(self.base, schema=self.schema, snapshot_every=1)
        self.opened.append(store)
        return store

    def to_version_8(self) -> None:
        """Rewrite the store as schema version 8 wrote it (``layouts.to_version_8``)."""
        if self.kind == "sqlite":
            connection = sqlite3.connect(self.path, isolation_level=None)
            try:
                to_version_8(connection, "sqlite")
            finally:
                connection.close()
            return
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as pg:
            pg.execute("SELECT set_config('search_path', %s, false)", (self.schema,))
            to_version_8(pg, "postgresql")

    def sql(self, statement: str, params: Any = ()) -> list[Any]:
        """Run one statement as the attacker, outside any store object."""
        if self.kind == "sqlite":
            connection = sqlite3.connect(self.path, isolation_level=None)
            try:
                cursor = connection.execute(statement.replace("%s", "?"), params)
                return cursor.fetchall()
            finally:
                connection.close()
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as connection:
            connection.execute("SELECT set_config('search_path', %s, false)", (self.schema,))
            cursor = connection.execute(statement, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description is not None else []

    def close(self) -> None:
        for store in self.opened[1:]:
            store.close()
        first = self.opened[0]
        if hasattr(first, "drop"):
            first.drop()
        else:
            first.close()


@pytest.fixture(params=["sqlite", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    found = Place(request.param, tmp_path, request)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "seal.key"
    path.write_text(uuid.uuid4().hex + uuid.uuid4().hex + "\n", encoding="ascii")
    return path


def county(place: Place) -> County:
    """P1 waiting for its meeting, P2 in parallel approval (five branch deadlines), commands
    with ids on both."""
    found = County(store=place.open())
    found.to_decision("P1")
    found.to_approval("P2")
    found.do("accept", "P2", "o_zj", command_id="accept-zj")
    found.do("report_funds", "P2", "guo", command_id="funds-1", amount="1亿")
    return found


def verify(place: Place, key_file: Path | None = None, **options: Any) -> AuditReport:
    """``audit verify`` as the API runs it: a fresh store, the rules' timers, and the newest
    checkpoint unless one is given."""
    store = place.open()
    engine = County(store=store).engine
    rules = RuleBook(engine.definition, store)
    checkpoint = options.pop("checkpoint", None)
    if checkpoint is None and options.pop("anchored", True):
        checkpoint = newest_checkpoint(store)
    key = load_key(key_file) if key_file is not None else None
    with engine.definition.folds.folding():
        return verify_store(
            store, timers_for=rules.timers_for, checkpoint=checkpoint, key=key, **options
        )


def found(report: AuditReport) -> set[tuple[str | None, str]]:
    return {(f.project, f.what) for f in report.findings}


def rechain(place: Place, project: str) -> None:
    """Recompute ``project``'s whole chain and its snapshot digest with the public functions,
    as an attacker covering an edit would."""
    rows = place.sql(
        "SELECT seq, project, version, type, at, by_actor, on_behalf_of, command_id, payload "
        "FROM events WHERE project = %s ORDER BY version",
        (project,),
    )
    previous = GENESIS
    for seq, *event_row in rows:
        digest = event_hash(previous, event_from_row(event_row))
        place.sql("UPDATE events SET hash = %s WHERE seq = %s", (bytes.fromhex(digest), seq))
        previous = digest
    [(version, state)] = place.sql(
        "SELECT version, state FROM snapshots WHERE project = %s", (project,)
    )
    place.sql(
        "UPDATE snapshots SET digest = %s WHERE project = %s",
        (snapshot_digest(project, version, previous, unpack_state(state)), project),
    )


def edit_snapshot(place: Place, project: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` in the project's snapshot as the store packs it (zlib, a
    public format), leaving its digest as it was; return the new state text."""
    [(state,)] = place.sql("SELECT state FROM snapshots WHERE project = %s", (project,))
    text = unpack_state(state).replace(old, new)
    place.sql("UPDATE snapshots SET state = %s WHERE project = %s", (pack_state(text), project))
    return text


class TestAClean:
    def test_store_verifies_and_is_anchored_once_sealed(self, place: Place, key_file: Path) -> None:
        county(place)
        report = verify(place, key_file)
        assert report.ok and report.anchor is None
        assert report.unanchored == "no checkpoint was checked"
        checkpoint = seal(place.open(), load_key(key_file))
        assert [head[0] for head in checkpoint.heads] == ["P1", "P2"]
        report = verify(place, key_file)
        assert report.ok, report.findings
        assert report.anchor is not None and "checkpoint 1" in report.anchor
        assert (report.projects, report.events) == (2, sum(h[1] for h in checkpoint.heads))

    def test_store_keeps_verifying_as_commands_go_on_after_the_seal(
        self, place: Place, key_file: Path
    ) -> None:
        """A sealed head is a prefix: the chains growing past it is no finding."""
        found_county = county(place)
        seal(place.open(), load_key(key_file))
        found_county.do("accept", "P2", "o_fgw", command_id="accept-fgw")
        assert verify(place, key_file).ok


class TestAttacks:
    def test_an_appended_event_hashed_with_the_public_function(
        self, place: Place, key_file: Path
    ) -> None:
        """A forged event appended with the right hash and the version moved on: its command
        id has no record and the report row disagrees with the replay; put in place of a
        sealed event instead, the checkpoint catches it."""
        county(place)
        seal(place.open(), load_key(key_file))
        [(version, head, at)] = place.sql(
            "SELECT e.version, e.hash, e.at FROM events e JOIN projects p "
            "ON p.project = e.project AND p.version = e.version WHERE e.project = 'P2'"
        )
        forged = Event(
            "P2",
            version + 1,
            "funds_reported",
            event_from_row(("P2", 1, "x", at, None, None, None, "{}")).at,
            {"amount": 10**12},
            by="fuyuan",
            command_id="forged-1",
        )
        place.sql(
            "INSERT INTO events (project, version, type, at, by_actor, on_behalf_of, "
            "command_id, payload, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                "P2",
                forged.version,
                forged.type,
                at,
                "fuyuan",
                None,
                "forged-1",
                json.dumps(forged.payload),
                bytes.fromhex(event_hash(bytes(head).hex(), forged)),
            ),
        )
        place.sql("UPDATE projects SET version = version + 1 WHERE project = 'P2'")
        report = verify(place, key_file)
        assert ("P2", "command") in found(report)
        assert ("P2", "projection") in found(report)
        # The same forged event in place of the newest sealed one.
        place.sql("DELETE FROM events WHERE project = 'P2' AND version >= %s", (version,))
        replaced = Event(
            "P2", version, forged.type, forged.at, forged.payload, by="fuyuan", command_id=None
        )
        [(previous,)] = place.sql(
            "SELECT hash FROM events WHERE project = 'P2' AND version = %s", (version - 1,)
        )
        place.sql(
            "INSERT INTO events (project, version, type, at, by_actor, payload, hash) "
            "VALUES ('P2', %s, %s, %s, 'fuyuan', %s, %s)",
            (
                version,
                forged.type,
                at,
                json.dumps(forged.payload),
                bytes.fromhex(event_hash(bytes(previous).hex(), replaced)),
            ),
        )
        place.sql("UPDATE projects SET version = %s WHERE project = 'P2'", (version,))
        report = verify(place, key_file)
        assert any(
            f.project == "P2" and f.what == "checkpoint" and "rewritten" in f.detail
            for f in report.findings
        )

    def test_deleting_the_newest_events_and_rewinding_the_version(
        self, place: Place, key_file: Path
    ) -> None:
        """Every record made to agree with the shorter chain: only the checkpoint tells."""
        county(place)
        seal(place.open(), load_key(key_file))
        [(version,)] = place.sql("SELECT version FROM projects WHERE project = 'P2'")
        place.sql("DELETE FROM events WHERE project = 'P2' AND version > %s", (version - 2,))
        place.sql("UPDATE projects SET version = %s WHERE project = 'P2'", (version - 2,))
        place.sql("DELETE FROM snapshots WHERE project = 'P2'")
        place.sql("DELETE FROM commands WHERE project = 'P2' AND last_version > %s", (version - 2,))
        place.sql("DELETE FROM project_summaries WHERE project = 'P2'")
        rebuilt = place.open()
        rebuilt.rebuild_projections()
        report = verify(place, key_file)
        assert [(f.project, f.what) for f in report.findings] == [("P2", "checkpoint")]
        assert "newest events were removed" in report.findings[0].detail
        # Without the key the store's own checkpoint still disagrees, but vouches for nothing;
        # with it deleted too, nothing is found: which is why the report says unanchored.
        unchecked = verify(place, None)
        assert not unchecked.ok and unchecked.anchor is None
        place.sql("DELETE FROM checkpoints")
        unanchored = verify(place, key_file)
        assert unanchored.ok and unanchored.anchor is None
        assert unanchored.unanchored == "no checkpoint was checked"

    def test_editing_the_snapshot_is_refused_by_the_next_command_show_and_verify(
        self, place: Place, key_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Stage set to decision.approved in the snapshot row: the next engine folds the
        events instead, so ``sign`` is refused and ``show`` shows the stage the events say."""
        county(place)
        state = edit_snapshot(
            place, "P1", '"stage":"decision.pending"', '"stage":"decision.approved"'
        )
        assert '"stage":"decision.approved"' in state
        assert main(["show", "P1", "--store", place.url]) == 0
        shown = capsys.readouterr().out
        assert "decision.pending" in shown and "decision.approved" not in shown
        fresh = County(store=place.open())
        assert fresh.stage("P1") == "decision.pending"
        with pytest.raises(InvalidTransition, match=r"decision\.pending"):
            fresh.do("sign", "P1", "guo")
        report = verify(place, key_file)
        snapshot = [f for f in report.findings if f.what == "snapshot"]
        assert {f.project for f in snapshot} == {"P1"}
        assert any("digest does not match" in f.detail for f in snapshot)
        assert any("not the replay's" in f.detail for f in snapshot)

    def test_a_snapshot_with_a_recomputed_digest_is_caught_by_the_replay(
        self, place: Place
    ) -> None:
        county(place)
        edit_snapshot(place, "P1", '"stage":"decision.pending"', '"stage":"decision.approved"')
        rechain(place, "P1")
        report = verify(place)
        assert [(f.project, f.what, f.detail) for f in report.findings] == [
            ("P1", "snapshot", "the state it holds is not the replay's")
        ]

    def test_a_snapshot_that_does_not_unpack_is_folded_over_and_reported(
        self, place: Place
    ) -> None:
        """Bytes that are not compressed JSON in the snapshot row: loads fold the events
        (the stage is the events'), and verify names the row."""
        county(place)
        place.sql("UPDATE snapshots SET state = %s WHERE project = 'P1'", (b"not zlib",))
        assert County(store=place.open()).stage("P1") == "decision.pending"
        report = verify(place)
        assert {(f.project, f.what) for f in report.findings} == {("P1", "snapshot")}
        assert any("digest does not match" in f.detail for f in report.findings)

    def test_deleting_timer_rows(self, place: Place) -> None:
        """Every deadline P2's branches wait on is named."""
        county(place)
        place.sql("DELETE FROM timers WHERE project = 'P2'")
        report = verify(place)
        timers = [f for f in report.findings if f.what == "timer"]
        assert {f.project for f in timers} == {"P2"}
        assert {f.where for f in timers} >= {"timer branch_limit/zj", "timer branch_limit/fgw"}
        assert all("never fire" in f.detail for f in timers)

    def test_deleting_command_rows(self, place: Place) -> None:
        """Events whose command id lost its record are named: a retry would apply twice."""
        county(place)
        place.sql("DELETE FROM commands WHERE command_id IN ('accept-zj', 'funds-1')")
        report = verify(place)
        commands = [f for f in report.findings if f.what == "command"]
        assert {f.project for f in commands} == {"P2"}
        assert len(commands) == 2 and all("no command record" in f.detail for f in commands)

    def test_a_full_recomputation_of_one_projects_chain(
        self, place: Place, key_file: Path, tmp_path: Path
    ) -> None:
        """An event of P1 edited (who acted) and the chain and snapshot digest
        recomputed: the chains are consistent; the checkpoint's head is not in P1's chain. A
        checkpoint forged in the table to match does not verify with the county's key, and the
        county's own copy still tells."""
        county(place)
        kept = seal(place.open(), load_key(key_file))
        (tmp_path / "kept.json").write_text(kept.to_json(), encoding="utf-8")
        place.sql("UPDATE events SET by_actor = 'mallory' WHERE project = 'P1' AND version = 5")
        assert ("P1", "chain") in found(verify(place))
        rechain(place, "P1")
        assert verify(place, anchored=False).ok  # consistent, as far as replay can tell
        report = verify(place, key_file)
        assert [(f.project, f.what) for f in report.findings] == [("P1", "checkpoint")]
        assert "rewritten" in report.findings[0].detail
        attacker = tmp_path / "attacker.key"
        attacker.write_bytes(b"a" * 40)
        seal(place.open(), load_key(attacker))
        report = verify(place, key_file)
        assert report.anchor is None
        assert any(f.what == "checkpoint" and "not the" in f.detail for f in report.findings)
        own = Checkpoint.from_json((tmp_path / "kept.json").read_text(encoding="utf-8"))
        report = verify(place, key_file, checkpoint=own)
        assert report.anchor is not None
        assert [(f.project, f.what) for f in report.findings] == [("P1", "checkpoint")]

    def test_a_forged_checkpoint_document_does_not_verify(
        self, place: Place, key_file: Path
    ) -> None:
        county(place)
        kept = seal(place.open(), load_key(key_file))
        heads = list(kept.heads)
        heads[0] = (heads[0][0], heads[0][1] - 1, heads[0][2])
        forged = Checkpoint(
            kept.sealed_at, tuple(heads), kept.digest, kept.algorithm, kept.key_id, kept.signature
        )
        report = verify(place, key_file, checkpoint=forged)
        assert report.anchor is None
        details = [f.detail for f in report.findings if f.what == "checkpoint"]
        assert any("does not verify" in d for d in details)
        assert any("digest does not match" in d for d in details)


class TestMigratedStores:
    def _make_old(self, place: Place) -> ChainHead:
        """Turn the store into what the schema before per-project chains kept: one store-wide
        chain in seq order, no snapshot digests, no v7 tables; return the head `audit verify`
        printed then."""
        place.to_version_8()
        rows = place.sql(
            "SELECT seq, project, version, type, at, by_actor, on_behalf_of, command_id, payload "
            "FROM events ORDER BY seq"
        )
        head = GENESIS
        for seq, *event_row in rows:
            digest = chain_hash(head, canonical_event_json(event_from_row(event_row)))
            place.sql(
                "UPDATE events SET hash = %s, prev_hash = %s WHERE seq = %s", (digest, head, seq)
            )
            head = digest
        place.sql("ALTER TABLE snapshots DROP COLUMN digest")
        place.sql("DROP TABLE audit_legacy")
        place.sql("DROP TABLE checkpoints")
        if place.kind == "postgres":
            place.sql("ALTER TABLE events ALTER COLUMN seq DROP IDENTITY")
        before = next(step.version for step in schema.MIGRATIONS if step.rechain) - 1
        place.sql("UPDATE meta SET schema_version = %s", (before,))
        return ChainHead(len(rows), head)

    def test_an_old_store_is_migrated_and_verifies_with_its_old_head(
        self, place: Place, key_file: Path
    ) -> None:
        first = county(place)
        first.engine.store.close()
        old_head = self._make_old(place)
        store = place.open()  # migrates
        legacy = store.legacy_head()
        assert legacy is not None and legacy.verified
        assert (legacy.events, legacy.head) == (old_head.count, old_head.hash)
        report = verify(place)
        assert report.ok, report.findings
        assert verify(place, expected_head=old_head).ok
        wrong = ChainHead(old_head.count, "f" * 64)
        assert "expected" in {f.what for f in verify(place, expected_head=wrong).findings}
        # The migrated store takes commands and seals like any other.
        again = County(store=place.open())
        again.do("accept", "P2", "o_fgw", command_id="accept-fgw")
        seal(place.open(), load_key(key_file))
        assert verify(place, key_file).ok
        # An edit to a pre-migration event is caught by its chain and by the old one.
        place.sql("UPDATE events SET by_actor = 'mallory' WHERE project = 'P1' AND version = 3")
        assert {"chain", "legacy"} <= {f.what for f in verify(place).findings}

    def test_a_version_8_store_is_compacted_and_keeps_verifying(
        self, place: Place, key_file: Path
    ) -> None:
        """Schema version 9 keeps hashes as 32 bytes without prev_hash and compresses the
        snapshots: the store's head, a checkpoint sealed before the migration and every
        snapshot's digest still hold, and an event edited before it is still caught."""
        first = county(place)
        first.engine.store.close()
        sealer = place.open()
        kept = seal(sealer, load_key(key_file))
        head = sealer.chain_head()
        sealer.close()
        place.to_version_8()
        place.sql("UPDATE events SET by_actor = 'mallory' WHERE project = 'P1' AND version = 3")
        store = place.open()  # migrates
        assert store.chain_head() == head
        [(stored,)] = place.sql("SELECT hash FROM events WHERE project = 'P2' AND version = 1")
        assert isinstance(stored, bytes) and len(stored) == 32
        report = verify(place, key_file, checkpoint=kept)
        assert report.anchor is not None
        assert [(f.project, f.what, f.where) for f in report.findings] == [
            ("P1", "chain", "version 3")
        ]
        assert "edited" in report.findings[0].detail
        # The snapshots' digests hold: loads trust them, and commands go on.
        again = County(store=place.open())
        again.do("accept", "P2", "o_fgw", command_id="accept-fgw")
        assert again.stage("P2") == "approval"
        assert [(f.project, f.what) for f in verify(place, key_file).findings] == [("P1", "chain")]

    def test_a_version_8_hash_that_is_not_hex_stays_a_finding(self, place: Place) -> None:
        """A hash edited into text that is no digest keeps its bytes through the migration: the
        chain check still names the event."""
        county(place).engine.store.close()
        place.to_version_8()
        place.sql("UPDATE events SET hash = 'not a hash' WHERE project = 'P2' AND version = 2")
        place.open()  # migrates
        report = verify(place, anchored=False)
        assert [(f.project, f.what, f.where) for f in report.findings] == [
            ("P2", "chain", "version 2")
        ]

    def test_an_old_store_that_did_not_verify_says_so_after_the_migration(
        self, place: Place
    ) -> None:
        county(place).engine.store.close()
        self._make_old(place)
        place.sql("UPDATE events SET payload = '{\"amount\":1}' WHERE seq = 3")
        store = place.open()
        legacy = store.legacy_head()
        assert legacy is not None and not legacy.verified
        assert legacy.reason is not None and "event 3" in legacy.reason
        assert "legacy" in {f.what for f in verify(place).findings}


class TestTheCommandLine:
    def test_seal_verify_and_require_anchor(
        self, place: Place, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        county(place)
        url = place.url
        assert main(["audit", "verify", "--store", url]) == 0
        assert "unanchored: no checkpoint was checked" in capsys.readouterr().out
        assert main(["audit", "verify", "--store", url, "--require-anchor"]) == 1
        capsys.readouterr()
        out = tmp_path / "cp.json"
        assert (
            main(["audit", "seal", "--store", url, "--key-file", str(key_file), "--out", str(out)])
            == 0
        )
        assert "sealed: county default, 2 projects" in capsys.readouterr().out
        assert Checkpoint.from_json(out.read_text(encoding="utf-8")).heads
        assert (
            main(["audit", "seal", "--store", url, "--key-file", str(key_file), "--out", str(out)])
            == 2
        )
        assert "cannot create" in capsys.readouterr().err
        args = ["audit", "verify", "--store", url, "--key-file", str(key_file), "--require-anchor"]
        assert main(args) == 0
        assert "anchored: checkpoint 1" in capsys.readouterr().out
        assert main([*args, "--checkpoint", str(out), "--json"]) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["ok"] and document["anchor"] and document["findings"] == []
        place.sql("DELETE FROM timers WHERE project = 'P2'")
        assert main(args) == 1
        printed = capsys.readouterr().out
        assert printed.startswith("FAIL: ") and "P2, timer branch_limit/zj" in printed

    def test_bad_keys_are_usage_errors(
        self, place: Place, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        county(place)
        short = tmp_path / "short.key"
        short.write_bytes(b"secret")
        assert main(["audit", "seal", "--store", place.url, "--key-file", str(short)]) == 2
        assert "at least 32" in capsys.readouterr().err
        missing = str(tmp_path / "none.key")
        assert main(["audit", "verify", "--store", place.url, "--key-file", missing]) == 2
        assert "cannot read the key file" in capsys.readouterr().err
        with pytest.raises(CheckpointError):
            Checkpoint.from_json("{}")


class TestCounties:
    """A checkpoint names the county whose view it seals, and is refused on another county's
    view; one sealed before checkpoints named their county is the default county's (D299)."""

    @staticmethod
    def two_counties(place: Place) -> Any:
        """Huguan's HG1 and Jiaocheng's JC1 on one store, each on its county's view."""
        store = place.open()
        County(store=store.for_county("huguan")).to_pre_review("HG1")
        County(store=store.for_county("jiaocheng")).to_pre_review("JC1")
        return store

    def test_a_checkpoint_says_its_county_and_fails_on_another_county_s_view(
        self, place: Place, key_file: Path
    ) -> None:
        store = self.two_counties(place)
        key = load_key(key_file)
        huguan, jiaocheng = store.for_county("huguan"), store.for_county("jiaocheng")
        checkpoint = seal(huguan, key)
        assert checkpoint.county == "huguan"
        assert [head[0] for head in checkpoint.heads] == ["HG1"]
        document = json.loads(checkpoint.to_json())
        assert (document["format"], document["county"]) == ("approvalflow.checkpoint/2", "huguan")
        assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint
        report = verify_store(huguan, checkpoint=checkpoint, key=key)
        assert report.ok and report.anchor is not None and "county huguan" in report.anchor
        report = verify_store(jiaocheng, checkpoint=checkpoint, key=key)
        assert not report.ok and report.anchor is None
        [finding] = report.findings
        assert (finding.project, finding.what) == (None, "checkpoint")
        assert "seals county huguan's view, and this is county jiaocheng's" in finding.detail
        # The unscoped store is the default county's, and seals as it.
        assert seal(place.open(), key).county == "default"
        assert not verify_store(place.open(), checkpoint=checkpoint, key=key).ok

    def test_the_county_is_signed(self, place: Place, key_file: Path) -> None:
        """Renaming the county in a kept checkpoint breaks its signature."""
        store = self.two_counties(place)
        key = load_key(key_file)
        kept = seal(store.for_county("huguan"), key)
        moved = Checkpoint.from_json(kept.to_json().replace('"huguan"', '"jiaocheng"'))
        assert moved.county == "jiaocheng"
        report = verify_store(store.for_county("jiaocheng"), checkpoint=moved, key=key)
        assert report.anchor is None
        assert any("does not verify" in f.detail for f in report.findings)

    def test_a_checkpoint_from_before_counties_verifies_as_the_default_county(
        self, place: Place, key_file: Path
    ) -> None:
        """A format-1 document (no county), signed as the earlier release signed it, anchors
        the unscoped store, and is refused on a county's view."""
        county(place)
        key = load_key(key_file)
        heads = [list(head) for head in seal(place.open(), key).heads]
        sealed = {
            "format": "approvalflow.checkpoint/1",
            "sealed_at": "2026-03-02T01:00:00Z",
            "heads": heads,
            "digest": newest_checkpoint(place.open()).digest,  # type: ignore[union-attr]
            "algorithm": key.algorithm,
            "key_id": key.key_id,
        }
        text = json.dumps(sealed, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        old = Checkpoint.from_json(
            json.dumps({**sealed, "signature": key.sign(text.encode())}, ensure_ascii=False)
        )
        assert old.county is None and old.sealed_county == "default"
        report = verify(place, key_file, checkpoint=old)
        assert report.ok and report.anchor is not None, report.findings
        assert not verify_store(place.open().for_county("huguan"), checkpoint=old, key=key).ok

    def test_the_command_line_seals_and_verifies_one_county_s_view(
        self,
        place: Place,
        key_file: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.two_counties(place)
        counties = tmp_path / "counties.yaml"
        counties.write_text(
            "counties:\n"
            f"  huguan: {{name: 壶关县, store: '{place.url}'}}\n"
            f"  jiaocheng: {{name: 交城县, store: '{place.url}'}}\n",
            encoding="utf-8",
        )
        where = ["--counties", str(counties)]
        out = tmp_path / "huguan.json"
        seal_args = ["audit", "seal", *where, "--county", "huguan", "--key-file", str(key_file)]
        assert main([*seal_args, "--out", str(out)]) == 0
        assert "sealed: county huguan, 1 projects" in capsys.readouterr().out
        verify_args = ["audit", "verify", *where, "--key-file", str(key_file)]
        checked = [*verify_args, "--checkpoint", str(out), "--require-anchor"]
        assert main([*checked, "--county", "huguan"]) == 0
        assert "anchored: checkpoint of county huguan" in capsys.readouterr().out
        assert main([*checked, "--county", "jiaocheng"]) == 1
        printed = capsys.readouterr().out
        assert printed.startswith("FAIL: 1 findings")
        assert "seals county huguan's view, and this is county jiaocheng's" in printed
        # Each county's newest checkpoint is its own.
        assert main([*verify_args, "--county", "jiaocheng", "--require-anchor"]) == 1
        assert "no checkpoint" in capsys.readouterr().out
        assert main(["audit", "verify", "--store", place.url, "--county", "huguan"]) == 2
        assert "--county needs --counties" in capsys.readouterr().err


def test_ed25519_keys_seal_and_their_public_key_checks(place: Place, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "seal.pem").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "seal.pub").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    county(place)
    public = load_key(tmp_path / "seal.pub")
    assert not public.can_sign
    with pytest.raises(CheckpointError, match="cannot seal"):
        seal(place.open(), public)
    seal(place.open(), load_key(tmp_path / "seal.pem"))
    report = verify(place, tmp_path / "seal.pub")
    assert report.ok and report.anchor is not None and "ed25519" in report.anchor


class TestOverHTTP:
    """``GET /audit/verify`` checks what ``audit verify`` checks, the timers and the newest
    checkpoint's heads included (D188); the service holds only a public key, if any."""

    @staticmethod
    def ed25519_files(tmp_path: Path) -> tuple[Path, Path]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519

        private = ed25519.Ed25519PrivateKey.generate()
        sealing, public = tmp_path / "seal.pem", tmp_path / "seal.pub"
        sealing.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public.write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return sealing, public

    @staticmethod
    def verify_over_http(place: Place, audit_key: Any = None) -> dict[str, Any]:
        pytest.importorskip("litestar", reason="the server extra is not installed")
        from builders import county_actors
        from litestar.testing import TestClient

        from approvalflow.server import create_app, issue_token

        store = place.open()
        token, _ = issue_token(store, "audit", trusted=True)
        app = create_app(store=store, actors=county_actors(), audit_key=audit_key)
        with TestClient(app) as client:
            answer = client.get("/audit/verify", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        report: dict[str, Any] = answer.json()
        return report

    def test_a_deleted_timer_row_is_caught(self, place: Place) -> None:
        county(place)
        assert self.verify_over_http(place)["ok"] is True
        place.sql("DELETE FROM timers WHERE project = 'P2'")
        report = self.verify_over_http(place)
        assert report["ok"] is False
        timers = [f for f in report["findings"] if f["what"] == "timer"]
        assert {f["project"] for f in timers} == {"P2"}
        assert {f["where"] for f in timers} >= {"timer branch_limit/zj", "timer branch_limit/fgw"}
        assert report["reason"].startswith("P2, timer ")
        assert report["first_bad_version"] is None

    def test_unanchored_without_a_checkpoint_or_without_the_public_key(
        self, place: Place, tmp_path: Path
    ) -> None:
        county(place)
        report = self.verify_over_http(place)
        assert (report["ok"], report["anchor"]) == (True, None)
        assert "no checkpoint" in report["unanchored"]
        sealing, _ = self.ed25519_files(tmp_path)
        seal(place.open(), load_key(sealing))
        report = self.verify_over_http(place)
        assert (report["ok"], report["anchor"]) == (True, None)
        assert "no public key" in report["unanchored"]

    def test_the_public_key_anchors_and_a_rewritten_chain_is_caught(
        self, place: Place, tmp_path: Path
    ) -> None:
        county(place)
        sealing, public = self.ed25519_files(tmp_path)
        seal(place.open(), load_key(sealing))
        key = load_key(public)
        report = self.verify_over_http(place, key)
        assert report["ok"] is True and "ed25519" in report["anchor"]
        assert report["unanchored"] is None
        # The newest events gone and every record made to agree: only the sealed heads tell.
        [(version,)] = place.sql("SELECT version FROM projects WHERE project = 'P2'")
        place.sql("DELETE FROM events WHERE project = 'P2' AND version > %s", (version - 2,))
        place.sql("UPDATE projects SET version = %s WHERE project = 'P2'", (version - 2,))
        place.sql("DELETE FROM snapshots WHERE project = 'P2'")
        place.sql("DELETE FROM commands WHERE project = 'P2' AND last_version > %s", (version - 2,))
        place.sql("DELETE FROM project_summaries WHERE project = 'P2'")
        place.open().rebuild_projections()
        report = self.verify_over_http(place, key)
        assert report["ok"] is False
        assert [(f["project"], f["what"]) for f in report["findings"]] == [("P2", "checkpoint")]
        assert report["reason"].startswith("P2, ")

    def test_the_service_refuses_a_key_that_can_seal(self, place: Place, tmp_path: Path) -> None:
        pytest.importorskip("litestar", reason="the server extra is not installed")
        from approvalflow.server import create_app

        sealing, _ = self.ed25519_files(tmp_path)
        with pytest.raises(CheckpointError, match="public key"):
            create_app(store=place.open(), audit_key=load_key(sealing))
        url = place.url
        assert main(["serve", "--store", url, "--audit-public-key", str(sealing)]) == 2
