"""What the chaos run asks for: a mix of certificates and what reviewers do with them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from domain.certificates import Certificate
from domain.signatures import Role

Plan = Literal["auto", "approve", "reject", "cancel", "race"]
CHANNELS = ("alipay", "bank", "account_balance")
REVIEWERS = "chaos-rev-1,chaos-rev-2"
OPERATOR = "chaos-ops"


@dataclass(frozen=True)
class Case:
    certificate: Certificate
    plan: Plan
    fault: Literal["none", "closed", "dead"]


def people(cases: list[Case]) -> dict[Role, list[str]]:
    """Who acts in the run: its reviewers, its operator and every certificate's owner."""
    owners = sorted({case.certificate.owner for case in cases})
    return {Role.REVIEWER: REVIEWERS.split(","), Role.OPERATOR: [OPERATOR], Role.CUSTOMER: owners}


def make_cases(count: int, now: datetime, rng: random.Random) -> list[Case]:
    cases = []
    for index in range(count):
        kind = rng.random()
        reviewed: list[Plan] = ["approve", "reject", "cancel", "race"]
        plan: Plan = "auto" if kind < 0.4 else rng.choices(reviewed, [6, 2, 1, 1])[0]
        fault_roll = rng.random()
        fault = "closed" if fault_roll < 0.06 else "dead" if fault_roll < 0.09 else "none"
        cases.append(Case(_certificate(index, plan, fault, now, rng), plan, fault))  # type: ignore[arg-type]
    return cases


def _certificate(
    index: int, plan: Plan, fault: str, now: datetime, rng: random.Random
) -> Certificate:
    cert_id = f"chaos-{index:05d}"
    issued = plan != "auto" and rng.random() < 0.5
    bought = now - timedelta(days=1 if plan == "auto" else 12)
    legs = []
    for leg_index, channel in enumerate(rng.sample(CHANNELS, rng.randint(1, 3))):
        cents = rng.randint(1, 500_000)
        reference = f"{channel[:3]}-{index}-{leg_index}"
        if channel in ("alipay", "bank") and fault == "closed":
            reference = f"closed-{index}-{leg_index}"
        if fault == "dead" and leg_index == 0:
            reference = f"dead-{index}"
        legs.append(
            {"channel": channel, "amount": str(Decimal(cents) / 100), "reference": reference}
        )
    if rng.random() < 0.3:
        legs.append({"channel": "voucher", "amount": "10.00", "reference": f"vch-{index}"})
    return Certificate.model_validate(
        {
            "certificate_id": cert_id,
            "owner": f"customer-{index}",
            "product": rng.choice(["DV", "OV", "EV"]),
            "validation": "validated" if issued else "not_submitted",
            "purchased_at": bought,
            "issued_at": bought + timedelta(days=2) if issued else None,
            "expires_at": now + timedelta(days=300),
            "order": {"order_id": f"chaos-ord-{index:05d}", "currency": "CNY", "payments": legs},
        }
    )


def fault_settings(cases: list[Case]) -> str:
    """``REFUNDS_FAULT_REJECT``: closed Alipay accounts (the fallback to the balance pays them)
    and dead references: Alipay answers that the merchant's balance is short (a person must act:
    the operator resolves it), the provider that the payment cannot be refunded (the fallback
    pays it)."""
    refused = []
    for case in cases:
        for leg in case.certificate.order.payments:
            if leg.reference.startswith("closed-") and leg.channel.value == "alipay":
                refused.append(f"alipay:{leg.reference}")
            if leg.reference.startswith("dead-") and leg.channel.value == "alipay":
                refused.append(f"alipay:{leg.reference}=ACQ.SELLER_BALANCE_NOT_ENOUGH")
            elif leg.reference.startswith("dead-") and leg.channel.value == "bank":
                refused.append(f"bank:{leg.reference}")
    return ",".join(refused)


def settlement_failures(cases: list[Case]) -> str:
    """``REFUNDS_FAULT_SETTLEMENT_FAIL``: bank refunds accepted, then failed (a closed account)."""
    return ",".join(
        leg.reference
        for case in cases
        for leg in case.certificate.order.payments
        if leg.channel.value == "bank" and leg.reference.startswith("closed-")
    )
