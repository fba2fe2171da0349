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
    Column("transaction_id", String(128), nullable=False, unique=True),
    Column("returned_at", UTCDateTime, nullable=False),
)

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

refund_requests = Table(
    "refund_requests",
    metadata,
    Column("refund_id", String(128), primary_key=True),
    Column("request_fingerprint", String(64), primary_key=True),
    Column("certificate_id", String(64), nullable=False, index=True),
    Column("requester", String(64), nullable=False),
    Column("signed_at", UTCDateTime, nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("facts", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("evidence", String(16)),
    Column("approved_by", String(64)),
    Column("approval_fingerprint", String(64)),
    Column("approval_signed_at", UTCDateTime),
    Column("authorized_at", UTCDateTime),
    Column("closed_at", UTCDateTime),
    Column("registered_by_run", String(64)),
    Column("held_again_by_run", String(64)),
)
"""Each customer's signed request as the system of record registered it when its refund took the
certificate's hold (``facts``: the certificate as it stood then), and what authorized paying it:
``open``, then ``authorized`` with its evidence (the rules, a reviewer's signed approval or the
review deadline), or ``closed`` when it ended without money moving."""

payment_attempts = Table(
    "payment_attempts",
    metadata,
    Column("idempotency_key", String(200), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("refund_id", String(128), nullable=False, index=True),
    Column("certificate_id", String(64), nullable=False),
    Column("leg_index", Integer, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("transaction_id", String(128)),
    Column("code", String(64)),
    Column("reason", Text),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("accepted_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""Each leg's return as a channel was asked for it, one row per key and channel, written before
the first call: ``sent`` (no answer yet, or an unknown one), ``settling``, ``returned``,
``refused`` or ``failed`` (refused after it was accepted)."""

payment_refusals = Table(
    "payment_refusals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("activity", String(64), nullable=False),
    Column("refund_id", String(128), nullable=False),
    Column("leg_index", Integer),
    Column("workflow_id", String(256), nullable=False),
    Column("workflow_type", String(256), nullable=False),
    Column("reason", Text, nullable=False),
)
"""Every money activity the system of record refused before a channel was called: who scheduled
it, for which refund and leg, and why (``refunds ledger`` shows them)."""

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("entry_id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("refund_id", String(128), index=True),
    Column("memo", String(256), nullable=False),
    Column("reverses", Integer, ForeignKey("journal_entries.entry_id"), unique=True),
    Column("posted_at", UTCDateTime, nullable=False),
)
"""The account balance's journal: append-only entries, each once by its idempotency key; a
correction is a new entry reversing another (``reverses``), never an edit."""

journal_postings = Table(
    "journal_postings",
    metadata,
    Column("entry_id", Integer, ForeignKey("journal_entries.entry_id"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("account", String(80), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
)
"""An entry's postings, which sum to zero per currency (``refunds-payable`` to ``balance:<owner>``
for a refund)."""

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("delivery_id", String(128), primary_key=True),
    Column("source", String(16), nullable=False),
    Column("idempotency_key", String(200)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
)
"""Each verified webhook delivery, by its id: accepted once (``completed_at`` once the refund was
told), so a replayed delivery changes nothing."""
