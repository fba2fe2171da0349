"""The statements behind a certificate's status changes, built once (SQLAlchemy caches them).

The names they bind are the ones passed to ``execute`` (distinct from the column names, which
SQLAlchemy reserves). Each change is one conditional statement, so that racing refunds cannot
both win whatever the database's isolation level.
"""

from __future__ import annotations

from sqlalchemy import bindparam, or_, select, update

from domain.certificates import CertificateStatus
from storage.schema import certificates, orders, payment_legs, revocations

MARK_REFUNDED = (
    update(certificates)
    .where(
        certificates.c.certificate_id == bindparam("certificate"),
        certificates.c.status != CertificateStatus.REFUNDED,
        or_(
            certificates.c.pending_refund_id.is_(None),
            certificates.c.pending_refund_id == bindparam("refund"),
        ),
    )
    .values(
        status=CertificateStatus.REFUNDED,
        status_before_refund=None,
        pending_refund_id=None,
        updated_at=bindparam("now"),
    )
)
"""Refund a certificate not already refunded nor held by another refund."""

HOLD = (
    update(certificates)
    .where(
        certificates.c.certificate_id == bindparam("certificate"),
        certificates.c.status.in_([CertificateStatus.PAID, CertificateStatus.ISSUED]),
        certificates.c.pending_refund_id.is_(None),
    )
    .values(
        status=CertificateStatus.REFUND_PENDING,
        status_before_refund=certificates.c.status,
        pending_refund_id=bindparam("refund"),
        updated_at=bindparam("now"),
    )
)
"""Hold a usable certificate no refund holds (``SET`` reads the row's old status)."""

RELEASED_BY = (
    select(orders.c.order_id)
    .where(
        orders.c.certificate_id == bindparam("certificate"),
        orders.c.cancelled_by == bindparam("refund"),
    )
    .union_all(
        select(revocations.c.certificate_id).where(
            revocations.c.certificate_id == bindparam("certificate"),
            revocations.c.refund_id == bindparam("refund"),
        )
    )
)
"""A row when the refund cancelled the certificate's order or revoked it."""

RESTORE = (
    update(certificates)
    .where(
        certificates.c.certificate_id == bindparam("certificate"),
        certificates.c.status == CertificateStatus.REFUND_PENDING,
        certificates.c.pending_refund_id == bindparam("refund"),
        ~select(orders.c.order_id)
        .where(
            orders.c.certificate_id == bindparam("certificate"),
            orders.c.cancelled_by == bindparam("refund"),
        )
        .exists(),
    )
    .values(
        status=certificates.c.status_before_refund,
        status_before_refund=None,
        pending_refund_id=None,
        updated_at=bindparam("now"),
    )
)
"""Give a held certificate back the status it had before the hold."""

CANCEL_ORDER = (
    update(orders)
    .where(
        orders.c.certificate_id == bindparam("certificate"),
        orders.c.status != "cancelled",
        ~select(certificates.c.certificate_id)
        .where(
            certificates.c.certificate_id == bindparam("certificate"),
            certificates.c.issued_at.is_not(None),
        )
        .exists(),
    )
    .values(status="cancelled", cancelled_by=bindparam("refund"), cancelled_at=bindparam("now"))
    .returning(orders.c.order_id)
)
"""Cancel an unissued certificate's order unless it is cancelled already; returns the order id
(an issued certificate is revoked instead)."""

CERTIFICATE_WITH_LEGS = (
    select(
        certificates,
        orders.c.order_id,
        orders.c.currency,
        orders.c.cancelled_by,
        revocations.c.refund_id.label("revoked_by"),
        payment_legs.c.channel,
        payment_legs.c.amount_cents,
        payment_legs.c.reference,
    )
    .join(orders, orders.c.certificate_id == certificates.c.certificate_id)
    .outerjoin(revocations, revocations.c.certificate_id == certificates.c.certificate_id)
    .outerjoin(payment_legs, payment_legs.c.order_id == orders.c.order_id)
    .where(certificates.c.certificate_id == bindparam("certificate"))
    .order_by(payment_legs.c.leg_index)
)
"""A certificate, its order, who released it and its legs (one row per leg), in one query."""
