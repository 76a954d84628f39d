"""The shape of everything a caller hands ``Engine.execute``, checked before anything else.

A command's envelope (command name, project id, actor id, command id) and its arguments are
type-checked and bounded here, so that no malformed value reaches a rule, a hash or a store:
each refusal is an ``InvalidCommand`` (``NotAuthorized`` for an actor id that names no actor)
naming the value and the reason, and nothing is stored (D71, D72). What the checks guarantee:

- ids (project, actor, command, argument names) are text of bounded length, on one line,
  free of control and format characters; a project id is 1 to 100 letters, digits or
  ``. - _ : /`` starting with a letter or digit, matched as a whole (``"P1\\n"`` is no id);
- text anywhere in the arguments is at most ``MAX_TEXT`` characters, has no lone surrogate
  (which no store can encode), no control character but newline and tab (so no terminal
  escape sequence) and no bidirectional override;
- numbers are finite and fit a 64-bit integer; dates lie in the calendar's years;
- arguments are mappings with text keys, lists, text, numbers, true/false, null, dates: at
  most ``MAX_DEPTH`` levels deep and ``MAX_ITEMS`` values in all.

Each rule still reads its own arguments (``approvalflow.rules.arguments``) for their meaning.

The reads (``Engine.project``, ``history``, ``deadlines``, the reports...) pass the same door
(D297): a project id is checked as ``execute`` checks it (``validate_project_id``), a choice of
projects is a collection of such ids (``check_project_ids``: never one text, which would be
read letter by letter), a month is ``YYYY-MM`` (``check_month``), a moment is a datetime with
its time zone (``check_moment``) and a limit a whole number of 0 or more (``check_limit``):
each refusal an ``InvalidCommand`` (a ``ValueError``), before any store is asked.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from approvalflow.calendar import FIRST_YEAR, LAST_YEAR
from approvalflow.errors import ApprovalflowError, InvalidCommand, NotAuthorized

__all__ = [
    "MAX_DEPTH",
    "MAX_ID",
    "MAX_ITEMS",
    "MAX_TEXT",
    "check_command",
    "check_limit",
    "check_moment",
    "check_month",
    "check_project_ids",
    "text_problem",
    "validate_project_id",
]

MAX_ID = 100
"""The longest id (project, actor, command, argument name), in characters."""

MAX_COMMAND_ID = 200
"""The longest command id, in characters (room for a UUID with a prefix)."""

MAX_TEXT = 20_000
"""The longest text anywhere in a command's arguments, in characters."""

MAX_DEPTH = 10
"""How deep lists and mappings may nest in a command's arguments."""

MAX_ITEMS = 10_000
"""How many values (list items, mapping entries) a command's arguments may hold in all."""

_MAX_INT = 2**63 - 1

_PROJECT_ID = re.compile(r"[\w][\w.\-:/]{0,99}")
_COMMAND = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,99}")

# Control characters (C0, DEL, C1) but newline and tab; ESC and CSI among them, so no
# terminal escape sequence gets through. Lone surrogates (\ud800-\udfff) cannot be encoded
# by any store. Bidirectional embeddings, overrides and isolates make text read otherwise
# than it is stored.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
# On one line: no newline, tab, or the Unicode line and paragraph separators either.
_FORBIDDEN_ON_ONE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069\u0085]"
)


def text_problem(value: str, *, single_line: bool) -> str | None:
    """Why ``value`` may not be stored as text (``None``: it may)."""
    pattern = _FORBIDDEN_ON_ONE_LINE if single_line else _FORBIDDEN
    found = pattern.search(value)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return f"has a lone surrogate (U+{ord(char):04X}) at position {found.start()}"
    if char in "\n\r\t\u2028\u2029\u0085":
        return f"must be on one line (found {char!r} at position {found.start()})"
    if char == "\x1b" or char == "\x9b":
        return f"has a terminal escape sequence at position {found.start()}"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return f"has a bidirectional control (U+{ord(char):04X}) at position {found.start()}"
    return f"has a control character (U+{ord(char):04X}) at position {found.start()}"


def validate_project_id(project_id: object) -> str:
    """``project_id`` if it is a project id (matched whole), else ``InvalidCommand``."""
    if not isinstance(project_id, str) or not _PROJECT_ID.fullmatch(project_id):
        raise InvalidCommand(
            f"project id {_shown(project_id)} must be 1 to {MAX_ID} letters, digits or "
            ". - _ : / and start with a letter or digit"
        )
    return project_id


def check_project_ids(ids: Iterable[str] | None) -> list[str] | None:
    """``ids`` as a list of project ids (``None``: every project), else ``InvalidCommand``."""
    if ids is None:
        return None
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidCommand(
            f"a choice of projects is a collection of project ids, not {type(ids).__name__} "
            f"{_shown(ids)}"
        )
    return [validate_project_id(project) for project in ids]


_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def check_month(month: object) -> str:
    """``month`` if it is a month (``YYYY-MM``), else ``InvalidCommand``."""
    if not isinstance(month, str) or _MONTH.fullmatch(month) is None:
        raise InvalidCommand(f"a month is YYYY-MM (such as 2026-03), not {_shown(month)}")
    return month


def check_moment(moment: object, what: str = "now") -> datetime:
    """``moment`` if it is a datetime with its time zone, else ``InvalidCommand``."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        kind = "a naive datetime" if isinstance(moment, datetime) else type(moment).__name__
        raise InvalidCommand(f"{what} must be a datetime with its time zone, not {kind}")
    return moment


def check_limit(limit: object) -> int:
    """``limit`` if it is a whole number of 0 or more, else ``InvalidCommand``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidCommand(f"limit must be a whole number, 0 or more, not {_shown(limit)}")
    return limit


def check_command(
    command: object, project: object, by: object, args: object, command_id: object
) -> None:
    """Refuse, with ``InvalidCommand`` and the reason, a command whose envelope or arguments
    are not of the shape above. Reads nothing and changes nothing."""
    if not isinstance(command, str) or not _COMMAND.fullmatch(command):
        raise InvalidCommand(
            f"command {_shown(command)} must be a command name (letters, digits and _, "
            f"at most {MAX_ID} characters)"
        )
    validate_project_id(project)
    # An actor id that is no id names no actor: refused as any unknown actor is (D71).
    _check_id(by, "actor id", MAX_ID, NotAuthorized)
    if command_id is not None:
        _check_id(command_id, "command id", MAX_COMMAND_ID)
    if args is None:
        return
    if not isinstance(args, Mapping):
        raise InvalidCommand(
            f"the arguments of {command} must be a mapping of names to values, "
            f"not {type(args).__name__}"
        )
    _Walk().mapping(args, "", 1)


def _check_id(
    value: object, what: str, longest: int, error: type[ApprovalflowError] = InvalidCommand
) -> None:
    if not isinstance(value, str):
        raise error(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise error(f"{what} {value!r} is empty")
    if len(value) > longest:
        raise error(f"{what} {_shown(value)} is longer than {longest} characters")
    problem = text_problem(value, single_line=True)
    if problem is not None:
        raise error(f"{what} {_shown(value)} {problem}")


class _Walk:
    """One pass over the arguments, counting values; recursion stops at ``MAX_DEPTH``."""

    def __init__(self) -> None:
        self.items = 0

    def count(self, path: str, more: int) -> None:
        self.items += more
        if self.items > MAX_ITEMS:
            raise InvalidCommand(
                f"argument {path!r} brings the arguments over {MAX_ITEMS} values in all"
            )

    def mapping(self, value: Mapping[Any, Any], path: str, depth: int) -> None:
        self.count(path or "(arguments)", len(value))
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidCommand(
                    f"argument names must be text, found {_shown(key)}"
                    + (f" in {path!r}" if path else "")
                )
            where = f"{path}.{key}" if path else key
            if not _COMMAND.fullmatch(key):  # the usual names pass this one match
                _check_id(key, "argument name", MAX_ID)
            self.value(item, where, depth)

    def value(self, value: object, path: str, depth: int) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, int):
            if not -_MAX_INT <= value <= _MAX_INT:
                raise InvalidCommand(
                    f"argument {path!r} is a number beyond what a 64-bit integer holds"
                )
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidCommand(f"argument {path!r} must be a finite number, not {value!r}")
            return
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                raise InvalidCommand(f"argument {path!r} is longer than {MAX_TEXT} characters")
            problem = text_problem(value, single_line=False)
            if problem is not None:
                raise InvalidCommand(f"argument {path!r} {problem}")
            return
        if isinstance(value, date):
            if not FIRST_YEAR <= value.year <= LAST_YEAR:
                raise InvalidCommand(
                    f"argument {path!r} ({value.isoformat()}) is outside the years the "
                    f"calendar counts ({FIRST_YEAR}..{LAST_YEAR})"
                )
            if isinstance(value, datetime) and value.tzinfo is not None:
                try:
                    value.utcoffset()
                except Exception:  # a broken tzinfo object  # pragma: no cover
                    raise InvalidCommand(f"argument {path!r} has a broken time zone") from None
            return
        if isinstance(value, list | tuple | Mapping):
            if depth >= MAX_DEPTH:
                raise InvalidCommand(
                    f"argument {path!r} nests lists and mappings more than {MAX_DEPTH} deep"
                )
            if isinstance(value, Mapping):
                self.mapping(value, path, depth + 1)
                return
            self.count(path, len(value))
            for index, item in enumerate(value):
                self.value(item, f"{path}[{index}]", depth + 1)
            return
        raise InvalidCommand(
            f"argument {path!r} must be text, a number, true/false, null, a date, or lists "
            f"and mappings of those, not {type(value).__name__}"
        )


def _shown(value: object) -> str:
    """``value`` for a message: quoted, cut short, never a huge number printed."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "(a huge number)"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:60] + "..."
        # ascii() shows a control character or a surrogate as an escape, never raw.
        return ascii(text) if _FORBIDDEN_ON_ONE_LINE.search(text) else repr(text)
    if isinstance(value, list | tuple | dict | set):
        return f"(a {type(value).__name__})"
    try:
        text = repr(value)
    except Exception:
        return f"(a {type(value).__name__})"
    return text if len(text) <= 60 else text[:60] + "..."
