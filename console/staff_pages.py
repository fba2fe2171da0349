"""The reviewer desk and the operators' page. Reviewers see the queue, soonest deadline first
(overdue and due-soon marked, filter by reason), and a refund with everything needed to decide;
they approve (optional note) or reject (reason required, shown to the customer). Operators see the
refunds that need attention, with Retry and Resolve (note required). Every action is sent as the
signed-in person, signed with their key, and the workflow's answer is shown as it came."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from console.security import check_csrf
from domain.errors import CertificateNotFoundError
from domain.signatures import Role
from domain.values import MAX_TEXT
from starter.errors import UserError
from starter.review_pages import Cursor, first_cursor
from starter.review_queue import review_queue
from workflows.contract import (
    ActionResult,
    ApproveInput,
    OperatorInput,
    RefundReason,
    RejectInput,
)

if TYPE_CHECKING:
    from console.app import Console

DUE_SOON_DAYS = 2


def staff_routes(app: FastAPI, console: Console) -> None:
    settings = console.settings

    @app.get("/reviews", response_model=None)
    async def reviews(request: Request, reason: str = "", after: str = "") -> Response:
        console.gate.require(request, Role.REVIEWER)
        wanted = RefundReason(reason) if reason in RefundReason._value2member_map_ else None
        now = datetime.now(UTC)
        try:
            cursor = Cursor.decode(after) if after else first_cursor(now, settings.zone)
        except UserError:
            cursor = first_cursor(now, settings.zone)
        client = console.client()
        page = await client.review_page(cursor, reason=wanted)
        queue = review_queue(page.reviews, now, settings.zone, console.calendar())
        return console.page(
            request,
            "reviews.html",
            queue=queue,
            reason=wanted.value if wanted else "",
            reasons=list(RefundReason),
            due_soon=DUE_SOON_DAYS,
            after=page.after,
            total=await client.in_review(),
        )

    async def act(
        request: Request,
        refund_id: str,
        csrf: str,
        text: str,
        send: Callable[[], Awaitable[ActionResult]],
    ) -> Response:
        check_csrf(request, csrf)
        try:
            if len(text) > MAX_TEXT:
                raise UserError(f"refused: the text is longer than {MAX_TEXT} characters")
            result = await send()
        except UserError as err:
            request.session["flash"] = str(err)
        else:
            request.session["flash"] = f"{result.action.value} accepted ({result.state.value})" + (
                f": {result.detail}" if result.detail else ""
            )
        return RedirectResponse(f"/reviews/{refund_id}", status_code=303)

    @app.get("/reviews/{refund_id}", response_model=None)
    async def review(request: Request, refund_id: str) -> Response:
        person = console.gate.require(request, Role.REVIEWER, Role.OPERATOR)
        try:
            status = await console.client().status(refund_id[:80])
        except UserError as err:
            raise HTTPException(404, str(err)) from None
        try:
            certificate = console.store.get(status.certificate_id)
        except CertificateNotFoundError:
            certificate = None
        own = person.person_id in (status.requester, certificate.owner if certificate else "")
        return console.page(
            request,
            "review.html",
            status_=status,
            certificate=certificate,
            own=own,
            flash=request.session.pop("flash", None),
        )

    @app.post("/reviews/{refund_id}/approve", response_model=None)
    async def approve(
        request: Request, refund_id: str, note: str = Form(""), csrf: str = Form("")
    ) -> Response:
        person = console.gate.require(request, Role.REVIEWER)
        approval = ApproveInput(reviewer=person.person_id, note=note.strip()[:MAX_TEXT] or None)
        client = console.client()
        return await act(
            request, refund_id, csrf, note, lambda: client.approve(refund_id, approval)
        )

    @app.post("/reviews/{refund_id}/reject", response_model=None)
    async def reject(
        request: Request, refund_id: str, reason: str = Form(""), csrf: str = Form("")
    ) -> Response:
        person = console.gate.require(request, Role.REVIEWER)
        rejection = RejectInput(reviewer=person.person_id, reason=reason.strip()[:MAX_TEXT])
        client = console.client()
        return await act(
            request, refund_id, csrf, reason, lambda: client.reject(refund_id, rejection)
        )

    @app.get("/attention", response_model=None)
    async def attention(request: Request) -> Response:
        console.gate.require(request, Role.OPERATOR)
        waiting = await console.client().needing_attention()
        return console.page(request, "attention.html", waiting=waiting)

    @app.post("/attention/{refund_id}/{action}", response_model=None)
    async def operate(
        request: Request, refund_id: str, action: str, note: str = Form(""), csrf: str = Form("")
    ) -> Response:
        person = console.gate.require(request, Role.OPERATOR)
        order = OperatorInput(operator=person.person_id, note=note.strip()[:MAX_TEXT] or None)
        client = console.client()
        if action == "retry":
            return await act(request, refund_id, csrf, note, lambda: client.retry(refund_id, order))
        if action == "resolve":
            return await act(
                request, refund_id, csrf, note, lambda: client.resolve(refund_id, order)
            )
        raise HTTPException(404, f"no action {action[:20]!r}")
