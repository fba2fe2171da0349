"""What operators did with ``refunds repair``: one row per repair, kept with the certificate.

The row is written before the repair run starts, and the run claims it: a repair order sent to
Temporal by anyone else finds no row to claim and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, RowMapping, insert, select, update

from storage.schema import repairs

RELEASED = "release"
COMPLETION = "complete"
NOT_STARTED = "not started"
CLAIM_WINDOW = timedelta(minutes=10)
"""How long a recorded repair order waits for its run to claim it."""


@dataclass(frozen=True)
class Repair:
    certificate_id: str
    refund_id: str
    action: str
    operator: str
    note: str
    at: datetime
    claimed_by_run: str | None = None


class RepairOrders:
    """The repair orders of one system of record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self, certificate_id: str, refund_id: str, action: str, operator: str, note: str
    ) -> int:
        """Record an operator's repair order; returns its row id."""
        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert(repairs).values(
                    certificate_id=certificate_id,
                    refund_id=refund_id,
                    action=action,
                    operator=operator,
                    note=note,
                    at=datetime.now(UTC),
                )
            )
            key = inserted.inserted_primary_key
            assert key is not None
            return int(key[0])

    def abandon(self, repair_id: int) -> None:
        """The run could not start: the order must never be claimed by a later one."""
        with self.engine.begin() as conn:
            conn.execute(
                update(repairs)
                .where(repairs.c.id == repair_id, repairs.c.claimed_by_run.is_(None))
                .values(claimed_by_run=NOT_STARTED)
            )

    def claim(
        self,
        refund_id: str,
        certificate_id: str,
        operator: str,
        action: str,
        run_id: str,
        now: datetime | None = None,
    ) -> bool:
        """Claim the latest unclaimed matching order recorded within ``CLAIM_WINDOW`` for
        ``run_id`` (true again for the same run, so a retried activity agrees)."""
        since = (now or datetime.now(UTC)) - CLAIM_WINDOW
        match = (
            repairs.c.refund_id == refund_id,
            repairs.c.certificate_id == certificate_id,
            repairs.c.operator == operator,
            repairs.c.action == action,
        )
        with self.engine.begin() as conn:
            latest = (
                select(repairs.c.id)
                .where(*match, repairs.c.claimed_by_run.is_(None), repairs.c.at >= since)
                .order_by(repairs.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            claimed = conn.execute(
                update(repairs)
                .where(repairs.c.id == latest, repairs.c.claimed_by_run.is_(None))
                .values(claimed_by_run=run_id)
            )
            if claimed.rowcount == 1:
                return True
            mine = select(repairs.c.id).where(*match, repairs.c.claimed_by_run == run_id)
            return conn.execute(mine).first() is not None

    def of(self, certificate_id: str) -> list[Repair]:
        """Every repair order of ``certificate_id``, oldest first."""
        query = (
            select(repairs).where(repairs.c.certificate_id == certificate_id).order_by(repairs.c.id)
        )
        with self.engine.connect() as conn:
            return [_repair(row) for row in conn.execute(query).mappings()]


def claimed_completion(conn: Connection, refund_id: str, certificate_id: str) -> Repair | None:
    """The latest order to complete the books of ``refund_id`` that a run claimed, if any."""
    row = (
        conn.execute(
            select(repairs)
            .where(
                repairs.c.refund_id == refund_id,
                repairs.c.certificate_id == certificate_id,
                repairs.c.action == COMPLETION,
                repairs.c.claimed_by_run.is_not(None),
                repairs.c.claimed_by_run != NOT_STARTED,
            )
            .order_by(repairs.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return None if row is None else _repair(row)


def _repair(row: RowMapping) -> Repair:
    return Repair(
        certificate_id=row["certificate_id"],
        refund_id=row["refund_id"],
        action=row["action"],
        operator=row["operator"],
        note=row["note"],
        at=row["at"],
        claimed_by_run=row["claimed_by_run"],
    )
