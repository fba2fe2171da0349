"""The ``refunds`` command line. A user mistake ends in one line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from settings import Settings, get_settings
from starter.errors import UserError
from starter.render import console, decision_panel, print_json
from storage.certificates import CertificateNotFoundError, CertificateStore, SeedConflictError
from storage.database import open_database
from storage.seed_file import SeedFileError, describe_validation_error, read_seed_file
from workflows.business_days import BusinessCalendar
from workflows.models import Outcome
from workflows.policy import evaluate, refund_action_shown, review_deadline

app = typer.Typer(
    name="refunds",
    help="Refunds for SSL certificates on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a readable view.")]


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as err:
        field, _, problem = describe_validation_error(err).partition(": ")
        raise UserError(f"bad configuration: REFUNDS_{field.upper()}: {problem}") from None


def certificate_store(settings: Settings) -> CertificateStore:
    return CertificateStore(open_database(settings.database_url))


def parse_time(text: str) -> datetime:
    """An ISO 8601 time that names its offset (``Z`` allowed)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(
            f"--at {text!r} is not an ISO 8601 time such as 2026-11-20T10:00:00+08:00"
        ) from None
    if value.tzinfo is None:
        raise UserError(f"--at {text!r} has no offset; add one, e.g. +08:00 or Z")
    return value


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


def run(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code, turning every user mistake into one line."""
    try:
        result = app(args=argv, prog_name="refunds", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except UserError as err:
        print(f"refunds: error: {err}", file=sys.stderr)
        return err.exit_code
    except typer.TyperException as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            return 0
        message = " ".join(err.format_message().split())
        print(f"refunds: error: {message}", file=sys.stderr)
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
