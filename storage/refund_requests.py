"""Customers' signed requests as the system of record registered them, and what authorized paying
each one.

A request is registered as its refund takes the certificate's hold, with the certificate as it
stood then (``facts``): the rules are recomputed on those facts as of the request's signature, so a
payment retried past midnight, or after the certificate changed, is judged on the request the
customer made. A request is ``open``, then ``authorized`` once (with its evidence), or ``closed``
when its refund gave the certificate back with no money moved; a closed request never opens again.
Each function takes the caller's connection, so a check and its record share one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Engine, RowMapping, insert, select, update

from domain.certificates import Certificate
from storage.schema import refund_requests

OPEN, AUTHORIZED, CLOSED = "open", "authorized", "closed"
Evidence = Literal["rules", "reviewer", "deadline", "repair"]


@dataclass(frozen=True)
class RegisteredRequest:
    refund_id: str
    fingerprint: str
    certificate_id: str
    requester: str
    signed_at: datetime
    registered_at: datetime
    facts: Certificate
    status: str
    evidence: str | None = None
    approved_by: str | None = None
    authorized_at: datetime | None = None
    closed_at: datetime | None = None
    registered_by_run: str | None = None
    """The workflow run that registered the request (from Temporal, not the workflow's word)."""
    held_again_by_run: str | None = None
    """Another run of the refund that took the hold for it again (a reset, or a refund started
    again while in review): its review may have been decided in the run before."""


def find_request(conn: Connection, refund_id: str, fingerprint: str) -> RegisteredRequest | None:
    row = (
        conn.execute(
            select(refund_requests).where(
                refund_requests.c.refund_id == refund_id,
                refund_requests.c.request_fingerprint == fingerprint,
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else _request(row)


def authorized_request(conn: Connection, refund_id: str) -> RegisteredRequest | None:
    """The request of ``refund_id`` that the system of record authorized to pay, if any."""
    row = (
        conn.execute(
            select(refund_requests)
            .where(refund_requests.c.refund_id == refund_id, refund_requests.c.status == AUTHORIZED)
            .order_by(refund_requests.c.authorized_at.desc())
        )
        .mappings()
        .first()
    )
    return None if row is None else _request(row)


def current_request(conn: Connection, refund_id: str) -> RegisteredRequest | None:
    """The request of ``refund_id`` that is still open or authorized (at most one is)."""
    row = (
        conn.execute(
            select(refund_requests)
            .where(refund_requests.c.refund_id == refund_id, refund_requests.c.status != CLOSED)
            .order_by(refund_requests.c.registered_at.desc())
        )
        .mappings()
        .first()
    )
    return None if row is None else _request(row)


def register_request(
    conn: Connection,
    *,
    refund_id: str,
    fingerprint: str,
    certificate: Certificate,
    requester: str,
    signed_at: datetime,
    now: datetime,
    run_id: str | None,
) -> None:
    """Register an open request (the caller checked its signature); earlier open requests of the
    same refund id are closed, superseded (only one request of a refund is ever open)."""
    conn.execute(
        update(refund_requests)
        .where(refund_requests.c.refund_id == refund_id, refund_requests.c.status == OPEN)
        .values(status=CLOSED, closed_at=now)
    )
    conn.execute(
        insert(refund_requests).values(
            refund_id=refund_id,
            request_fingerprint=fingerprint,
            certificate_id=certificate.certificate_id,
            requester=requester,
            signed_at=signed_at,
            registered_at=now,
            facts=certificate.model_dump_json(),
            status=OPEN,
            registered_by_run=run_id,
        )
    )


def mark_held_again(conn: Connection, request: RegisteredRequest, run_id: str | None) -> None:
    """Another run of the refund took the hold for ``request`` again."""
    conn.execute(
        update(refund_requests)
        .where(
            refund_requests.c.refund_id == request.refund_id,
            refund_requests.c.request_fingerprint == request.fingerprint,
        )
        .values(held_again_by_run=run_id)
    )


def record_authorization(
    conn: Connection,
    request: RegisteredRequest,
    *,
    evidence: Evidence,
    approved_by: str,
    approval_fingerprint: str | None,
    approval_signed_at: datetime | None,
    now: datetime,
) -> bool:
    """Mark an open request authorized with its evidence; ``False`` if it was no longer open."""
    changed = conn.execute(
        update(refund_requests)
        .where(
            refund_requests.c.refund_id == request.refund_id,
            refund_requests.c.request_fingerprint == request.fingerprint,
            refund_requests.c.status == OPEN,
        )
        .values(
            status=AUTHORIZED,
            evidence=evidence,
            approved_by=approved_by,
            approval_fingerprint=approval_fingerprint,
            approval_signed_at=approval_signed_at,
            authorized_at=now,
        )
    )
    return changed.rowcount == 1


def close_requests(conn: Connection, refund_id: str, now: datetime) -> None:
    """The refund gave the certificate back with no money moved: none of its requests pays."""
    conn.execute(
        update(refund_requests)
        .where(refund_requests.c.refund_id == refund_id, refund_requests.c.status != CLOSED)
        .values(status=CLOSED, closed_at=now)
    )


class RefundRequests:
    """Read access for the books (``refunds certificate``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def of_certificate(self, certificate_id: str) -> list[RegisteredRequest]:
        query = (
            select(refund_requests)
            .where(refund_requests.c.certificate_id == certificate_id)
            .order_by(refund_requests.c.registered_at)
        )
        with self.engine.connect() as conn:
            return [_request(row) for row in conn.execute(query).mappings()]


def _request(row: RowMapping) -> RegisteredRequest:
    return RegisteredRequest(
        refund_id=row["refund_id"],
        fingerprint=row["request_fingerprint"],
        certificate_id=row["certificate_id"],
        requester=row["requester"],
        signed_at=row["signed_at"],
        registered_at=row["registered_at"],
        facts=Certificate.model_validate_json(row["facts"]),
        status=row["status"],
        evidence=row["evidence"],
        approved_by=row["approved_by"],
        authorized_at=row["authorized_at"],
        closed_at=row["closed_at"],
        registered_by_run=row["registered_by_run"],
        held_again_by_run=row["held_again_by_run"],
    )
