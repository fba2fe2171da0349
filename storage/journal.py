"""The account balance as a double-entry journal: append-only entries, each once by its key.

A refund to the account balance is one entry of two postings, ``refunds-payable`` -amount and
``balance:<owner>`` +amount. Nothing is updated or deleted: a correction is a new entry whose
postings negate another's (``reverse``), and an entry is reversed at most once. Every write is one
transaction guarded by the schema's unique keys, so two attempts racing under one key leave one
entry and both callers read it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from domain.values import id_problem
from storage.certificates import CENT, from_cents, to_cents
from storage.schema import journal_entries, journal_postings

REFUND = "refund"
REVERSAL = "reversal"
REFUNDS_PAYABLE = "refunds-payable"
BALANCE_PREFIX = "balance:"
MAX_ACCOUNT = 80
MAX_KEY = 200
MAX_REFUND_ID = 128
MAX_MEMO = 256
MAX_ENTRIES = 1000
MAX_CENTS = 2**62
CURRENCY = re.compile(r"[A-Z]{3}")


class JournalError(ValueError):
    """A post or reversal the journal refuses; ``str(err)`` is one line."""


class KeyConflictError(JournalError):
    """The idempotency key is already posted, for something else."""


class ReversalError(JournalError):
    """The entry cannot be reversed (unknown, a reversal, or reversed already)."""


@dataclass(frozen=True)
class Posting:
    line: int
    account: str
    currency: str
    amount: Decimal


@dataclass(frozen=True)
class JournalEntry:
    entry_id: int
    idempotency_key: str
    kind: str
    refund_id: str | None
    memo: str
    reverses: int | None
    posted_at: datetime
    postings: tuple[Posting, ...]


@dataclass(frozen=True)
class AccountLine:
    """One posting to an owner's balance, with the entry it belongs to."""

    entry: JournalEntry
    posting: Posting


def balance_account(owner: str) -> str:
    """The owner's balance account; a bad owner id is a one-line ``JournalError``."""
    problem = id_problem(owner, "owner")
    if problem is not None:
        raise JournalError(problem)
    account = BALANCE_PREFIX + owner
    assert len(account) <= MAX_ACCOUNT
    return account


class Journal:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def post_refund(
        self,
        idempotency_key: str,
        refund_id: str,
        owner: str,
        amount: Decimal,
        currency: str,
        memo: str,
    ) -> tuple[JournalEntry, bool]:
        """Credit ``amount`` to the owner's balance once per key; returns the entry and whether
        the key was already posted. The same key for another amount, owner or currency (or
        refund) is a ``KeyConflictError``."""
        _check_text(idempotency_key, "idempotency key", MAX_KEY)
        refund_problem = id_problem(refund_id, "refund", MAX_REFUND_ID)
        if refund_problem is not None:
            raise JournalError(refund_problem)
        cents = _cents(amount)
        if not CURRENCY.fullmatch(currency):
            raise JournalError("the currency is not three capital letters (ISO 4217)")
        _check_text(memo, "memo", MAX_MEMO, empty=True)
        wanted = (
            (1, REFUNDS_PAYABLE, currency, -cents),
            (2, balance_account(owner), currency, cents),
        )
        entry = {"kind": REFUND, "refund_id": refund_id, "reverses": None}
        try:
            return self._insert(idempotency_key, memo, entry, wanted), False
        except IntegrityError:
            # Posted already: by an earlier attempt, or by one running alongside.
            existing = self.find(idempotency_key)
            if existing is None:
                raise
        differs = _differences(existing, refund_id, wanted[1][1], from_cents(cents), currency)
        if differs:
            raise KeyConflictError(
                f"idempotency key {idempotency_key!r} is already posted as entry "
                f"{existing.entry_id} with another {', '.join(differs)}"
            )
        return existing, True

    def reverse(self, entry_id: int, idempotency_key: str, memo: str) -> tuple[JournalEntry, bool]:
        """A new entry negating ``entry_id``'s postings exactly; returns it and whether the key
        had already reversed that entry. A reversal, or an entry already reversed under
        another key, is refused (``ReversalError``)."""
        _check_text(idempotency_key, "idempotency key", MAX_KEY)
        _check_text(memo, "memo", MAX_MEMO, empty=True)
        with self.engine.connect() as conn:
            found = read_entries(conn, journal_entries.c.entry_id == entry_id)
        if not found:
            raise ReversalError(f"no journal entry {entry_id}")
        original = found[0]
        if original.reverses is not None or original.kind == REVERSAL:
            raise ReversalError(f"entry {entry_id} is a reversal; a reversal is never reversed")
        negated = tuple(
            (p.line, p.account, p.currency, -to_cents(p.amount)) for p in original.postings
        )
        entry = {"kind": REVERSAL, "refund_id": original.refund_id, "reverses": entry_id}
        try:
            return self._insert(idempotency_key, memo, entry, negated), False
        except IntegrityError:
            existing = self.find(idempotency_key)
        if existing is not None and existing.reverses == entry_id:
            return existing, True
        if existing is not None:
            raise KeyConflictError(
                f"idempotency key {idempotency_key!r} is already posted as entry "
                f"{existing.entry_id}, which does not reverse entry {entry_id}"
            )
        raise ReversalError(f"entry {entry_id} is already reversed; an entry is reversed once")

    def _insert(
        self,
        idempotency_key: str,
        memo: str,
        entry: Mapping[str, Any],
        postings: Sequence[tuple[int, str, str, int]],
    ) -> JournalEntry:
        """Insert an entry and its postings in one transaction; ``IntegrityError`` when a unique
        key (the idempotency key, or the entry it reverses) is already taken."""
        with self.engine.begin() as conn:
            values = {**entry, "idempotency_key": idempotency_key, "memo": memo}
            result = conn.execute(
                insert(journal_entries).values(posted_at=datetime.now(UTC), **values)
            )
            (entry_id,) = result.inserted_primary_key or (None,)
            conn.execute(
                insert(journal_postings),
                [
                    {
                        "entry_id": entry_id,
                        "line": line,
                        "account": account,
                        "currency": currency,
                        "amount_cents": cents,
                    }
                    for line, account, currency, cents in postings
                ],
            )
            return read_entries(conn, journal_entries.c.entry_id == entry_id)[0]

    def find(self, idempotency_key: str) -> JournalEntry | None:
        with self.engine.connect() as conn:
            found = read_entries(conn, journal_entries.c.idempotency_key == idempotency_key)
        return found[0] if found else None

    def balance(self, owner: str) -> dict[str, Decimal]:
        """The owner's balance per currency (every currency they ever had an entry in)."""
        query = (
            select(journal_postings.c.currency, func.sum(journal_postings.c.amount_cents))
            .where(journal_postings.c.account == balance_account(owner))
            .group_by(journal_postings.c.currency)
            .order_by(journal_postings.c.currency)
        )
        with self.engine.connect() as conn:
            return {currency: from_cents(int(cents)) for currency, cents in conn.execute(query)}

    def entries(self, owner: str, limit: int = 50) -> list[AccountLine]:
        """The owner's postings with their entries, newest first, at most ``limit``."""
        if not 1 <= limit <= MAX_ENTRIES:
            raise JournalError(f"the limit must be between 1 and {MAX_ENTRIES}")
        query = (
            select(journal_postings.c.entry_id, journal_postings.c.line)
            .where(journal_postings.c.account == balance_account(owner))
            .order_by(journal_postings.c.entry_id.desc(), journal_postings.c.line)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            wanted = [(row.entry_id, row.line) for row in conn.execute(query)]
            ids = sorted({entry_id for entry_id, _ in wanted})
            by_id = {e.entry_id: e for e in read_entries(conn, journal_entries.c.entry_id.in_(ids))}
        lines = []
        for entry_id, line in wanted:
            entry = by_id[entry_id]
            lines.append(AccountLine(entry, next(p for p in entry.postings if p.line == line)))
        return lines

    def check(self) -> list[str]:
        """What is wrong in the journal, one line each (empty when it holds together)."""
        # The checks read entries through this module, so they are imported when first used.
        from storage.journal_check import journal_problems

        return journal_problems(self.engine)


def read_entries(conn: Connection, where: Any) -> list[JournalEntry]:
    """Entries matching ``where`` with their postings, oldest first, in two queries."""
    e, p = journal_entries.c, journal_postings.c
    rows = conn.execute(select(journal_entries).where(where).order_by(e.entry_id)).mappings()
    entries = list(rows)
    postings: dict[int, list[Posting]] = defaultdict(list)
    if entries:
        matching = select(e.entry_id).where(where)
        query = (
            select(journal_postings).where(p.entry_id.in_(matching)).order_by(p.entry_id, p.line)
        )
        for q in conn.execute(query).mappings():
            postings[q["entry_id"]].append(
                Posting(q["line"], q["account"], q["currency"], from_cents(q["amount_cents"]))
            )
    return [
        JournalEntry(
            row["entry_id"],
            row["idempotency_key"],
            row["kind"],
            row["refund_id"],
            row["memo"],
            row["reverses"],
            row["posted_at"],
            tuple(postings[row["entry_id"]]),
        )
        for row in entries
    ]


def _differences(
    existing: JournalEntry, refund_id: str, account: str, amount: Decimal, currency: str
) -> list[str]:
    """What an entry already under a key differs in from the refund posted again under it."""
    credited = [p for p in existing.postings if p.account.startswith(BALANCE_PREFIX)]
    checks = (
        ("kind", existing.kind == REFUND),
        ("refund", existing.refund_id == refund_id),
        ("owner", [p.account for p in credited] == [account]),
        ("amount", [p.amount for p in credited] == [amount]),
        ("currency", {p.currency for p in existing.postings} == {currency}),
    )
    return [what for what, same in checks if not same]


def _cents(amount: Decimal) -> int:
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise JournalError("the amount is not a decimal number")
    if amount <= 0:
        raise JournalError("the amount must be more than zero")
    try:
        exact = amount == amount.quantize(CENT)
    except InvalidOperation:
        exact = False
    if not exact:
        raise JournalError("the amount has more than two decimal places, or too many digits")
    cents = to_cents(amount)
    if cents > MAX_CENTS:
        raise JournalError("the amount is too large")
    return cents


def _check_text(value: str, what: str, limit: int, *, empty: bool = False) -> None:
    if not value.strip() and not empty:
        raise JournalError(f"no {what} was given")
    if len(value) > limit:
        raise JournalError(f"the {what} is longer than {limit} characters")
    if not value.isprintable():
        raise JournalError(f"the {what} holds line breaks or other invisible characters")
