"""The notice dispatcher: after a commit, the plugins' observers (event and escalation hooks)
and the channels (notify hooks); the outbox's delivery, with backoff for a failed notice."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from approvalflow.clock import Clock
from approvalflow.engine._log import logger
from approvalflow.engine.definition import WorkflowDefinition
from approvalflow.model import ESCALATION_KINDS, CommandResult, Notice
from approvalflow.stores import Store

__all__ = ["NoticeDispatcher"]

_NOTICE_BACKOFF = (timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=1))
_NOTICE_BATCH = 50


class NoticeDispatcher:
    """Tells the plugins what a commit did and sends its notices.

    :param deliver: ``"inline"`` calls the notify hooks right after each commit; ``"outbox"``
        leaves every notice in the outbox for ``deliver_notices`` (a worker).
    :param notify_timeout: seconds a notify hook may take before its delivery counts as failed
        (and is retried later); ``None`` waits.
    """

    def __init__(
        self,
        definition: WorkflowDefinition,
        store: Store,
        clock: Clock,
        *,
        deliver: str = "inline",
        notify_timeout: float | None = None,
    ) -> None:
        if deliver not in ("inline", "outbox"):
            raise ValueError(f"deliver must be 'inline' or 'outbox', not {deliver!r}")
        self.definition = definition
        self.store = store
        self.clock = clock
        self.deliver_inline = deliver == "inline"
        self._notify_timeout = notify_timeout
        # Per thread: the notices delivered inside ``marks_held`` on this thread, not yet marked.
        self._held = threading.local()

    @contextmanager
    def marks_held(self) -> Iterator[None]:
        """Inside the block, the notices this thread delivers inline are marked delivered at
        its end, in one commit, instead of one commit after each delivery (``run_due`` holds
        the marks of a batch of firings). Their claims (taken at their commit) keep other
        workers from sending them meanwhile; a process that dies inside the block leaves them
        to be delivered again once the claims end: at least once, as always."""
        if getattr(self._held, "ids", None) is not None:
            yield  # already held by an enclosing block, which marks them
            return
        held: list[str] = []
        self._held.ids = held
        try:
            yield
        finally:
            self._held.ids = None
            if held:
                self.store.mark_delivered(held)

    @property
    def has_channels(self) -> bool:
        """Whether a channel is loaded. Notices are kept in the outbox until one delivers them
        either way: with none loaded here, they wait for a worker (or a later engine) with one."""
        return bool(self.definition.has_notify_hooks)

    def after_commit(self, result: CommandResult) -> None:
        hook = self.definition.plugin_manager.hook
        if result.events and hook.approvalflow_event.get_hookimpls():
            state = self.definition.folds.load(self.store, result.project)
            for event in result.events:
                for impl in hook.approvalflow_event.get_hookimpls():
                    self._guarded(
                        impl, "approvalflow.event_hook_failed", event=event, project=state
                    )
        if result.notices and self.deliver_inline and self.has_channels:
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
            logger().warning(failure, plugin=impl.plugin_name, error=repr(exc))
            return False
        return True

    def _deliver(self, entries: Sequence[tuple[Notice, int]], now: datetime) -> int:
        """Send each notice to every channel; a failure keeps it in the outbox with backoff."""
        impls = self.definition.plugin_manager.hook.approvalflow_notify.get_hookimpls()
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
            held = getattr(self._held, "ids", None)
            if held is not None:
                held.extend(delivered)
            else:
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
            logger().warning(
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
        if not self.has_channels:
            return 0  # nobody to deliver to: claiming them would only mark them sent
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
