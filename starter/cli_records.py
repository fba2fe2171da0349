"""The ``refunds`` commands on the system of record: ``seed`` and ``check``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from domain.errors import CertificateNotFoundError, SeedConflictError
from domain.signatures import Role
from starter.cli_common import (
    JsonFlag,
    certificate_store,
    load_settings,
    parse_time,
    working_calendar,
)
from starter.cli_people import enroll
from starter.errors import UserError
from starter.render import (
    console,
    decision_panel,
    print_json,
)
from storage.seed_file import SeedFileError, read_seed_file
from workflows.policy import assess, refund_action_shown


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
    if settings.database_url.startswith("sqlite"):  # the embedded default: owners get keys
        enroll(settings, {Role.CUSTOMER: sorted({record.owner for record in records})})
    if json_output:
        print_json({"inserted": report.inserted, "unchanged": report.unchanged})
        return
    console.print(
        f"loaded {len(records)} certificates from {file}: "
        f"{len(report.inserted)} new, {len(report.unchanged)} already present"
    )


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
    calendar = working_calendar(settings)
    try:
        decision, deadline = assess(
            certificate, when, timezone=settings.timezone, calendar=calendar
        )
    except ValueError as err:
        raise UserError(f"cannot evaluate {certificate_id} at {when.isoformat()}: {err}") from None
    if json_output:
        data = decision.model_dump(mode="json")
        data["review_deadline"] = deadline.isoformat() if deadline else None
        data["console_refund_action"] = refund_action_shown(
            certificate, when, timezone=settings.timezone
        )
        print_json(data)
        return
    console.print(decision_panel(decision, deadline, settings.zone))
