"""What the simulated channels know of the payments they are asked to return: the legs the system
of record holds for their channel, as the real Alipay or provider knows its own trades."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine, select

from domain.certificates import Channel
from storage.certificates import from_cents
from storage.schema import orders, payment_legs


@dataclass(frozen=True)
class KnownPayment:
    """One payment at the channel: its reference (Alipay's ``out_trade_no``), total and currency."""

    reference: str
    amount: Decimal
    currency: str


PaymentLookup = Callable[[str], KnownPayment | None]
"""The channel's payment with this reference, or ``None`` when it has none."""


def payments_of(engine: Engine, channel: Channel) -> PaymentLookup:
    """Look payments of ``channel`` up in the system of record at ``engine``."""
    query = (
        select(payment_legs.c.amount_cents, orders.c.currency)
        .join(orders, orders.c.order_id == payment_legs.c.order_id)
        .where(payment_legs.c.channel == channel.value)
    )

    def lookup(reference: str) -> KnownPayment | None:
        with engine.connect() as conn:
            row = conn.execute(query.where(payment_legs.c.reference == reference)).first()
        if row is None:
            return None
        return KnownPayment(reference, from_cents(int(row.amount_cents)), str(row.currency))

    return lookup
