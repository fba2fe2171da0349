"""The payment-return ledger: one row per returned leg, unique by idempotency key.

The unique key is what makes a return happen once: a second attempt with the same key finds the
first row instead of recording another. The payment activity writes it after the channel answers
(and reads it before asking again); a leg an operator settled by hand is recorded under the same
key with channel ``manual``, so it can never also be paid by a channel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from domain.ledger import LedgerEntry, Return
from storage.certificates import from_cents, to_cents
from storage.schema import payment_returns

_INSERT_RETURN = insert(payment_returns)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, returned: Return) -> tuple[LedgerEntry, bool]:
        """Record a return once; returns the entry and whether the key was already recorded."""
        values = asdict(returned)
        values["amount_cents"] = to_cents(values.pop("amount"))
        row = {"returned_at": datetime.now(UTC), **values}
        try:
            with self.engine.begin() as conn:
                conn.execute(_INSERT_RETURN, row)
        except IntegrityError:
            # The key is already recorded: by an earlier attempt, or by one running alongside.
            existing = self.find(returned.idempotency_key)
            if existing is None:
                raise
            return existing, True
        return _entry(row), False

    def find(self, idempotency_key: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            return entry_in(conn, idempotency_key)

    def entries(self, refund_id: str | None = None) -> list[LedgerEntry]:
        query = select(payment_returns).order_by(payment_returns.c.id)
        if refund_id is not None:
            query = query.where(payment_returns.c.refund_id == refund_id)
        with self.engine.connect() as conn:
            return [_entry(row) for row in conn.execute(query).mappings()]


def entry_in(conn: Connection, idempotency_key: str) -> LedgerEntry | None:
    """The ledger's row under ``idempotency_key``, read inside the caller's transaction."""
    query = select(payment_returns).where(payment_returns.c.idempotency_key == idempotency_key)
    row = conn.execute(query).mappings().first()
    return _entry(row) if row is not None else None


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
        reference=row["reference"],
        transaction_id=row["transaction_id"],
        returned_at=row["returned_at"],
    )
