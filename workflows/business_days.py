"""Business days in a country's holiday calendar, including make-up working days (China's 调休).

Some governments publish each year's holiday schedule late in the year before; until then the
``holidays`` package only knows the rule-based holidays. An official schedule
(``domain.official_calendar``, from ``REFUNDS_CALENDAR_FILE``) adds the days off and make-up
working days the package lacks, and a year it holds counts as published. A count that runs into
a year neither holds in full is still made, but it comes back with a warning instead of silently
treating the year as complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import holidays

from domain.official_calendar import OfficialSchedule

_HISTORY_YEARS = 10


@dataclass(frozen=True)
class BusinessDayCount:
    """The day reached by counting, and what is uncertain about it."""

    day: date
    warnings: list[str] = field(default_factory=list)


class BusinessCalendar:
    """Working days of one country: weekends and public holidays off, make-up days on."""

    def __init__(self, country: str = "CN", schedule: OfficialSchedule | None = None) -> None:
        self.country = country.upper()
        self.schedule = schedule or OfficialSchedule()

    def _calendar(self, first: int, last: int) -> holidays.HolidayBase:
        return _calendar_for(self.country, first, last, self.schedule)

    def is_business_day(self, day: date) -> bool:
        return bool(self._calendar(day.year, day.year).is_working_day(day))

    def add_business_days(self, start: date, count: int) -> BusinessDayCount:
        """The ``count``-th business day after ``start`` (``start`` itself is not counted)."""
        if count < 0:
            raise ValueError("count must be zero or more")
        day, warnings = _nth_business_day(self.country, start, count, self.schedule)
        return BusinessDayCount(day, list(warnings))

    def business_days_between(self, start: date, end: date) -> int:
        """Business days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
        if end <= start:
            return 0
        calendar = self._calendar(start.year, end.year)
        return int(calendar.get_working_days_count(start + timedelta(days=1), end))

    def year_days(self, year: int) -> tuple[dict[date, str], set[date]]:
        """The year's holidays by name and its make-up working days, as counted."""
        calendar = self._calendar(year, year)
        holidays_ = {day: str(name) for day, name in calendar.items() if day.year == year}
        return holidays_, {day for day in calendar.weekend_workdays if day.year == year}

    def published_through(self, until: int) -> int | None:
        """The last year up to ``until`` whose official schedule (make-up working days) the data
        holds, for a country that has make-up days; ``None`` otherwise."""
        latest = _latest_published_year(self.country, until)
        official = [year for year in self.schedule.covered if year <= until]
        return max([*official, latest]) if latest is not None else latest

    def unpublished_warnings(self, first: int, last: int) -> list[str]:
        latest = _latest_published_year(self.country, last)
        if latest is None:
            return []
        return [
            f"the {self.country} holiday schedule for {year} is not published yet; "
            f"business days in {year} count weekends and fixed holidays only"
            for year in range(first, last + 1)
            if year > latest and year not in self.schedule.covered
        ]


@lru_cache(maxsize=256)
def _nth_business_day(
    country: str, start: date, count: int, schedule: OfficialSchedule
) -> tuple[date, tuple[str, ...]]:
    """``add_business_days``, kept: every refund submitted on a day counts from that day (the
    schedule is part of the key, so a new schedule is never answered from the old one)."""
    day = start
    if count:
        # Two spare years cover any holiday season the count could run through.
        calendar = _calendar_for(country, start.year, start.year + 1 + count // 200, schedule)
        day = calendar.get_nth_working_day(start, count)
    calendar_used = BusinessCalendar(country, schedule)
    return day, tuple(calendar_used.unpublished_warnings(start.year, day.year))


@lru_cache(maxsize=64)
def _calendar_for(
    country: str, first: int, last: int, schedule: OfficialSchedule | None = None
) -> holidays.HolidayBase:
    calendar = holidays.country_holidays(country, years=range(first, last + 1))
    for official in schedule.years if schedule else ():
        if not first <= official.year <= last:
            continue
        calendar.update(dict.fromkeys(official.holidays, "official schedule"))
        calendar.weekend_workdays = calendar.weekend_workdays | set(official.workdays)
    return calendar


@lru_cache(maxsize=64)
def _latest_published_year(country: str, until: int) -> int | None:
    """The last year with make-up working days, for countries that have them; else ``None``."""
    calendar = _calendar_for(country, until - _HISTORY_YEARS, until)
    years = {day.year for day in getattr(calendar, "weekend_workdays", ())}
    recent = {year for year in years if year > until - _HISTORY_YEARS}
    return max(recent) if recent else None
