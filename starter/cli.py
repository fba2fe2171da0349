"""The ``refunds`` command line. A user mistake ends in one line on stderr and a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import structlog
import typer
from aiohttp import web
from pydantic import ValidationError
from rich.console import Console

from codec import codec_from
from domain.decisions import Outcome
from domain.errors import CertificateNotFoundError, SeedConflictError
from domain.values import describe_validation_error
from logs import configure_logging
from starter import cli_books
from starter.cli_common import (
    MAX_REFUND_ID,
    JsonFlag,
    OperatorOption,
    ReviewerOption,
    call_temporal,
    certificate_store,
    checked_id,
    load_settings,
    parse_time,
)
from starter.client import RefundClient, connect, metrics_runtime
from starter.codec_server import codec_app
from starter.demo import Demo, DemoResult, link_lines, outcome_table
from starter.demo_data import demo_certificates
from starter.devserver import DevServerOptions, parse_address, run_up
from starter.errors import UserError
from starter.render import (
    console,
    decision_panel,
    pending_table,
    print_json,
    status_json,
    status_panel,
)
from starter.review_queue import review_queue
from storage.seed_file import SeedFileError, read_seed_file
from tuning import limit_malloc_arenas
from worker import run_worker
from workflows.business_days import BusinessCalendar
from workflows.contract import (
    ApproveInput,
    CancelInput,
    OperatorInput,
    RefundReason,
    RefundRequest,
    RejectInput,
)
from workflows.policy import evaluate, refund_action_shown, review_deadline

app = typer.Typer(
    name="refunds",
    help="Refunds for SSL certificates on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(cli_books.ledger)
app.command()(cli_books.certificate)
app.command("repair")(cli_books.repair_command)
app.command("schedule-reconciliation")(cli_books.schedule_reconciliation)


@app.command()
def seed(
    file: Annotated[Path, typer.Argument(help="JSON list of certificates (see the SPEC).")],
    json_output: JsonFlag = False,
) -> None:
    """Load certificates into the system of record: the whole file or nothing."""
    settings = load_settings()
    try:
        records = read_seed_file(file)
        report = certificate_store(settings).seed(records)
    except (SeedFileError, SeedConflictError) as err:
        raise UserError(f"nothing loaded: {err}") from None
    if json_output:
        print_json({"inserted": report.inserted, "unchanged": report.unchanged})
        return
    console.print(
        f"loaded {len(records)} certificates from {file}: "
        f"{len(report.inserted)} new, {len(report.unchanged)} already present"
    )


@app.command()
def check(
    certificate_id: Annotated[str, typer.Argument(help="The certificate to check.")],
    at: Annotated[
        str | None, typer.Option("--at", help="Evaluate at this ISO 8601 time (with offset).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Show the rule decision for a certificate, changing nothing."""
    settings = load_settings()
    when = parse_time(at) if at else datetime.now(UTC)
    try:
        certificate = certificate_store(settings).get(certificate_id)
    except CertificateNotFoundError:
        raise UserError(f"unknown certificate {certificate_id!r}") from None
    if when < certificate.purchased_at:
        raise UserError(
            f"--at {when.isoformat()} is before the certificate was purchased "
            f"({certificate.purchased_at.isoformat()})"
        )
    calendar = BusinessCalendar(settings.holiday_country)
    try:
        decision = evaluate(certificate, when, timezone=settings.timezone, calendar=calendar)
    except ValueError as err:
        raise UserError(f"cannot evaluate {certificate_id} at {when.isoformat()}: {err}") from None
    deadline = None
    if decision.outcome is Outcome.MANUAL_REVIEW:
        deadline, _ = review_deadline(
            certificate, when, timezone=settings.timezone, calendar=calendar
        )
    if json_output:
        data = decision.model_dump(mode="json")
        data["review_deadline"] = deadline.isoformat() if deadline else None
        data["console_refund_action"] = refund_action_shown(
            certificate, when, timezone=settings.timezone
        )
        print_json(data)
        return
    console.print(decision_panel(decision, deadline, settings.zone))


def _request(**fields: object) -> RefundRequest:
    try:
        return RefundRequest.model_validate(fields)
    except ValidationError as err:
        raise UserError(describe_validation_error(err)) from None


@app.command()
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


def _act(
    refund_id: str, update: str, payload: object, json_output: bool, *, actor: tuple[str, str]
) -> None:
    checked_id(refund_id, "refund", MAX_REFUND_ID)
    checked_id(*actor)
    settings = load_settings()
    result = call_temporal(settings, lambda refunds: refunds.act(refund_id, update, payload))
    if json_output:
        print_json(result.model_dump(mode="json"))
    elif not result.detail:
        console.print(f"{result.action.value} accepted for {result.refund_id}")
    if result.detail:
        raise UserError(
            f"{result.action.value} accepted but not carried out: {result.detail} "
            f"({result.refund_id} is {result.state.value})"
        )


@app.command()
def approve(
    refund_id: Annotated[str, typer.Argument(help="The refund to approve.")],
    reviewer: ReviewerOption,
    note: Annotated[str | None, typer.Option("--note", help="An optional note.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Approve a refund awaiting review."""
    approval = ApproveInput(reviewer=reviewer, note=note)
    _act(refund_id, "approve_request", approval, json_output, actor=(reviewer, "reviewer"))


@app.command()
def reject(
    refund_id: Annotated[str, typer.Argument(help="The refund to reject.")],
    reviewer: ReviewerOption,
    reason: Annotated[str, typer.Option("--reason", help="Shown to the customer.")],
    json_output: JsonFlag = False,
) -> None:
    """Reject a refund awaiting review; the customer sees the reason."""
    rejection = RejectInput(reviewer=reviewer, reason=reason)
    _act(refund_id, "reject_request", rejection, json_output, actor=(reviewer, "reviewer"))


@app.command()
def cancel(
    refund_id: Annotated[str, typer.Argument(help="The refund to cancel.")],
    requester: Annotated[str, typer.Option("--requester", help="Who asked for the refund.")],
    json_output: JsonFlag = False,
) -> None:
    """Cancel a refund while it is awaiting review."""
    cancellation = CancelInput(requester=requester)
    _act(refund_id, "cancel_request", cancellation, json_output, actor=(requester, "requester"))


@app.command()
def retry(
    refund_id: Annotated[str, typer.Argument(help="A refund that needs attention.")],
    operator: OperatorOption,
    note: Annotated[str | None, typer.Option("--note", help="What was fixed.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Retry the payment returns of a refund in needs_attention."""
    action = OperatorInput(operator=operator, note=note)
    _act(refund_id, "retry_payments", action, json_output, actor=(operator, "operator"))


@app.command()
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


@app.command()
def pending(
    reason: Annotated[
        RefundReason | None, typer.Option("--reason", help="Only requests with this reason.")
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only requests past their review deadline.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """The review queue: requests awaiting review, soonest deadline first."""
    settings = load_settings()
    reviews = call_temporal(settings, lambda refunds: refunds.pending())
    queue = review_queue(
        reviews,
        datetime.now(UTC),
        settings.zone,
        BusinessCalendar(settings.holiday_country),
        reason=reason,
        overdue_only=overdue,
    )
    if json_output:
        print_json([entry.as_json() for entry in queue])
        return
    if not queue:
        console.print(
            "nothing awaits review" + (" with those filters" if reason or overdue else "")
        )
        return
    console.print(pending_table(queue, settings.zone))


@app.command()
def resolve(
    refund_id: Annotated[str, typer.Argument(help="A refund that needs attention.")],
    operator: OperatorOption,
    note: Annotated[str, typer.Option("--note", help="What you did, e.g. how the money went.")],
    json_output: JsonFlag = False,
) -> None:
    """Record that an operator returned the failed legs by hand; the refund then completes."""
    action = OperatorInput(operator=operator, note=note)
    _act(refund_id, "resolve_manually", action, json_output, actor=(operator, "operator"))


@app.command()
def demo(json_output: JsonFlag = False) -> None:
    """Walk every path (auto, approve, reject, cancel, denied, duplicate) against `refunds up`."""
    settings = load_settings()
    store = certificate_store(settings)

    progress = Console(stderr=True, highlight=False) if json_output else console

    async def walk(refunds: RefundClient) -> list[DemoResult]:
        return await Demo(refunds, store, settings, progress).run()

    outcomes = call_temporal(settings, walk)
    if json_output:
        print_json([outcome.__dict__ for outcome in outcomes])
        return
    console.print(outcome_table(outcomes))
    console.print("In the Web UI:")
    for line in link_lines(outcomes):
        console.print(line, soft_wrap=True)
    console.print("`refunds pending` shows the one left in review.")


@app.command("codec-server")
def codec_server(
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8081).")] = None,
) -> None:
    """Serve /decode and /encode so the Web UI can show encrypted payloads to allowed people."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    codec = codec_from(settings.encryption_keys, settings.encryption_key_id)
    if codec is None:
        raise UserError("REFUNDS_ENCRYPTION_KEYS is empty: there is nothing to decode")
    app = codec_app(codec, settings.codec_cors_origins, settings.codec_auth_token)
    listen = port or settings.codec_port
    console.print(
        f"codec server on http://127.0.0.1:{listen} for {', '.join(settings.codec_cors_origins)}"
    )
    web.run_app(app, host="0.0.0.0", port=listen, print=None)


@app.command("worker")
def worker_command() -> None:
    """Run a worker against the configured Temporal server until Ctrl-C or SIGTERM."""
    limit_malloc_arenas()
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)

    async def serve() -> None:
        client = await connect(settings, runtime=metrics_runtime(settings))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        structlog.get_logger("refunds.worker").info(
            "worker started", task_queue=settings.task_queue, temporal=settings.temporal_address
        )
        await run_worker(client, settings, stop)

    asyncio.run(serve())


@app.command()
def up(
    ui_port: Annotated[
        int | None, typer.Option("--ui-port", help="Web UI port (default 8233).")
    ] = None,
    temporal_db: Annotated[
        Path, typer.Option("--temporal-db", help="SQLite file for the Temporal server.")
    ] = Path("var/temporal.db"),
    seed_demo: Annotated[
        bool, typer.Option("--seed-demo", help="Load demo certificates into an empty database.")
    ] = False,
) -> None:
    """Run the Temporal dev server (Web UI, SQLite) and a worker in the foreground."""
    limit_malloc_arenas()
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    host, port = parse_address(settings.temporal_address)
    if seed_demo:
        store = certificate_store(settings)
        if store.count() == 0:
            loaded = store.seed(demo_certificates(datetime.now(UTC)))
            console.print(f"loaded {len(loaded.inserted)} demo certificates: demo-auto, ...")
    options = DevServerOptions(
        host=host,
        port=port,
        ui_port=ui_port or settings.ui_port,
        database_file=temporal_db,
        namespace=settings.namespace,
    )
    raise typer.Exit(asyncio.run(run_up(settings, options)))


def one_line(text: str) -> str:
    """``text`` with line breaks and other invisible characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.strip())


def run(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code, turning every user mistake into one line."""
    try:
        result = app(args=argv, prog_name="refunds", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except UserError as err:
        print(f"refunds: error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except typer.TyperException as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            return 0
        message = " ".join(err.format_message().split())
        print(f"refunds: error: {one_line(message)}", file=sys.stderr)
        return err.exit_code or 2
    except typer.Exit as err:
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("refunds: interrupted", file=sys.stderr)
        return 130


def main() -> None:
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    # Ending the process here skips interpreter finalization, where Temporal's client threads
    # can abort with "PyGILState_Release" (sdk-python#300) after the command already succeeded.
    os._exit(code)
