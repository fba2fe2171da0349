"""The review queue's arithmetic: business days left, overdue, filters."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from starter.review_pages import PendingReview
from starter.review_queue import review_queue
from tests.factories import SHANGHAI, shanghai
from workflows.business_days import BusinessCalendar
from workflows.contract import RefundReason, ReviewCard

NOW = shanghai(2026, 11, 27, 10)  # a Friday


def pending(refund_id: str, deadline: datetime | None, reason: str = "other") -> PendingReview:
    card = ReviewCard(
        requester="user-1",
        reason=RefundReason(reason),
        refund_amount=Decimal("199.00"),
        currency="CNY",
        submitted_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    certificate_id = refund_id.removeprefix("refund-")
    return PendingReview(refund_id, certificate_id, deadline, card.submitted_at, card)


def queue(reviews):
    return review_queue(reviews, NOW, SHANGHAI, BusinessCalendar("CN"))


def test_business_days_left_count_today_through_the_last_review_day():
    # Deadline at midnight ending Tue 1 Dec: Fri 27, Mon 30, Tue 1 are left.
    [entry] = queue([pending("refund-a", shanghai(2026, 12, 2, 0))])
    assert (entry.business_days_left, entry.overdue) == (3, False)


def test_a_capped_deadline_at_23_00_counts_its_own_day():
    [entry] = queue([pending("refund-a", shanghai(2026, 11, 30, 23))])
    assert entry.business_days_left == 2


def test_overdue_and_the_row_as_json():
    reviews = [
        pending("refund-late", shanghai(2026, 11, 27, 0), reason="install_failed"),
        pending("refund-soon", shanghai(2026, 12, 2, 0)),
    ]
    late, soon = queue(reviews)
    assert (late.overdue, late.business_days_left) == (True, 0)
    assert not soon.overdue
    assert late.as_json()["refund_amount"] == "199.00"
    assert late.as_json()["reason"] == "install_failed"


def test_a_review_without_details_still_shows():
    review = PendingReview("refund-x", "x", shanghai(2026, 12, 2, 0), NOW, None)
    [entry] = queue([review])
    assert entry.requester is None and entry.as_json()["refund_amount"] is None
