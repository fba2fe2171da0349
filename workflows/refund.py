"""RefundWorkflow: one refund request from submission to money returned, rejected or cancelled.

The certificate is read from the system of record, never from the caller. The rule decision and the
review deadline are computed once by a local activity and so recorded in history. Review actions
arrive as signals (checked and audited, never dropped) or as updates whose validators refuse
invalid actions synchronously. Each payment leg is returned by its channel's activity under an
idempotency key of refund id and leg, so no retry, crash or replay can pay it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.assessment import AssessmentActivities
    from activities.refund_activities import NON_RETRYABLE, PAYMENT_REJECTED, RefundActivities
    from workflows import metrics
    from workflows.models import (
        FINAL_STATES,
        MAX_TEXT,
        SETTLED_LEG_STATES,
        ActionResult,
        ApproveInput,
        AssessInput,
        Assessment,
        AuditEntry,
        CancelInput,
        Certificate,
        CertificateChange,
        Channel,
        CustomerNotice,
        LegState,
        LegStatus,
        ManualReturn,
        OperatorInput,
        Outcome,
        PaymentReturnRequest,
        RefundRequest,
        RefundState,
        RefundStatus,
        RejectInput,
        ReviewAction,
        SupportTicketRequest,
    )
    from workflows.search_attributes import (
        CERTIFICATE_ID,
        PAYMENT_CHANNELS,
        REFUND_STATE,
        REVIEW_DEADLINE,
    )

ModelT = TypeVar("ModelT", bound=BaseModel)

RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)
PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=NON_RETRYABLE,
)
ASSESS_TIMEOUT = timedelta(seconds=10)

ONE_VISIBILITY_UPDATE = "local-load-final-state-at-close"
"""Patch: the certificate is loaded by a local activity, so the first search attributes are set
in the first workflow task, and the final state is set as the workflow completes. The server then
writes an auto refund's visibility record only where it writes it anyway (the first task and the
close) instead of twice more, each a few milliseconds of its CPU (BENCHMARKS.md)."""

RULES_ACTOR = "rules"
DEADLINE_ACTOR = "review-deadline"

LEG_ACTIVITIES = {
    Channel.ALIPAY: RefundActivities.return_to_alipay,
    Channel.BANK: RefundActivities.return_to_bank,
    Channel.ACCOUNT_BALANCE: RefundActivities.return_to_account_balance,
}


@dataclass(frozen=True)
class _Review:
    action: ReviewAction
    actor: str
    text: str


class _NeedsAttention(Exception):
    """Money could not be returned; a person must act before the workflow goes on."""


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, request: RefundRequest) -> None:
        self._request = request
        self._refund_id = workflow.info().workflow_id
        self._submitted_at = workflow.now()
        self._state = RefundState.SUBMITTED
        self._certificate: Certificate | None = None
        self._assessment: Assessment | None = None
        self._review: _Review | None = None
        self._review_closed = False
        self._certificate_released = False
        self._decided_by: str | None = None
        self._rejection_reason: str | None = None
        self._attention_reason: str | None = None
        self._retry_requested = False
        self._resolution: _Review | None = None
        self._legs: list[LegStatus] = []
        self._audit: list[AuditEntry] = []
        self._review_started: datetime | None = None
        self._one_visibility_update = False
        self._record(request.requester, "submitted", detail=f"reason {request.reason.value}")

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundStatus:
        self._one_visibility_update = workflow.patched(ONE_VISIBILITY_UPDATE)
        await self._decide_and_act(request)
        if self._one_visibility_update:
            workflow.upsert_search_attributes([REFUND_STATE.value_set(self._state.value)])
        return self.status()

    async def _decide_and_act(self, request: RefundRequest) -> None:
        certificate = await self._load_certificate()
        if certificate is None:
            self._rejection_reason = f"unknown certificate {request.certificate_id}"
            self._set_state(RefundState.REJECTED)
            return
        self._certificate = certificate
        if request.requester != certificate.owner:
            self._rejection_reason = (
                f"{request.requester} does not own certificate {certificate.certificate_id}"
            )
            self._set_state(RefundState.REJECTED)
            return
        support_ticket = self._open_support_ticket()
        assessment = await self._assess(certificate)
        self._assessment = assessment
        self._legs = self._initial_legs(certificate, assessment)
        workflow.upsert_search_attributes(
            [
                CERTIFICATE_ID.value_set(certificate.certificate_id),
                PAYMENT_CHANNELS.value_set(sorted({leg.channel.value for leg in self._legs})),
            ]
        )
        decision = assessment.decision
        if decision.outcome is Outcome.DENIED:
            await self._reject(RULES_ACTOR, decision.explanation, restore=False)
        elif decision.outcome is Outcome.AUTO_APPROVE:
            self._decided_by = RULES_ACTOR
            await self._refund(revoke=False)
        else:
            await self._review_request(assessment)
        if support_ticket is not None:
            await support_ticket

    # Review actions: signals (audited when refused) and updates (refused synchronously).

    # Signal handlers take any number of arguments, so that no payload a client can send
    # makes a handler raise: whatever arrives is checked here and audited if refused.

    @workflow.signal(name="approve")
    def approve(self, *payloads: Any) -> None:
        self._receive_signal(ReviewAction.APPROVE, payloads, ApproveInput)

    @workflow.signal(name="reject")
    def reject(self, *payloads: Any) -> None:
        self._receive_signal(ReviewAction.REJECT, payloads, RejectInput)

    @workflow.signal(name="cancel")
    def cancel(self, *payloads: Any) -> None:
        self._receive_signal(ReviewAction.CANCEL, payloads, CancelInput)

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, payloads: Sequence[RawValue]) -> None:
        self._record("unknown", f"signal {name[:64]!r}", accepted=False, detail="unknown signal")

    @workflow.update(name="approve_request")
    def approve_request(self, action: ApproveInput) -> ActionResult:
        return self._accept(ReviewAction.APPROVE, action.reviewer, action.note or "", "update")

    @approve_request.validator
    def _validate_approve(self, action: ApproveInput) -> None:
        self._raise_if_refused(ReviewAction.APPROVE, action)

    @workflow.update(name="reject_request")
    def reject_request(self, action: RejectInput) -> ActionResult:
        return self._accept(ReviewAction.REJECT, action.reviewer, action.reason, "update")

    @reject_request.validator
    def _validate_reject(self, action: RejectInput) -> None:
        self._raise_if_refused(ReviewAction.REJECT, action)

    @workflow.update(name="cancel_request")
    def cancel_request(self, action: CancelInput) -> ActionResult:
        return self._accept(ReviewAction.CANCEL, action.requester, "", "update")

    @cancel_request.validator
    def _validate_cancel(self, action: CancelInput) -> None:
        self._raise_if_refused(ReviewAction.CANCEL, action)

    @workflow.update(name="retry_payments")
    def retry_payments(self, action: OperatorInput) -> ActionResult:
        self._retry_requested = True
        self._record(action.operator, "retry requested", detail=action.note or "")
        return ActionResult(refund_id=self._refund_id, action=ReviewAction.RETRY, state=self._state)

    @retry_payments.validator
    def _validate_retry(self, action: OperatorInput) -> None:
        self._raise_if_operator_refused(action, note_required=False)

    @workflow.update(name="resolve_manually")
    def resolve_manually(self, action: OperatorInput) -> ActionResult:
        self._resolution = _Review(
            ReviewAction.RESOLVE, action.operator, (action.note or "").strip()
        )
        self._record(action.operator, "resolved by hand", detail=self._resolution.text)
        return ActionResult(
            refund_id=self._refund_id, action=ReviewAction.RESOLVE, state=self._state
        )

    @resolve_manually.validator
    def _validate_resolve(self, action: OperatorInput) -> None:
        self._raise_if_operator_refused(action, note_required=True)

    def _raise_if_operator_refused(self, action: OperatorInput, *, note_required: bool) -> None:
        refusal = None
        if self._state is not RefundState.NEEDS_ATTENTION or self._acted_on_attention:
            refusal = f"refund {self._refund_id} does not need attention ({self._state.value})"
        elif not action.operator.strip():
            refusal = "an operator id is required"
        elif self._assessment is not None and action.operator not in self._assessment.operators:
            refusal = f"{action.operator} is not on the operator list"
        elif note_required and not (action.note or "").strip():
            refusal = "say what was done: a manual resolution needs a note"
        elif len(action.note or "") > MAX_TEXT:
            refusal = f"the note is longer than {MAX_TEXT} characters"
        if refusal is not None:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    @workflow.query
    def status(self) -> RefundStatus:
        assessment = self._assessment
        decision = assessment.decision if assessment else None
        return RefundStatus(
            refund_id=self._refund_id,
            certificate_id=self._request.certificate_id,
            requester=self._request.requester,
            reason=self._request.reason,
            feedback=self._request.feedback,
            state=self._state,
            decision_pending=self._state is RefundState.VALIDATING_APPLICATION
            and (self._review is not None or self._review_closed),
            outcome=decision.outcome if decision else None,
            rule=decision.rule if decision else None,
            explanation=decision.explanation if decision else "",
            refund_amount=decision.refund_amount if decision else Decimal("0.00"),
            currency=decision.currency if decision else "CNY",
            submitted_at=self._submitted_at,
            review_deadline=assessment.review_deadline if assessment else None,
            decided_by=self._decided_by,
            rejection_reason=self._rejection_reason,
            attention_reason=self._attention_reason,
            warnings=decision.warnings if decision else [],
            legs=list(self._legs),
            audit=list(self._audit),
        )

    def _receive_signal(
        self, action: ReviewAction, payloads: tuple[Any, ...], model: type[ModelT]
    ) -> None:
        try:
            if len(payloads) != 1:
                raise ValueError("expected exactly one argument")
            message: Any = model.model_validate(payloads[0])
        except ValueError:
            self._record("unknown", f"{action.value} (signal)", accepted=False, detail="malformed")
            return
        actor, text = _actor_and_text(action, message)
        refusal = self._refusal(action, actor, text)
        if refusal is not None:
            self._record(actor or "unknown", f"{action.value} (signal)", False, refusal)
            return
        self._accept(action, actor, text, "signal")

    def _raise_if_refused(self, action: ReviewAction, message: BaseModel) -> None:
        refusal = self._refusal(action, *_actor_and_text(action, message))
        if refusal is not None:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    def _refusal(self, action: ReviewAction, actor: str, text: str) -> str | None:
        """Why ``actor`` may not take ``action`` now, or ``None`` when they may."""
        if self._review is not None:
            return f"already decided: {self._review.action.value} by {self._review.actor}"
        if self._review_closed:
            return "the review deadline has passed"
        if self._state is not RefundState.VALIDATING_APPLICATION:
            return f"refund {self._refund_id} is not awaiting review (state {self._state.value})"
        if not actor.strip():
            who = "requester" if action is ReviewAction.CANCEL else "reviewer"
            return f"no {who} id was given"
        if len(text) > MAX_TEXT:
            return f"the text is longer than {MAX_TEXT} characters"
        if action is ReviewAction.CANCEL:
            if actor != self._request.requester:
                return f"only the requester ({self._request.requester}) can cancel this request"
            return None
        assert self._assessment is not None and self._certificate is not None
        if actor not in self._assessment.reviewers:
            return f"{actor} is not on the reviewer list"
        if actor in (self._request.requester, self._certificate.owner):
            return "reviewers may not review their own request"
        if action is ReviewAction.REJECT and not text.strip():
            return "a rejection needs a reason the customer can read"
        return None

    def _accept(self, action: ReviewAction, actor: str, text: str, via: str) -> ActionResult:
        self._review = _Review(action, actor, text.strip())
        self._record(actor, f"{action.value} ({via})", detail=text.strip())
        return ActionResult(refund_id=self._refund_id, action=action, state=self._state)

    # The paths.

    async def _review_request(self, assessment: Assessment) -> None:
        deadline = assessment.review_deadline
        assert deadline is not None
        await self._run(RefundActivities.mark_refund_pending)
        workflow.upsert_search_attributes([REVIEW_DEADLINE.value_set(deadline)])
        self._set_state(RefundState.VALIDATING_APPLICATION)
        remaining = deadline - workflow.now()
        timed_out = remaining <= timedelta(0)
        if not timed_out:
            try:
                await workflow.wait_condition(lambda: self._review is not None, timeout=remaining)
            except TimeoutError:
                timed_out = True
        if timed_out and self._review is None:
            self._review_closed = True
            await self._deadline_passed(assessment)
            return
        review = self._review
        assert review is not None
        if review.action is ReviewAction.APPROVE:
            self._decided_by = review.actor
            await self._refund(revoke=assessment.decision.revoke_required)
        elif review.action is ReviewAction.REJECT:
            await self._reject(review.actor, review.text, restore=True)
        else:
            await self._release_certificate()
            self._close_unpaid_legs("cancelled by the requester")
            self._set_state(RefundState.CANCELLED)
            await self._notify("")

    async def _deadline_passed(self, assessment: Assessment) -> None:
        """No decision in time: re-check the rules now, then apply the configured action."""
        self._record(DEADLINE_ACTOR, "review deadline passed", detail=assessment.timeout_action)
        certificate = await self._load_certificate()
        if certificate is None:
            await self._reject(DEADLINE_ACTOR, "the certificate no longer exists", restore=False)
            return
        recheck = await self._assess(certificate)
        decision = recheck.decision
        self._record(RULES_ACTOR, "re-checked at the deadline", detail=decision.rule.value)
        if decision.outcome is Outcome.DENIED:
            await self._reject(DEADLINE_ACTOR, decision.explanation, restore=True)
        elif assessment.timeout_action == "approve":
            self._decided_by = DEADLINE_ACTOR
            await self._refund(revoke=decision.revoke_required)
        else:
            await self._reject(
                DEADLINE_ACTOR, "no reviewer decided before the review deadline", restore=True
            )

    async def _reject(self, actor: str, reason: str, *, restore: bool) -> None:
        if restore:
            await self._release_certificate()
        self._decided_by = actor
        self._rejection_reason = reason
        self._close_unpaid_legs("not refunded")
        self._set_state(RefundState.REJECTED)
        await self._notify(reason)

    async def _refund(self, *, revoke: bool) -> None:
        self._set_state(RefundState.REFUNDING)
        while True:
            try:
                await self._pay_out(revoke)
                break
            except _NeedsAttention as problem:
                self._attention_reason = str(problem)
                self._set_state(RefundState.NEEDS_ATTENTION)
                workflow.logger.warning("refund needs attention", extra={"reason": str(problem)})
                await workflow.wait_condition(lambda: self._acted_on_attention)
                self._retry_requested = False
                self._attention_reason = None
                self._set_state(RefundState.REFUNDING)
                if self._resolution is not None:
                    await self._settle_by_hand(self._resolution)
                    self._resolution = None
        await self._run(RefundActivities.mark_refunded)
        self._set_state(RefundState.REFUNDED)
        await self._notify("")

    @property
    def _acted_on_attention(self) -> bool:
        return self._retry_requested or self._resolution is not None

    async def _settle_by_hand(self, resolution: _Review) -> None:
        """An operator returned the failed legs (and did any failed step) outside the system."""
        assert self._certificate is not None
        if not self._certificate_released:
            self._certificate_released = True
            self._record(resolution.actor, "certificate released by hand", detail=resolution.text)
        for leg in [leg for leg in self._legs if leg.status is LegState.FAILED]:
            assert leg.idempotency_key is not None
            receipt = await workflow.execute_activity_method(
                RefundActivities.record_manual_return,
                ManualReturn(
                    refund_id=self._refund_id,
                    certificate_id=self._certificate.certificate_id,
                    leg_index=leg.index,
                    original_channel=leg.channel,
                    amount=leg.amount,
                    currency=self._certificate.order.currency,
                    reference=leg.reference,
                    idempotency_key=leg.idempotency_key,
                    operator=resolution.actor,
                    note=resolution.text,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"record {leg.amount} returned by hand",
            )
            by_hand = receipt.channel == "manual"
            self._update_leg(
                leg.index,
                status=LegState.RETURNED_MANUALLY if by_hand else LegState.RETURNED,
                transaction_id=receipt.transaction_id,
                detail=f"settled by {resolution.actor}: {resolution.text}",
            )

    async def _pay_out(self, revoke: bool) -> None:
        if not self._certificate_released:
            step, what = (
                (RefundActivities.revoke_certificate, "revoke the certificate")
                if revoke
                else (RefundActivities.cancel_order, "cancel the certificate order")
            )
            try:
                await self._run(step)
            except ActivityError as err:
                raise _NeedsAttention(f"{what} failed: {_cause(err)}") from err
            self._certificate_released = True
            self._record("system", "certificate revoked" if revoke else "order cancelled")
        pending = [leg for leg in self._legs if leg.status not in SETTLED_LEG_STATES]
        problems = [p for p in await asyncio.gather(*map(self._return_leg, pending)) if p]
        if problems:
            raise _NeedsAttention("; ".join(problems))

    async def _return_leg(self, leg: LegStatus) -> str | None:
        assert self._certificate is not None and leg.idempotency_key is not None
        request = PaymentReturnRequest(
            refund_id=self._refund_id,
            certificate_id=self._certificate.certificate_id,
            leg_index=leg.index,
            channel=leg.channel,
            amount=leg.amount,
            currency=self._certificate.order.currency,
            reference=leg.reference,
            idempotency_key=leg.idempotency_key,
        )
        channel = leg.channel
        while True:
            try:
                receipt = await workflow.execute_activity_method(
                    LEG_ACTIVITIES[channel],
                    request,
                    start_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=PAYMENT_RETRY,
                    summary=f"return {leg.amount} {request.currency} to {channel.value}",
                )
                break
            except ActivityError as err:
                self._record("system", f"{channel.value} return failed", False, _cause(err))
                if not self._may_fall_back(channel, err):
                    self._update_leg(leg.index, status=LegState.FAILED, detail=_cause(err))
                    return f"{channel.value} leg {leg.index} ({leg.amount}): {_cause(err)}"
                channel = Channel.ACCOUNT_BALANCE
                self._record("system", f"leg {leg.index} falls back to account_balance")
        fell_back = channel is not leg.channel
        self._update_leg(
            leg.index,
            status=LegState.RETURNED,
            transaction_id=receipt.transaction_id,
            returned_via=channel if fell_back else None,
            detail=f"{leg.channel.value} refused; returned to account_balance instead"
            if fell_back
            else "",
        )
        self._record(
            "system", f"returned {leg.amount} to {channel.value}", detail=receipt.transaction_id
        )
        metrics.count_returned(int(leg.amount * 100), channel.value)
        return None

    def _may_fall_back(self, channel: Channel, err: ActivityError) -> bool:
        """A channel that refused for good may be replaced by the account balance, if allowed."""
        assert self._assessment is not None
        refused = getattr(err.cause, "type", None) == PAYMENT_REJECTED
        return (
            refused
            and self._assessment.fallback_to_balance
            and channel is not Channel.ACCOUNT_BALANCE
        )

    # Steps and bookkeeping.

    async def _load_certificate(self) -> Certificate | None:
        certificate_id = self._request.certificate_id
        summary = f"load certificate {certificate_id}"
        try:
            # Two calls, not one through a chosen function: mypy cannot type that choice.
            if self._one_visibility_update:
                return await workflow.execute_local_activity_method(
                    RefundActivities.load_certificate,
                    certificate_id,
                    start_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=RECORD_RETRY,
                    summary=summary,
                )
            return await workflow.execute_activity_method(
                RefundActivities.load_certificate,
                certificate_id,
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=summary,
            )
        except (ActivityError, ApplicationError) as err:
            # A local activity's failure reaches the workflow as the activity's own error.
            self._record("system", "certificate not loaded", accepted=False, detail=_cause(err))
            return None

    async def _assess(self, certificate: Certificate) -> Assessment:
        assessment = await workflow.execute_local_activity_method(
            AssessmentActivities.assess,
            AssessInput(certificate=certificate, at=workflow.now()),
            start_to_close_timeout=ASSESS_TIMEOUT,
        )
        decision = assessment.decision
        metrics.count_decision(decision.rule.value, decision.outcome.value)
        self._record(
            RULES_ACTOR,
            f"rule {decision.rule.value}",
            detail=f"{decision.outcome.value}: {decision.explanation}",
        )
        workflow.logger.info(
            "refund assessed",
            extra={"rule": decision.rule.value, "outcome": decision.outcome.value},
        )
        return assessment

    def _open_support_ticket(self) -> asyncio.Task[str] | None:
        contact = self._request.support_contact
        if contact is None:
            return None
        self._record(self._request.requester, "asked for technical support", detail=contact.kind)
        return asyncio.ensure_future(
            workflow.execute_activity_method(
                RefundActivities.open_support_ticket,
                SupportTicketRequest(
                    refund_id=self._refund_id,
                    certificate_id=self._request.certificate_id,
                    reason=self._request.reason,
                    contact=contact,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
        )

    async def _release_certificate(self) -> None:
        await self._run(RefundActivities.restore_certificate)

    async def _notify(self, message: str) -> None:
        assert self._certificate is not None
        await workflow.execute_activity_method(
            RefundActivities.notify_customer,
            CustomerNotice(
                refund_id=self._refund_id,
                certificate_id=self._certificate.certificate_id,
                owner=self._certificate.owner,
                state=self._state,
                rule=self._assessment.decision.rule if self._assessment else None,
                currency=self._certificate.order.currency,
                legs=self._legs,
                message=message,
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )

    async def _run(self, activity: Any) -> Any:
        """A system-of-record step on this refund's certificate (its name says what it does)."""
        return await workflow.execute_activity_method(
            activity,
            CertificateChange(
                certificate_id=self._request.certificate_id, refund_id=self._refund_id
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )

    def _initial_legs(self, certificate: Certificate, assessment: Assessment) -> list[LegStatus]:
        granted = assessment.decision.outcome is not Outcome.DENIED
        legs = []
        for index, leg in enumerate(certificate.order.payments):
            refundable = granted and leg.refundable
            legs.append(
                LegStatus(
                    index=index,
                    channel=leg.channel,
                    amount=leg.amount,
                    reference=leg.reference,
                    status=LegState.PENDING if refundable else LegState.NOT_REFUNDABLE,
                    idempotency_key=f"{self._refund_id}:leg-{index}" if refundable else None,
                    detail="" if refundable else _not_refundable_detail(leg.refundable),
                )
            )
        return legs

    def _close_unpaid_legs(self, detail: str) -> None:
        for leg in self._legs:
            if leg.status is LegState.PENDING:
                self._update_leg(leg.index, status=LegState.NOT_REFUNDABLE, detail=detail)

    def _update_leg(self, index: int, **changes: Any) -> None:
        self._legs[index] = self._legs[index].model_copy(update=changes)
        workflow.set_current_details(self._details())

    def _set_state(self, state: RefundState) -> None:
        if state is RefundState.VALIDATING_APPLICATION:
            self._review_started = workflow.now()
        elif self._review_started is not None:
            waited = (workflow.now() - self._review_started).total_seconds()
            metrics.record_review_time(int(waited))
            self._review_started = None
        settled = state in FINAL_STATES or state is RefundState.NEEDS_ATTENTION
        if settled:
            metrics.count_finished(state.value)
        self._state = state
        if not (state in FINAL_STATES and self._one_visibility_update):
            workflow.upsert_search_attributes([REFUND_STATE.value_set(state.value)])
        workflow.set_current_details(self._details())
        if settled:
            self._record("system", state.value, detail=self._rejection_reason or "")

    def _record(self, actor: str, action: str, accepted: bool = True, detail: str = "") -> None:
        self._audit.append(
            AuditEntry(
                at=workflow.now(), actor=actor, action=action, accepted=accepted, detail=detail
            )
        )

    def _details(self) -> str:
        """Markdown for the Web UI's current details."""
        lines = [f"**{self._state.value}**"]
        if self._assessment is not None:
            decision = self._assessment.decision
            lines.append(
                f"rule `{decision.rule.value}`: {decision.refund_amount} {decision.currency}"
            )
            deadline = self._assessment.review_deadline
            if deadline is not None and self._state is RefundState.VALIDATING_APPLICATION:
                lines.append(f"review deadline {deadline:%Y-%m-%d %H:%M} (UTC{deadline:%z})")
        for leg in self._legs:
            lines.append(f"- {leg.channel.value} {leg.amount}: {leg.status.value}")
        if self._attention_reason:
            lines.append(f"needs attention: {self._attention_reason}")
        return "\n".join(lines)


def _actor_and_text(action: ReviewAction, message: Any) -> tuple[str, str]:
    if action is ReviewAction.CANCEL:
        return str(message.requester), ""
    if action is ReviewAction.REJECT:
        return str(message.reviewer), str(message.reason)
    return str(message.reviewer), str(message.note or "")


def _cause(err: Exception) -> str:
    """The message of what made an activity fail (a local activity's failure is its own)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return getattr(cause, "message", None) or str(cause or err)


def _not_refundable_detail(refundable: bool) -> str:
    return "denied by the rules" if refundable else "vouchers are not returned"
