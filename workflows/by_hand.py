"""Settling by hand: an operator returned the failed legs (and did any failed step) outside the
system, and ``refunds resolve`` says so. From patch v6 their signed resolve is the system of
record's evidence for each record; a leg the channel paid after all is told, not recorded twice.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.payloads import ManualRelease, ManualSettlement
    from activities.payments import PaymentActivities
    from activities.records import RecordActivities
    from domain.signatures import SignedAction
    from workflows.contract import LegState

from workflows.payout import AUTHORITY, RECORD_RETRY, RECORD_TIMEOUT
from workflows.payout_rules import cause, leg_payment
from workflows.progress import RefundProgress


async def settle_by_hand(
    progress: RefundProgress,
    actor: str,
    note: str,
    signed: SignedAction | None,
    *,
    authorized: bool,
) -> None:
    """An operator returned the failed legs (and did any failed step) outside the system;
    from patch v6 their signed resolve is the system of record's evidence for each record."""
    certificate = progress.certificate
    assert certificate is not None
    if not progress.certificate_released:
        if authorized and signed is not None:
            release = ManualRelease(
                certificate_id=certificate.certificate_id,
                refund_id=progress.refund_id,
                revoke=bool(progress.revoke),
                resolve=signed,
            )
            try:
                await workflow.execute_activity_method(
                    RecordActivities.record_manual_release,
                    release,
                    start_to_close_timeout=RECORD_TIMEOUT,
                    retry_policy=RECORD_RETRY,
                    summary="record the release done by hand",
                )
            except ActivityError as err:
                progress.record(AUTHORITY, "release by hand not recorded", False, cause(err))
                return
        progress.certificate_released = True
        progress.record(actor, "certificate released by hand", detail=note)
    for leg in [leg for leg in progress.legs if leg.status is LegState.FAILED]:
        payment = leg_payment(progress.refund_id, certificate, leg)
        try:
            receipt = await workflow.execute_activity_method(
                PaymentActivities.record_manual_return,
                ManualSettlement(**payment.model_dump(), resolve=signed),
                start_to_close_timeout=RECORD_TIMEOUT,
                retry_policy=RECORD_RETRY,
                summary=f"record {leg.amount} returned by hand",
            )
        except ActivityError as err:
            if not authorized:
                raise
            progress.record(AUTHORITY, "not recorded as returned by hand", False, cause(err))
            continue
        by_hand = receipt.channel == "manual"
        if receipt.detail:
            progress.record(AUTHORITY, "nothing more is due", detail=receipt.detail)
        progress.update_leg(
            leg.index,
            status=LegState.RETURNED_MANUALLY if by_hand else LegState.RETURNED,
            transaction_id=receipt.transaction_id,
            detail=f"settled by {actor}: {note}" if by_hand else receipt.detail,
        )
