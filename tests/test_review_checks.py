"""Who may act on a refund, and when: the pure checks behind signals, updates and cancellations."""

from __future__ import annotations

import pytest

from workflows.contract import RefundState, ReviewAction
from workflows.review_checks import (
    ReviewContext,
    cancellation_refusal,
    operator_refusal,
    review_refusal,
)

IN_REVIEW = ReviewContext(
    refund_id="refund-cas-1",
    state=RefundState.VALIDATING_APPLICATION,
    decided=None,
    deadline_passed=False,
    requester="user-1",
    owner="user-1",
    reviewers=("rev-1", "rev-2", "user-1"),
)


@pytest.mark.parametrize(
    ("changes", "action", "actor", "text", "refusal"),
    [
        ({}, ReviewAction.APPROVE, "rev-1", "", None),
        ({}, ReviewAction.REJECT, "rev-2", "in use", None),
        ({}, ReviewAction.CANCEL, "user-1", "", None),
        ({"decided": "approve by rev-1"}, ReviewAction.CANCEL, "user-1", "", "already decided"),
        ({"deadline_passed": True}, ReviewAction.APPROVE, "rev-1", "", "deadline has passed"),
        ({"state": RefundState.REFUNDING}, ReviewAction.APPROVE, "rev-1", "", "not awaiting"),
        ({}, ReviewAction.APPROVE, " ", "", "no reviewer id was given"),
        ({}, ReviewAction.APPROVE, "r" * 65, "", "longer than 64 characters"),
        ({}, ReviewAction.APPROVE, "rev 1", "", "may hold only letters"),
        ({}, ReviewAction.REJECT, "rev-1", "x" * 2001, "longer than 2000 characters"),
        ({}, ReviewAction.CANCEL, "rev-1", "", "only the requester (user-1)"),
        ({}, ReviewAction.APPROVE, "mallory", "", "mallory is not on the reviewer list"),
        ({}, ReviewAction.APPROVE, "user-1", "", "may not review their own request"),
        ({}, ReviewAction.REJECT, "rev-1", "  ", "needs a reason the customer can read"),
    ],
)
def test_review_actions(changes, action, actor, text, refusal):
    context = ReviewContext(**{**IN_REVIEW.__dict__, **changes})
    found = review_refusal(context, action, actor, text)
    if refusal is None:
        assert found is None
    else:
        assert found is not None and refusal in found


@pytest.mark.parametrize(
    ("state", "acted", "operator", "note", "required", "refusal"),
    [
        (RefundState.NEEDS_ATTENTION, False, "operator-1", "", False, None),
        (RefundState.NEEDS_ATTENTION, False, "operator-1", "wired it", True, None),
        (RefundState.REFUNDING, False, "operator-1", "", False, "does not need attention"),
        (RefundState.NEEDS_ATTENTION, True, "operator-1", "", False, "does not need attention"),
        (RefundState.NEEDS_ATTENTION, False, "rev-1", "", False, "not on the operator list"),
        (RefundState.NEEDS_ATTENTION, False, "operator-1", " ", True, "needs a note"),
        (RefundState.NEEDS_ATTENTION, False, "operator-1", "x" * 2001, False, "longer than"),
    ],
)
def test_operator_actions(state, acted, operator, note, required, refusal):
    found = operator_refusal(
        "refund-cas-1", state, acted, ("operator-1",), operator, note, note_required=required
    )
    if refusal is None:
        assert found is None
    else:
        assert found is not None and refusal in found


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({}, None),
        ({"state": RefundState.SUBMITTED}, None),
        ({"decided": "reject by rev-1"}, "already decided: reject by rev-1"),
        ({"deadline_passed": True}, "the review deadline has passed"),
        ({"state": RefundState.REFUNDING}, "cannot stop half-way"),
        ({"state": RefundState.NEEDS_ATTENTION}, "only `refunds retry` or `refunds resolve`"),
        ({"state": RefundState.REFUNDED}, "the refund is already refunded"),
    ],
)
def test_temporal_cancellation_requests(changes, refusal):
    found = cancellation_refusal(ReviewContext(**{**IN_REVIEW.__dict__, **changes}))
    if refusal is None:
        assert found is None
    else:
        assert found is not None and refusal in found
