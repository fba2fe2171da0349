"""Certificates, their orders and payment legs: loading, reading and the status changes of a refund.

Every change takes the refund id and is idempotent, so an activity retried after a crash finds the
change already made and does nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    RowMapping,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from domain.certificates import Certificate, CertificateStatus, Channel, Order, PaymentLeg
from domain.errors import (
    CertificateIssuedError,
    CertificateNotFoundError,
    SeedConflictError,
    StatusConflictError,
)
from storage.certificate_statements import (
    CANCEL_ORDER,
    CERTIFICATE_WITH_LEGS,
    HOLD,
    MARK_REFUNDED,
    RELEASED_BY,
    RESTORE,
)
from storage.refund_requests import close_requests
from storage.schema import certificates, orders, payment_legs, revocations

CENT = Decimal("0.01")


@dataclass
class SeedReport:
    inserted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def to_cents(amount: Decimal) -> int:
    return int((amount / CENT).to_integral_exact())


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) * CENT).quantize(CENT)


def _now() -> datetime:
    return datetime.now(UTC)


class CertificateStore:
    """Reads and changes certificates in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def seed(self, records: Sequence[Certificate]) -> SeedReport:
        """Load ``records`` in one transaction: all of them or, on any conflict, none."""
        report = SeedReport()
        try:
            with self.engine.begin() as conn:
                self._seed_all(conn, records, report)
        except IntegrityError as err:
            raise SeedConflictError(
                "an order id in the file is already used by another certificate"
            ) from err
        return report

    def _seed_all(
        self, conn: Connection, records: Sequence[Certificate], report: SeedReport
    ) -> None:
        for record in records:
            existing = self._read(conn, record.certificate_id)
            if existing is None:
                _refuse_shared_payments(conn, record)
                self._insert(conn, record)
                report.inserted.append(record.certificate_id)
            elif _seed_fields(existing) == _seed_fields(record):
                report.unchanged.append(record.certificate_id)
            else:
                raise SeedConflictError(
                    f"certificate {record.certificate_id} already exists with different data"
                )

    def get(self, certificate_id: str) -> Certificate:
        with self.engine.connect() as conn:
            return self.get_in(conn, certificate_id)

    def get_in(self, conn: Connection, certificate_id: str) -> Certificate:
        """``get`` inside the caller's transaction."""
        found = self._read(conn, certificate_id)
        if found is None:
            raise CertificateNotFoundError(f"no certificate {certificate_id!r}")
        return found

    def owned_by(self, owner: str, limit: int = 200) -> list[Certificate]:
        """An owner's certificates, newest purchase first (at most ``limit``)."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(certificates.c.certificate_id)
                .where(certificates.c.owner == owner)
                .order_by(certificates.c.purchased_at.desc(), certificates.c.certificate_id)
                .limit(limit)
            ).scalars()
            found = [self._read(conn, certificate_id) for certificate_id in list(ids)]
        return [certificate for certificate in found if certificate is not None]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(certificates)).scalar_one())

    def mark_refund_pending(self, certificate_id: str, refund_id: str) -> CertificateStatus:
        """Hold the certificate for ``refund_id`` while it is reviewed.

        One conditional update, so that two refunds racing for the hold cannot both win whatever
        the database's isolation level.
        """
        with self.engine.begin() as conn:
            return self.hold_in(conn, certificate_id, refund_id)

    def hold_in(self, conn: Connection, certificate_id: str, refund_id: str) -> CertificateStatus:
        """``mark_refund_pending`` inside the caller's transaction."""
        held = conn.execute(
            HOLD, {"certificate": certificate_id, "refund": refund_id, "now": _now()}
        )
        if held.rowcount == 1:
            return CertificateStatus.REFUND_PENDING
        row = self._row(conn, certificate_id)
        if row["pending_refund_id"] == refund_id:
            return CertificateStatus(row["status"])
        if row["status"] == CertificateStatus.REFUND_PENDING:
            raise StatusConflictError(
                f"certificate {certificate_id} is held by {row['pending_refund_id']}"
            )
        raise StatusConflictError(f"certificate {certificate_id} is {row['status']}")

    def restore(self, certificate_id: str, refund_id: str) -> CertificateStatus:
        """End ``refund_id``'s hold: the status from before it. Returns the status after.

        Never makes usable again a certificate that ``refund_id`` itself revoked or whose order it
        cancelled (money may be on its way back): that hold stays, and the status says
        ``refund_pending`` or ``revoked``. If another party revoked or refunded the certificate
        meanwhile, the hold ends and that status stays.
        """
        now = _now()
        values = {"certificate": certificate_id, "refund": refund_id, "now": now}
        with self.engine.begin() as conn:
            restored = conn.execute(RESTORE, values)
            row = self._row(conn, certificate_id)
            released = conn.execute(RELEASED_BY, values).first() is not None
            if restored.rowcount == 0 and row["pending_refund_id"] == refund_id and not released:
                self._set(conn, certificate_id, status_before_refund=None, pending_refund_id=None)
            if not released:  # no money can have moved: no request of this refund pays any more
                close_requests(conn, refund_id, now)
            return CertificateStatus(row["status"])

    def mark_refunded(self, certificate_id: str, refund_id: str) -> CertificateStatus:
        with self.engine.begin() as conn:
            changed = conn.execute(
                MARK_REFUNDED,
                {"certificate": certificate_id, "refund": refund_id, "now": _now()},
            )
            if changed.rowcount == 1:
                return CertificateStatus.REFUNDED
            row = self._row(conn, certificate_id)
            if row["status"] == CertificateStatus.REFUNDED:
                return CertificateStatus.REFUNDED
            raise StatusConflictError(
                f"certificate {certificate_id} is held by {row['pending_refund_id']}"
            )

    def set_status(self, conn: Connection, certificate_id: str, status: CertificateStatus) -> None:
        """Change the status inside a caller's transaction (used by the certificate authority)."""
        self._set(conn, certificate_id, status=status)

    def cancel_order(self, certificate_id: str, refund_id: str) -> str:
        """Cancel the certificate's order for ``refund_id``; returns the order id."""
        with self.engine.begin() as conn:
            cancelled = conn.execute(
                CANCEL_ORDER, {"certificate": certificate_id, "refund": refund_id, "now": _now()}
            ).scalar_one_or_none()
            if cancelled is not None:
                return str(cancelled)
            order = (
                conn.execute(select(orders).where(orders.c.certificate_id == certificate_id))
                .mappings()
                .first()
            )
            if order is None:
                raise CertificateNotFoundError(f"no order for certificate {certificate_id!r}")
            if order["status"] != "cancelled":
                raise CertificateIssuedError(
                    f"certificate {certificate_id} was issued since the decision: "
                    "it is revoked, not its order cancelled"
                )
            if order["cancelled_by"] != refund_id:
                raise StatusConflictError(
                    f"order {order['order_id']} was cancelled by {order['cancelled_by']}"
                )
            return str(order["order_id"])

    def released_by_hand(self, certificate_id: str, refund_id: str, revoke: bool) -> None:
        """Record that an operator revoked the certificate (``revoke``) or cancelled its order
        outside the system, for ``refund_id``, which holds it (once; again changes nothing)."""
        now = _now()
        with self.engine.begin() as conn:
            certificate = self.get_in(conn, certificate_id)
            if certificate.released_by == refund_id:
                return
            if certificate.held_by != refund_id or certificate.released_by is not None:
                raise StatusConflictError(
                    f"certificate {certificate_id} is not held by {refund_id} alone"
                )
            if revoke:
                conn.execute(
                    insert(revocations).values(
                        certificate_id=certificate_id, refund_id=refund_id, revoked_at=now
                    )
                )
                self._set(conn, certificate_id, status=CertificateStatus.REVOKED)
            else:
                conn.execute(
                    update(orders)
                    .where(orders.c.certificate_id == certificate_id)
                    .values(status="cancelled", cancelled_by=refund_id, cancelled_at=now)
                )

    def order_status(self, certificate_id: str) -> str:
        with self.engine.connect() as conn:
            status = conn.execute(
                select(orders.c.status).where(orders.c.certificate_id == certificate_id)
            ).scalar_one()
            return str(status)

    def _row(self, conn: Connection, certificate_id: str) -> RowMapping:
        row = _find_row(conn, certificate_id)
        if row is None:
            raise CertificateNotFoundError(f"no certificate {certificate_id!r}")
        return row

    def _set(self, conn: Connection, certificate_id: str, **values: Any) -> None:
        conn.execute(
            update(certificates)
            .where(certificates.c.certificate_id == certificate_id)
            .values(updated_at=_now(), **values)
        )

    def _read(self, conn: Connection, certificate_id: str) -> Certificate | None:
        rows = conn.execute(CERTIFICATE_WITH_LEGS, {"certificate": certificate_id}).all()
        if not rows:
            return None
        row = rows[0]
        return Certificate(
            held_by=row.pending_refund_id,
            released_by=row.revoked_by or row.cancelled_by,
            certificate_id=row.certificate_id,
            owner=row.owner,
            product=row.product,
            free=row.free,
            validation=row.validation,
            purchased_at=row.purchased_at,
            issued_at=row.issued_at,
            expires_at=row.expires_at,
            status=row.status,
            order=Order(
                order_id=row.order_id,
                currency=row.currency,
                payments=[
                    PaymentLeg(
                        channel=leg.channel,
                        amount=from_cents(leg.amount_cents),
                        reference=leg.reference,
                    )
                    for leg in rows
                    if leg.channel is not None
                ],
            ),
        )

    def _insert(self, conn: Connection, record: Certificate) -> None:
        conn.execute(
            insert(certificates).values(
                certificate_id=record.certificate_id,
                owner=record.owner,
                product=record.product.value,
                free=record.free,
                validation=record.validation.value,
                purchased_at=record.purchased_at,
                issued_at=record.issued_at,
                expires_at=record.expires_at,
                status=(record.status or CertificateStatus.PAID).value,
                updated_at=_now(),
            )
        )
        conn.execute(
            insert(orders).values(
                order_id=record.order.order_id,
                certificate_id=record.certificate_id,
                currency=record.order.currency,
                status="open",
            )
        )
        for index, leg in enumerate(record.order.payments):
            conn.execute(
                insert(payment_legs).values(
                    order_id=record.order.order_id,
                    leg_index=index,
                    channel=leg.channel.value,
                    amount_cents=to_cents(leg.amount),
                    reference=leg.reference,
                )
            )


CHANNEL_PAYMENTS = (Channel.ALIPAY, Channel.BANK)
"""Channels whose references name one payment at the channel (Alipay's ``out_trade_no``)."""


def _refuse_shared_payments(conn: Connection, record: Certificate) -> None:
    """A payment at Alipay or the bank belongs to one order: a second order naming it would
    have the channel refund one payment twice over."""
    for leg in record.order.payments:
        if leg.channel not in CHANNEL_PAYMENTS:
            continue
        taken = conn.execute(
            select(payment_legs.c.order_id).where(
                payment_legs.c.channel == leg.channel.value,
                payment_legs.c.reference == leg.reference,
            )
        ).scalar()
        if taken is not None:
            raise SeedConflictError(
                f"certificate {record.certificate_id}: {leg.channel.value} payment "
                f"{leg.reference} already belongs to order {taken}"
            )


def _find_row(conn: Connection, certificate_id: str) -> RowMapping | None:
    query = select(certificates).where(certificates.c.certificate_id == certificate_id)
    return conn.execute(query).mappings().first()


SYSTEM_FIELDS = frozenset({"status", "held_by", "released_by"})
"""What the system of record keeps about a certificate, never taken from a seed file."""


def _seed_fields(record: Certificate) -> dict[str, Any]:
    """What a seed file sets; the status is the system's own once loaded."""
    data = record.model_dump(mode="json", exclude=set(SYSTEM_FIELDS))
    for key in ("purchased_at", "issued_at", "expires_at"):
        value = getattr(record, key)
        data[key] = value.astimezone(UTC).isoformat() if value else None
    return data
