"""Output of the books: the ledger, the reconciliation with its problems, one certificate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.ledger import LedgerEntry
from starter.books import CertificateView, RepairResult
from starter.render import local_time
from storage.payment_attempts import Attempt
from storage.payment_refusals import Refusal
from storage.reconcile import Reconciliation, RefundBalance

OUTCOME_STYLES = {
    "balanced": "green",
    "in_progress": "yellow",
    "held": "yellow",
    "missing": "bold red",
}
PROBLEM_HELP = {
    "orphaned_hold": "no refund runs: `refunds repair` releases or completes it",
    "divergent": "money returned but not refunded: `refunds repair` completes it",
}


def movement_json(e: LedgerEntry) -> dict[str, Any]:
    return {
        "refund_id": e.refund_id,
        "certificate_id": e.certificate_id,
        "leg": e.leg_index,
        "channel": e.channel,
        "original_channel": e.original_channel,
        "amount": str(e.amount),
        "currency": e.currency,
        "idempotency_key": e.idempotency_key,
        "transaction_id": e.transaction_id,
        "returned_at": e.returned_at.isoformat(),
    }


def balance_json(b: RefundBalance) -> dict[str, Any]:
    return {
        "certificate_id": b.certificate_id,
        "refund_id": b.refund_id,
        "refund_ids": b.refund_ids,
        "certificate_status": b.status,
        "held_by": b.held_by,
        "released_by": b.released_by,
        "refund_running": b.running,
        "due": str(b.due),
        "returned": str(b.returned),
        "currency": b.currency,
        "outcome": b.outcome,
        "problem": b.problem,
    }


def totals_json(books: Reconciliation) -> dict[str, Any]:
    return {
        "due": str(books.due),
        "returned": str(books.returned),
        "paid_twice": books.paid_twice,
        "missing_amount": str(books.missing_amount),
        "orphaned_holds": books.orphaned_holds,
        "divergent": books.divergent,
    }


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "refund_id": a.refund_id,
        "certificate_id": a.certificate_id,
        "leg": a.leg_index,
        "channel": a.channel,
        "request_id": a.request_id,
        "status": a.status,
        "transaction_id": a.transaction_id,
        "code": a.code,
        "reason": a.reason,
        "sent_at": a.sent_at.isoformat(),
        "accepted_at": a.accepted_at.isoformat() if a.accepted_at else None,
    }


def refusal_json(r: Refusal) -> dict[str, Any]:
    return {
        "at": r.at.isoformat(),
        "activity": r.activity,
        "refund_id": r.refund_id,
        "leg": r.leg_index,
        "scheduled_by": r.workflow_id,
        "workflow_type": r.workflow_type,
        "reason": r.reason,
    }


@dataclass(frozen=True)
class Books:
    """Everything ``refunds ledger`` shows."""

    entries: list[LedgerEntry]
    reconciliation: Reconciliation
    in_flight: list[Attempt]
    refusals: list[Refusal]
    journal_problems: list[str]


def ledger_json(books: Books) -> dict[str, Any]:
    return {
        "movements": [movement_json(e) for e in books.entries],
        "in_flight": [attempt_json(a) for a in books.in_flight],
        "refused": [refusal_json(r) for r in books.refusals],
        "journal_problems": books.journal_problems,
        "reconciliation": [balance_json(b) for b in books.reconciliation.balances],
        "totals": {
            **totals_json(books.reconciliation),
            "refused": len(books.refusals),
            "journal_problems": len(books.journal_problems),
        },
    }


def in_flight_table(attempts: list[Attempt], zone: ZoneInfo) -> Table:
    table = Table(title=f"at the channels, not returned ({len(attempts)})", title_justify="left")
    for column in ("sent", "refund", "leg", "channel", "status", "channel's answer"):
        table.add_column(column)
    for a in attempts:
        answer = a.transaction_id or ""
        if a.status == "settling" and a.accepted_at:
            answer = f"accepted {local_time(a.accepted_at, zone)}, settling ({answer})"
        elif a.code or a.reason:
            answer = f"{a.code or ''} {a.reason or ''}".strip()
        table.add_row(
            local_time(a.sent_at, zone), a.refund_id, str(a.leg_index), a.channel, a.status, answer
        )
    return table


def refusals_table(refusals: list[Refusal], zone: ZoneInfo) -> Table:
    table = Table(
        title=f"refused by the system of record ({len(refusals)}, newest first)",
        title_justify="left",
        title_style="bold red",
    )
    for column in ("time", "activity", "refund", "leg", "scheduled by", "why"):
        table.add_column(column)
    for r in refusals:
        table.add_row(
            local_time(r.at, zone),
            r.activity,
            r.refund_id,
            "" if r.leg_index is None else str(r.leg_index),
            f"{r.workflow_id} ({r.workflow_type})",
            Text(r.reason, style="red"),
        )
    return table


def ledger_table(entries: list[LedgerEntry], zone: ZoneInfo) -> Table:
    table = Table(title=f"money returned ({len(entries)} movements)", title_justify="left")
    for column in ("time", "refund", "leg", "channel", "amount", "idempotency key"):
        table.add_column(column, justify="right" if column == "amount" else "left")
    for e in entries:
        channel = (
            e.channel
            if e.channel == e.original_channel
            else f"{e.channel} (for {e.original_channel})"
        )
        table.add_row(
            local_time(e.returned_at, zone),
            e.refund_id,
            str(e.leg_index),
            channel,
            f"{e.amount} {e.currency}",
            e.idempotency_key,
        )
    return table


def _outcome(b: RefundBalance) -> Text:
    if b.problem:
        return Text(b.problem, style="bold red")
    return Text(b.outcome, style=OUTCOME_STYLES.get(b.outcome, "bold red"))


def reconciliation_table(books: Reconciliation) -> Table:
    table = Table(title="reconciliation: due against returned", title_justify="left")
    for column in ("certificate", "refund", "status", "due", "returned", "outcome"):
        table.add_column(column, justify="right" if column in ("due", "returned") else "left")
    for b in books.balances:
        table.add_row(
            b.certificate_id,
            b.refund_id,
            b.status,
            str(b.due),
            str(b.returned),
            _outcome(b),
        )
    orphans = "not checked" if books.orphaned_holds is None else str(books.orphaned_holds)
    divergent = "not checked" if books.divergent is None else str(books.divergent)
    table.caption = (
        f"due {books.due}, returned {books.returned}, paid twice {books.paid_twice}, "
        f"missing {books.missing_amount}, orphaned holds {orphans}, divergent {divergent}"
    )
    return table


def certificate_json(view: CertificateView) -> dict[str, Any]:
    return {
        "certificate": view.certificate.model_dump(mode="json"),
        "refund_id": view.refund_id,
        "refund_workflow": view.refund_status,
        "refund_state": view.refund_state,
        "books": balance_json(view.balance) if view.balance else None,
        "movements": [movement_json(e) for e in view.ledger],
        "repairs": [
            {
                "refund_id": r.refund_id,
                "action": r.action,
                "claimed_by_run": r.claimed_by_run,
                "operator": r.operator,
                "note": r.note,
                "at": r.at.isoformat(),
            }
            for r in view.repairs
        ],
    }


def certificate_panel(view: CertificateView, zone: ZoneInfo) -> Panel:
    cert = view.certificate
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    summary.add_row("status", Text(str(cert.status), style="bold"))
    summary.add_row("owner", cert.owner)
    summary.add_row("product", f"{cert.product.value}{' (free)' if cert.free else ''}")
    summary.add_row("purchased", local_time(cert.purchased_at, zone))
    summary.add_row("issued", local_time(cert.issued_at, zone))
    summary.add_row("expires", local_time(cert.expires_at, zone))
    if cert.held_by:
        summary.add_row("held by", cert.held_by)
    if cert.released_by:
        summary.add_row("released by", cert.released_by)
    state = f", {view.refund_state}" if view.refund_state else ""
    summary.add_row("refund", f"{view.refund_id} ({view.refund_status}{state})")
    parts: list[Any] = [summary]
    balance = view.balance
    if balance is not None:
        due = f"due {balance.due}, returned {balance.returned} {balance.currency}: "
        line = Text(due)
        line.append_text(_outcome(balance))
        if balance.problem:
            line.append(f"  {PROBLEM_HELP[balance.problem]}", style="red")
        parts.append(line)
    if view.ledger:
        parts.append(ledger_table(view.ledger, zone))
    for repair in view.repairs:
        parts.append(
            Text(
                f"{local_time(repair.at, zone)} {repair.operator} {repair.action} "
                f"{repair.refund_id}: {repair.note}",
                style="dim",
            )
        )
    return Panel(Group(*parts), title=f"certificate {cert.certificate_id}", expand=False)


def repair_line(result: RepairResult) -> str:
    if result.action == "release":
        what = f"release {result.certificate_id} from its hold"
    else:
        what = f"pay what is still due on {result.certificate_id} ({result.still_due})"
    return (
        f"started {result.refund_id} again to {what}; "
        f"follow it with `refunds status {result.refund_id} --wait`"
    )
