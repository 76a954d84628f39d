"""The Chinese working-day calendar behind every time limit (DOMAIN.md §3.1).

A working day is a make-up working day (调休), or a Monday to Friday that is not a
statutory day off. Holiday data comes from the ``holidays`` package (pinned), which
also *estimates* years the State Council has not published yet; a calendar therefore
keeps its own list of official years and marks deadlines that depend on any other
year as provisional (or refuses them, when strict).

"N wd after t" ends at 24:00 Asia/Shanghai on the N-th working day strictly after
the calendar day of t (the start day is excluded, Civil Code art. 201). That instant
is represented as the aware datetime 00:00 of the following calendar day.

Every calendar answers for the years 1990..2199 and raises ``CalendarOutOfRange`` (a
``ValueError`` and an ``ApprovalflowError``) outside them. Beyond the package's own range
(after 2100) only weekends are days off, and such years are never official unless their
data is supplied as an ``OfficialYear``.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from approvalflow.errors import CalendarOutOfRange, CalendarUnknown

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "SHANGHAI",
    "Due",
    "OfficialYear",
    "WorkingCalendar",
    "format_local",
    "parse_local",
    "to_local",
]

SHANGHAI: ZoneInfo = ZoneInfo("Asia/Shanghai")
"""The zone every deadline is counted and shown in."""

FIRST_YEAR = 1990
"""The first year a calendar answers for."""

LAST_YEAR = 2199
"""The last year a calendar answers for."""

_ONE_DAY = timedelta(days=1)
_MIDNIGHT = time(0, 0)
_SATURDAY = 5

# A year's working days as sorted ordinals: a tuple, so one table can be shared by
# every calendar and every thread without copying.
_Table = tuple[int, ...]


# --------------------------------------------------------------------------- checks


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarOutOfRange(
            f"year {year} is outside the supported range {FIRST_YEAR}..{LAST_YEAR}"
        )


def _check_day(day: date, name: str) -> None:
    # A datetime is a date too, and would silently be counted by its naive date;
    # an aware one in another zone would land on the wrong day.
    if isinstance(day, datetime):
        raise TypeError(
            f"{name} must be a date, not a datetime ({day!r}); "
            "use deadline_after() for a moment in time"
        )
    if not isinstance(day, date):
        raise TypeError(f"{name} must be a date, not {type(day).__name__}")
    _check_year(day.year)


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"the number of working days must be an int, not {type(n).__name__}")
    if n < 0:
        raise ValueError(f"the number of working days must be >= 0, got {n}")


def _check_moment(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(moment).__name__}")


def _is_aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() is not None


# --------------------------------------------------------------------- value objects


def _frozen_dates(values: Iterable[date]) -> frozenset[date]:
    return frozenset(values)


@attrs.frozen
class OfficialYear:
    """The State Council's holiday arrangement for one calendar year.

    Given to a calendar, it replaces the ``holidays`` package's data for ``year``
    and makes that year official. Every date must lie in ``year`` itself: a make-up
    day in late December that serves the next year's New Year belongs to the
    ``OfficialYear`` of the December it falls in.

    ``days_off`` are the statutory days off; weekend days may be listed (they are
    off anyway). ``makeup_workdays`` must be Saturdays or Sundays and may not also be
    days off. Any iterable of dates is accepted and stored as a frozenset. A bad
    value raises ``ValueError`` (or ``TypeError`` for a non-date) naming it.
    """

    year: int
    days_off: frozenset[date] = attrs.field(converter=_frozen_dates)
    makeup_workdays: frozenset[date] = attrs.field(converter=_frozen_dates)

    def __attrs_post_init__(self) -> None:
        _check_year(self.year)
        for field, days in (("days_off", self.days_off), ("makeup_workdays", self.makeup_workdays)):
            for day in sorted(days):
                _check_day(day, f"OfficialYear.{field} entry")
                if day.year != self.year:
                    raise ValueError(
                        f"OfficialYear({self.year}).{field} holds {day.isoformat()}, "
                        f"which is not in {self.year}"
                    )
        for day in sorted(self.makeup_workdays):
            if day.weekday() < _SATURDAY:
                raise ValueError(
                    f"OfficialYear({self.year}).makeup_workdays holds {day.isoformat()}, "
                    "a weekday; make-up working days are Saturdays or Sundays"
                )
        both = sorted(self.days_off & self.makeup_workdays)
        if both:
            listed = ", ".join(day.isoformat() for day in both)
            raise ValueError(
                f"OfficialYear({self.year}) lists {listed} both as a day off and as a "
                "make-up working day"
            )


def _check_due_at(_instance: object, _attribute: object, value: datetime) -> None:
    _check_moment(value, "Due.at")
    if not _is_aware(value):
        raise ValueError(f"Due.at must be an aware datetime, got naive {value!r}")
    if value.astimezone(SHANGHAI).time() != _MIDNIGHT:
        raise ValueError(
            f"Due.at must be 00:00 Asia/Shanghai (the end of the due day), got {value!r}"
        )


@attrs.frozen
class Due:
    """When a time limit runs out.

    ``at`` is aware and, in Asia/Shanghai, exactly 00:00 of the calendar day after
    the due working day; the limit is still open at any instant before ``at``.
    ``provisional`` is true when the count went through a year whose holiday data is
    not official, so the day may still move when that year's list is published.
    """

    at: datetime = attrs.field(validator=_check_due_at)
    provisional: bool = False

    @property
    def day(self) -> date:
        """The last day of the limit (a working day unless the limit was 0 wd)."""
        return self.at.astimezone(SHANGHAI).date() - _ONE_DAY

    def display(self) -> str:
        """The limit as people write it: ``"YYYY-MM-DD 24:00"`` of :attr:`day`."""
        return f"{self.day.isoformat()} 24:00"


# ------------------------------------------------------------- package data (cached)

_package_lock = threading.Lock()
_package_tables: dict[int, _Table] = {}


def _working_days(year: int, days_off: Iterable[date], makeup_workdays: Iterable[date]) -> _Table:
    off = {day.toordinal() for day in days_off}
    makeup = {day.toordinal() for day in makeup_workdays}
    first = date(year, 1, 1).toordinal()
    last = date(year, 12, 31).toordinal()
    # date(1, 1, 1) is a Monday, so an ordinal's weekday is (ordinal - 1) % 7.
    return tuple(
        ordinal
        for ordinal in range(first, last + 1)
        if ordinal in makeup or ((ordinal - 1) % 7 < _SATURDAY and ordinal not in off)
    )


def _package_table(year: int) -> _Table:
    """Working days of ``year`` by the ``holidays`` package, built once per process."""
    table = _package_tables.get(year)
    if table is not None:
        return table
    with _package_lock:
        table = _package_tables.get(year)
        if table is None:
            # A make-up day in late December can serve the next year's New Year
            # (2001-12-29 for 2002), so load both years; `weekend_workdays` also
            # holds stray dates of other years, hence the filter. The lock is held
            # while building because the package's objects are not documented as
            # thread-safe. "CN" through the typed factory is `holidays.China`.
            # Imported on first use: the package is large and most imports never need a year.
            import holidays

            source = holidays.country_holidays("CN", years=(year, year + 1))
            days_off = [day for day in source if day.year == year]
            makeup = [day for day in source.weekend_workdays if day.year == year]
            table = _working_days(year, days_off, makeup)
            _package_tables[year] = table
    return table


# --------------------------------------------------------------------------- calendar


class WorkingCalendar:
    """Counts working days; cheap to share, safe to read from several threads.

    A calendar never changes after construction: :meth:`with_official_data` returns
    a new one. Per-year tables of working days are built on first use and shared by
    all calendars in the process, so a count or a deadline costs a few binary
    searches, not a walk over days.

    ``official_years`` are the years whose package data is taken as the published
    State Council list; years given through ``official_data`` become official too,
    with their data replacing the package's. Only :meth:`deadline_after` looks at
    officialness: the day arithmetic answers for every supported year alike.
    """

    __slots__ = ("_official", "_overrides", "_strict")

    def __init__(
        self,
        official_years: Iterable[int] = (2025, 2026),
        *,
        strict: bool = False,
        official_data: Iterable[OfficialYear] = (),
    ) -> None:
        years = frozenset(official_years)
        for year in years:
            if isinstance(year, bool) or not isinstance(year, int):
                raise TypeError(f"official years must be ints, got {year!r}")
            _check_year(year)
        overrides: dict[int, _Table] = {}
        for data in official_data:
            if not isinstance(data, OfficialYear):
                raise TypeError(f"official_data must hold OfficialYear, got {type(data).__name__}")
            if data.year in overrides:
                raise ValueError(f"official_data gives the year {data.year} more than once")
            overrides[data.year] = _working_days(data.year, data.days_off, data.makeup_workdays)
        self._official: frozenset[int] = years | overrides.keys()
        self._strict = bool(strict)
        # A plain dict, never mutated after this point, keeps the calendar picklable.
        self._overrides: Mapping[int, _Table] = overrides

    def __repr__(self) -> str:
        return (
            f"WorkingCalendar(official_years={sorted(self._official)}, strict={self._strict}, "
            f"supplied_years={sorted(self._overrides)})"
        )

    @property
    def official_years(self) -> frozenset[int]:
        """Years with official data, including those supplied as ``OfficialYear``."""
        return self._official

    @property
    def strict(self) -> bool:
        """Whether a deadline that depends on a non-official year raises ``CalendarUnknown``."""
        return self._strict

    def is_official(self, year: int) -> bool:
        """Whether ``year``'s holiday data is the published State Council list."""
        return year in self._official

    def with_official_data(self, data: OfficialYear) -> WorkingCalendar:
        """A new calendar that also uses ``data`` (replacing any earlier data for its year)."""
        if not isinstance(data, OfficialYear):
            raise TypeError(f"expected an OfficialYear, got {type(data).__name__}")
        calendar = WorkingCalendar.__new__(WorkingCalendar)
        overrides = dict(self._overrides)
        overrides[data.year] = _working_days(data.year, data.days_off, data.makeup_workdays)
        calendar._official = self._official | {data.year}
        calendar._strict = self._strict
        calendar._overrides = overrides
        return calendar

    def _table(self, year: int) -> _Table:
        table = self._overrides.get(year)
        return table if table is not None else _package_table(year)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day (make-up day, or Mon-Fri and not a day off)."""
        _check_day(day, "day")
        table = self._table(day.year)
        ordinal = day.toordinal()
        index = bisect_left(table, ordinal)
        return index < len(table) and table[index] == ordinal

    def working_days_in_year(self, year: int) -> int:
        """How many working days ``year`` has (248 for 2025 and for 2026)."""
        _check_year(year)
        return len(self._table(year))

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day strictly after ``day``; ``day`` itself when ``n == 0``.

        For ``n >= 1`` the result is always a working day and later than ``day``,
        whatever ``day`` is. Raises ``ValueError`` for a negative ``n`` or when the
        count would leave the supported years.
        """
        _check_day(day, "day")
        _check_count(n)
        if n == 0:
            return day
        year = day.year
        table = self._table(year)
        index = bisect_right(table, day.toordinal())
        remaining = n
        while remaining > len(table) - index:
            remaining -= len(table) - index
            year += 1
            if year > LAST_YEAR:
                raise CalendarOutOfRange(
                    f"{n} working days after {day.isoformat()} is past {LAST_YEAR}, "
                    "the last supported year"
                )
            table = self._table(year)
            index = 0
        return date.fromordinal(table[index + remaining - 1])

    def subtract_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day strictly before ``day``; ``day`` itself when ``n == 0``.

        The mirror of :meth:`add_working_days`: for ``n >= 1`` the result is a working day
        with exactly ``n`` working days in ``(result, day]`` when ``day`` is a working day.
        Raises ``ValueError`` for a negative ``n`` or when the count would leave the
        supported years.
        """
        _check_day(day, "day")
        _check_count(n)
        if n == 0:
            return day
        year = day.year
        table = self._table(year)
        index = bisect_left(table, day.toordinal())  # working days before `day` this year
        remaining = n
        while remaining > index:
            remaining -= index
            year -= 1
            if year < FIRST_YEAR:
                raise CalendarOutOfRange(
                    f"{n} working days before {day.isoformat()} is before {FIRST_YEAR}, "
                    "the first supported year"
                )
            table = self._table(year)
            index = len(table)
        return date.fromordinal(table[index - remaining])

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days ``d`` satisfy ``start < d <= end``; 0 if ``end <= start``.

        The inverse of :meth:`add_working_days`:
        ``working_days_between(d, add_working_days(d, n)) == n``.
        """
        _check_day(start, "start")
        _check_day(end, "end")
        if end <= start:
            return 0
        first = self._table(start.year)
        after_start = bisect_right(first, start.toordinal())
        if start.year == end.year:
            return bisect_right(first, end.toordinal()) - after_start
        total = len(first) - after_start
        for year in range(start.year + 1, end.year):
            total += len(self._table(year))
        return total + bisect_right(self._table(end.year), end.toordinal())

    def deadline_after(self, moment: datetime, n: int) -> Due:
        """The end of the ``n``-th working day strictly after ``moment``'s calendar day.

        An aware ``moment`` is first converted to Asia/Shanghai; a naive one is taken
        as Shanghai local time. ``n == 0`` gives the end of ``moment``'s own day.

        The result is provisional when a day counted (from the day after ``moment``
        up to the due day) lies in a non-official year; a strict calendar raises
        ``CalendarUnknown`` naming that year instead. Raises ``ValueError`` for a
        negative ``n`` or a day outside the supported years.
        """
        _check_moment(moment, "moment")
        _check_count(n)
        start = to_local(moment).date()
        due_day = self.add_working_days(start, n)
        provisional = False
        if n > 0:
            unknown = [
                year
                for year in range((start + _ONE_DAY).year, due_day.year + 1)
                if year not in self._official
            ]
            if unknown:
                if self._strict:
                    raise CalendarUnknown(
                        f"no official holiday data for {unknown[0]}: {n} wd after "
                        f"{start.isoformat()} runs to {due_day.isoformat()}; official years "
                        f"are {', '.join(map(str, sorted(self._official))) or 'none'}"
                    )
                provisional = True
        at = datetime.combine(due_day + _ONE_DAY, _MIDNIGHT, tzinfo=SHANGHAI)
        return Due(at=at, provisional=provisional)


# ------------------------------------------------------------------ local date-times


def to_local(moment: datetime) -> datetime:
    """``moment`` in Asia/Shanghai: an aware one converted, a naive one taken as local."""
    _check_moment(moment, "moment")
    if _is_aware(moment):
        return moment.astimezone(SHANGHAI)
    return moment.replace(tzinfo=SHANGHAI)


def format_local(moment: datetime) -> str:
    """``"YYYY-MM-DD HH:MM"`` in Shanghai time; exact midnight as the previous day ``24:00``.

    Seconds are dropped (not rounded). ``moment`` must be aware (``ValueError``
    otherwise), so a time is never shown in a zone it was not meant in.
    """
    _check_moment(moment, "moment")
    if not _is_aware(moment):
        raise ValueError(f"format_local needs an aware datetime, got naive {moment!r}")
    local = moment.astimezone(SHANGHAI)
    if local.time() == _MIDNIGHT:
        return f"{(local.date() - _ONE_DAY).isoformat()} 24:00"
    return f"{local.date().isoformat()} {local.hour:02d}:{local.minute:02d}"


_LOCAL_PATTERN = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?: (?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?)?",
    re.ASCII,
)


def parse_local(text: str) -> datetime:
    """An aware Asia/Shanghai datetime from ``"YYYY-MM-DD[ HH:MM[:SS]]"``.

    ``"YYYY-MM-DD 24:00"`` (or ``24:00:00``) is 00:00 of the next day, so
    ``parse_local(format_local(t)) == t`` for any aware ``t`` on a whole minute.
    A date alone is 00:00 of that day. Surrounding whitespace is ignored; anything
    else raises ``ValueError`` quoting the text.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_local needs a str, not {type(text).__name__}")
    match = _LOCAL_PATTERN.fullmatch(text.strip())
    expected = '"YYYY-MM-DD", "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH:MM:SS"'
    if match is None:
        raise ValueError(f"cannot read {text!r} as a local time: expected {expected}")
    try:
        day = date.fromisoformat(match["date"])
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a local time: no such date") from None
    hour = int(match["hour"] or 0)
    minute = int(match["minute"] or 0)
    second = int(match["second"] or 0)
    if hour == 24:
        if minute or second:
            raise ValueError(
                f"cannot read {text!r} as a local time: 24:00 is the only 24-hour time"
            )
        try:
            day += _ONE_DAY
        except OverflowError:
            raise ValueError(f"cannot read {text!r} as a local time: past the last date") from None
        hour = 0
    try:
        return datetime.combine(day, time(hour, minute, second), tzinfo=SHANGHAI)
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a local time: no such time of day") from None
