"""RefundWorkflow: one refund request from submission to money returned, rejected or cancelled.

The certificate is read from the system of record, never from the caller. The rule decision and the
review deadline are computed once by a local activity and so recorded in history. What people send
(signals checked and audited, never dropped; updates refused synchronously by their validators)
goes through ``workflows.review_desk``; the money moves in ``workflows.payout``; the other steps
are in ``workflows.steps``.

Temporal's own tools are part of the interface. A cancellation request (Web UI, ``temporal workflow
cancel``) never interrupts the refund's steps: in review it is a cancel, later it is refused and
audited, and the workflow always completes with a final state. A run that finds its certificate
already released by its own refund id (a reset, or ``refunds repair``) pays only what is still due.
A refund waiting for a person continues as new when its history grows long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from domain.certificates import CertificateStatus
    from domain.decisions import Assessment, Outcome
    from workflows.contract import (
        ActionResult,
        ApproveInput,
        CancelInput,
        CarriedState,
        OperatorInput,
        RefundRequest,
        RefundState,
        RefundStatus,
        RejectInput,
        ReviewAction,
    )
    from workflows.search_attributes import (
        CERTIFICATE_ID,
        PAYMENT_CHANNELS,
        REFUND_STATE,
        REVIEW_DEADLINE,
    )

from workflows import versions
from workflows.endings import ALREADY_RELEASED, Endings, is_rerun, revoke_choice
from workflows.payout import Payout, RequestRefusedError
from workflows.progress import RefundProgress
from workflows.review_checks import FORGED_INPUT, ON_A_SCHEDULE, request_refusal
from workflows.review_deadline import DeadlineKeeper
from workflows.review_desk import ReviewDesk, signed_as
from workflows.steps import RULES_ACTOR, SYSTEM, RefundSteps

DEADLINE_ACTOR = "review-deadline"


@workflow.defn
class RefundWorkflow:
    @workflow.init
    def __init__(self, request: RefundRequest) -> None:
        info = workflow.info()
        refund_id = info.workflow_id
        continued = (
            info.continued_run_id is not None and not info.cron_schedule and info.attempt == 1
        )
        # Only the refund itself passes its state on (continue-as-new); a client cannot, not even
        # through a cron schedule or a retry policy, which also start runs that "continue".
        self._forged = request.carried is not None and not continued
        self._carried = None if self._forged else request.carried
        if self._carried is not None:
            self._progress = RefundProgress.carried_over(refund_id, request)
        else:
            request = request.model_copy(update={"carried": None})
            self._progress = RefundProgress(refund_id, request, submitted_at=workflow.now())
            self._progress.record(
                request.requester, "submitted", detail=f"reason {request.reason.value}"
            )
        self._desk = ReviewDesk(self._progress)
        self._steps = RefundSteps(self._progress)
        self._payout = Payout(
            self._progress, self._steps.notify, lambda: self._endings.may_continue_as_new()
        )
        self._endings = Endings(
            self._progress,
            self._steps,
            self._desk,
            self._payout,
            operator_proof=lambda: self._operator_proof,
        )
        self._operator_proof = False
        self._deadline = DeadlineKeeper(self._progress, lambda: self._desk.review is None)

    @workflow.run
    async def run(self, request: RefundRequest) -> RefundStatus:
        # Each version includes the ones before: a new run records one patch marker (each also
        # upserts a search attribute), and an older run replays with its own marker.
        version = versions.running_version()
        self._payout.authorized = self._steps.signed_requests = version >= 6
        self._queue_card = self._deadline.enabled = version >= 5
        self._desk.signed.required = version >= 4
        self._operator_proof = version >= 3
        self._steps.local_load = version >= 2
        body = asyncio.ensure_future(self._body(self._carried))
        while not body.done():
            try:
                # Shielded: a cancellation request reaches only this loop, never a refund step.
                await asyncio.shield(body)
            except asyncio.CancelledError:
                self._desk.cancellation_requested()
                if body.done():  # it arrived as the refund finished: refused, and audited
                    await self._desk.cancellation_audited()
        body.result()
        if self._steps.local_load:
            workflow.upsert_search_attributes([REFUND_STATE.value_set(self._progress.state.value)])
        return self.status()

    async def _body(self, carried: CarriedState | None) -> None:
        if carried is None:
            await self._decide_and_act()
        else:  # a continued run waits where the previous run waited
            workflow.set_current_details(self._progress.details())
            if self._progress.people is None:  # continued from a run before signed actions
                await self._desk.signed.waiting_for_a_person()
            if carried.state is RefundState.VALIDATING_APPLICATION:
                if self._queue_card:  # the card of a run continued from before v5
                    self._steps.show_in_review_queue()
                await self._await_review()
            else:  # settling legs go on settling; a refund needing attention waits
                revoke = revoke_choice(carried.revoke, self._steps.revoke_required())
                waiting = carried.state is not RefundState.REFUNDING
                await self._endings.refund(revoke=revoke, waiting=waiting)
        if self._steps.support_ticket is not None:
            await self._steps.support_ticket
        await self._desk.cancellation_audited()

    async def _decide_and_act(self) -> None:
        progress, steps, desk = self._progress, self._steps, self._desk
        request = progress.request
        if self._forged or workflow.info().cron_schedule:
            await self._endings.refuse_early(FORGED_INPUT if self._forged else ON_A_SCHEDULE)
            return
        certificate = await steps.load_certificate()
        if certificate is None:
            await self._endings.refuse_early(progress.rejection_reason or "")
            return
        progress.certificate = certificate
        refusal = request_refusal(request, certificate.owner, signed=steps.signed_requests)
        if refusal is not None:
            await self._endings.refuse_early(refusal)
            return
        steps.open_support_ticket()
        released = self._operator_proof and steps.released_by_this_refund(certificate)
        unfinished = certificate.status is not CertificateStatus.REFUNDED
        resume = released and (request.repair is not None or is_rerun() or unfinished)
        held = self._operator_proof and certificate.held_by == progress.refund_id
        assessment = await steps.assess(certificate, resume=resume or request.repair is not None)
        if assessment is None:
            desk.choose_path("the certificate's data stopped the refund first")
            await self._endings.reject(RULES_ACTOR, progress.rejection_reason or "", restore=held)
            return
        progress.assessment = assessment
        progress.legs = steps.initial_legs(certificate, assessment)
        workflow.upsert_search_attributes(
            [
                CERTIFICATE_ID.value_set(certificate.certificate_id),
                PAYMENT_CHANNELS.value_set(sorted({leg.channel.value for leg in progress.legs})),
            ]
        )
        decision = assessment.decision
        if request.repair is not None:
            desk.choose_path("an operator's repair is settling this refund")
            await self._endings.repair(released)
        elif resume or decision is None:
            desk.choose_path("this refund had already released the certificate")
            why = "re-run after reset: " if is_rerun() else "a new request resumes it: "
            await self._endings.resume(SYSTEM, why + ALREADY_RELEASED)
        elif decision.outcome is Outcome.DENIED:
            desk.choose_path(f"the rules denied the request ({decision.rule.value})")
            await self._endings.reject(RULES_ACTOR, decision.explanation, restore=held)
        elif desk.review is not None:  # cancelled through Temporal before the rules decided
            desk.choose_path(None)
            await self._endings.cancel(hold=held)
        elif decision.outcome is Outcome.AUTO_APPROVE:
            desk.choose_path(None)
            progress.decided_by, progress.evidence = RULES_ACTOR, "rules"
            self._payout.hold_first = steps.signed_requests
            try:
                await self._endings.refund(revoke=False)
            except RequestRefusedError as refused:
                await self._endings.refuse_early(str(refused))
        else:
            desk.choose_path(None)
            await self._review_request(assessment)

    # What people send: signals take any number of arguments, so that no payload a client can
    # send makes a handler raise; whatever arrives is checked, and audited if refused.

    @workflow.signal(name="approve")
    def approve(self, *payloads: Any) -> None:
        self._desk.receive_signal(ReviewAction.APPROVE, payloads, ApproveInput)

    @workflow.signal(name="reject")
    def reject(self, *payloads: Any) -> None:
        self._desk.receive_signal(ReviewAction.REJECT, payloads, RejectInput)

    @workflow.signal(name="cancel")
    def cancel(self, *payloads: Any) -> None:
        self._desk.receive_signal(ReviewAction.CANCEL, payloads, CancelInput)

    @workflow.signal(
        name="people_changed", unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON
    )
    async def people_changed(self, *payloads: Any) -> None:
        """Carries nothing to trust: the directory is read again from the system of record."""
        await self._desk.signed.directory_changed()

    @workflow.signal(
        name="calendar_changed", unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON
    )
    async def calendar_changed(self, *payloads: Any) -> None:
        """Carries nothing to trust: the deadline is counted again with the worker's calendar."""
        await self._deadline.calendar_changed()

    @workflow.signal(name="settlement_changed")
    def settlement_changed(self, *payloads: Any) -> None:
        """Carries nothing to trust: a settling leg is asked about through an activity (the
        provider's webhook receiver sends it; a flood asks at most every few seconds)."""
        self._payout.rings += 1

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, payloads: Sequence[RawValue]) -> None:
        self._progress.record(
            "unknown", f"signal {name[:64]!r}", accepted=False, detail="unknown signal"
        )

    @workflow.update  # named by the method: the SDK types an async handler only this way
    async def approve_request(self, action: ApproveInput) -> ActionResult:
        desk = self._desk
        desk.verify(ReviewAction.APPROVE, action)
        note = action.note or ""
        signed = signed_as(action.reviewer, note, action.signature)
        accepted = desk.accept(ReviewAction.APPROVE, action.reviewer, note, "update", signed)
        if not self._operator_proof:
            return accepted
        await workflow.wait_condition(lambda: desk.approval_verdict is not None)
        refused = bool(desk.approval_verdict)
        return accepted.model_copy(
            update={
                "state": RefundState.REJECTED if refused else RefundState.REFUNDING,
                "detail": desk.approval_verdict or "",
            }
        )

    @approve_request.validator
    def _validate_approve(self, action: ApproveInput) -> None:
        self._desk.raise_if_refused(ReviewAction.APPROVE, action)

    @workflow.update(name="reject_request")
    def reject_request(self, action: RejectInput) -> ActionResult:
        self._desk.verify(ReviewAction.REJECT, action)
        return self._desk.accept(ReviewAction.REJECT, action.reviewer, action.reason, "update")

    @reject_request.validator
    def _validate_reject(self, action: RejectInput) -> None:
        self._desk.raise_if_refused(ReviewAction.REJECT, action)

    @workflow.update(name="cancel_request")
    def cancel_request(self, action: CancelInput) -> ActionResult:
        self._desk.verify(ReviewAction.CANCEL, action)
        return self._desk.accept(ReviewAction.CANCEL, action.requester, "", "update")

    @cancel_request.validator
    def _validate_cancel(self, action: CancelInput) -> None:
        self._desk.raise_if_refused(ReviewAction.CANCEL, action)

    @workflow.update(name="retry_payments")
    def retry_payments(self, action: OperatorInput) -> ActionResult:
        self._desk.verify(ReviewAction.RETRY, action)
        return self._desk.accept_operator(ReviewAction.RETRY, action.operator, action.note or "")

    @retry_payments.validator
    def _validate_retry(self, action: OperatorInput) -> None:
        self._desk.raise_if_operator_refused(action, note_required=False)

    @workflow.update(name="resolve_manually")
    def resolve_manually(self, action: OperatorInput) -> ActionResult:
        self._desk.verify(ReviewAction.RESOLVE, action)
        note = (action.note or "").strip()
        signed = signed_as(action.operator, action.note or "", action.signature)
        return self._desk.accept_operator(ReviewAction.RESOLVE, action.operator, note, signed)

    @resolve_manually.validator
    def _validate_resolve(self, action: OperatorInput) -> None:
        self._desk.raise_if_operator_refused(action, note_required=True)

    @workflow.query
    def status(self) -> RefundStatus:
        return self._progress.status()

    # The paths.

    async def _review_request(self, assessment: Assessment) -> None:
        deadline = assessment.review_deadline
        assert deadline is not None
        if not await self._steps.hold():
            await self._endings.refuse_early(self._progress.rejection_reason or "")
            return
        await self._desk.signed.waiting_for_a_person()
        workflow.upsert_search_attributes([REVIEW_DEADLINE.value_set(deadline)])
        if self._queue_card:
            self._steps.show_in_review_queue()
        self._steps.set_state(RefundState.VALIDATING_APPLICATION)
        await self._await_review()

    async def _await_review(self) -> None:
        desk, endings = self._desk, self._endings
        decided = lambda: desk.review is not None or endings.may_continue_as_new()  # noqa: E731
        while not await self._deadline.passed_before(decided) and desk.review is None:
            workflow.continue_as_new(self._progress.carry())
        review = desk.review
        if review is None:
            desk.deadline_passed = True
            self._progress.decision_pending = True
            assert self._progress.assessment is not None
            await self._at_deadline(self._progress.assessment)
        elif review.action is ReviewAction.APPROVE:
            self._progress.evidence, self._progress.approval = "reviewer", review.signed
            await self._approve(review.actor)
        elif review.action is ReviewAction.REJECT:
            await self._endings.reject(review.actor, review.text, restore=True)
        else:
            await self._endings.cancel(hold=True)

    async def _approve(self, reviewer: str) -> None:
        if self._operator_proof:
            verdict = await self._steps.still_refundable()
            self._desk.approval_verdict = verdict.reason
            if verdict.refused:
                await self._endings.reject(RULES_ACTOR, verdict.reason, restore=verdict.restore)
                return
            self._progress.decided_by = reviewer
            await self._endings.refund(
                revoke=revoke_choice(verdict.revoke, self._steps.revoke_required())
            )
            return
        self._progress.decided_by = reviewer
        await self._endings.refund(revoke=self._steps.revoke_required())

    async def _at_deadline(self, assessment: Assessment) -> None:
        """No decision in time: re-check the certificate now, then apply the configured action."""
        progress, steps = self._progress, self._steps
        progress.record(DEADLINE_ACTOR, "review deadline passed", detail=assessment.timeout_action)
        if self._operator_proof:
            verdict = await steps.still_refundable()
        else:
            verdict = await steps.full_recheck()
        if verdict.refused:
            await self._endings.reject(DEADLINE_ACTOR, verdict.reason, restore=verdict.restore)
        elif assessment.timeout_action == "approve":
            progress.decided_by = DEADLINE_ACTOR
            progress.evidence = "deadline"
            await self._endings.refund(
                revoke=revoke_choice(verdict.revoke, steps.revoke_required())
            )
        else:
            await self._endings.reject(
                DEADLINE_ACTOR, "no reviewer decided before the review deadline", restore=True
            )
