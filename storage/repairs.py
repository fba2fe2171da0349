"""What operators did with ``refunds repair``: one row per repair, kept with the certificate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from storage.schema import repairs

RELEASED = "released"
COMPLETION = "completion"


@dataclass(frozen=True)
class Repair:
    certificate_id: str
    refund_id: str
    action: str
    operator: str
    note: str
    at: datetime


def record_repair(
    engine: Engine, certificate_id: str, refund_id: str, action: str, operator: str, note: str
) -> Repair:
    done = Repair(certificate_id, refund_id, action, operator, note, datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(insert(repairs).values(**done.__dict__))
    return done


def repairs_of(engine: Engine, certificate_id: str) -> list[Repair]:
    query = select(repairs).where(repairs.c.certificate_id == certificate_id).order_by(repairs.c.id)
    with engine.connect() as conn:
        return [
            Repair(
                certificate_id=row["certificate_id"],
                refund_id=row["refund_id"],
                action=row["action"],
                operator=row["operator"],
                note=row["note"],
                at=row["at"],
            )
            for row in conn.execute(query).mappings()
        ]
