"""A refund in review follows the official calendar: ``calendar_changed`` moves its deadline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from activities.schedule_file import write_schedule
from domain.official_calendar import parse_schedule
from settings import Settings
from starter.local_world import LocalWorld
from tests.factories import certificate
from tests.harness import REVIEWERS, Harness
from workflows.business_days import BusinessCalendar
from workflows.contract import ApproveInput, RefundState
from workflows.refund import RefundWorkflow
from workflows.search_attributes import REVIEW_DEADLINE

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def harness_settings(local_world: LocalWorld, tmp_path) -> Settings:
    return local_world.settings.model_copy(
        update={"reviewers": REVIEWERS, "calendar_file": tmp_path / "calendar.toml"}
    )


def _weekdays_off(count: int, after: date) -> str:
    """A schedule giving ``count`` more weekdays off, from the first working day after ``after``."""
    calendar, day = BusinessCalendar("CN"), after
    days: list[date] = []
    while len(days) < count:
        day += timedelta(days=1)
        if calendar.is_business_day(day):
            days.append(day)
    years: dict[int, list[str]] = {}
    for found in days:
        years.setdefault(found.year, []).append(f'"{found.isoformat()}"')
    return "\n".join(f"[{year}]\nholidays = [{', '.join(d)}]" for year, d in years.items())


async def test_a_new_schedule_moves_the_deadline_and_the_review_waits_for_it(
    harness: Harness, harness_settings: Settings
):
    cert = certificate("cal-move", purchased_at=datetime.now(UTC) - timedelta(days=10))
    handle = await harness.submit(cert)
    waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    before = waiting.review_deadline
    assert before is not None

    # Nothing installed yet: the refund counts the same deadline and records nothing.
    await handle.signal(RefundWorkflow.calendar_changed)

    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    assert harness_settings.calendar_file is not None
    write_schedule(harness_settings.calendar_file, parse_schedule(_weekdays_off(3, today), "x"))
    await handle.signal(RefundWorkflow.calendar_changed)
    moved = await harness.wait_for(handle, lambda s: s.review_deadline != before)
    after = moved.review_deadline
    assert (
        after is not None and after.astimezone(SHANGHAI).date() > before.astimezone(SHANGHAI).date()
    )
    entry = next(e for e in moved.audit if e.action == "review deadline moved")
    assert entry.actor == "calendar"
    assert entry.detail.startswith(
        f"to {after.astimezone(SHANGHAI):%Y-%m-%d} 00:00 (UTC+0800) by the "
    )
    assert "schedule" in entry.detail
    described = await handle.describe()
    assert described.typed_search_attributes.get(REVIEW_DEADLINE) == after

    # The old deadline passes with the refund still in review; the new one approves it.
    await harness.fast_forward(
        handle, days=(before - datetime.now(UTC)).total_seconds() / 86400 + 0.05
    )
    still = await harness.status(handle)
    assert still.state is RefundState.VALIDATING_APPLICATION
    await harness.fast_forward(handle, days=10)
    final = await harness.result(handle)
    assert final.state is RefundState.REFUNDED
    assert final.decided_by == "review-deadline"
    moves = [e for e in final.audit if e.action == "review deadline moved"]
    assert len(moves) == 1


async def test_a_flood_of_calendar_signals_counts_once_per_burst_and_a_cancel_still_works(
    harness: Harness,
):
    """Ten-thousand-signal floods are bounded by the server; what the refund does with each
    burst is one count and at most one more, its handlers finish (so it continues as new), and
    the Web UI's Request Cancellation still withdraws the request, no money moved."""
    async with harness.worker_with(history_event_limit=100):
        cert = certificate("cal-flood", purchased_at=datetime.now(UTC) - timedelta(days=10))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        first = await harness.flood_until_continued(handle, RefundWorkflow.calendar_changed)
        counts = (await harness.scheduled_activities(first)).count("count_review_deadline")
        assert 1 <= counts <= 2 * 4  # per burst of 20: one count, at most one more
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.cancel()  # the Web UI's Request Cancellation
        final = await harness.result(handle)
    assert final.state is RefundState.CANCELLED
    assert not [e for e in final.audit if e.action == "review deadline moved"]
    assert harness.ledger.entries(handle.id) == []


async def test_a_refund_being_paid_does_not_count_its_deadline(harness: Harness):
    cert = certificate("cal-paid", purchased_at=datetime.now(UTC) - timedelta(days=10))
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    await handle.signal(RefundWorkflow.calendar_changed)
    final = await harness.result(handle)
    assert final.state is RefundState.REFUNDED
    names = await harness.scheduled_activities(handle)
    assert "count_review_deadline" not in names


async def test_a_reset_after_the_deadline_moved_keeps_the_new_deadline_and_pays_once(
    harness: Harness, harness_settings: Settings
):
    """The Web UI's Reset to the first workflow task: the new run assesses the request with the
    schedule now installed (a reapplied ``calendar_changed`` finds nothing more to move), and
    the approval pays once."""
    cert = certificate("cal-reset", purchased_at=datetime.now(UTC) - timedelta(days=10))
    handle = await harness.submit(cert)
    before = (await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)).review_deadline
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    assert harness_settings.calendar_file is not None
    write_schedule(harness_settings.calendar_file, parse_schedule(_weekdays_off(2, today), "x"))
    await handle.signal(RefundWorkflow.calendar_changed)
    moved = (await harness.wait_for(handle, lambda s: s.review_deadline != before)).review_deadline

    rerun = await harness.reset(handle, after_task=4, reason="operator re-runs it")
    again = await harness.wait_for(
        rerun,
        lambda s: s.state is RefundState.VALIDATING_APPLICATION and s.review_deadline is not None,
    )
    assert again.review_deadline == moved
    assert not [e for e in again.audit if e.action == "review deadline moved"]
    assert (await rerun.describe()).typed_search_attributes.get(REVIEW_DEADLINE) == moved
    assert harness.ledger.entries(handle.id) == []

    await rerun.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    final = await harness.result(rerun)
    assert final.state is RefundState.REFUNDED
    assert len(harness.ledger.entries(handle.id)) == 1
