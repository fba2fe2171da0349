"""The evidence for paying a request, judged in the system of record's transaction: the request
is the owner's own, signed by their key; and what approved paying it (the rules recomputed as of
the request's signature, a reviewer's signed approval, the review deadline under ``approve``, or
an operator's recorded repair order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from activities.payloads import PaymentGrant
from domain.certificates import Certificate
from domain.decisions import Outcome
from domain.errors import PaymentUnauthorizedError, StatusConflictError
from domain.signatures import CLOCK_SKEW, ActionSignature, Role, proves, signer_problem
from storage.certificates import CertificateStore
from storage.people import active_person
from storage.refund_requests import (
    RegisteredRequest,
    authorized_request,
    find_request,
    record_authorization,
    register_request,
)
from storage.repairs import claimed_completion
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


def authorized_by_repair(
    conn: Connection, store: CertificateStore, refund_id: str, certificate_id: str, now: datetime
) -> RegisteredRequest:
    """An operator's ``refunds repair`` completes books an earlier run left unfinished: the order
    is the system of record's own row, claimed by this refund's run, and its operator is an
    operator in the directory now. The order takes the certificate's hold if no refund holds it
    (books that paid on a certificate still usable). Recorded as the refund's authorization."""
    found = authorized_request(conn, refund_id)
    if found is not None and found.certificate_id == certificate_id:
        return found
    order = claimed_completion(conn, refund_id, certificate_id)
    if order is None:
        raise PaymentUnauthorizedError(
            f"no repair order of {refund_id} for certificate {certificate_id} was recorded "
            "and claimed"
        )
    person = active_person(conn, order.operator)
    if person is None or person.role is not Role.OPERATOR:
        raise PaymentUnauthorizedError(f"{order.operator} is not an operator in the directory")
    certificate = store.get_in(conn, certificate_id)
    if certificate.held_by != refund_id and certificate.released_by != refund_id:
        try:
            store.hold_in(conn, certificate_id, refund_id)
        except StatusConflictError as err:
            raise PaymentUnauthorizedError(str(err)) from None
    mark = f"repair-{order.at:%Y%m%dT%H%M%S%f}"
    register_request(
        conn,
        refund_id=refund_id,
        fingerprint=mark,
        certificate=certificate,
        requester=certificate.owner,
        signed_at=order.at,
        now=now,
        run_id=order.claimed_by_run,
    )
    registered = find_request(conn, refund_id, mark)
    assert registered is not None
    record_authorization(
        conn,
        registered,
        evidence="repair",
        approved_by=order.operator,
        approval_fingerprint=None,
        approval_signed_at=order.at,
        now=now,
    )
    return find_request(conn, refund_id, mark) or registered
