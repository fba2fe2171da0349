"""The external systems a refund touches, as small interfaces the activities are given.

A payment channel answers a return in one of three ways (``ChannelAnswer``): *returned* (settled,
with its transaction id), *settling* (accepted, its id, the money on the way) or *refused* (final,
with the channel's own code and a reason a person can act on). A call that ends without an answer
to believe (a timeout, a reset connection, a 5xx, a response whose signature does not verify, an
ambiguous answer) raises ``ChannelUnknownError``: the money may have moved, so the next attempt
asks the channel about the same request id (``lookup``) before anything else, and never sends a
new request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from activities.payloads import CustomerNotice, SupportTicketRequest
from domain.certificates import Channel


@dataclass(frozen=True)
class ChannelRefund:
    """One leg's return as its channel is asked for it. Every field comes from the system of
    record (the order's own leg), never from a workflow's word."""

    idempotency_key: str
    """``<refund id>:leg-<n>``: the ledger's key for the leg."""
    request_id: str
    """The channel's own request id for this return, derived from the key within the channel's
    limits (``PaymentChannel.request_id``) and identical on every attempt."""
    reference: str
    """The original payment at the channel (Alipay's ``out_trade_no``, the provider's payment)."""
    amount: Decimal
    currency: str
    owner: str
    """The customer's account id (the account balance's owner; no personal data)."""
    reason: str = "SSL certificate refund"


class ChannelOutcome(StrEnum):
    RETURNED = "returned"
    SETTLING = "settling"
    REFUSED = "refused"


@dataclass(frozen=True)
class ChannelAnswer:
    outcome: ChannelOutcome
    transaction_id: str | None = None
    """The channel's id for the return (returned or settling)."""
    code: str = ""
    """The channel's own code, for a refusal (``ACQ.TRADE_NOT_EXIST``, ``account_closed``...)."""
    reason: str = ""
    """A reason a person can act on (refused), in plain words."""
    attention: bool = False
    """Refused for now, but a person can fix the cause and retry with the same request id (the
    merchant's Alipay balance is short): the leg needs attention, it does not fall back."""
    at: datetime | None = None
    """When the channel settled (returned) or accepted (settling) the return, if it says."""


class ChannelUnknownError(Exception):
    """The call ended without an answer to believe: the money may have moved. The next attempt
    looks the same request id up before anything else."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds before asking again, when the channel says (Alipay: 10 s after fund_change N)."""


class PaymentChannel(Protocol):
    """Returns money to one channel over its own protocol, and only talks to that channel."""

    channel: Channel

    def request_id(self, idempotency_key: str) -> str:
        """The channel's request id for a leg's key: deterministic, within its limits."""
        ...

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        """Ask for the return under ``order.request_id``; raises ``ChannelUnknownError``."""
        ...

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        """What the channel knows of ``order.request_id``: its answer, or ``None`` when it never
        received the request. Raises ``ChannelUnknownError`` when it cannot tell."""
        ...


class CertificateAuthority(Protocol):
    """Revokes issued certificates. Must be idempotent per certificate."""

    def revoke(self, certificate_id: str, refund_id: str) -> None: ...


class SupportDesk(Protocol):
    def open_ticket(self, request: SupportTicketRequest) -> str: ...


class Notifier(Protocol):
    def notify(self, notice: CustomerNotice) -> None: ...
