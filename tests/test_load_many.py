"""Reading many projects at once (``Store.load_many``, ``Engine.projects``) and a project's views
from one read (``Engine.holdups_of``, ``Engine.deadlines_of``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import County
from conftest import two_store_objects

from approvalflow.errors import InvalidCommand
from approvalflow.stores import sql
from approvalflow.testing.store_conformance import append, new_project

FUNDS = ("funds_reported", {"amount": 1})


@pytest.fixture(params=["sqlite", "postgres"])
def two_objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    with two_store_objects(request.param, request, tmp_path) as pair:
        yield pair


class TestSQLStoreLoadMany:
    def test_projects_with_a_snapshot_are_read_in_batches_without_load(
        self, two_objects: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Seven projects another store object wrote (so none is in this one's cache), some
        with events after their snapshot, in batches of three: every one comes back as the
        writer loads it, and none through ``load``."""
        store, other = two_objects
        ids = [f"P{i}" for i in range(7)]
        for number, project in enumerate(ids):
            append(other, new_project(other, project), [FUNDS] * number)
        monkeypatch.setattr(sql, "_LOAD_BATCH", 3)

        def no_load(project: str) -> None:
            raise AssertionError(f"{project} was read by load")

        monkeypatch.setattr(store, "load", no_load)
        found = store.load_many(list(reversed(ids)))
        assert list(found) == list(reversed(ids))
        assert all(found[p] == other.load(p) for p in ids)
        assert [found[p].funds for p in ids] == list(range(7))

    def test_a_snapshot_written_between_the_two_queries_is_read_by_load(
        self, two_objects: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another writer commits a snapshot after the snapshots were read and before the
        events after them are: the project is read again by ``load``, whole and newest."""
        store, other = two_objects
        append(other, new_project(other, "P1"), [FUNDS] * 3)
        append(other, new_project(other, "P2"), [FUNDS] * 3)
        events_after = store._sql.events_after_snapshots

        def moved_in_between(projects: Any) -> Any:
            state = append(other, other.load("P1"), [FUNDS] * 20)  # a new snapshot, at 24
            append(other, state, [FUNDS] * 2)  # and events after it, 25 and 26
            return events_after(projects)

        monkeypatch.setattr(store._sql, "events_after_snapshots", moved_in_between)
        loads: list[str] = []
        load = store.load
        monkeypatch.setattr(store, "load", lambda p: loads.append(p) or load(p))
        found = store.load_many(["P1", "P2"])
        assert loads == ["P1"]
        assert found["P1"].version == 26 and found["P1"] == other.load("P1")
        assert found["P2"].version == 4

    def test_a_cached_state_still_current_is_not_decoded_again(
        self, two_objects: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The writer's own cache answers for a project no one moved since; one another writer
        moved is read from the database."""
        store, other = two_objects
        append(store, new_project(store, "P1"), [FUNDS] * 3)
        moved = append(store, new_project(store, "P2"), [FUNDS] * 3)
        append(other, other.load("P2") or moved, [FUNDS])
        decoded: list[str] = []
        state_from_json = sql.state_from_json
        monkeypatch.setattr(
            sql, "state_from_json", lambda text: decoded.append(text) or state_from_json(text)
        )
        found = store.load_many(["P1", "P2"])
        assert (found["P1"].version, found["P2"].version) == (4, 5)
        assert len(decoded) == 1 and '"P2"' in decoded[0]


class TestOneRead:
    def test_holdups_and_deadlines_of_a_state_are_those_of_its_project(self) -> None:
        county = County()
        county.to_approval()
        county.do("return", "P1", "o_zj", corrections=["site_photos"])
        engine = county.engine
        state = engine.project("P1")
        assert engine.holdups_of(state) == engine.holdups("P1")
        assert engine.deadlines_of(state) == engine.deadlines("P1")
        assert engine.allowed_commands_of(state) == engine.allowed_commands("P1")
        assert engine.holdups_of(state)  # the branches and the applicant hold it up

    @pytest.mark.parametrize("method", ["holdups_of", "deadlines_of", "allowed_commands_of"])
    def test_a_project_id_in_place_of_a_state_is_refused(self, method: str) -> None:
        county = County()
        county.to_approval()
        with pytest.raises(InvalidCommand, match=f"{method} takes a project's state"):
            getattr(county.engine, method)("P1")

    def test_projects_gives_a_state_per_id_named_and_each_is_its_own(self) -> None:
        county = County()
        county.to_approval("P1")
        county.to_approval("P2")
        states = county.engine.projects(["P2", "NOPE", "P1", "P2"])
        assert [s.id for s in states] == ["P2", "P1", "P2"]
        assert states[0] == states[2] and states[0] is not states[2]


def test_show_s_timeline_ends_at_the_version_it_shows() -> None:
    """A state read before a commit is shown with the timeline it had: the later event is not
    listed under it (the same one-read rule as the views above)."""
    from datetime import datetime

    from approvalflow.calendar import SHANGHAI
    from approvalflow.cli.show import render

    county = County()
    county.to_approval()
    before = county.engine.project("P1")
    county.do("return", "P1", "o_zj", corrections=["site_photos"])
    now = datetime(2026, 3, 3, 9, 0, tzinfo=SHANGHAI)
    later = f"v{before.version + 1:<4}branch_changed"
    assert later not in render(county.engine, before, now)
    assert later in render(county.engine, county.engine.project("P1"), now)
