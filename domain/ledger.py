"""A payment return as the ledger records it: once per idempotency key (``<refund id>:leg-<n>``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

MANUAL = "manual"
"""The ledger's channel for a leg an operator settled outside the payment channels."""

SENT, SETTLING, RETURNED, REFUSED, FAILED = "sent", "settling", "returned", "refused", "failed"
"""A payment attempt's states at its channel: asked (no answer yet, or none to believe),
accepted and settling, returned, refused, or refused after it was accepted."""


@dataclass(frozen=True)
class Return:
    """A leg returned to a channel (or settled by hand), to be recorded under its key."""

    idempotency_key: str
    refund_id: str
    certificate_id: str
    leg_index: int
    channel: str
    original_channel: str
    amount: Decimal
    currency: str
    reference: str
    transaction_id: str


@dataclass(frozen=True)
class LedgerEntry(Return):
    """A recorded return, and when it was recorded."""

    returned_at: datetime


def manual_transaction_id(idempotency_key: str) -> str:
    """The ledger's own transaction id for a leg settled by hand (no channel issued one)."""
    return f"manual-{digest(idempotency_key)}"


def digest(key: str) -> str:
    """An 80-bit hex digest of ``key``: stable ids derived without a random source."""
    return hashlib.blake2b(key.encode(), digest_size=10).hexdigest()
