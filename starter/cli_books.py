"""The ``refunds`` commands for the books: ``ledger``, ``certificate``, ``repair`` and the daily
reconciliation schedule. Registered on the app in ``starter.cli``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from domain.ledger import RETURNED
from starter.books import books, certificate_view, repair
from starter.cli_common import (
    JsonFlag,
    OperatorOption,
    call_temporal,
    checked_id,
    load_settings,
)
from starter.errors import UserError
from starter.render import console, print_json
from starter.render_books import (
    Books,
    certificate_json,
    certificate_panel,
    in_flight_table,
    ledger_json,
    ledger_table,
    reconciliation_table,
    refusals_table,
    repair_line,
)
from starter.schedules import RECONCILIATION_SCHEDULE, ensure_reconciliation_schedule
from storage.database import open_database
from storage.journal_check import journal_against_ledger
from storage.ledger import Ledger
from storage.payment_attempts import PaymentAttempts
from storage.payment_refusals import PaymentRefusals
from storage.reconcile import Reconciliation, reconcile

CertificateArgument = Annotated[str, typer.Argument(help="The certificate.")]


def ledger(
    refund_id: Annotated[
        str | None, typer.Option("--refund", help="Only this refund's movements.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Every money movement, and per certificate due against returned, orphans and divergence."""
    settings = load_settings()
    engine = open_database(settings.database_url)
    try:
        found = call_temporal(settings, lambda refunds: books(refunds, engine))
    except UserError as err:
        print(
            f"refunds: warning: orphaned holds and divergent certificates not checked ({err})",
            file=sys.stderr,
        )
        found = reconcile(engine)
    entries = Ledger(engine).entries(refund_id)
    if refund_id is not None:
        certificates = {entry.certificate_id for entry in entries}
        found = Reconciliation(
            [b for b in found.balances if b.certificate_id in certificates], found.running_known
        )
    shown = Books(
        entries=entries,
        reconciliation=found,
        in_flight=[a for a in PaymentAttempts(engine).of_refund(refund_id) if a.status != RETURNED],
        refusals=PaymentRefusals(engine).recent(refund_id=refund_id),
        journal_problems=journal_against_ledger(engine),
    )
    if json_output:
        print_json(ledger_json(shown))
        return
    console.print(ledger_table(entries, settings.zone))
    if shown.in_flight:
        console.print(in_flight_table(shown.in_flight, settings.zone))
    if shown.refusals:
        console.print(refusals_table(shown.refusals, settings.zone))
    for problem in shown.journal_problems:
        console.print(f"[bold red]account balance journal:[/] {problem}")
    console.print(reconciliation_table(found))


def certificate(certificate_id: CertificateArgument, json_output: JsonFlag = False) -> None:
    """A certificate's status, the refund holding it (if any), its ledger rows and repairs."""
    checked_id(certificate_id, "certificate")
    settings = load_settings()
    engine = open_database(settings.database_url)
    view = call_temporal(
        settings, lambda refunds: certificate_view(refunds, engine, certificate_id)
    )
    if json_output:
        print_json(certificate_json(view))
        return
    console.print(certificate_panel(view, settings.zone))


def repair_command(
    certificate_id: CertificateArgument,
    operator: OperatorOption,
    note: Annotated[str, typer.Option("--note", help="What you checked and why.")],
    json_output: JsonFlag = False,
) -> None:
    """Settle what a terminated refund left: release its hold, or pay what is still due."""
    checked_id(certificate_id, "certificate")
    checked_id(operator, "operator")
    settings = load_settings()
    engine = open_database(settings.database_url)
    result = call_temporal(
        settings, lambda refunds: repair(refunds, engine, certificate_id, operator, note)
    )
    if json_output:
        print_json(
            {
                "certificate_id": result.certificate_id,
                "refund_id": result.refund_id,
                "action": result.action,
                "still_due": str(result.still_due),
            }
        )
        return
    console.print(repair_line(result))


def schedule_reconciliation(json_output: JsonFlag = False) -> None:
    """Create the daily reconciliation schedule if it does not exist yet."""
    settings = load_settings()
    created = call_temporal(
        settings, lambda refunds: ensure_reconciliation_schedule(refunds.client, settings)
    )
    if json_output:
        print_json({"schedule_id": RECONCILIATION_SCHEDULE, "created": created})
        return
    console.print(
        f"schedule {RECONCILIATION_SCHEDULE} "
        + ("created: reconciles daily at 03:00" if created else "already exists")
    )
