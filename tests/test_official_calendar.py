"""The official schedule file: checked in one line, added to the package's calendar, reloaded."""

from __future__ import annotations

import os
from datetime import date

import pytest

from activities.schedule_file import ScheduleFile, read_schedule, write_schedule
from domain.official_calendar import OfficialSchedule, ScheduleError, parse_schedule
from tests.live_system import System
from workflows.business_days import BusinessCalendar

SCHEDULE_2027 = """
[2027]
holidays = ["2027-02-11", "2027-02-12"]
workdays = ["2027-02-20"]
"""


def test_the_schedule_adds_days_off_and_make_up_days_and_the_year_counts_as_published():
    schedule = parse_schedule(SCHEDULE_2027, "cal.toml")
    package, official = BusinessCalendar("CN"), BusinessCalendar("CN", schedule)
    thursday, saturday = date(2027, 2, 11), date(2027, 2, 20)
    assert package.is_business_day(thursday) and not official.is_business_day(thursday)
    assert not package.is_business_day(saturday) and official.is_business_day(saturday)
    assert not official.is_business_day(date(2027, 1, 1))  # statutory holidays stay off
    assert package.add_business_days(date(2027, 2, 1), 15).warnings
    counted = official.add_business_days(date(2027, 2, 1), 15)
    assert counted.warnings == []
    # Two more days off, one more working day: one business day later than the package says.
    assert counted.day == date(2027, 3, 1)
    assert package.add_business_days(date(2027, 2, 1), 15).day == date(2027, 2, 26)
    assert official.published_through(2027) == 2027


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[2027", "cal.toml: not TOML"),
        ("[1999]\nholidays = []", "cal.toml: [1999] is not a year from 2000 to 2100"),
        ("[twenty]\nholidays = []", "cal.toml: [twenty] is not a year"),
        ("2027 = 3", "cal.toml: 2027 must be a table"),
        ("[2027]\nvacation = []", "cal.toml: [2027] 'vacation' is not holidays or workdays"),
        ("[2027]\nholidays = '2027-01-01'", "cal.toml: [2027] holidays: must be a list"),
        ("[2027]\nholidays = ['2027-02-30']", "'2027-02-30' is not a date (YYYY-MM-DD)"),
        ("[2027]\nholidays = ['20270201']", "'20270201' is not a date"),
        ("[2027]\nholidays = [2027-02-01T10:00:00]", "is not a date"),
        (
            "[2027]\nholidays = ['2028-01-03']",
            "cal.toml: [2027] holidays: 2028-01-03 is not in 2027",
        ),
        (
            "[2027]\nholidays = ['2027-02-20']\nworkdays = ['2027-02-20']",
            "2027-02-20 is both a holiday and a workday",
        ),
        ("[2027]\nworkdays = ['2027-02-22']", "2027-02-22 is a Monday, a working day already"),
        ("[2027]\nholidays = [" + ", ".join(["'2027-01-04'"] * 101) + "]", "more than 100"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_the_place(text, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, "cal.toml")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_native_toml_dates_are_taken_and_a_newer_year_replaces_the_older():
    older = parse_schedule("[2027]\nholidays = [2027-02-11]\n[2028]\nholidays = []", "a")
    newer = parse_schedule(SCHEDULE_2027, "b")
    merged = older.merged(newer)
    assert [found.year for found in merged.years] == [2027, 2028]
    assert merged.year(2027) == newer.year(2027)
    assert parse_schedule(merged.to_toml(), "c") == merged


def test_a_file_is_written_whole_and_read_again_when_it_changes(tmp_path):
    path = tmp_path / "calendar.toml"
    assert read_schedule(path) == OfficialSchedule()  # no file: nothing added
    source = ScheduleFile(path)
    assert source.current() == OfficialSchedule()
    write_schedule(path, parse_schedule(SCHEDULE_2027, "x"))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert source.current().covered == {2027}
    path.write_text("[2027\n")  # broken by hand while the worker runs
    os.utime(path, ns=(1, 1))
    assert source.current().covered == {2027}  # the last good schedule stays
    with pytest.raises(ScheduleError, match="not TOML"):
        ScheduleFile(path)  # but a worker does not start on it


def test_a_broken_calendar_file_is_one_line_and_stops_a_worker_before_it_starts(tmp_path):
    system = System(tmp_path)
    broken = tmp_path / "var" / "calendar.toml"
    broken.parent.mkdir(parents=True)
    broken.write_text("[2027]\nworkdays = ['2027-02-22']\n")
    expected = f"refunds: error: {broken}: [2027] workdays: 2027-02-22 is a Monday"
    for command in (("calendar", "show", "2027"), ("worker",), ("console",)):
        assert system.refused(*command).startswith(expected)
    shown = system.refused("calendar", "apply", str(tmp_path / "missing.toml"))
    assert shown == f"refunds: error: {tmp_path / 'missing.toml'}: no such file"
