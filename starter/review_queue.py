"""The review queue: what awaits a reviewer, how many business days are left, what is overdue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from starter.review_pages import PendingReview
from workflows.business_days import BusinessCalendar
from workflows.contract import RefundReason


@dataclass(frozen=True)
class QueueEntry:
    review: PendingReview
    business_days_left: int | None
    overdue: bool

    @property
    def requester(self) -> str | None:
        return self.review.card.requester if self.review.card else None

    @property
    def reason(self) -> RefundReason | None:
        return self.review.card.reason if self.review.card else None

    @property
    def amount(self) -> Decimal | None:
        return self.review.card.refund_amount if self.review.card else None

    @property
    def currency(self) -> str:
        return self.review.card.currency if self.review.card else ""

    def as_json(self) -> dict[str, Any]:
        review = self.review
        return {
            "refund_id": review.refund_id,
            "certificate_id": review.certificate_id,
            "submitted_at": review.submitted_at.isoformat(),
            "review_deadline": review.review_deadline.isoformat()
            if review.review_deadline
            else None,
            "requester": self.requester,
            "reason": self.reason.value if self.reason else None,
            "refund_amount": str(self.amount) if self.amount is not None else None,
            "currency": self.currency or None,
            "business_days_left": self.business_days_left,
            "overdue": self.overdue,
        }


def review_queue(
    reviews: list[PendingReview],
    now: datetime,
    zone: ZoneInfo,
    calendar: BusinessCalendar,
) -> list[QueueEntry]:
    """A page of the queue as it came (``starter.review_pages`` orders and filters it), with
    business days left counted from today (inclusive)."""
    today = now.astimezone(zone).date()
    entries = []
    for review in reviews:
        deadline = review.review_deadline
        overdue = deadline is not None and deadline <= now
        left = None
        if deadline is not None:
            last_day = (deadline - timedelta(microseconds=1)).astimezone(zone).date()
            left = (
                0
                if overdue
                else calendar.business_days_between(today - timedelta(days=1), last_day)
            )
        entries.append(QueueEntry(review, left, overdue))
    return entries
