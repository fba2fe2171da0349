"""A certificate and its order, as the system of record holds them (the SPEC's seed shape)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.values import Identifier, Instant, Money


class Product(StrEnum):
    DV = "DV"
    OV = "OV"
    EV = "EV"


class Validation(StrEnum):
    NOT_SUBMITTED = "not_submitted"
    SUBMITTED = "submitted"
    VALIDATED = "validated"


class Channel(StrEnum):
    ALIPAY = "alipay"
    BANK = "bank"
    ACCOUNT_BALANCE = "account_balance"
    VOUCHER = "voucher"


class CertificateStatus(StrEnum):
    PAID = "paid"
    ISSUED = "issued"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
    REVOKED = "revoked"


class PaymentLeg(BaseModel):
    """One way the order was paid; each non-voucher leg is returned to its own channel."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Channel
    amount: Money
    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]

    @property
    def refundable(self) -> bool:
        return self.channel is not Channel.VOUCHER


class Order(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    order_id: Identifier
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    payments: list[PaymentLeg] = Field(default_factory=list, max_length=20)


class Certificate(BaseModel):
    """A certificate and its order, as the system of record holds them (the SPEC's seed shape)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    certificate_id: Identifier
    owner: Identifier
    product: Product
    free: bool = False
    validation: Validation
    purchased_at: Instant
    issued_at: Instant | None = None
    expires_at: Instant | None = None
    order: Order
    status: CertificateStatus | None = None
    held_by: str | None = None
    """The refund holding the certificate (``refund_pending``): the system of record's, not a
    seed file's."""
    released_by: str | None = None
    """The refund that revoked the certificate or cancelled its order, if one did."""

    @model_validator(mode="after")
    def _consistent(self) -> Certificate:
        if self.issued_at is not None:
            if self.issued_at < self.purchased_at:
                raise ValueError("issued_at is before purchased_at")
            if self.expires_at is None:
                raise ValueError("an issued certificate needs expires_at")
            if self.validation is not Validation.VALIDATED:
                raise ValueError("an issued certificate must have validation 'validated'")
        if self.expires_at is not None and self.expires_at <= self.purchased_at:
            raise ValueError("expires_at must be after purchased_at")
        if self.free and self.refundable_amount > 0:
            raise ValueError("a free certificate cannot have payments outside vouchers")
        if self.status is None:
            status = CertificateStatus.ISSUED if self.issued_at else CertificateStatus.PAID
            object.__setattr__(self, "status", status)
        return self

    @property
    def issued(self) -> bool:
        return self.issued_at is not None

    @property
    def refundable_legs(self) -> list[PaymentLeg]:
        return [leg for leg in self.order.payments if leg.refundable]

    @property
    def refundable_amount(self) -> Decimal:
        return sum((leg.amount for leg in self.refundable_legs), Decimal("0.00"))
