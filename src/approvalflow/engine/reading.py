"""The read side: a project's state, history and deadlines, what-if previews, what holds a
project up, and the reports (points, leaderboard, metrics). Writes nothing.

Every read checks what it is given at the door, as ``execute`` does (``approvalflow.inputs``,
D297): a malformed project id, choice of projects, month, moment or limit is an
``InvalidCommand``, a well-formed id of no project ``UnknownProject``; no store sees either."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time
from typing import Any

from approvalflow.calendar import Due, to_local
from approvalflow.clock import Clock
from approvalflow.engine._context import find_actor
from approvalflow.engine.definition import RuleBook
from approvalflow.errors import InvalidCommand, NotAuthorized, UnknownProject
from approvalflow.inputs import (
    check_limit,
    check_moment,
    check_month,
    check_project_ids,
    validate_project_id,
)
from approvalflow.model import ActorDirectory, Event
from approvalflow.plugins.folds import with_plugin_folds
from approvalflow.project import ProjectState
from approvalflow.rules import holdups as holdups_rule
from approvalflow.rules import lifecycle, metrics, stages, timers
from approvalflow.rules import points as points_rule
from approvalflow.rules import preview as preview_rule
from approvalflow.rules.holdups import Holdup, LateDue
from approvalflow.rules.metrics import MetricInputs, TeamMonthCounts
from approvalflow.rules.points import LeaderboardRow
from approvalflow.rules.preview import Preview
from approvalflow.settings import Settings
from approvalflow.states import TERMINAL
from approvalflow.stores import Store
from approvalflow.stores.projections import TaskRow
from approvalflow.tasks import (
    LATE_KINDS,
    late_of_rows,
    late_summary_of_groups,
    late_summary_of_rows,
)

__all__ = ["ReadSide"]

SIGNED = "signed"
"""The milestone a month's cohort of projects is chosen by (D177)."""


class ReadSide:
    """Answers questions about the store's projects under the definition's rules."""

    def __init__(self, rules: RuleBook, store: Store, clock: Clock, actors: ActorDirectory) -> None:
        self.rules = rules
        self.definition = rules.definition
        self.store = store
        self.clock = clock
        self.actors = actors

    def project(self, project: str) -> ProjectState:
        """The project's current state (a copy: changing it changes nothing)."""
        state = self.rules.load(validate_project_id(project))
        if state is None:
            raise UnknownProject(f"no project {project!r}")
        return state.clone()

    def history(self, project: str) -> list[Event]:
        if self.rules.load(validate_project_id(project)) is None:
            raise UnknownProject(f"no project {project!r}")
        return self.store.events(project)

    def deadlines(self, project: str) -> dict[str, Due]:
        """Open deadlines by scenario key (``P1.pre_review``, ``P1.approval.zj.supply``...)."""
        return self.deadlines_of(self.project(project))

    def deadlines_of(self, state: ProjectState) -> dict[str, Due]:
        """``deadlines`` of a state already read (``project``, ``projects``): no second load,
        so a view built from several reads shows one version."""
        project = _checked_state(state, "deadlines_of").id
        names = {
            timers.PRE_REVIEW_DEADLINE: "{p}.pre_review",
            timers.BRANCH_LIMIT: "{p}.approval.{b}",
            timers.SUPPLY_DEADLINE: "{p}.approval.{b}.supply",
            timers.SUPPLY_REMINDER: "{p}.approval.{b}.reminder",
            timers.VERIFY_DEADLINE: "{p}.approval.{b}.verify",
            timers.ACCEPTANCE_DEADLINE: "{p}.approval.{b}.acceptance",
            timers.LADDER: "{p}.approval.{b}.card",
            timers.PRE_REVIEW_LADDER: "{p}.pre_review.{b}.card",
            stages.STAGE_LIMIT: "{p}.stage.{b}",
            stages.STAGE_LIMIT_CARD: "{p}.stage.{b}.card",
            stages.TOTAL_LIMIT: "{p}.total",
            stages.TOTAL_LIMIT_CARD: "{p}.total.card",
            timers.RECTIFICATION_DUE: "{p}.rectification.{b}",
            timers.RECTIFICATION_WARNING: "{p}.rectification.{b}.warning",
            timers.RECTIFICATION_LADDER: "{p}.rectification.{b}.card",
        }
        found: dict[str, Due] = {}
        for (kind, branch), due in self.rules.stored_timers(state).items():
            if kind not in names:
                # A plugin's timer shows as a deadline when it ends a day (24:00), like every
                # working-day limit; others (a weekly check at 09:00) still fire, unlisted here.
                if to_local(due).time() == time(0):
                    found[f"{project}.{kind}" + (f".{branch}" if branch else "")] = Due(
                        to_local(due), False
                    )
                continue
            provisional = False
            if kind == timers.PRE_REVIEW_DEADLINE and state.round is not None:
                provisional = state.round.provisional
            elif kind == timers.BRANCH_LIMIT:
                provisional = state.branches[branch].provisional
            elif kind == stages.STAGE_LIMIT and branch in state.stage_runs:
                provisional = state.stage_runs[branch].provisional
            elif kind == stages.TOTAL_LIMIT:
                provisional = state.total_provisional
            found[names[kind].format(p=project, b=branch)] = Due(due, provisional)
        # A returned branch's clock is stopped, so it has no limit, but its supply deadline runs.
        for dept, branch_state in state.branches.items():
            key = f"{project}.approval.{dept}"
            if branch_state.state == "returned" and key in found:
                del found[key]
        return found

    @with_plugin_folds
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
        definition = self.definition
        actor = find_actor(self.actors, by, "preview", "(preview)")
        if "recruiter" not in actor.roles:
            raise NotAuthorized(f"{actor.id} may not preview a project: is not a recruiter")
        now = self.clock.now()
        payload = lifecycle.created_payload(
            fields,
            recruiter=actor,
            actors=self.actors,
            settings=definition.settings,
            extra_fields=definition.extra_fields,
            settings_fingerprint=definition.settings_fingerprint,
        )
        state = ProjectState.created(Event("(preview)", 1, "created", now, payload))
        return preview_rule.preview(
            state,
            settings=definition.settings,
            calendar=definition.calendar,
            route=definition.route,
            start=start or now,
            approval_start=approval_start or start or now,
            time_limit=self.rules.time_limit,
            ladder=self.rules.ladder,
        )

    def holdups(self, project: str) -> list[Holdup]:
        """What ``project`` waits on now (review units, branches, the applicant), the earliest
        deadline first: the head of its critical path; each with its last card, if any."""
        return self.holdups_of(self.project(project))

    def holdups_of(self, state: ProjectState) -> list[Holdup]:
        """``holdups`` of a state already read (``project``, ``projects``): no second load."""
        _checked_state(state, "holdups_of")
        return holdups_rule.holdups(state, self.rules.rules_for(state), self.clock.now())

    def late_items(
        self, now: datetime | None = None, ids: Iterable[str] | None = None
    ) -> dict[str, list[Holdup]]:
        """Every open review or branch past its deadline, by department (a county's list):
        read from the store's task rows where it keeps them (``tasks.late_of_rows``), else
        from every chosen project's state."""
        now = self.clock.now() if now is None else check_moment(now)
        ids = check_project_ids(ids)
        rows = self.store.due_task_rows(LATE_KINDS, now)
        if rows is None:
            return holdups_rule.late_items(self.projects(ids), self.rules.rules_for, now)
        if ids is not None:
            chosen = set(ids)
            rows = [row for row in rows if row.project in chosen]
        rules = self.rules

        def settings_for(row: TaskRow) -> Settings:
            return rules.rules_for_fingerprint(row.fingerprint, row.project)

        return late_of_rows(rows, settings_for, now)

    def late_summary(self, now: datetime | None = None, limit: int = 8) -> dict[str, list[LateDue]]:
        """``late_items`` by department and deadline, each deadline's count, cards and first
        ``limit`` items (``rules.holdups.late_summary``), read where the store keeps task
        rows from their groups (``Store.due_task_groups``: counted by the database, only
        each group's first rows sent, ``tasks.late_summary_of_groups``), without a row or a
        ``Holdup`` per item."""
        check_limit(limit)
        now = self.clock.now() if now is None else check_moment(now)
        rules = self.rules

        def settings_for(row: TaskRow) -> Settings:
            return rules.rules_for_fingerprint(row.fingerprint, row.project)

        query = getattr(self.store, "due_task_groups", None)
        groups = None if query is None else query(LATE_KINDS, now, limit)
        if groups is not None:
            return late_summary_of_groups(groups, settings_for, now, limit)
        rows = self.store.due_task_rows(LATE_KINDS, now)
        if rows is None:
            return holdups_rule.late_summary(self.late_items(now), limit)
        return late_summary_of_rows(rows, settings_for, now, limit)

    def project_ids(self) -> list[str]:
        return self.store.project_ids()

    def project_names(self, ids: Iterable[str]) -> dict[str, str]:
        """The name of each of ``ids`` that exists, from its ``created`` event (a project is
        named when it is created only): no project is loaded."""
        wanted = list(dict.fromkeys(_ids(ids) or ()))
        if not wanted:
            return {}
        return {
            project: str(event.payload.get("name", project))
            for project, event in self.store.first_events(wanted).items()
        }

    def projects(self, ids: Iterable[str] | None = None) -> list[ProjectState]:
        ids = check_project_ids(ids)
        chosen = self.store.project_ids() if ids is None else ids
        found = self.rules.load_many(chosen)
        states: list[ProjectState] = []
        given: set[str] = set()
        for project in chosen:
            state = found.get(project)
            if state is not None:
                # An id named twice gets two states, as when each was loaded on its own.
                states.append(state.clone() if project in given else state)
                given.add(project)
        return states

    # The reports ask the store (a query on the SQL stores) and load no project; a store
    # without those methods (one written before them) is read project by project.

    def points(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, int]:
        """Points per team over the chosen projects (default: all), in ``month`` or ever."""
        ids, month = check_project_ids(ids), _month(month)
        query = getattr(self.store, "milestone_points", None)
        if query is None:
            return points_rule.points_by_team(self.projects(ids), month=month)
        return dict(query(month, projects=_chosen(ids)))

    def points_by_milestone(
        self, month: str | None = None, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, int]]:
        """Points per team and milestone over the chosen projects, in ``month`` or ever."""
        ids, month = check_project_ids(ids), _month(month)
        query = getattr(self.store, "milestone_points_by_kind", None)
        if query is None:
            return points_rule.points_by_milestone(self.projects(ids), month=month)
        found: dict[str, dict[str, int]] = query(month, projects=_chosen(ids))
        return found

    def leaderboard(self, month: str, ids: Iterable[str] | None = None) -> list[LeaderboardRow]:
        """The month's board (rule 11) over the chosen projects, with last month's ranks."""
        ids, month = check_project_ids(ids), check_month(month)
        query = getattr(self.store, "milestone_points", None)
        if query is None:
            return points_rule.leaderboard(self.projects(ids), month)
        chosen = _chosen(ids)
        return points_rule.rank_teams(
            query(month, projects=chosen),
            query(points_rule.previous_month(month), projects=chosen),
        )

    def signed_in(self, month: str, ids: Iterable[str] | None = None) -> list[str]:
        """The chosen projects whose ``signed`` milestone falls in ``month`` (the leaderboard's
        month, ``rules.points.milestone_month``), in id order."""
        ids, month = check_project_ids(ids), check_month(month)
        query = getattr(self.store, "milestone_projects", None)
        if query is None:
            found = [
                state.id
                for state in self.projects(ids)
                if SIGNED in state.milestones
                and points_rule.milestone_month(state.milestones[SIGNED]) == month
            ]
        else:
            found = list(query(SIGNED, month))
            if ids is not None:
                chosen = set(ids)
                found = [project for project in found if project in chosen]
        return sorted(found)

    def _cohort(self, ids: Iterable[str] | None, month: str | None) -> Iterable[str] | None:
        """The chosen projects (checked), or those of them signed in ``month``."""
        return check_project_ids(ids) if month is None else self.signed_in(month, ids)

    def metric_inputs(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> MetricInputs:
        """What the built-in metrics of the chosen projects are computed from."""
        ids = self._cohort(ids, month)
        query = getattr(self.store, "metric_inputs", None)
        if query is None:
            return metrics.metric_inputs(self.projects(ids))
        result: MetricInputs = query(_chosen(ids))
        return result

    def metrics(
        self, ids: Iterable[str] | None = None, *, plugins: bool = True, month: str | None = None
    ) -> dict[str, Any]:
        """WORKFLOW.md's metrics (rule 12) plus every plugin's, over the chosen projects.

        Plugins' metrics get the project states, so only they load the projects (and only when
        a plugin has an ``approvalflow_metrics`` hook); ``plugins=False`` leaves them out.
        """
        definition = self.definition
        ids = self._cohort(ids, month)
        found = metrics.metrics_from_inputs(self.metric_inputs(ids), definition.calendar)
        hook = definition.plugin_manager.hook.approvalflow_metrics
        if plugins and hook.get_hookimpls():
            for extra in hook(projects=self.projects(ids), settings=definition.settings):
                found.update(extra or {})
        return found

    def rating_metrics(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """好差评 per department and month over the chosen projects (``rules.metrics``).

        Read from the project states (no report table holds ratings yet, D158)."""
        return metrics.rating_metrics(self.projects(ids), _month(month))

    def team_metrics(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The built-in metrics of each team with a project (among the chosen), by team id."""
        return {
            team: metrics.metrics_from_inputs(found, self.definition.calendar)
            for team, found in self.team_metric_inputs(ids, month=month).items()
        }

    def team_metric_inputs(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, MetricInputs]:
        """What each team's built-in metrics are computed from (their sum is the county's)."""
        ids = self._cohort(ids, month)
        query = getattr(self.store, "team_metric_inputs", None)
        if query is None:
            by_team: dict[str, list[ProjectState]] = {}
            for state in self.projects(ids):
                by_team.setdefault(state.team, []).append(state)
            inputs = {team: metrics.metric_inputs(by_team[team]) for team in sorted(by_team)}
        else:
            inputs = query(_chosen(ids))
        return inputs

    def team_month_counts(self) -> dict[tuple[str, str | None], TeamMonthCounts]:
        """Each team's counts by signing month (``rules.metrics.team_month_counts``), read
        from the store's ``team_month_counts`` where it keeps them exactly, else from every
        project's state."""
        query = getattr(self.store, "team_month_counts", None)
        rows = None if query is None else query()
        if rows is None:
            return metrics.team_month_counts(self.projects())
        found = {
            (team, month or None): TeamMonthCounts(*values)
            for (team, month), (_, _, *values) in rows.items()
        }
        return dict(sorted(found.items(), key=lambda item: _team_month_order(item[0])))

    def command_names(self) -> list[str]:
        return sorted(self.definition.commands)

    def allowed_commands(self, project: str) -> list[str]:
        """Commands the project's stage allows now (authorisation not considered)."""
        return self.allowed_commands_of(self.project(project))

    def allowed_commands_of(self, state: ProjectState) -> list[str]:
        """``allowed_commands`` of a state already read: no second load."""
        _checked_state(state, "allowed_commands_of")
        triggers = self.definition.machines.stages.triggers(state.stage)
        return sorted(
            name
            for name, spec in self.definition.commands.items()
            if name != "create"
            and (
                (spec.stage_trigger is None and state.stage not in TERMINAL)
                or spec.stage_trigger in triggers
            )
        )


def _month(month: str | None) -> str | None:
    """An optional month, checked when given."""
    return None if month is None else check_month(month)


def _ids(ids: Iterable[str]) -> list[str]:
    """A choice of projects that must be given (``None`` is not every project here)."""
    found = check_project_ids(ids)
    if found is None:
        raise InvalidCommand("a choice of projects is a collection of project ids, not None")
    return found


def _team_month_order(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    return (key[0], key[1] is None, key[1] or "")


def _chosen(ids: Iterable[str] | None) -> list[str] | None:
    """The ids a report is over, each once (``None``: every project)."""
    return None if ids is None else list(dict.fromkeys(ids))


def _checked_state(state: object, method: str) -> ProjectState:
    if not isinstance(state, ProjectState):
        raise InvalidCommand(
            f"{method} takes a project's state (from Engine.project), not {type(state).__name__}"
        )
    return state
