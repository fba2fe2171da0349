"""What the rules say about a certificate, and the terms a refund is reviewed and paid under."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain.certificates import PaymentLeg
from domain.values import Amount


class Outcome(StrEnum):
    AUTO_APPROVE = "auto_approve"
    MANUAL_REVIEW = "manual_review"
    DENIED = "denied"


class RuleId(StrEnum):
    """The SPEC's stable rule ids, in the order they are checked."""

    ALREADY_REFUNDED = "already-refunded"
    FREE_DV = "free-dv"
    VOUCHER_ONLY = "voucher-only"
    EXPIRED = "expired"
    NEAR_EXPIRY = "near-expiry"
    ISSUED_OVER_28_DAYS = "issued-over-28-days"
    ISSUED_WITHIN_28_DAYS = "issued-within-28-days"
    UNISSUED_VALIDATED = "unissued-validated"
    UNISSUED_WITHIN_5_DAYS = "unissued-within-5-days"
    UNISSUED_AFTER_5_DAYS = "unissued-after-5-days"


class Decision(BaseModel):
    """What the rules say about one certificate at one moment, and why."""

    model_config = ConfigDict(frozen=True)

    certificate_id: str
    outcome: Outcome
    rule: RuleId
    explanation: str
    refund_amount: Amount
    currency: str
    legs: list[PaymentLeg]
    warnings: list[str] = Field(default_factory=list)
    evaluated_at: AwareDatetime
    days_since_purchase: int
    days_since_issue: int | None = None
    days_until_expiry: int | None = None
    revoke_required: bool = False


class Assessment(BaseModel):
    """The rule decision plus the review terms, recorded once in history by a local activity."""

    decision: Decision | None
    """``None`` when a refund resumes what an earlier run of it started (the rules had decided)."""
    review_deadline: datetime | None = None
    timeout_action: Literal["approve", "reject"] = "approve"
    reviewers: list[str] = Field(default_factory=list)
    operators: list[str] = Field(default_factory=list)
    fallback_to_balance: bool = False
    payment_patience_seconds: float | None = None
    """How long a payment or revocation may keep failing before a person is asked (None: ever)."""
    history_event_limit: int | None = None
    history_bytes_limit: int | None = None
    """Past either, a refund waiting for a person continues as new (None: never)."""
    settlement_poll_seconds: float | None = None
    """How often a settling leg is asked about, in case its webhook was lost."""
    settlement_patience_days: int | None = None
    """Business days a leg may stay settling before the refund needs attention."""
