"""What the workflow sends its activities and gets back (besides the domain's own types)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.certificates import Certificate, Channel
from domain.decisions import RuleId
from domain.values import Money
from workflows.contract import LegStatus, RefundReason, RefundState, SupportContact


class ManualReturn(BaseModel):
    """A leg an operator returned outside the payment channels, for the ledger."""

    refund_id: str
    certificate_id: str
    leg_index: int
    original_channel: Channel
    amount: Money
    currency: str
    reference: str
    idempotency_key: str
    operator: str
    note: str


class AssessInput(BaseModel):
    certificate: Certificate
    at: datetime
    resume: bool = False
    """Only the terms: the refund resumes what an earlier run of it decided."""


class DeadlineInput(BaseModel):
    certificate: Certificate
    submitted_at: datetime


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


class PaymentReturnRequest(BaseModel):
    refund_id: str
    certificate_id: str
    leg_index: int
    channel: Channel
    amount: Money
    currency: str
    reference: str
    idempotency_key: str


class PaymentReceipt(BaseModel):
    idempotency_key: str
    transaction_id: str
    channel: str
    amount: Decimal
    already_returned: bool = False


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


class BooksSummary(BaseModel):
    """What a reconciliation found (the daily scheduled check returns it)."""

    certificates: int
    orphaned_holds: int
    divergent: int
    paid_twice: int
    missing_amount: Decimal
    certificates_to_check: list[str] = Field(default_factory=list)

    @property
    def problems(self) -> int:
        missing = 1 if self.missing_amount > 0 else 0
        return self.orphaned_holds + self.divergent + self.paid_twice + missing
