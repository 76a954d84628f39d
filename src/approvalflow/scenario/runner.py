"""Running a parsed scenario against a fresh engine, and saying exactly where it failed.

Each scenario gets its own engine on a manual clock starting at ``start:``. On a shared store
(``--store``) its projects are namespaced (``<file stem>-<run id>-<project>``), so reruns never
collide and points and metrics cover the scenario's own projects only.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs

from approvalflow.calendar import format_local, to_local
from approvalflow.clock import ManualClock
from approvalflow.engine import Engine, WorkflowDefinition
from approvalflow.errors import ERROR_CODES, ApprovalflowError
from approvalflow.model import Actor, Event, Notice
from approvalflow.plugins.manager import PluginError
from approvalflow.scenario.loader import find_scenario_files, load_scenario
from approvalflow.scenario.model import (
    AdvanceStep,
    CommandStep,
    Expectation,
    ExpectStep,
    RulesStep,
    Scenario,
    ScenarioFileError,
    Step,
)
from approvalflow.settings import SettingsError, merge_nested
from approvalflow.stores import Store, open_store

__all__ = [
    "ScenarioResult",
    "StepFailure",
    "known_commands",
    "load",
    "run_file",
    "run_paths",
    "run_scenario",
]

_TOLERANCE = 0.001
# The engine's limit on a project id: the file's id, not the store's, is what it limits.
_MAX_ID = 100


@attrs.frozen
class StepFailure:
    """The first step that did not hold: what was expected and what was found."""

    step: int
    line: int
    what: str
    expected: str
    found: str

    def render(self) -> str:
        return (
            f"  step {self.step} (line {self.line}): {self.what}\n"
            f"    expected: {self.expected}\n"
            f"    found:    {self.found}"
        )


@attrs.frozen
class ScenarioResult:
    """One scenario's outcome; ``file_error`` is set when the file is not a valid scenario."""

    name: str
    path: str
    failure: StepFailure | None = None
    file_error: str | None = None
    steps: int = 0

    @property
    def passed(self) -> bool:
        return self.failure is None and self.file_error is None

    def render(self) -> str:
        """The contract's text: ``PASS name`` or ``FAIL name`` with the failing step."""
        if self.passed:
            return f"PASS {self.name}"
        if self.file_error is not None:
            return f"FAIL {self.name}\n  invalid scenario: {self.file_error}"
        assert self.failure is not None
        return f"FAIL {self.name}\n{self.failure.render()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "passed": self.passed,
            "invalid": self.file_error is not None,
            "error": self.file_error,
            "failure": attrs.asdict(self.failure) if self.failure else None,
        }


def known_commands(plugins: Iterable[str] = ()) -> list[str]:
    """Every command name a scenario may use: the built-in ones (plugins add theirs)."""
    from approvalflow.rules.commands import BUILTIN_COMMANDS

    return sorted(BUILTIN_COMMANDS)


def load(path: str | Path) -> Scenario:
    """Parse a scenario file with the engine's command and error-code lists.

    Plugin commands are checked when the scenario runs (the loader cannot know them before the
    plugins load), so the loader is given every command any installed plugin declares.
    """
    return load_scenario(path, known_commands=_all_known_commands(), known_error_codes=ERROR_CODES)


def _all_known_commands() -> list[str]:
    from approvalflow.plugins.manager import available_plugins, load_plugin

    names = set(known_commands())
    for plugin_name in available_plugins():
        try:
            plugin = load_plugin(plugin_name)
        except PluginError:
            continue
        declare = getattr(plugin, "approvalflow_commands", None)
        if callable(declare):
            names.update(spec.name for spec in (declare() or ()))
    return sorted(names)


def run_paths(
    paths: Sequence[str | Path], *, store: str | None = None, run_id: str | None = None
) -> list[ScenarioResult]:
    """Run every scenario file under ``paths``; an invalid file is a failed result."""
    shared = open_store(store, create=True) if store else None
    try:
        return [run_file(path, store=shared, run_id=run_id) for path in find_scenario_files(paths)]
    finally:
        if shared is not None:
            shared.close()


def run_file(
    path: str | Path, *, store: Store | None = None, run_id: str | None = None
) -> ScenarioResult:
    try:
        scenario = load(path)
    except ScenarioFileError as error:
        return ScenarioResult(name=Path(path).name, path=str(path), file_error=str(error))
    return run_scenario(scenario, store=store, run_id=run_id)


def run_scenario(
    scenario: Scenario, *, store: Store | None = None, run_id: str | None = None
) -> ScenarioResult:
    """Run ``scenario``; on a shared ``store`` its project ids get a per-run prefix."""
    prefix = ""
    if store is not None:
        # Bounded, so that shortening a long id (see _namespaced) never cuts into it.
        prefix = f"{Path(scenario.path).stem[:24]}-{(run_id or uuid.uuid4().hex[:8])[:24]}-"
    try:
        run = _Run(scenario, store, prefix)
    except (SettingsError, PluginError, ValueError) as error:
        return ScenarioResult(
            name=scenario.name,
            path=scenario.path,
            file_error=f"{scenario.path}: settings or plugins: {error}",
        )
    failure = run.play()
    return ScenarioResult(scenario.name, scenario.path, failure, steps=len(scenario.steps))


class _Run:
    def __init__(self, scenario: Scenario, store: Store | None, prefix: str) -> None:
        self.scenario = scenario
        self.prefix = prefix
        self._stored: dict[str, str] = {}  # the file's id -> the id in the store
        self._written: dict[str, str] = {}  # and back
        self.clock = ManualClock(scenario.start)
        self.settings = scenario.settings
        self.engine = self._engine(store)
        self.projects: list[str] = []
        self.notices: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def _engine(self, store: Store | None) -> Engine:
        scenario = self.scenario
        return Engine(
            actors=[
                Actor(
                    spec.id,
                    spec.roles,
                    name=spec.name,
                    department=spec.department,
                    teams=spec.teams,
                    recuse=[self.pid(project) for project in spec.recuse],
                )
                for spec in scenario.actors.values()
            ],
            store=store,
            settings=self.settings,
            plugins=scenario.plugins,
            clock=self.clock,
        )

    def pid(self, project: str) -> str:
        """The id ``project`` has in the store: the file's id behind the run's prefix.

        The id the file wrote is what the engine's rules limit, on a shared store as in
        memory: an id refused alone is passed alone (refused the same way), and one the prefix
        would push past the length limit is shortened with a digest of it (so it stays unique).
        """
        stored = self._stored.get(project)
        if stored is None:
            stored = _namespaced(self.prefix, project)
            self._stored[project] = stored
            self._written[stored] = project
        return stored

    def written(self, stored: str) -> str | None:
        """The file's id of a project in the store, ``None`` for another run's project."""
        if stored in self._written:
            return self._written[stored]
        if not self.prefix:
            return stored
        if stored.startswith(self.prefix):
            return stored[len(self.prefix) :]
        return None

    def play(self) -> StepFailure | None:
        for step in self.scenario.steps:
            try:
                failure = self.step(step)
            except Exception as error:
                # Not the engine's answer to a bad command but a fault (in the engine, a
                # plugin or the store): this step fails with it, and the next file still runs.
                failure = StepFailure(
                    step.index,
                    step.line,
                    _step_name(step),
                    _expected(step),
                    f"unexpected error {type(error).__name__}: {error}",
                )
            if failure is not None:
                return failure
        return None

    def step(self, step: Step) -> StepFailure | None:
        if isinstance(step, CommandStep):
            return self.command(step)
        if isinstance(step, AdvanceStep):
            return self.advance(step)
        if isinstance(step, RulesStep):
            return self.rules(step)
        return self.expect(step)

    # -- steps ------------------------------------------------------------------------------

    def command(self, step: CommandStep) -> StepFailure | None:
        what = f"{step.command} {step.project} by {step.by}"
        project = self.pid(step.project)
        before = self._version(project)
        args = step.args
        # Command ids are unique in the whole store, so a rerun on a shared store namespaces
        # them like project ids.
        command_id = _namespaced(self.prefix, step.command_id) if step.command_id else None
        try:
            result = self.engine.execute(
                step.command, project, step.by, args, command_id=command_id
            )
        except ApprovalflowError as error:
            if step.error == error.code:
                after = self._version(project)
                if after != before:
                    return StepFailure(
                        step.index,
                        step.line,
                        what,
                        f"{error.code} and nothing changed",
                        f"version went from {before} to {after}",
                    )
                return None
            expected = step.error or "success"
            return StepFailure(step.index, step.line, what, expected, str(error))
        if step.error is not None:
            return StepFailure(
                step.index, step.line, what, step.error, f"success (now {result.state})"
            )
        if step.command == "create" and step.project not in self.projects:
            self.projects.append(step.project)
        self._record(result.notices, result.events)
        return None

    def rules(self, step: RulesStep) -> StepFailure | None:
        """The county publishes new rules: the engine takes up a definition with them over the
        same store, actors and clock, as a county's engine restarted with a new rule set would."""
        previous = self.settings
        self.settings = merge_nested(previous, step.settings)
        try:
            self.engine.definition = WorkflowDefinition(
                settings=self.settings, plugins=self.scenario.plugins
            )
        except (SettingsError, ValueError) as error:
            self.settings = previous
            return StepFailure(step.index, step.line, "rules", "rules that can be used", str(error))
        return None

    def advance(self, step: AdvanceStep) -> StepFailure | None:
        now = self.clock.now()
        if step.until is not None:
            target = step.until
        elif step.unit == "wd":
            local = to_local(now)
            day = self.engine.calendar.add_working_days(local.date(), step.amount)
            target = datetime.combine(day, local.timetz())
        elif step.unit == "days":
            target = now + timedelta(days=step.amount)
        else:
            target = now + timedelta(hours=step.amount)
        if target < now:
            return StepFailure(
                step.index,
                step.line,
                "advance",
                f"a time after {format_local(now)}",
                format_local(target),
            )
        for result in self.engine.run_due(target, prefix=self.prefix):
            self._record(result.notices, result.events)
        self.clock.set(target)
        return None

    def expect(self, step: ExpectStep) -> StepFailure | None:
        checks = (
            (step.states, self._check_state),
            (step.deadlines, self._check_deadline),
            (step.notices, None),
            (step.no_notices, None),
            (step.points, self._check_points),
            (step.metrics, self._check_metric),
        )
        for expectations, check in checks:
            if check is None:
                continue
            for expectation in expectations:
                found = check(expectation)
                if found is not None:
                    return StepFailure(
                        step.index,
                        expectation.line,
                        f"expect {expectation.key}",
                        _show(expectation.value),
                        found,
                    )
        failure = self._check_notices(step) or self._check_events(step)
        self.notices = []
        self.events = []
        return failure

    # -- checks: each returns None when it holds, else what was found -----------------------

    def _check_state(self, expectation: Expectation) -> str | None:
        # The loader found which created project the key names (ids may contain dots).
        project = expectation.project or expectation.key.partition(".")[0]
        path = expectation.key[len(project) + 1 :]
        try:
            state = self.engine.project(self.pid(project))
        except ApprovalflowError:
            return f"no project {project}"
        expected = str(expectation.value)
        if not path:
            found = state.stage
        elif path == "stage":
            # The approval stage running now (approval in stages), else "none".
            run = state.running_stage if state.stage == "approval" else None
            found = run.id if run is not None else "none"
        else:
            stage, _, dept = path.partition(".")
            branch = state.branches.get(dept) if stage == "approval" else None
            if branch is None:
                return f"no branch {path} (project is {state.stage})"
            found = branch.state
        if found == expected or found.startswith(expected + "."):
            return None
        return found

    def _check_deadline(self, expectation: Expectation) -> str | None:
        project = expectation.project or expectation.key.split(".", 1)[0]
        try:
            deadlines = self.engine.deadlines(self.pid(project))
        except ApprovalflowError:
            return f"no project {project}"
        due = deadlines.get(self.pid(project) + expectation.key[len(project) :])
        if due is None:
            return "no such open deadline"
        if due.at == expectation.value:
            return None
        return format_local(due.at)

    def _check_points(self, expectation: Expectation) -> str | None:
        found = self.engine.points(self._ids()).get(expectation.key, 0)
        return None if found == expectation.value else str(found)

    def _check_metric(self, expectation: Expectation) -> str | None:
        metrics = self.engine.metrics(self._ids())
        if expectation.key not in metrics:
            return f"no metric {expectation.key!r} (metrics: {', '.join(sorted(metrics))})"
        found = metrics[expectation.key]
        return None if _close(expectation.value, found) else _show(found)

    def _check_notices(self, step: ExpectStep) -> StepFailure | None:
        unused = list(self.notices)
        for expectation in step.notices:
            wanted = expectation.value
            match = next((n for n in unused if _subset(wanted, n)), None)
            if match is None:
                return StepFailure(
                    step.index,
                    expectation.line,
                    f"expect {expectation.key}",
                    _show(wanted),
                    _show_notices(self.notices),
                )
            unused.remove(match)
        for expectation in step.no_notices:
            match = next((n for n in self.notices if _subset(expectation.value, n)), None)
            if match is not None:
                return StepFailure(
                    step.index,
                    expectation.line,
                    f"expect {expectation.key}",
                    f"no notice like {_show(expectation.value)}",
                    _show(match),
                )
        return None

    def _check_events(self, step: ExpectStep) -> StepFailure | None:
        unused = list(self.events)
        for expectation in step.events:
            match = next((e for e in unused if _subset(expectation.value, e)), None)
            if match is None:
                return StepFailure(
                    step.index,
                    expectation.line,
                    f"expect {expectation.key}",
                    _show(expectation.value),
                    _show_events(self.events),
                )
            unused.remove(match)
        return None

    # -- helpers ----------------------------------------------------------------------------

    def _ids(self) -> list[str]:
        return [self.pid(project) for project in self.projects]

    def _version(self, project: str) -> int | None:
        state = self.engine.store.load(project)
        return state.version if state else None

    def _record(self, notices: Sequence[Notice], events: Sequence[Event] = ()) -> None:
        for notice in notices:
            project = self.written(notice.project)
            if project is None:
                continue  # another run's project in a shared store
            for flat in notice.per_recipient():
                flat["project"] = project
                self.notices.append(flat)
        for event in events:
            project = self.written(event.project)
            if project is None:
                continue
            self.events.append(
                {
                    **event.payload,
                    "type": event.type,
                    "project": project,
                    "by": event.by,
                    "on_behalf_of": event.on_behalf_of,
                }
            )


def _namespaced(prefix: str, name: str) -> str:
    """``prefix + name``, within the engine's 100-character id limit whenever ``name`` is."""
    from approvalflow.rules.lifecycle import validate_project_id

    if not prefix:
        return name
    try:
        validate_project_id(name)
    except ApprovalflowError:
        return name  # refused alone: refused the same way on any store
    joined = prefix + name
    if len(joined) <= _MAX_ID:
        return joined
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{joined[: _MAX_ID - len(digest) - 1]}-{digest}"


def _step_name(step: Step) -> str:
    if isinstance(step, CommandStep):
        return f"{step.command} {step.project} by {step.by}"
    if isinstance(step, AdvanceStep):
        return "advance"
    if isinstance(step, RulesStep):
        return "rules"
    return "expect"


def _expected(step: Step) -> str:
    if isinstance(step, CommandStep):
        return step.error or "success"
    return "the step to run"


def _subset(wanted: Any, found: Any) -> bool:
    if isinstance(wanted, Mapping):
        return isinstance(found, Mapping) and all(
            key in found and _subset(value, found[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        if not isinstance(found, list | tuple) or len(wanted) != len(found):
            return False
        remaining = list(found)
        for item in wanted:
            match = next((f for f in remaining if _subset(item, f)), None)
            if match is None:
                return False
            remaining.remove(match)
        return True
    return _close(wanted, found)


def _close(expected: Any, found: Any) -> bool:
    if isinstance(expected, Mapping):
        return isinstance(found, Mapping) and all(
            key in found and _close(value, found[key]) for key, value in expected.items()
        )
    numeric = (int, float, Fraction, Decimal)
    if (
        isinstance(expected, numeric)
        and isinstance(found, numeric)
        and not isinstance(expected, bool)
        and not isinstance(found, bool)
    ):
        return math.isclose(float(expected), float(found), rel_tol=0, abs_tol=_TOLERANCE)
    if isinstance(expected, datetime) and isinstance(found, str):
        return format_local(expected) == found
    return bool(expected == found)


def _show(value: Any) -> str:
    if isinstance(value, Fraction):
        return f"{float(value):.4g} ({value})"
    if isinstance(value, datetime):
        return format_local(value)
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _show_events(events: list[dict[str, Any]]) -> str:
    if not events:
        return "no events since the previous expect step"
    keys = ("type", "project", "by", "on_behalf_of")
    shown = [
        "{" + ", ".join(f"{k}: {_show(e[k])}" for k in keys if e.get(k) is not None) + "}"
        for e in events[-12:]
    ]
    more = f" (and {len(events) - 12} earlier)" if len(events) > 12 else ""
    return "\n              ".join(shown) + more


def _show_notices(notices: list[dict[str, Any]]) -> str:
    if not notices:
        return "no notices since the previous expect step"
    shown = [
        "{" + ", ".join(f"{k}: {_show(n[k])}" for k in ("to", "kind", "project") if k in n) + "}"
        for n in notices[:12]
    ]
    more = f" (+{len(notices) - 12} more)" if len(notices) > 12 else ""
    return "\n              ".join(shown) + more
