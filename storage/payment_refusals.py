"""Money activities the system of record refused before any channel was called: the alert's
record, which ``refunds ledger`` shows and the daily reconciliation counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, insert, select

from domain.values import shown_id
from storage.schema import payment_refusals

REASON_LIMIT = 1000


@dataclass(frozen=True)
class Refusal:
    at: datetime
    activity: str
    refund_id: str
    leg_index: int | None
    workflow_id: str
    workflow_type: str
    reason: str


class PaymentRefusals:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        *,
        activity: str,
        refund_id: str,
        leg_index: int | None,
        workflow_id: str,
        workflow_type: str,
        reason: str,
    ) -> None:
        """Keep the refusal; every id as shown in an audit line (a caller chose them)."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(payment_refusals).values(
                    at=datetime.now(UTC),
                    activity=activity[:64],
                    refund_id=shown_id(refund_id),
                    leg_index=leg_index,
                    workflow_id=shown_id(workflow_id),
                    workflow_type=workflow_type[:256],
                    reason=reason[:REASON_LIMIT],
                )
            )

    def recent(self, limit: int = 100, refund_id: str | None = None) -> list[Refusal]:
        query = select(payment_refusals).order_by(payment_refusals.c.id.desc()).limit(limit)
        if refund_id is not None:
            query = query.where(payment_refusals.c.refund_id == refund_id)
        with self.engine.connect() as conn:
            return [
                Refusal(
                    at=row["at"],
                    activity=row["activity"],
                    refund_id=row["refund_id"],
                    leg_index=row["leg_index"],
                    workflow_id=row["workflow_id"],
                    workflow_type=row["workflow_type"],
                    reason=row["reason"],
                )
                for row in conn.execute(query).mappings()
            ]

    def count_since(self, since: timedelta) -> int:
        cutoff = datetime.now(UTC) - since
        query = select(func.count()).select_from(payment_refusals)
        with self.engine.connect() as conn:
            return int(conn.execute(query.where(payment_refusals.c.at >= cutoff)).scalar_one())
