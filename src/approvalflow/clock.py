"""Clocks: the engine never reads the time itself, it asks its clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

__all__ = ["Clock", "ManualClock", "SystemClock"]

_SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    """Something that tells the current time as an aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in Asia/Shanghai."""

    def now(self) -> datetime:
        return datetime.now(_SHANGHAI)


class ManualClock:
    """A clock that moves only when told: for tests and scenarios."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        """Move to ``moment``; a clock never goes backwards."""
        if moment.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        if moment < self._now:
            raise ValueError(f"the clock cannot go back from {self._now} to {moment}")
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._now + delta)
        return self._now
