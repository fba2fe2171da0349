"""Each leg's return as a channel was asked for it, one row per idempotency key and channel.

The row is written before the first call (``sent``), so a later attempt knows the channel may
have the request and asks it first; then it holds the channel's answer: ``settling`` (accepted,
money on the way), ``returned``, ``refused`` (final for the channel; sending again with the same
request id is allowed and answers the same) or ``failed`` (refused after it was accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, RowMapping, select, update
from sqlalchemy.exc import IntegrityError

from domain.ledger import SENT
from storage.schema import payment_attempts

REASON_LIMIT = 500


@dataclass(frozen=True)
class Attempt:
    idempotency_key: str
    channel: str
    refund_id: str
    certificate_id: str
    leg_index: int
    request_id: str
    status: str
    transaction_id: str | None
    code: str | None
    reason: str | None
    sent_at: datetime
    accepted_at: datetime | None
    updated_at: datetime


def find_attempt(conn: Connection, idempotency_key: str, channel: str) -> Attempt | None:
    row = (
        conn.execute(
            select(payment_attempts).where(
                payment_attempts.c.idempotency_key == idempotency_key,
                payment_attempts.c.channel == channel,
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _attempt(row)


def attempts_of_key(conn: Connection, idempotency_key: str) -> list[Attempt]:
    query = select(payment_attempts).where(payment_attempts.c.idempotency_key == idempotency_key)
    return [_attempt(row) for row in conn.execute(query).mappings()]


class PaymentAttempts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def sent(
        self,
        *,
        idempotency_key: str,
        channel: str,
        refund_id: str,
        certificate_id: str,
        leg_index: int,
        request_id: str,
    ) -> None:
        """Record, before the first call, that the channel is being asked (once)."""
        now = datetime.now(UTC)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    payment_attempts.insert().values(
                        idempotency_key=idempotency_key,
                        channel=channel,
                        refund_id=refund_id,
                        certificate_id=certificate_id,
                        leg_index=leg_index,
                        request_id=request_id,
                        status=SENT,
                        sent_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return  # an attempt running alongside recorded it first

    def answered(
        self,
        idempotency_key: str,
        channel: str,
        status: str,
        *,
        transaction_id: str | None = None,
        code: str = "",
        reason: str = "",
        accepted_at: datetime | None = None,
    ) -> None:
        """Record the channel's answer (a returned leg's ledger row is written beside it)."""
        values: dict[str, object] = {
            "status": status,
            "code": code[:64] or None,
            "reason": reason[:REASON_LIMIT] or None,
            "updated_at": datetime.now(UTC),
        }
        if transaction_id is not None:
            values["transaction_id"] = transaction_id[:128]
        if accepted_at is not None:
            values["accepted_at"] = accepted_at
        with self.engine.begin() as conn:
            conn.execute(
                update(payment_attempts)
                .where(
                    payment_attempts.c.idempotency_key == idempotency_key,
                    payment_attempts.c.channel == channel,
                )
                .values(**values)
            )

    def find(self, idempotency_key: str, channel: str) -> Attempt | None:
        with self.engine.connect() as conn:
            return find_attempt(conn, idempotency_key, channel)

    def of_refund(self, refund_id: str | None = None) -> list[Attempt]:
        query = select(payment_attempts).order_by(payment_attempts.c.sent_at)
        if refund_id is not None:
            query = query.where(payment_attempts.c.refund_id == refund_id)
        with self.engine.connect() as conn:
            return [_attempt(row) for row in conn.execute(query).mappings()]


def _attempt(row: RowMapping) -> Attempt:
    return Attempt(
        idempotency_key=row["idempotency_key"],
        channel=row["channel"],
        refund_id=row["refund_id"],
        certificate_id=row["certificate_id"],
        leg_index=row["leg_index"],
        request_id=row["request_id"],
        status=row["status"],
        transaction_id=row["transaction_id"],
        code=row["code"],
        reason=row["reason"],
        sent_at=row["sent_at"],
        accepted_at=row["accepted_at"],
        updated_at=row["updated_at"],
    )
