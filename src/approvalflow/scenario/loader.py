"""Turn a scenario file (SCENARIOS.md) into a :class:`Scenario`, or one precise error.

YAML is read with a ``yaml.SafeLoader`` subclass that only composes nodes: it never constructs
Python objects, refuses anchors, aliases and tags, and bounds the nesting depth, so a hostile
file can neither run code nor blow up memory. Scalars are typed here rather than by PyYAML's
YAML 1.1 resolver, because that resolver silently turns ``2026-07-20`` into a ``date``,
``no`` into ``False`` and ``0600`` into 384. The rules:

- ``true`` / ``false`` (also ``True``, ``TRUE``...) are booleans; ``null``, ``~`` and an empty
  value are ``None``;
- decimal integers without a leading zero are ints, decimals or exponents (``0.333``,
  ``1.5e8``) are floats;
- everything else is text, as are quoted and block scalars and every mapping key.

Validation stops at the first problem and raises :class:`ScenarioFileError` with the file, the
line and a key path such as ``$.steps[3].by`` (list positions count from 1, like step numbers).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, NoReturn, TypeAlias
from zoneinfo import ZoneInfo

import yaml

from approvalflow.scenario.model import (
    ActorSpec,
    AdvanceStep,
    CommandStep,
    Expectation,
    ExpectStep,
    RulesStep,
    Scenario,
    ScenarioFileError,
    Step,
)

__all__ = [
    "LOCAL_TIMEZONE",
    "MAX_FILE_BYTES",
    "find_scenario_files",
    "is_scenario_file",
    "load_actors",
    "load_document",
    "load_scenario",
    "loads_scenario",
    "top_level_keys",
]

#: Scenario times are local to the county.
LOCAL_TIMEZONE = ZoneInfo("Asia/Shanghai")
#: Larger files are refused: a scenario is a story, not a data dump.
MAX_FILE_BYTES = 1024 * 1024

# Real scenarios nest four or five levels; the bound keeps recursion (ours and PyYAML's
# composer) far from Python's limit whatever the input.
_MAX_DEPTH = 40
# int() refuses more than 4300 digits; no count or amount needs a fraction of that.
_MAX_NUMBER_CHARS = 40
_MAX_ADVANCE_DIGITS = 6

_SUFFIXES = (".yaml", ".yml")
_TOP_KEYS = ("scenario", "plugins", "settings", "start", "actors", "steps")
_REQUIRED_TOP_KEYS = ("scenario", "start", "actors", "steps")
_ACTOR_KEYS = ("name", "roles", "department", "teams", "recuse")
_STEP_KINDS = ("create", "do", "advance", "expect", "rules")
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "create": ("create", "by", "project", "error", "command_id"),
    "do": ("do", "project", "by", "args", "error", "command_id"),
    "advance": ("advance",),
    "expect": ("expect",),
    "rules": ("rules",),
}
_EXPECT_KINDS = ("notices", "no_notices", "events", "points", "metrics", "deadline")
# Fields of a new project that name actors, so a typo there is caught before the engine runs.
_CREATE_ACTOR_FIELDS = ("applicant", "leader", "agent")

_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{1,2}):(\d{2}))?")
_ADVANCE = re.compile(r"(\d+) *(wd|days?|hours?)")
_PLAIN_KEY = re.compile(r"[\w-]+")


_Unit: TypeAlias = Literal["wd", "days", "hours"]
_UNITS: dict[str, _Unit] = {
    "wd": "wd",
    "day": "days",
    "days": "days",
    "hour": "hours",
    "hours": "hours",
}
_TIME_FORMATS = "'YYYY-MM-DD HH:MM', 'YYYY-MM-DD' or 'YYYY-MM-DD 24:00'"

# A position in the document: mapping keys (text) and 0-based list positions.
_Path: TypeAlias = tuple[str | int, ...]


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def load_scenario(
    path: str | os.PathLike[str],
    *,
    known_commands: Collection[str],
    known_error_codes: Collection[str],
) -> Scenario:
    """Read and validate the scenario file at ``path``.

    ``known_commands`` are the engine's command names (``create`` is always accepted);
    ``known_error_codes`` the codes an ``error:`` may name. Raises :class:`ScenarioFileError`
    for the first problem, including a file that cannot be read, is larger than
    :data:`MAX_FILE_BYTES`, or is not UTF-8.
    """
    file = os.fspath(path)
    return _load_text(_read_text(file), file, known_commands, known_error_codes)


def load_actors(path: str | os.PathLike[str]) -> dict[str, ActorSpec]:
    """Read a file holding only a scenario's ``actors:`` mapping (actor id -> fields).

    The same reader and rules as :func:`load_scenario`: ``no`` stays the text ``no`` and
    ``0600`` the text ``0600``; every problem is a :class:`ScenarioFileError` with its line.
    """
    file = os.fspath(path)
    document, lines = _compose(_read_text(file), file)
    return _Reader(file, lines, (), ()).actors((), document)


def load_document(path: str | os.PathLike[str]) -> tuple[object, dict[tuple[str | int, ...], int]]:
    """Any YAML file read as a scenario is (safe, no ``no`` read as ``False``), as plain values
    with the 1-based line of every path (``("counties", "huguan", "name")``): for the other
    files a host writes (the counties file) to name the line of a problem too. A file that
    cannot be read or parsed is a :class:`ScenarioFileError` with its line."""
    file = os.fspath(path)
    document, lines = _compose(_read_text(file), file)
    return document, dict(lines)


def top_level_keys(path: str | os.PathLike[str]) -> list[str]:
    """The top-level keys of a YAML file read with the scenario reader (``[]`` when it is not
    a readable mapping): for saying why a file was not taken for a scenario."""
    file = os.fspath(path)
    try:
        document, _ = _compose(_read_text(file), file)
    except ScenarioFileError:
        return []
    return list(document) if isinstance(document, dict) else []


def _read_text(file: str) -> str:
    try:
        with open(file, "rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ScenarioFileError(
            file, None, "$", f"cannot read the file: {error.strerror or error}"
        ) from error
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ScenarioFileError(
            file,
            line,
            "$",
            f"the file is not UTF-8 text (byte 0x{data[error.start]:02x}); save it as UTF-8",
        ) from error


def loads_scenario(
    text: str,
    path: str = "<string>",
    *,
    known_commands: Collection[str],
    known_error_codes: Collection[str],
) -> Scenario:
    """Validate a scenario given as text; ``path`` only names it in errors and the result.

    Same rules and errors as :func:`load_scenario`.
    """
    # A lone surrogate is not UTF-8; count it anyway so the size rule never raises.
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise _too_large(path)
    return _load_text(text, path, known_commands, known_error_codes)


def is_scenario_file(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` is a ``*.yaml``/``*.yml`` file (any case) with top-level ``scenario:``.

    Only the start of the file is parsed (up to that key), so other YAML files of a host
    repository cost little and are never reported. Never raises: anything unreadable or
    unparsable before the key is simply not a scenario file.
    """
    try:
        candidate = Path(path)
        if candidate.suffix.lower() not in _SUFFIXES or not candidate.is_file():
            return False
        with candidate.open("rb") as stream:
            head = stream.read(MAX_FILE_BYTES)
        # Most YAML of a host repository never mentions the word: skip parsing it at all.
        if b"scenario" not in head:
            return False
        # Bad bytes or control characters make a broken scenario, not a non-scenario: blank
        # them out here so the file is still collected and the loader reports them by line.
        text = head.decode("utf-8-sig", errors="replace")
        return _starts_like_scenario(yaml.reader.Reader.NON_PRINTABLE.sub("\ufffd", text))
    except Exception:
        # Callers walk whole trees; one odd file (permissions, encoding, broken YAML) must not
        # stop the walk, and the loader reports real scenarios precisely.
        return False


def find_scenario_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The scenario files among ``paths``, sorted and without duplicates.

    Each path is a file (kept if :func:`is_scenario_file`) or a directory searched
    recursively; hidden files and directories (``.git``, ``.venv``) met on the way are
    skipped. Raises ``FileNotFoundError`` for a path that does not exist.
    """
    found: set[Path] = set()
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for directory, subdirectories, files in os.walk(root):
                subdirectories[:] = [name for name in subdirectories if not name.startswith(".")]
                for name in files:
                    candidate = Path(directory, name)
                    if not name.startswith(".") and is_scenario_file(candidate):
                        found.add(candidate)
        elif root.exists():
            if is_scenario_file(root):
                found.add(root)
        else:
            raise FileNotFoundError(2, "No such file or directory", str(root))
    return sorted(found)


# --------------------------------------------------------------------------------------------
# YAML: nodes only, then plain values with a line for every path
# --------------------------------------------------------------------------------------------


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that scenario files do not allow (anchors, aliases, tags, deep nesting)."""


class _ScenarioYamlLoader(yaml.SafeLoader):
    """Composes nodes for us to type; refuses every feature that could expand or construct."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def next_event(self) -> yaml.Event:
        """The next parser event, without consuming it (a typed ``peek_event``)."""
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        return event

    def take_event(self) -> yaml.Event:
        """Consume and return the next parser event (a typed ``get_event``)."""
        event: yaml.Event = self.get_event()  # type: ignore[no-untyped-call]
        return event

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # Refusing at the first anchor, before any alias is expanded, is what makes a
        # "billion laughs" file fail in microseconds instead of filling memory.
        event = self.next_event()
        if isinstance(event, yaml.AliasEvent):
            _refuse(event, f"aliases (*{event.anchor}) are not allowed; write the value out")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            _refuse(event, f"anchors (&{event.anchor}) are not allowed")
        tag = getattr(event, "tag", None)
        if tag is not None:
            _refuse(event, f"tags ({tag}) are not allowed; quote a value to make it text")
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                _refuse(event, f"nested more than {_MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refuse(event: yaml.Event, problem: str) -> NoReturn:
    mark = event.start_mark
    # Only the pure-Python parser runs here, so marks are always yaml.error.Mark.
    raise _Refused(
        problem=f"{problem} (scenario files allow plain YAML only)",
        problem_mark=mark if isinstance(mark, yaml.error.Mark) else None,
    )


def _starts_like_scenario(text: str) -> bool:
    """Scan parser events until the top-level ``scenario`` key or the end of the top mapping."""
    loader = _ScenarioYamlLoader(text)
    try:
        depth = 0
        nodes_done_at_top = 0  # even: the next top-level node is a key
        while loader.check_event():
            event = loader.take_event()
            if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentStartEvent)):
                continue
            if depth == 0:
                if not isinstance(event, yaml.MappingStartEvent):
                    return False
                depth = 1
            elif isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                # PyYAML's scanner is quadratic in flow nesting; the loader refuses this anyway.
                if depth > _MAX_DEPTH:
                    return False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
                if depth == 0:
                    return False
                if depth == 1:
                    nodes_done_at_top += 1
            elif depth == 1:
                is_key = nodes_done_at_top % 2 == 0
                if is_key and isinstance(event, yaml.ScalarEvent) and event.value == "scenario":
                    return True
                nodes_done_at_top += 1
        return False
    finally:
        loader.dispose()


def _too_large(file: str) -> ScenarioFileError:
    return ScenarioFileError(
        file, None, "$", f"the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB"
    )


def _load_text(
    text: str, file: str, known_commands: Collection[str], known_error_codes: Collection[str]
) -> Scenario:
    document, lines = _compose(text, file)
    reader = _Reader(file, lines, known_commands, known_error_codes)
    return reader.scenario(document)


def _compose(text: str, file: str) -> tuple[object, dict[_Path, int]]:
    """Parse ``text`` into plain values, with the 1-based line of every path."""
    text = text.removeprefix("\ufeff")
    try:
        loader = _ScenarioYamlLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = None if mark is None else mark.line + 1
        raise ScenarioFileError(file, line, "$", _yaml_message(error)) from error
    except yaml.reader.ReaderError as error:
        position = error.position if isinstance(error.position, int) else 0
        # PyYAML gives the offending character as text when reading text, as a byte otherwise.
        code = ord(error.character) if isinstance(error.character, str) else error.character
        line = text.count("\n", 0, position) + 1
        raise ScenarioFileError(
            file,
            line,
            "$",
            f"the file contains the control character #x{code:04x}, which YAML does not allow",
        ) from error
    except yaml.YAMLError as error:
        raise ScenarioFileError(file, None, "$", f"not valid YAML: {error}") from error
    # A lone `---` composes to an empty plain scalar: as empty as a file with nothing in it.
    if node is None or (
        isinstance(node, yaml.ScalarNode) and node.style is None and not node.value
    ):
        raise ScenarioFileError(file, None, "$", "the file is empty")
    lines: dict[_Path, int] = {}
    return _plain(node, (), lines, file), lines


def _yaml_message(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or "not valid YAML"
    if isinstance(error, _Refused):
        return problem
    message = f"not valid YAML: {problem}"
    if error.context:
        where = "" if error.context_mark is None else f" at line {error.context_mark.line + 1}"
        message += f" ({error.context}{where})"
    return message


def _plain(node: yaml.Node, path: _Path, lines: dict[_Path, int], file: str) -> object:
    """Turn a node into str/int/float/bool/None/list/dict, recording lines as it goes."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, path, lines, file)
    if isinstance(node, yaml.SequenceNode):
        return [_plain(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    result: dict[str, object] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ScenarioFileError(
                file,
                key_node.start_mark.line + 1,
                _render(path),
                "a key must be a name, not a list or a mapping",
            )
        # Keys are names (actor ids, projects, teams), so they stay exactly as written.
        key = str(key_node.value)
        key_path = (*path, key)
        if key in result:
            raise ScenarioFileError(
                file,
                key_node.start_mark.line + 1,
                _render(key_path),
                f"the key appears twice in this mapping (first at line {lines[key_path]})",
            )
        lines[key_path] = key_node.start_mark.line + 1
        result[key] = _plain(value_node, key_path, lines, file)
    return result


def _scalar(node: yaml.ScalarNode, path: _Path, lines: dict[_Path, int], file: str) -> object:
    text = str(node.value)
    if node.style is not None:  # quoted or block scalar: the author asked for text
        return text
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in _NULL:
        return None
    is_int = _INT.fullmatch(text) is not None
    if is_int or _FLOAT.fullmatch(text):
        if len(text) > _MAX_NUMBER_CHARS:
            raise ScenarioFileError(
                file,
                lines[path],
                _render(path),
                f"a number longer than {_MAX_NUMBER_CHARS} characters; quote it if it is text",
            )
        return int(text) if is_int else float(text)
    return text


def _render(path: _Path) -> str:
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part + 1}]")
        elif _PLAIN_KEY.fullmatch(part):
            parts.append(f".{part}")
        else:
            parts.append(f"['{part}']")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Validation: plain values -> model, stopping at the first problem
# --------------------------------------------------------------------------------------------


def _describe(value: object) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"text ('{shown}')"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Reader:
    """Builds the model from the plain document; every ``fail`` carries the path's line."""

    def __init__(
        self,
        file: str,
        lines: Mapping[_Path, int],
        known_commands: Collection[str],
        known_error_codes: Collection[str],
    ) -> None:
        self._file = file
        self._lines = lines
        self._commands = frozenset(known_commands) | {"create"}
        self._error_codes = frozenset(known_error_codes)
        self._create_ids: dict[str, str] = {}  # project -> the command id of its create step

    # -- primitives ------------------------------------------------------------------------

    def _line(self, path: _Path) -> int | None:
        # A missing key has no line of its own: point at the mapping that lacks it.
        for end in range(len(path), -1, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None

    def _fail(self, path: _Path, message: str) -> NoReturn:
        raise ScenarioFileError(self._file, self._line(path), _render(path), message)

    def _mapping(self, path: _Path, value: object, example: str) -> dict[str, object]:
        if not isinstance(value, dict):
            self._fail(path, f"must be a mapping such as {example}, not {_describe(value)}")
        return value

    def _list(self, path: _Path, value: object, example: str) -> list[object]:
        if not isinstance(value, list):
            self._fail(path, f"must be a list such as {example}, not {_describe(value)}")
        return value

    def _name(self, path: _Path, value: object, what: str) -> str:
        # An unquoted id such as `2026` reads as a number; its text is the id the author meant.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            self._fail(path, f"must be {what}, not {_describe(value)}")
        return value

    def _names(self, path: _Path, value: object, what: str, example: str) -> tuple[str, ...]:
        items = self._list(path, value, example)
        return tuple(self._name((*path, i), item, what) for i, item in enumerate(items))

    def _only(self, path: _Path, mapping: Mapping[str, object], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in mapping:
            if key not in allowed:
                self._fail(
                    (*path, key),
                    f"unknown key{_did_you_mean(key, allowed)};"
                    f" expected one of {', '.join(allowed)}",
                )

    def _require(self, path: _Path, mapping: Mapping[str, object], key: str, why: str) -> object:
        if key not in mapping:
            self._fail((*path, key), f"missing: {why}")
        return mapping[key]

    def _time(self, path: _Path, value: object) -> datetime:
        found = _TIME.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            self._fail(path, f"must be a local time {_TIME_FORMATS}, not {_describe(value)}")
        year, month, day, hour, minute = (int(part or 0) for part in found.groups())
        end_of_day = hour == 24 and minute == 0
        try:
            moment = datetime(
                year, month, day, 0 if end_of_day else hour, minute, tzinfo=LOCAL_TIMEZONE
            )
            if end_of_day:
                moment += timedelta(days=1)
        except (ValueError, OverflowError):
            self._fail(path, f"'{value}' is not a real date and time")
        return moment

    # -- the file --------------------------------------------------------------------------

    def scenario(self, document: object) -> Scenario:
        if not isinstance(document, dict):
            self._fail(
                (),
                f"the top level must be a mapping with scenario:, start:, actors:"
                f" and steps:, not {_describe(document)}",
            )
        top: dict[str, object] = document
        self._only((), top, _TOP_KEYS)
        for key in _REQUIRED_TOP_KEYS:
            self._require((), top, key, f"every scenario needs {', '.join(_REQUIRED_TOP_KEYS)}")
        name = self._name(("scenario",), top["scenario"], "the scenario's name")
        plugins = top.get("plugins")
        settings = top.get("settings")
        scenario_plugins = (
            ()
            if plugins is None
            else self._names(("plugins",), plugins, "a plugin's entry-point name", "[jiangle]")
        )
        scenario_settings = (
            {}
            if settings is None
            else self._mapping(("settings",), settings, "{supply_deadline_wd: 10}")
        )
        start = self._time(("start",), top["start"])
        actors = self.actors(("actors",), top["actors"])
        steps, created = self._steps(("steps",), top["steps"], actors)
        for actor in actors.values():
            for i, project in enumerate(actor.recuse):
                if project not in created:
                    self._fail(
                        ("actors", actor.id, "recuse", i),
                        f"'{project}' is not a project that a step creates",
                    )
        return Scenario(
            name=name,
            path=self._file,
            plugins=scenario_plugins,
            settings=scenario_settings,
            start=start,
            actors=actors,
            steps=steps,
        )

    def actors(self, path: _Path, value: object) -> dict[str, ActorSpec]:
        entries = self._mapping(path, value, "{zhao: {roles: [recruiter]}}")
        actors: dict[str, ActorSpec] = {}
        for actor_id, spec in entries.items():
            actor_path = (*path, actor_id)
            if not actor_id.strip():
                self._fail(actor_path, "an actor id must not be empty")
            fields = self._mapping(actor_path, spec, "{roles: [recruiter]}")
            self._only(actor_path, fields, _ACTOR_KEYS)
            roles_value = self._require(actor_path, fields, "roles", "every actor has roles")
            roles = self._names((*actor_path, "roles"), roles_value, "a role name", "[officer]")
            if not roles:
                self._fail((*actor_path, "roles"), "an actor needs at least one role")
            name = fields.get("name")
            department = fields.get("department")
            teams = fields.get("teams")
            recuse = fields.get("recuse")
            actors[actor_id] = ActorSpec(
                id=actor_id,
                name=None if name is None else self._name((*actor_path, "name"), name, "a name"),
                roles=roles,
                department=(
                    None
                    if department is None
                    else self._name((*actor_path, "department"), department, "a department id")
                ),
                teams=(
                    None
                    if teams is None
                    else self._names((*actor_path, "teams"), teams, "a team name", "[energy]")
                ),
                recuse=(
                    ()
                    if recuse is None
                    else self._names((*actor_path, "recuse"), recuse, "a project id", "[P1]")
                ),
                line=self._lines[actor_path],
            )
        return actors

    # -- steps -----------------------------------------------------------------------------

    def _steps(
        self, path: _Path, value: object, actors: Mapping[str, ActorSpec]
    ) -> tuple[tuple[Step, ...], dict[str, int]]:
        items = self._list(path, value, "[{do: negotiate, project: P1, by: zhao}]")
        if not items:
            self._fail(path, "a scenario needs at least one step")
        created: dict[str, int] = {}  # project id -> the step that creates it
        steps: list[Step] = []
        for position, item in enumerate(items):
            step_path = (*path, position)
            step = self._mapping(step_path, item, "{do: negotiate, project: P1, by: zhao}")
            kinds = [key for key in step if key in _STEP_KINDS]
            if not kinds:
                every_key = dict.fromkeys(key for keys in _STEP_KEYS.values() for key in keys)
                self._only(step_path, step, every_key)
                self._fail(
                    step_path, "a step must be one of create:, do:, advance:, expect:, rules:"
                )
            if len(kinds) > 1:
                self._fail(
                    (*step_path, kinds[1]),
                    f"a step is one of create, do, advance, expect, rules; this one is both"
                    f" {kinds[0]} and {kinds[1]}: write two steps",
                )
            self._only(step_path, step, _STEP_KEYS[kinds[0]])
            index = position + 1
            line = self._lines[step_path]
            if kinds[0] == "advance":
                steps.append(self._advance(step_path, step["advance"], index, line))
            elif kinds[0] == "expect":
                steps.append(self._expect(step_path, step["expect"], index, line, created))
            elif kinds[0] == "rules":
                rules = self._mapping(
                    (*step_path, "rules"), step["rules"], "{rules_version: '2', extension_wd: 5}"
                )
                steps.append(RulesStep(index=index, line=line, settings=rules))
            else:
                steps.append(self._command(step_path, step, index, line, actors, created))
        return tuple(steps), created

    def _command(
        self,
        path: _Path,
        step: dict[str, object],
        index: int,
        line: int,
        actors: Mapping[str, ActorSpec],
        created: dict[str, int],
    ) -> CommandStep:
        creating = "create" in step
        if creating:
            command = "create"
            project = self._name((*path, "create"), step["create"], "the new project's id")
        else:
            command = self._name((*path, "do"), step["do"], "a command name")
            if command == "create":
                self._fail((*path, "do"), "create a project with a `create: <id>` step")
            if command not in self._commands:
                self._fail(
                    (*path, "do"),
                    f"unknown command '{command}'"
                    f"{_did_you_mean(command, self._commands) or '; see WORKFLOW.md'}",
                )
            project = self._name(
                (*path, "project"),
                self._require(path, step, "project", "a do step must name its project"),
                "a project id",
            )
        by = self._actor(
            (*path, "by"),
            self._require(path, step, "by", "a command step must say who runs it (by: <actor id>)"),
            actors,
        )
        args_key = "project" if creating else "args"
        args_value = step.get(args_key)
        args = (
            {}
            if args_value is None
            else self._mapping((*path, args_key), args_value, "{name: 新型铝材, team: energy}")
        )
        if creating:
            for field in _CREATE_ACTOR_FIELDS:
                if field in args:
                    self._actor((*path, "project", field), args[field], actors)
        error_value = step.get("error")
        error = None
        if error_value is not None:
            error = self._name((*path, "error"), error_value, "an error code")
            if error not in self._error_codes:
                self._fail(
                    (*path, "error"),
                    f"unknown error code '{error}'"
                    f"{_did_you_mean(error, self._error_codes)}; expected one of"
                    f" {', '.join(sorted(self._error_codes))}",
                )
        command_id_value = step.get("command_id")
        command_id = (
            None
            if command_id_value is None
            else self._name((*path, "command_id"), command_id_value, "a command id")
        )
        # The engine checks the project before anything else, so these steps could only fail
        # with the error named here; saying so now beats a confusing failure at run time.
        # A create replayed with the command id of the create that made the project is answered
        # with the first result (rule 10), not refused.
        replay = command_id is not None and self._create_ids.get(project) == command_id
        if creating and project in created and error != "DuplicateProject" and not replay:
            self._fail(
                (*path, "create"),
                f"project '{project}' is created already by step {created[project]};"
                " this step can only fail with DuplicateProject",
            )
        if not creating and project not in created and error != "UnknownProject":
            self._fail(
                (*path, "project"),
                f"project '{project}' is not created by an earlier step;"
                " this step can only fail with UnknownProject",
            )
        if creating and error is None and project not in created:
            created[project] = index
            if command_id is not None:
                self._create_ids[project] = command_id
        return CommandStep(
            index=index,
            line=line,
            command=command,
            project=project,
            by=by,
            args=args,
            error=error,
            command_id=command_id,
        )

    def _actor(self, path: _Path, value: object, actors: Mapping[str, ActorSpec]) -> str:
        actor = self._name(path, value, "an actor id")
        if actor not in actors:
            self._fail(path, f"'{actor}' is not one of the actors{_did_you_mean(actor, actors)}")
        return actor

    def _advance(self, path: _Path, value: object, index: int, line: int) -> AdvanceStep:
        value_path = (*path, "advance")
        if isinstance(value, str):
            by_amount = _ADVANCE.fullmatch(value)
            if by_amount is not None:
                digits, unit = by_amount.groups()
                if len(digits) > _MAX_ADVANCE_DIGITS:
                    self._fail(value_path, f"'{value}' is too far ahead")
                return AdvanceStep(
                    index=index, line=line, amount=int(digits), unit=_UNITS[unit], until=None
                )
            if _TIME.fullmatch(value):
                until = self._time(value_path, value)
                return AdvanceStep(index=index, line=line, amount=0, unit=None, until=until)
        self._fail(
            value_path,
            f"must be 'N wd', 'N days', 'N hours' or a local time {_TIME_FORMATS},"
            f" not {_describe(value)}",
        )

    def _expect(
        self, path: _Path, value: object, index: int, line: int, created: Mapping[str, int]
    ) -> ExpectStep:
        checks_path = (*path, "expect")
        checks = self._mapping(checks_path, value, "{P1: approval}")
        states: list[Expectation] = []
        notices: list[Expectation] = []
        no_notices: list[Expectation] = []
        points: list[Expectation] = []
        metrics: list[Expectation] = []
        deadlines: list[Expectation] = []
        events: list[Expectation] = []
        for key, expected in checks.items():
            key_path = (*checks_path, key)
            if key in ("notices", "no_notices"):
                target = notices if key == "notices" else no_notices
                target.extend(self._notices(key_path, key, expected))
            elif key == "events":
                events.extend(
                    self._entries(key_path, key, expected, "{type: branch_changed, by: o_zj}")
                )
            elif key == "points":
                for team, amount in self._mapping(key_path, expected, "{energy: 2}").items():
                    if not isinstance(amount, int) or isinstance(amount, bool):
                        self._fail(
                            (*key_path, team),
                            f"points must be a whole number, not {_describe(amount)}",
                        )
                    points.append(Expectation(team, amount, self._lines[(*key_path, team)]))
            elif key == "metrics":
                for metric, number in self._mapping(
                    key_path, expected, "{start_rate: 0.5}"
                ).items():
                    self._metric((*key_path, metric), number)
                    metrics.append(Expectation(metric, number, self._lines[(*key_path, metric)]))
            elif key == "deadline":
                example = "{P1.approval.sthj: 2026-07-20 24:00}"
                for target_key, due in self._mapping(key_path, expected, example).items():
                    target_path = (*key_path, target_key)
                    project = _project_of(target_key, created)
                    if project is None or project == target_key:
                        self._fail(
                            target_path,
                            "a deadline key is <project>.pre_review or"
                            " <project>.approval.<department>[.supply|.verify]"
                            " of a project created by an earlier step",
                        )
                    deadlines.append(
                        Expectation(
                            target_key,
                            self._time(target_path, due),
                            self._lines[target_path],
                            project,
                        )
                    )
            else:
                project = _project_of(key, created)
                if project is None:
                    self._fail(
                        key_path,
                        f"neither a project created by an earlier step (as in P1 or"
                        f" P1.approval.fgw) nor one of {', '.join(_EXPECT_KINDS)}"
                        f"{_did_you_mean(key, (*_EXPECT_KINDS, *created))}",
                    )
                state = self._name(key_path, expected, "a state path such as approval.sthj")
                states.append(Expectation(key, state, self._lines[key_path], project))
        return ExpectStep(
            index=index,
            line=line,
            states=tuple(states),
            notices=tuple(notices),
            no_notices=tuple(no_notices),
            points=tuple(points),
            metrics=tuple(metrics),
            deadlines=tuple(deadlines),
            events=tuple(events),
        )

    def _notices(self, path: _Path, key: str, value: object) -> list[Expectation]:
        return self._entries(
            path,
            key,
            value,
            "{kind: overdue, project: P1}",
            "[{to: li, kind: overdue, project: P1}]",
        )

    def _entries(
        self, path: _Path, key: str, value: object, example: str, list_example: str = ""
    ) -> list[Expectation]:
        """A list of mappings, each one expected entry (a notice or an event)."""
        expected = []
        for i, item in enumerate(self._list(path, value, list_example or f"[{example}]")):
            item_path = (*path, i)
            entry = self._mapping(item_path, item, example)
            expected.append(Expectation(f"{key}[{i + 1}]", entry, self._lines[item_path]))
        return expected

    def _metric(self, path: _Path, value: object) -> None:
        # Text is a plugin's metric such as a grade ("A"); it must match exactly.
        if value is None or isinstance(value, str | int | float | bool):
            return
        if isinstance(value, dict):
            for key, inner in value.items():
                self._metric((*path, key), inner)
            return
        self._fail(
            path,
            f"a metric is a number, text, null, or a mapping of them, not {_describe(value)}",
        )


def _project_of(key: str, created: Mapping[str, int]) -> str | None:
    """The created project that ``key`` names, alone or followed by a non-empty ``.path``."""
    if key in created:
        return key
    # Project ids may contain dots; the longest id that leaves a well-formed path is meant.
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        project = ".".join(parts[:end])
        if project in created and all(parts[end:]):
            return project
    return None
