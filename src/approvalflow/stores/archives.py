"""The archive form of a finished project: its events packed into one compressed row.

A finished project (D265) no command changes again, so its events need no row each: ``pack``
writes them as one JSON document compressed with zlib (``approvalflow.pack/1``: the project,
then each event's database number ``seq``, type, time, sender, principal, command id and
payload, by version), and the row keeps the chain's head (the hash of its last event) beside
it. The chain is unchanged: every event's hash is the one it had, recomputed from ``GENESIS``
by ``unpack``, which refuses a pack whose events do not hash to the stored head (an edited
event, or one taken out or put in); the audit replays the links as it replays the live rows
(``ChainLink``), and the sealed checkpoints still hold the projects' heads (D267).

This module knows no database: the SQL stores keep the pack in ``archives`` (schema version
13) and read it here; ``verify_packs`` checks rows of that table with no store around them, as
a detached PostgreSQL partition is checked on its own (D272).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from approvalflow.errors import (
    ApprovalflowError,
    ConcurrencyConflict,
    InvalidCommand,
    NotArchivable,
)
from approvalflow.model import Event
from approvalflow.project import ProjectState
from approvalflow.stores import schema
from approvalflow.stores.audit import GENESIS, ChainLink, Finding, event_hash
from approvalflow.stores.projections import ReadModel, all_task_rows, keeps_tasks
from approvalflow.stores.serialization import format_datetime, parse_datetime

__all__ = [
    "PACK_FORMAT",
    "Pack",
    "PackRow",
    "actors_of",
    "checked_archive_name",
    "pack",
    "unarchivable",
    "unpack",
    "verify_packs",
]

PACK_FORMAT = "approvalflow.pack/1"

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@attrs.frozen
class Pack:
    """One project's events as ``archives`` keeps them."""

    version: int
    last_seq: int
    head: bytes
    pack: bytes


@attrs.frozen
class PackRow:
    """A row of ``archives`` (or of a detached partition of it), as read."""

    county: str
    project: str
    archive: str
    version: int
    head: bytes
    pack: bytes


def checked_archive_name(name: object) -> str:
    """``name`` if it is an archive's name (``schema.ARCHIVE_NAME_PATTERN``), else
    ``InvalidCommand`` saying what one is."""
    if not isinstance(name, str) or schema.ARCHIVE_NAME_PATTERN.fullmatch(name) is None:
        raise InvalidCommand(
            f"archive name {name!r} is not one: a lower-case letter or digit, then up to 31 "
            "lower-case letters, digits or underscores (2026_q1)"
        )
    return name


def unarchivable(
    read_model: ReadModel, state: ProjectState, expected_version: int
) -> ApprovalflowError | None:
    """Why the store refuses to archive ``state`` (its version moved, or it still has an open
    task item by ``read_model``), or ``None``. The engine checks the stage and the derived
    timers before it asks (D265); the store checks what it keeps."""
    if state.version != expected_version:
        return ConcurrencyConflict(
            f"{state.id} is at version {state.version}, not {expected_version}"
        )
    if keeps_tasks(read_model) and all_task_rows(read_model.projection(state)):
        return NotArchivable(f"{state.id} still has open task items: a finished project has none")
    return None


def pack(project: str, links: Sequence[ChainLink]) -> Pack:
    """``links`` (the project's events with their ``seq`` and hash, versions 1..n) packed.

    :raises ValueError: no events, or not the versions 1..n of ``project``.
    """
    if not links:
        raise ValueError(f"{project} has no events to pack")
    rows: list[list[Any]] = []
    for position, link in enumerate(links, start=1):
        event = link.event
        if event.project != project or event.version != position:
            raise ValueError(f"event {event.project}@{event.version} is not {project}@{position}")
        rows.append(
            [
                link.seq,
                event.type,
                format_datetime(event.at),
                event.by,
                event.on_behalf_of,
                event.command_id,
                event.payload if isinstance(event.payload, dict) else dict(event.payload),
            ]
        )
    text = _COMPACT.encode({"format": PACK_FORMAT, "project": project, "events": rows})
    return Pack(
        version=len(links),
        last_seq=max(link.seq for link in links),
        head=bytes.fromhex(links[-1].hash),
        pack=zlib.compress(text.encode("utf-8"), 9),
    )


def unpack(project: str, packed: bytes, head: bytes) -> list[ChainLink]:
    """The events of a pack with their ``seq`` and hash (recomputed along the chain), by
    version.

    :raises ValueError: the pack does not unpack, is another project's or format's, or its
        events do not hash to ``head`` (the stored head: an event was edited, removed or put
        in, D267).
    """
    try:
        document = json.loads(zlib.decompress(bytes(packed)).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the pack of {project} does not unpack: {error}") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != PACK_FORMAT
        or document.get("project") != project
        or not isinstance(document.get("events"), list)
    ):
        raise ValueError(f"the pack of {project} is not an {PACK_FORMAT} pack of {project}")
    rows = document["events"]
    links: list[ChainLink] = []
    previous = GENESIS
    try:
        for version, (seq, type_, at, by, on_behalf_of, command_id, payload) in enumerate(
            rows, start=1
        ):
            event = Event(
                project=project,
                version=version,
                type=type_,
                at=parse_datetime(at),
                payload=payload,
                by=by,
                on_behalf_of=on_behalf_of,
                command_id=command_id,
            )
            previous = event_hash(previous, event)
            links.append(ChainLink(int(seq), event, previous))
    except (TypeError, ValueError) as error:
        raise ValueError(f"the pack of {project} holds an event that is not one: {error}") from None
    if not links or previous != bytes(head).hex():
        raise ValueError(
            f"the events in the pack of {project} do not hash to its stored head: the pack or "
            "its head was edited"
        )
    return links


def actors_of(links: Iterable[ChainLink]) -> set[str]:
    """Everyone who sent one of the events, or on whose behalf one was sent (已办)."""
    found: set[str] = set()
    for link in links:
        if link.event.by is not None:
            found.add(link.event.by)
        if link.event.on_behalf_of is not None:
            found.add(link.event.on_behalf_of)
    return found


def verify_packs(
    rows: Iterable[PackRow], sealed: dict[str, tuple[int, str]] | None = None
) -> tuple[int, int, list[Finding]]:
    """Check packs with nothing but their rows (a detached archive partition, D272): each
    unpacks, its chain runs from ``GENESIS`` to its stored head, its version is its event
    count, and, with ``sealed`` (a checkpoint's ``{project: (version, hash)}``, of the
    projects it sealed), each sealed head is on its chain. Returns the projects and events
    checked and every finding."""
    findings: list[Finding] = []
    projects = events = 0
    for row in rows:
        projects += 1

        def found(what: str, where: str, detail: str, row: PackRow = row) -> None:
            findings.append(Finding(row.project, what, where, detail, county=row.county))

        try:
            links = unpack(row.project, row.pack, row.head)
        except ValueError as error:
            found("chain", "its archive pack", str(error))
            continue
        events += len(links)
        if len(links) != row.version:
            found(
                "version",
                "its recorded version",
                f"the pack is at version {row.version} but holds {len(links)} events",
            )
        seal = (sealed or {}).get(row.project)
        if seal is not None:
            version, digest = seal
            if version > len(links) or links[version - 1].hash != digest:
                found(
                    "checkpoint",
                    f"version {version}",
                    "the checkpoint's sealed head is not on the pack's chain: it was rewritten",
                )
    return projects, events, findings
