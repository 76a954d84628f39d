"""Hypothesis strategies shared by the test suite.

Dates and moments for the working-day calendar; other modules may add their own
strategies here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from hypothesis import strategies as st

from approvalflow.calendar import FIRST_YEAR, LAST_YEAR, SHANGHAI

__all__ = [
    "aware_moments",
    "calendar_days",
    "naive_moments",
    "official_days",
    "whole_minute_moments",
    "working_day_counts",
]

# Room at the top of the supported range, so that adding working_day_counts() to
# any calendar_days() value stays inside it.
_HEADROOM_YEARS = 4


def calendar_days(
    min_year: int = FIRST_YEAR, max_year: int = LAST_YEAR - _HEADROOM_YEARS
) -> st.SearchStrategy[date]:
    """Any day of the given years (by default: the supported range, less some headroom)."""
    return st.dates(min_value=date(min_year, 1, 1), max_value=date(max_year, 12, 31))


def official_days() -> st.SearchStrategy[date]:
    """Days of the years a default calendar takes as official (2025, 2026)."""
    return calendar_days(2025, 2026)


def working_day_counts(max_value: int = 800) -> st.SearchStrategy[int]:
    """A number of working days, 0 included; 800 wd is a little over three years."""
    return st.integers(min_value=0, max_value=max_value)


def naive_moments(min_year: int = 1992, max_year: int = 2190) -> st.SearchStrategy[datetime]:
    """Naive datetimes, to be read as Asia/Shanghai local time.

    From 1992 on by default: Shanghai last used daylight saving time in 1991, and
    an ambiguous local time cannot survive a round trip through text.
    """
    return st.datetimes(
        min_value=datetime(min_year, 1, 1), max_value=datetime(max_year, 12, 31, 23, 59, 59)
    )


def _zones() -> st.SearchStrategy[tzinfo]:
    return st.one_of(st.just(SHANGHAI), st.just(UTC), st.timezones())


def aware_moments(min_year: int = 1992, max_year: int = 2190) -> st.SearchStrategy[datetime]:
    """Aware datetimes in Asia/Shanghai, UTC or any IANA zone."""
    # Built from a UTC instant, so every value is a real instant (astimezone sets
    # `fold` on a repeated wall time, and never yields a skipped one).
    return st.builds(
        lambda utc, zone: utc.replace(tzinfo=UTC).astimezone(zone),
        naive_moments(min_year, max_year),
        _zones(),
    )


def whole_minute_moments(min_year: int = 1992, max_year: int = 2190) -> st.SearchStrategy[datetime]:
    """Aware datetimes (any zone) that fall on a whole minute, as text can hold them."""
    # Truncated in UTC: Shanghai is a whole number of hours from UTC, so the local
    # text then holds the instant exactly, whatever zone the value is shown in.
    return st.builds(
        lambda utc, zone: utc.replace(second=0, microsecond=0, tzinfo=UTC).astimezone(zone),
        naive_moments(min_year, max_year),
        _zones(),
    )
