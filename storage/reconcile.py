"""Reconciliation: per certificate, what was due against what the ledger returned, and whether a
refund still looks after it.

What is due comes from the system of record (the order's non-voucher legs, once a refund released
the certificate or returned money), what was returned from the ledger; the two are written by
different code, so agreement between them is evidence. A refund that ended without finishing (an
operator terminated it) leaves a certificate held or half paid with no refund running: those are
``orphaned_hold``; money returned on a certificate that is not refunded is ``divergent``. Telling
them from refunds in progress needs Temporal, asked through ``is_running``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, select

from domain.certificates import CertificateStatus, Channel
from domain.ledger import LedgerEntry
from storage.certificates import from_cents
from storage.ledger import Ledger
from storage.schema import certificates, orders, payment_legs, revocations

ZERO = Decimal("0.00")
ORPHANED_HOLD = "orphaned_hold"
DIVERGENT = "divergent"


@dataclass
class RefundBalance:
    certificate_id: str
    refund_ids: list[str]
    status: str
    currency: str
    due: Decimal
    returned: Decimal
    legs_paid_twice: int
    held_by: str | None = None
    released_by: str | None = None
    running: bool | None = None
    """Whether the refund looking after the certificate runs (``None``: not asked, or moving)."""

    @property
    def refund_id(self) -> str:
        """The refund that holds, released or paid the certificate."""
        if self.held_by or self.released_by:
            return str(self.held_by or self.released_by)
        return self.refund_ids[0] if self.refund_ids else f"refund-{self.certificate_id}"

    @property
    def outcome(self) -> str:
        if self.legs_paid_twice or self.returned > self.due:
            return "paid_twice"
        if self.status == CertificateStatus.REFUND_PENDING and not self.released:
            return "held"
        if self.returned == self.due:
            return "balanced"
        if self.status == CertificateStatus.REFUNDED:
            return "missing"
        return "in_progress"

    @property
    def released(self) -> bool:
        return self.released_by is not None

    @property
    def unsettled(self) -> bool:
        """Held, released or paid, but not refunded: fine while its refund runs, else a problem."""
        return self.status != CertificateStatus.REFUNDED and (
            self.status == CertificateStatus.REFUND_PENDING or self.released or self.returned > 0
        )

    @property
    def problem(self) -> str | None:
        """``orphaned_hold``: held, or released with money still due, and no refund runs;
        ``divergent``: money returned, nothing still due or held, yet not refunded."""
        if self.running is not False or not self.unsettled:
            return None
        if self.released:
            return ORPHANED_HOLD if self.returned < self.due else DIVERGENT
        if self.status == CertificateStatus.REFUND_PENDING:
            return ORPHANED_HOLD
        return DIVERGENT

    @property
    def missing(self) -> Decimal:
        if self.status != CertificateStatus.REFUNDED:
            return ZERO
        return max(self.due - self.returned, ZERO)

    def fingerprint(self) -> tuple[object, ...]:
        return (self.status, self.held_by, self.released_by, self.returned)


@dataclass
class Reconciliation:
    balances: list[RefundBalance] = field(default_factory=list)
    running_known: bool = False
    """Whether orphans were looked for (Temporal was asked which refunds run)."""

    @property
    def paid_twice(self) -> int:
        return sum(1 for b in self.balances if b.outcome == "paid_twice")

    @property
    def missing_amount(self) -> Decimal:
        return sum((b.missing for b in self.balances), ZERO)

    @property
    def returned(self) -> Decimal:
        return sum((b.returned for b in self.balances), ZERO)

    @property
    def due(self) -> Decimal:
        return sum((b.due for b in self.balances), ZERO)

    @property
    def orphaned_holds(self) -> int | None:
        return self._count(ORPHANED_HOLD)

    @property
    def divergent(self) -> int | None:
        return self._count(DIVERGENT)

    def _count(self, problem: str) -> int | None:
        if not self.running_known:
            return None
        return sum(1 for b in self.balances if b.problem == problem)

    def only(self, certificate_ids: set[str]) -> Reconciliation:
        kept = [b for b in self.balances if b.certificate_id in certificate_ids]
        return Reconciliation(kept, self.running_known)


def reconcile(engine: Engine, certificate_id: str | None = None) -> Reconciliation:
    """Every certificate a refund touched (refunded, held, released or paid), against the ledger."""
    entries = Ledger(engine).entries()
    by_certificate: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        by_certificate[entry.certificate_id].append(entry)
    query = (
        select(
            certificates.c.certificate_id,
            certificates.c.status,
            certificates.c.pending_refund_id,
            orders.c.currency,
            orders.c.cancelled_by,
            revocations.c.refund_id.label("revoked_by"),
            payment_legs.c.channel,
            payment_legs.c.amount_cents,
        )
        .join(orders, orders.c.certificate_id == certificates.c.certificate_id)
        .outerjoin(revocations, revocations.c.certificate_id == certificates.c.certificate_id)
        .outerjoin(payment_legs, payment_legs.c.order_id == orders.c.order_id)
    )
    if certificate_id is not None:
        query = query.where(certificates.c.certificate_id == certificate_id)
    refundable: dict[str, Decimal] = defaultdict(lambda: ZERO)
    rows: dict[str, dict[str, str | None]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            rows[row["certificate_id"]] = dict(row)
            if row["channel"] not in (None, Channel.VOUCHER):
                refundable[row["certificate_id"]] += from_cents(int(row["amount_cents"]))
    result = Reconciliation()
    for cert_id, found in sorted(rows.items()):
        paid = by_certificate.get(cert_id, [])
        status = str(found["status"])
        released_by = found["revoked_by"] or found["cancelled_by"]
        held_by = found["pending_refund_id"]
        touched = status in (CertificateStatus.REFUNDED, CertificateStatus.REFUND_PENDING)
        if not (touched or released_by or paid):
            continue
        owed = status == CertificateStatus.REFUNDED or released_by is not None or bool(paid)
        legs = [entry.leg_index for entry in paid]
        result.balances.append(
            RefundBalance(
                certificate_id=cert_id,
                refund_ids=sorted({entry.refund_id for entry in paid}),
                status=status,
                currency=str(found["currency"]),
                due=refundable[cert_id] if owed else ZERO,
                returned=sum((entry.amount for entry in paid), ZERO),
                legs_paid_twice=len(legs) - len(set(legs)),
                held_by=held_by,
                released_by=released_by,
            )
        )
    return result


RunningCheck = Callable[[str], Awaitable[bool]]
"""Whether the refund with this id has a running workflow (asked of Temporal)."""


async def reconcile_with_refunds(
    engine: Engine, is_running: RunningCheck, certificate_id: str | None = None
) -> Reconciliation:
    """``reconcile``, with each unsettled certificate's refund asked whether it still runs.

    The books are read again after asking: a certificate that changed meanwhile belongs to a refund
    that is moving, so it is not called an orphan.
    """
    first = reconcile(engine, certificate_id)
    asked = {
        b.certificate_id: (b.fingerprint(), await is_running(b.refund_id))
        for b in first.balances
        if b.unsettled
    }
    second = reconcile(engine, certificate_id)
    second.running_known = True
    for balance in second.balances:
        seen = asked.get(balance.certificate_id)
        if balance.unsettled and seen is not None and seen[0] == balance.fingerprint():
            balance.running = seen[1]
    return second
