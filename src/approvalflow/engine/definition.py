"""The workflow definition: what one county runs (settings, calendar, commands, plugins), and
the rule book, that definition as the projects of one store see it (each under the rule set it
is pinned to).

A county that publishes new rules gets a new definition; the store, the clock and the actors
stay. ``Engine.definition`` is what a host (or the scenario runner's ``rules:`` step) swaps.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from approvalflow.calendar import WorkingCalendar
from approvalflow.engine._log import logger
from approvalflow.errors import InvalidCommand
from approvalflow.plugins import combine
from approvalflow.plugins.folds import build_fold_table
from approvalflow.plugins.manager import build_plugin_manager
from approvalflow.project import ProjectState
from approvalflow.rules import timers
from approvalflow.rules.commands import BUILTIN_COMMANDS, CommandSpec
from approvalflow.settings import LadderStep, Settings, SettingsError, ladder_problems
from approvalflow.states import TERMINAL, investment_project
from approvalflow.stores import Store

__all__ = ["STORED_TIMERS_SIZE", "RuleBook", "WorkflowDefinition"]

STORED_TIMERS_SIZE = 256
"""Projects whose derived timers a rule book keeps, least recently written first out: the hot
path is the next command on a project a command just wrote (as for the stores' state cache)."""


class WorkflowDefinition:
    """One county's workflow: the plugins, the settings they and ``settings`` give, the
    working calendar, the commands, and which hooks any plugin implements.

    :param settings: overrides (nested WORKFLOW.md keys) or a ``Settings``; applied after plugins.
    :param plugins: entry-point names or plugin objects; only these (and the built-in) are active.
    """

    def __init__(
        self,
        *,
        settings: Settings | Mapping[str, Any] | None = None,
        plugins: Iterable[str | object] = (),
    ) -> None:
        plugins = tuple(plugins)
        self.plugin_names = tuple(plugin for plugin in plugins if isinstance(plugin, str))
        """The entry-point names among the plugins: what the store records of them."""
        self.plugin_manager = build_plugin_manager(plugins)
        hook = self.plugin_manager.hook
        merged = combine.merged_settings(self.plugin_manager, Settings.default())
        self.roles = combine.declared_roles(self.plugin_manager)
        self.folds = build_fold_table(self.plugin_manager)
        if isinstance(settings, Settings):
            merged = settings
        elif settings:
            merged = merged.merged(settings)
        problems = [
            problem
            for found in hook.approvalflow_check_settings(settings=merged)
            for problem in found or ()
        ]
        if problems:
            raise SettingsError("; ".join(problems))
        self.settings: Settings = merged
        calendar = WorkingCalendar(merged.calendar.official_years, strict=merged.calendar.strict)
        for data in hook.approvalflow_official_calendar():
            for year in data or ():
                calendar = calendar.with_official_data(year)
        self.calendar = calendar
        commands = dict(BUILTIN_COMMANDS)
        for extra in hook.approvalflow_commands():
            for spec in extra or ():
                if spec.name in commands:
                    raise ValueError(f"command {spec.name!r} is defined twice")
                commands[spec.name] = spec
        self.commands: Mapping[str, CommandSpec] = commands
        # The stage and branch machines, built by transitions and checked on first use.
        self.machines = investment_project()
        self.extra_fields = tuple(
            name for names in hook.approvalflow_project_fields() for name in (names or ())
        )
        self.settings_fingerprint = merged.fingerprint()
        self.has_notify_hooks = bool(hook.approvalflow_notify.get_hookimpls())
        self.has_timer_hooks = bool(hook.approvalflow_timers.get_hookimpls())
        self.has_check_hooks = bool(hook.approvalflow_check_command.get_hookimpls())
        self.has_after_hooks = bool(hook.approvalflow_after_command.get_hookimpls())
        self.has_limit_hooks = bool(hook.approvalflow_time_limit.get_hookimpls())
        self.has_ladder_hooks = bool(hook.approvalflow_ladder.get_hookimpls())
        self.has_recipient_hooks = bool(hook.approvalflow_notice_recipients.get_hookimpls())

    def route(self, state: ProjectState, settings: Settings) -> tuple[str, ...]:
        return combine.route(self.plugin_manager, state, settings)


class RuleBook:
    """The definition over one store: every rule set a project of the store may be pinned to,
    by fingerprint, and what depends on a project's own rule set (its deadlines, time limits
    and ladders). The current rule set is written to the store with the first project created
    (or migrated) under it."""

    def __init__(self, definition: WorkflowDefinition, store: Store) -> None:
        self.definition = definition
        self.store = store
        self._rule_sets: dict[str, Settings] = {
            definition.settings_fingerprint: definition.settings
        }
        self._current_rules_saved = False
        # The timers last derived for each project, with the version they belong to: a
        # project's state at a version is the same whoever reads it, so the timers a commit
        # derived for its new state are the next command's (and its catch-up's) timers too.
        self._stored_timers: dict[str, tuple[int, dict[tuple[str, str], datetime]]] = {}
        # An engine may be shared by threads, as its store may: writers take the lock (a
        # reader's single lookup needs none).
        self._stored_timers_lock = threading.Lock()

    def load(self, project: str, *, for_command: bool = False) -> ProjectState | None:
        """The store's state of ``project``, folded with the definition's plugin folds
        (``for_command``: as the store last knew it, for a command to commit from, D306)."""
        return self.definition.folds.load(self.store, project, for_command=for_command)

    def load_many(self, projects: Collection[str]) -> dict[str, ProjectState]:
        """``load`` of each of ``projects`` that exists, by id (the store's ``load_many``)."""
        return self.definition.folds.load_many(self.store, projects)

    def rules_for(self, state: ProjectState) -> Settings:
        """The county rule set ``state`` is pinned to: the one it was created (or last
        migrated) under, whatever the engine's current settings are."""
        found = self._rule_sets.get(state.settings_fingerprint)
        if found is not None:
            return found
        return self.rules_for_fingerprint(
            state.settings_fingerprint, state.id, repr(state.rules_version)
        )

    def rules_for_fingerprint(
        self, fingerprint: str, project: str, label: str = "a rule set"
    ) -> Settings:
        """The county rule set saved under ``fingerprint`` (``rules_for`` without the state:
        the task list reads it off a task row of ``project``; ``label`` names the rule set in
        an error)."""
        found = self._rule_sets.get(fingerprint)
        if found is not None:
            return found
        text = self.store.rule_set(fingerprint)
        if text is None:
            # A project written before rule sets were kept (schema version 2 or older): it
            # was never pinned, so it follows the current rules, as it always did (D32).
            logger().warning(
                "approvalflow.rule_set_missing", project=project, fingerprint=fingerprint
            )
            found = self.definition.settings
        else:
            try:
                found = Settings.from_canonical_json(text)
            except SettingsError as error:
                raise SettingsError(
                    f"{project} is pinned to rule set {label} "
                    f"({fingerprint[:12]}), which this approvalflow cannot read: {error}"
                ) from None
        self._rule_sets[fingerprint] = found
        return found

    def save_current_rules(self) -> None:
        if not self._current_rules_saved:
            settings = self.definition.settings
            self.store.save_rule_set(
                self.definition.settings_fingerprint,
                settings.rules_version,
                settings.canonical_json(),
            )
            self._current_rules_saved = True

    def timers_for(self, state: ProjectState) -> dict[tuple[str, str], datetime]:
        """Every deadline ``state`` waits on: the built-in rules' and the plugins'."""
        definition = self.definition
        found = timers.timers_for(state, definition.calendar)
        if definition.has_timer_hooks and state.stage not in TERMINAL:
            for extra in definition.plugin_manager.hook.approvalflow_timers(
                project=state, settings=self.rules_for(state), calendar=definition.calendar
            ):
                found.update(extra or {})
        return found

    def stored_timers(self, state: ProjectState) -> dict[tuple[str, str], datetime]:
        """``timers_for`` a state as the store holds it (loaded, or just committed), derived
        once per version. Read-only: the same mapping is handed to every caller."""
        entry = self._stored_timers.get(state.id)
        if entry is not None and entry[0] == state.version:
            return entry[1]
        found = self.timers_for(state)
        self.remember_timers(state, found)
        return found

    def remember_timers(self, state: ProjectState, found: dict[tuple[str, str], datetime]) -> None:
        """Keep ``found`` as the timers of ``state``, which the store now holds."""
        kept = self._stored_timers
        with self._stored_timers_lock:
            # Re-inserted, so the projects written longest ago are the first out.
            kept.pop(state.id, None)
            kept[state.id] = (state.version, found)
            if len(kept) > STORED_TIMERS_SIZE:
                del kept[next(iter(kept))]

    def time_limit(self, state: ProjectState, department: str) -> int:
        rules = self.rules_for(state)
        answer = self.definition.plugin_manager.hook.approvalflow_time_limit(
            project=state, department=department, settings=rules
        )
        if answer is None:
            return rules.time_limit_wd[department]
        if isinstance(answer, bool) or not isinstance(answer, int) or answer < 1:
            raise InvalidCommand(
                f"a plugin's time limit for {department} must be a whole number of working days "
                f"of at least 1, not {answer!r}"
            )
        return answer

    def ladder(self, state: ProjectState, stage: str, department: str) -> tuple[LadderStep, ...]:
        rules = self.rules_for(state)
        answer = self.definition.plugin_manager.hook.approvalflow_ladder(
            project=state, stage=stage, department=department, settings=rules
        )
        if answer is None:
            return rules.ladder.steps if rules.ladder.enabled else ()
        where = f"a plugin's warning ladder for {department} in {stage}"
        steps: list[LadderStep] = []
        for step in answer if not isinstance(answer, str | Mapping) else [answer]:
            if isinstance(step, Mapping) and set(step) == {"card", "offset_wd", "recipients"}:
                try:
                    step = LadderStep.from_dict(step)
                except TypeError as error:
                    raise InvalidCommand(f"{where}: {error}") from None
            if not isinstance(step, LadderStep):
                raise InvalidCommand(
                    f"{where} must be a list of LadderStep (or of mappings with card, "
                    f"offset_wd and recipients), not {answer!r}"
                )
            steps.append(step)
        problems = ladder_problems(steps, where)
        if problems:
            raise InvalidCommand("; ".join(problems))
        return tuple(steps)
