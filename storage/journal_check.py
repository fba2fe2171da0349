"""Checks of the account balance's journal: on its own (``Journal.check``), and against the
payment ledger (``journal_against_ledger``), each problem in one line.

The journal is written by the account-balance channel and the ledger by the payment activity after
the channel answers, so agreement between the two is evidence that a leg returned to the balance
reached the customer's balance once, for its amount, and nothing else did. A check run while a leg
is between the two writes sees a journal entry without its ledger row until the leg is recorded.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import Engine, and_, exists, func, select
from sqlalchemy.orm import aliased

from domain.certificates import Channel
from storage.certificates import from_cents
from storage.journal import BALANCE_PREFIX, REFUND, REVERSAL, JournalEntry, read_entries
from storage.schema import certificates, journal_entries, journal_postings, payment_returns

BALANCE_CHANNEL = Channel.ACCOUNT_BALANCE.value


def journal_problems(engine: Engine) -> list[str]:
    """Entries whose postings do not sum to zero per currency, entries with fewer than two
    postings, and reversals that do not negate exactly the refund entry they reverse."""
    e, p = journal_entries.c, journal_postings.c
    unbalanced = (
        select(p.entry_id, p.currency, func.sum(p.amount_cents))
        .group_by(p.entry_id, p.currency)
        .having(func.sum(p.amount_cents) != 0)
        .order_by(p.entry_id, p.currency)
    )
    short = (
        select(e.entry_id, func.count(p.line))
        .select_from(journal_entries.outerjoin(journal_postings, e.entry_id == p.entry_id))
        .group_by(e.entry_id)
        .having(func.count(p.line) < 2)
        .order_by(e.entry_id)
    )
    problems = []
    with engine.connect() as conn:
        for entry_id, currency, cents in conn.execute(unbalanced):
            total = from_cents(int(cents))
            problems.append(f"entry {entry_id}: its {currency} postings sum to {total}, not 0")
        for entry_id, count in conn.execute(short):
            problems.append(f"entry {entry_id} has {count} posting(s), fewer than two")
        reversing = e.reverses.is_not(None) | (e.kind == REVERSAL)
        reversals = read_entries(conn, reversing)
        reversed_ = e.entry_id.in_(select(e.reverses).where(e.reverses.is_not(None)))
        originals = {o.entry_id: o for o in read_entries(conn, reversed_)}
    for reversal in reversals:
        original = originals.get(reversal.reverses) if reversal.reverses else None
        problems.extend(_reversal_problems(reversal, original))
    return problems


def _reversal_problems(reversal: JournalEntry, original: JournalEntry | None) -> list[str]:
    name = f"entry {reversal.entry_id}"
    if reversal.reverses is None:
        return [f"{name} is a reversal of no entry"]
    if reversal.kind != REVERSAL:
        return [f"{name} reverses entry {reversal.reverses} but is a {reversal.kind!r} entry"]
    if original is None:
        return [f"{name} reverses entry {reversal.reverses}, which does not exist"]
    if original.reverses is not None or original.kind == REVERSAL:
        return [f"{name} reverses entry {original.entry_id}, itself a reversal"]
    negated = sorted((q.line, q.account, q.currency, -q.amount) for q in original.postings)
    got = sorted((q.line, q.account, q.currency, q.amount) for q in reversal.postings)
    if got != negated:
        return [f"{name} does not negate the postings of entry {original.entry_id} exactly"]
    return []


def journal_against_ledger(engine: Engine) -> list[str]:
    """The journal's own problems, then: every ledger row returned to the account balance has a
    refund entry under its idempotency key, not reversed, crediting its amount and currency to
    the certificate's owner; every refund entry not reversed has such a ledger row."""
    return [*journal_problems(engine), *_ledger_rows_unmatched(engine), *_entries_unmatched(engine)]


def _ledger_rows_unmatched(engine: Engine) -> list[str]:
    r, c, e, p = payment_returns.c, certificates.c, journal_entries.c, journal_postings.c
    reversal = aliased(journal_entries)
    query = (
        select(
            r.idempotency_key,
            r.amount_cents,
            r.currency,
            r.certificate_id,
            c.owner,
            e.entry_id,
            e.kind,
            reversal.c.entry_id.label("reversed_by"),
            p.account,
            p.currency.label("posted_currency"),
            p.amount_cents.label("posted_cents"),
        )
        .select_from(
            payment_returns.outerjoin(certificates, c.certificate_id == r.certificate_id)
            .outerjoin(journal_entries, e.idempotency_key == r.idempotency_key)
            .outerjoin(reversal, reversal.c.reverses == e.entry_id)
            .outerjoin(
                journal_postings,
                and_(p.entry_id == e.entry_id, p.account.startswith(BALANCE_PREFIX)),
            )
        )
        .where(r.channel == BALANCE_CHANNEL)
        .order_by(r.id, p.line)
    )
    credited: dict[str, list[tuple[str, str, Decimal]]] = defaultdict(list)
    rows = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            rows[row.idempotency_key] = row
            if row.account is not None:
                credited[row.idempotency_key].append(
                    (row.account, row.posted_currency, from_cents(row.posted_cents))
                )
    problems = []
    for key, row in rows.items():
        name = f"ledger row {key!r} ({BALANCE_CHANNEL})"
        returned = from_cents(row.amount_cents)
        if row.entry_id is None:
            problems.append(f"{name} has no journal entry")
        elif row.kind != REFUND:
            problems.append(f"{name}: journal entry {row.entry_id} is a {row.kind!r} entry")
        elif row.owner is None:
            problems.append(f"{name}: certificate {row.certificate_id!r} is not on record")
        elif credited[key] != [(BALANCE_PREFIX + row.owner, row.currency, returned)]:
            got = ", ".join(
                f"{amount} {cur} to {account}" for account, cur, amount in credited[key]
            )
            problems.append(
                f"{name} returned {returned} {row.currency} to {BALANCE_PREFIX}{row.owner}, "
                f"but journal entry {row.entry_id} credits {got or 'nothing'}"
            )
        elif row.reversed_by is not None:
            problems.append(
                f"{name}: journal entry {row.entry_id} is reversed by entry {row.reversed_by}"
            )
    return problems


def _entries_unmatched(engine: Engine) -> list[str]:
    r, e = payment_returns.c, journal_entries.c
    reversal = aliased(journal_entries)
    reversed_ = exists().where(reversal.c.reverses == e.entry_id)
    query = (
        select(e.entry_id, e.idempotency_key, r.channel)
        .select_from(
            journal_entries.outerjoin(payment_returns, r.idempotency_key == e.idempotency_key)
        )
        .where(e.kind == REFUND, ~reversed_)
        .where(r.id.is_(None) | (r.channel != BALANCE_CHANNEL))
        .order_by(e.entry_id)
    )
    problems = []
    with engine.connect() as conn:
        for entry_id, key, channel in conn.execute(query):
            name = f"journal entry {entry_id} ({key!r})"
            if channel is None:
                problems.append(f"{name} has no ledger row")
            else:
                problems.append(f"{name}: its ledger row is on {channel}, not {BALANCE_CHANNEL}")
    return problems
