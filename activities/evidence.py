"""The evidence for paying a request, judged in the system of record's transaction: the request
is the owner's own, signed by their key; and what approved paying it (the rules recomputed as of
the request's signature, a reviewer's signed approval, or the review deadline under ``approve``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from activities.payloads import PaymentGrant
from domain.certificates import Certificate
from domain.decisions import Outcome
from domain.errors import PaymentUnauthorizedError
from domain.signatures import CLOCK_SKEW, ActionSignature, Role, proves, signer_problem
from storage.people import active_person
from storage.refund_requests import RegisteredRequest
from workflows.business_days import BusinessCalendar
from workflows.contract import SUBMIT, RefundRequest, request_text
from workflows.policy import evaluate, review_deadline, still_refundable


@dataclass(frozen=True)
class AuthorityTerms:
    """What the worker's configuration says, never the caller."""

    timezone: str
    timeout_action: str
    fallback_to_balance: bool


def request_problem(
    conn: Connection, refund_id: str, request: RefundRequest, certificate: Certificate
) -> str | None:
    """Why the request is not the owner's own, signed by their key as the directory holds it
    now, or ``None``."""
    signature = signature_of(request)
    if request.requester != certificate.owner:
        return f"{request.requester} does not own certificate {certificate.certificate_id}"
    person = active_person(conn, request.requester)
    if person is None:
        return f"{request.requester} is not in the people directory"
    if not proves(person, refund_id, SUBMIT, request.requester, request_text(request), signature):
        return f"the request is not signed by {request.requester}'s key"
    return None


def approval_evidence(
    conn: Connection,
    grant: PaymentGrant,
    found: RegisteredRequest,
    certificate: Certificate,
    now: datetime,
    terms: AuthorityTerms,
    calendar: BusinessCalendar,
) -> tuple[str, ActionSignature | None]:
    """Who approved paying, and their signature: the evidence of ``grant.evidence``, the rules
    recomputed on the certificate as it stood at the hold as of the request's signature, and the
    certificate still refundable when the approval was given; raises
    ``PaymentUnauthorizedError``."""
    try:
        decision = evaluate(
            found.facts, found.signed_at, timezone=terms.timezone, calendar=calendar
        )
    except ValueError as err:
        raise PaymentUnauthorizedError(f"the rules cannot judge this request: {err}") from None
    if grant.evidence == "rules":
        if decision.outcome is not Outcome.AUTO_APPROVE:
            raise PaymentUnauthorizedError(
                f"the rules at the request's time say {decision.outcome.value} "
                f"({decision.rule.value}), not auto_approve"
            )
        return "rules", None
    if decision.outcome is not Outcome.MANUAL_REVIEW:
        raise PaymentUnauthorizedError(
            f"the rules at the request's time say {decision.outcome.value} "
            f"({decision.rule.value}): there was nothing to review"
        )
    if grant.evidence == "deadline":
        approver, signature, as_of = (
            "review-deadline",
            None,
            _deadline_passed(found, now, terms, calendar),
        )
    else:
        approver, signature, as_of = _reviewer_approval(conn, grant, found, certificate, now)
    # Judged as of the approval, as the workflow judged it: a payment retried later stays due.
    still = still_refundable(certificate, as_of, timezone=terms.timezone)
    if still is not None:
        raise PaymentUnauthorizedError(f"no longer refundable when approved: {still[1]}")
    return approver, signature


def _deadline_passed(
    found: RegisteredRequest, now: datetime, terms: AuthorityTerms, calendar: BusinessCalendar
) -> datetime:
    """The review deadline computed from the signed request, if it has passed under
    ``approve``."""
    if terms.timeout_action != "approve":
        raise PaymentUnauthorizedError("the review deadline's policy is reject")
    if found.held_again_by_run is not None:
        raise PaymentUnauthorizedError(
            "the refund was started again while the request was in review, and its review may "
            "have been decided before: the deadline alone cannot approve it, a reviewer must"
        )
    deadline, _ = review_deadline(
        found.facts, found.signed_at, timezone=terms.timezone, calendar=calendar
    )
    if now < deadline:
        raise PaymentUnauthorizedError(
            f"the review deadline ({deadline.astimezone(UTC):%Y-%m-%d %H:%M} UTC) has not passed"
        )
    return deadline


def _reviewer_approval(
    conn: Connection,
    grant: PaymentGrant,
    found: RegisteredRequest,
    certificate: Certificate,
    now: datetime,
) -> tuple[str, ActionSignature, datetime]:
    """The reviewer, their verified signature and when they signed it."""
    approval = grant.approval
    if approval is None:
        raise PaymentUnauthorizedError("no reviewer's signed approval was given")
    reviewer = active_person(conn, approval.actor)
    people = {} if reviewer is None else {reviewer.person_id: reviewer}
    refuse_if(signer_problem(people, Role.REVIEWER, approval.actor))
    assert reviewer is not None
    if approval.actor in (found.requester, certificate.owner):
        raise PaymentUnauthorizedError("reviewers may not approve their own request")
    signed_at = approval.signature.signed_at
    if not found.signed_at - CLOCK_SKEW <= signed_at <= now + CLOCK_SKEW:
        raise PaymentUnauthorizedError("the approval was not signed for this request")
    if not proves(
        reviewer,
        grant.refund_id,
        "approve",
        approval.actor,
        approval.text,
        approval.signature,
    ):
        raise PaymentUnauthorizedError(f"the approval is not signed by {approval.actor}'s key")
    return approval.actor, approval.signature, min(signed_at, now)


def signature_of(request: RefundRequest) -> ActionSignature:
    if request.signature is None:
        raise PaymentUnauthorizedError(
            "the request is not signed: `refunds submit` signs it with the requester's key"
        )
    return request.signature


def refuse_if(problem: str | None) -> None:
    if problem is not None:
        raise PaymentUnauthorizedError(problem)
