"""Tables of the system of record. Amounts are stored as whole cents, times as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        converted = value.astimezone(UTC)
        return converted.replace(tzinfo=None) if dialect.name == "sqlite" else converted

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

certificates = Table(
    "certificates",
    metadata,
    Column("certificate_id", String(64), primary_key=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("product", String(8), nullable=False),
    Column("free", Boolean, nullable=False),
    Column("validation", String(16), nullable=False),
    Column("purchased_at", UTCDateTime, nullable=False),
    Column("issued_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("status", String(16), nullable=False),
    Column("status_before_refund", String(16)),
    Column("pending_refund_id", String(128)),
    Column("updated_at", UTCDateTime, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column(
        "certificate_id",
        String(64),
        ForeignKey("certificates.certificate_id"),
        nullable=False,
        unique=True,
    ),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False, default="open"),
    Column("cancelled_by", String(128)),
    Column("cancelled_at", UTCDateTime),
)

payment_legs = Table(
    "payment_legs",
    metadata,
    Column("order_id", String(64), ForeignKey("orders.order_id"), primary_key=True),
    Column("leg_index", Integer, primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reference", String(64), nullable=False),
)

payment_returns = Table(
    "payment_returns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("refund_id", String(128), nullable=False, index=True),
    Column("certificate_id", String(64), nullable=False),
    Column("leg_index", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("original_channel", String(16), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("transaction_id", String(64), nullable=False, unique=True),
    Column("returned_at", UTCDateTime, nullable=False),
)

simulated_channel_returns = Table(
    "simulated_channel_returns",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("request_id", String(200), primary_key=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("transaction_id", String(64), nullable=False, unique=True),
    Column("returned_at", UTCDateTime, nullable=False),
)
"""What the simulated payment channels returned, one row per channel and request id."""

revocations = Table(
    "revocations",
    metadata,
    Column("certificate_id", String(64), primary_key=True),
    Column("refund_id", String(128), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=False),
)

repairs = Table(
    "repairs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("certificate_id", String(64), nullable=False, index=True),
    Column("refund_id", String(128), nullable=False),
    Column("action", String(16), nullable=False),
    Column("operator", String(64), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("claimed_by_run", String(64)),
)
"""What operators did with ``refunds repair`` to refunds that ended without finishing; the repair
run claims its row (a workflow started with a repair order and no row does nothing)."""

people = Table(
    "people",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("public_key", String(64), nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
)
"""Who may act on refunds, with the public half of their signing key (``refunds people``)."""

console_accounts = Table(
    "console_accounts",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("failed_sign_ins", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("sessions_valid_from", UTCDateTime, nullable=False),
)
"""A person's console password (an Argon2 hash, never the password), their lockout, and since when
their sessions count (a password change or a sign-out ends every earlier one)."""

support_tickets = Table(
    "support_tickets",
    metadata,
    Column("refund_id", String(128), primary_key=True),
    Column("certificate_id", String(64), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("contact_kind", String(16), nullable=False),
    Column("contact_value", String(64), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("refund_id", String(128), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    UniqueConstraint("refund_id", "state", name="uq_notification_once"),
)
