"""JSON text for what the durable stores keep: events, notices and project snapshots.

A private ``cattrs.Converter`` (never the global one) does the work, so these customisations
cannot leak into a host's own use of cattrs. A caller may rely on:

- an exact round trip: ``state_from_json(state_to_json(s)) == s`` and the same for events and
  notices, frozensets, tuples, nested branches, rounds and meetings included;
- aware datetimes written as ISO 8601 text with their UTC offset; a ``zoneinfo`` zone is kept by
  name after the offset (``2026-07-06T09:00:00+08:00[Asia/Shanghai]``, the RFC 9557 suffix), so a
  loaded datetime has the very tzinfo it was stored with, not merely an equal instant;
- payloads, notice fields, ``extra`` and ``plugin_data`` must be JSON data (str, int, float, bool,
  None, lists, dicts with str keys); anything else raises ``TypeError`` naming what was refused,
  at commit time rather than when the row is read back;
- ``canonical_event_json`` is stable: sorted keys, no spaces, UTF-8; the audit chain hashes it;
- a snapshot is stored as ``pack_state(state_to_json(s))``, its UTF-8 JSON compressed with zlib
  (schema version 11): ``unpack_state`` gives the very text back, which the snapshot's digest is
  over.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import cattrs

from approvalflow.model import Event, Notice
from approvalflow.project import ProjectState
from approvalflow.stores.base import OutboxEntry

__all__ = [
    "EventRow",
    "canonical_event_json",
    "event_from_json",
    "event_from_row",
    "event_rows",
    "event_to_json",
    "format_datetime",
    "from_epoch_us",
    "json_dumps",
    "json_loads",
    "notice_from_json",
    "notice_to_json",
    "outbox_entry",
    "pack_state",
    "parse_datetime",
    "state_from_json",
    "state_to_json",
    "to_epoch_us",
    "unpack_state",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def format_datetime(moment: datetime) -> str:
    """ISO 8601 text with the offset, plus ``[Zone/Name]`` when the tzinfo is a ``ZoneInfo``."""
    text = moment.isoformat()
    zone = moment.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key:
        return f"{text}[{zone.key}]"
    return text


def parse_datetime(text: str) -> datetime:
    """The inverse of ``format_datetime``."""
    if text.endswith("]"):
        base, _, key = text[:-1].partition("[")
        # The offset fixes the instant; converting to the named zone restores the wall time and
        # fold the datetime had, because that zone produced the offset in the first place.
        return datetime.fromisoformat(base).astimezone(ZoneInfo(key))
    return datetime.fromisoformat(text)


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC: the sortable form of an aware datetime.

    Raises ``ValueError`` for a naive datetime, whose instant is unknown.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a stored moment must be timezone-aware, not {moment!r}")
    return (moment - _EPOCH) // _MICROSECOND


def from_epoch_us(value: int) -> datetime:
    """The UTC datetime ``value`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=value)


def _sorted_list(values: AbstractSet[Any]) -> list[Any]:
    # Sorted, so the same set always gives the same text (snapshots diff cleanly).
    return sorted(values)


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter(
        unstruct_collection_overrides={AbstractSet: _sorted_list, Sequence: list}
    )
    converter.register_unstructure_hook(datetime, format_datetime)
    converter.register_structure_hook(datetime, lambda value, _type: parse_datetime(value))
    # Free-form data (payloads, notice fields, ``extra``, ``plugin_data``) goes to ``json`` as it
    # is: run through the hooks above, a datetime in it would silently come back as a string.
    converter.register_unstructure_hook_func(_is_free_form, _as_is)
    return converter


def _is_free_form(type_: Any) -> bool:
    return type_ in (Mapping[str, Any], dict[str, Any])


def _as_is(value: Any) -> Any:
    return value


_converter = _build_converter()


# Built once: ``json.dumps`` with options builds a new encoder on every call.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True
)


def json_dumps(value: Any, *, what: str = "value") -> str:
    """Compact JSON text; ``TypeError`` (naming ``what``) for anything that is not JSON data."""
    try:
        return _COMPACT.encode(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{what} must hold JSON data only: {error}") from error


def json_loads(text: str) -> Any:
    return json.loads(text)


def event_to_json(event: Event) -> str:
    return json_dumps(_converter.unstructure(event), what=f"event {event.project}@{event.version}")


def event_from_json(text: str) -> Event:
    return _converter.structure(json.loads(text), Event)


def canonical_event_json(event: Event, at_text: str | None = None) -> str:
    """The event as canonical JSON (sorted keys, no spaces, UTF-8): the text the audit chain
    hashes. ``at_text`` is ``format_datetime(event.at)`` if the caller has it already.

    The form is fixed: every ``Event`` field by name, ``at`` as ``format_datetime`` writes it.
    """
    document = {
        "at": format_datetime(event.at) if at_text is None else at_text,
        "by": event.by,
        "command_id": event.command_id,
        "on_behalf_of": event.on_behalf_of,
        "payload": event.payload if isinstance(event.payload, dict) else dict(event.payload),
        "project": event.project,
        "type": event.type,
        "version": event.version,
    }
    try:
        return _CANONICAL.encode(document)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"event {event.project}@{event.version} must hold JSON data only: {error}"
        ) from error


def notice_to_json(notice: Notice) -> str:
    return json_dumps(_converter.unstructure(notice), what=f"notice {notice.id}")


def notice_from_json(text: str) -> Notice:
    return _converter.structure(json.loads(text), Notice)


def state_to_json(state: ProjectState) -> str:
    return json_dumps(_converter.unstructure(state), what=f"the state of project {state.id}")


def state_from_json(text: str) -> ProjectState:
    return _converter.structure(json.loads(text), ProjectState)


def pack_state(text: str) -> bytes:
    """A snapshot's JSON text as stored: UTF-8, compressed with zlib (a finished project's
    state takes 5-6 KiB as text and about 1 KiB compressed; its keys repeat per branch), at
    zlib's default level (D231)."""
    return zlib.compress(text.encode("utf-8"))


def unpack_state(stored: bytes | bytearray | memoryview) -> str:
    """The JSON text ``pack_state`` was given.

    :raises ValueError: ``stored`` is not what ``pack_state`` writes (a row edited by hand).
    """
    try:
        return zlib.decompress(stored).decode("utf-8")
    except (zlib.error, UnicodeDecodeError, TypeError) as error:
        raise ValueError(f"a snapshot that is not compressed JSON: {error}") from error


EventRow = tuple[str, int, str, str, str | None, str | None, str | None, str]
"""(project, version, type, at, by, on_behalf_of, command_id, payload JSON)."""


def event_rows(
    project: str, expected_version: int, events: Sequence[Event]
) -> list[tuple[EventRow, str]]:
    """Each of one commit's ``events`` as a row and its canonical JSON (for the chain hash).

    :raises ValueError: the events are not versions ``expected_version + 1``... of ``project``.
    :raises TypeError: a payload is not JSON data.
    """
    encoded: list[tuple[EventRow, str]] = []
    for offset, event in enumerate(events, start=1):
        if event.project != project or event.version != expected_version + offset:
            raise ValueError(
                f"event {event.project}@{event.version} cannot follow {project}@"
                f"{expected_version + offset - 1} in this commit"
            )
        at_text = format_datetime(event.at)
        payload = json_dumps(event.payload, what=f"the payload of {project}@{event.version}")
        row = (
            project,
            event.version,
            event.type,
            at_text,
            event.by,
            event.on_behalf_of,
            event.command_id,
            payload,
        )
        encoded.append((row, canonical_event_json(event, at_text)))
    return encoded


def event_from_row(row: Sequence[Any]) -> Event:
    """The inverse of one of ``event_rows``'s rows."""
    project, version, type_, at, by, on_behalf_of, command_id, payload = row
    return Event(
        project=project,
        version=int(version),
        type=type_,
        at=parse_datetime(at),
        payload=json_loads(payload),
        by=by,
        on_behalf_of=on_behalf_of,
        command_id=command_id,
    )


def outbox_entry(
    payload: str, attempts: int, last_error: str | None, next_attempt_at: str | None
) -> OutboxEntry:
    """An outbox row (notice JSON, attempts, last error, next attempt text) as an entry."""
    return OutboxEntry(
        notice_from_json(payload),
        int(attempts),
        last_error,
        parse_datetime(next_attempt_at) if next_attempt_at is not None else None,
    )
