"""Reading a command's arguments, each failure an error that names the argument."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime
from typing import Any

from approvalflow.calendar import FIRST_YEAR, LAST_YEAR
from approvalflow.errors import InvalidCommand, UnknownMaterial
from approvalflow.inputs import MAX_ID, text_problem
from approvalflow.money import parse_amount
from approvalflow.settings import Settings

__all__ = [
    "FREE_TEXT",
    "amount",
    "choice",
    "day_from",
    "department",
    "flag",
    "id_list",
    "materials",
    "reject_unknown",
    "text",
]

_MAX_TEXT = 2000
_MAX_ITEMS = 200

FREE_TEXT = frozenset(
    {"reason", "note", "text", "findings", "resolution", "policy", "comment", "description"}
)
"""Arguments that are free text and may run over several lines; every other text argument
(a name, a label, an id) is one line."""


def reject_unknown(args: Mapping[str, Any], allowed: Collection[str], command: str) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise InvalidCommand(
            f"{command} got unknown argument(s) {', '.join(unknown)} (it takes: {accepted})"
        )


def text(
    args: Mapping[str, Any],
    name: str,
    *,
    required: bool,
    multiline: bool | None = None,
    max_length: int = _MAX_TEXT,
) -> str | None:
    """A text argument of at most ``max_length`` characters, with no control character, lone
    surrogate or bidirectional override; on one line unless ``multiline`` (by default: when
    ``name`` is one of ``FREE_TEXT``)."""
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidCommand(f"argument {name!r} is required")
        return None
    if not isinstance(value, str):
        raise InvalidCommand(f"argument {name!r} must be text, not {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidCommand(f"argument {name!r} is longer than {max_length} characters")
    single_line = not (name in FREE_TEXT if multiline is None else multiline)
    problem = text_problem(value, single_line=single_line)
    if problem is not None:
        raise InvalidCommand(f"argument {name!r} {problem}")
    return value


def choice(args: Mapping[str, Any], name: str, options: Collection[str]) -> str:
    value = args.get(name)
    if value not in options:
        expected = " | ".join(options)
        if value is None:
            raise InvalidCommand(f"argument {name!r} is required ({expected})")
        raise InvalidCommand(f"argument {name!r} must be one of {expected}, not {value!r}")
    return str(value)


def flag(args: Mapping[str, Any], name: str) -> bool:
    value = args.get(name)
    if not isinstance(value, bool):
        raise InvalidCommand(f"argument {name!r} must be true or false, not {value!r}")
    return value


def id_list(args: Mapping[str, Any], name: str, *, required: bool = True) -> tuple[str, ...]:
    value = args.get(name)
    if value is None:
        if required:
            raise InvalidCommand(f"argument {name!r} is required (a list of ids)")
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidCommand(f"argument {name!r} must be a list of ids, not {value!r}")
    if len(value) > _MAX_ITEMS:
        raise InvalidCommand(f"argument {name!r} lists more than {_MAX_ITEMS} ids")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise InvalidCommand(f"argument {name!r} must list ids (text), found {item!r}")
        if len(item) > MAX_ID:
            raise InvalidCommand(f"argument {name!r} lists an id longer than {MAX_ID} characters")
        problem = text_problem(item, single_line=True)
        if problem is not None:
            raise InvalidCommand(f"argument {name!r} lists an id that {problem}")
    return tuple(dict.fromkeys(value))


def materials(
    args: Mapping[str, Any], name: str, settings: Settings, *, non_empty: bool
) -> tuple[str, ...]:
    """A list of catalogue material ids; ``UnknownMaterial`` names any that is not one."""
    ids = id_list(args, name, required=non_empty)
    if non_empty and not ids:
        raise InvalidCommand(f"argument {name!r} must list at least one material")
    for material in ids:
        if material not in settings.materials:
            raise UnknownMaterial(f"{material!r} (in {name!r}) is not in the material catalogue")
    return ids


def department(args: Mapping[str, Any], name: str, known: Collection[str]) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidCommand(f"argument {name!r} is required (a department id)")
    if value not in known:
        raise InvalidCommand(
            f"argument {name!r}: {value!r} is not one of this project's departments "
            f"({', '.join(known) or 'none'})"
        )
    return value


def amount(args: Mapping[str, Any], name: str, *, default: int | None = None) -> int:
    value = args.get(name)
    if value is None:
        if default is None:
            raise InvalidCommand(f"argument {name!r} is required (an amount of yuan)")
        return default
    return parse_amount(value, argument=name)


def day_from(args: Mapping[str, Any], name: str, today: date) -> date | None:
    """An optional date argument (``YYYY-MM-DD``) that is not before ``today``."""
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, datetime):
        raise InvalidCommand(f"argument {name!r} must be a date (YYYY-MM-DD), not a moment")
    if not isinstance(value, str | date):
        raise InvalidCommand(
            f"argument {name!r} must be a date (YYYY-MM-DD), not {type(value).__name__}"
        )
    try:
        day = value if isinstance(value, date) else date.fromisoformat(value)
    except ValueError:
        raise InvalidCommand(
            f"argument {name!r} must be a date (YYYY-MM-DD), not {str(value)[:40]!r}"
        ) from None
    if day.year > LAST_YEAR or day.year < FIRST_YEAR:
        raise InvalidCommand(
            f"argument {name!r} ({day}) is outside the years the calendar counts "
            f"({FIRST_YEAR}..{LAST_YEAR})"
        )
    if day < today:
        raise InvalidCommand(f"argument {name!r} ({day}) is before today ({today})")
    return day
