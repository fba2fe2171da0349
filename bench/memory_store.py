"""A system of record held in memory, for measuring the refund engine without its database.

``bench.worker refund --store memory`` gives the refund activities these stand-ins: the same
activity bodies, logging and error mapping, but certificates read once when the worker starts and
the certificate, order, payment and notice writes answered as the database would answer a first
attempt, with nothing recorded (revocations and support tickets, off the auto-refund path, still
go to the database). Never for production: without the ledger's unique keys nothing is once-only.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from activities.payloads import CustomerNotice, PaymentReceipt, PaymentReturnRequest
from activities.refund_activities import RefundActivities
from activities.sandbox import SandboxCertificateAuthority, SandboxSupportDesk
from domain.certificates import Certificate, CertificateStatus, Channel
from domain.errors import CertificateNotFoundError
from storage.certificates import CertificateStore
from storage.ledger import Ledger
from storage.schema import certificates
from worker import PAYABLE_CHANNELS


class MemoryCertificateStore(CertificateStore):
    """Every certificate in the database when it is made, answered from a dict."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        with engine.connect() as conn:
            ids = list(conn.execute(select(certificates.c.certificate_id)).scalars())
        read = super().get
        self.certificates = {certificate_id: read(certificate_id) for certificate_id in ids}

    def get(self, certificate_id: str) -> Certificate:
        try:
            return self.certificates[certificate_id]
        except KeyError:
            raise CertificateNotFoundError(f"no certificate {certificate_id!r}") from None

    def mark_refund_pending(self, certificate_id: str, refund_id: str) -> CertificateStatus:
        self.get(certificate_id)
        return CertificateStatus.REFUND_PENDING

    def restore(self, certificate_id: str, refund_id: str) -> CertificateStatus:
        return self.get(certificate_id).status or CertificateStatus.PAID

    def mark_refunded(self, certificate_id: str, refund_id: str) -> CertificateStatus:
        return CertificateStatus.REFUNDED

    def cancel_order(self, certificate_id: str, refund_id: str) -> str:
        return self.get(certificate_id).order.order_id


class MemoryPaymentGateway:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def return_payment(self, request: PaymentReturnRequest) -> PaymentReceipt:
        return PaymentReceipt(
            idempotency_key=request.idempotency_key,
            transaction_id=f"memory-{request.idempotency_key}",
            channel=self.channel.value,
            amount=request.amount,
        )


class MemoryNotifier:
    def notify(self, notice: CustomerNotice) -> None:
        return None


def memory_activities(engine: Engine) -> RefundActivities:
    """Refund activities on the in-memory system of record (certificates read from ``engine``)."""
    store = MemoryCertificateStore(engine)
    return RefundActivities(
        store=store,
        gateways={channel: MemoryPaymentGateway(channel) for channel in PAYABLE_CHANNELS},
        authority=SandboxCertificateAuthority(engine, store),
        support=SandboxSupportDesk(engine),
        notifier=MemoryNotifier(),
        ledger=Ledger(engine),
    )
