"""Business days on the ``holidays`` calendars, with China's make-up working days."""

from __future__ import annotations

from datetime import date

from workflows.business_days import BusinessCalendar

CN = BusinessCalendar("CN")
PUBLISHED = CN.published_through(date.today().year + 5) or 0
assert PUBLISHED, "the pinned holidays release knows China's make-up days"
UNPUBLISHED = PUBLISHED + 1
"""The first year the pinned calendar data has no official schedule for (asked, not assumed)."""


def test_national_day_week_is_skipped():
    assert CN.add_business_days(date(2026, 9, 30), 1).day == date(2026, 10, 8)


def test_make_up_saturday_is_a_business_day():
    assert CN.is_business_day(date(2026, 10, 10))
    assert CN.add_business_days(date(2026, 10, 9), 1).day == date(2026, 10, 10)


def test_make_up_sunday_before_national_day():
    assert CN.add_business_days(date(2026, 9, 19), 1).day == date(2026, 9, 20)


def test_spring_festival_2026():
    assert CN.add_business_days(date(2026, 2, 13), 1).day == date(2026, 2, 14)
    assert not CN.is_business_day(date(2026, 2, 16))
    assert CN.add_business_days(date(2026, 2, 14), 1).day == date(2026, 2, 24)


def test_ordinary_weekend_is_skipped():
    assert CN.add_business_days(date(2026, 11, 27), 1).day == date(2026, 11, 30)


def test_zero_days_is_the_same_day():
    assert CN.add_business_days(date(2026, 11, 27), 0).day == date(2026, 11, 27)


def test_counting_between_dates():
    assert CN.business_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3
    assert CN.business_days_between(date(2026, 10, 10), date(2026, 10, 10)) == 0


def test_a_year_without_a_published_schedule_is_reported():
    counted = CN.add_business_days(date(UNPUBLISHED - 1, 12, 20), 15)
    assert counted.day.year == UNPUBLISHED
    assert len(counted.warnings) == 1
    assert str(UNPUBLISHED) in counted.warnings[0]
    assert CN.add_business_days(date(PUBLISHED, 6, 1), 15).warnings == []


def test_countries_without_make_up_days_never_warn():
    counted = BusinessCalendar("US").add_business_days(date(2026, 12, 20), 15)
    assert counted.day == date(2027, 1, 12)
    assert counted.warnings == []


def test_a_kept_count_hands_out_its_own_warnings():
    first = CN.add_business_days(date(UNPUBLISHED - 1, 12, 20), 15)
    first.warnings.clear()
    again = CN.add_business_days(date(UNPUBLISHED - 1, 12, 20), 15)
    assert again.day == first.day
    assert len(again.warnings) == 1


def test_new_year_2026_with_its_make_up_sunday():
    """1-2 January off, Sunday 4 January a working day."""
    assert not CN.is_business_day(date(2026, 1, 2))
    assert CN.is_business_day(date(2026, 1, 4))
    assert CN.add_business_days(date(2025, 12, 31), 1).day == date(2026, 1, 4)


def test_spring_festival_2026_with_both_make_up_saturdays():
    """15-23 February off; Saturdays 14 and 28 February working days."""
    assert CN.is_business_day(date(2026, 2, 28))
    assert CN.add_business_days(date(2026, 2, 10), 15).day == date(2026, 3, 9)
