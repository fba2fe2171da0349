"""Demo certificates dated relative to today, one for each path through the rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.certificates import Certificate


def _certificate(
    suffix: str,
    owner: str,
    now: datetime,
    *,
    bought_days_ago: float,
    issued_days_ago: float | None = None,
    product: str = "DV",
    free: bool = False,
    validation: str = "not_submitted",
    expires_in_days: float | None = 365,
    payments: list[dict[str, str]] | None = None,
    prefix: str = "demo",
) -> Certificate:
    issued = now - timedelta(days=issued_days_ago) if issued_days_ago is not None else None
    data: dict[str, Any] = {
        "certificate_id": f"{prefix}-{suffix}",
        "owner": owner,
        "product": product,
        "free": free,
        "validation": "validated" if issued else validation,
        "purchased_at": now - timedelta(days=bought_days_ago),
        "issued_at": issued,
        "expires_at": now + timedelta(days=expires_in_days) if expires_in_days else None,
        "order": {
            "order_id": f"{prefix}-ord-{suffix}",
            "currency": "CNY",
            "payments": payments
            if payments is not None
            else [{"channel": "alipay", "amount": "199.00", "reference": f"ali-{prefix}-{suffix}"}],
        },
    }
    return Certificate.model_validate(data)


def demo_certificates(now: datetime, prefix: str = "demo") -> list[Certificate]:
    """Certificates that exercise auto-approval, review, revocation and each kind of denial."""
    return [
        _certificate(
            "auto",
            "user-17",
            now,
            bought_days_ago=2,
            prefix=prefix,
            payments=[
                {"channel": "alipay", "amount": "199.00", "reference": f"ali-{prefix}-7781"},
                {"channel": "voucher", "amount": "50.00", "reference": f"vch-{prefix}-12"},
            ],
        ),
        _certificate("review", "user-18", now, bought_days_ago=12, product="OV", prefix=prefix),
        _certificate(
            "issued",
            "user-19",
            now,
            bought_days_ago=12,
            issued_days_ago=10,
            product="OV",
            prefix=prefix,
            payments=[
                {"channel": "bank", "amount": "1200.00", "reference": f"bank-{prefix}-551"},
                {"channel": "account_balance", "amount": "300.50", "reference": f"bal-{prefix}-9"},
            ],
        ),
        _certificate("cancel", "user-20", now, bought_days_ago=9, prefix=prefix),
        _certificate("reject", "user-21", now, bought_days_ago=20, product="EV", prefix=prefix),
        _certificate("old", "user-22", now, bought_days_ago=45, issued_days_ago=40, prefix=prefix),
        _certificate(
            "free", "user-23", now, bought_days_ago=3, free=True, payments=[], prefix=prefix
        ),
        _certificate(
            "voucher",
            "user-24",
            now,
            bought_days_ago=1,
            prefix=prefix,
            payments=[{"channel": "voucher", "amount": "99.00", "reference": f"vch-{prefix}-40"}],
        ),
        _certificate(
            "expiring", "user-25", now, bought_days_ago=200, expires_in_days=10, prefix=prefix
        ),
    ]
