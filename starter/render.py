"""Output for people (rich panels and tables) and for programs (``--json``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from domain.decisions import Decision, Outcome
from starter.review_queue import QueueEntry
from workflows.contract import LegState, RefundStatus

console = Console(highlight=False)

OUTCOME_STYLE = {
    Outcome.AUTO_APPROVE: "bold green",
    Outcome.MANUAL_REVIEW: "bold yellow",
    Outcome.DENIED: "bold red",
}


def print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "-"
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def decision_panel(decision: Decision, deadline: datetime | None, zone: ZoneInfo) -> Panel:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    summary.add_row("outcome", Text(decision.outcome.value, style=OUTCOME_STYLE[decision.outcome]))
    summary.add_row("rule", decision.rule.value)
    summary.add_row("why", decision.explanation)
    summary.add_row("refund", f"{decision.refund_amount} {decision.currency}")
    summary.add_row("evaluated at", local_time(decision.evaluated_at, zone))
    if deadline is not None:
        summary.add_row("review deadline", local_time(deadline, zone))
    parts: list[Any] = [summary]
    if decision.legs:
        legs = Table(title="returned to", title_justify="left", expand=False)
        legs.add_column("channel")
        legs.add_column("amount", justify="right")
        legs.add_column("reference")
        for leg in decision.legs:
            legs.add_row(leg.channel.value, f"{leg.amount}", leg.reference)
        parts.append(legs)
    for warning in decision.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Panel(Group(*parts), title=f"certificate {decision.certificate_id}", expand=False)


STATE_STYLE = {
    "refunded": "bold green",
    "validating_application": "bold yellow",
    "refunding": "bold cyan",
    "needs_attention": "bold magenta",
    "rejected": "bold red",
    "cancelled": "bold",
    "submitted": "bold",
}


def status_json(status: RefundStatus) -> dict[str, Any]:
    return status.model_dump(mode="json")


def status_panel(status: RefundStatus, zone: ZoneInfo) -> Panel:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    summary.add_row("state", Text(status.state.value, style=STATE_STYLE.get(status.state, "")))
    summary.add_row("certificate", status.certificate_id)
    summary.add_row("requester", f"{status.requester} ({status.reason.value})")
    if status.rule is not None:
        summary.add_row("rule", f"{status.rule.value}: {status.explanation}")
    summary.add_row("refund", f"{status.refund_amount} {status.currency}")
    summary.add_row("submitted", local_time(status.submitted_at, zone))
    if status.review_deadline is not None:
        summary.add_row("review deadline", local_time(status.review_deadline, zone))
    if status.decided_by:
        summary.add_row("decided by", status.decided_by)
    if status.rejection_reason:
        summary.add_row("reason", status.rejection_reason)
    if status.attention_reason:
        summary.add_row("needs attention", Text(status.attention_reason, style="magenta"))
    parts: list[Any] = [summary]
    if status.legs:
        legs = Table(title="payment legs", title_justify="left")
        for column in ("#", "channel", "amount", "status", "transaction"):
            legs.add_column(column, justify="right" if column == "amount" else "left")
        for leg in status.legs:
            state = leg.status.value
            if leg.status is LegState.SETTLING and leg.accepted_at is not None:
                state = f"accepted, settling since {local_time(leg.accepted_at, zone)}"
            legs.add_row(
                str(leg.index),
                leg.channel.value,
                str(leg.amount),
                state,
                leg.transaction_id or leg.detail,
            )
        parts.append(legs)
    parts.append(timeline(status, zone))
    if status.refused_not_recorded or status.audit_omitted:
        parts.append(
            Text(
                f"{status.refused_not_recorded} more refused actions and "
                f"{status.audit_omitted} older entries are counted, not shown",
                style="dim",
            )
        )
    for warning in status.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return Panel(Group(*parts), title=status.refund_id, expand=False)


def timeline(status: RefundStatus, zone: ZoneInfo) -> Table:
    """The audit trail as a timeline: when, who, what, and refusals marked."""
    table = Table(title="timeline", title_justify="left", box=None, padding=(0, 1))
    table.add_column("when", style="dim", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("who", no_wrap=True)
    table.add_column("what")
    for entry in status.audit:
        mark = Text("✔", style="green") if entry.accepted else Text("✘", style="bold red")
        what = Text(entry.action, style="" if entry.accepted else "red")
        if entry.detail:
            what.append(f"  {entry.detail}", style="dim" if entry.accepted else "red")
        table.add_row(
            entry.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), mark, entry.actor, what
        )
    return table


def pending_table(queue: list[QueueEntry], zone: ZoneInfo) -> Table:
    table = Table(title="awaiting review, soonest deadline first", title_justify="left")
    for column in (
        "refund",
        "certificate",
        "requester",
        "reason",
        "amount",
        "submitted",
        "deadline",
        "business days left",
    ):
        table.add_column(
            column, justify="right" if column in ("amount", "business days left") else "left"
        )
    for entry in queue:
        review = entry.review
        urgent = entry.overdue or (
            entry.business_days_left is not None and entry.business_days_left <= 2
        )
        left = "overdue" if entry.overdue else str(entry.business_days_left)
        table.add_row(
            review.refund_id,
            review.certificate_id,
            entry.requester or "?",
            entry.reason.value if entry.reason else "?",
            f"{entry.amount} {entry.currency}" if entry.amount is not None else "?",
            local_time(review.submitted_at, zone),
            Text(
                local_time(review.review_deadline, zone), style="bold red" if entry.overdue else ""
            ),
            Text(left, style="bold red" if entry.overdue else "yellow" if urgent else ""),
        )
    return table
