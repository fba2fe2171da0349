"""Who may act on a refund, and when: the pure checks behind signals, updates and cancellations."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

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
        ({}, ReviewAction.REJECT, "rev-2", "x" * 2000, None),
        (
            {"decided": "approve by rev-1"},
            ReviewAction.CANCEL,
            "user-1",
            "",
            "already decided: approve by rev-1",
        ),
        (
            {"deadline_passed": True},
            ReviewAction.APPROVE,
            "rev-1",
            "",
            "the review deadline has passed",
        ),
        (
            {"state": RefundState.REFUNDING},
            ReviewAction.APPROVE,
            "rev-1",
            "",
            "refund refund-cas-1 is not awaiting review (state refunding)",
        ),
        ({}, ReviewAction.APPROVE, " ", "", "no reviewer id was given"),
        ({}, ReviewAction.CANCEL, "", "", "no requester id was given"),
        ({}, ReviewAction.APPROVE, "r" * 65, "", "the reviewer id is longer than 64 characters"),
        (
            {},
            ReviewAction.APPROVE,
            "rev 1",
            "",
            "the reviewer id may hold only letters, digits, '.', '_', ':' and '-'",
        ),
        ({}, ReviewAction.REJECT, "rev-1", "x" * 2001, "the text is longer than 2000 characters"),
        (
            {},
            ReviewAction.CANCEL,
            "rev-1",
            "",
            "only the requester (user-1) can cancel this request",
        ),
        ({}, ReviewAction.APPROVE, "mallory", "", "mallory is not on the reviewer list"),
        (
            {"reviewers": None},
            ReviewAction.REJECT,
            "rev-1",
            "no",
            "the people directory is still being read; send the action again",
        ),
        ({"reviewers": None}, ReviewAction.CANCEL, "user-1", "", None),
        ({}, ReviewAction.APPROVE, "user-1", "", "reviewers may not review their own request"),
        (
            {"owner": "rev-2"},
            ReviewAction.APPROVE,
            "rev-2",
            "",
            "reviewers may not review their own request",
        ),
        (
            {},
            ReviewAction.REJECT,
            "rev-1",
            "  ",
            "a rejection needs a reason the customer can read",
        ),
    ],
)
def test_review_actions(changes, action, actor, text, refusal):
    context = ReviewContext(**{**IN_REVIEW.__dict__, **changes})
    assert review_refusal(context, action, actor, text) == refusal


@pytest.mark.parametrize(
    ("state", "acted", "operator", "note", "required", "refusal"),
    [
        (RefundState.NEEDS_ATTENTION, False, "operator-1", "", False, None),
        (RefundState.NEEDS_ATTENTION, False, "operator-1", "wired it", True, None),
        (RefundState.NEEDS_ATTENTION, False, "operator-1", "x" * 2000, False, None),
        (
            RefundState.REFUNDING,
            False,
            "operator-1",
            "",
            False,
            "refund refund-cas-1 does not need attention (refunding)",
        ),
        (
            RefundState.NEEDS_ATTENTION,
            True,
            "operator-1",
            "",
            False,
            "refund refund-cas-1 does not need attention (needs_attention)",
        ),
        (RefundState.NEEDS_ATTENTION, False, "", "", False, "no operator id was given"),
        (
            RefundState.NEEDS_ATTENTION,
            False,
            "rev-1",
            "",
            False,
            "rev-1 is not on the operator list",
        ),
        (
            RefundState.NEEDS_ATTENTION,
            False,
            "operator-1",
            " ",
            True,
            "say what was done: a manual resolution needs a note",
        ),
        (
            RefundState.NEEDS_ATTENTION,
            False,
            "operator-1",
            "x" * 2001,
            False,
            "the note is longer than 2000 characters",
        ),
    ],
)
def test_operator_actions(state, acted, operator, note, required, refusal):
    found = operator_refusal(
        "refund-cas-1", state, acted, ("operator-1",), operator, note, note_required=required
    )
    assert found == refusal


def test_without_an_operator_list_any_valid_id_may_act():
    found = operator_refusal(
        "refund-cas-1", RefundState.NEEDS_ATTENTION, False, None, "anyone", "", note_required=False
    )
    assert found is None


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({}, None),
        ({"state": RefundState.SUBMITTED}, None),
        (
            {"decided": "reject by rev-1"},
            "already decided: reject by rev-1; the decision is being carried out",
        ),
        (
            {"deadline_passed": True},
            "the review deadline has passed; its action is being carried out",
        ),
        (
            {"state": RefundState.REFUNDING},
            "money is being returned and cannot stop half-way; the refund will finish",
        ),
        (
            {"state": RefundState.NEEDS_ATTENTION},
            "the refund needs attention: only `refunds retry` or `refunds resolve` end it",
        ),
        ({"state": RefundState.REFUNDED}, "the refund is already refunded"),
    ],
)
def test_temporal_cancellation_requests(changes, refusal):
    assert cancellation_refusal(ReviewContext(**{**IN_REVIEW.__dict__, **changes})) == refusal


def test_a_review_context_cannot_be_changed_once_taken():
    with pytest.raises(FrozenInstanceError):
        IN_REVIEW.decided = "approve by rev-1"  # type: ignore[misc]
