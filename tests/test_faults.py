"""Faults: a store that fails mid-command, a plugin hook that raises, a channel that hangs.
A command commits whole or not at all, and the engine keeps serving other projects."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from builders import County

from approvalflow import hookimpl
from approvalflow.model import Event, Notice, TimerChanges
from approvalflow.project import ProjectState
from approvalflow.stores import MemoryStore
from approvalflow.stores.base import CommandRecord


class FailingStore(MemoryStore):
    """A memory store whose commits fail while ``failures`` lasts (a dropped connection, a
    full disk), before anything is written."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def commit(
        self,
        *,
        project: str,
        expected_version: int,
        events: Sequence[Event],
        timers: TimerChanges,
        notices: Sequence[Notice],
        command: CommandRecord | None,
        state: ProjectState,
        claim_notices_at: datetime | None = None,
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        super().commit(
            project=project,
            expected_version=expected_version,
            events=events,
            timers=timers,
            notices=notices,
            command=command,
            state=state,
            claim_notices_at=claim_notices_at,
        )


class TestStoreFailures:
    def test_a_failed_commit_changes_nothing_and_the_retry_succeeds(self) -> None:
        """Disk full during a command: the caller sees the error, the project is unchanged,
        the same command with the same id then applies once."""
        store = FailingStore()
        county = County(store=store)
        county.create()
        store.failures = 1
        with pytest.raises(OSError, match="No space left"):
            county.do("negotiate", "P1", "guo", command_id="n-1")
        assert county.stage() == "lead"
        assert store.command("n-1") is None
        county.do("negotiate", "P1", "guo", command_id="n-1")
        county.do("negotiate", "P1", "guo", command_id="n-1")
        assert county.stage() == "negotiating"
        assert [e.type for e in county.engine.history("P1")].count("stage_changed") == 1

    def test_other_projects_are_served_after_a_failure(self) -> None:
        """One failing commit does not poison the engine."""
        store = FailingStore()
        county = County(store=store)
        county.create("P1")
        store.failures = 1
        with pytest.raises(OSError):
            county.create("P2")
        county.create("P3")
        county.do("negotiate", "P1", "guo")
        assert county.engine.project_ids() == ["P1", "P3"]

    def test_a_timer_whose_commit_fails_fires_later(self) -> None:
        """A worker hitting a store fault leaves the timer due; the next run fires it once."""
        store = FailingStore()
        county = County(store=store)
        county.to_pre_review()
        store.failures = 1
        with pytest.raises(OSError):
            county.engine.run_due(county.clock.now() + timedelta(days=5))
        assert county.engine.project("P1").round.overdue_sent is False
        fired = county.engine.run_due(county.clock.now() + timedelta(days=5, minutes=10))
        assert len(fired) == 1 and county.engine.project("P1").round.overdue_sent


class TestPluginFailures:
    def test_a_routing_hook_that_raises_fails_the_command_whole(self) -> None:
        """The error reaches the caller; no branch, event or timer was stored."""

        class BrokenRouting:
            @hookimpl
            def approvalflow_route(self, project: Any, settings: Any) -> list[str]:
                raise RuntimeError("routing table unavailable")

        county = County(plugins=[BrokenRouting()])
        county.to_signed()
        version = county.engine.project("P1").version
        with pytest.raises(RuntimeError, match="routing table unavailable"):
            county.do("apply", "P1", "fuyuan")
        state = county.engine.project("P1")
        assert (state.stage, state.version, state.branches) == ("signed", version, {})
        assert county.engine.store.timers("P1") == []


class TestChannels:
    def test_a_hanging_channel_is_cut_off_and_retried(self) -> None:
        """With notify_timeout, a channel that hangs does not hold the command; the notice stays
        in the outbox as failed."""

        class Hanging:
            @hookimpl
            def approvalflow_notify(self, notice: Notice) -> None:
                time.sleep(5)

        county = County(plugins=[Hanging()], notify_timeout=0.05)
        county.to_decision()
        county.do("convene", "P1", "chair", present=["chair", "m1", "m2"])
        county.do("close_meeting", "P1", "chair")
        outbox = county.engine.store.pending_notices(county.clock.now() + timedelta(days=1))
        assert {entry.notice.kind for entry in outbox} == {"decision", "rejected"}
        assert all("did not answer" in (entry.last_error or "") for entry in outbox)

    def test_outbox_delivery_leaves_commands_free_of_channels(self) -> None:
        """deliver='outbox': commands never call a channel; deliver_notices does, once."""
        sent: list[str] = []

        class Channel:
            @hookimpl
            def approvalflow_notify(self, notice: Notice) -> None:
                sent.append(notice.kind)

        county = County(plugins=[Channel()], deliver="outbox")
        county.to_decision()
        county.approve_in_meeting()
        assert sent == []
        assert county.engine.deliver_notices() == 1
        assert county.engine.deliver_notices() == 0
        assert sent == ["decision"]
