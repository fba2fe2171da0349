"""RefundWorkflow: one refund request from submission to money returned, rejected or cancelled.

The certificate is read from the system of record, never from the caller. The rule decision and the
review deadline are computed once by a local activity and so recorded in history. Review actions
arrive as signals (checked and audited, never dropped) or as updates whose validators refuse
invalid actions synchronously. The payment steps live in ``workflows.payout``.

Temporal's own tools are part of the interface. A cancellation request (Web UI, ``temporal workflow
cancel``) never interrupts the refund's steps: in review it is a cancel, later it is refused and
audited, and the workflow always completes with a final state. A run that finds its certificate
already released by its own refund id (a reset, or ``refunds repair``) pays only what is still due.
A refund waiting for a person continues as new when its history grows long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.assessment import AssessmentActivities
    from activities.refund_activities import CERTIFICATE_NOT_FOUND, RefundActivities
    from activities.temporal_history import HistoryActivities
    from workflows import metrics
    from workflows.audit import bounded
    from workflows.models import (
        FINAL_STATES,
        ActionResult,
        ApproveInput,
        AssessInput,
        Assessment,
        CancelInput,
        CancellationLookup,
        Certificate,
        CertificateChange,
        CertificateStatus,
        CustomerNotice,
        LegState,
        LegStatus,
        OperatorInput,
        Outcome,
        RefundRequest,
        RefundState,
        RefundStatus,
        RejectInput,
        ReviewAction,
        SupportTicketRequest,
        shown_id,
    )
    from workflows.payout import RECORD_RETRY, RECORD_TIMEOUT, NeedsAttentionError, Payout, cause
    from workflows.progress import RefundProgress
    from workflows.review_checks import (
        ReviewContext,
        cancellation_refusal,
        operator_refusal,
        review_refusal,
    )
    from workflows.search_attributes import (
        CERTIFICATE_ID,
        PAYMENT_CHANNELS,
        REFUND_STATE,
        REVIEW_DEADLINE,
    )

ModelT = TypeVar("ModelT", bound=BaseModel)

_ALREADY_RELEASED = (
    "this refund had already revoked the certificate or cancelled its order (a re-run after a "
    "reset), so it completes and pays only what is still due"
)

ASSESS_TIMEOUT = timedelta(seconds=10)
LOOKUP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)

ONE_VISIBILITY_UPDATE = "local-load-final-state-at-close"
"""Patch (v2): the certificate is loaded by a local activity and the final state is set as the
workflow completes, so the server writes an auto refund's visibility record only where it writes
it anyway (the first task and the close)."""
OPERATOR_PROOF = "operator-proof"
"""Patch (v3): approvals re-check that the certificate is still refundable, the deadline re-checks
only that (not ``near-expiry``), re-runs resume their own refund, payments that keep failing ask
for a person, and a long history continues as new. Runs started before keep their old paths."""

RULES_ACTOR = "rules"
DEADLINE_ACTOR = "review-deadline"
SYSTEM = "system"
TEMPORAL_ACTOR = "temporal"
TEMPORAL_CANCELLATION = "cancellation requested through Temporal"
NO_IDENTITY = "a Temporal client that sent no identity"
"""Who asked, when the request carried no identity (the Web UI without sign-in sends none)."""


@dataclass(frozen=True)
class _Review:
    action: ReviewAction
    actor: str
    text: str


@dataclass(frozen=True)
class _Verdict:
    """Whether an approval may be carried out: a reason when not."""

    reason: str = ""
    restore: bool = True
    """Whether the certificate can be given back (it could be loaded)."""

    @property
    def refused(self) -> bool:
        return bool(self.reason)


@dataclass
class _Cancellation:
    """A cancellation request from Temporal, audited once its sender's identity is known."""

    at: datetime
    reason: str
    refusal: str | None
    audited: asyncio.Task[None] | None = None


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, request: RefundRequest) -> None:
        refund_id = workflow.info().workflow_id
        if request.carried is not None:
            self._progress = RefundProgress.carried_over(refund_id, request)
        else:
            self._progress = RefundProgress(refund_id, request, submitted_at=workflow.now())
            self._progress.record(
                request.requester, "submitted", detail=f"reason {request.reason.value}"
            )
        self._payout = Payout(self._progress)
        self._review: _Review | None = None
        self._deadline_passed = False
        self._operator_action: _Review | None = None
        self._cancellation: _Cancellation | None = None
        self._approval_verdict: str | None = None
        self._support_ticket: asyncio.Future[str] | None = None
        self._one_visibility_update = False
        self._operator_proof = False

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundStatus:
        self._one_visibility_update = workflow.patched(ONE_VISIBILITY_UPDATE)
        self._operator_proof = workflow.patched(OPERATOR_PROOF)
        body = asyncio.ensure_future(self._body(request))
        while True:
            try:
                # Shielded: a cancellation request reaches only this loop, never a refund step.
                await asyncio.shield(body)
                break
            except asyncio.CancelledError:
                if body.done():
                    raise
                self._cancellation_requested()
        if self._one_visibility_update:
            workflow.upsert_search_attributes([REFUND_STATE.value_set(self._progress.state.value)])
        return self.status()

    async def _body(self, request: RefundRequest) -> None:
        if request.carried is None:
            await self._decide_and_act(request)
        else:
            await self._go_on_from(request.carried.state)
        if self._support_ticket is not None:
            await self._support_ticket
        if self._cancellation is not None and self._cancellation.audited is not None:
            await self._cancellation.audited

    async def _decide_and_act(self, request: RefundRequest) -> None:
        progress = self._progress
        certificate = await self._load_certificate()
        if certificate is None:
            self._set_state(RefundState.REJECTED)
            return
        progress.certificate = certificate
        if request.repair is None and request.requester != certificate.owner:
            progress.reject_because(
                f"{request.requester} does not own certificate {certificate.certificate_id}"
            )
            self._set_state(RefundState.REJECTED)
            return
        self._support_ticket = self._open_support_ticket()
        resume = self._operator_proof and self._released_by_this_refund(certificate)
        resume = resume and (request.repair is not None or self._is_rerun())
        assessment = await self._assess(certificate, resume=resume or request.repair is not None)
        if assessment is None:
            await self._reject(RULES_ACTOR, progress.rejection_reason or "", restore=False)
            return
        progress.assessment = assessment
        progress.legs = self._initial_legs(certificate, assessment)
        workflow.upsert_search_attributes(
            [
                CERTIFICATE_ID.value_set(certificate.certificate_id),
                PAYMENT_CHANNELS.value_set(sorted({leg.channel.value for leg in progress.legs})),
            ]
        )
        decision = assessment.decision
        held = self._operator_proof and certificate.held_by == progress.refund_id
        if request.repair is not None:
            await self._repair(request, resume)
        elif resume or decision is None:
            await self._resume(SYSTEM, "re-run after reset: " + _ALREADY_RELEASED)
        elif decision.outcome is Outcome.DENIED:
            await self._reject(RULES_ACTOR, decision.explanation, restore=held)
        elif self._review is not None:  # cancelled through Temporal before the rules decided
            await self._cancel(hold=held)
        elif decision.outcome is Outcome.AUTO_APPROVE:
            progress.decided_by = RULES_ACTOR
            await self._refund(revoke=False)
        else:
            await self._review_request(assessment)

    async def _go_on_from(self, state: RefundState) -> None:
        """A continued run: wait where the previous run waited."""
        workflow.set_current_details(self._progress.details())
        if state is RefundState.VALIDATING_APPLICATION:
            await self._await_review()
        else:
            await self._refund(revoke=self._revoke_required(), waiting=True)

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
        self._progress.record(
            "unknown", f"signal {name[:64]!r}", accepted=False, detail="unknown signal"
        )

    @workflow.update  # named by the method: the SDK types an async handler only this way
    async def approve_request(self, action: ApproveInput) -> ActionResult:
        accepted = self._accept(ReviewAction.APPROVE, action.reviewer, action.note or "", "update")
        if not self._operator_proof:
            return accepted
        await workflow.wait_condition(lambda: self._approval_verdict is not None)
        refused = bool(self._approval_verdict)
        return accepted.model_copy(
            update={
                "state": RefundState.REJECTED if refused else RefundState.REFUNDING,
                "detail": self._approval_verdict or "",
            }
        )

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
        self._operator_action = _Review(ReviewAction.RETRY, action.operator, action.note or "")
        self._progress.record(action.operator, "retry requested", detail=action.note or "")
        return self._result(ReviewAction.RETRY)

    @retry_payments.validator
    def _validate_retry(self, action: OperatorInput) -> None:
        self._raise_if_operator_refused(action, note_required=False)

    @workflow.update(name="resolve_manually")
    def resolve_manually(self, action: OperatorInput) -> ActionResult:
        note = (action.note or "").strip()
        self._operator_action = _Review(ReviewAction.RESOLVE, action.operator, note)
        self._progress.record(action.operator, "resolved by hand", detail=note)
        return self._result(ReviewAction.RESOLVE)

    @resolve_manually.validator
    def _validate_resolve(self, action: OperatorInput) -> None:
        self._raise_if_operator_refused(action, note_required=True)

    @workflow.query
    def status(self) -> RefundStatus:
        return self._progress.status()

    def _result(self, action: ReviewAction) -> ActionResult:
        return ActionResult(refund_id=self._progress.refund_id, action=action, state=self._state)

    def _raise_if_operator_refused(self, action: OperatorInput, *, note_required: bool) -> None:
        assessment = self._progress.assessment
        refusal = operator_refusal(
            self._progress.refund_id,
            self._state,
            self._operator_action is not None,
            tuple(assessment.operators) if assessment else None,
            action.operator,
            action.note or "",
            note_required=note_required,
        )
        if refusal is not None:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    def _receive_signal(
        self, action: ReviewAction, payloads: tuple[Any, ...], model: type[ModelT]
    ) -> None:
        try:
            if len(payloads) != 1:
                raise ValueError("expected exactly one argument")
            message: Any = model.model_validate(payloads[0])
        except ValueError:
            self._progress.record(
                "unknown", f"{action.value} (signal)", accepted=False, detail="malformed"
            )
            return
        actor, text = _actor_and_text(action, message)
        refusal = review_refusal(self._review_context(), action, actor, text)
        if refusal is not None:
            self._progress.record(shown_id(actor), f"{action.value} (signal)", False, refusal)
            return
        self._accept(action, actor, text, "signal")

    def _raise_if_refused(self, action: ReviewAction, message: BaseModel) -> None:
        refusal = review_refusal(self._review_context(), action, *_actor_and_text(action, message))
        if refusal is not None:
            raise ApplicationError(refusal, type="ActionRefused", non_retryable=True)

    def _review_context(self) -> ReviewContext:
        progress = self._progress
        review = self._review
        assessment = progress.assessment
        return ReviewContext(
            refund_id=progress.refund_id,
            state=progress.state,
            decided=f"{review.action.value} by {review.actor}" if review else None,
            deadline_passed=self._deadline_passed,
            requester=progress.request.requester,
            owner=progress.certificate.owner if progress.certificate else "",
            reviewers=tuple(assessment.reviewers) if assessment else (),
        )

    def _accept(self, action: ReviewAction, actor: str, text: str, via: str) -> ActionResult:
        self._review = _Review(action, actor, text.strip())
        self._progress.decision_pending = True
        self._progress.record(actor, f"{action.value} ({via})", detail=text.strip())
        return self._result(action)

    # Cancellation requests from Temporal (the Web UI's button, `temporal workflow cancel`).

    def _cancellation_requested(self) -> None:
        refusal = cancellation_refusal(self._review_context())
        if refusal is None:
            self._review = _Review(ReviewAction.CANCEL, TEMPORAL_ACTOR, TEMPORAL_CANCELLATION)
            self._progress.decision_pending = True
        cancellation = _Cancellation(
            at=workflow.now(),
            reason=bounded(workflow.cancellation_reason() or "", 500),
            refusal=refusal,
        )
        cancellation.audited = asyncio.ensure_future(self._audit_cancellation(cancellation))
        self._cancellation = cancellation

    async def _audit_cancellation(self, cancellation: _Cancellation) -> None:
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
        given = f"reason given: {cancellation.reason}" if cancellation.reason else ""
        detail = "; ".join(part for part in (cancellation.refusal or "", given) if part)
        self._progress.record_at(
            cancellation.at,
            bounded(identity, 128),
            TEMPORAL_CANCELLATION,
            cancellation.refusal is None,
            detail,
        )

    # The paths.

    async def _review_request(self, assessment: Assessment) -> None:
        deadline = assessment.review_deadline
        assert deadline is not None
        await self._run(RefundActivities.mark_refund_pending)
        workflow.upsert_search_attributes([REVIEW_DEADLINE.value_set(deadline)])
        self._set_state(RefundState.VALIDATING_APPLICATION)
        await self._await_review()

    async def _await_review(self) -> None:
        assessment = self._progress.assessment
        assert assessment is not None and assessment.review_deadline is not None
        while self._review is None:
            remaining = assessment.review_deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            try:
                await workflow.wait_condition(
                    lambda: self._review is not None or self._may_continue_as_new(),
                    timeout=remaining,
                )
            except TimeoutError:
                break
            if self._review is None and self._may_continue_as_new():
                workflow.continue_as_new(self._progress.carry())
        review = self._review
        if review is None:
            self._deadline_passed = True
            self._progress.decision_pending = True
            await self._at_deadline(assessment)
        elif review.action is ReviewAction.APPROVE:
            await self._approve(review.actor)
        elif review.action is ReviewAction.REJECT:
            await self._reject(review.actor, review.text, restore=True)
        else:
            await self._cancel(hold=True)

    async def _approve(self, reviewer: str) -> None:
        progress = self._progress
        if self._operator_proof:
            verdict = await self._still_refundable()
            self._approval_verdict = verdict.reason
            if verdict.refused:
                await self._reject(RULES_ACTOR, verdict.reason, restore=verdict.restore)
                return
        progress.decided_by = reviewer
        await self._refund(revoke=self._revoke_required())

    async def _at_deadline(self, assessment: Assessment) -> None:
        """No decision in time: re-check the certificate now, then apply the configured action."""
        progress = self._progress
        progress.record(DEADLINE_ACTOR, "review deadline passed", detail=assessment.timeout_action)
        if self._operator_proof:
            verdict = await self._still_refundable()
        else:
            verdict = await self._full_recheck()
        if verdict.refused:
            await self._reject(DEADLINE_ACTOR, verdict.reason, restore=verdict.restore)
        elif assessment.timeout_action == "approve":
            progress.decided_by = DEADLINE_ACTOR
            await self._refund(revoke=self._revoke_required())
        else:
            await self._reject(
                DEADLINE_ACTOR, "no reviewer decided before the review deadline", restore=True
            )

    async def _still_refundable(self) -> _Verdict:
        """The one "still refundable now" check, before any approval is carried out."""
        progress = self._progress
        certificate = await self._load_certificate()
        if certificate is None:
            return _Verdict(progress.rejection_reason or "", restore=False)
        if self._released_by_this_refund(certificate):
            progress.certificate_released = True
            progress.record(SYSTEM, "re-checked: this refund had already released the certificate")
            return _Verdict()
        try:
            recheck = await workflow.execute_local_activity_method(
                AssessmentActivities.recheck,
                AssessInput(certificate=certificate, at=workflow.now()),
                start_to_close_timeout=ASSESS_TIMEOUT,
            )
        except (ActivityError, ApplicationError) as err:
            progress.record(RULES_ACTOR, "re-check failed", accepted=False, detail=cause(err))
            return _Verdict(cause(err))
        if recheck.rule is None:
            progress.record(RULES_ACTOR, "re-checked: still refundable")
            return _Verdict()
        progress.record(
            RULES_ACTOR, f"re-checked: {recheck.rule.value}", detail=recheck.explanation
        )
        return _Verdict(recheck.explanation)

    async def _full_recheck(self) -> _Verdict:
        """Before ``operator-proof``: the deadline re-ran every rule."""
        certificate = await self._load_certificate()
        if certificate is None:
            return _Verdict("the certificate no longer exists", restore=False)
        recheck = await self._assess(certificate)
        decision = recheck.decision if recheck else None
        if decision is None:
            return _Verdict(self._progress.rejection_reason or "", restore=True)
        self._progress.record(RULES_ACTOR, "re-checked at the deadline", detail=decision.rule.value)
        return _Verdict(decision.explanation if decision.outcome is Outcome.DENIED else "")

    async def _reject(self, actor: str, reason: str, *, restore: bool) -> None:
        progress = self._progress
        if restore and not await self._release_hold():
            await self._resume(
                SYSTEM, f"not rejected ({bounded(reason, 200)}): {_ALREADY_RELEASED}"
            )
            return
        progress.decided_by = actor
        progress.reject_because(reason)
        progress.close_unpaid_legs("not refunded")
        self._set_state(RefundState.REJECTED)
        await self._notify(progress.rejection_reason or "")

    async def _cancel(self, *, hold: bool) -> None:
        progress = self._progress
        cancellation = self._cancellation
        by_temporal = self._review is not None and self._review.actor == TEMPORAL_ACTOR
        if by_temporal and cancellation is not None and cancellation.audited is not None:
            await cancellation.audited
        if hold and not await self._release_hold():
            await self._resume(SYSTEM, "not cancelled: " + _ALREADY_RELEASED)
            return
        who = "through Temporal" if by_temporal else "by the requester"
        progress.close_unpaid_legs(f"cancelled {who}")
        self._set_state(RefundState.CANCELLED)
        await self._notify(TEMPORAL_CANCELLATION if by_temporal else "")

    async def _release_hold(self) -> bool:
        """Give the certificate back its status; ``False`` when this refund had already revoked
        it or cancelled its order (a re-run after a reset): then the refund must complete."""
        status = await self._run(RefundActivities.restore_certificate)
        if not self._operator_proof or status not in (
            CertificateStatus.REVOKED,
            CertificateStatus.REFUNDED,
        ):
            return True
        certificate = await self._load_certificate()
        return certificate is None or not self._released_by_this_refund(certificate)

    async def _resume(self, actor: str, why: str) -> None:
        """Complete what an earlier run of this refund started: pay only what is still due."""
        progress = self._progress
        progress.certificate_released = True
        progress.record(actor, why)
        progress.decided_by = progress.decided_by or actor
        await self._refund(revoke=False)

    async def _repair(self, request: RefundRequest, released: bool) -> None:
        """``refunds repair``: an operator completes the books of a refund that was terminated."""
        progress = self._progress
        repair = request.repair
        assert repair is not None and progress.assessment is not None
        if repair.operator not in progress.assessment.operators:
            await self._reject(
                repair.operator, f"{repair.operator} is not on the operator list", restore=False
            )
            return
        progress.decided_by = repair.operator
        progress.record(repair.operator, "books completed by an operator", detail=repair.note)
        progress.certificate_released = released
        await self._refund(revoke=self._revoke_required())

    async def _refund(self, *, revoke: bool, waiting: bool = False) -> None:
        progress = self._progress
        if not waiting:
            self._set_state(RefundState.REFUNDING)
        while True:
            if not waiting:
                try:
                    await self._payout.pay_out(revoke)
                    break
                except NeedsAttentionError as problem:
                    progress.needs_attention_because(str(problem))
                    self._set_state(RefundState.NEEDS_ATTENTION)
                    workflow.logger.warning(
                        "refund needs attention", extra={"reason": progress.attention_reason}
                    )
            waiting = False
            await self._await_operator()
            action, self._operator_action = self._operator_action, None
            progress.needs_attention_because("")
            self._set_state(RefundState.REFUNDING)
            if action is not None and action.action is ReviewAction.RESOLVE:
                await self._payout.settle_by_hand(action.actor, action.text)
        await self._run(RefundActivities.mark_refunded)
        self._set_state(RefundState.REFUNDED)
        await self._notify("")

    async def _await_operator(self) -> None:
        if not self._operator_proof:
            await workflow.wait_condition(lambda: self._operator_action is not None)
            return
        while self._operator_action is None:
            await workflow.wait_condition(
                lambda: self._operator_action is not None or self._may_continue_as_new()
            )
            if self._operator_action is None and self._may_continue_as_new():
                workflow.continue_as_new(self._progress.carry())

    def _may_continue_as_new(self) -> bool:
        """The history is long, and nothing is in flight that a new run could not take over."""
        assessment = self._progress.assessment
        if not self._operator_proof or assessment is None:
            return False
        info = workflow.info()
        too_long = info.is_continue_as_new_suggested() or (
            assessment.history_event_limit is not None
            and info.get_current_history_length() >= assessment.history_event_limit
        )
        too_long = too_long or (
            assessment.history_bytes_limit is not None
            and info.get_current_history_size() >= assessment.history_bytes_limit
        )
        cancellation = self._cancellation
        return (
            too_long
            and workflow.all_handlers_finished()
            and (self._support_ticket is None or self._support_ticket.done())
            and (
                cancellation is None or cancellation.audited is None or cancellation.audited.done()
            )
        )

    # Steps and bookkeeping.

    @property
    def _state(self) -> RefundState:
        return self._progress.state

    def _revoke_required(self) -> bool:
        decision = self._progress.decision
        if decision is not None:
            return decision.revoke_required
        certificate = self._progress.certificate
        return certificate is not None and certificate.issued

    def _released_by_this_refund(self, certificate: Certificate) -> bool:
        return certificate.released_by == self._progress.refund_id

    def _is_rerun(self) -> bool:
        """A reset keeps the first run's id and input; a new submission starts a new chain."""
        info = workflow.info()
        return info.run_id != info.first_execution_run_id and info.continued_run_id is None

    async def _load_certificate(self) -> Certificate | None:
        progress = self._progress
        certificate_id = progress.request.certificate_id
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
            progress.record(SYSTEM, "certificate not loaded", accepted=False, detail=cause(err))
            failure = err.cause if isinstance(err, ActivityError) else err
            if getattr(failure, "type", None) == CERTIFICATE_NOT_FOUND:
                progress.reject_because(f"unknown certificate {certificate_id}")
            else:
                progress.reject_because(cause(err))
            return None

    async def _assess(self, certificate: Certificate, *, resume: bool = False) -> Assessment | None:
        progress = self._progress
        try:
            assessment = await workflow.execute_local_activity_method(
                AssessmentActivities.assess,
                AssessInput(certificate=certificate, at=workflow.now(), resume=resume),
                start_to_close_timeout=ASSESS_TIMEOUT,
            )
        except (ActivityError, ApplicationError) as err:
            progress.record(RULES_ACTOR, "rules not applied", accepted=False, detail=cause(err))
            progress.reject_because(cause(err))
            return None
        decision = assessment.decision
        if decision is None:
            return assessment
        metrics.count_decision(decision.rule.value, decision.outcome.value)
        progress.record(
            RULES_ACTOR,
            f"rule {decision.rule.value}",
            detail=f"{decision.outcome.value}: {decision.explanation}",
        )
        workflow.logger.info(
            "refund assessed",
            extra={"rule": decision.rule.value, "outcome": decision.outcome.value},
        )
        return assessment

    def _open_support_ticket(self) -> asyncio.Future[str] | None:
        request = self._progress.request
        contact = request.support_contact
        if contact is None or request.repair is not None:
            return None
        self._progress.record(request.requester, "asked for technical support", detail=contact.kind)
        return asyncio.ensure_future(
            workflow.execute_activity_method(
                RefundActivities.open_support_ticket,
                SupportTicketRequest(
                    refund_id=self._progress.refund_id,
                    certificate_id=request.certificate_id,
                    reason=request.reason,
                    contact=contact,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
        )

    async def _notify(self, message: str) -> None:
        progress = self._progress
        certificate = progress.certificate
        assert certificate is not None
        decision = progress.decision
        await workflow.execute_activity_method(
            RefundActivities.notify_customer,
            CustomerNotice(
                refund_id=progress.refund_id,
                certificate_id=certificate.certificate_id,
                owner=certificate.owner,
                state=progress.state,
                rule=decision.rule if decision else None,
                currency=certificate.order.currency,
                legs=progress.legs,
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
                certificate_id=self._progress.request.certificate_id,
                refund_id=self._progress.refund_id,
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )

    def _initial_legs(self, certificate: Certificate, assessment: Assessment) -> list[LegStatus]:
        decision = assessment.decision
        granted = decision is None or decision.outcome is not Outcome.DENIED
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
                    idempotency_key=f"{self._progress.refund_id}:leg-{index}"
                    if refundable
                    else None,
                    detail="" if refundable else _not_refundable_detail(leg.refundable),
                )
            )
        return legs

    def _set_state(self, state: RefundState) -> None:
        progress = self._progress
        if state is RefundState.VALIDATING_APPLICATION:
            progress.review_started = workflow.now()
        elif progress.review_started is not None:
            waited = (workflow.now() - progress.review_started).total_seconds()
            metrics.record_review_time(int(waited))
            progress.review_started = None
        settled = state in FINAL_STATES or state is RefundState.NEEDS_ATTENTION
        if settled:
            metrics.count_finished(state.value)
        progress.state = state
        if not (state in FINAL_STATES and self._one_visibility_update):
            workflow.upsert_search_attributes([REFUND_STATE.value_set(state.value)])
        workflow.set_current_details(progress.details())
        if settled:
            progress.record(SYSTEM, state.value, detail=progress.rejection_reason or "")


def _actor_and_text(action: ReviewAction, message: Any) -> tuple[str, str]:
    if action is ReviewAction.CANCEL:
        return str(message.requester), ""
    if action is ReviewAction.REJECT:
        return str(message.reviewer), str(message.reason)
    return str(message.reviewer), str(message.note or "")


def _not_refundable_detail(refundable: bool) -> str:
    return "denied by the rules" if refundable else "vouchers are not returned"
