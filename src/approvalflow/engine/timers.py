"""The timer executor: fires due deadlines (``run_due`` for a worker, catch-up before a
command), each in its project's time order, through the unit of work."""

from __future__ import annotations

from datetime import datetime

from approvalflow.clock import Clock
from approvalflow.engine._context import build_context
from approvalflow.engine._log import logger
from approvalflow.engine.definition import RuleBook, WorkflowDefinition
from approvalflow.engine.notices import NoticeDispatcher
from approvalflow.engine.unit_of_work import UnitOfWork
from approvalflow.errors import ConcurrencyConflict
from approvalflow.model import ActorDirectory, CommandResult, Timer
from approvalflow.plugins.folds import UnknownEventType, with_plugin_folds
from approvalflow.project import ProjectState
from approvalflow.rules import timers
from approvalflow.rules.context import Context
from approvalflow.stores import Store

__all__ = ["TimerExecutor"]


class TimerExecutor:
    """Fires the store's timers: the built-in rules' and the plugins'."""

    def __init__(
        self,
        rules: RuleBook,
        store: Store,
        clock: Clock,
        actors: ActorDirectory,
        unit_of_work: UnitOfWork,
        dispatcher: NoticeDispatcher,
        *,
        max_retries: int = 8,
    ) -> None:
        self.rules = rules
        self.store = store
        self.clock = clock
        self.actors = actors
        self.unit_of_work = unit_of_work
        self.dispatcher = dispatcher
        self._max_retries = max_retries

    @classmethod
    def standalone(
        cls,
        definition: WorkflowDefinition,
        store: Store,
        clock: Clock,
        actors: ActorDirectory,
        dispatcher: NoticeDispatcher,
        *,
        max_retries: int = 8,
    ) -> TimerExecutor:
        """A timer executor with its own rule book and unit of work, for a process that only
        fires timers and delivers notices (a worker): no command runner, no read side."""
        rules = RuleBook(definition, store)
        unit_of_work = UnitOfWork(rules, store, clock, dispatcher)
        return cls(rules, store, clock, actors, unit_of_work, dispatcher, max_retries=max_retries)

    def run_due(
        self, now: datetime | None = None, limit: int = 100, *, prefix: str = ""
    ) -> list[CommandResult]:
        """Fire every timer due at or before ``now`` (default: the clock), in time order, once.

        Each timer's events are stamped with its due time. With ``prefix``, only projects whose
        id starts with it (a scenario run in a shared store). Returns what each firing did.

        A project this engine may not write (its events need a plugin the engine lacks:
        ``UnknownEventType``) keeps its timers for an engine that has the plugin; the refusal is
        logged (``approvalflow.timer_refused``) and the other projects' timers still fire.
        """
        now = now or self.clock.now()
        results: list[CommandResult] = []
        seen: set[tuple[str, str, str, datetime]] = set()
        # Claimed but not fired here (this engine lacks the plugin that set them, or may not
        # write their project): their claims end with the run, so an engine that has the plugin
        # fires them at once instead of after the lease.
        unfired: list[Timer] = []
        while True:
            batch = [
                t for t in self.store.claim_due(now, limit, prefix) if (*t.key, t.due) not in seen
            ]
            if not batch:
                for timer in unfired:
                    self.store.release_timer(timer)
                return results
            # The batch's notices, delivered inline, are marked delivered once at its end: one
            # commit for the batch instead of one after each firing (D315).
            with self.dispatcher.marks_held():
                for timer in batch:
                    seen.add((*timer.key, timer.due))
                    try:
                        fired, reached = self._fire(timer)
                        results.extend(fired)
                        if not reached:
                            unfired.append(timer)
                    except UnknownEventType as refused:
                        unfired.append(timer)
                        logger().warning(
                            "approvalflow.timer_refused",
                            project=timer.project,
                            kind=timer.kind,
                            branch=timer.branch,
                            code=refused.code,
                            reason=refused.message,
                        )

    def _fire_rule(self, ctx: Context, kind: str, branch: str) -> None:
        if kind in timers.TIMER_KINDS:
            timers.fire(ctx, kind, branch)
            return
        handled = self.rules.definition.plugin_manager.hook.approvalflow_fire_timer(
            context=ctx, kind=kind, branch=branch
        )
        if not handled:
            raise ValueError(f"no plugin handles timers of kind {kind!r}")

    def catch_up(
        self, project: str, now: datetime | None = None, *, for_command: bool = False
    ) -> ProjectState | None:
        """Fire the project's deadlines that have passed at ``now`` (default: the clock) but no
        worker has fired yet; return the project's state after them (``None``: no project).

        A command is judged against the project as its deadlines left it: a supply two hours
        after the supply deadline finds the branch revoked, whether or not a worker ran.
        ``for_command``: the state the store last knew (``RuleBook.load``), for a command.
        """
        state = self.rules.load(project, for_command=for_command)
        if state is None:
            return None
        now = now or self.clock.now()
        due_now = sorted(
            (due, kind, branch)
            for (kind, branch), due in self.rules.stored_timers(state).items()
            if due <= now
        )
        if not due_now:
            # Usually nothing is due: the state loaded here is the command's, read once.
            return state
        for due, kind, branch in due_now:
            self.fire(Timer(project, kind, due, branch))
        return self.rules.load(project)

    def fire(self, timer: Timer) -> list[CommandResult]:
        """Fire ``timer`` and, first, any earlier timer of its project that is due too.

        Several workers may hold claims on one project's timers; firing a project's deadlines in
        time order whoever holds which claim keeps a later deadline (a revocation) from
        overtaking an earlier one (the overdue notice). A claim whose timer has moved or gone
        since it was claimed fires nothing and cancels nothing.
        """
        return self._fire(timer)[0]

    @with_plugin_folds
    def _fire(self, timer: Timer) -> tuple[list[CommandResult], bool]:
        """``fire``, and whether ``timer`` itself fired (not moved, gone or unknown here)."""
        results: list[CommandResult] = []
        target = (timer.kind, timer.branch)
        conflicts = 0
        while conflicts < self._max_retries:
            state = self.rules.load(timer.project)
            if state is None:
                return results, False
            derived = self.rules.stored_timers(state)
            if derived.get(target) != timer.due:
                return results, False
            due, kind, branch = min(
                (due, kind, branch) for (kind, branch), due in derived.items() if due <= timer.due
            )
            current = Timer(timer.project, kind, due, branch)
            ctx = build_context(
                self.rules, self.actors, state.clone(), due, "timer", {}, None, None
            )
            self._fire_rule(ctx, kind, branch)
            self.rules.definition.plugin_manager.hook.approvalflow_after_timer(
                context=ctx, kind=kind, branch=branch
            )
            try:
                self.unit_of_work.commit(state, ctx, None, fired=current)
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
            logger().debug(
                "approvalflow.timer_fired",
                project=timer.project,
                kind=kind,
                branch=branch,
                events=len(ctx.events),
            )
            self.dispatcher.after_commit(result)
            results.append(result)
            if current.key == timer.key:
                return results, True
        raise ConcurrencyConflict(f"timer {timer.key} lost to concurrent writers")
