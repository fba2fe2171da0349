"""A refund's steps outside the money: loading the certificate, the rules and their re-check, the
system of record, support, the customer's notice, and each change of state with what it shows
(search attributes, the Web UI's details, metrics, the audit trail)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.assessment import AssessmentActivities
    from activities.customers import CustomerActivities
    from activities.payloads import (
        AssessInput,
        CertificateChange,
        CustomerNotice,
        HoldRequest,
        RepairClaim,
        SupportTicketRequest,
    )
    from activities.records import RecordActivities
    from domain.certificates import Certificate
    from domain.decisions import Assessment, Outcome
    from domain.errors import CERTIFICATE_NOT_FOUND
    from workflows import metrics
    from workflows.contract import (
        FINAL_STATES,
        REVIEW_CARD_MEMO,
        LegState,
        LegStatus,
        RefundState,
        RepairOrder,
    )
    from workflows.search_attributes import REFUND_STATE

from workflows.payout import RECORD_RETRY, RECORD_TIMEOUT
from workflows.payout_rules import cause
from workflows.progress import RefundProgress
from workflows.review_checks import Verdict

ASSESS_TIMEOUT = timedelta(seconds=10)
RULES_ACTOR = "rules"
SYSTEM = "system"


class RefundSteps:
    def __init__(self, progress: RefundProgress) -> None:
        self.progress = progress
        self.support_ticket: asyncio.Future[str] | None = None
        self.local_load = False
        """Patch v2: load by local activity; the final state is set as the workflow closes."""
        self.signed_requests = False
        """Patch v6: requests are signed, and the hold is refused without one."""

    def released_by_this_refund(self, certificate: Certificate) -> bool:
        return certificate.released_by == self.progress.refund_id

    def revoke_required(self) -> bool:
        decision = self.progress.decision
        if decision is not None:
            return decision.revoke_required
        certificate = self.progress.certificate
        return certificate is not None and certificate.issued

    async def load_certificate(self) -> Certificate | None:
        progress = self.progress
        certificate_id = progress.request.certificate_id
        summary = f"load certificate {certificate_id}"
        try:
            # Two calls, not one through a chosen function: mypy cannot type that choice.
            if self.local_load:
                return await workflow.execute_local_activity_method(
                    RecordActivities.load_certificate,
                    certificate_id,
                    start_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=RECORD_RETRY,
                    summary=summary,
                )
            return await workflow.execute_activity_method(
                RecordActivities.load_certificate,
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

    async def assess(self, certificate: Certificate, *, resume: bool = False) -> Assessment | None:
        progress = self.progress
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

    async def still_refundable(self) -> Verdict:
        """The one "still refundable now" check, before any approval is carried out."""
        progress = self.progress
        certificate = await self.load_certificate()
        if certificate is None:
            return Verdict(progress.rejection_reason or "the certificate could not be loaded")
        if self.released_by_this_refund(certificate):
            progress.certificate_released = True
            progress.record(SYSTEM, "re-checked: this refund had already released the certificate")
            return Verdict(revoke=certificate.issued)
        try:
            recheck = await workflow.execute_local_activity_method(
                AssessmentActivities.recheck,
                AssessInput(certificate=certificate, at=workflow.now()),
                start_to_close_timeout=ASSESS_TIMEOUT,
            )
        except (ActivityError, ApplicationError) as err:
            progress.record(RULES_ACTOR, "re-check failed", accepted=False, detail=cause(err))
            return Verdict(cause(err))
        if recheck.rule is None:
            progress.record(RULES_ACTOR, "re-checked: still refundable")
            return Verdict(revoke=certificate.issued)
        progress.record(
            RULES_ACTOR, f"re-checked: {recheck.rule.value}", detail=recheck.explanation
        )
        return Verdict(recheck.explanation)

    async def full_recheck(self) -> Verdict:
        """Before patch v3 (``operator-proof``): the deadline re-ran every rule."""
        certificate = await self.load_certificate()
        if certificate is None:
            return Verdict("the certificate no longer exists", restore=False)
        recheck = await self.assess(certificate)
        decision = recheck.decision if recheck else None
        if decision is None:
            return Verdict(self.progress.rejection_reason or "", restore=True)
        self.progress.record(RULES_ACTOR, "re-checked at the deadline", detail=decision.rule.value)
        refused = decision.explanation if decision.outcome is Outcome.DENIED else ""
        return Verdict(refused, revoke=decision.revoke_required)

    def open_support_ticket(self) -> None:
        """Start the support ticket, if one was asked for, beside the refund's own steps."""
        request = self.progress.request
        contact = request.support_contact
        if contact is None or request.repair is not None:
            return
        self.progress.record(request.requester, "asked for technical support", detail=contact.kind)
        self.support_ticket = asyncio.ensure_future(
            workflow.execute_activity_method(
                CustomerActivities.open_support_ticket,
                SupportTicketRequest(
                    refund_id=self.progress.refund_id,
                    certificate_id=request.certificate_id,
                    reason=request.reason,
                    contact=contact,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
        )

    async def notify(self, message: str) -> None:
        progress = self.progress
        certificate = progress.certificate
        assert certificate is not None
        decision = progress.decision
        await workflow.execute_activity_method(
            CustomerActivities.notify_customer,
            CustomerNotice(
                refund_id=progress.refund_id,
                certificate_id=certificate.certificate_id,
                owner=certificate.owner,
                state=progress.state,
                rule=decision.rule if decision else None,
                currency=certificate.order.currency,
                legs=progress.legs,
                message=message,
                settlement_days=progress.assessment.settlement_patience_days or 10
                if progress.assessment
                else 10,
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )

    async def hold(self) -> bool:
        """Take the certificate's hold for the customer's signed request (registered with it in
        the system of record); ``False`` when the system of record refuses (patch v6: the reason
        is the rejection's), else its refusal fails the step as before."""
        progress = self.progress
        try:
            await workflow.execute_activity_method(
                RecordActivities.mark_refund_pending,
                HoldRequest(
                    certificate_id=progress.request.certificate_id,
                    refund_id=progress.refund_id,
                    request=progress.request,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
            )
        except ActivityError as err:
            if not self.signed_requests:
                raise
            progress.record(SYSTEM, "certificate not held", accepted=False, detail=cause(err))
            progress.reject_because(cause(err))
            return False
        return True

    async def claim_repair_order(self, repair: RepairOrder) -> bool:
        """Whether ``refunds repair`` recorded this order; this run then holds it."""
        progress = self.progress
        claimed: bool = await workflow.execute_activity_method(
            RecordActivities.claim_repair_order,
            RepairClaim(
                refund_id=progress.refund_id,
                certificate_id=progress.request.certificate_id,
                operator=repair.operator,
                action=repair.action,
                run_id=workflow.info().run_id,
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )
        return claimed

    async def run(self, activity: Any) -> Any:
        """A system-of-record step on this refund's certificate (its name says what it does)."""
        return await workflow.execute_activity_method(
            activity,
            CertificateChange(
                certificate_id=self.progress.request.certificate_id,
                refund_id=self.progress.refund_id,
            ),
            start_to_close_timeout=RECORD_TIMEOUT,
            retry_policy=RECORD_RETRY,
        )

    def initial_legs(self, certificate: Certificate, assessment: Assessment) -> list[LegStatus]:
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
                    idempotency_key=f"{self.progress.refund_id}:leg-{index}"
                    if refundable
                    else None,
                    detail="" if refundable else _not_refundable_detail(leg.refundable),
                )
            )
        return legs

    def show_in_review_queue(self) -> None:
        workflow.upsert_memo({REVIEW_CARD_MEMO: self.progress.review_card()})

    def set_state(self, state: RefundState) -> None:
        progress = self.progress
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
        if not (state in FINAL_STATES and self.local_load):
            workflow.upsert_search_attributes([REFUND_STATE.value_set(state.value)])
        workflow.set_current_details(progress.details())
        if settled:
            progress.record(SYSTEM, state.value, detail=progress.rejection_reason or "")


def _not_refundable_detail(refundable: bool) -> str:
    return "denied by the rules" if refundable else "vouchers are not returned"
