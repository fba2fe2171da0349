"""The system of record's word on money: no hold, release or payment without evidence.

Every money activity asks here before it acts, and nothing it is sent is believed but ids: the
amounts, references and channels are the order's own, read from the system of record, and a
refund may take a certificate's hold, release it or pay only with evidence checked here against
the people directory as it is now:

- the customer's signed request (``refunds submit`` or the console sign it), registered with the
  hold, fresh when registered, and never again once closed (rejected, cancelled, given back);
- then, once per request and recorded in the same transaction, what approved paying it: the rules
  recomputed on the certificate as it stood at the hold, as of the request's signature (so a
  retry past midnight is judged on the request the customer made); or a reviewer's signed
  approval; or the review deadline counted from the request having passed under the ``approve``
  policy; the last two also re-check that the certificate is still refundable.

An operator's ``refunds repair`` order, recorded here and claimed by the refund's run, completes
books an earlier run left unfinished. A manual settlement needs an operator's signed ``resolve``.
A refusal is final: the activity records it (``refunds ledger``), logs an error and counts
``refunds_payments_refused_total``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from activities.evidence import (
    AuthorityTerms,
    approval_evidence,
    authorized_by_repair,
    refuse_if,
    request_problem,
    signature_of,
)
from activities.payloads import HoldRequest, LegPayment, PaymentGrant
from domain.certificates import CertificateStatus, Channel
from domain.errors import PaymentUnauthorizedError
from domain.ledger import FAILED, REFUSED, LedgerEntry
from domain.signatures import (
    CLOCK_SKEW,
    FRESH_FOR,
    Role,
    SignedAction,
    fingerprint,
    proves,
    signer_problem,
)
from storage.certificates import CertificateStore
from storage.ledger import entry_in
from storage.payment_attempts import Attempt, attempts_of_key
from storage.people import active_person
from storage.refund_requests import (
    AUTHORIZED,
    CLOSED,
    RegisteredRequest,
    authorized_request,
    current_request,
    find_request,
    mark_held_again,
    record_authorization,
    register_request,
)
from storage.schema import payment_returns
from workflows.business_days import BusinessCalendar
from workflows.contract import RefundRequest

Clock = Callable[[str], datetime]
"""The time a refund's checks run at (a refund id in, an aware instant out)."""


def wall_clock(refund_id: str) -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LegToPay:
    """A leg the system of record allows this refund to pay now, as the order holds it."""

    refund_id: str
    certificate_id: str
    leg_index: int
    idempotency_key: str
    channel: Channel
    """The channel paying it: the leg's own, or the account balance it fell back to."""
    original_channel: Channel
    amount: Decimal
    currency: str
    reference: str
    owner: str
    returned: LedgerEntry | None = None
    """The ledger's row when the leg was already returned under its key."""
    attempts: tuple[Attempt, ...] = ()


class PaymentAuthority:
    def __init__(
        self,
        store: CertificateStore,
        terms: AuthorityTerms,
        calendar: Callable[[], BusinessCalendar],
        clock: Clock = wall_clock,
    ) -> None:
        self.store = store
        self.terms = terms
        self.calendar = calendar
        self.clock = clock

    def hold(self, hold: HoldRequest, run_id: str | None) -> CertificateStatus:
        """Register the customer's signed request and take the certificate's hold for it, for
        the workflow run ``run_id`` (as Temporal names it)."""
        with self.store.engine.begin() as conn:
            return self._hold(conn, hold.refund_id, hold.certificate_id, hold.request, run_id)

    def _hold(
        self,
        conn: Connection,
        refund_id: str,
        certificate_id: str,
        request: RefundRequest,
        run_id: str | None,
    ) -> CertificateStatus:
        signature = signature_of(request)
        if request.certificate_id != certificate_id:
            raise PaymentUnauthorizedError("the request is for another certificate")
        now = self.clock(refund_id)
        found = find_request(conn, refund_id, fingerprint(signature))
        if found is not None and found.status == CLOSED:
            raise PaymentUnauthorizedError(
                f"this request was closed on {found.closed_at:%Y-%m-%d %H:%M} UTC "
                "(rejected, cancelled or given back): a new request is needed"
            )
        if found is not None and found.status != AUTHORIZED:
            self._held_again(conn, found, now, run_id)
        if found is None:
            certificate = self.store.get_in(conn, certificate_id)
            refuse_if(request_problem(conn, refund_id, request, certificate))
            signed_at = signature.signed_at
            if not now - FRESH_FOR <= signed_at <= now + CLOCK_SKEW:
                raise PaymentUnauthorizedError(
                    f"the request was signed at {signed_at.astimezone(UTC):%Y-%m-%d %H:%M} "
                    "UTC: a request is accepted for 10 minutes after it is signed"
                )
            register_request(
                conn,
                refund_id=refund_id,
                fingerprint=fingerprint(signature),
                certificate=certificate,
                requester=request.requester,
                signed_at=signed_at,
                now=now,
                run_id=run_id,
            )
        return self.store.hold_in(conn, certificate_id, refund_id)

    def _held_again(
        self, conn: Connection, found: RegisteredRequest, now: datetime, run_id: str | None
    ) -> None:
        """An open request another run registered is held again only while it is fresh, and
        is marked: its review may have been decided in that run (a rejection the run never
        carried out), so the deadline alone may no longer approve it."""
        if found.registered_by_run in (None, run_id) or found.held_again_by_run == run_id:
            return
        if now - FRESH_FOR > found.signed_at:
            raise PaymentUnauthorizedError(
                f"this request was signed at {found.signed_at.astimezone(UTC):%Y-%m-%d %H:%M} "
                "UTC and held by another run of the refund: a new request is needed"
            )
        mark_held_again(conn, found, run_id)

    def authorize(self, grant: PaymentGrant, run_id: str | None) -> RegisteredRequest:
        """Check the evidence for paying this refund and record it, once per request."""
        refund_id = grant.refund_id
        now = self.clock(refund_id)
        with self.store.engine.begin() as conn:
            if grant.evidence == "recorded":
                return self._authorized(conn, refund_id, grant.certificate_id)
            if grant.evidence == "repair":
                return authorized_by_repair(conn, self.store, refund_id, grant.certificate_id, now)
            if grant.hold:  # an auto-approval takes the hold with its authorization
                self._hold(conn, refund_id, grant.certificate_id, grant.request, run_id)
            signature = signature_of(grant.request)
            found = find_request(conn, refund_id, fingerprint(signature))
            if found is None or found.certificate_id != grant.certificate_id:
                raise PaymentUnauthorizedError("no such request was registered with the hold")
            if found.status == AUTHORIZED:
                return found
            if found.status == CLOSED:
                raise PaymentUnauthorizedError("this request was closed: it pays nothing")
            certificate = self.store.get_in(conn, grant.certificate_id)
            if certificate.held_by != refund_id:
                raise PaymentUnauthorizedError(f"{refund_id} does not hold the certificate")
            refuse_if(request_problem(conn, refund_id, grant.request, certificate))
            approved_by, approval = approval_evidence(
                conn, grant, found, certificate, now, self.terms, self.calendar()
            )
            record_authorization(
                conn,
                found,
                evidence=grant.evidence,
                approved_by=approved_by,
                approval_fingerprint=fingerprint(approval) if approval else None,
                approval_signed_at=approval.signed_at if approval else None,
                now=now,
            )
            return find_request(conn, refund_id, found.fingerprint) or found

    def check_release(self, refund_id: str, certificate_id: str) -> None:
        """Revoking a certificate or cancelling its order needs its hold and an authorization."""
        with self.store.engine.connect() as conn:
            self._authorized(conn, refund_id, certificate_id)
            certificate = self.store.get_in(conn, certificate_id)
        if certificate.held_by != refund_id and certificate.released_by != refund_id:
            raise PaymentUnauthorizedError(f"{refund_id} does not hold the certificate")

    def leg(self, payment: LegPayment, channel: Channel | None) -> LegToPay:
        """The leg as the order holds it, if this refund may pay it now through ``channel``
        (``None``: its own)."""
        with self.store.engine.connect() as conn:
            self._authorized(conn, payment.refund_id, payment.certificate_id)
            leg = self._leg(conn, payment)
            if leg.returned is not None:
                return leg
            certificate = self.store.get_in(conn, payment.certificate_id)
            if certificate.released_by != payment.refund_id:
                raise PaymentUnauthorizedError(
                    f"{payment.refund_id} has not revoked the certificate or cancelled its "
                    "order: nothing is paid back before that"
                )
        if channel is None or channel is leg.original_channel:
            return leg
        refused = any(
            a.channel == leg.original_channel.value and a.status in (REFUSED, FAILED)
            for a in leg.attempts
        )
        fallback = channel is Channel.ACCOUNT_BALANCE and self.terms.fallback_to_balance
        if not (fallback and refused):
            raise PaymentUnauthorizedError(
                f"leg {leg.leg_index} was paid by {leg.original_channel.value}, not "
                f"{channel.value}, and no fallback to it is allowed"
            )
        return dataclasses.replace(leg, channel=channel)

    def manual(self, payment: LegPayment, resolve: SignedAction | None) -> LegToPay:
        """The leg an operator says they returned by hand, if their signed resolve proves it."""
        if resolve is None:
            raise PaymentUnauthorizedError("the resolve is not signed by an operator")
        with self.store.engine.connect() as conn:
            self._resolve_problem(conn, payment.refund_id, payment.certificate_id, resolve)
            return self._leg(conn, payment)

    def check_resolve(self, refund_id: str, certificate_id: str, resolve: SignedAction) -> None:
        """An operator's signed resolve of this refund, verified against the directory now."""
        with self.store.engine.connect() as conn:
            self._resolve_problem(conn, refund_id, certificate_id, resolve)

    def _resolve_problem(
        self, conn: Connection, refund_id: str, certificate_id: str, resolve: SignedAction
    ) -> None:
        request = self._latest_request(conn, refund_id, certificate_id)
        operator = active_person(conn, resolve.actor)
        problem = signer_problem(
            {} if operator is None else {operator.person_id: operator},
            Role.OPERATOR,
            resolve.actor,
        )
        refuse_if(problem)
        assert operator is not None
        if not proves(
            operator, refund_id, "resolve", resolve.actor, resolve.text, resolve.signature
        ):
            raise PaymentUnauthorizedError(f"the resolve is not signed by {resolve.actor}'s key")
        if resolve.signature.signed_at < request.signed_at - CLOCK_SKEW:
            raise PaymentUnauthorizedError("the resolve was signed before this request")

    def _authorized(
        self, conn: Connection, refund_id: str, certificate_id: str
    ) -> RegisteredRequest:
        found = authorized_request(conn, refund_id)
        if found is None or found.certificate_id != certificate_id:
            raise PaymentUnauthorizedError(
                f"the system of record holds no authorized request of {refund_id} for "
                f"certificate {certificate_id}"
            )
        return found

    def _latest_request(
        self, conn: Connection, refund_id: str, certificate_id: str
    ) -> RegisteredRequest:
        found = current_request(conn, refund_id)
        if found is None or found.certificate_id != certificate_id:
            raise PaymentUnauthorizedError(
                f"the system of record holds no open request of {refund_id} for "
                f"certificate {certificate_id}"
            )
        return found

    def _leg(self, conn: Connection, payment: LegPayment) -> LegToPay:
        refund_id, index, key = payment.refund_id, payment.leg_index, payment.idempotency_key
        if key != f"{refund_id}:leg-{index}":
            raise PaymentUnauthorizedError(f"{key!r} is not the key of leg {index} of {refund_id}")
        certificate = self.store.get_in(conn, payment.certificate_id)
        legs = certificate.order.payments
        if not 0 <= index < len(legs) or not legs[index].refundable:
            raise PaymentUnauthorizedError(f"the order has no refundable leg {index}")
        returned = entry_in(conn, key)
        if returned is None:
            others = conn.execute(
                select(payment_returns.c.refund_id).where(
                    payment_returns.c.certificate_id == payment.certificate_id,
                    payment_returns.c.leg_index == index,
                )
            ).scalar()
            if others is not None:
                raise PaymentUnauthorizedError(f"leg {index} was already returned by {others}")
        elif returned.refund_id != refund_id or returned.certificate_id != payment.certificate_id:
            raise PaymentUnauthorizedError(f"{key!r} was recorded for another refund")
        leg = legs[index]
        return LegToPay(
            refund_id=refund_id,
            certificate_id=payment.certificate_id,
            leg_index=index,
            idempotency_key=key,
            channel=leg.channel,
            original_channel=leg.channel,
            amount=leg.amount,
            currency=certificate.order.currency,
            reference=leg.reference,
            owner=certificate.owner,
            returned=returned,
            attempts=tuple(attempts_of_key(conn, key)),
        )
