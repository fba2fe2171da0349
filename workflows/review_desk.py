"""What people send a refund: reviewers' decisions, the requester's cancel, operators' retry or
resolve, and cancellation requests from Temporal's own tools. Each is checked, then accepted or
audited as refused; the workflow's paths act on what was accepted."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from domain.errors import ACTION_REFUSED

with workflow.unsafe.imports_passed_through():
    from activities.payloads import CancellationLookup
    from activities.temporal_history import HistoryActivities
    from domain.signatures import ActionSignature, Role, SignedAction
    from domain.values import shown_id
    from workflows.contract import (
        ActionInput,
        ActionResult,
        OperatorInput,
        RefundState,
        ReviewAction,
        signed_fields,
    )

from workflows.audit import bounded
from workflows.payout_rules import cause
from workflows.progress import RefundProgress
from workflows.review_checks import (
    DIRECTORY_PENDING,
    Action,
    Cancellation,
    ReviewContext,
    cancellation_refusal,
    operator_refusal,
    review_refusal,
    unreadable_refusal,
)
from workflows.signed_actions import SignedActions

ModelT = TypeVar("ModelT", bound=BaseModel)

LOOKUP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
TEMPORAL_ACTOR = "temporal"
TEMPORAL_CANCELLATION = "cancellation requested through Temporal"
NO_IDENTITY = "a Temporal client that sent no identity"
"""Who asked, when the request carried no identity (the Web UI without sign-in sends none)."""


def signed_as(actor: str, text: str, signature: ActionSignature | None) -> SignedAction | None:
    """An accepted action as its sender signed it (``None`` before signed actions)."""
    if signature is None:
        return None
    return SignedAction(actor=actor[:64], text=text, signature=signature)


class ReviewDesk:
    def __init__(self, progress: RefundProgress) -> None:
        self.progress = progress
        self.review: Action | None = None
        self.deadline_passed = False
        self.operator_action: Action | None = None
        self.approval_verdict: str | None = None
        """Set once an accepted approval was re-checked: ``""`` when it is carried out."""
        self.cancellation: Cancellation | None = None
        self.path_chosen = False
        self.path_refusal: str | None = None
        self.signed = SignedActions(progress)

    def context(self) -> ReviewContext:
        progress = self.progress
        review = self.review
        assessment = progress.assessment
        return ReviewContext(
            refund_id=progress.refund_id,
            state=progress.state,
            decided=f"{review.action.value} by {review.actor}" if review else None,
            deadline_passed=self.deadline_passed,
            requester=progress.request.requester,
            owner=progress.certificate.owner if progress.certificate else "",
            reviewers=self.signed.allowed(
                Role.REVIEWER, assessment.reviewers if assessment else ()
            ),
        )

    def result(self, action: ReviewAction) -> ActionResult:
        progress = self.progress
        return ActionResult(refund_id=progress.refund_id, action=action, state=progress.state)

    def receive_signal(
        self, action: ReviewAction, payloads: tuple[Any, ...], model: type[ModelT]
    ) -> None:
        """A review signal: accepted, or audited as refused (never an exception)."""
        try:
            if len(payloads) != 1:
                raise ValueError("expected exactly one argument")
            message: Any = model.model_validate(payloads[0])
        except ValueError:
            self.progress.record(
                "unknown", f"{action.value} (signal)", accepted=False, detail="malformed"
            )
            return
        actor, text = signed_fields(message)
        refusal = unreadable_refusal(message) or review_refusal(self.context(), action, actor, text)
        if refusal is None:
            refusal = self.signed.refusal(action, actor, text, message.signature)
        if refusal is not None:
            self.progress.record(shown_id(actor), f"{action.value} (signal)", False, refusal)
            return
        self.signed.spend(message.signature)
        self.accept(action, actor, text, "signal", signed_as(actor, text, message.signature))

    def raise_if_refused(self, action: ReviewAction, message: ActionInput) -> None:
        """An update's validator: refuse synchronously, with the same reason a signal gets."""
        refusal = unreadable_refusal(message) or review_refusal(
            self.context(), action, *signed_fields(message)
        )
        if refusal is not None:
            raise ApplicationError(refusal, type=ACTION_REFUSED, non_retryable=True)

    def verify(self, action: ReviewAction, message: ActionInput) -> None:
        """An update's handler, before it acts: a signature that does not prove its sender is
        refused and audited (a validator's refusal leaves no trace); a good one is spent."""
        actor, text = signed_fields(message)
        refusal = self.signed.refusal(action, actor, text, message.signature)
        if refusal is not None:
            self.progress.record(shown_id(actor), f"{action.value} (update)", False, refusal)
            raise ApplicationError(refusal, type=ACTION_REFUSED, non_retryable=True)
        self.signed.spend(message.signature)

    def raise_if_operator_refused(self, action: OperatorInput, *, note_required: bool) -> None:
        progress = self.progress
        assessment = progress.assessment
        reading = self.signed.reading
        refusal = unreadable_refusal(action) or operator_refusal(
            progress.refund_id,
            progress.state,
            self.operator_action is not None,
            None  # anyone here: until the directory is read, refused below
            if reading or assessment is None
            else self.signed.allowed(Role.OPERATOR, assessment.operators),
            action.operator,
            action.note or "",
            note_required=note_required,
        )
        if refusal is None and reading:
            refusal = DIRECTORY_PENDING
        if refusal is not None:
            raise ApplicationError(refusal, type=ACTION_REFUSED, non_retryable=True)

    def accept(
        self,
        action: ReviewAction,
        actor: str,
        text: str,
        via: str,
        signed: SignedAction | None = None,
    ) -> ActionResult:
        self.review = Action(action, actor, text.strip(), signed)
        self.progress.decision_pending = True
        self.progress.record(actor, f"{action.value} ({via})", detail=text.strip())
        return self.result(action)

    def accept_operator(
        self,
        action: ReviewAction,
        operator: str,
        note: str,
        signed: SignedAction | None = None,
    ) -> ActionResult:
        self.operator_action = Action(action, operator, note, signed)
        what = "retry requested" if action is ReviewAction.RETRY else "resolved by hand"
        self.progress.record(operator, what, detail=note)
        return self.result(action)

    @property
    def cancelled_through_temporal(self) -> bool:
        return self.review is not None and self.review.actor == TEMPORAL_ACTOR

    # Cancellation requests from Temporal (the Web UI's button, `temporal workflow cancel`).

    def cancellation_requested(self) -> None:
        """Treat the request as a cancel if the refund is still undecided; audit it either way.

        Before the refund chose its path, whether the request stands is known only once it has;
        after, the path says (``choose_path``)."""
        refusal = cancellation_refusal(self.context())
        early = refusal is None and self.progress.state is RefundState.SUBMITTED
        if early and self.path_chosen:
            refusal = self.path_refusal
        if refusal is None:
            self.review = Action(ReviewAction.CANCEL, TEMPORAL_ACTOR, TEMPORAL_CANCELLATION)
            self.progress.decision_pending = True
        cancellation = Cancellation(
            at=workflow.now(),
            reason=bounded(workflow.cancellation_reason() or "", 500),
            refusal=refusal,
            final=not early or self.path_chosen,
        )
        cancellation.audited = asyncio.ensure_future(self._audit(cancellation))
        self.cancellation = cancellation

    def choose_path(self, refusal: str | None) -> None:
        """The refund chose its path: from now on a cancellation request stands (``None``, the
        path waits for a review) or is refused for ``refusal``; one that came earlier too."""
        self.path_chosen = True
        self.path_refusal = refusal
        cancellation = self.cancellation
        if cancellation is None or cancellation.final:
            return
        cancellation.final = True
        if refusal is not None:
            cancellation.refusal = refusal
            if self.cancelled_through_temporal:
                self.review = None
                self.progress.decision_pending = False

    @property
    def cancellation_settled(self) -> bool:
        """No cancellation request is waiting for its sender's identity."""
        audited = self.cancellation.audited if self.cancellation else None
        return audited is None or audited.done()

    async def cancellation_audited(self) -> None:
        audited = self.cancellation.audited if self.cancellation else None
        if audited is not None:
            await audited

    async def _audit(self, cancellation: Cancellation) -> None:
        identity = "unknown: the refund's history could not be read"
        info = workflow.info()
        try:
            found = await workflow.execute_activity_method(
                HistoryActivities.find_cancellation_request,
                CancellationLookup(workflow_id=info.workflow_id, run_id=info.run_id),
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=LOOKUP_RETRY,
                summary="who asked to cancel",
            )
            identity = found.identity or NO_IDENTITY
        except ActivityError as err:
            workflow.logger.warning("cancellation sender unknown", extra={"error": cause(err)})
        await workflow.wait_condition(lambda: cancellation.final)
        given = f"reason given: {cancellation.reason}" if cancellation.reason else ""
        detail = "; ".join(part for part in (cancellation.refusal or "", given) if part)
        self.progress.record_at(
            cancellation.at,
            bounded(identity, 128),
            TEMPORAL_CANCELLATION,
            cancellation.refusal is None,
            detail,
        )
