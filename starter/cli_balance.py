"""``refunds balance OWNER``: a customer's account balance per currency and its newest journal
entries, read from the system of record (no Temporal). Registered on the app in ``starter.cli``."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from starter.cli_common import JsonFlag, checked_id, load_settings
from starter.render import console, local_time, print_json
from storage.database import open_database
from storage.journal import AccountLine, Journal

SHOWN = 100
"""Entries shown, newest first."""


def balance(
    owner: Annotated[str, typer.Argument(help="The customer's account id.")],
    json_output: JsonFlag = False,
) -> None:
    """A customer's account balance per currency and its newest journal entries."""
    checked_id(owner, "owner")
    settings = load_settings()
    journal = Journal(open_database(settings.database_url))
    balances = journal.balance(owner)
    lines = journal.entries(owner, limit=SHOWN + 1)
    more = len(lines) > SHOWN
    if json_output:
        print_json(balance_json(owner, balances, lines[:SHOWN], more))
        return
    console.print(f"account balance of {owner}", style="bold")
    console.print(balances_table(balances))
    console.print(entries_table(lines[:SHOWN], settings.zone, more))


def balance_json(
    owner: str, balances: dict[str, Decimal], lines: list[AccountLine], more: bool
) -> dict[str, Any]:
    return {
        "owner": owner,
        "balances": {currency: str(amount) for currency, amount in balances.items()},
        "entries": [line_json(line) for line in lines],
        "more_entries": more,
    }


def line_json(line: AccountLine) -> dict[str, Any]:
    return {
        "entry_id": line.entry.entry_id,
        "kind": line.entry.kind,
        "posted_at": line.entry.posted_at.isoformat(),
        "memo": line.entry.memo,
        "refund_id": line.entry.refund_id,
        "reverses": line.entry.reverses,
        "amount": str(line.posting.amount),
        "currency": line.posting.currency,
    }


def balances_table(balances: dict[str, Decimal]) -> Table:
    table = Table(title="balance per currency", title_justify="left")
    table.add_column("currency")
    table.add_column("balance", justify="right")
    for currency, amount in balances.items():
        table.add_row(currency, str(amount))
    if not balances:
        table.add_row("-", "0.00")
    return table


def entries_table(lines: list[AccountLine], zone: ZoneInfo, more: bool) -> Table:
    title = f"journal entries, newest first ({len(lines)}{' shown' if more else ''})"
    table = Table(title=title, title_justify="left")
    for column in ("time", "entry", "memo", "refund", "amount"):
        table.add_column(
            column, justify="right" if column == "amount" else "left", no_wrap=column != "memo"
        )
    for line in lines:
        entry = line.entry
        memo = entry.memo if entry.reverses is None else f"{entry.memo} (reverses {entry.reverses})"
        table.add_row(
            local_time(entry.posted_at, zone),
            str(entry.entry_id),
            memo,
            entry.refund_id or "-",
            f"{line.posting.amount} {line.posting.currency}",
        )
    return table
