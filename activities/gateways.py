"""The external systems a refund touches, as small interfaces the activities are given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from activities.payloads import CustomerNotice, PaymentReturnRequest, SupportTicketRequest


@dataclass(frozen=True)
class ChannelTransaction:
    """A channel's answer to a return: its own id for the transaction."""

    transaction_id: str


class PaymentGateway(Protocol):
    """Returns money to one channel, and only talks to that channel.

    Must pass ``request.idempotency_key`` to the channel as the request's own id (Alipay's
    ``out_request_no``, a bank's end-to-end id), so that asking again returns the first
    transaction instead of paying twice. The payment activity records the ledger row.
    """

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction: ...


class CertificateAuthority(Protocol):
    """Revokes issued certificates. Must be idempotent per certificate."""

    def revoke(self, certificate_id: str, refund_id: str) -> None: ...


class SupportDesk(Protocol):
    def open_ticket(self, request: SupportTicketRequest) -> str: ...


class Notifier(Protocol):
    def notify(self, notice: CustomerNotice) -> None: ...
