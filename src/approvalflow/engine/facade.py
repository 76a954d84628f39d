"""``Engine``: the one object a host uses, over the services it is assembled from."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pluggy

from approvalflow import inputs
from approvalflow.calendar import Due, WorkingCalendar
from approvalflow.clock import Clock, SystemClock
from approvalflow.engine.commands import CommandRunner
from approvalflow.engine.definition import RuleBook, WorkflowDefinition
from approvalflow.engine.notices import NoticeDispatcher
from approvalflow.engine.reading import ReadSide
from approvalflow.engine.timers import TimerExecutor
from approvalflow.engine.unit_of_work import UnitOfWork
from approvalflow.errors import NotArchivable
from approvalflow.model import Actor, ActorDirectory, CommandResult, Event, InMemoryActorDirectory
from approvalflow.plugins import combine
from approvalflow.project import ProjectState
from approvalflow.rules.commands import CommandSpec
from approvalflow.rules.holdups import Holdup, LateDue
from approvalflow.rules.metrics import MetricInputs, TeamMonthCounts
from approvalflow.rules.points import LeaderboardRow
from approvalflow.rules.preview import Preview
from approvalflow.settings import Settings
from approvalflow.states import TERMINAL
from approvalflow.stores import Store, open_store
from approvalflow.tasks import DoneItem, TaskItem, engine_done, engine_tasks

__all__ = ["Engine"]


class Engine:
    """Runs the ``investment_project`` workflow for one county's settings and plugins.

    :param actors: the host's actor directory (or an iterable of ``Actor``).
    :param store: a ``Store``, a store URL, or ``None`` for a fresh in-memory store.
    :param settings: overrides (nested WORKFLOW.md keys) or a ``Settings``; applied after plugins.
    :param plugins: entry-point names or plugin objects; only these (and the built-in) are active.
    :param clock: where the time comes from (default: the system clock, Asia/Shanghai).
    :param deliver: ``"inline"`` calls the notify hooks right after each command; ``"outbox"``
        leaves every notice in the outbox for ``deliver_notices`` (a worker), so a slow channel
        never delays a command.
    :param notify_timeout: seconds a notify hook may take before its delivery counts as failed
        (and is retried later); ``None`` waits.
    :param catch_up: before a command, fire the project's deadlines that have passed but no
        worker has fired yet, so the command meets their consequences (``False`` leaves
        deadlines to ``run_due`` alone).
    :param county: the county this engine runs (``InvalidCounty`` for a bad id): it works on
        ``store.for_county(county)``, so it reads and writes that county's rows alone; ``None``
        runs on ``store`` as given (the unscoped store is ``DEFAULT_COUNTY``'s, a county view
        its county's). Several counties are several engines over views of one store.

    ``settings`` and ``plugins`` make the engine's ``definition`` (a ``WorkflowDefinition``);
    assigning another one is how a county's engine takes up newly published rules.
    """

    def __init__(
        self,
        *,
        actors: ActorDirectory | Iterable[Actor],
        store: Store | str | None = None,
        settings: Settings | Mapping[str, Any] | None = None,
        plugins: Iterable[str | object] = (),
        clock: Clock | None = None,
        max_retries: int = 8,
        deliver: str = "inline",
        notify_timeout: float | None = None,
        catch_up: bool = True,
        county: str | None = None,
    ) -> None:
        self.actors: ActorDirectory = (
            actors if isinstance(actors, ActorDirectory) else InMemoryActorDirectory(actors)
        )
        opened: Store = (
            store if store is not None and not isinstance(store, str) else (open_store(store))
        )
        if county is not None:
            opened = opened.for_county(county)
        self.clock: Clock = clock or SystemClock()
        self._max_retries = max_retries
        self._deliver = deliver
        self._notify_timeout = notify_timeout
        self._catch_up = catch_up
        self._assemble(WorkflowDefinition(settings=settings, plugins=plugins), opened)

    def _assemble(self, definition: WorkflowDefinition, store: Store) -> None:
        """Build the services over ``definition`` and ``store`` (each holds only references)."""
        combine.check_roles(self.actors, definition.roles)
        self._definition = definition
        self._store = store
        self._rules = RuleBook(definition, store)
        self._dispatcher = NoticeDispatcher(
            definition,
            store,
            self.clock,
            deliver=self._deliver,
            notify_timeout=self._notify_timeout,
        )
        unit_of_work = UnitOfWork(self._rules, store, self.clock, self._dispatcher)
        self._timers = TimerExecutor(
            self._rules,
            store,
            self.clock,
            self.actors,
            unit_of_work,
            self._dispatcher,
            max_retries=self._max_retries,
        )
        self._runner = CommandRunner(
            self._rules,
            store,
            self.clock,
            self.actors,
            unit_of_work,
            self._dispatcher,
            self._timers,
            max_retries=self._max_retries,
            catch_up=self._catch_up,
        )
        self._reading = ReadSide(self._rules, store, self.clock, self.actors)

    # -- what the engine runs, and where ------------------------------------------------------

    @property
    def definition(self) -> WorkflowDefinition:
        """The county's workflow: settings, calendar, commands and plugins."""
        return self._definition

    @definition.setter
    def definition(self, definition: WorkflowDefinition) -> None:
        # Projects stay pinned to the rule sets they were created under (``rules_for``).
        self._assemble(definition, self._store)

    @property
    def store(self) -> Store:
        return self._store

    @store.setter
    def store(self, store: Store) -> None:
        self._assemble(self._definition, store)

    @property
    def county(self) -> str | None:
        """The county this engine runs: its store's (``None``: the unscoped store, which is
        ``DEFAULT_COUNTY``'s)."""
        return self._store.county

    @property
    def settings(self) -> Settings:
        return self._definition.settings

    @property
    def calendar(self) -> WorkingCalendar:
        return self._definition.calendar

    @property
    def commands(self) -> Mapping[str, CommandSpec]:
        return self._definition.commands

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        return self._definition.plugin_manager

    # -- commands ---------------------------------------------------------------------------

    def execute(
        self,
        command: str,
        project: str,
        by: str,
        args: Mapping[str, Any] | None = None,
        *,
        command_id: str | None = None,
    ) -> CommandResult:
        """Run one command for actor ``by`` on ``project``.

        ``create`` takes the project's fields as ``args``. With a ``command_id`` seen before, the
        same arguments return the first result (``replayed=True``) and write nothing; other
        arguments raise ``InvalidCommand``.
        """
        inputs.check_command(command, project, by, args, command_id)
        return self._runner.execute(command, project, by, args, command_id=command_id)

    def rules_for(self, state: ProjectState) -> Settings:
        """The county rule set ``state`` is pinned to: the one it was created (or last
        migrated) under, whatever the engine's current settings are."""
        return self._rules.rules_for(state)

    def rules_for_fingerprint(self, fingerprint: str, project: str) -> Settings:
        """The county rule set saved under ``fingerprint``, as ``rules_for`` reads it for a
        project pinned to it (``project`` names it in a warning or an error)."""
        return self._rules.rules_for_fingerprint(fingerprint, project)

    # -- notices and timers -----------------------------------------------------------------

    def deliver_notices(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Deliver up to ``limit`` notices of the outbox whose next attempt is due; return how
        many went (``NoticeDispatcher.deliver_notices``)."""
        return self._dispatcher.deliver_notices(now, limit)

    def run_due(
        self, now: datetime | None = None, limit: int = 100, *, prefix: str = ""
    ) -> list[CommandResult]:
        """Fire every timer due at or before ``now`` (default: the clock), in time order, once
        (``TimerExecutor.run_due``)."""
        return self._timers.run_due(now, limit, prefix=prefix)

    def timers_for(self, state: ProjectState) -> dict[tuple[str, str], datetime]:
        """Every deadline ``state`` waits on: the built-in rules' and the plugins'."""
        return self._rules.timers_for(state)

    # -- archiving --------------------------------------------------------------------------

    def archive(self, project: str, archive: str) -> None:
        """Pack the finished ``project`` into the archive named ``archive`` (``2026_q1``):
        every read answers as before, and no command or timer changes it again
        (``ProjectArchived``, D266).

        Finished (D265): a terminal stage (effective, rejected, withdrawn, terminated), no
        deadline its rules derive, and none the store keeps, and no open task item; else
        ``NotArchivable`` saying what is left. ``UnknownProject`` for an id the store lacks.
        """
        state = self._reading.project(project)
        if state.stage not in TERMINAL:
            raise NotArchivable(
                f"{project} is at {state.stage}: only a finished project (effective, rejected, "
                "withdrawn or terminated) is archived"
            )
        waiting = sorted(
            f"{kind}/{branch}" if branch else kind for kind, branch in self.timers_for(state)
        )
        if waiting:
            raise NotArchivable(
                f"{project} still waits on {', '.join(waiting)}: a finished project has no "
                "deadline left"
            )
        self._store.archive(project, archive, state.version)

    def archive_of(self, project: str) -> str | None:
        """The archive holding ``project``, or ``None`` while it is live."""
        return self._store.archive_of(project)

    # -- reading ----------------------------------------------------------------------------

    def project(self, project: str) -> ProjectState:
        """The project's current state (a copy: changing it changes nothing)."""
        return self._reading.project(project)

    def history(self, project: str) -> list[Event]:
        return self._reading.history(project)

    def deadlines(self, project: str) -> dict[str, Due]:
        """Open deadlines by scenario key (``P1.pre_review``, ``P1.approval.zj.supply``...)."""
        return self._reading.deadlines(project)

    def deadlines_of(self, state: ProjectState) -> dict[str, Due]:
        """``deadlines`` of a state this engine read (``project``, ``projects``) without
        loading it again: a page or report that shows a project's state, deadlines and holdups
        reads it once, so all three are of one version."""
        return self._reading.deadlines_of(state)

    def preview(
        self,
        fields: Mapping[str, Any],
        by: str,
        *,
        start: datetime | None = None,
        approval_start: datetime | None = None,
    ) -> Preview:
        """What-if: the departments, every deadline and the warning ladder's card dates a
        project with ``fields`` would get if it were submitted at ``start`` and applied for at
        ``approval_start`` (both default to the clock), with the county's time limits and
        ladders. Validates the fields as ``create`` would; writes nothing."""
        return self._reading.preview(fields, by, start=start, approval_start=approval_start)

    def holdups(self, project: str) -> list[Holdup]:
        """What ``project`` waits on now (review units, branches, the applicant), the earliest
        deadline first: the head of its critical path; each with its last card, if any."""
        return self._reading.holdups(project)

    def holdups_of(self, state: ProjectState) -> list[Holdup]:
        """``holdups`` of a state this engine read (``project``, ``projects``) without loading
        it again."""
        return self._reading.holdups_of(state)

    def late_items(
        self, now: datetime | None = None, ids: Iterable[str] | None = None
    ) -> dict[str, list[Holdup]]:
        """Every open review or branch past its deadline, by department (a county's list)."""
        return self._reading.late_items(now, ids)

    def project_ids(self) -> list[str]:
        return self._reading.project_ids()

    def late_summary(self, now: datetime | None = None, limit: int = 8) -> dict[str, list[LateDue]]:
        """The late items by department and deadline: how many fell due at each deadline, the
        cards they show and the first ``limit`` (what the 逾期 board shows), without making
        every item."""
        return self._reading.late_summary(now, limit)

    def project_names(self, ids: Iterable[str]) -> dict[str, str]:
        """The name of each of ``ids`` that exists (read from its first event)."""
        return self._reading.project_names(ids)

    def projects(self, ids: Iterable[str] | None = None) -> list[ProjectState]:
        return self._reading.projects(ids)

    def points(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, int]:
        """Points per team over the chosen projects (default: all), in ``month`` or ever."""
        return self._reading.points(ids, month=month)

    def points_by_milestone(
        self, month: str | None = None, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """Points per team and milestone (the 赛马榜's bars split by what earned them)."""
        return self._reading.points_by_milestone(month, ids)

    def leaderboard(self, month: str, ids: Iterable[str] | None = None) -> list[LeaderboardRow]:
        """The month's board (rule 11) over the chosen projects, with last month's ranks."""
        return self._reading.leaderboard(month, ids)

    def metric_inputs(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> MetricInputs:
        """What the built-in metrics of the chosen projects are computed from."""
        return self._reading.metric_inputs(ids, month=month)

    def metrics(
        self, ids: Iterable[str] | None = None, *, plugins: bool = True, month: str | None = None
    ) -> dict[str, Any]:
        """WORKFLOW.md's metrics (rule 12) plus every plugin's, over the chosen projects;
        ``month`` (``YYYY-MM``): over those signed in that month only (D177).

        Plugins' metrics get the project states, so only they load the projects (and only when
        a plugin has an ``approvalflow_metrics`` hook); ``plugins=False`` leaves them out.
        """
        return self._reading.metrics(ids, plugins=plugins, month=month)

    def signed_in(self, month: str, ids: Iterable[str] | None = None) -> list[str]:
        """The chosen projects signed in ``month`` (the month of their ``signed`` milestone, as
        the leaderboard counts it), in id order: the cohort ``month=`` reports are over."""
        return self._reading.signed_in(month, ids)

    def rating_metrics(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """好差评 per department and month (``{department: {YYYY-MM: figures}}``): ratings,
        average score, bad ones, rectifications on time, late and open (docs/ratings.md)."""
        return self._reading.rating_metrics(ids, month=month)

    def team_metrics(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The built-in metrics of each team with a project (among the chosen), by team id;
        ``month``: of the projects signed in that month only (D177)."""
        return self._reading.team_metrics(ids, month=month)

    def team_metric_inputs(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, MetricInputs]:
        """What each team's built-in metrics are computed from, by team id: their sum is the
        county's ``metric_inputs`` (every project has a team), read in one query."""
        return self._reading.team_metric_inputs(ids, month=month)

    def team_month_counts(self) -> dict[tuple[str, str | None], TeamMonthCounts]:
        """Every team's counts by the month its projects were signed in (``None``: not signed),
        in team and month order: the four rates by team and month (``TeamMonthCounts.figures``)
        read from the counts the commits keep, no project loaded. A team's counts over every
        month are its ``team_metric_inputs()``; one month's, its ``team_metric_inputs(month=)``
        (stage and department days aside)."""
        return self._reading.team_month_counts()

    def tasks(self, actor: str, now: datetime | None = None) -> list[TaskItem]:
        """What waits on ``actor`` across every project (待办), most urgent first."""
        return engine_tasks(self, actor, now)

    def done(self, actor: str, limit: int | None = None) -> list[DoneItem]:
        """What ``actor`` did (or an agent or deputy did for them) on every project (已办),
        the latest first; ``limit``: the latest that many only (``done(a)[:limit]``, read
        without the rest)."""
        return engine_done(self, actor, limit)

    def command_names(self) -> list[str]:
        return self._reading.command_names()

    def allowed_commands(self, project: str) -> list[str]:
        """Commands the project's stage allows now (authorisation not considered)."""
        return self._reading.allowed_commands(project)

    def allowed_commands_of(self, state: ProjectState) -> list[str]:
        """``allowed_commands`` of a state this engine read, without loading it again."""
        return self._reading.allowed_commands_of(state)
