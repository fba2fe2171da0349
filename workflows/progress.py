"""One refund's progress: what the ``status`` query shows and what a continued run carries over.

Plain state and bookkeeping, no Temporal calls but the clock and the Web UI's current details, so
the workflow's paths and its payment steps share one record of the refund.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from temporalio import workflow

from domain.certificates import Certificate
from domain.decisions import Assessment, Decision
from domain.signatures import Person, SignedAction
from workflows.audit import AuditTrail, bounded
from workflows.contract import (
    CarriedState,
    Evidence,
    LegState,
    LegStatus,
    RefundRequest,
    RefundState,
    RefundStatus,
    ReviewCard,
)


@dataclass
class RefundProgress:
    refund_id: str
    request: RefundRequest
    submitted_at: datetime
    state: RefundState = RefundState.SUBMITTED
    certificate: Certificate | None = None
    assessment: Assessment | None = None
    legs: list[LegStatus] = field(default_factory=list)
    audit: AuditTrail = field(default_factory=AuditTrail)
    certificate_released: bool = False
    decided_by: str | None = None
    rejection_reason: str | None = None
    attention_reason: str | None = None
    review_started: datetime | None = None
    revoke: bool | None = None
    """Whether paying this refund revokes the certificate (decided when money starts to move)."""
    decision_pending: bool = False
    """A review decision (or the deadline) was taken and is being carried out."""
    people: dict[str, Person] | None = None
    """The people directory this refund trusts (signed actions), once read."""
    used_signatures: list[str] = field(default_factory=list)
    evidence: Evidence = "recorded"
    """What approved paying (patch v6), shown to the system of record before anything moves."""
    approval: SignedAction | None = None
    """The reviewer's approval as signed, when a reviewer approved."""

    @classmethod
    def carried_over(cls, refund_id: str, request: RefundRequest) -> RefundProgress:
        carried = request.carried
        assert carried is not None
        return cls(
            refund_id=refund_id,
            request=request.model_copy(update={"carried": None}),
            submitted_at=carried.submitted_at,
            state=carried.state,
            certificate=carried.certificate,
            assessment=carried.assessment,
            legs=list(carried.legs),
            audit=AuditTrail(carried.audit, carried.refused_not_recorded, carried.audit_omitted),
            certificate_released=carried.certificate_released,
            decided_by=carried.decided_by,
            attention_reason=carried.attention_reason,
            review_started=carried.review_started,
            revoke=carried.revoke,
            people=None
            if carried.people is None
            else {person.person_id: person for person in carried.people},
            used_signatures=list(carried.used_signatures),
            evidence=carried.evidence or "recorded",
            approval=carried.approval,
        )

    def carry(self) -> RefundRequest:
        """The input of a new run that goes on from here."""
        assert self.certificate is not None and self.assessment is not None
        return self.request.model_copy(
            update={
                "carried": CarriedState(
                    state=self.state,
                    submitted_at=self.submitted_at,
                    certificate=self.certificate,
                    assessment=self.assessment,
                    legs=self.legs,
                    audit=self.audit.entries,
                    refused_not_recorded=self.audit.refusals_not_recorded,
                    audit_omitted=self.audit.omitted,
                    certificate_released=self.certificate_released,
                    decided_by=self.decided_by,
                    attention_reason=self.attention_reason,
                    review_started=self.review_started,
                    revoke=self.revoke,
                    people=None if self.people is None else list(self.people.values()),
                    used_signatures=self.used_signatures,
                    evidence=self.evidence,
                    approval=self.approval,
                )
            }
        )

    @property
    def decision(self) -> Decision | None:
        return self.assessment.decision if self.assessment else None

    def record(self, actor: str, action: str, accepted: bool = True, detail: str = "") -> None:
        self.audit.record(workflow.now(), actor, action, accepted, detail)

    def record_at(self, at: datetime, actor: str, action: str, accepted: bool, detail: str) -> None:
        self.audit.record(at, actor, action, accepted, detail)

    def reject_because(self, reason: str) -> None:
        self.rejection_reason = bounded(reason)

    def needs_attention_because(self, reason: str) -> None:
        self.attention_reason = bounded(reason) if reason else None

    def update_leg(self, index: int, **changes: Any) -> None:
        self.legs[index] = self.legs[index].model_copy(update=changes)
        workflow.set_current_details(self.details())

    def close_unpaid_legs(self, detail: str) -> None:
        for leg in self.legs:
            if leg.status is LegState.PENDING:
                self.update_leg(leg.index, status=LegState.NOT_REFUNDABLE, detail=detail)

    def status(self) -> RefundStatus:
        decision = self.decision
        request = self.request
        return RefundStatus(
            refund_id=self.refund_id,
            certificate_id=request.certificate_id,
            requester=request.requester,
            reason=request.reason,
            feedback=request.feedback,
            support_contact=request.support_contact,
            state=self.state,
            decision_pending=self.state is RefundState.VALIDATING_APPLICATION
            and self.decision_pending,
            outcome=decision.outcome if decision else None,
            rule=decision.rule if decision else None,
            explanation=decision.explanation if decision else "",
            refund_amount=decision.refund_amount if decision else self._legs_due(),
            currency=self.certificate.order.currency if self.certificate else "CNY",
            submitted_at=self.submitted_at,
            review_deadline=self.assessment.review_deadline if self.assessment else None,
            decided_by=self.decided_by,
            rejection_reason=self.rejection_reason,
            attention_reason=self.attention_reason,
            warnings=decision.warnings if decision else [],
            legs=list(self.legs),
            audit=list(self.audit.entries),
            refused_not_recorded=self.audit.refusals_not_recorded,
            audit_omitted=self.audit.omitted,
        )

    def review_card(self) -> ReviewCard:
        decision = self.decision
        return ReviewCard(
            requester=self.request.requester,
            reason=self.request.reason,
            refund_amount=decision.refund_amount if decision else self._legs_due(),
            currency=self.certificate.order.currency if self.certificate else "CNY",
            submitted_at=self.submitted_at,
        )

    def _legs_due(self) -> Decimal:
        due = (leg.amount for leg in self.legs if leg.status is not LegState.NOT_REFUNDABLE)
        return sum(due, Decimal("0.00"))

    def details(self) -> str:
        """Markdown for the Web UI's current details."""
        lines = [f"**{self.state.value}**"]
        decision = self.decision
        if decision is not None:
            lines.append(
                f"rule `{decision.rule.value}`: {decision.refund_amount} {decision.currency}"
            )
        deadline = self.assessment.review_deadline if self.assessment else None
        if deadline is not None and self.state is RefundState.VALIDATING_APPLICATION:
            lines.append(f"review deadline {deadline:%Y-%m-%d %H:%M} (UTC{deadline:%z})")
        for leg in self.legs:
            lines.append(f"- {leg.channel.value} {leg.amount}: {leg_state(leg)}")
        if self.attention_reason:
            lines.append(f"needs attention: {self.attention_reason}")
        return "\n".join(lines)


def leg_state(leg: LegStatus) -> str:
    """A leg's state as a person reads it: ``accepted, settling since …`` while it clears."""
    if leg.status is LegState.SETTLING and leg.accepted_at is not None:
        return f"accepted, settling since {leg.accepted_at:%Y-%m-%d %H:%M} UTC"
    return leg.status.value
