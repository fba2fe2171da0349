"""The payment-return ledger: one row per returned leg, unique by idempotency key.

The unique key is what makes a return happen once: a second attempt with the same key finds the
first row and gets its receipt back instead of paying again. A leg an operator settled by hand is
recorded under the same key with channel ``manual``, so it can never also be paid by a channel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from activities.payloads import ManualReturn, PaymentReceipt, PaymentReturnRequest
from domain.certificates import Channel
from storage.certificates import from_cents, to_cents
from storage.schema import payment_returns

MANUAL = "manual"
_INSERT_RETURN = insert(payment_returns)


@dataclass(frozen=True)
class LedgerEntry:
    idempotency_key: str
    refund_id: str
    certificate_id: str
    leg_index: int
    channel: str
    original_channel: str
    amount: Decimal
    currency: str
    transaction_id: str
    returned_at: datetime


def receipt(entry: LedgerEntry, already_returned: bool) -> PaymentReceipt:
    """What a channel answers for ``entry``; ``already_returned`` when the key was known."""
    return PaymentReceipt(
        idempotency_key=entry.idempotency_key,
        transaction_id=entry.transaction_id,
        channel=entry.channel,
        amount=entry.amount,
        already_returned=already_returned,
    )


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, request: PaymentReturnRequest, channel: Channel | None = None
    ) -> tuple[LedgerEntry, bool]:
        """Record a return once; returns the entry and whether it already existed."""
        return self._record_once(
            request.idempotency_key,
            {
                "refund_id": request.refund_id,
                "certificate_id": request.certificate_id,
                "leg_index": request.leg_index,
                "channel": (channel or request.channel).value,
                "original_channel": request.channel.value,
                "amount_cents": to_cents(request.amount),
                "currency": request.currency,
                "reference": request.reference,
                "transaction_id": f"txn-{_digest(request.idempotency_key)}",
            },
        )

    def record_manual(self, settled: ManualReturn) -> tuple[LedgerEntry, bool]:
        """Record a leg an operator returned by hand (their note is kept in the audit trail)."""
        return self._record_once(
            settled.idempotency_key,
            {
                "refund_id": settled.refund_id,
                "certificate_id": settled.certificate_id,
                "leg_index": settled.leg_index,
                "channel": MANUAL,
                "original_channel": settled.original_channel.value,
                "amount_cents": to_cents(settled.amount),
                "currency": settled.currency,
                "reference": settled.reference,
                "transaction_id": f"manual-{_digest(settled.idempotency_key)}",
            },
        )

    def _record_once(self, key: str, values: dict[str, Any]) -> tuple[LedgerEntry, bool]:
        row = {"idempotency_key": key, "returned_at": datetime.now(UTC), **values}
        try:
            with self.engine.begin() as conn:
                conn.execute(_INSERT_RETURN, row)
        except IntegrityError:
            # The key is already recorded: by an earlier attempt, or by one running alongside.
            existing = self.find(key)
            if existing is None:
                raise
            return existing, True
        return _entry(row), False

    def find(self, idempotency_key: str) -> LedgerEntry | None:
        query = select(payment_returns).where(payment_returns.c.idempotency_key == idempotency_key)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _entry(row) if row is not None else None

    def entries(self, refund_id: str | None = None) -> list[LedgerEntry]:
        query = select(payment_returns).order_by(payment_returns.c.id)
        if refund_id is not None:
            query = query.where(payment_returns.c.refund_id == refund_id)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query).mappings()]


def _digest(idempotency_key: str) -> str:
    """A transaction id's 80-bit hex part, derived from the key (no random source to read)."""
    return hashlib.blake2b(idempotency_key.encode(), digest_size=10).hexdigest()


def _entry(row: Mapping[Any, Any]) -> LedgerEntry:
    return LedgerEntry(
        idempotency_key=row["idempotency_key"],
        refund_id=row["refund_id"],
        certificate_id=row["certificate_id"],
        leg_index=row["leg_index"],
        channel=row["channel"],
        original_channel=row["original_channel"],
        amount=from_cents(row["amount_cents"]),
        currency=row["currency"],
        transaction_id=row["transaction_id"],
        returned_at=row["returned_at"],
    )
