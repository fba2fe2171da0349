"""What the workflow sends its activities and gets back (besides the domain's own types)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from domain.certificates import Certificate
from domain.decisions import RuleId
from domain.signatures import SignedAction
from workflows.contract import (
    Evidence,
    LegStatus,
    RefundReason,
    RefundRequest,
    RefundState,
    SupportContact,
)


class AssessInput(BaseModel):
    certificate: Certificate
    at: datetime
    resume: bool = False
    """Only the terms: the refund resumes what an earlier run of it decided."""


class DeadlineInput(BaseModel):
    certificate: Certificate
    submitted_at: datetime


class SettlementDeadlineInput(BaseModel):
    since: datetime
    business_days: int


class DeadlineCount(BaseModel):
    """A review deadline counted again with the calendar the worker has now."""

    deadline: datetime
    official_years: list[int] = Field(default_factory=list)
    """The years of official schedule the count ran through."""


class Recheck(BaseModel):
    """The "still refundable now" check before any approval is carried out."""

    rule: RuleId | None = None
    """The rule that forbids paying now, or ``None``."""
    explanation: str = ""


class RepairClaim(BaseModel):
    refund_id: str
    certificate_id: str
    operator: str
    action: str
    run_id: str
    """The run as the workflow names it; the activity claims for the run Temporal names."""


class CancellationLookup(BaseModel):
    workflow_id: str
    run_id: str


class CancellationRequest(BaseModel):
    """Who asked Temporal to cancel a refund (the request's identity), as history records it."""

    identity: str = ""
    reason: str = ""


class CertificateChange(BaseModel):
    certificate_id: str
    refund_id: str


class PaymentReceipt(BaseModel):
    idempotency_key: str
    transaction_id: str
    channel: str
    amount: Decimal
    already_returned: bool = False
    settling: bool = False
    """The channel accepted the return and the money is on its way (``check_settlement``)."""
    accepted_at: datetime | None = None
    returned_at: datetime | None = None
    detail: str = ""
    """What the operator should know (a resolve that found the channel had paid)."""


class HoldRequest(BaseModel):
    """A refund taking its certificate's hold for the customer's signed request."""

    certificate_id: str
    refund_id: str
    request: RefundRequest


class PaymentGrant(BaseModel):
    """What the workflow shows the system of record to be authorized to pay a request."""

    certificate_id: str
    refund_id: str
    request: RefundRequest
    evidence: Evidence
    approval: SignedAction | None = None
    hold: bool = False
    """Register the request and take the certificate's hold first (an auto-approval), all in the
    authorization's transaction: refused, nothing is held."""
    """The reviewer's approval as signed (evidence ``reviewer``)."""


class LegPayment(BaseModel):
    """One leg to pay, named by ids alone: the amount, reference and channel are the order's."""

    refund_id: str
    certificate_id: str
    leg_index: int
    idempotency_key: str


class ManualSettlement(LegPayment):
    """A leg an operator returned outside the channels, with their signed resolve."""

    resolve: SignedAction | None = None
    """The operator's ``resolve`` as signed (refused without it)."""


class ManualRelease(BaseModel):
    """An operator revoked the certificate or cancelled its order outside the system."""

    certificate_id: str
    refund_id: str
    revoke: bool
    resolve: SignedAction
    """The operator's ``resolve`` as signed."""


class Settlement(BaseModel):
    """What ``check_settlement`` found of a leg that was settling."""

    status: Literal["settling", "returned", "failed"]
    transaction_id: str | None = None
    reason: str = ""
    at: datetime | None = None


class SupportTicketRequest(BaseModel):
    refund_id: str
    certificate_id: str
    reason: RefundReason
    contact: SupportContact


class CustomerNotice(BaseModel):
    refund_id: str
    certificate_id: str
    owner: str
    state: RefundState
    rule: RuleId | None = None
    currency: str = "CNY"
    legs: list[LegStatus] = Field(default_factory=list)
    message: str = ""
    settlement_days: int = 10
    """Business days a settling return may take to arrive (the refund's settlement patience)."""


class BooksSummary(BaseModel):
    """What a reconciliation found (the daily scheduled check returns it)."""

    certificates: int
    orphaned_holds: int
    divergent: int
    paid_twice: int
    missing_amount: Decimal
    certificates_to_check: list[str] = Field(default_factory=list)
    journal_problems: int = 0
    """Disagreements of the account balance's journal with itself or the ledger."""
    payments_refused: int = 0
    """Money activities the system of record refused in the last day (``refunds ledger``)."""

    @property
    def problems(self) -> int:
        missing = 1 if self.missing_amount > 0 else 0
        found = self.orphaned_holds + self.divergent + self.paid_twice + missing
        return found + self.journal_problems + self.payments_refused
