"""The working-day calendar: DOMAIN.md §3.1 and the "N wd" words of WORKFLOW.md."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    aware_moments,
    calendar_days,
    naive_moments,
    official_days,
    whole_minute_moments,
    working_day_counts,
)

from approvalflow import calendar as calendar_module
from approvalflow.calendar import (
    SHANGHAI,
    Due,
    OfficialYear,
    WorkingCalendar,
    format_local,
    parse_local,
    to_local,
)
from approvalflow.errors import CalendarUnknown

# ------------------------------------------------------------- DOMAIN.md §3.1, by hand


def _days(first: str, last: str | None = None) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive, as DOMAIN.md writes ranges."""
    start = date.fromisoformat(first)
    end = date.fromisoformat(last) if last else start
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


DAYS_OFF_2025 = [
    *_days("2025-01-01"),
    *_days("2025-01-28", "2025-02-04"),
    *_days("2025-04-04", "2025-04-06"),
    *_days("2025-05-01", "2025-05-05"),
    *_days("2025-05-31", "2025-06-02"),
    *_days("2025-10-01", "2025-10-08"),
]
MAKEUP_2025 = _days("2025-01-26") + _days("2025-02-08") + _days("2025-04-27")
MAKEUP_2025 += _days("2025-09-28") + _days("2025-10-11")

DAYS_OFF_2026 = [
    *_days("2026-01-01", "2026-01-03"),
    *_days("2026-02-15", "2026-02-23"),
    *_days("2026-04-04", "2026-04-06"),
    *_days("2026-05-01", "2026-05-05"),
    *_days("2026-06-19", "2026-06-21"),
    *_days("2026-09-25", "2026-09-27"),
    *_days("2026-10-01", "2026-10-07"),
]
MAKEUP_2026 = _days("2026-01-04") + _days("2026-02-14") + _days("2026-02-28")
MAKEUP_2026 += _days("2026-05-09") + _days("2026-09-20") + _days("2026-10-10")

ADD_FIXTURES = [
    (date(2025, 1, 24), 3, date(2025, 2, 5)),
    (date(2025, 12, 31), 3, date(2026, 1, 6)),
    (date(2026, 9, 30), 3, date(2026, 10, 10)),
    (date(2026, 7, 6), 10, date(2026, 7, 20)),
]

MONDAY_0900 = datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture
def cal() -> WorkingCalendar:
    return WorkingCalendar()


# ------------------------------------------------- a naive reference, day by day


@functools.cache
def _package() -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=range(1990, 2101))


def reference_is_working(day: date) -> bool:
    """The package's own answer (after 2100 it knows no holidays: weekends only)."""
    return bool(_package().is_working_day(day))


def reference_add(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        n -= reference_is_working(day)
    return day


def reference_count(start: date, end: date) -> int:
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        count += reference_is_working(day)
    return count


# ------------------------------------------------------------------------------ tests


class TestOfficialYear:
    def test_any_iterables_are_stored_as_frozensets(self) -> None:
        """Lists of dates are accepted and kept as immutable frozensets."""
        data = OfficialYear(2027, [date(2027, 1, 1)], (date(2027, 1, 9),))
        assert data.days_off == frozenset({date(2027, 1, 1)})
        assert data.makeup_workdays == frozenset({date(2027, 1, 9)})

    def test_weekend_days_may_be_listed_as_days_off(self) -> None:
        """A holiday span written with its weekend, as the State Council does, is fine."""
        data = OfficialYear(2027, _days("2027-01-01", "2027-01-03"), ())
        assert len(data.days_off) == 3

    def test_a_date_of_another_year_is_rejected(self) -> None:
        """Each OfficialYear holds the dates of its own calendar year only."""
        with pytest.raises(ValueError, match="2026-12-31"):
            OfficialYear(2027, [date(2026, 12, 31)], ())

    def test_a_weekday_makeup_day_is_rejected(self) -> None:
        """Make-up working days are weekend days; a weekday is already a working day."""
        with pytest.raises(ValueError, match="2027-01-06"):
            OfficialYear(2027, (), [date(2027, 1, 6)])

    def test_a_day_both_off_and_worked_is_rejected(self) -> None:
        """A day cannot be a day off and a make-up working day at once."""
        with pytest.raises(ValueError, match="both"):
            OfficialYear(2027, [date(2027, 1, 9)], [date(2027, 1, 9)])

    def test_a_datetime_entry_is_rejected(self) -> None:
        """Entries must be dates; a datetime is refused rather than truncated."""
        with pytest.raises(TypeError, match="not a datetime"):
            OfficialYear(2027, [datetime(2027, 1, 1)], ())

    @pytest.mark.parametrize("year", [1989, 2200])
    def test_a_year_outside_the_supported_range_is_rejected(self, year: int) -> None:
        """Only 1990..2199 can be described."""
        with pytest.raises(ValueError, match=str(year)):
            OfficialYear(year, (), ())


class TestDue:
    def test_day_is_the_calendar_day_before_at(self) -> None:
        """``at`` is 00:00 after the due day, so ``day`` is one day earlier."""
        due = Due(at=datetime(2026, 3, 6, tzinfo=SHANGHAI), provisional=False)
        assert due.day == date(2026, 3, 5)

    def test_display_is_24_00_of_the_due_day(self) -> None:
        """People see the end of the due day, never 00:00 of the next one."""
        due = Due(at=datetime(2026, 3, 6, tzinfo=SHANGHAI), provisional=False)
        assert due.display() == "2026-03-05 24:00"

    def test_the_same_instant_in_another_zone_gives_the_same_day(self) -> None:
        """A Due read back in UTC still names the Shanghai day."""
        due = Due(at=datetime(2026, 3, 5, 16, 0, tzinfo=UTC), provisional=True)
        assert due.day == date(2026, 3, 5)
        assert due.display() == "2026-03-05 24:00"

    def test_a_naive_instant_is_rejected(self) -> None:
        """A deadline without a zone would be read differently by every host."""
        with pytest.raises(ValueError, match="aware"):
            Due(at=datetime(2026, 3, 6), provisional=False)

    def test_an_instant_that_is_not_shanghai_midnight_is_rejected(self) -> None:
        """A deadline always ends a whole day."""
        with pytest.raises(ValueError, match="00:00"):
            Due(at=datetime(2026, 3, 6, 9, 0, tzinfo=SHANGHAI), provisional=False)

    def test_is_immutable_and_compares_by_value(self) -> None:
        """Dues are values: equal fields, equal dues; no field can be reassigned."""
        first = Due(at=datetime(2026, 3, 6, tzinfo=SHANGHAI), provisional=False)
        assert first == Due(at=datetime(2026, 3, 6, tzinfo=SHANGHAI), provisional=False)
        with pytest.raises(AttributeError):
            first.provisional = True  # type: ignore[misc]


class TestWorkingCalendar:
    def test_2025_and_2026_are_official_by_default(self, cal: WorkingCalendar) -> None:
        """The default calendar trusts the published lists for 2025 and 2026 only."""
        assert cal.official_years == frozenset({2025, 2026})
        assert cal.is_official(2026)
        assert not cal.is_official(2027)
        assert not cal.strict

    def test_years_given_as_official_data_are_official(self) -> None:
        """Supplying a year's data makes that year official."""
        cal = WorkingCalendar([2025], official_data=[OfficialYear(2027, (), ())])
        assert cal.official_years == frozenset({2025, 2027})

    def test_a_year_given_twice_is_rejected(self) -> None:
        """Two data sets for one year would make the answer depend on their order."""
        data = OfficialYear(2027, (), ())
        with pytest.raises(ValueError, match="2027"):
            WorkingCalendar(official_data=[data, data])

    def test_an_official_year_outside_the_range_is_rejected(self) -> None:
        """Official years must be supported years."""
        with pytest.raises(ValueError, match="2300"):
            WorkingCalendar([2300])

    def test_with_official_data_leaves_the_original_unchanged(self, cal: WorkingCalendar) -> None:
        """with_official_data returns a new calendar; the old one answers as before."""
        saturday = date(2027, 1, 9)
        other = cal.with_official_data(OfficialYear(2027, (), [saturday]))
        assert other.is_working_day(saturday)
        assert other.is_official(2027)
        assert not cal.is_working_day(saturday)
        assert not cal.is_official(2027)

    def test_with_official_data_replaces_earlier_data_for_that_year(self) -> None:
        """The latest data for a year wins."""
        saturday = date(2027, 1, 9)
        first = WorkingCalendar(official_data=[OfficialYear(2027, (), [saturday])])
        second = first.with_official_data(OfficialYear(2027, (), ()))
        assert first.is_working_day(saturday)
        assert not second.is_working_day(saturday)

    def test_with_official_data_keeps_strictness(self) -> None:
        """A strict calendar stays strict."""
        cal = WorkingCalendar(strict=True).with_official_data(OfficialYear(2027, (), ()))
        assert cal.strict

    def test_survives_pickling(self) -> None:
        """A calendar can be sent to another process with its supplied data and strictness."""
        import pickle

        saturday = date(2027, 1, 9)
        cal = WorkingCalendar(strict=True, official_data=[OfficialYear(2027, (), [saturday])])
        copy = pickle.loads(pickle.dumps(cal))
        assert copy.strict
        assert copy.official_years == cal.official_years
        assert copy.is_working_day(saturday)

    def test_its_settings_cannot_be_changed(self, cal: WorkingCalendar) -> None:
        """The calendar is read-only, so one can be shared freely."""
        with pytest.raises(AttributeError):
            cal.strict = True  # type: ignore[misc]
        with pytest.raises(AttributeError):
            cal.anything_new = 1  # type: ignore[attr-defined]


class TestIsWorkingDay:
    @pytest.mark.parametrize("day", DAYS_OFF_2025 + DAYS_OFF_2026, ids=str)
    def test_every_listed_day_off_is_not_a_working_day(
        self, cal: WorkingCalendar, day: date
    ) -> None:
        """DOMAIN.md §3.1 days off, 2025 and 2026."""
        assert not cal.is_working_day(day)

    @pytest.mark.parametrize("day", MAKEUP_2025 + MAKEUP_2026, ids=str)
    def test_every_listed_makeup_day_is_a_working_day(
        self, cal: WorkingCalendar, day: date
    ) -> None:
        """DOMAIN.md §3.1 make-up days (调休), 2025 and 2026: weekend days that are worked."""
        assert day.weekday() >= 5
        assert cal.is_working_day(day)

    def test_ordinary_weekdays_work_and_weekends_rest(self, cal: WorkingCalendar) -> None:
        """An ordinary week: Monday to Friday are working days, Saturday and Sunday are not."""
        week = _days("2026-03-02", "2026-03-08")
        assert [cal.is_working_day(day) for day in week] == [True] * 5 + [False] * 2

    def test_agrees_with_the_package_on_every_day_it_knows(self, cal: WorkingCalendar) -> None:
        """Outside supplied data, every day 1990..2100 is what ``holidays`` 0.109 says."""
        day, last = date(1990, 1, 1), date(2100, 12, 31)
        while day <= last:
            assert cal.is_working_day(day) == reference_is_working(day), day
            day += timedelta(days=1)

    def test_after_the_package_range_only_weekends_rest(self, cal: WorkingCalendar) -> None:
        """The package knows no holidays after 2100: 2150-01-01 (a Friday) is worked."""
        assert cal.is_working_day(date(2150, 1, 1))
        assert not cal.is_working_day(date(2150, 1, 3))

    @pytest.mark.parametrize("day", [date(1989, 12, 31), date(2200, 1, 1)])
    def test_a_day_outside_1990_2199_is_rejected(self, cal: WorkingCalendar, day: date) -> None:
        """The calendar answers for 1990..2199 only."""
        with pytest.raises(ValueError, match=str(day.year)):
            cal.is_working_day(day)

    def test_a_datetime_is_rejected(self, cal: WorkingCalendar) -> None:
        """A datetime would be judged by its naive date, whatever its zone."""
        with pytest.raises(TypeError, match="deadline_after"):
            cal.is_working_day(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))


class TestWorkingDaysInYear:
    @pytest.mark.parametrize("year", [2025, 2026])
    def test_2025_and_2026_have_248_working_days(self, cal: WorkingCalendar, year: int) -> None:
        """DOMAIN.md §3.1 fixture."""
        assert cal.working_days_in_year(year) == 248

    @pytest.mark.parametrize("year", [1990, 2001, 2002, 2007, 2027, 2100, 2150, 2199])
    def test_matches_a_day_by_day_count(self, cal: WorkingCalendar, year: int) -> None:
        """The year's table holds exactly its working days, cross-year make-up days included."""
        expected = sum(map(reference_is_working, _days(f"{year}-01-01", f"{year}-12-31")))
        assert cal.working_days_in_year(year) == expected

    def test_supplied_data_replaces_the_package_count(self, cal: WorkingCalendar) -> None:
        """2027 has 261 weekdays; with one day off and two make-up days supplied, 262 wd."""
        data = OfficialYear(2027, [date(2027, 3, 3)], [date(2027, 3, 6), date(2027, 3, 7)])
        assert cal.with_official_data(data).working_days_in_year(2027) == 261 - 1 + 2
        assert cal.working_days_in_year(2027) < 261

    @pytest.mark.parametrize("year", [1989, 2200])
    def test_a_year_outside_the_range_is_rejected(self, cal: WorkingCalendar, year: int) -> None:
        """1990..2199 only."""
        with pytest.raises(ValueError, match=str(year)):
            cal.working_days_in_year(year)


class TestAddWorkingDays:
    @pytest.mark.parametrize(("start", "n", "expected"), ADD_FIXTURES, ids=str)
    def test_domain_fixtures(
        self, cal: WorkingCalendar, start: date, n: int, expected: date
    ) -> None:
        """DOMAIN.md §3.1: Spring Festival 2025, New Year 2026, National Day 2026, July 2026."""
        assert cal.add_working_days(start, n) == expected

    def test_a_saturday_makeup_day_can_be_the_result(self, cal: WorkingCalendar) -> None:
        """2026-09-30 + 3 wd lands on Saturday 2026-10-10, a make-up working day."""
        assert cal.add_working_days(date(2026, 9, 30), 3).weekday() == 5

    def test_zero_returns_the_day_itself_even_a_holiday(self, cal: WorkingCalendar) -> None:
        """n == 0 counts nothing, so the day is returned as given."""
        assert cal.add_working_days(date(2026, 10, 1), 0) == date(2026, 10, 1)

    def test_counting_from_a_day_off_starts_after_it(self, cal: WorkingCalendar) -> None:
        """1 wd after National Day 2025 (10-01) is the first working day after the break."""
        assert cal.add_working_days(date(2025, 10, 1), 1) == date(2025, 10, 9)

    @pytest.mark.parametrize(
        ("start", "expected"),
        [
            (date(2026, 3, 2), date(2026, 3, 9)),
            (date(2026, 3, 3), date(2026, 3, 10)),
            (date(2026, 3, 4), date(2026, 3, 11)),
            (date(2026, 3, 5), date(2026, 3, 12)),
            (date(2026, 3, 6), date(2026, 3, 13)),
            (date(2026, 3, 7), date(2026, 3, 13)),
            (date(2026, 3, 8), date(2026, 3, 13)),
        ],
        ids=lambda value: f"{value:%a}" if isinstance(value, date) else str(value),
    )
    def test_5_wd_from_each_day_of_an_ordinary_week(
        self, cal: WorkingCalendar, start: date, expected: date
    ) -> None:
        """Whatever the weekday, the start day is excluded and weekends are skipped."""
        assert cal.add_working_days(start, 5) == expected

    def test_counts_across_many_years(self, cal: WorkingCalendar) -> None:
        """496 wd after 2024-12-31 is the last working day of 2026 (248 + 248)."""
        assert cal.add_working_days(date(2024, 12, 31), 496) == date(2026, 12, 31)
        assert cal.add_working_days(date(2024, 12, 31), 497) > date(2026, 12, 31)

    def test_negative_n_is_rejected(self, cal: WorkingCalendar) -> None:
        """Counting backwards is not a time limit."""
        with pytest.raises(ValueError, match="-1"):
            cal.add_working_days(date(2026, 3, 2), -1)

    def test_non_int_n_is_rejected(self, cal: WorkingCalendar) -> None:
        """A fractional number of working days has no meaning."""
        with pytest.raises(TypeError, match="int"):
            cal.add_working_days(date(2026, 3, 2), 1.5)  # type: ignore[arg-type]

    def test_running_past_2199_is_rejected(self, cal: WorkingCalendar) -> None:
        """The count may not leave the supported years."""
        with pytest.raises(ValueError, match="2199"):
            cal.add_working_days(date(2199, 12, 1), 100)


class TestSubtractWorkingDays:
    @pytest.mark.parametrize(("start", "n", "end"), ADD_FIXTURES, ids=str)
    def test_domain_fixtures_counted_back(
        self, cal: WorkingCalendar, start: date, n: int, end: date
    ) -> None:
        """N wd before each DOMAIN.md fixture's end is its start (every one a working day)."""
        assert cal.subtract_working_days(end, n) == start

    def test_a_holiday_is_stepped_over(self, cal: WorkingCalendar) -> None:
        """2 wd before Thursday 2026-10-08 (after National Day): 09-29, as 10-01..07 are off."""
        assert cal.subtract_working_days(date(2026, 10, 8), 2) == date(2026, 9, 29)

    def test_a_saturday_makeup_day_counts(self, cal: WorkingCalendar) -> None:
        """1 wd before Monday 2026-10-12 is the make-up Saturday 10-10."""
        assert cal.subtract_working_days(date(2026, 10, 12), 1) == date(2026, 10, 10)

    def test_zero_returns_the_day_itself_even_a_holiday(self, cal: WorkingCalendar) -> None:
        """n == 0 counts nothing."""
        assert cal.subtract_working_days(date(2026, 10, 1), 0) == date(2026, 10, 1)

    def test_counting_from_a_day_off_starts_before_it(self, cal: WorkingCalendar) -> None:
        """1 wd before Sunday 2026-03-08 is Friday 03-06."""
        assert cal.subtract_working_days(date(2026, 3, 8), 1) == date(2026, 3, 6)

    def test_counts_back_across_many_years(self, cal: WorkingCalendar) -> None:
        """496 wd before the last working day of 2026 is 2024's last working day."""
        assert cal.subtract_working_days(date(2026, 12, 31), 496) == date(2024, 12, 31)

    def test_negative_n_is_rejected(self, cal: WorkingCalendar) -> None:
        """Use add_working_days to count forwards."""
        with pytest.raises(ValueError, match="-1"):
            cal.subtract_working_days(date(2026, 3, 2), -1)

    def test_running_before_1990_is_rejected(self, cal: WorkingCalendar) -> None:
        """The count may not leave the supported years."""
        with pytest.raises(ValueError, match="1990"):
            cal.subtract_working_days(date(1990, 2, 1), 100)


class TestWorkingDaysBetween:
    @pytest.mark.parametrize(("start", "n", "end"), ADD_FIXTURES, ids=str)
    def test_domain_fixtures_counted_back(
        self, cal: WorkingCalendar, start: date, n: int, end: date
    ) -> None:
        """Counting the DOMAIN.md fixture spans gives their N back."""
        assert cal.working_days_between(start, end) == n

    def test_start_is_excluded_and_end_included(self, cal: WorkingCalendar) -> None:
        """Monday to Tuesday of an ordinary week is 1 wd (the Tuesday)."""
        assert cal.working_days_between(date(2026, 3, 2), date(2026, 3, 3)) == 1

    @pytest.mark.parametrize("offset", [0, -1, -400])
    def test_end_not_after_start_counts_zero(self, cal: WorkingCalendar, offset: int) -> None:
        """An empty or reversed span has no working days."""
        start = date(2026, 3, 2)
        assert cal.working_days_between(start, start + timedelta(days=offset)) == 0

    def test_counts_across_year_ends(self, cal: WorkingCalendar) -> None:
        """2025-01-01 (a holiday, and excluded) to 2026-12-31 is 248 + 248 wd."""
        assert cal.working_days_between(date(2025, 1, 1), date(2026, 12, 31)) == 496

    def test_whole_supported_range(self, cal: WorkingCalendar) -> None:
        """Counting over every supported year equals the sum of the yearly counts."""
        total = sum(cal.working_days_in_year(year) for year in range(1990, 2200))
        first_day = 1 if cal.is_working_day(date(1990, 1, 1)) else 0
        assert cal.working_days_between(date(1990, 1, 1), date(2199, 12, 31)) == total - first_day


class TestDeadlineAfter:
    def test_3_wd_from_monday_morning_ends_thursday_24_00(self, cal: WorkingCalendar) -> None:
        """The example of the brief: 2026-03-02 09:00 + 3 wd is 2026-03-05 24:00."""
        assert cal.deadline_after(MONDAY_0900, 3).display() == "2026-03-05 24:00"

    @pytest.mark.parametrize(
        ("n", "shown"),
        [(5, "2026-03-09 24:00"), (7, "2026-03-11 24:00"), (10, "2026-03-16 24:00")],
    )
    def test_5_7_10_wd_from_monday_morning(self, cal: WorkingCalendar, n: int, shown: str) -> None:
        """Longer limits from the same moment skip the weekends in between."""
        assert cal.deadline_after(MONDAY_0900, n).display() == shown

    def test_at_is_shanghai_midnight_after_the_due_day(self, cal: WorkingCalendar) -> None:
        """The instant is 00:00 Asia/Shanghai of the next calendar day."""
        due = cal.deadline_after(MONDAY_0900, 3)
        assert due.at == datetime(2026, 3, 6, 0, 0, tzinfo=SHANGHAI)
        assert due.at.tzinfo == SHANGHAI
        assert due.day == date(2026, 3, 5)
        assert not due.provisional

    @pytest.mark.parametrize(
        ("moment", "n", "shown"),
        [
            (datetime(2026, 9, 30, 17, 0), 1, "2026-10-08 24:00"),
            (datetime(2026, 9, 30, 17, 0), 3, "2026-10-10 24:00"),
            (datetime(2026, 10, 3, 10, 0), 1, "2026-10-08 24:00"),
            (datetime(2026, 9, 18, 10, 0), 1, "2026-09-20 24:00"),
            (datetime(2026, 9, 24, 10, 0), 1, "2026-09-28 24:00"),
        ],
        ids=str,
    )
    def test_across_national_day_2026(
        self, cal: WorkingCalendar, moment: datetime, n: int, shown: str
    ) -> None:
        """10-01..07 and Mid-Autumn 09-25..27 are off; Sundays 09-20 and Sat 10-10 are worked."""
        assert cal.deadline_after(moment, n).display() == shown

    @pytest.mark.parametrize(
        ("moment", "n", "shown"),
        [
            (datetime(2026, 2, 12, 9, 0), 1, "2026-02-13 24:00"),
            (datetime(2026, 2, 12, 9, 0), 2, "2026-02-14 24:00"),
            (datetime(2026, 2, 12, 9, 0), 3, "2026-02-24 24:00"),
            (datetime(2026, 2, 16, 9, 0), 4, "2026-02-27 24:00"),
            (datetime(2026, 2, 16, 9, 0), 5, "2026-02-28 24:00"),
        ],
        ids=str,
    )
    def test_across_spring_festival_2026(
        self, cal: WorkingCalendar, moment: datetime, n: int, shown: str
    ) -> None:
        """02-15..23 are off; Saturdays 02-14 and 02-28 are worked."""
        assert cal.deadline_after(moment, n).display() == shown

    def test_an_aware_moment_is_first_taken_to_shanghai(self, cal: WorkingCalendar) -> None:
        """20:00 UTC on Monday is already Tuesday in Shanghai, so the count starts a day later."""
        moment = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
        assert cal.deadline_after(moment, 3).display() == "2026-03-06 24:00"

    def test_a_naive_moment_is_shanghai_local_time(self, cal: WorkingCalendar) -> None:
        """A naive datetime means Shanghai wall time."""
        assert cal.deadline_after(datetime(2026, 3, 2, 9, 0), 3) == cal.deadline_after(
            MONDAY_0900, 3
        )

    def test_the_time_of_day_does_not_matter(self, cal: WorkingCalendar) -> None:
        """00:00 and 23:59 of the same day give the same deadline."""
        early = cal.deadline_after(datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI), 3)
        late = cal.deadline_after(datetime(2026, 3, 2, 23, 59, 59, tzinfo=SHANGHAI), 3)
        assert early == late

    def test_zero_wd_ends_the_moments_own_day(self, cal: WorkingCalendar) -> None:
        """n == 0 is the end of the day of the moment, even a day off."""
        due = cal.deadline_after(datetime(2026, 10, 3, 10, 0, tzinfo=SHANGHAI), 0)
        assert due.display() == "2026-10-03 24:00"

    def test_negative_n_is_rejected(self, cal: WorkingCalendar) -> None:
        """Negative limits are a caller's mistake."""
        with pytest.raises(ValueError, match=">= 0"):
            cal.deadline_after(MONDAY_0900, -3)

    def test_a_date_is_rejected(self, cal: WorkingCalendar) -> None:
        """deadline_after needs a moment; a bare date is a different question."""
        with pytest.raises(TypeError, match="datetime"):
            cal.deadline_after(date(2026, 3, 2), 3)  # type: ignore[arg-type]


class TestDeadlineAfterOfficialYears:
    def test_a_deadline_in_2027_is_provisional_by_default(self, cal: WorkingCalendar) -> None:
        """2027 has no published list yet, so its days may still move."""
        due = cal.deadline_after(datetime(2027, 3, 1, 9, 0, tzinfo=SHANGHAI), 3)
        assert due.provisional

    def test_a_deadline_that_only_reaches_into_2027_is_provisional(
        self, cal: WorkingCalendar
    ) -> None:
        """Starting in official 2026 and ending in 2027 is provisional too."""
        due = cal.deadline_after(datetime(2026, 12, 28, 9, 0, tzinfo=SHANGHAI), 5)
        assert due.day.year == 2027
        assert due.provisional

    def test_a_deadline_inside_official_years_is_final(self, cal: WorkingCalendar) -> None:
        """Counts within 2025 and 2026 are not provisional."""
        assert not cal.deadline_after(datetime(2025, 12, 30, 9, 0), 100).provisional

    def test_the_excluded_start_day_does_not_count(self, cal: WorkingCalendar) -> None:
        """From 2024-12-31 (not official) only 2025 days are counted, so the deadline is final."""
        due = cal.deadline_after(datetime(2024, 12, 31, 9, 0, tzinfo=SHANGHAI), 3)
        assert due.day == date(2025, 1, 6)
        assert not due.provisional

    def test_zero_wd_is_never_provisional(self) -> None:
        """With n == 0 nothing is counted, so nothing is uncertain, even when strict."""
        strict = WorkingCalendar(strict=True)
        assert not strict.deadline_after(datetime(2027, 3, 1, 9, 0), 0).provisional

    def test_strict_calendar_raises_calendar_unknown_naming_2027(self) -> None:
        """A strict calendar refuses to guess, and says which year is missing."""
        strict = WorkingCalendar(strict=True)
        with pytest.raises(CalendarUnknown, match="2027") as caught:
            strict.deadline_after(datetime(2026, 12, 28, 9, 0, tzinfo=SHANGHAI), 5)
        assert caught.value.code == "CalendarUnknown"

    def test_strict_calendar_answers_inside_official_years(self) -> None:
        """Strictness changes nothing for official years."""
        strict = WorkingCalendar(strict=True)
        assert strict.deadline_after(MONDAY_0900, 3).display() == "2026-03-05 24:00"

    def test_supplied_2027_data_is_official_and_honoured(self, cal: WorkingCalendar) -> None:
        """An OfficialYear for 2027 removes the doubt and its days are used as given."""
        moment = datetime(2027, 1, 7, 9, 0, tzinfo=SHANGHAI)  # a Thursday
        assert cal.deadline_after(moment, 2).day == date(2027, 1, 11)
        invented = OfficialYear(
            2027,
            days_off=[date(2027, 1, 1), date(2027, 1, 12)],
            makeup_workdays=[date(2027, 1, 9)],  # a Saturday, made up for this test
        )
        strict = WorkingCalendar(strict=True).with_official_data(invented)
        for calendar in (cal.with_official_data(invented), strict):
            assert calendar.is_working_day(date(2027, 1, 9))
            assert not calendar.is_working_day(date(2027, 1, 12))
            due = calendar.deadline_after(moment, 2)
            assert due.day == date(2027, 1, 9)
            assert not due.provisional
            assert calendar.deadline_after(moment, 4).day == date(2027, 1, 13)

    def test_supplied_data_replaces_the_package_for_its_year(self) -> None:
        """Correcting an official year: a supplied 2026 without Mid-Autumn makes 09-25 a wd."""
        fixed = OfficialYear(
            2026,
            days_off=[d for d in DAYS_OFF_2026 if d != date(2026, 9, 25)],
            makeup_workdays=MAKEUP_2026,
        )
        cal = WorkingCalendar(official_data=[fixed])
        assert cal.is_working_day(date(2026, 9, 25))
        assert cal.working_days_in_year(2026) == 249


class TestWorkingDayLaws:
    @settings(deadline=None)
    @given(calendar_days(), working_day_counts().filter(lambda n: n >= 1))
    def test_a_deadline_never_falls_on_a_day_off(self, day: date, n: int) -> None:
        """n >= 1 working days after any day is itself a working day."""
        cal = WorkingCalendar()
        assert cal.is_working_day(cal.add_working_days(day, n))

    @settings(deadline=None)
    @given(calendar_days(), working_day_counts())
    def test_one_more_working_day_is_strictly_later(self, day: date, n: int) -> None:
        """N + 1 wd ends strictly after N wd."""
        cal = WorkingCalendar()
        assert cal.add_working_days(day, n + 1) > cal.add_working_days(day, n)

    @settings(deadline=None)
    @given(calendar_days(), working_day_counts())
    def test_counting_undoes_adding(self, day: date, n: int) -> None:
        """working_days_between(d, add_working_days(d, n)) == n."""
        cal = WorkingCalendar()
        assert cal.working_days_between(day, cal.add_working_days(day, n)) == n

    @settings(deadline=None)
    @given(calendar_days(min_year=1994), working_day_counts().filter(lambda n: n >= 1))
    def test_subtracting_lands_on_a_working_day_before(self, day: date, n: int) -> None:
        """n >= 1 wd before any day is a working day, earlier than it."""
        cal = WorkingCalendar()
        earlier = cal.subtract_working_days(day, n)
        assert earlier < day
        assert cal.is_working_day(earlier)

    @settings(deadline=None)
    @given(calendar_days(min_year=1994), working_day_counts())
    def test_subtracting_undoes_adding_from_a_working_day(self, day: date, n: int) -> None:
        """From a working day d: add_working_days(subtract_working_days(d, n), n) == d."""
        cal = WorkingCalendar()
        if cal.is_working_day(day):
            assert cal.add_working_days(cal.subtract_working_days(day, n), n) == day

    @settings(deadline=None)
    @given(calendar_days(max_year=2105), working_day_counts(400))
    def test_adding_matches_a_day_by_day_walk(self, day: date, n: int) -> None:
        """From any weekday, holiday or make-up day, the table agrees with walking the days."""
        assert WorkingCalendar().add_working_days(day, n) == reference_add(day, n)

    @settings(deadline=None)
    @given(calendar_days(max_year=2105), st.integers(min_value=-10, max_value=800))
    def test_counting_matches_a_day_by_day_walk(self, day: date, span: int) -> None:
        """From any start day, the count agrees with walking the days one by one."""
        end = day + timedelta(days=span)
        assert WorkingCalendar().working_days_between(day, end) == reference_count(day, end)

    @settings(deadline=None)
    @given(official_days(), working_day_counts(30))
    def test_deadline_day_is_add_working_days_of_the_local_day(self, day: date, n: int) -> None:
        """deadline_after(t, n).day == add_working_days(t's Shanghai date, n), at any hour."""
        cal = WorkingCalendar()
        for hour in (0, 9, 23):
            moment = datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)
            assert cal.deadline_after(moment, n).day == cal.add_working_days(day, n)

    @settings(deadline=None)
    @given(aware_moments(), working_day_counts(300))
    def test_deadline_of_any_aware_moment_is_after_it(self, moment: datetime, n: int) -> None:
        """A deadline is always later than its start moment, from any zone."""
        due = WorkingCalendar().deadline_after(moment, n)
        assert due.at > moment
        assert due.at.astimezone(SHANGHAI).time().isoformat() == "00:00:00"


class TestFormatLocal:
    def test_shows_shanghai_wall_time(self) -> None:
        """An instant given in UTC is shown in Shanghai time."""
        assert format_local(datetime(2026, 3, 2, 1, 30, tzinfo=UTC)) == "2026-03-02 09:30"

    def test_midnight_is_shown_as_24_00_of_the_previous_day(self) -> None:
        """00:00 ends the previous day, as deadlines are written."""
        assert format_local(datetime(2026, 3, 6, tzinfo=SHANGHAI)) == "2026-03-05 24:00"

    def test_midnight_at_the_start_of_a_year_goes_back_a_year(self) -> None:
        """2027-01-01 00:00 is 2026-12-31 24:00."""
        assert format_local(datetime(2027, 1, 1, tzinfo=SHANGHAI)) == "2026-12-31 24:00"

    def test_just_after_midnight_is_00_00_of_the_new_day(self) -> None:
        """Only the exact instant of midnight is written as 24:00."""
        moment = datetime(2026, 3, 6, 0, 0, 1, tzinfo=SHANGHAI)
        assert format_local(moment) == "2026-03-06 00:00"
        assert format_local(moment + timedelta(minutes=1)) == "2026-03-06 00:01"

    def test_seconds_are_dropped(self) -> None:
        """The text shows whole minutes; seconds are cut, not rounded."""
        assert format_local(datetime(2026, 3, 2, 9, 30, 59, tzinfo=SHANGHAI)) == "2026-03-02 09:30"

    def test_a_naive_moment_is_rejected(self) -> None:
        """Without a zone the wall time shown could be wrong by hours."""
        with pytest.raises(ValueError, match="aware"):
            format_local(datetime(2026, 3, 2, 9, 30))


class TestParseLocal:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2026-03-02 09:30", datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)),
            ("2026-03-02 09:30:15", datetime(2026, 3, 2, 9, 30, 15, tzinfo=SHANGHAI)),
            ("2026-03-02", datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI)),
            ("2026-03-02 00:00", datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI)),
            ("2026-03-05 24:00", datetime(2026, 3, 6, 0, 0, tzinfo=SHANGHAI)),
            ("2026-03-05 24:00:00", datetime(2026, 3, 6, 0, 0, tzinfo=SHANGHAI)),
            ("2026-12-31 24:00", datetime(2027, 1, 1, 0, 0, tzinfo=SHANGHAI)),
            ("2028-02-28 24:00", datetime(2028, 2, 29, 0, 0, tzinfo=SHANGHAI)),
            ("  2026-03-02 09:30\n", datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)),
        ],
    )
    def test_accepted_forms(self, text: str, expected: datetime) -> None:
        """Date, date with minutes or seconds, and 24:00 as the end of the day."""
        parsed = parse_local(text)
        assert parsed == expected
        assert parsed.tzinfo == SHANGHAI

    @pytest.mark.parametrize(
        "text",
        [
            "",
            "tomorrow",
            "2026-3-2",
            "2026-03-02T09:30",
            "2026-03-02 9:30",
            "2026-03-02 09:30+08:00",
            "2026-03-02 09:30:00.5",
            "2026-02-30",
            "2026-03-02 24:01",
            "2026-03-02 24:00:01",
            "2026-03-02 25:00",
            "2026-03-02 09:60",
            "9999-12-31 24:00",
            "２０２６-03-02",
        ],
    )
    def test_rejected_forms_name_the_text(self, text: str) -> None:
        """Anything else is a ValueError quoting what was given."""
        with pytest.raises(ValueError, match="cannot read") as caught:
            parse_local(text)
        assert repr(text) in str(caught.value)

    def test_a_non_string_is_rejected(self) -> None:
        """Only text is parsed."""
        with pytest.raises(TypeError):
            parse_local(datetime(2026, 3, 2))  # type: ignore[arg-type]

    @settings(deadline=None)
    @given(whole_minute_moments())
    def test_parse_undoes_format(self, moment: datetime) -> None:
        """Any aware instant on a whole minute survives format_local then parse_local."""
        assert parse_local(format_local(moment)) == moment

    @settings(deadline=None)
    @given(whole_minute_moments())
    def test_format_undoes_parse(self, moment: datetime) -> None:
        """Text written by format_local is read back and written again unchanged."""
        text = format_local(moment)
        assert format_local(parse_local(text)) == text

    @settings(deadline=None)
    @given(calendar_days())
    def test_24_00_is_00_00_of_the_next_day(self, day: date) -> None:
        """ "D 24:00" and "D+1 00:00" are one instant, shown as "D 24:00"."""
        next_day = day + timedelta(days=1)
        end_of_day = parse_local(f"{day.isoformat()} 24:00")
        assert end_of_day == parse_local(f"{next_day.isoformat()} 00:00")
        assert format_local(end_of_day) == f"{day.isoformat()} 24:00"


class TestToLocal:
    @settings(deadline=None)
    @given(aware_moments())
    def test_an_aware_moment_keeps_its_instant(self, moment: datetime) -> None:
        """Conversion changes the zone, never the instant (compared as timestamps: Python
        never calls an ambiguous wall time, such as a DST fall-back hour, equal across zones)."""
        local = to_local(moment)
        assert local.timestamp() == moment.timestamp()
        assert local.tzinfo == SHANGHAI

    @settings(deadline=None)
    @given(naive_moments())
    def test_a_naive_moment_keeps_its_wall_time(self, moment: datetime) -> None:
        """A naive datetime is read as Shanghai wall time."""
        local = to_local(moment)
        assert local.replace(tzinfo=None) == moment
        assert local.tzinfo == SHANGHAI

    def test_a_fixed_offset_zone_is_converted(self) -> None:
        """Any tzinfo works, not only IANA zones."""
        moment = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
        assert to_local(moment) == datetime(2026, 3, 2, 22, 0, tzinfo=SHANGHAI)


class TestPackageTables:
    @pytest.fixture
    def counted_loads(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
        """Empty the shared year tables and record each year the package is asked for."""
        loads: list[int] = []
        lock = threading.Lock()
        real: Callable[..., Any] = holidays.country_holidays

        def counting(*args: Any, **kwargs: Any) -> Any:
            with lock:
                loads.append(min(kwargs["years"]))
            return real(*args, **kwargs)

        monkeypatch.setattr(calendar_module, "_package_tables", {})
        monkeypatch.setattr(holidays, "country_holidays", counting)
        yield loads

    def test_the_package_is_loaded_once_per_year(self, counted_loads: list[int]) -> None:
        """Many deadlines over several years load each year's data once."""
        for n in range(0, 800, 7):
            WorkingCalendar().deadline_after(MONDAY_0900, n)
            WorkingCalendar(strict=True).add_working_days(date(2025, 1, 1), n)
        assert sorted(counted_loads) == [2025, 2026, 2027, 2028, 2029]

    def test_supplied_years_never_load_the_package(self, counted_loads: list[int]) -> None:
        """A year given as OfficialYear is answered from that data alone."""
        cal = WorkingCalendar(official_data=[OfficialYear(2027, (), ())])
        cal.add_working_days(date(2027, 1, 1), 200)
        assert counted_loads == []

    def test_threads_filling_the_tables_at_once_agree(self, counted_loads: list[int]) -> None:
        """Eight threads racing to first use see the same answers and load each year once."""
        cal = WorkingCalendar()
        years = range(2000, 2060)
        barrier = threading.Barrier(8)
        results: list[list[int]] = []

        def work() -> None:
            barrier.wait()
            results.append([cal.working_days_in_year(year) for year in years])

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(results) == 8
        assert all(result == results[0] for result in results)
        assert sorted(counted_loads) == list(years)
