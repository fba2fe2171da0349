"""The customer's pages: their certificates with the Refund button exactly when the seed shows it
and their account balance (its journal entries on a page of its own), the Refund Application
panel with the rule decision before submitting, their refunds with a filter, and one refund's
progress with Cancel refund while it is in Validating Application.

A customer sees only their own certificates, balance and refunds; anything else is 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from console import views
from console.security import check_csrf
from domain.certificates import Certificate
from domain.errors import CertificateNotFoundError
from domain.signatures import Role
from domain.values import describe_validation_error
from starter.client import refund_id_for
from starter.errors import UserError
from storage.journal import Journal
from workflows.contract import (
    FINAL_STATES,
    CancelInput,
    RefundReason,
    RefundRequest,
    RefundStatus,
)
from workflows.policy import assess, refund_action_shown

if TYPE_CHECKING:
    from console.app import Console

FILTERS = {"refunded": {"refunded"}, "review": {"validating_application"}, "rejected": {"rejected"}}
BALANCE_ENTRIES = 100


def customer_routes(app: FastAPI, console: Console) -> None:
    settings = console.settings
    journal = Journal(console.store.engine)

    def own_certificate(request: Request, certificate_id: str) -> Certificate:
        person = console.gate.require(request, Role.CUSTOMER)
        try:
            certificate = console.store.get(certificate_id[:64])
        except CertificateNotFoundError:
            raise HTTPException(404, f"no certificate {certificate_id[:64]!r}") from None
        if certificate.owner != person.person_id:
            raise HTTPException(403, "this certificate is not yours")
        return certificate

    def refundable(certificate: Certificate, now: datetime) -> bool:
        return not views.refund_started(certificate) and refund_action_shown(
            certificate, now, timezone=settings.timezone
        )

    @app.get("/certificates", response_model=None)
    async def certificates(request: Request) -> Response:
        person = console.gate.require(request, Role.CUSTOMER)
        now = datetime.now(UTC)
        owned = console.store.owned_by(person.person_id)
        rows = [(c, refundable(c, now)) for c in owned]
        balances = journal.balance(person.person_id)
        return console.page(request, "certificates.html", rows=rows, balances=balances)

    @app.get("/balance", response_model=None)
    async def balance(request: Request) -> Response:
        person = console.gate.require(request, Role.CUSTOMER)
        balances = journal.balance(person.person_id)
        lines = journal.entries(person.person_id, limit=BALANCE_ENTRIES)
        return console.page(request, "balance.html", balances=balances, lines=lines)

    @app.get("/certificates/{certificate_id}/refund", response_model=None)
    async def application(request: Request, certificate_id: str) -> Response:
        certificate = own_certificate(request, certificate_id)
        return application_page(request, certificate)

    def application_page(
        request: Request, certificate: Certificate, status: int = 200, **context: object
    ) -> Response:
        now = datetime.now(UTC)
        calendar = console.calendar()
        decision, deadline = assess(certificate, now, timezone=settings.timezone, calendar=calendar)
        return console.page(
            request,
            "apply.html",
            status=status,
            certificate=certificate,
            shown=refundable(certificate, now),
            preview=views.preview(decision, deadline, settings.zone),
            reasons=list(RefundReason),
            **context,
        )

    @app.post("/certificates/{certificate_id}/refund", response_model=None)
    async def apply(
        request: Request,
        certificate_id: str,
        reason: str = Form(""),
        support_contact: str = Form(""),
        feedback: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        check_csrf(request, csrf)
        certificate = own_certificate(request, certificate_id)
        if not refundable(certificate, datetime.now(UTC)):
            raise HTTPException(409, "this certificate cannot be refunded from the console")
        form = {"reason": reason, "support_contact": support_contact, "feedback": feedback}
        try:
            refund = RefundRequest.model_validate(
                {
                    "certificate_id": certificate.certificate_id,
                    "requester": certificate.owner,
                    "reason": reason,
                    "feedback": feedback.strip() or None,
                    "support_contact": support_contact.strip() or None,
                }
            )
        except ValidationError as err:
            problem = describe_validation_error(err)
            return application_page(request, certificate, 422, problem=problem, form=form)
        try:
            handle = await console.client().submit(refund)
        except UserError as err:
            return application_page(request, certificate, 409, problem=str(err), form=form)
        return RedirectResponse(f"/refunds/{handle.id}", status_code=303)

    async def own_refund(request: Request, refund_id: str) -> RefundStatus:
        """The refund, for its requester or staff; a customer learns nothing of anyone else's."""
        person = console.gate.require(request)
        if person.role is Role.CUSTOMER:
            prefix = refund_id_for("")
            certificate_id = refund_id[len(prefix) :] if refund_id.startswith(prefix) else ""
            try:
                owner = console.store.get(certificate_id[:64]).owner if certificate_id else None
            except CertificateNotFoundError:
                owner = None
            if owner != person.person_id:
                raise HTTPException(403, "this refund is not yours")
        try:
            status = await console.client().status(refund_id[:80])
        except UserError as err:
            raise HTTPException(404, str(err)) from None
        if person.role is Role.CUSTOMER and status.requester != person.person_id:
            raise HTTPException(403, "this refund is not yours")
        return status

    @app.get("/refunds/{refund_id}", response_model=None)
    async def refund(request: Request, refund_id: str) -> Response:
        status = await own_refund(request, refund_id)
        if request.headers.get("hx-request") != "true":
            return console.page(request, "refund.html", status_=status)
        # htmx stops polling on 286: once the refund is final, this is its last refresh.
        final = status.state in FINAL_STATES and not status.decision_pending
        return console.page(request, "refund_progress.html", 286 if final else 200, status_=status)

    @app.post("/refunds/{refund_id}/cancel", response_model=None)
    async def cancel(request: Request, refund_id: str, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        status = await own_refund(request, refund_id)
        person = console.gate.require(request, Role.CUSTOMER)
        try:
            await console.client().cancel(status.refund_id, CancelInput(requester=person.person_id))
        except UserError as err:
            return console.page(request, "refund.html", 409, status_=status, problem=str(err))
        return RedirectResponse(f"/refunds/{status.refund_id}", status_code=303)

    @app.get("/refunds", response_model=None)
    async def refunds(request: Request, show: str = "") -> Response:
        person = console.gate.require(request, Role.CUSTOMER)
        found: list[RefundStatus] = []
        for certificate in console.store.owned_by(person.person_id):
            try:
                found.append(
                    await console.client().status(refund_id_for(certificate.certificate_id))
                )
            except UserError:
                continue  # no refund for this certificate, or one that ended without a result
        wanted = FILTERS.get(show)
        shown = [s for s in found if wanted is None or s.state.value in wanted]
        return console.page(request, "refunds.html", refunds=shown, show=show)
