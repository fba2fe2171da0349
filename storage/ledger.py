"""The payment-return ledger: one row per returned leg, unique by idempotency key.

The unique key is what makes a return happen once: a second attempt with the same key finds the
first row and gets its receipt back instead of paying again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from storage.certificates import from_cents, to_cents
from storage.schema import payment_returns
from workflows.models import Channel, PaymentReturnRequest


@dataclass(frozen=True)
class LedgerEntry:
    idempotency_key: str
    refund_id: str
    certificate_id: str
    leg_index: int
    channel: Channel
    original_channel: Channel
    amount: Decimal
    currency: str
    transaction_id: str
    returned_at: datetime


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, request: PaymentReturnRequest, channel: Channel | None = None
    ) -> tuple[LedgerEntry, bool]:
        """Record a return once; returns the entry and whether it already existed."""
        existing = self.find(request.idempotency_key)
        if existing is not None:
            return existing, True
        values = {
            "idempotency_key": request.idempotency_key,
            "refund_id": request.refund_id,
            "certificate_id": request.certificate_id,
            "leg_index": request.leg_index,
            "channel": (channel or request.channel).value,
            "original_channel": request.channel.value,
            "amount_cents": to_cents(request.amount),
            "currency": request.currency,
            "reference": request.reference,
            "transaction_id": f"txn-{uuid.uuid4().hex[:20]}",
            "returned_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(payment_returns).values(**values))
        except IntegrityError:
            # Another attempt recorded the same key between our read and our write.
            raced = self.find(request.idempotency_key)
            if raced is None:
                raise
            return raced, True
        entry = self.find(request.idempotency_key)
        assert entry is not None
        return entry, False

    def find(self, idempotency_key: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    select(payment_returns).where(
                        payment_returns.c.idempotency_key == idempotency_key
                    )
                )
                .mappings()
                .first()
            )
        return _entry(row) if row is not None else None

    def entries(self, refund_id: str | None = None) -> list[LedgerEntry]:
        query = select(payment_returns).order_by(payment_returns.c.id)
        if refund_id is not None:
            query = query.where(payment_returns.c.refund_id == refund_id)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query).mappings()]


def _entry(row: object) -> LedgerEntry:
    data = dict(row)  # type: ignore[call-overload]
    return LedgerEntry(
        idempotency_key=data["idempotency_key"],
        refund_id=data["refund_id"],
        certificate_id=data["certificate_id"],
        leg_index=data["leg_index"],
        channel=Channel(data["channel"]),
        original_channel=Channel(data["original_channel"]),
        amount=from_cents(data["amount_cents"]),
        currency=data["currency"],
        transaction_id=data["transaction_id"],
        returned_at=data["returned_at"],
    )
