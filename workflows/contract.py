"""RefundWorkflow's contract: its input, what people send it, and the status it answers.

What a client needs to start and act on a refund, and all the workflow keeps between runs.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.certificates import Certificate, Channel
from domain.decisions import Assessment, Outcome, RuleId
from domain.signatures import ActionSignature, Person, SignedAction
from domain.values import MAX_TEXT, Identifier, Text


class RefundReason(StrEnum):
    INSTALL_FAILED = "install_failed"
    VALIDATION_STUCK = "validation_stuck"
    RENEWAL_TYPE_MISMATCH = "renewal_type_mismatch"
    NO_LONGER_NEEDED = "no_longer_needed"
    OTHER = "other"


SUPPORT_REASONS = frozenset({RefundReason.INSTALL_FAILED, RefundReason.VALIDATION_STUCK})


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
    signature: ActionSignature | None = None
    """The requester's signature over the request (``request_text``), by ``refunds submit`` or the
    console: the system of record pays back only a request it can prove the customer made."""

    @model_validator(mode="after")
    def _reason_rules(self) -> RefundRequest:
        if self.reason is RefundReason.OTHER and not (self.feedback or "").strip():
            raise ValueError("reason 'other' needs feedback text")
        if self.support_contact is not None and self.reason not in SUPPORT_REASONS:
            raise ValueError(
                "a support contact goes only with reason install_failed or validation_stuck"
            )
        return self


Evidence = Literal["rules", "reviewer", "deadline", "repair", "recorded"]
"""What approves paying a refund: the rules (auto-approval), a reviewer's signed approval, the
review deadline under the ``approve`` policy, the repair order an operator recorded with
``refunds repair``, or an authorization the system of record recorded already (a reset resuming
the refund)."""

SUBMIT = "submit"
"""The action name a request's signature is made for."""


def request_text(request: RefundRequest) -> str:
    """What the requester's signature covers besides the refund id: the certificate, the reason,
    the feedback and the support contact, exactly."""
    contact = request.support_contact
    fields = [
        request.certificate_id,
        request.reason.value,
        request.feedback or "",
        f"{contact.kind}:{contact.value}" if contact else "",
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


class RefundState(StrEnum):
    SUBMITTED = "submitted"
    VALIDATING_APPLICATION = "validating_application"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"


FINAL_STATES = frozenset({RefundState.REFUNDED, RefundState.REJECTED, RefundState.CANCELLED})


class _Action(BaseModel):
    unreadable: str | None = Field(default=None, exclude=True)
    """Set only when the worker could not read what was sent (plain text where encryption keys
    are set): the action is refused with this text."""


class ApproveInput(_Action):
    """A reviewer's approval. Checked by the workflow, so an invalid one is audited, not dropped.

    Each action carries its sender's signature (``domain.signatures``): the refund believes who
    sent it only if the people directory's key proves it."""

    reviewer: str = ""
    note: str | None = None
    signature: ActionSignature | None = None


class RejectInput(_Action):
    """A reviewer's rejection; the reason is shown to the customer."""

    reviewer: str = ""
    reason: str = ""
    signature: ActionSignature | None = None


class CancelInput(_Action):
    """The requester withdrawing the request."""

    requester: str = ""
    signature: ActionSignature | None = None


class OperatorInput(_Action):
    """An operator acting on a refund that needs attention."""

    operator: str = ""
    note: str | None = None
    signature: ActionSignature | None = None


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RETRY = "retry"
    RESOLVE = "resolve"


ActionInput = ApproveInput | RejectInput | CancelInput | OperatorInput


def signed_fields(message: ActionInput) -> tuple[str, str]:
    """Who sends an action and its text, as signed: the signature covers exactly these."""
    if isinstance(message, ApproveInput):
        return str(message.reviewer), str(message.note or "")
    if isinstance(message, RejectInput):
        return str(message.reviewer), str(message.reason)
    if isinstance(message, CancelInput):
        return str(message.requester), ""
    return str(message.operator), str(message.note or "")


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    accepted: bool = True
    detail: str = ""


class LegState(StrEnum):
    PENDING = "pending"
    SETTLING = "settling"
    """The channel accepted the return; the money is on its way (a bank refund clears in days)."""
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
    accepted_at: datetime | None = None
    """When the channel accepted a return that is settling."""


class RefundStatus(BaseModel):
    """What the ``status`` query answers."""

    refund_id: str
    certificate_id: str
    requester: str
    reason: RefundReason
    feedback: str | None = None
    support_contact: SupportContact | None = None
    """For the reviewer; encrypted like every payload, never in search attributes or logs."""
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


REVIEW_CARD_MEMO = "review"
"""The memo key of a refund in review's ``ReviewCard``."""


class ReviewCard(BaseModel):
    """What the review queue shows of a refund in review, kept in the refund's memo.

    A memo is a payload, encrypted by the codec where keys are set, so one visibility listing
    serves the queue without asking each refund; the support contact and feedback stay out."""

    requester: str
    reason: RefundReason
    refund_amount: Decimal
    currency: str
    submitted_at: datetime


class ActionResult(BaseModel):
    """What an accepted review update returns."""

    refund_id: str
    action: ReviewAction
    state: RefundState
    detail: str = ""
    """Why an accepted approval was not carried out (the certificate is no longer refundable)."""


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
    people: list[Person] | None = None
    """The people directory this refund trusts (signed actions), as last loaded."""
    used_signatures: list[str] = Field(default_factory=list)
    evidence: Evidence | None = None
    approval: SignedAction | None = None


RefundRequest.model_rebuild()
