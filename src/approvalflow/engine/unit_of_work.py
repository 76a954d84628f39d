"""The unit of work: what a decided context changes in the store (events, the timer diff,
notices, the command record, the state), written in one ``Store.commit``."""

from __future__ import annotations

from approvalflow.clock import Clock
from approvalflow.engine.definition import RuleBook
from approvalflow.engine.notices import NoticeDispatcher
from approvalflow.model import Timer, TimerChanges
from approvalflow.plugins import combine
from approvalflow.project import ProjectState
from approvalflow.rules.context import Context
from approvalflow.stores import Store
from approvalflow.stores.base import CommandRecord

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """Commits a command's or a timer's context over the state it was decided from."""

    def __init__(
        self, rules: RuleBook, store: Store, clock: Clock, dispatcher: NoticeDispatcher
    ) -> None:
        self.rules = rules
        self.store = store
        self.clock = clock
        self.dispatcher = dispatcher
        # Entry-point names, recorded in the store with this engine's first commit.
        self._unrecorded_plugins = rules.definition.plugin_names

    def commit(
        self,
        before: ProjectState | None,
        ctx: Context,
        record: CommandRecord | None,
        fired: Timer | None = None,
    ) -> None:
        project = ctx.state.id
        definition = self.rules.definition
        definition.folds.check_commit(before, ctx.state, ctx.command)
        if ctx.notices and definition.has_recipient_hooks:
            ctx.notices[:] = combine.with_added_recipients(
                definition.plugin_manager, ctx.notices, ctx.state, ctx.settings, ctx.actors
            )
        if ctx.notices and not ctx.events:
            # A notice's id is (project, version, index): without an event of its own the
            # version is the previous commit's, and the notice would take an earlier one's id.
            raise ValueError(
                f"{ctx.command} on {project} sends notices but records no event: emit the fact "
                "the notice announces first"
            )
        # Derived once per command: the state it started from is a stored one, whose timers
        # its catch-up (or the commit that wrote it) derived already.
        old = self.rules.stored_timers(before) if before is not None else {}
        new = self.rules.timers_for(ctx.state)
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
        dispatcher = self.dispatcher
        notices = ctx.notices
        if self._unrecorded_plugins:
            self.store.record_plugins(self._unrecorded_plugins)
            self._unrecorded_plugins = ()
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
            claim_notices_at=(
                self.clock.now()
                if notices and dispatcher.deliver_inline and dispatcher.has_channels
                else None
            ),
        )
        self.rules.remember_timers(ctx.state, new)
