"""Reading a command's arguments, each failure an error that names the argument."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

from approvalflow.errors import InvalidCommand, UnknownMaterial
from approvalflow.money import parse_amount
from approvalflow.settings import Settings

__all__ = [
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


def reject_unknown(args: Mapping[str, Any], allowed: Collection[str], command: str) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise InvalidCommand(
            f"{command} got unknown argument(s) {', '.join(unknown)} (it takes: {accepted})"
        )


def text(args: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = args.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidCommand(f"argument {name!r} is required")
        return None
    if not isinstance(value, str):
        raise InvalidCommand(f"argument {name!r} must be text, not {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise InvalidCommand(f"argument {name!r} is longer than {_MAX_TEXT} characters")
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
        if not isinstance(item, str) or not item:
            raise InvalidCommand(f"argument {name!r} must list ids (text), found {item!r}")
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
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise InvalidCommand(
            f"argument {name!r} must be a date (YYYY-MM-DD), not {value!r}"
        ) from None
    if day < today:
        raise InvalidCommand(f"argument {name!r} ({day}) is before today ({today})")
    return day
