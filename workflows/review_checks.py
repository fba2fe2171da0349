"""Who may act on a refund, and when: the checks behind review signals, updates, operator actions
and Temporal cancellation requests. Pure functions of the refund's state, so a refused signal and
a refused update give the same reason; and the records of what people decided (``Action``,
``Cancellation``, ``Verdict``). Pure, so the sandbox imports it once (``tuning``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from domain.signatures import SignedAction
from domain.values import MAX_TEXT, id_problem
from workflows.contract import ActionInput, RefundRequest, RefundState, ReviewAction


@dataclass(frozen=True)
class ReviewContext:
    """What the checks need to know about one refund at one moment."""

    refund_id: str
    state: RefundState
    decided: str | None
    """``"approve by rev-1"`` once a decision was taken, else ``None``."""
    deadline_passed: bool
    requester: str
    owner: str
    reviewers: tuple[str, ...] | None
    """Who may review; ``None`` while the people directory is still being read."""


DIRECTORY_PENDING = "the people directory is still being read; send the action again"


def unreadable_refusal(message: ActionInput) -> str | None:
    """Why an action the worker could not read is refused (plain text where keys are set)."""
    if message.unreadable is None:
        return None
    return f"{message.unreadable}: send it with the refunds command or the console"


def review_refusal(
    context: ReviewContext, action: ReviewAction, actor: str, text: str
) -> str | None:
    """Why ``actor`` may not take ``action`` now, or ``None`` when they may."""
    if context.decided is not None:
        return f"already decided: {context.decided}"
    if context.deadline_passed:
        return "the review deadline has passed"
    if context.state is not RefundState.VALIDATING_APPLICATION:
        return f"refund {context.refund_id} is not awaiting review (state {context.state.value})"
    problem = id_problem(actor, "requester" if action is ReviewAction.CANCEL else "reviewer")
    if problem is not None:
        return problem
    if len(text) > MAX_TEXT:
        return f"the text is longer than {MAX_TEXT} characters"
    if action is ReviewAction.CANCEL:
        if actor != context.requester:
            return f"only the requester ({context.requester}) can cancel this request"
        return None
    if context.reviewers is None:
        return DIRECTORY_PENDING
    if actor not in context.reviewers:
        return f"{actor} is not on the reviewer list"
    if actor in (context.requester, context.owner):
        return "reviewers may not review their own request"
    if action is ReviewAction.REJECT and not text.strip():
        return "a rejection needs a reason the customer can read"
    return None


def operator_refusal(
    refund_id: str,
    state: RefundState,
    already_acted: bool,
    operators: tuple[str, ...] | None,
    operator: str,
    note: str,
    *,
    note_required: bool,
) -> str | None:
    """Why ``operator`` may not retry or resolve now, or ``None`` (``operators``: None = anyone)."""
    if state is not RefundState.NEEDS_ATTENTION or already_acted:
        return f"refund {refund_id} does not need attention ({state.value})"
    problem = id_problem(operator, "operator")
    if problem is not None:
        return problem
    if operators is not None and operator not in operators:
        return f"{operator} is not on the operator list"
    if note_required and not note.strip():
        return "say what was done: a manual resolution needs a note"
    if len(note) > MAX_TEXT:
        return f"the note is longer than {MAX_TEXT} characters"
    return None


FORGED_INPUT = (
    "this run's input carries another run's state, which only the refund itself passes on"
)
ON_A_SCHEDULE = "a refund cannot run on a schedule"


def request_refusal(request: RefundRequest, owner: str, *, signed: bool) -> str | None:
    """Why the request itself is refused before anything is held (``signed``: from patch v6 a
    request must carry its requester's signature), or ``None``; a repair order is the operator's."""
    if request.repair is not None:
        return None
    if request.requester != owner:
        return f"{request.requester} does not own certificate {request.certificate_id}"
    if signed and request.signature is None:
        return (
            "the request is not signed: `refunds submit` and the console sign it with the "
            "requester's key"
        )
    return None


def cancellation_refusal(context: ReviewContext) -> str | None:
    """Why a cancellation requested through Temporal (Web UI, ``temporal workflow cancel``) cannot
    stop the refund now, or ``None`` when it is treated as a cancel."""
    if context.state in (RefundState.SUBMITTED, RefundState.VALIDATING_APPLICATION):
        if context.decided is not None:
            return f"already decided: {context.decided}; the decision is being carried out"
        if context.deadline_passed:
            return "the review deadline has passed; its action is being carried out"
        return None
    if context.state is RefundState.REFUNDING:
        return "money is being returned and cannot stop half-way; the refund will finish"
    if context.state is RefundState.NEEDS_ATTENTION:
        return "the refund needs attention: only `refunds retry` or `refunds resolve` end it"
    return f"the refund is already {context.state.value}"


@dataclass(frozen=True)
class Action:
    action: ReviewAction
    actor: str
    text: str
    signed: SignedAction | None = None
    """The action exactly as its sender signed it: the evidence the system of record checks."""


@dataclass
class Cancellation:
    """A cancellation request from Temporal, audited once its sender's identity is known."""

    at: datetime
    reason: str
    refusal: str | None
    final: bool
    """Whether the request's fate is known (before the rules decide, the refund's path decides)."""
    audited: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether an approval may be carried out: a reason when not."""

    reason: str = ""
    restore: bool = True
    """Whether to give the certificate back on a refusal (before v3: only if it could be loaded)."""
    revoke: bool | None = None
    """Whether paying means revoking, from the certificate as it is now (``None``: as decided)."""

    @property
    def refused(self) -> bool:
        return bool(self.reason)
