"""The review queue as pages of one visibility listing, soonest deadline first.

Each refund in review keeps what the queue shows in its memo (``ReviewCard``), so a page is read
from visibility alone, without asking any refund. Temporal's SQL visibility stores cannot sort by a
search attribute, so the queue is walked in windows of deadline days: first every request due
before today, then one day at a time (empty days skipped by counting), then anything due past the
horizon. Within a window the store's own order holds (newest request first): requests due the
same day share one deadline.
A page ends with a cursor, which ``--after`` (or the console's next-page link) resumes from.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.api.common.v1 import Payload
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from starter.errors import UserError
from workflows.contract import (
    REVIEW_CARD_MEMO,
    RefundReason,
    RefundState,
    RefundStatus,
    ReviewCard,
)
from workflows.refund import RefundWorkflow
from workflows.search_attributes import CERTIFICATE_ID, REFUND_STATE, REVIEW_DEADLINE

IN_REVIEW = (
    "WorkflowType = 'RefundWorkflow' AND ExecutionStatus = 'Running' "
    f"AND {REFUND_STATE.name} = '{RefundState.VALIDATING_APPLICATION.value}'"
)
HORIZON_DAYS = 62
"""Deadline days walked one at a time; a deadline further out is listed in one last window."""
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_CURSOR = 4096
CARD_TIMEOUT = timedelta(seconds=3)
"""A refund without a card (started before cards) is asked for its status, this long at most."""
CARD_QUERIES = 16
"""Status queries in flight at once for such refunds."""


@dataclass
class PendingReview:
    refund_id: str
    certificate_id: str
    review_deadline: datetime | None
    submitted_at: datetime
    card: ReviewCard | None = None
    """Requester, reason and amount; ``None`` if an older refund did not answer in time."""


@dataclass(frozen=True)
class ReviewPage:
    reviews: list[PendingReview]
    after: str | None
    """The cursor of the next page; ``None`` on the last page."""


@dataclass(frozen=True)
class Cursor:
    """Where a walk is: the day it began (so its windows stay put), a window, a page token."""

    origin: datetime
    window: int = 0
    token: bytes | None = None
    until: datetime | None = None
    """Only requests due by then (``--overdue``)."""

    def encode(self) -> str:
        fields: dict[str, Any] = {"o": self.origin.isoformat(), "w": self.window}
        if self.token:
            fields["t"] = base64.b64encode(self.token).decode()
        if self.until:
            fields["u"] = self.until.isoformat()
        return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            if len(text) > MAX_CURSOR:
                raise ValueError
            fields = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = cls(
                origin=datetime.fromisoformat(fields["o"]),
                window=int(fields["w"]),
                token=base64.b64decode(fields["t"], validate=True) if "t" in fields else None,
                until=datetime.fromisoformat(fields["u"]) if "u" in fields else None,
            )
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise UserError("--after: not a cursor printed by the review queue") from None
        if cursor.origin.tzinfo is None or not 0 <= cursor.window <= cursor.last_window:
            raise UserError("--after: not a cursor printed by the review queue")
        return cursor

    @property
    def last_window(self) -> int:
        return 1 if self.until is not None else HORIZON_DAYS + 1

    def query(self) -> str:
        return self.span_query(self.window, self.window)

    def span_query(self, first: int, last: int) -> str:
        """The requests due in windows ``first`` to ``last`` (both included)."""
        day = timedelta(days=1)
        bounds = []
        if first > 0:
            bounds.append(f"{REVIEW_DEADLINE.name} > '{_utc(self.origin + (first - 1) * day)}'")
        if last <= HORIZON_DAYS:
            bounds.append(f"{REVIEW_DEADLINE.name} <= '{_utc(self.origin + last * day)}'")
        if self.until is not None:
            bounds.append(f"{REVIEW_DEADLINE.name} <= '{_utc(self.until)}'")
        return " AND ".join([IN_REVIEW, *bounds])

    def following(self, token: bytes | None) -> Cursor | None:
        """The same window further on, or the next window (``None`` after the last)."""
        if token:
            return Cursor(self.origin, self.window, token, self.until)
        if self.window == self.last_window:
            return None
        return Cursor(self.origin, self.window + 1, None, self.until)


async def next_window(client: Client, at: Cursor) -> Cursor | None:
    """The first window after ``at`` that holds a request: counts halve the days left, so a
    queue whose requests all fall due on one day is reached in a handful of counts."""
    low, high = at.window + 1, at.last_window
    if low > high or not await _any(client, at.span_query(low, high)):
        return None
    while low < high:
        middle = (low + high) // 2
        if await _any(client, at.span_query(low, middle)):
            high = middle
        else:
            low = middle + 1
    return Cursor(at.origin, low, None, at.until)


def first_cursor(now: datetime, zone: ZoneInfo, *, overdue_only: bool = False) -> Cursor:
    midnight = datetime.combine(now.astimezone(zone).date(), time(), zone)
    return Cursor(midnight, until=now if overdue_only else None)


async def review_page(
    client: Client,
    cursor: Cursor,
    *,
    limit: int = PAGE_SIZE,
    reason: RefundReason | None = None,
) -> ReviewPage:
    """Up to ``limit`` requests in review from ``cursor`` on, and the cursor after them."""
    found: list[PendingReview] = []
    queries = asyncio.Semaphore(CARD_QUERIES)
    at: Cursor | None = cursor
    while at is not None and len(found) < limit:
        # The raw listing: the SDK's own decodes every search attribute of every row, which was
        # nine tenths of reading a page of a thousand; a queue row needs two and the card.
        listing = await client.workflow_service.list_workflow_executions(
            ListWorkflowExecutionsRequest(
                namespace=client.namespace,
                page_size=limit - len(found),
                next_page_token=at.token or b"",
                query=at.query(),
            )
        )
        rows = listing.executions
        reviews = [_review(row) for row in rows]
        with_cards = [
            (review, row.memo.fields[REVIEW_CARD_MEMO])
            for review, row in zip(reviews, rows, strict=True)
            if REVIEW_CARD_MEMO in row.memo.fields
        ]
        cards = await client.data_converter.decode(
            [payload for _, payload in with_cards], [ReviewCard] * len(with_cards)
        )
        for (review, _), card in zip(with_cards, cards, strict=True):
            review.card, review.submitted_at = card, card.submitted_at
        await asyncio.gather(*(_ask(client, r, queries) for r in reviews if r.card is None))
        found += [r for r in reviews if reason is None or (r.card and r.card.reason is reason)]
        token = listing.next_page_token
        at = at.following(token) if token else await next_window(client, at)
    return ReviewPage(found, at.encode() if at is not None else None)


async def _any(client: Client, query: str) -> bool:
    return bool((await client.count_workflows(query)).count)


async def in_review(client: Client) -> int:
    return (await client.count_workflows(IN_REVIEW)).count


def _review(row: WorkflowExecutionInfo) -> PendingReview:
    attributes = row.search_attributes.indexed_fields
    deadline = _attribute(attributes, REVIEW_DEADLINE.name)
    return PendingReview(
        refund_id=row.execution.workflow_id,
        certificate_id=str(_attribute(attributes, CERTIFICATE_ID.name) or ""),
        review_deadline=datetime.fromisoformat(deadline) if deadline else None,
        submitted_at=row.start_time.ToDatetime(tzinfo=UTC),
    )


async def _ask(client: Client, review: PendingReview, queries: asyncio.Semaphore) -> None:
    """The card of a refund started before cards, from its status query (``None`` if it does
    not answer in time)."""
    handle: WorkflowHandle[RefundWorkflow, RefundStatus] = client.get_workflow_handle_for(
        RefundWorkflow.run, review.refund_id
    )
    try:
        async with queries:
            status = await handle.query(RefundWorkflow.status, rpc_timeout=CARD_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return
    review.card = ReviewCard(
        requester=status.requester,
        reason=status.reason,
        refund_amount=status.refund_amount,
        currency=status.currency,
        submitted_at=status.submitted_at,
    )
    review.submitted_at = status.submitted_at


def _attribute(attributes: Mapping[str, Payload], name: str) -> Any:
    """A search attribute's plain JSON value (a keyword, or a datetime as ISO 8601)."""
    payload = attributes.get(name)
    return json.loads(payload.data) if payload is not None and payload.data else None


def _utc(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
