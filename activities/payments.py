"""Payment activities: return one leg to its channel, or record a leg settled by hand.

The exactly-once record is the ledger's, written here whatever the channel: the ledger is read
first (a leg already recorded is never sent again), the channel is asked under the leg's
idempotency key (which it must honour, as its own request id), and its answer is recorded under
that key. A retry, a crash between the channel's answer and the record, a reset or a replay finds
either the record or the channel's first transaction: a leg is paid once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gateways import PaymentGateway
from activities.payloads import ManualReturn, PaymentReceipt, PaymentReturnRequest
from domain.certificates import Channel
from domain.errors import PAYMENT_REJECTED, PaymentRejectedError
from domain.ledger import MANUAL, LedgerEntry, Return, manual_transaction_id

if TYPE_CHECKING:
    from storage.ledger import Ledger


class PaymentActivities:
    def __init__(self, gateways: Mapping[Channel, PaymentGateway], ledger: Ledger) -> None:
        self.gateways = gateways
        self.ledger = ledger

    @activity.defn(name="return_to_alipay")
    def return_to_alipay(self, request: PaymentReturnRequest) -> PaymentReceipt:
        return self._return(Channel.ALIPAY, request)

    @activity.defn(name="return_to_bank")
    def return_to_bank(self, request: PaymentReturnRequest) -> PaymentReceipt:
        return self._return(Channel.BANK, request)

    @activity.defn(name="return_to_account_balance")
    def return_to_account_balance(self, request: PaymentReturnRequest) -> PaymentReceipt:
        return self._return(Channel.ACCOUNT_BALANCE, request)

    def _return(self, channel: Channel, request: PaymentReturnRequest) -> PaymentReceipt:
        found = self.ledger.find(request.idempotency_key)
        if found is not None:
            return self._receipt(found, already_returned=True)
        try:
            paid = self.gateways[channel].return_payment(request)
        except PaymentRejectedError as err:
            raise ApplicationError(str(err), type=PAYMENT_REJECTED, non_retryable=True) from err
        entry, existed = self.ledger.record(
            Return(
                idempotency_key=request.idempotency_key,
                refund_id=request.refund_id,
                certificate_id=request.certificate_id,
                leg_index=request.leg_index,
                channel=channel.value,
                original_channel=request.channel.value,
                amount=request.amount,
                currency=request.currency,
                reference=request.reference,
                transaction_id=paid.transaction_id,
            )
        )
        return self._receipt(entry, already_returned=existed)

    @activity.defn(name="record_manual_return")
    def record_manual_return(self, settled: ManualReturn) -> PaymentReceipt:
        entry, existed = self.ledger.record(
            Return(
                idempotency_key=settled.idempotency_key,
                refund_id=settled.refund_id,
                certificate_id=settled.certificate_id,
                leg_index=settled.leg_index,
                channel=MANUAL,
                original_channel=settled.original_channel.value,
                amount=settled.amount,
                currency=settled.currency,
                reference=settled.reference,
                transaction_id=manual_transaction_id(settled.idempotency_key),
            )
        )
        activity.logger.info(
            "leg settled by hand",
            extra={
                "refund_id": settled.refund_id,
                "leg": settled.leg_index,
                "operator": settled.operator,
            },
        )
        return self._receipt(entry, already_returned=existed)

    def _receipt(self, entry: LedgerEntry, *, already_returned: bool) -> PaymentReceipt:
        activity.logger.info(
            "payment already returned" if already_returned else "payment returned",
            extra={
                "refund_id": entry.refund_id,
                "leg": entry.leg_index,
                "channel": entry.channel,
                "amount": str(entry.amount),
                "transaction_id": entry.transaction_id,
            },
        )
        return PaymentReceipt(
            idempotency_key=entry.idempotency_key,
            transaction_id=entry.transaction_id,
            channel=entry.channel,
            amount=entry.amount,
            already_returned=already_returned,
        )
