"""What the local payment provider simulator has refunded, in its own SQLite file (it survives
restarts): one row per idempotency key, with the first response it gave for that key.

A refund is decided and recorded in one ``BEGIN IMMEDIATE`` transaction, so two requests (or two
simulator processes on one file) can never refund a payment past its amount. Failed refunds give
their amount back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)

CENT = Decimal("0.01")
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

metadata = MetaData()

bank_refunds = Table(
    "bank_refunds",
    metadata,
    Column("idempotency_key", String(255), primary_key=True),
    Column("refund_id", String(40), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),
    Column("payment", String(64), nullable=False, index=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_code", String(64)),
    Column("failure_message", String(200)),
    Column("created", BigInteger, nullable=False),
    Column("settled", BigInteger),
    Column("first_response", Text, nullable=False),
    Column("notified", Boolean, nullable=False, default=False),
)
"""``amount`` in minor units (fen); ``created`` and ``settled`` in unix seconds; ``notified`` once
the settlement webhook was delivered, lost or given up on."""


@dataclass(frozen=True)
class BankRefund:
    idempotency_key: str
    refund_id: str
    payment: str
    amount: int
    currency: str
    status: str
    failure_code: str | None
    failure_message: str | None
    created: int
    settled: int | None

    def as_object(self) -> dict[str, Any]:
        """The refund object of the provider's API."""
        return {
            "id": self.refund_id,
            "idempotency_key": self.idempotency_key,
            "payment": self.payment,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "created": self.created,
            "settled": self.settled,
        }


@dataclass(frozen=True)
class SimulatedBankRefund:
    """One refund at the simulated provider, as tests and the chaos run compare it."""

    idempotency_key: str
    payment: str
    amount: Decimal
    status: str


@dataclass(frozen=True)
class StoredRefund:
    refund: BankRefund
    fingerprint: str
    """Of the payload it was made for."""
    first_response: str
    """The body of the 201 that made it, given again to the same request."""


class Creation(StrEnum):
    CREATED = "created"
    REPEATED = "repeated"
    """The same key and payload again: the first response, nothing new."""
    REUSED = "reused"
    """The key was used for another payload."""
    OVER_REFUND = "over_refund"


@dataclass(frozen=True)
class CreateResult:
    decision: Creation
    refund: BankRefund | None = None
    first_response: str | None = None


class BankLedger:
    """The simulator's refunds, one per idempotency key."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = _sqlite(path)
        metadata.create_all(self.engine)

    def create(self, refund: BankRefund, fingerprint: str, total: int, reason: str) -> CreateResult:
        """Record ``refund`` (pending) unless its key is taken or it would refund the payment
        past ``total`` (minor units); the first response is the refund as it is now."""
        first = _json(refund.as_object())
        with self.engine.begin() as conn:
            earlier = conn.execute(_by_key(refund.idempotency_key)).first()
            if earlier is not None:
                same = str(earlier.fingerprint) == fingerprint
                decision = Creation.REPEATED if same else Creation.REUSED
                return CreateResult(decision, _refund(earlier), str(earlier.first_response))
            if _refunded(conn, refund.payment) + refund.amount > total:
                return CreateResult(Creation.OVER_REFUND)
            conn.execute(
                insert(bank_refunds).values(
                    fingerprint=fingerprint,
                    reason=reason,
                    first_response=first,
                    notified=False,
                    **_row_values(refund),
                )
            )
        return CreateResult(Creation.CREATED, refund, first)

    def find(self, idempotency_key: str) -> StoredRefund | None:
        with self.engine.connect() as conn:
            row = conn.execute(_by_key(idempotency_key)).first()
        if row is None:
            return None
        return StoredRefund(_refund(row), str(row.fingerprint), str(row.first_response))

    def settle(
        self, idempotency_key: str, at: int, failure: tuple[str, str] | None
    ) -> BankRefund | None:
        """The pending refund succeeded (or failed with ``(code, message)``) at ``at``; the
        refund as settled, or ``None`` when it was not pending."""
        values: dict[str, Any] = {"status": SUCCEEDED, "settled": at}
        if failure is not None:
            values.update(status=FAILED, failure_code=failure[0], failure_message=failure[1])
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(bank_refunds)
                .where(
                    bank_refunds.c.idempotency_key == idempotency_key,
                    bank_refunds.c.status == PENDING,
                )
                .values(**values)
            ).rowcount
            row = conn.execute(_by_key(idempotency_key)).first()
        return _refund(row) if changed and row is not None else None

    def mark_notified(self, idempotency_key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(bank_refunds)
                .where(bank_refunds.c.idempotency_key == idempotency_key)
                .values(notified=True)
            )

    def pending(self) -> list[BankRefund]:
        return self._where(bank_refunds.c.status == PENDING)

    def unnotified(self) -> list[BankRefund]:
        """Settled refunds whose webhook was neither delivered nor given up on."""
        return self._where(bank_refunds.c.status != PENDING, bank_refunds.c.notified.is_(False))

    def all(self) -> list[BankRefund]:
        return self._where()

    def dispose(self) -> None:
        self.engine.dispose()

    def _where(self, *conditions: Any) -> list[BankRefund]:
        query = select(bank_refunds).where(*conditions)
        query = query.order_by(bank_refunds.c.created, bank_refunds.c.idempotency_key)
        with self.engine.connect() as conn:
            return [_refund(row) for row in conn.execute(query)]


def from_minor(amount: int) -> Decimal:
    return (Decimal(amount) * CENT).quantize(CENT)


def _sqlite(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _write_lock(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _by_key(idempotency_key: str) -> Any:
    return select(bank_refunds).where(bank_refunds.c.idempotency_key == idempotency_key)


def _refunded(conn: Any, payment: str) -> int:
    query = select(func.coalesce(func.sum(bank_refunds.c.amount), 0)).where(
        bank_refunds.c.payment == payment, bank_refunds.c.status != FAILED
    )
    return int(conn.execute(query).scalar_one())


def _row_values(refund: BankRefund) -> dict[str, Any]:
    return {
        "idempotency_key": refund.idempotency_key,
        "refund_id": refund.refund_id,
        "payment": refund.payment,
        "amount": refund.amount,
        "currency": refund.currency,
        "status": refund.status,
        "failure_code": refund.failure_code,
        "failure_message": refund.failure_message,
        "created": refund.created,
        "settled": refund.settled,
    }


def _refund(row: Any) -> BankRefund:
    return BankRefund(
        idempotency_key=str(row.idempotency_key),
        refund_id=str(row.refund_id),
        payment=str(row.payment),
        amount=int(row.amount),
        currency=str(row.currency),
        status=str(row.status),
        failure_code=None if row.failure_code is None else str(row.failure_code),
        failure_message=None if row.failure_message is None else str(row.failure_message),
        created=int(row.created),
        settled=None if row.settled is None else int(row.settled),
    )
