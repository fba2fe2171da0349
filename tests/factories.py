"""Certificates and payment returns for tests, built relative to a chosen instant."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from domain.certificates import Certificate, Channel
from domain.ledger import Return, digest

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def certificate(
    certificate_id: str = "cas-test",
    *,
    purchased_at: datetime,
    issued_at: datetime | None = None,
    expires_at: datetime | str | None = "default",
    validation: str | None = None,
    product: str = "DV",
    free: bool = False,
    payments: list[dict[str, str]] | None = None,
    owner: str = "user-1",
    status: str | None = None,
) -> Certificate:
    if expires_at == "default":
        expires_at = (issued_at or purchased_at) + timedelta(days=365)
    data: dict[str, Any] = {
        "certificate_id": certificate_id,
        "owner": owner,
        "product": product,
        "free": free,
        "validation": validation or ("validated" if issued_at else "not_submitted"),
        "purchased_at": purchased_at,
        "issued_at": issued_at,
        "expires_at": expires_at,
        "order": {
            "order_id": f"ord-{certificate_id}",
            "currency": "CNY",
            "payments": payments
            if payments is not None
            else [
                {"channel": "alipay", "amount": "199.00", "reference": f"ali-{certificate_id}"},
                {"channel": "voucher", "amount": "50.00", "reference": f"vch-{certificate_id}"},
            ],
        },
    }
    if status is not None:
        data["status"] = status
    return Certificate.model_validate(data)


def seed_record(cert: Certificate) -> dict[str, Any]:
    """The JSON a seed file holds for ``cert``."""
    return cert.model_dump(mode="json", exclude={"status", "held_by", "released_by"})


def alipay_return(refund_id: str, certificate_id: str, leg: int, amount: str = "100.00") -> Return:
    """Leg ``leg`` of a refund returned to Alipay, as the ledger records it under its key."""
    key = f"{refund_id}:leg-{leg}"
    return Return(
        idempotency_key=key,
        refund_id=refund_id,
        certificate_id=certificate_id,
        leg_index=leg,
        channel=Channel.ALIPAY.value,
        original_channel=Channel.ALIPAY.value,
        amount=Decimal(amount),
        currency="CNY",
        reference=f"ali-{leg}",
        transaction_id=f"alipay-{digest(key)}",
    )


BANK_REFUSES = "bank-dead"
"""A bank reference to pass to ``fault_reject``: that channel refuses the return for good."""


def refused_by_bank(certificate_id: str, purchased_at: datetime) -> Certificate:
    """Bought a day or so ago, paid 300.00 by bank: with ``fault_reject=[BANK_REFUSES]`` the
    refund is granted at once and needs attention when the bank refuses."""
    return certificate(
        certificate_id,
        purchased_at=purchased_at,
        payments=[{"channel": "bank", "amount": "300.00", "reference": BANK_REFUSES}],
    )
