"""The command runner: a command's checks (actor, parties, stage, arguments), its rule and the
plugins' command hooks on a context, then the unit of work; a stale write retried from a fresh
read, and a command id seen before answered with its first result."""

from __future__ import annotations

import hashlib
import json
import time as _time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from approvalflow.clock import Clock
from approvalflow.engine._context import build_context, find_actor
from approvalflow.engine._log import logger
from approvalflow.engine.definition import RuleBook
from approvalflow.engine.notices import NoticeDispatcher
from approvalflow.engine.timers import TimerExecutor
from approvalflow.engine.unit_of_work import UnitOfWork
from approvalflow.errors import (
    ApprovalflowError,
    ConcurrencyConflict,
    DuplicateProject,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    ProjectArchived,
    UnknownProject,
)
from approvalflow.model import Actor, ActorDirectory, CommandResult, Event
from approvalflow.plugins.folds import with_plugin_folds
from approvalflow.project import ProjectState
from approvalflow.rules import arguments, lifecycle
from approvalflow.rules.authorization import BranchParties, Party, authorize
from approvalflow.rules.commands import CommandSpec
from approvalflow.rules.context import Context
from approvalflow.states import TERMINAL, next_stage
from approvalflow.stores import Store
from approvalflow.stores.base import CommandRecord

__all__ = ["CommandRunner"]


class CommandRunner:
    """Runs one command at a time against the store (``Engine.execute``).

    :param catch_up: before a command, fire the project's deadlines that have passed but no
        worker has fired yet (through ``timers``), so the command meets their consequences.
    """

    def __init__(
        self,
        rules: RuleBook,
        store: Store,
        clock: Clock,
        actors: ActorDirectory,
        unit_of_work: UnitOfWork,
        dispatcher: NoticeDispatcher,
        timers: TimerExecutor,
        *,
        max_retries: int = 8,
        catch_up: bool = True,
    ) -> None:
        self.rules = rules
        self.definition = rules.definition
        self.store = store
        self.clock = clock
        self.actors = actors
        self.unit_of_work = unit_of_work
        self.dispatcher = dispatcher
        self.timers = timers
        self._max_retries = max_retries
        self._catch_up_deadlines = catch_up

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
        args = dict(args or {})
        commands = self.definition.commands
        spec = commands.get(command)
        if spec is None:
            raise InvalidCommand(
                f"unknown command {command!r} (commands: {', '.join(sorted(commands))})"
            )
        # Logged only when something is worth a line: an accepted command is already recorded as
        # events, and binding a logger on every command cost about a tenth of one.
        context = {"project": project, "command": command, "actor": by, "command_id": command_id}
        fingerprint = _fingerprint(command, project, by, args) if command_id else ""
        for attempt in range(self._max_retries):
            # One instant per attempt: the deadlines caught up on and the command are judged at
            # the same time, as a replay of the history would judge them; a retry catches up
            # again at its own instant, since time has passed and a deadline may have too.
            now = self.clock.now()
            # The first attempt starts from the state the store last knew, without a round
            # trip to ask whether another writer moved it: the commit's guard asks anyway. A
            # stale one costs one attempt; every later attempt reads the project (D306).
            trusting = attempt == 0
            loaded = None
            if spec.name != "create":
                if self._catch_up_deadlines:
                    loaded = self.timers.catch_up(project, now, for_command=trusting)
                else:
                    loaded = self.rules.load(project, for_command=trusting)
            if command_id is not None:
                replay = self._replay(command_id, fingerprint, project, command)
                if replay is not None:
                    return replay
            try:
                result = self._execute_once(
                    spec, project, by, args, command_id, fingerprint, now, loaded
                )
            except ConcurrencyConflict:
                logger().debug("approvalflow.command_conflict", attempt=attempt, **context)
                if not trusting:
                    _time.sleep(0.001 * (2**attempt))
                continue
            except ApprovalflowError as error:
                if trusting and loaded is not None and self._moved_since(project, loaded):
                    # Refused on a state another writer had moved on from: decide again on
                    # the project as it is (a refusal is never given from a stale state).
                    continue
                logger().info(
                    "approvalflow.command_refused", code=error.code, reason=error.message, **context
                )
                raise
            self.dispatcher.after_commit(result)
            return result
        raise ConcurrencyConflict(
            f"{command} on {project} lost to concurrent writers {self._max_retries} times"
        )

    def _moved_since(self, project: str, state: ProjectState) -> bool:
        """Whether ``project`` is no longer at ``state``'s version in the store."""
        current = self.rules.load(project)
        return current is None or current.version != state.version

    def _replay(
        self, command_id: str, fingerprint: str, project: str, command: str
    ) -> CommandResult | None:
        record = self.store.command(command_id)
        if record is None:
            return None
        if record.fingerprint != fingerprint:
            raise InvalidCommand(
                f"command id {command_id!r} was used already for {record.command} on "
                f"{record.project} with other arguments"
            )
        events = tuple(
            e
            for e in self.store.events(record.project, record.first_version - 1)
            if e.version <= record.last_version
        )
        state = self.rules.load(record.project)
        return CommandResult(
            project=record.project,
            command=command,
            version=record.last_version,
            state=state.stage if state else "",
            events=events,
            notices=(),
            replayed=True,
        )

    @with_plugin_folds
    def _execute_once(
        self,
        spec: CommandSpec,
        project: str,
        by: str,
        args: dict[str, Any],
        command_id: str | None,
        fingerprint: str,
        now: datetime,
        loaded: ProjectState | None = None,
    ) -> CommandResult:
        """One attempt; ``loaded`` is the project as this attempt's catch-up read it."""
        definition = self.definition
        if spec.name == "create":
            before, ctx = self._create_context(project, by, args, command_id, now)
        else:
            if loaded is None:
                loaded = self.rules.load(project)
            if loaded is None:
                raise UnknownProject(f"no project {project!r}")
            before = loaded
            rules = (
                definition.settings if spec.under_current_rules else self.rules.rules_for(loaded)
            )
            actor = find_actor(self.actors, by, spec.name, project)
            on_behalf_of = authorize(
                spec.parties,
                actor,
                command=spec.name,
                project_id=project,
                team=loaded.team,
                applicant=loaded.applicant,
                agent=loaded.agent,
                leader=loaded.leader,
                settings=rules,
                branch=_branch_parties(spec, loaded, actor),
                now=now,
            )
            try:
                _check_stage(spec, loaded)
            except InvalidTransition as refused:
                # Only a finished project is archived: say so, not just that it ended (D266).
                # Read on the refusal's path alone.
                archive = self.store.archive_of(project) if loaded.stage in TERMINAL else None
                if archive is None:
                    raise
                raise ProjectArchived(
                    f"{project} is archived (archive {archive}): it is read as before, and no "
                    f"command or timer changes it again ({spec.name} refused)"
                ) from refused
            ctx = build_context(
                self.rules,
                self.actors,
                loaded.clone(),
                now,
                spec.name,
                args,
                actor,
                command_id,
                rules,
            )
            ctx.on_behalf_of = on_behalf_of
            if spec.precheck is not None:
                spec.precheck(ctx)
            arguments.reject_unknown(args, spec.arguments, spec.name)
        hook = definition.plugin_manager.hook
        if definition.has_check_hooks:
            hook.approvalflow_check_command(context=ctx, command=spec.name)
        spec.rule(ctx)
        if ctx.state.settings_fingerprint == definition.settings_fingerprint:
            self.rules.save_current_rules()
        if definition.has_after_hooks:
            hook.approvalflow_after_command(context=ctx, command=spec.name)
        record = (
            CommandRecord(
                command_id=command_id,
                project=project,
                command=spec.name,
                fingerprint=fingerprint,
                first_version=ctx.events[0].version if ctx.events else ctx.state.version,
                last_version=ctx.state.version,
            )
            if command_id is not None
            else None
        )
        self.unit_of_work.commit(before, ctx, record)
        return CommandResult(
            project=project,
            command=spec.name,
            version=ctx.state.version,
            state=ctx.state.stage,
            events=tuple(ctx.events),
            notices=tuple(ctx.notices),
        )

    def _create_context(
        self,
        project: str,
        by: str,
        fields: dict[str, Any],
        command_id: str | None,
        now: datetime,
    ) -> tuple[ProjectState | None, Context]:
        definition = self.definition
        lifecycle.validate_project_id(project)
        if self.rules.load(project) is not None:
            raise DuplicateProject(f"project {project!r} exists already")
        actor = find_actor(self.actors, by, "create", project)
        team = fields.get("team")
        if isinstance(team, str):
            authorize(
                definition.commands["create"].parties,
                actor,
                command="create",
                project_id=project,
                team=team,
                applicant="",
                agent=None,
                leader="",
                settings=definition.settings,
            )
        elif "recruiter" not in actor.roles:
            # Without a team only the role can be checked; the missing team is reported next.
            raise NotAuthorized(f"{actor.id} may not create {project}: is not a recruiter")
        payload = lifecycle.created_payload(
            fields,
            recruiter=actor,
            actors=self.actors,
            settings=definition.settings,
            extra_fields=definition.extra_fields,
            settings_fingerprint=definition.settings_fingerprint,
        )
        code = payload.get("project_code")
        holder = self.store.project_with_code(code) if code else None
        if holder is not None:
            raise DuplicateProject(
                f"project code {code} belongs to {holder} already: one code, one project"
            )
        event = Event(project, 1, "created", now, payload, by=by, command_id=command_id)
        state = ProjectState.created(event)
        ctx = build_context(
            self.rules, self.actors, state, now, "create", fields, actor, command_id
        )
        ctx.events.append(event)
        return None, ctx


def _check_stage(spec: CommandSpec, state: ProjectState) -> None:
    if spec.stage_trigger is None:
        if state.stage in TERMINAL:
            raise InvalidTransition(
                f"{spec.name} is not allowed: {state.id} has ended ({state.stage})"
            )
        return
    next_stage(state.stage, spec.stage_trigger, what=spec.name)


def _branch_parties(spec: CommandSpec, state: ProjectState, actor: Actor) -> BranchParties | None:
    """The named parties of the actor's own branch, for a command on that branch."""
    if not (spec.on_branch or Party.HANDLER in spec.parties) or not actor.department:
        return None
    branch = state.branches.get(actor.department)
    if branch is None:
        return None
    return BranchParties(branch.department, branch.handler, branch.deputy, branch.deputy_until)


def _fingerprint(command: str, project: str, by: str, args: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        [command, project, by, args], sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
