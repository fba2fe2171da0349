"""The external systems a refund touches, as small interfaces the activities are given."""

from __future__ import annotations

from typing import Protocol

from activities.payloads import (
    CustomerNotice,
    PaymentReceipt,
    PaymentReturnRequest,
    SupportTicketRequest,
)


class PaymentGateway(Protocol):
    """Returns money to one channel. Must be idempotent on ``request.idempotency_key``."""

    def return_payment(self, request: PaymentReturnRequest) -> PaymentReceipt: ...


class CertificateAuthority(Protocol):
    """Revokes issued certificates. Must be idempotent per certificate."""

    def revoke(self, certificate_id: str, refund_id: str) -> None: ...


class SupportDesk(Protocol):
    def open_ticket(self, request: SupportTicketRequest) -> str: ...


class Notifier(Protocol):
    def notify(self, notice: CustomerNotice) -> None: ...
