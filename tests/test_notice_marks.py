"""Notices a timer run delivers inline are marked delivered once a batch (D315), and none is
lost or left claimed when the run fails part way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from builders import County

from approvalflow.engine.timers import TimerExecutor
from approvalflow.model import Notice
from approvalflow.plugins.hookspecs import hookimpl


class _Channel:
    def __init__(self) -> None:
        self.sent: list[str] = []

    @hookimpl
    def approvalflow_notify(self, notice: Notice) -> None:
        self.sent.append(notice.id)


def _overdue_county(projects: int) -> tuple[County, _Channel, list[list[str]]]:
    """``projects`` projects in approval, a channel, and the store's ``mark_delivered`` calls."""
    channel = _Channel()
    county = County(plugins=[channel])
    for n in range(projects):
        county.to_approval(f"P{n}")
    marks: list[list[str]] = []
    store = county.engine.store
    mark = store.mark_delivered

    def counted(ids: Any) -> None:
        marks.append(list(ids))
        mark(ids)

    store.mark_delivered = counted  # type: ignore[method-assign]
    channel.sent.clear()
    return county, channel, marks


def test_a_run_marks_what_it_delivered_once_a_batch(every_store: str) -> None:
    """Three projects' branches run late together: every overdue notice is sent once and marked
    delivered, in one call for the run's one batch of timers, and the outbox is left empty."""
    county, channel, marks = _overdue_county(3)
    now = county.clock.now() + timedelta(days=30)
    fired = county.engine.run_due(now)
    sent = [n.id for result in fired for n in result.notices]
    assert len(sent) >= 3 and sorted(channel.sent) == sorted(sent)
    assert len(marks) == 1 and sorted(marks[0]) == sorted(sent)
    assert county.engine.store.pending_notices(now + timedelta(days=365)) == []


def test_a_run_that_fails_part_way_marks_what_it_had_delivered(
    every_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second project's firing fails: the first one's notices, already sent, are marked
    delivered as the run ends with the error, so no worker sends them a second time."""
    county, channel, marks = _overdue_county(2)
    fire = TimerExecutor._fire

    def failing(self: TimerExecutor, timer: Any) -> Any:
        if timer.project == "P1":
            raise RuntimeError("the disk went away")
        return fire(self, timer)

    monkeypatch.setattr(TimerExecutor, "_fire", failing)
    now = county.clock.now() + timedelta(days=30)
    with pytest.raises(RuntimeError, match="disk went away"):
        county.engine.run_due(now)
    assert channel.sent and marks == [channel.sent]
    pending = county.engine.store.pending_notices(now + timedelta(days=365))
    assert not {entry.notice.id for entry in pending} & set(channel.sent)


def test_a_command_outside_a_run_still_marks_its_notices_at_once(every_store: str) -> None:
    county, channel, marks = _overdue_county(1)
    county.do("return", "P0", "o_zj", corrections=["site_photos"])
    assert channel.sent and marks == [channel.sent]
