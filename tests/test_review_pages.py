"""The review queue from visibility alone: cards in memos, deadline-day windows, cursors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from starter.errors import UserError
from starter.review_pages import HORIZON_DAYS, Cursor, PendingReview, first_cursor, review_page
from tests.factories import SHANGHAI, certificate, shanghai
from tests.harness import Harness
from workflows.contract import REVIEW_CARD_MEMO, RefundReason, RefundState, ReviewCard

NOW = shanghai(2026, 11, 27, 10)


def test_the_walk_starts_at_todays_midnight_and_windows_are_deadline_days():
    cursor = first_cursor(NOW, SHANGHAI)
    assert cursor.origin == shanghai(2026, 11, 27, 0)
    # Before today (overdue for a day or more), then one day each: Shanghai midnight is 16:00 UTC.
    assert "ReviewDeadline <= '2026-11-26T16:00:00Z'" in cursor.query()
    day_one = Cursor(cursor.origin, window=1).query()
    assert "ReviewDeadline > '2026-11-26T16:00:00Z'" in day_one
    assert "ReviewDeadline <= '2026-11-27T16:00:00Z'" in day_one
    beyond = Cursor(cursor.origin, window=HORIZON_DAYS + 1).query()
    assert "ReviewDeadline > '2027-01-27T16:00:00Z'" in beyond
    assert "<=" not in beyond.split("validating_application'")[1]
    for query in (cursor.query(), day_one, beyond):
        assert "RefundState = 'validating_application'" in query
        assert "ExecutionStatus = 'Running'" in query


def test_a_span_of_windows_is_one_query():
    cursor = first_cursor(NOW, SHANGHAI)
    later = cursor.span_query(1, HORIZON_DAYS + 1)
    assert later.endswith("ReviewDeadline > '2026-11-26T16:00:00Z'")
    three_to_five = cursor.span_query(3, 5)
    assert three_to_five.endswith(
        "ReviewDeadline > '2026-11-28T16:00:00Z' AND ReviewDeadline <= '2026-12-01T16:00:00Z'"
    )
    assert cursor.span_query(0, 0) == cursor.query()
    overdue = first_cursor(NOW, SHANGHAI, overdue_only=True)
    assert overdue.span_query(1, 1).endswith("ReviewDeadline <= '2026-11-27T02:00:00Z'")


def test_a_cursor_moves_through_tokens_then_windows_and_ends():
    cursor = first_cursor(NOW, SHANGHAI)
    same = cursor.following(b"token")
    assert same is not None and (same.window, same.token) == (0, b"token")
    following = same.following(None)
    assert following is not None and (following.window, following.token) == (1, None)
    assert Cursor(cursor.origin, window=HORIZON_DAYS + 1).following(None) is None
    assert Cursor.decode(same.encode()) == same


def test_overdue_only_walks_two_windows_up_to_now():
    cursor = first_cursor(NOW, SHANGHAI, overdue_only=True)
    second = cursor.following(None)
    assert second is not None and second.following(None) is None
    assert "ReviewDeadline <= '2026-11-27T02:00:00Z'" in second.query()
    assert Cursor.decode(second.encode()).until == NOW


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-cursor",
        "x" * 5000,
        Cursor(datetime(2026, 11, 27), window=0).encode(),  # no time zone
        Cursor(NOW, window=HORIZON_DAYS + 2).encode(),
        Cursor(NOW, window=-1).encode(),
    ],
)
def test_a_cursor_that_was_not_printed_is_one_line(text):
    with pytest.raises(UserError, match=r"^--after: not a cursor printed by the review queue$"):
        Cursor.decode(text)


async def _all_pages(harness: Harness, limit: int) -> list[PendingReview]:
    reviews: list[PendingReview] = []
    cursor: Cursor | None = first_cursor(datetime.now(UTC), SHANGHAI)
    while cursor is not None:
        page = await review_page(harness.env.client, cursor, limit=limit)
        assert len(page.reviews) <= limit
        reviews += page.reviews
        cursor = Cursor.decode(page.after) if page.after else None
    return reviews


async def test_refunds_in_review_are_listed_from_their_cards_page_by_page(harness: Harness):
    tag = uuid.uuid4().hex[:6]
    reasons = [RefundReason.OTHER, RefundReason.NO_LONGER_NEEDED, RefundReason.OTHER]
    handles = []
    for i, reason in enumerate(reasons):
        cert = certificate(
            f"page-{tag}-{i}", purchased_at=datetime.now(UTC) - timedelta(days=10), owner=f"u-{i}"
        )
        handles.append(
            await harness.submit(cert, requester=f"u-{i}", reason=reason, feedback="changed plans")
        )
    for handle in handles:
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    ours = {h.id for h in handles}
    for _ in range(100):  # visibility catches up on its own
        found = [r for r in await _all_pages(harness, limit=2) if r.refund_id in ours]
        if len(found) == len(ours):
            break
        await asyncio.sleep(0.1)
    assert sorted(r.refund_id for r in found) == sorted(ours)  # each once, across pages of two
    for review in found:
        i = int(review.certificate_id.rsplit("-", 1)[1])
        assert review.card == ReviewCard(
            requester=f"u-{i}",
            reason=reasons[i],
            refund_amount=Decimal("199.00"),
            currency="CNY",
            submitted_at=review.submitted_at,
        )
        assert review.certificate_id.startswith(f"page-{tag}-")
        assert review.review_deadline is not None and review.review_deadline > datetime.now(UTC)
    described = await handles[0].describe()
    memo = await described.memo()
    assert set(memo) == {REVIEW_CARD_MEMO}  # the card only: no contact, no feedback
    assert "changed plans" not in str(memo)

    cursor = first_cursor(datetime.now(UTC), SHANGHAI)
    only_other: list[PendingReview] = []
    next_cursor: Cursor | None = cursor
    while next_cursor is not None:
        page = await review_page(
            harness.env.client, next_cursor, limit=50, reason=RefundReason.NO_LONGER_NEEDED
        )
        only_other += [r for r in page.reviews if r.refund_id in ours]
        next_cursor = Cursor.decode(page.after) if page.after else None
    assert [r.refund_id for r in only_other] == [handles[1].id]
