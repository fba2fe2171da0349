"""Pydantic models: the certificate record, rule decisions, and the workflow's inputs and outputs.

Every model here crosses a Temporal boundary or the system of record, so amounts are ``Decimal``
(floats are refused), times are timezone-aware, and identifiers are checked before they reach a
workflow id.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

MAX_TEXT = 2000
MAX_ID = 64
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
"""Ids of certificates, orders and people: at most 64 characters of a safe alphabet."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The range a certificate's times and a rule check's instant must fall in."""


SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


def id_problem(value: str, what: str, limit: int = MAX_ID) -> str | None:
    """Why ``value`` is not a valid id (one line, never echoing the value), or ``None``."""
    if not value.strip():
        return f"no {what} id was given"
    if len(value) > limit:
        return f"the {what} id is longer than {limit} characters"
    if not SAFE_ID.fullmatch(value):
        return f"the {what} id may hold only letters, digits, '.', '_', ':' and '-'"
    return None


SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._:-")


def shown_id(value: str) -> str:
    """``value`` fit for an audit line: 64 characters at most, unsafe characters as '?'."""
    kept = "".join(c if c in SAFE_CHARACTERS else "?" for c in value[:MAX_ID])
    return kept + ("…" if len(value) > MAX_ID else "") if kept else "unknown"


def time_problem(value: datetime) -> str | None:
    """Why an aware instant is out of the supported range, or ``None``."""
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        return "lies outside the years 2000 to 2199"
    if not EARLIEST <= instant < LATEST:
        return "lies outside the years 2000 to 2199"
    return None


def _in_range(value: datetime) -> datetime:
    problem = time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
"""A timezone-aware time between 2000 and 2199 (UTC), so date arithmetic cannot overflow."""


def _refuse_float(value: object) -> object:
    if isinstance(value, bool | float):
        raise ValueError('amounts are decimal strings such as "199.00", never floats')
    return value


def _two_places(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError("amount has more than 2 decimal places")
    return value.quantize(Decimal("0.01"))


Money = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    Field(gt=0, max_digits=14),
    AfterValidator(_two_places),
]
"""A positive amount with at most two decimal places."""

Amount = Annotated[
    Decimal, BeforeValidator(_refuse_float), Field(ge=0), AfterValidator(_two_places)
]
"""A non-negative amount (a total that may be zero)."""

Identifier = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=ID_PATTERN.pattern),
]
"""Ids of certificates, orders, users: safe in a workflow id and a log line."""

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


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


class RefundReason(StrEnum):
    INSTALL_FAILED = "install_failed"
    VALIDATION_STUCK = "validation_stuck"
    RENEWAL_TYPE_MISMATCH = "renewal_type_mismatch"
    NO_LONGER_NEEDED = "no_longer_needed"
    OTHER = "other"


SUPPORT_REASONS = frozenset({RefundReason.INSTALL_FAILED, RefundReason.VALIDATION_STUCK})


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


MOBILE = re.compile(r"^1[3-9]\d{9}$")
DINGTALK = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{2,63}$")


class SupportContact(BaseModel):
    """How technical support reaches the customer: a DingTalk id or a mainland mobile number."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["mobile", "dingtalk"]
    value: str

    @classmethod
    def parse(cls, raw: str) -> SupportContact:
        text = raw.strip()
        if text.lower().startswith("dingtalk:"):
            return cls(kind="dingtalk", value=text.split(":", 1)[1].strip())
        digits = re.sub(r"[\s-]", "", text)
        if digits.startswith("+86"):
            digits = digits[3:]
        elif digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        if digits.isdigit():
            return cls(kind="mobile", value=digits)
        return cls(kind="dingtalk", value=text)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: object) -> object:
        if isinstance(data, str):
            parsed = cls.parse(data)
            return {"kind": parsed.kind, "value": parsed.value}
        return data

    @model_validator(mode="after")
    def _valid(self) -> SupportContact:
        if self.kind == "mobile" and not MOBILE.match(self.value):
            raise ValueError(
                "a mobile number must be a mainland number: 11 digits starting with 13-19"
            )
        if self.kind == "dingtalk" and not DINGTALK.match(self.value):
            raise ValueError(
                "a DingTalk id is 3-64 letters, digits, '_', '.' or '-', starting with a letter"
            )
        return self

    def masked(self) -> str:
        """A form safe to show in lists and logs."""
        if self.kind == "mobile":
            return f"{self.value[:3]}****{self.value[-4:]}"
        return f"{self.value[:2]}***"


class RepairOrder(BaseModel):
    """An operator settling what a refund that ended without finishing (terminated) left: release
    its hold, or complete the books. Valid only with the order ``refunds repair`` recorded in the
    system of record, which the workflow claims before acting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["release", "complete"] = "complete"
    operator: Identifier
    note: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)
    ]


class RefundRequest(BaseModel):
    """The customer's request: the workflow's one input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    certificate_id: Identifier
    requester: Identifier
    reason: RefundReason
    feedback: Text | None = None
    support_contact: SupportContact | None = None
    repair: RepairOrder | None = None
    """Set by ``refunds repair``: pay what is still due, without the rules or a review."""
    carried: CarriedState | None = None
    """Set when a refund continues as new: where the previous run left off."""

    @model_validator(mode="after")
    def _reason_rules(self) -> RefundRequest:
        if self.reason is RefundReason.OTHER and not (self.feedback or "").strip():
            raise ValueError("reason 'other' needs feedback text")
        if self.support_contact is not None and self.reason not in SUPPORT_REASONS:
            raise ValueError(
                "a support contact goes only with reason install_failed or validation_stuck"
            )
        return self


class RefundState(StrEnum):
    SUBMITTED = "submitted"
    VALIDATING_APPLICATION = "validating_application"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"


FINAL_STATES = frozenset({RefundState.REFUNDED, RefundState.REJECTED, RefundState.CANCELLED})


class ApproveInput(BaseModel):
    """A reviewer's approval. Checked by the workflow, so an invalid one is audited, not dropped."""

    reviewer: str = ""
    note: str | None = None


class RejectInput(BaseModel):
    """A reviewer's rejection; the reason is shown to the customer."""

    reviewer: str = ""
    reason: str = ""


class CancelInput(BaseModel):
    """The requester withdrawing the request."""

    requester: str = ""


class OperatorInput(BaseModel):
    """An operator acting on a refund that needs attention."""

    operator: str = ""
    note: str | None = None


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


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"
    RESOLVE = "resolve"


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    accepted: bool = True
    detail: str = ""


class LegState(StrEnum):
    PENDING = "pending"
    RETURNED = "returned"
    RETURNED_MANUALLY = "returned_manually"
    FAILED = "failed"
    NOT_REFUNDABLE = "not_refundable"


SETTLED_LEG_STATES = frozenset(
    {LegState.RETURNED, LegState.RETURNED_MANUALLY, LegState.NOT_REFUNDABLE}
)


class LegStatus(BaseModel):
    index: int
    channel: Channel
    amount: Decimal
    reference: str
    status: LegState
    idempotency_key: str | None = None
    transaction_id: str | None = None
    returned_via: Channel | None = None
    detail: str = ""


class RefundStatus(BaseModel):
    """What the ``status`` query answers."""

    refund_id: str
    certificate_id: str
    requester: str
    reason: RefundReason
    feedback: str | None = None
    state: RefundState
    decision_pending: bool = False
    """A review decision (or the deadline) was taken and is being carried out."""
    outcome: Outcome | None = None
    rule: RuleId | None = None
    explanation: str = ""
    refund_amount: Decimal = Decimal("0.00")
    currency: str = "CNY"
    submitted_at: datetime
    review_deadline: datetime | None = None
    decided_by: str | None = None
    rejection_reason: str | None = None
    attention_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)
    legs: list[LegStatus] = Field(default_factory=list)
    audit: list[AuditEntry] = Field(default_factory=list)
    refused_not_recorded: int = 0
    """Refused actions past the first 50, counted but not kept (the status stays small)."""
    audit_omitted: int = 0
    """Older audit entries dropped to keep the trail bounded (after the first 20)."""


class ActionResult(BaseModel):
    """What an accepted review update returns."""

    refund_id: str
    action: ReviewAction
    state: RefundState
    detail: str = ""
    """Why an accepted approval was not carried out (the certificate is no longer refundable)."""


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


class AssessInput(BaseModel):
    certificate: Certificate
    at: datetime
    resume: bool = False
    """Only the terms: the refund resumes what an earlier run of it decided."""


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


class CarriedState(BaseModel):
    """A refund's progress, carried into a new run when its history grows too long."""

    state: RefundState
    submitted_at: datetime
    certificate: Certificate
    assessment: Assessment
    legs: list[LegStatus]
    audit: list[AuditEntry]
    refused_not_recorded: int = 0
    audit_omitted: int = 0
    certificate_released: bool = False
    decided_by: str | None = None
    attention_reason: str | None = None
    review_started: datetime | None = None
    revoke: bool | None = None


RefundRequest.model_rebuild()
