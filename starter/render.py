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

from workflows.models import Decision, Outcome

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
