"""Bulk loads shared by the large-store benchmarks: rows of engine-made projects copied under
new ids, as the store's commits would have written them, so the store verifies (``audit
verify``) as one the engine wrote.

``workloads.py`` (the run_due and report stores) and ``province_scale.py`` (a province of
counties on PostgreSQL) load through these: the copies' events re-chained
(``approvalflow.stores.audit.chain_hash``), their snapshots digested
(``audit.snapshot_digest``), and COPY in PostgreSQL's text format (``copy_rows``, or
``copy_text`` for lines a caller builds itself).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "EVENT_INSERT_COLUMNS",
    "SNAPSHOT_INSERT_COLUMNS",
    "SUMMARY_INSERT_COLUMNS",
    "batches",
    "chained_copy",
    "copied_snapshot",
    "copy_rows",
    "copy_text",
]

EVENT_INSERT_COLUMNS = (
    "events (project, version, type, at, by_actor, on_behalf_of, command_id, payload, hash)"
)
SNAPSHOT_INSERT_COLUMNS = "snapshots (project, version, state, digest)"
SUMMARY_INSERT_COLUMNS = (
    "project_summaries (project, team, stage, agreed_investment, funds, signed, started, "
    "producing, created_us)"
)


def chained_copy(
    events: Sequence[Any], pid: str, team: str | None = None
) -> tuple[list[tuple[Any, ...]], str]:
    """The rows of a template project's events copied under ``pid`` (its team changed to
    ``team`` if given), each hashed into the copy's chain as a commit would hash it
    (``approvalflow.stores.audit``): ``(project, version, type, at, by_actor, on_behalf_of,
    command_id, payload, hash)``, the hash as the 32 bytes stored; and the chain's head."""
    import attrs

    from approvalflow.stores.audit import GENESIS, chain_hash
    from approvalflow.stores.serialization import event_rows

    copies = []
    for event in events:
        payload = event.payload
        if team is not None and payload.get("team") == "light_alloy":
            payload = {**payload, "team": team}
        copies.append(attrs.evolve(event, project=pid, payload=payload))
    head = GENESIS
    rows = []
    for row, text in event_rows(pid, 0, copies):
        head = chain_hash(head, text)
        rows.append((*row, bytes.fromhex(head)))
    return rows, head


def copied_snapshot(pid: str, version: int, text: str, head: str) -> tuple[str, int, bytes, str]:
    """A snapshot row (project, version, state packed as stored, digest) of a copy whose chain
    ends at ``head``."""
    from approvalflow.stores.audit import snapshot_digest
    from approvalflow.stores.serialization import pack_state

    return (pid, version, pack_state(text), snapshot_digest(pid, version, head, text))


def batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def copy_text(value: Any) -> str:
    """One value in COPY's text format: ``\\N`` for NULL, backslash, tab and newlines escaped,
    bytes as bytea's hex form, booleans as ``t``/``f``."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()  # bytea's hex form, its backslash escaped
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def copy_rows(cursor: Any, target: str, rows: Iterable[Sequence[Any]]) -> None:
    """COPY ``rows`` into ``target`` (``table (columns)``) in text format, every value escaped
    (``copy_text``)."""
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        buffer = io.StringIO()
        for count, row in enumerate(rows, start=1):
            buffer.write("\t".join(copy_text(value) for value in row))
            buffer.write("\n")
            if count % 20000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
