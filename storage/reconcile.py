"""Reconciliation: per refunded certificate, what was due against what the ledger returned.

What is due comes from the system of record (the order's non-voucher legs), what was returned
from the ledger; the two are written by different code, so agreement between them is evidence.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, select

from storage.certificates import from_cents
from storage.ledger import Ledger, LedgerEntry
from storage.schema import certificates, orders, payment_legs
from workflows.models import CertificateStatus, Channel

ZERO = Decimal("0.00")


@dataclass
class RefundBalance:
    certificate_id: str
    refund_ids: list[str]
    status: str
    currency: str
    due: Decimal
    returned: Decimal
    legs_paid_twice: int

    @property
    def outcome(self) -> str:
        if self.legs_paid_twice or self.returned > self.due:
            return "paid_twice"
        if self.returned == self.due:
            return "balanced"
        if self.status == CertificateStatus.REFUNDED:
            return "missing"
        return "in_progress"

    @property
    def missing(self) -> Decimal:
        if self.status != CertificateStatus.REFUNDED:
            return ZERO
        return max(self.due - self.returned, ZERO)


@dataclass
class Reconciliation:
    balances: list[RefundBalance] = field(default_factory=list)

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


def reconcile(engine: Engine) -> Reconciliation:
    """Every certificate that is refunded or has money returned, balanced against the ledger."""
    entries = Ledger(engine).entries()
    by_certificate: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in entries:
        by_certificate[entry.certificate_id].append(entry)
    query = (
        select(
            certificates.c.certificate_id,
            certificates.c.status,
            orders.c.currency,
            payment_legs.c.channel,
            payment_legs.c.amount_cents,
        )
        .join(orders, orders.c.certificate_id == certificates.c.certificate_id)
        .join(payment_legs, payment_legs.c.order_id == orders.c.order_id, isouter=True)
    )
    due: dict[str, Decimal] = defaultdict(lambda: ZERO)
    status: dict[str, tuple[str, str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            status[row["certificate_id"]] = (row["status"], row["currency"])
            if row["channel"] not in (None, Channel.VOUCHER):
                due[row["certificate_id"]] += from_cents(row["amount_cents"])
    result = Reconciliation()
    for certificate_id, (state, currency) in sorted(status.items()):
        paid = by_certificate.get(certificate_id, [])
        if state != CertificateStatus.REFUNDED and not paid:
            continue
        legs = [entry.leg_index for entry in paid]
        result.balances.append(
            RefundBalance(
                certificate_id=certificate_id,
                refund_ids=sorted({entry.refund_id for entry in paid}),
                status=state,
                currency=currency,
                due=due[certificate_id],
                returned=sum((entry.amount for entry in paid), ZERO),
                legs_paid_twice=len(legs) - len(set(legs)),
            )
        )
    return result
