"""A system of record held in memory, for measuring the refund engine without its database.

``bench.worker refund --store memory`` gives the refund activities these stand-ins: the same
activity bodies, logging and error mapping, but certificates read once when the worker starts and
the certificate, order, payment, ledger and notice writes answered as the database would answer a
first attempt, with nothing recorded (revocations, repair orders and support tickets, off the
auto-refund path, still go to the database). Never for production: nothing is once-only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from activities.gateways import ChannelTransaction
from activities.payloads import CustomerNotice, PaymentReturnRequest
from activities.simulated import SimulatedCertificateAuthority, SimulatedSupportDesk
from domain.certificates import Certificate, CertificateStatus, Channel
from domain.errors import CertificateNotFoundError
from domain.ledger import LedgerEntry, Return
from storage.certificates import CertificateStore
from storage.ledger import Ledger
from storage.people import PeopleDirectory
from storage.repairs import RepairOrders
from storage.schema import certificates
from wiring import PAYABLE_CHANNELS, Collaborators


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


class MemoryLedger(Ledger):
    """Nothing recorded before, every record a first one."""

    def find(self, idempotency_key: str) -> LedgerEntry | None:
        return None

    def record(self, returned: Return) -> tuple[LedgerEntry, bool]:
        return LedgerEntry(**returned.__dict__, returned_at=datetime.now(UTC)), False


class MemoryPaymentGateway:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction:
        return ChannelTransaction(f"memory-{request.idempotency_key}")


class MemoryNotifier:
    def notify(self, notice: CustomerNotice) -> None:
        return None


def memory_collaborators(engine: Engine) -> Collaborators:
    """The in-memory system of record (certificates read from ``engine``)."""
    store = MemoryCertificateStore(engine)
    return Collaborators(
        store=store,
        ledger=MemoryLedger(engine),
        repairs=RepairOrders(engine),
        gateways={channel: MemoryPaymentGateway(channel) for channel in PAYABLE_CHANNELS},
        authority=SimulatedCertificateAuthority(engine, store),
        support=SimulatedSupportDesk(engine),
        notifier=MemoryNotifier(),
        people=PeopleDirectory(engine),
    )
