"""The chaos run's figures: every refund's end against the ledger, the channels' own records and
the balance journal."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from activities.alipay import out_request_no
from domain.ledger import LedgerEntry
from simulators.alipay_state import AlipayLedger
from simulators.bank_state import BankLedger
from storage.journal_check import journal_against_ledger
from storage.ledger import Ledger
from storage.payment_refusals import PaymentRefusals
from storage.reconcile import reconcile
from workflows.contract import RefundState, RefundStatus


@dataclass
class Outcome:
    """What the run saw: which refunds started, how each ended (None: not finished) and the
    counts kept by the driver and the managed processes."""

    started: set[str]
    statuses: dict[str, RefundStatus | None]
    resolved: int
    rpc_retries: int
    worker_kills: int
    server_restarts: int
    unknown_outcomes: int
    permanent_refusals: int


def paid_at_the_channels(workdir: Path) -> Counter[str]:
    """How many times each leg's key was paid at the simulated channels (Alipay by its
    ``out_request_no``, the provider by the key; a failed bank refund moved no money)."""
    state = workdir / "simulators"
    counts: Counter[str] = Counter()
    for refund in AlipayLedger(state / "alipay.db").refunds():
        counts[f"alipay:{refund.out_request_no}"] += 1
    for bank in BankLedger(state / "bank.db").all():
        if bank.status != "failed":
            counts[f"bank:{bank.idempotency_key}"] += 1
    return counts


def channel_key(entry: LedgerEntry) -> str | None:
    """The key a ledger row was paid under at its channel (the journal is the system's own)."""
    if entry.channel == "alipay":
        return f"alipay:{out_request_no(entry.idempotency_key)}"
    if entry.channel == "bank":
        return f"bank:{entry.idempotency_key}"
    return None


def figures_of(
    outcome: Outcome, engine: Any, elapsed: float, workdir: Path, console: Console
) -> dict[str, Any]:
    """The run's figures, printed as a table; the ledger's and journal's problems below it."""
    amounts: dict[str, Decimal] = {}
    for entry in Ledger(engine).entries():
        amounts[entry.refund_id] = amounts.get(entry.refund_id, Decimal(0)) + entry.amount
    states: Counter[str] = Counter()
    inconsistent: list[str] = []
    finished = stuck = lost = 0
    for refund_id, status in outcome.statuses.items():
        if refund_id not in outcome.started:
            lost += 1
            continue
        if status is None:
            stuck += 1
            continue
        finished += 1
        states[status.state.value] += 1
        paid = amounts.get(refund_id, Decimal("0.00"))
        expected = status.refund_amount if status.state is RefundState.REFUNDED else Decimal(0)
        if paid != expected:
            inconsistent.append(f"{refund_id}: {status.state.value}, paid {paid} of {expected}")
    recon = reconcile(engine)
    recorded = {key for entry in Ledger(engine).entries() if (key := channel_key(entry))}
    at_channels = paid_at_the_channels(workdir)
    unrecorded = sorted(set(at_channels) - recorded)
    journal = journal_against_ledger(engine)
    figures = {
        "started": len(outcome.started),
        "finished": finished,
        "stuck": stuck,
        "lost": lost,
        "paid_twice": recon.paid_twice,
        "missing_amount": str(recon.missing_amount),
        "ledger_mismatches": len(inconsistent),
        "channel_returns_unrecorded": len(unrecorded),
        "paid_twice_at_a_channel": sum(1 for n in at_channels.values() if n > 1),
        "journal_problems": len(journal),
        "payments_refused": len(PaymentRefusals(engine).recent()),
        "worker_kills": outcome.worker_kills,
        "server_restarts": outcome.server_restarts,
        "unknown_outcomes_asked_again": outcome.unknown_outcomes,
        "permanent_refusals": outcome.permanent_refusals,
        "manual_resolutions": outcome.resolved,
        "client_retries_through_outages": outcome.rpc_retries,
        "outcomes": dict(sorted(states.items())),
        "returned_total": str(recon.returned),
        "seconds": round(elapsed, 1),
    }
    table = Table(title="chaos run", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)
    for line in inconsistent[:20]:
        console.print(f"[red]ledger mismatch[/] {line}")
    for line in journal[:20]:
        console.print(f"[red]journal[/] {line}")
    return figures
