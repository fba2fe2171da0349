"""The official working calendar, for years the ``holidays`` package does not hold in full yet.

China's State Council publishes each year's holiday schedule in the autumn before, days off and
make-up working days (调休) together; the package follows some months later. A schedule file
(``REFUNDS_CALENDAR_FILE``, TOML) gives each year's schedule as published; its days are added to
the package's (statutory holidays stay off), and a year in the file counts as published in full:

    [2027]
    holidays = ["2027-01-01", "2027-02-06", "2027-02-07"]
    workdays = ["2027-02-14"]

``holidays`` are the weekdays off (listing a statutory holiday or a weekend day again is harmless);
``workdays`` are weekend days worked instead. Every problem is reported in one line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime

FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_DAYS_PER_LIST = 100
MAX_FILE_BYTES = 64 * 1024
LISTS = ("holidays", "workdays")


class ScheduleError(ValueError):
    """A schedule that cannot be used; the message is one line naming where."""


@dataclass(frozen=True)
class YearSchedule:
    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]


@dataclass(frozen=True)
class OfficialSchedule:
    """Years of official schedule, in order; hashable, so calendars built from it can be kept."""

    years: tuple[YearSchedule, ...] = ()

    def year(self, year: int) -> YearSchedule | None:
        return next((found for found in self.years if found.year == year), None)

    @property
    def covered(self) -> frozenset[int]:
        return frozenset(found.year for found in self.years)

    def merged(self, newer: OfficialSchedule) -> OfficialSchedule:
        """This schedule with ``newer``'s years in place of its own."""
        kept = [found for found in self.years if found.year not in newer.covered]
        return OfficialSchedule(tuple(sorted([*kept, *newer.years], key=lambda y: y.year)))

    def to_toml(self) -> str:
        blocks = []
        for found in self.years:
            lines = [f"[{found.year}]"]
            for name in LISTS:
                days = sorted(getattr(found, name))
                lines.append(f"{name} = [{', '.join(f'{d.isoformat()!r}' for d in days)}]")
            blocks.append("\n".join(lines).replace("'", '"'))
        return "\n\n".join(blocks) + "\n"


def parse_schedule(text: str, source: str) -> OfficialSchedule:
    """The schedule in ``text`` (TOML), or a ``ScheduleError`` naming ``source`` and the place."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise ScheduleError(f"{source}: longer than {MAX_FILE_BYTES // 1024} KiB")
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ScheduleError(f"{source}: not TOML ({err})") from None
    years = [_year(source, key, value) for key, value in tables.items()]
    return OfficialSchedule(tuple(sorted(years, key=lambda y: y.year)))


def _year(source: str, key: str, table: object) -> YearSchedule:
    if not (key.isdigit() and len(key) == 4 and FIRST_YEAR <= int(key) <= LAST_YEAR):
        raise ScheduleError(
            f"{source}: [{key[:20]}] is not a year from {FIRST_YEAR} to {LAST_YEAR}"
        )
    year = int(key)
    if not isinstance(table, dict):
        raise ScheduleError(f"{source}: {year} must be a table ([{year}]) of holidays and workdays")
    unknown = sorted(set(table) - set(LISTS))
    if unknown:
        raise ScheduleError(f"{source}: [{year}] {unknown[0][:40]!r} is not holidays or workdays")
    holidays = _days(source, year, "holidays", table.get("holidays", []))
    workdays = _days(source, year, "workdays", table.get("workdays", []))
    both = sorted(holidays & workdays)
    if both:
        raise ScheduleError(f"{source}: [{year}] {both[0]} is both a holiday and a workday")
    weekday = next((day for day in sorted(workdays) if day.weekday() < 5), None)
    if weekday is not None:
        raise ScheduleError(
            f"{source}: [{year}] workdays: {weekday} is a {weekday:%A}, a working day already"
        )
    return YearSchedule(year, holidays, workdays)


def _days(source: str, year: int, name: str, values: object) -> frozenset[date]:
    where = f"{source}: [{year}] {name}"
    if not isinstance(values, list):
        raise ScheduleError(f"{where}: must be a list of dates")
    if len(values) > MAX_DAYS_PER_LIST:
        raise ScheduleError(f"{where}: more than {MAX_DAYS_PER_LIST} days")
    days = [_day(where, value) for value in values]
    stray = next((day for day in days if day.year != year), None)
    if stray is not None:
        raise ScheduleError(f"{where}: {stray} is not in {year}")
    return frozenset(days)


def _day(where: str, value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ScheduleError(f"{where}: {str(value)[:40]!r} is not a date (YYYY-MM-DD)")
