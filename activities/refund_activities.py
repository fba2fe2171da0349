"""Refund activities: the system of record, payment channels, the CA, support and notifications.

Activities are methods of one class built with its clients, so a worker, a test or a fault-injecting
harness choose what they talk to. Failures a retry cannot fix are raised as non-retryable
``ApplicationError`` with a type the workflow recognises; anything else is retried.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gateways import CertificateAuthority, Notifier, PaymentGateway, SupportDesk
from activities.notices import render_notice
from activities.payloads import (
    CertificateChange,
    CustomerNotice,
    ManualReturn,
    PaymentReceipt,
    PaymentReturnRequest,
    RepairClaim,
    SupportTicketRequest,
)
from domain.certificates import Certificate, CertificateStatus, Channel
from domain.errors import (
    CERTIFICATE_DATA_INVALID,
    CERTIFICATE_NOT_FOUND,
    PAYMENT_REJECTED,
    REVOCATION_REFUSED,
    STATUS_CONFLICT,
    CertificateNotFoundError,
    PaymentRejectedError,
    RevocationRefusedError,
    StatusConflictError,
)
from storage.certificates import CertificateStore
from storage.ledger import Ledger, receipt
from storage.repairs import claim_repair
from storage.seed_file import describe_validation_error


def _log_context(refund_id: str, **fields: object) -> dict[str, object]:
    return {"refund_id": refund_id, **fields}


class RefundActivities:
    def __init__(
        self,
        store: CertificateStore,
        gateways: Mapping[Channel, PaymentGateway],
        authority: CertificateAuthority,
        support: SupportDesk,
        notifier: Notifier,
        ledger: Ledger,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.gateways = gateways
        self.authority = authority
        self.support = support
        self.notifier = notifier

    @activity.defn(name="load_certificate")
    def load_certificate(self, certificate_id: str) -> Certificate:
        with _conflicts_are_final():
            try:
                return self.store.get(certificate_id)
            except ValidationError as err:
                raise ApplicationError(
                    f"certificate data is inconsistent: {describe_validation_error(err)}",
                    type=CERTIFICATE_DATA_INVALID,
                    non_retryable=True,
                ) from err

    @activity.defn(name="mark_refund_pending")
    def mark_refund_pending(self, change: CertificateChange) -> CertificateStatus:
        with _conflicts_are_final():
            return self.store.mark_refund_pending(change.certificate_id, change.refund_id)

    @activity.defn(name="restore_certificate")
    def restore_certificate(self, change: CertificateChange) -> CertificateStatus:
        with _conflicts_are_final():
            return self.store.restore(change.certificate_id, change.refund_id)

    @activity.defn(name="mark_refunded")
    def mark_refunded(self, change: CertificateChange) -> CertificateStatus:
        with _conflicts_are_final():
            return self.store.mark_refunded(change.certificate_id, change.refund_id)

    @activity.defn(name="cancel_order")
    def cancel_order(self, change: CertificateChange) -> str:
        with _conflicts_are_final():
            return self.store.cancel_order(change.certificate_id, change.refund_id)

    @activity.defn(name="revoke_certificate")
    def revoke_certificate(self, change: CertificateChange) -> None:
        try:
            with _conflicts_are_final():
                self.authority.revoke(change.certificate_id, change.refund_id)
        except RevocationRefusedError as err:
            raise ApplicationError(str(err), type=REVOCATION_REFUSED, non_retryable=True) from err
        activity.logger.info(
            "certificate revoked",
            extra=_log_context(change.refund_id, certificate_id=change.certificate_id),
        )

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
        try:
            receipt = self.gateways[channel].return_payment(request)
        except PaymentRejectedError as err:
            raise ApplicationError(str(err), type=PAYMENT_REJECTED, non_retryable=True) from err
        activity.logger.info(
            "payment returned" if not receipt.already_returned else "payment already returned",
            extra=_log_context(
                request.refund_id,
                leg=request.leg_index,
                channel=channel.value,
                amount=str(request.amount),
                transaction_id=receipt.transaction_id,
            ),
        )
        return receipt

    @activity.defn(name="record_manual_return")
    def record_manual_return(self, settled: ManualReturn) -> PaymentReceipt:
        settled_receipt = receipt(*self.ledger.record_manual(settled))
        activity.logger.info(
            "leg settled by hand",
            extra=_log_context(settled.refund_id, leg=settled.leg_index, operator=settled.operator),
        )
        return settled_receipt

    @activity.defn(name="claim_repair_order")
    def claim_repair_order(self, claim: RepairClaim) -> bool:
        """Whether ``refunds repair`` recorded this order (and this run now holds it)."""
        return claim_repair(
            self.store.engine,
            claim.refund_id,
            claim.certificate_id,
            claim.operator,
            claim.action,
            claim.run_id,
        )

    @activity.defn(name="open_support_ticket")
    def open_support_ticket(self, request: SupportTicketRequest) -> str:
        return self.support.open_ticket(request)

    @activity.defn(name="notify_customer")
    def notify_customer(self, notice: CustomerNotice) -> str:
        message = render_notice(notice)
        self.notifier.notify(notice.model_copy(update={"message": message}))
        return message


@contextmanager
def _conflicts_are_final() -> Iterator[None]:
    """Turn a conflict into a non-retryable failure: the same call would conflict again."""
    try:
        yield
    except StatusConflictError as err:
        raise ApplicationError(str(err), type=STATUS_CONFLICT, non_retryable=True) from err
    except CertificateNotFoundError as err:
        raise ApplicationError(str(err), type=CERTIFICATE_NOT_FOUND, non_retryable=True) from err
