"""The ``refunds`` commands of a refund's life: submit it, review it, follow it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from domain.errors import CertificateNotFoundError
from domain.values import describe_validation_error
from starter.cli_common import (
    MAX_REFUND_ID,
    JsonFlag,
    ReviewerOption,
    call_temporal,
    certificate_store,
    checked_id,
    load_settings,
    working_calendar,
)
from starter.client import RefundClient
from starter.errors import UserError
from starter.render import (
    console,
    pending_table,
    print_json,
    status_json,
    status_panel,
)
from starter.review_pages import MAX_PAGE_SIZE, PAGE_SIZE, Cursor, PendingReview, first_cursor
from starter.review_queue import review_queue
from workflows.contract import (
    ActionResult,
    ApproveInput,
    CancelInput,
    RefundReason,
    RefundRequest,
    RejectInput,
)


def _request(**fields: object) -> RefundRequest:
    try:
        return RefundRequest.model_validate(fields)
    except ValidationError as err:
        raise UserError(describe_validation_error(err)) from None


def submit(
    certificate_id: Annotated[str, typer.Argument(help="The certificate to refund.")],
    requester: Annotated[str, typer.Option("--requester", help="Who asks for the refund.")],
    reason: Annotated[RefundReason, typer.Option("--reason", help="Why the refund is asked for.")],
    feedback: Annotated[
        str | None, typer.Option("--feedback", help="Free text; required for reason 'other'.")
    ] = None,
    support_contact: Annotated[
        str | None,
        typer.Option(
            "--support-contact",
            help="DingTalk id or mainland mobile number, to get technical support.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Start a refund for a certificate; prints its refund id."""
    settings = load_settings()
    request = _request(
        certificate_id=certificate_id,
        requester=requester,
        reason=reason,
        feedback=feedback,
        support_contact=support_contact,
    )
    try:
        owner = certificate_store(settings).get(request.certificate_id).owner
    except CertificateNotFoundError:
        raise UserError(f"unknown certificate {certificate_id!r}") from None
    if owner != request.requester:
        raise UserError(f"{request.requester} does not own certificate {certificate_id}")
    handle = call_temporal(settings, lambda refunds: refunds.submit(request))
    if json_output:
        print_json(
            {
                "refund_id": handle.id,
                "certificate_id": certificate_id,
                "run_id": handle.first_execution_run_id,
            }
        )
        return
    print(handle.id)


def act(
    refund_id: str,
    send: Callable[[RefundClient], Awaitable[ActionResult]],
    json_output: bool,
    *,
    actor: tuple[str, str],
) -> None:
    checked_id(refund_id, "refund", MAX_REFUND_ID)
    checked_id(*actor)
    settings = load_settings()
    result = call_temporal(settings, send)
    if json_output:
        print_json(result.model_dump(mode="json"))
    elif not result.detail:
        console.print(f"{result.action.value} accepted for {result.refund_id}")
    if result.detail:
        raise UserError(
            f"{result.action.value} accepted but not carried out: {result.detail} "
            f"({result.refund_id} is {result.state.value})"
        )


def approve(
    refund_id: Annotated[str, typer.Argument(help="The refund to approve.")],
    reviewer: ReviewerOption,
    note: Annotated[str | None, typer.Option("--note", help="An optional note.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Approve a refund awaiting review."""
    approval = ApproveInput(reviewer=reviewer, note=note)
    act(
        refund_id,
        lambda refunds: refunds.approve(refund_id, approval),
        json_output,
        actor=(reviewer, "reviewer"),
    )


def reject(
    refund_id: Annotated[str, typer.Argument(help="The refund to reject.")],
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option("--reason", help="Shown to the customer.")],
    json_output: JsonFlag = False,
) -> None:
    """Reject a refund awaiting review; the customer sees the reason."""
    rejection = RejectInput(reviewer=reviewer, reason=reason)
    act(
        refund_id,
        lambda refunds: refunds.reject(refund_id, rejection),
        json_output,
        actor=(reviewer, "reviewer"),
    )


def cancel(
    refund_id: Annotated[str, typer.Argument(help="The refund to cancel.")],
    requester: Annotated[str, typer.Option("--requester", help="Who asked for the refund.")],
    json_output: JsonFlag = False,
) -> None:
    """Cancel a refund while it is awaiting review."""
    cancellation = CancelInput(requester=requester)
    act(
        refund_id,
        lambda refunds: refunds.cancel(refund_id, cancellation),
        json_output,
        actor=(requester, "requester"),
    )


def status(
    refund_id: Annotated[str, typer.Argument(help="The refund to show.")],
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait until it needs a person or is finished."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 120.0,
    json_output: JsonFlag = False,
) -> None:
    """State, rule, amounts per leg, deadline and audit trail of a refund."""
    settings = load_settings()
    found = call_temporal(
        settings,
        lambda refunds: (
            refunds.wait_until_settled(refund_id, timeout) if wait else refunds.status(refund_id)
        ),
    )
    if json_output:
        print_json(status_json(found))
        return
    console.print(status_panel(found, settings.zone))


def pending(
    reason: Annotated[
        RefundReason | None, typer.Option("--reason", help="Only requests with this reason.")
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only requests past their review deadline.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option("--limit", min=1, max=MAX_PAGE_SIZE, help="Requests on one page (1 to 1000)."),
    ] = PAGE_SIZE,
    after: Annotated[
        str | None,
        typer.Option("--after", help="Resume after a page: the cursor it printed."),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every page, one after another.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """The review queue: requests awaiting review, soonest deadline first, a page at a time."""
    settings = load_settings()
    now = datetime.now(UTC)
    if after is not None and overdue:
        raise UserError("--after continues a page as it was asked; leave out --overdue")
    cursor = (
        Cursor.decode(after)
        if after is not None
        else first_cursor(now, settings.zone, overdue_only=overdue)
    )

    async def read(refunds: RefundClient) -> tuple[list[PendingReview], str | None, int]:
        total = await refunds.in_review()
        if every:
            return await refunds.every_review(cursor, limit=limit, reason=reason), None, total
        page = await refunds.review_page(cursor, limit=limit, reason=reason)
        return page.reviews, page.after, total

    reviews, next_page, total = call_temporal(settings, read)
    queue = review_queue(reviews, now, settings.zone, working_calendar(settings))
    also = f" --reason {reason.value}" if reason else ""
    more = f"next page: refunds pending{also} --after {next_page}" if next_page else None
    if json_output:  # the rows on stdout, as before; the cursor where a person reads it
        print_json([entry.as_json() for entry in queue])
        if more:
            typer.echo(more, err=True)
        return
    if not queue:
        console.print(
            "nothing awaits review" + (" with those filters" if reason or overdue else "")
        )
    else:
        console.print(pending_table(queue, settings.zone))
        console.print(f"{len(queue)} shown; {total} in review in all")
    if more:
        console.print(more)
