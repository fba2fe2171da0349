"""What the local Alipay simulator has refunded, in its own SQLite file (it survives restarts).

Each refund is decided and recorded in one ``BEGIN IMMEDIATE`` transaction, so two requests (or
two simulator processes on one file) can never refund a trade past its total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
)

from storage.schema import UTCDateTime

CENT = Decimal("0.01")

metadata = MetaData()

alipay_refunds = Table(
    "alipay_refunds",
    metadata,
    Column("out_trade_no", String(64), primary_key=True),
    Column("out_request_no", String(64), primary_key=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("refunded_at", UTCDateTime, nullable=False),
)


@dataclass(frozen=True)
class SimulatedRefund:
    """One refund the simulator made: the money it moved, once."""

    out_trade_no: str
    out_request_no: str
    amount: Decimal
    at: datetime


class Decision(StrEnum):
    REFUNDED = "refunded"
    REPEATED = "repeated"
    """The same request with the same amount: nothing more moves (``fund_change`` N)."""
    DISCORDANT = "discordant"
    OVER_TOTAL = "over_total"


@dataclass(frozen=True)
class RefundResult:
    decision: Decision
    refund: SimulatedRefund | None
    """The request's refund (new or earlier), if there is one."""
    refunded_total: Decimal
    """What the trade has had refunded, this request included."""


class AlipayLedger:
    """The simulator's record of refunds, one per ``(out_trade_no, out_request_no)``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _sqlite(path)
        metadata.create_all(self.engine)

    def refund(
        self, out_trade_no: str, out_request_no: str, amount: Decimal, total: Decimal, at: datetime
    ) -> RefundResult:
        """Refund ``amount`` of a trade of ``total`` under the request, unless already done."""
        cents = _cents(amount)
        with self.engine.begin() as conn:
            earlier = conn.execute(_one(out_trade_no, out_request_no)).first()
            refunded = _cents_total(conn, out_trade_no)
            if earlier is not None:
                done = _refund(earlier)
                same = int(earlier.amount_cents) == cents
                decision = Decision.REPEATED if same else Decision.DISCORDANT
                return RefundResult(decision, done, _yuan(refunded))
            if refunded + cents > _cents(total):
                return RefundResult(Decision.OVER_TOTAL, None, _yuan(refunded))
            conn.execute(
                insert(alipay_refunds).values(
                    out_trade_no=out_trade_no,
                    out_request_no=out_request_no,
                    amount_cents=cents,
                    refunded_at=at,
                )
            )
        made = SimulatedRefund(out_trade_no, out_request_no, amount.quantize(CENT), at)
        return RefundResult(Decision.REFUNDED, made, _yuan(refunded + cents))

    def find(self, out_trade_no: str, out_request_no: str) -> SimulatedRefund | None:
        with self.engine.connect() as conn:
            row = conn.execute(_one(out_trade_no, out_request_no)).first()
        return None if row is None else _refund(row)

    def refunds(self) -> list[SimulatedRefund]:
        """Every refund made, oldest first."""
        query = select(alipay_refunds).order_by(
            alipay_refunds.c.refunded_at, alipay_refunds.c.out_request_no
        )
        with self.engine.connect() as conn:
            return [_refund(row) for row in conn.execute(query)]

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _write_lock(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _one(out_trade_no: str, out_request_no: str) -> Any:
    return select(alipay_refunds).where(
        alipay_refunds.c.out_trade_no == out_trade_no,
        alipay_refunds.c.out_request_no == out_request_no,
    )


def _cents_total(conn: Any, out_trade_no: str) -> int:
    query = select(func.coalesce(func.sum(alipay_refunds.c.amount_cents), 0)).where(
        alipay_refunds.c.out_trade_no == out_trade_no
    )
    return int(conn.execute(query).scalar_one())


def _refund(row: Any) -> SimulatedRefund:
    return SimulatedRefund(
        str(row.out_trade_no),
        str(row.out_request_no),
        _yuan(int(row.amount_cents)),
        row.refunded_at,
    )


def _cents(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_exact())


def _yuan(cents: int) -> Decimal:
    return (Decimal(cents) * CENT).quantize(CENT)
