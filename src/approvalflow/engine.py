"""The engine: the one place that orchestrates. Load, decide (rules), append (store), notify.

A command either raises a specific ``ApprovalflowError`` and changes nothing, or is stored whole
(events, timers, notices, command id) in one commit; notices are delivered only after that
commit, so a failing channel can never undo or break the command. A stale write
(``ConcurrencyConflict``) is retried from a fresh read a bounded number of times.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time as _time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any

from approvalflow.calendar import Due, WorkingCalendar, to_local
from approvalflow.clock import Clock, SystemClock
from approvalflow.errors import (
    ApprovalflowError,
    ConcurrencyConflict,
    DuplicateProject,
    InvalidCommand,
    InvalidTransition,
    NotAuthorized,
    UnknownProject,
)
from approvalflow.model import (
    ESCALATION_KINDS,
    Actor,
    ActorDirectory,
    CommandResult,
    Event,
    InMemoryActorDirectory,
    Notice,
    Timer,
    TimerChanges,
)
from approvalflow.plugins.manager import build_plugin_manager
from approvalflow.project import ProjectState
from approvalflow.rules import arguments, lifecycle, metrics, timers
from approvalflow.rules import holdups as holdups_rule
from approvalflow.rules import points as points_rule
from approvalflow.rules import preview as preview_rule
from approvalflow.rules.authorization import BranchParties, Party, authorize
from approvalflow.rules.commands import BUILTIN_COMMANDS, CommandSpec
from approvalflow.rules.context import Context
from approvalflow.rules.holdups import Holdup
from approvalflow.rules.metrics import MetricInputs
from approvalflow.rules.points import LeaderboardRow
from approvalflow.rules.preview import Preview
from approvalflow.settings import LadderStep, Settings, SettingsError, ladder_problems
from approvalflow.states import STAGE_TABLE, TERMINAL, next_stage
from approvalflow.stores import Store, open_store
from approvalflow.stores.base import CommandRecord
from approvalflow.tasks import DoneItem, TaskItem, engine_done, engine_tasks

__all__ = ["Engine"]


def _logger() -> Any:
    # structlog is imported on first use, which keeps `import approvalflow` fast.
    import structlog

    return structlog.get_logger("approvalflow")


_NOTICE_BACKOFF = (timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=1))
_NOTICE_BATCH = 50


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
    ) -> None:
        self.actors: ActorDirectory = (
            actors if isinstance(actors, ActorDirectory) else InMemoryActorDirectory(actors)
        )
        self.store: Store = (
            store if store is not None and not isinstance(store, str) else (open_store(store))
        )
        self.clock: Clock = clock or SystemClock()
        self.plugin_manager = build_plugin_manager(plugins)
        hook = self.plugin_manager.hook
        merged = Settings.default()
        for overrides in hook.approvalflow_settings(settings=merged):
            if overrides:
                merged = merged.merged(overrides)
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
        self._extra_fields = tuple(
            name for names in hook.approvalflow_project_fields() for name in (names or ())
        )
        self._max_retries = max_retries
        if deliver not in ("inline", "outbox"):
            raise ValueError(f"deliver must be 'inline' or 'outbox', not {deliver!r}")
        self._deliver_inline = deliver == "inline"
        self._notify_timeout = notify_timeout
        self._catch_up_deadlines = catch_up
        # With inline delivery and no channel at all there is nobody to deliver to: the outbox
        # would only fill (and cost a second transaction per command to empty). A worker that
        # delivers for this engine's commands needs deliver="outbox".
        self._keep_notices = not self._deliver_inline or bool(
            hook.approvalflow_notify.get_hookimpls()
        )
        self._settings_fingerprint = merged.fingerprint()
        # Every rule set a project of this store may be pinned to, by fingerprint; the current
        # one is written to the store with the first project created (or migrated) under it.
        self._rule_sets: dict[str, Settings] = {self._settings_fingerprint: merged}
        self._current_rules_saved = False
        self._plugin_timers = bool(hook.approvalflow_timers.get_hookimpls())
        self._has_check_hooks = bool(hook.approvalflow_check_command.get_hookimpls())
        self._has_after_hooks = bool(hook.approvalflow_after_command.get_hookimpls())
        self._has_limit_hooks = bool(hook.approvalflow_time_limit.get_hookimpls())
        self._has_ladder_hooks = bool(hook.approvalflow_ladder.get_hookimpls())

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
        args = dict(args or {})
        spec = self.commands.get(command)
        if spec is None:
            raise InvalidCommand(
                f"unknown command {command!r} (commands: {', '.join(sorted(self.commands))})"
            )
        # Logged only when something is worth a line: an accepted command is already recorded as
        # events, and binding a logger on every command cost about a tenth of one.
        context = {"project": project, "command": command, "actor": by, "command_id": command_id}
        fingerprint = _fingerprint(command, project, by, args) if command_id else ""
        if spec.name != "create" and self._catch_up_deadlines:
            self._catch_up(project)
        for attempt in range(self._max_retries):
            if command_id is not None:
                replay = self._replay(command_id, fingerprint, project, command)
                if replay is not None:
                    return replay
            try:
                result = self._execute_once(spec, project, by, args, command_id, fingerprint)
            except ConcurrencyConflict:
                _logger().debug("approvalflow.command_conflict", attempt=attempt, **context)
                _time.sleep(0.001 * (2**attempt))
                continue
            except ApprovalflowError as error:
                _logger().info(
                    "approvalflow.command_refused", code=error.code, reason=error.message, **context
                )
                raise
            self._after_commit(result)
            return result
        raise ConcurrencyConflict(
            f"{command} on {project} lost to concurrent writers {self._max_retries} times"
        )

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
        state = self.store.load(record.project)
        return CommandResult(
            project=record.project,
            command=command,
            version=record.last_version,
            state=state.stage if state else "",
            events=events,
            notices=(),
            replayed=True,
        )

    def _execute_once(
        self,
        spec: CommandSpec,
        project: str,
        by: str,
        args: dict[str, Any],
        command_id: str | None,
        fingerprint: str,
    ) -> CommandResult:
        now = self.clock.now()
        if spec.name == "create":
            before, ctx = self._create_context(project, by, args, command_id, now)
        else:
            loaded = self.store.load(project)
            if loaded is None:
                raise UnknownProject(f"no project {project!r}")
            before = loaded
            rules = self.settings if spec.under_current_rules else self.rules_for(loaded)
            actor = self._actor(by, spec.name, project)
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
            self._check_stage(spec, loaded)
            ctx = self._context(loaded.clone(), now, spec.name, args, actor, command_id, rules)
            ctx.on_behalf_of = on_behalf_of
            if spec.precheck is not None:
                spec.precheck(ctx)
            arguments.reject_unknown(args, spec.arguments, spec.name)
        hook = self.plugin_manager.hook
        if self._has_check_hooks:
            hook.approvalflow_check_command(context=ctx, command=spec.name)
        spec.rule(ctx)
        if ctx.state.settings_fingerprint == self._settings_fingerprint:
            self._save_current_rules()
        if self._has_after_hooks:
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
        self._commit(before, ctx, record)
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
        lifecycle.validate_project_id(project)
        if self.store.load(project) is not None:
            raise DuplicateProject(f"project {project!r} exists already")
        actor = self._actor(by, "create", project)
        team = fields.get("team")
        if isinstance(team, str):
            authorize(
                self.commands["create"].parties,
                actor,
                command="create",
                project_id=project,
                team=team,
                applicant="",
                agent=None,
                leader="",
                settings=self.settings,
            )
        elif "recruiter" not in actor.roles:
            # Without a team only the role can be checked; the missing team is reported next.
            raise NotAuthorized(f"{actor.id} may not create {project}: is not a recruiter")
        payload = lifecycle.created_payload(
            fields,
            recruiter=actor,
            actors=self.actors,
            settings=self.settings,
            extra_fields=self._extra_fields,
            settings_fingerprint=self._settings_fingerprint,
        )
        code = payload.get("project_code")
        holder = self.store.project_with_code(code) if code else None
        if holder is not None:
            raise DuplicateProject(
                f"project code {code} belongs to {holder} already: one code, one project"
            )
        event = Event(project, 1, "created", now, payload, by=by, command_id=command_id)
        state = ProjectState.created(event)
        ctx = self._context(state, now, "create", fields, actor, command_id)
        ctx.events.append(event)
        return None, ctx

    # -- rule sets --------------------------------------------------------------------------

    def rules_for(self, state: ProjectState) -> Settings:
        """The county rule set ``state`` is pinned to: the one it was created (or last
        migrated) under, whatever the engine's current settings are."""
        fingerprint = state.settings_fingerprint
        found = self._rule_sets.get(fingerprint)
        if found is not None:
            return found
        text = self.store.rule_set(fingerprint)
        if text is None:
            # A project written before rule sets were kept (schema version 2 or older): it
            # was never pinned, so it follows the current rules, as it always did (D32).
            _logger().warning(
                "approvalflow.rule_set_missing", project=state.id, fingerprint=fingerprint
            )
            found = self.settings
        else:
            try:
                found = Settings.from_canonical_json(text)
            except SettingsError as error:
                raise SettingsError(
                    f"{state.id} is pinned to rule set {state.rules_version!r} "
                    f"({fingerprint[:12]}), which this approvalflow cannot read: {error}"
                ) from None
        self._rule_sets[fingerprint] = found
        return found

    def _save_current_rules(self) -> None:
        if not self._current_rules_saved:
            self.store.save_rule_set(
                self._settings_fingerprint,
                self.settings.rules_version,
                self.settings.canonical_json(),
            )
            self._current_rules_saved = True

    def _actor(self, actor_id: str, command: str, project: str) -> Actor:
        actor = self.actors.get(actor_id) if isinstance(actor_id, str) else None
        if actor is None:
            raise NotAuthorized(
                f"{actor_id!r} may not {command} on {project}: not in the actor directory"
            )
        return actor

    def _check_stage(self, spec: CommandSpec, state: ProjectState) -> None:
        if spec.stage_trigger is None:
            if state.stage in TERMINAL:
                raise InvalidTransition(
                    f"{spec.name} is not allowed: {state.id} has ended ({state.stage})"
                )
            return
        next_stage(state.stage, spec.stage_trigger, what=spec.name)

    def _context(
        self,
        state: ProjectState,
        now: datetime,
        command: str,
        args: Mapping[str, Any],
        actor: Actor | None,
        command_id: str | None,
        rules: Settings | None = None,
    ) -> Context:
        return Context(
            state=state,
            settings=self.rules_for(state) if rules is None else rules,
            calendar=self.calendar,
            actors=self.actors,
            now=now,
            command=command,
            args=args,
            actor=actor,
            command_id=command_id,
            route=self._route,
            time_limit=self._time_limit if self._has_limit_hooks else None,
            ladder=self._ladder if self._has_ladder_hooks else None,
        )

    def _time_limit(self, state: ProjectState, department: str) -> int:
        rules = self.rules_for(state)
        answer = self.plugin_manager.hook.approvalflow_time_limit(
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

    def _ladder(self, state: ProjectState, stage: str, department: str) -> tuple[LadderStep, ...]:
        rules = self.rules_for(state)
        answer = self.plugin_manager.hook.approvalflow_ladder(
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

    def _route(self, state: ProjectState, settings: Settings) -> tuple[str, ...]:
        answer = self.plugin_manager.hook.approvalflow_route(project=state, settings=settings)
        departments = tuple(answer or settings.routing.departments)
        unknown = [d for d in departments if d not in settings.time_limit_wd]
        if unknown:
            raise InvalidCommand(
                f"the routing rule picked {', '.join(unknown)}, which have no time limit"
            )
        return departments

    def _commit(
        self,
        before: ProjectState | None,
        ctx: Context,
        record: CommandRecord | None,
        fired: Timer | None = None,
    ) -> None:
        project = ctx.state.id
        if ctx.notices and not ctx.events:
            # A notice's id is (project, version, index): without an event of its own the
            # version is the previous commit's, and the notice would take an earlier one's id.
            raise ValueError(
                f"{ctx.command} on {project} sends notices but records no event: emit the fact "
                "the notice announces first"
            )
        old = self.timers_for(before) if before is not None else {}
        new = self.timers_for(ctx.state)
        to_set = tuple(
            Timer(project, kind, due, branch)
            for (kind, branch), due in new.items()
            if old.get((kind, branch)) != due
        )
        to_cancel = [(project, kind, branch) for (kind, branch) in old if (kind, branch) not in new]
        if fired is not None and new.get((fired.kind, fired.branch)) == fired.due:
            # The rule that owns this timer chose to do nothing: drop it rather than re-fire.
            # (Only this very timer: one that was moved since it was claimed stays scheduled.)
            to_cancel.append(fired.key)
        notices = ctx.notices if self._keep_notices else ()
        self.store.commit(
            project=project,
            expected_version=before.version if before is not None else 0,
            events=ctx.events,
            timers=TimerChanges(set=to_set, cancel=tuple(to_cancel)),
            notices=notices,
            command=record,
            state=ctx.state,
            # Inline delivery follows the commit at once: claimed as they are written, the
            # notices are not also taken by a worker delivering the outbox meanwhile.
            claim_notices_at=self.clock.now() if notices and self._deliver_inline else None,
        )

    def _after_commit(self, result: CommandResult) -> None:
        hook = self.plugin_manager.hook
        if result.events and hook.approvalflow_event.get_hookimpls():
            state = self.store.load(result.project)
            for event in result.events:
                for impl in hook.approvalflow_event.get_hookimpls():
                    self._guarded(
                        impl, "approvalflow.event_hook_failed", event=event, project=state
                    )
        if result.notices and self._deliver_inline and self._keep_notices:
            self._deliver([(notice, 0) for notice in result.notices], self.clock.now())
        if result.notices:
            escalations = hook.approvalflow_escalation.get_hookimpls()
            for notice in result.notices:
                if notice.kind in ESCALATION_KINDS:
                    for impl in escalations:
                        self._guarded(impl, "approvalflow.escalation_hook_failed", notice=notice)

    def _guarded(self, impl: Any, failure: str, **kwargs: Any) -> bool:
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception as exc:  # a plugin's failure must not break the engine
            _logger().warning(failure, plugin=impl.plugin_name, error=repr(exc))
            return False
        return True

    # -- notices ----------------------------------------------------------------------------

    def _deliver(self, entries: Sequence[tuple[Notice, int]], now: datetime) -> int:
        """Send each notice to every channel; a failure keeps it in the outbox with backoff."""
        impls = self.plugin_manager.hook.approvalflow_notify.get_hookimpls()
        delivered: list[str] = []
        for notice, attempts in entries:
            failure = next(
                (error for impl in impls if (error := self._send(impl, notice)) is not None),
                None,
            )
            if failure is None:
                delivered.append(notice.id)
                continue
            backoff = _NOTICE_BACKOFF[min(attempts, len(_NOTICE_BACKOFF) - 1)]
            self.store.mark_failed(notice.id, failure, now + backoff)
        if delivered:
            self.store.mark_delivered(delivered)
        return len(delivered)

    def _send(self, impl: Any, notice: Notice) -> str | None:
        """Call one channel; return why it failed, or ``None``. Bounded by ``notify_timeout``."""
        if self._notify_timeout is None:
            ok = self._guarded(impl, "approvalflow.notify_failed", notice=notice)
            return None if ok else f"{impl.plugin_name} raised"
        outcome: list[bool] = []
        thread = threading.Thread(
            target=lambda: outcome.append(
                self._guarded(impl, "approvalflow.notify_failed", notice=notice)
            ),
            daemon=True,
            name=f"approvalflow-notify-{impl.plugin_name}",
        )
        thread.start()
        thread.join(self._notify_timeout)
        if thread.is_alive():
            _logger().warning(
                "approvalflow.notify_timeout", plugin=impl.plugin_name, notice=notice.id
            )
            return f"{impl.plugin_name} did not answer within {self._notify_timeout}s"
        return None if outcome and outcome[0] else f"{impl.plugin_name} raised"

    def deliver_notices(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Deliver up to ``limit`` notices of the outbox whose next attempt is due; return how
        many went.

        The notices are claimed a batch at a time (``Store.claim_notices``) before they are
        sent, so workers delivering at once send different notices; a failed one is released
        for a later attempt, and one whose worker died is claimed again when its lease ends.
        """
        now = now or self.clock.now()
        delivered = 0
        left = limit
        while left > 0:
            # Small batches: a claim's lease must outlast sending the whole batch.
            entries = self.store.claim_notices(now, min(left, _NOTICE_BATCH))
            if not entries:
                break
            left -= len(entries)
            delivered += self._deliver([(e.notice, e.attempts) for e in entries], now)
        return delivered

    # -- timers -----------------------------------------------------------------------------

    def run_due(
        self, now: datetime | None = None, limit: int = 100, *, prefix: str = ""
    ) -> list[CommandResult]:
        """Fire every timer due at or before ``now`` (default: the clock), in time order, once.

        Each timer's events are stamped with its due time. With ``prefix``, only projects whose
        id starts with it (a scenario run in a shared store). Returns what each firing did.
        """
        now = now or self.clock.now()
        results: list[CommandResult] = []
        seen: set[tuple[str, str, str, datetime]] = set()
        while True:
            batch = [
                t for t in self.store.claim_due(now, limit, prefix) if (*t.key, t.due) not in seen
            ]
            if not batch:
                return results
            for timer in batch:
                seen.add((*timer.key, timer.due))
                results.extend(self._fire(timer))

    def timers_for(self, state: ProjectState) -> dict[tuple[str, str], datetime]:
        """Every deadline ``state`` waits on: the built-in rules' and the plugins'."""
        found = timers.timers_for(state, self.calendar)
        if self._plugin_timers and state.stage not in TERMINAL:
            for extra in self.plugin_manager.hook.approvalflow_timers(
                project=state, settings=self.rules_for(state), calendar=self.calendar
            ):
                found.update(extra or {})
        return found

    def _fire_rule(self, ctx: Context, kind: str, branch: str) -> None:
        if kind in timers.TIMER_KINDS:
            timers.fire(ctx, kind, branch)
            return
        handled = self.plugin_manager.hook.approvalflow_fire_timer(
            context=ctx, kind=kind, branch=branch
        )
        if not handled:
            raise ValueError(f"no plugin handles timers of kind {kind!r}")

    def _catch_up(self, project: str) -> None:
        """Fire the project's deadlines that have passed but no worker has fired yet.

        A command is judged against the project as its deadlines left it: a supply two hours
        after the supply deadline finds the branch revoked, whether or not a worker ran.
        """
        state = self.store.load(project)
        if state is None:
            return
        now = self.clock.now()
        for (kind, branch), due in sorted(
            self.timers_for(state).items(), key=lambda item: (item[1], item[0])
        ):
            if due <= now:
                self._fire(Timer(project, kind, due, branch))

    def _fire(self, timer: Timer) -> list[CommandResult]:
        """Fire ``timer`` and, first, any earlier timer of its project that is due too.

        Several workers may hold claims on one project's timers; firing a project's deadlines in
        time order whoever holds which claim keeps a later deadline (a revocation) from
        overtaking an earlier one (the overdue notice). A claim whose timer has moved or gone
        since it was claimed fires nothing and cancels nothing.
        """
        results: list[CommandResult] = []
        target = (timer.kind, timer.branch)
        conflicts = 0
        while conflicts < self._max_retries:
            state = self.store.load(timer.project)
            if state is None:
                return results
            derived = self.timers_for(state)
            if derived.get(target) != timer.due:
                return results
            due, kind, branch = min(
                (due, kind, branch) for (kind, branch), due in derived.items() if due <= timer.due
            )
            current = Timer(timer.project, kind, due, branch)
            ctx = self._context(state.clone(), due, "timer", {}, None, None)
            self._fire_rule(ctx, kind, branch)
            try:
                self._commit(state, ctx, None, fired=current)
            except ConcurrencyConflict:
                conflicts += 1
                continue
            result = CommandResult(
                project=timer.project,
                command=f"timer:{kind}",
                version=ctx.state.version,
                state=ctx.state.stage,
                events=tuple(ctx.events),
                notices=tuple(ctx.notices),
            )
            _logger().debug(
                "approvalflow.timer_fired",
                project=timer.project,
                kind=kind,
                branch=branch,
                events=len(ctx.events),
            )
            self._after_commit(result)
            results.append(result)
            if current.key == timer.key:
                return results
        raise ConcurrencyConflict(f"timer {timer.key} lost to concurrent writers")

    # -- reading ----------------------------------------------------------------------------

    def project(self, project: str) -> ProjectState:
        """The project's current state (a copy: changing it changes nothing)."""
        state = self.store.load(project)
        if state is None:
            raise UnknownProject(f"no project {project!r}")
        return state.clone()

    def history(self, project: str) -> list[Event]:
        if self.store.load(project) is None:
            raise UnknownProject(f"no project {project!r}")
        return self.store.events(project)

    def deadlines(self, project: str) -> dict[str, Due]:
        """Open deadlines by scenario key (``P1.pre_review``, ``P1.approval.zj.supply``...)."""
        state = self.project(project)
        names = {
            timers.PRE_REVIEW_DEADLINE: "{p}.pre_review",
            timers.BRANCH_LIMIT: "{p}.approval.{b}",
            timers.SUPPLY_DEADLINE: "{p}.approval.{b}.supply",
            timers.SUPPLY_REMINDER: "{p}.approval.{b}.reminder",
            timers.VERIFY_DEADLINE: "{p}.approval.{b}.verify",
            timers.ACCEPTANCE_DEADLINE: "{p}.approval.{b}.acceptance",
            timers.LADDER: "{p}.approval.{b}.card",
            timers.PRE_REVIEW_LADDER: "{p}.pre_review.{b}.card",
        }
        found: dict[str, Due] = {}
        for (kind, branch), due in self.timers_for(state).items():
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
            found[names[kind].format(p=project, b=branch)] = Due(due, provisional)
        # A returned branch's clock is stopped, so it has no limit, but its supply deadline runs.
        for dept, branch_state in state.branches.items():
            key = f"{project}.approval.{dept}"
            if branch_state.state == "returned" and key in found:
                del found[key]
        return found

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
        actor = self._actor(by, "preview", "(preview)")
        if "recruiter" not in actor.roles:
            raise NotAuthorized(f"{actor.id} may not preview a project: is not a recruiter")
        now = self.clock.now()
        payload = lifecycle.created_payload(
            fields,
            recruiter=actor,
            actors=self.actors,
            settings=self.settings,
            extra_fields=self._extra_fields,
            settings_fingerprint=self._settings_fingerprint,
        )
        state = ProjectState.created(Event("(preview)", 1, "created", now, payload))
        return preview_rule.preview(
            state,
            settings=self.settings,
            calendar=self.calendar,
            route=self._route,
            start=start or now,
            approval_start=approval_start or start or now,
            time_limit=self._time_limit,
            ladder=self._ladder,
        )

    def holdups(self, project: str) -> list[Holdup]:
        """What ``project`` waits on now (review units, branches, the applicant), the earliest
        deadline first: the head of its critical path; each with its last card, if any."""
        state = self.project(project)
        return holdups_rule.holdups(state, self.rules_for(state), self.clock.now())

    def late_items(
        self, now: datetime | None = None, ids: Iterable[str] | None = None
    ) -> dict[str, list[Holdup]]:
        """Every open review or branch past its deadline, by department (a county's list)."""
        return holdups_rule.late_items(self.projects(ids), self.rules_for, now or self.clock.now())

    def project_ids(self) -> list[str]:
        return self.store.project_ids()

    def projects(self, ids: Iterable[str] | None = None) -> list[ProjectState]:
        chosen = self.store.project_ids() if ids is None else list(ids)
        return [s for s in (self.store.load(p) for p in chosen) if s is not None]

    # The reports ask the store (a query on the SQL stores) and load no project; a store
    # without those methods (one written before them) is read project by project.

    def points(
        self, ids: Iterable[str] | None = None, *, month: str | None = None
    ) -> dict[str, int]:
        """Points per team over the chosen projects (default: all), in ``month`` or ever."""
        query = getattr(self.store, "milestone_points", None)
        if query is None:
            return points_rule.points_by_team(self.projects(ids), month=month)
        return dict(query(month, projects=_chosen(ids)))

    def leaderboard(self, month: str, ids: Iterable[str] | None = None) -> list[LeaderboardRow]:
        """The month's board (rule 11) over the chosen projects, with last month's ranks."""
        query = getattr(self.store, "milestone_points", None)
        if query is None:
            return points_rule.leaderboard(self.projects(ids), month)
        chosen = _chosen(ids)
        return points_rule.rank_teams(
            query(month, projects=chosen),
            query(points_rule.previous_month(month), projects=chosen),
        )

    def metric_inputs(self, ids: Iterable[str] | None = None) -> MetricInputs:
        """What the built-in metrics of the chosen projects are computed from."""
        query = getattr(self.store, "metric_inputs", None)
        if query is None:
            return metrics.metric_inputs(self.projects(ids))
        result: MetricInputs = query(_chosen(ids))
        return result

    def metrics(self, ids: Iterable[str] | None = None, *, plugins: bool = True) -> dict[str, Any]:
        """WORKFLOW.md's metrics (rule 12) plus every plugin's, over the chosen projects.

        Plugins' metrics get the project states, so only they load the projects (and only when
        a plugin has an ``approvalflow_metrics`` hook); ``plugins=False`` leaves them out.
        """
        found = metrics.metrics_from_inputs(self.metric_inputs(ids), self.calendar)
        hook = self.plugin_manager.hook.approvalflow_metrics
        if plugins and hook.get_hookimpls():
            for extra in hook(projects=self.projects(ids), settings=self.settings):
                found.update(extra or {})
        return found

    def team_metrics(self, ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The built-in metrics of each team with a project (among the chosen), by team id."""
        query = getattr(self.store, "team_metric_inputs", None)
        if query is None:
            by_team: dict[str, list[ProjectState]] = {}
            for state in self.projects(ids):
                by_team.setdefault(state.team, []).append(state)
            inputs = {team: metrics.metric_inputs(by_team[team]) for team in sorted(by_team)}
        else:
            inputs = query(_chosen(ids))
        return {
            team: metrics.metrics_from_inputs(found, self.calendar)
            for team, found in inputs.items()
        }

    def tasks(self, actor: str, now: datetime | None = None) -> list[TaskItem]:
        """What waits on ``actor`` across every project (待办), most urgent first."""
        return engine_tasks(self, self._actor(actor, "read the tasks of", "(tasks)"), now)

    def done(self, actor: str) -> list[DoneItem]:
        """What ``actor`` did (or an agent or deputy did for them) on every project (已办),
        the latest first."""
        return engine_done(self, self._actor(actor, "read the work of", "(done)").id)

    def command_names(self) -> list[str]:
        return sorted(self.commands)

    def allowed_commands(self, project: str) -> list[str]:
        """Commands the project's stage allows now (authorisation not considered)."""
        state = self.project(project)
        return sorted(
            name
            for name, spec in self.commands.items()
            if name != "create"
            and (
                (spec.stage_trigger is None and state.stage not in TERMINAL)
                or (spec.stage_trigger, state.stage) in STAGE_TABLE
            )
        )


def _branch_parties(spec: CommandSpec, state: ProjectState, actor: Actor) -> BranchParties | None:
    """The named parties of the actor's own branch, for a command on that branch."""
    if not (spec.on_branch or Party.HANDLER in spec.parties) or not actor.department:
        return None
    branch = state.branches.get(actor.department)
    if branch is None:
        return None
    return BranchParties(branch.department, branch.handler, branch.deputy, branch.deputy_until)


def _chosen(ids: Iterable[str] | None) -> list[str] | None:
    """The ids a report is over, each once (``None``: every project)."""
    return None if ids is None else list(dict.fromkeys(ids))


def _fingerprint(command: str, project: str, by: str, args: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        [command, project, by, args], sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
