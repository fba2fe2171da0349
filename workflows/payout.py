"""Returning the money: the certificate is revoked (or its order cancelled), then each payment leg
goes back to its own channel under the idempotency key ``<refund id>:leg-<n>``, so no retry, crash,
reset or replay can pay a leg twice. What cannot be done becomes a reason a person acts on.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from workflows.payout_rules import (
    cause,
    leg_problem,
    manual_return,
    may_fall_back,
    patience,
    return_request,
    unavailable,
    unsettled,
)

with workflow.unsafe.imports_passed_through():
    from activities.payloads import CertificateChange
    from activities.payments import PaymentActivities
    from activities.records import RecordActivities
    from domain.certificates import Channel
    from domain.errors import NON_RETRYABLE
    from workflows import metrics
    from workflows.contract import LegState, LegStatus

from workflows.progress import RefundProgress

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

LEG_ACTIVITIES = {
    Channel.ALIPAY: PaymentActivities.return_to_alipay,
    Channel.BANK: PaymentActivities.return_to_bank,
    Channel.ACCOUNT_BALANCE: PaymentActivities.return_to_account_balance,
}


class NeedsAttentionError(Exception):
    """Money could not be returned; a person must act before the refund goes on."""


class Payout:
    def __init__(self, progress: RefundProgress) -> None:
        self.progress = progress

    async def pay_out(self, revoke: bool) -> None:
        """Release the certificate if not yet done, then return every unsettled leg."""
        progress = self.progress
        if not progress.certificate_released:
            await self._release(revoke)
        pending = unsettled(progress.legs)
        problems = [p for p in await asyncio.gather(*map(self._return_leg, pending)) if p]
        if problems:
            raise NeedsAttentionError("; ".join(problems))

    async def _release(self, revoke: bool) -> None:
        step, what, who = (
            (
                RecordActivities.revoke_certificate,
                "revoke the certificate",
                "the certificate authority",
            )
            if revoke
            else (RecordActivities.cancel_order, "cancel the certificate order", "the order system")
        )
        since = workflow.now()
        try:
            await workflow.execute_activity_method(
                step,
                CertificateChange(
                    certificate_id=self.progress.request.certificate_id,
                    refund_id=self.progress.refund_id,
                ),
                start_to_close_timeout=RECORD_TIMEOUT,
                schedule_to_close_timeout=self._patience(),
                retry_policy=RECORD_RETRY,
            )
        except ActivityError as err:
            why = unavailable(who, since, err) or f"{what} failed: {cause(err)}"
            raise NeedsAttentionError(why) from err
        self.progress.certificate_released = True
        self.progress.record("system", "certificate revoked" if revoke else "order cancelled")

    async def _return_leg(self, leg: LegStatus) -> str | None:
        progress = self.progress
        assert progress.certificate is not None
        request = return_request(progress.refund_id, progress.certificate, leg)
        channel = leg.channel
        while True:
            since = workflow.now()
            try:
                receipt = await workflow.execute_activity_method(
                    LEG_ACTIVITIES[channel],
                    request,
                    start_to_close_timeout=RECORD_TIMEOUT,
                    schedule_to_close_timeout=self._patience(),
                    retry_policy=PAYMENT_RETRY,
                    summary=f"return {leg.amount} {request.currency} to {channel.value}",
                )
                break
            except ActivityError as err:
                why = unavailable(channel.value, since, err) or cause(err)
                progress.record("system", f"{channel.value} return failed", False, why)
                assessment = progress.assessment
                allowed = assessment is not None and assessment.fallback_to_balance
                if not may_fall_back(channel, err, allowed):
                    progress.update_leg(leg.index, status=LegState.FAILED, detail=why)
                    return leg_problem(channel, leg, why)
                channel = Channel.ACCOUNT_BALANCE
                progress.record("system", f"leg {leg.index} falls back to account_balance")
        fell_back = channel is not leg.channel
        progress.update_leg(
            leg.index,
            status=LegState.RETURNED,
            transaction_id=receipt.transaction_id,
            returned_via=channel if fell_back else None,
            detail=f"{leg.channel.value} refused; returned to account_balance instead"
            if fell_back
            else "",
        )
        progress.record(
            "system", f"returned {leg.amount} to {channel.value}", detail=receipt.transaction_id
        )
        metrics.count_returned(int(leg.amount * 100), channel.value)
        return None

    def _patience(self) -> timedelta | None:
        assessment = self.progress.assessment
        return patience(assessment.payment_patience_seconds if assessment else None)

    async def settle_by_hand(self, actor: str, note: str) -> None:
        """An operator returned the failed legs (and did any failed step) outside the system."""
        progress = self.progress
        certificate = progress.certificate
        assert certificate is not None
        if not progress.certificate_released:
            progress.certificate_released = True
            progress.record(actor, "certificate released by hand", detail=note)
        for leg in [leg for leg in progress.legs if leg.status is LegState.FAILED]:
            receipt = await workflow.execute_activity_method(
                PaymentActivities.record_manual_return,
                manual_return(progress.refund_id, certificate, leg, actor, note),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"record {leg.amount} returned by hand",
            )
            by_hand = receipt.channel == "manual"
            progress.update_leg(
                leg.index,
                status=LegState.RETURNED_MANUALLY if by_hand else LegState.RETURNED,
                transaction_id=receipt.transaction_id,
                detail=f"settled by {actor}: {note}",
            )
