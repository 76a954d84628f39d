"""ProjectState.clone is copy-on-write: changing a clone never changes the original."""

from __future__ import annotations

from builders import County

from approvalflow.model import Event


def test_folding_into_a_clone_leaves_the_original_untouched() -> None:
    """Branch, round and meeting writes go to the clone's own copies."""
    county = County()
    county.to_approval()
    original = county.engine.store.load("P1")
    assert original is not None
    before = county.engine.project("P1")
    clone = original.clone()
    at = county.clock.now()
    for offset, (event_type, payload) in enumerate(
        [
            ("branch_changed", {"department": "zj", "from": "pending", "to": "accepted"}),
            ("materials_supplied", {"materials": ["site_photos"]}),
            ("branch_overdue", {"department": "fgw"}),
        ],
        start=1,
    ):
        clone.apply(Event("P1", original.version + offset, event_type, at, payload))
    assert clone.branches["zj"].state == "accepted" and clone.branches["fgw"].overdue_sent
    assert original == before
    assert original.branches["zj"].state == "pending"
    assert original.branches["fgw"].overdue_sent is False


def test_a_round_and_a_meeting_are_copied_before_a_write() -> None:
    """Opinions and votes recorded in a clone do not appear in the original."""
    county = County()
    county.to_pre_review()
    original = county.engine.store.load("P1")
    assert original is not None and original.round is not None
    clone = original.clone()
    clone.apply(
        Event(
            "P1",
            original.version + 1,
            "opinion_given",
            county.clock.now(),
            {"unit": "gxj", "verdict": "pass", "missing": []},
        )
    )
    assert "gxj" in clone.round.opinions  # type: ignore[union-attr]
    assert original.round.opinions == {}
