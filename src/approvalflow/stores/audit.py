"""The audit chain: every stored event is linked to the one stored before it by a hash.

The SQL stores keep one chain per store, in commit order: event number ``seq`` (1, 2, 3...
across all projects) carries ``prev_hash`` (the hash of event ``seq - 1``, or ``GENESIS``) and
``hash = sha256(prev_hash + canonical JSON of the event)``. One global order, rather than one
chain per project, means a single head (count, hash) vouches for the whole store; the price is
that appends are serialised store-wide, which SQLite does anyway and PostgreSQL does for the
instant a commit appends.

``verify_chain`` recomputes everything from the stored events and reports the first event that
does not fit: an edited event (its hash no longer matches its content), a removed, inserted or
reordered one (a ``prev_hash`` or ``seq`` that does not follow), or versions of a project that
do not follow one another. Removing the *newest* events leaves a shorter but consistent chain:
each project's recorded version (which every commit sets anyway) catches that unless it was
rewritten too, and a head the caller kept elsewhere (``expected_head``) catches it even then.
Someone able to rewrite every hash after an edit is caught only by such an external head.

This module knows no database: a backend offers ``iter_chain()``, ``chain_head()`` and
``project_versions()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import attrs

from approvalflow.model import Event
from approvalflow.stores.serialization import canonical_event_json

__all__ = [
    "GENESIS",
    "ChainHead",
    "ChainLink",
    "ChainReport",
    "ChainSource",
    "chain_hash",
    "event_hash",
    "verify_chain",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first event in a store."""


def event_hash(prev_hash: str, event: Event) -> str:
    """``sha256(prev_hash + canonical JSON of the event)`` as 64 hex digits."""
    return chain_hash(prev_hash, canonical_event_json(event))


def chain_hash(prev_hash: str, canonical_json: str) -> str:
    """``event_hash`` for an event already rendered by ``canonical_event_json``."""
    return hashlib.sha256((prev_hash + canonical_json).encode("utf-8")).hexdigest()


@attrs.frozen
class ChainHead:
    """How long the chain is and the hash of its newest event (``GENESIS`` when empty).

    Keep one somewhere the database's administrators cannot write (a log, a signed report) and
    pass it to ``verify_chain`` later: any removal or edit up to that point is then detected.
    """

    count: int
    hash: str


@attrs.frozen
class ChainLink:
    """One stored event with its place in the chain, exactly as the store holds it."""

    seq: int
    event: Event
    hash: str
    prev_hash: str


@runtime_checkable
class ChainSource(Protocol):
    """A store that keeps an audit chain (both SQL stores do; the memory store does not)."""

    def iter_chain(self) -> Iterator[ChainLink]:
        """Every stored event with its chain columns, in ``seq`` order."""

    def chain_head(self) -> ChainHead:
        """The newest event's ``seq`` and hash (``ChainHead(0, GENESIS)`` when empty)."""

    def project_versions(self) -> dict[str, int]:
        """Each project's version as its last commit recorded it, apart from its events."""


@attrs.frozen
class ChainReport:
    """What ``verify_chain`` found.

    ``ok`` is true only if every event fits; then ``first_bad`` and ``reason`` are ``None``.
    ``count`` and ``head`` describe the chain as recomputed up to where checking stopped.
    ``first_bad`` names the first event that does not fit as ``(project, version)``, or is
    ``None`` when the fault is not in one event (the newest events are missing).
    """

    ok: bool
    count: int
    head: str
    first_bad: tuple[str, int] | None = None
    reason: str | None = None


def verify_chain(store: object, expected_head: ChainHead | None = None) -> ChainReport:
    """Recompute the whole audit chain of ``store`` and report the first fault.

    :param store: a store with an audit chain (``SQLiteStore``, ``PostgresStore`` or any
        ``ChainSource``); ``TypeError`` for one without (``MemoryStore``).
    :param expected_head: a head recorded earlier; the chain must still reach it unchanged.

    Events committed while this runs are not checked (checking stops at the head as it was when
    it started), so it is safe to run against a live store.
    """
    if not isinstance(store, ChainSource):
        raise TypeError(f"{type(store).__name__} keeps no audit chain")
    # Versions first, head second: every commit the versions reflect is then inside the head.
    recorded = store.project_versions()
    stop = store.chain_head().count
    count = 0
    head = GENESIS
    last_version: dict[str, int] = {}
    expected_reached = expected_head is None or expected_head.count == 0

    def bad(link: ChainLink, reason: str) -> ChainReport:
        return ChainReport(False, count, head, (link.event.project, link.event.version), reason)

    for link in store.iter_chain():
        if link.seq > stop:
            break  # committed after this check began
        event = link.event
        if link.seq != count + 1:
            return bad(link, f"seq {link.seq} follows seq {count}: events are missing")
        if link.prev_hash != head:
            return bad(
                link,
                f"prev_hash {link.prev_hash[:12]}... is not the hash of the event before it "
                f"({head[:12]}...): an event was removed, inserted or reordered",
            )
        recomputed = event_hash(head, event)
        if recomputed != link.hash:
            return bad(link, "its content does not match its hash: the event was edited")
        previous = last_version.get(event.project, 0)
        if event.version != previous + 1:
            return bad(
                link, f"version {event.version} of {event.project} follows version {previous}"
            )
        last_version[event.project] = event.version
        count, head = link.seq, recomputed
        if expected_head is not None and count == expected_head.count:
            if head != expected_head.hash:
                return bad(
                    link,
                    f"event {count} does not match the expected head {expected_head.hash[:12]}...",
                )
            expected_reached = True
    for project, version in recorded.items():
        if last_version.get(project, 0) < version:
            return ChainReport(
                False,
                count,
                head,
                None,
                f"{project} is at version {version} but its events end at version "
                f"{last_version.get(project, 0)}: its newest events were removed",
            )
    if not expected_reached:
        assert expected_head is not None
        return ChainReport(
            False,
            count,
            head,
            None,
            f"the chain has {count} events but {expected_head.count} were expected: "
            "the newest events were removed",
        )
    return ChainReport(True, count, head)
