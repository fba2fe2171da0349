"""The account balance's journal on SQLite and PostgreSQL: double entry, once per key even when
two posts race, corrections only by reversal, its own check and its check against the payment
ledger (each shown a row broken with raw SQL), and the account-balance payment channel."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, insert, select, text

from activities.balance_channel import AccountBalanceChannel
from activities.gateways import ChannelOutcome, ChannelRefund, PaymentChannel
from domain.certificates import Channel
from domain.ledger import Return
from storage.certificates import CertificateStore
from storage.journal import (
    REFUNDS_PAYABLE,
    Journal,
    JournalError,
    KeyConflictError,
    Posting,
    ReversalError,
)
from storage.journal_check import journal_against_ledger
from storage.ledger import Ledger
from storage.schema import journal_entries, journal_postings
from tests.databases import BOTH
from tests.factories import certificate, shanghai


@pytest.fixture(params=BOTH)
def backend(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return request.param


@pytest.fixture
def journal(store: CertificateStore) -> Journal:
    return Journal(store.engine)


def post(journal: Journal, key: str, amount: str = "30.00", owner: str = "user-1", **kw):
    values = {"refund_id": key.partition(":")[0], "currency": "CNY", "memo": "SSL refund"} | kw
    return journal.post_refund(key, owner=owner, amount=Decimal(amount), **values)


def test_a_refund_is_one_entry_of_two_postings_that_credit_the_owner(journal):
    entry, already = post(journal, "refund-a:leg-0", "30.50")
    assert not already and entry.kind == "refund" and entry.refund_id == "refund-a"
    assert entry.postings == (
        Posting(1, REFUNDS_PAYABLE, "CNY", Decimal("-30.50")),
        Posting(2, "balance:user-1", "CNY", Decimal("30.50")),
    )
    assert entry.posted_at.tzinfo is UTC
    assert journal.find("refund-a:leg-0") == entry
    assert journal.find("refund-b:leg-0") is None
    assert journal.balance("user-1") == {"CNY": Decimal("30.50")}
    assert str(journal.balance("user-1")["CNY"]) == "30.50"
    assert journal.balance("user-2") == {}


def test_the_same_key_again_returns_the_first_entry_and_credits_nothing_more(journal):
    first, _ = post(journal, "refund-a:leg-0")
    again, already = post(journal, "refund-a:leg-0", memo="another memo")
    assert already and again == first
    assert journal.balance("user-1") == {"CNY": Decimal("30.00")}


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"amount": "30.01"}, "amount"),
        ({"owner": "user-2"}, "owner"),
        ({"currency": "USD"}, "currency"),
        ({"refund_id": "refund-other"}, "refund"),
    ],
)
def test_another_post_under_a_used_key_is_refused(journal, change, what):
    post(journal, "refund-a:leg-0")
    with pytest.raises(KeyConflictError) as refused:
        post(journal, "refund-a:leg-0", **change)
    assert isinstance(refused.value, ValueError)
    message = str(refused.value)
    assert "\n" not in message and f"another {what}" in message
    assert journal.balance("user-1") == {"CNY": Decimal("30.00")}
    assert journal.balance("user-2") == {}


def test_two_posts_racing_under_one_key_leave_one_entry(journal, store):
    for attempt in range(5):
        key = f"refund-race{attempt}:leg-0"
        start = threading.Barrier(2)

        def racer(key: str = key, start: threading.Barrier = start):
            start.wait()
            return post(journal, key, "12.34")

        with ThreadPoolExecutor(2) as pool:
            answers = [f.result() for f in [pool.submit(racer), pool.submit(racer)]]
        assert sorted(already for _, already in answers) == [False, True]
        assert answers[0][0] == answers[1][0]
        assert count(store.engine, journal_entries.c.idempotency_key == key) == 1
    assert journal.balance("user-1") == {"CNY": Decimal("61.70")}
    assert journal.check() == []


def count(engine: Engine, where) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(where)).scalar_one())


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"owner": "u" * 65}, "longer than 64"),
        ({"owner": "user 1"}, "may hold only"),
        ({"owner": ""}, "no owner id"),
        ({"amount": "0"}, "more than zero"),
        ({"amount": "-5.00"}, "more than zero"),
        ({"amount": "1.005"}, "two decimal places"),
        ({"currency": "cny"}, "three capital letters"),
        ({"memo": "m" * 257}, "longer than 256"),
        ({"memo": "two\nlines"}, "line breaks"),
    ],
)
def test_a_post_the_journal_cannot_hold_is_refused_in_one_line(journal, store, change, problem):
    with pytest.raises(JournalError, match=problem):
        post(journal, "refund-a:leg-0", **change)
    assert count(store.engine, journal_entries.c.entry_id.is_not(None)) == 0


def test_an_account_name_fits_80_characters(journal):
    owner = "u" * 64
    entry, _ = post(journal, "refund-a:leg-0", owner=owner)
    assert max(len(p.account) for p in entry.postings) <= 80
    assert journal.balance(owner) == {"CNY": Decimal("30.00")}


def test_a_reversal_negates_its_entry_exactly_once_and_is_never_reversed(journal):
    entry, _ = post(journal, "refund-a:leg-0", "30.00")
    reversal, already = journal.reverse(entry.entry_id, "fix-1", "posted in error")
    assert not already and reversal.kind == "reversal" and reversal.reverses == entry.entry_id
    assert reversal.refund_id == "refund-a"
    assert [(p.line, p.account, p.currency, -p.amount) for p in reversal.postings] == [
        (p.line, p.account, p.currency, p.amount) for p in entry.postings
    ]
    assert journal.balance("user-1") == {"CNY": Decimal("0.00")}
    assert journal.reverse(entry.entry_id, "fix-1", "posted in error") == (reversal, True)
    with pytest.raises(ReversalError, match="already reversed"):
        journal.reverse(entry.entry_id, "fix-2", "again")
    with pytest.raises(ReversalError, match="never reversed"):
        journal.reverse(reversal.entry_id, "fix-3", "undo the fix")
    with pytest.raises(ReversalError, match="no journal entry"):
        journal.reverse(999_999, "fix-4", "nothing")
    with pytest.raises(KeyConflictError):
        post(journal, "fix-1")  # a reversal's key is taken for good
    other, _ = post(journal, "refund-b:leg-0")
    with pytest.raises(KeyConflictError, match="does not reverse"):
        journal.reverse(other.entry_id, "fix-1", "a used key")
    assert journal.balance("user-1") == {"CNY": Decimal("30.00")}
    assert journal.check() == []


def test_postings_sum_to_zero_per_currency_after_many_posts_and_reversals(journal, store):
    rng = random.Random(20261120)
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    posted = []
    for n in range(60):
        owner, currency = rng.choice(["user-1", "user-2", "user-3"]), rng.choice(["CNY", "USD"])
        amount = Decimal(rng.randint(1, 99_999)) / 100
        entry, _ = post(journal, f"refund-{n}:leg-0", str(amount), owner, currency=currency)
        post(journal, f"refund-{n}:leg-0", str(amount), owner, currency=currency)  # retried
        expected[owner, currency] += amount
        posted.append((entry, owner, currency, amount))
        if rng.random() < 0.3:
            undone, undone_owner, undone_currency, undone_amount = rng.choice(posted)
            try:
                journal.reverse(undone.entry_id, f"fix-{n}", "correction")
            except ReversalError:
                continue  # reversed already: refused, and nothing changed
            expected[undone_owner, undone_currency] -= undone_amount
    p = journal_postings.c
    with store.engine.connect() as conn:
        sums = conn.execute(
            select(p.entry_id, p.currency, func.sum(p.amount_cents)).group_by(
                p.entry_id, p.currency
            )
        ).all()
        totals = conn.execute(select(p.currency, func.sum(p.amount_cents)).group_by(p.currency))
        assert {currency: int(total) for currency, total in totals} == {"CNY": 0, "USD": 0}
    assert sums and all(total == 0 for _, _, total in sums)
    for owner in ("user-1", "user-2", "user-3"):
        balances = journal.balance(owner)
        for currency in balances:
            assert balances[currency] == expected[owner, currency].quantize(Decimal("0.01"))
    assert count(store.engine, journal_entries.c.reverses.is_not(None)) > 5
    assert journal.check() == []


def test_entries_are_the_owners_postings_newest_first_and_bounded(journal):
    first, _ = post(journal, "refund-a:leg-0", "10.00")
    post(journal, "refund-x:leg-0", "99.00", owner="user-2")
    second, _ = post(journal, "refund-b:leg-0", "20.00")
    reversal, _ = journal.reverse(first.entry_id, "fix-a", "correction")
    lines = journal.entries("user-1")
    assert [line.entry.entry_id for line in lines] == [
        reversal.entry_id,
        second.entry_id,
        first.entry_id,
    ]
    assert [line.posting.amount for line in lines] == [
        Decimal("-10.00"),
        Decimal("20.00"),
        Decimal("10.00"),
    ]
    assert all(line.posting.account == "balance:user-1" for line in lines)
    assert [line.entry.entry_id for line in journal.entries("user-1", limit=2)] == [
        reversal.entry_id,
        second.entry_id,
    ]
    for limit in (0, 1001):
        with pytest.raises(JournalError, match="limit"):
            journal.entries("user-1", limit=limit)


def raw_entry(conn, entry_id: int, key: str, postings, kind="refund", reverses=None) -> None:
    conn.execute(
        insert(journal_entries).values(
            entry_id=entry_id,
            idempotency_key=key,
            kind=kind,
            refund_id="refund-raw",
            memo="inserted by hand",
            reverses=reverses,
            posted_at=datetime.now(UTC),
        )
    )
    for line, (account, cents) in enumerate(postings, start=1):
        conn.execute(
            text(
                "INSERT INTO journal_postings (entry_id, line, account, currency, amount_cents) "
                "VALUES (:entry_id, :line, :account, 'CNY', :cents)"
            ),
            {"entry_id": entry_id, "line": line, "account": account, "cents": cents},
        )


def test_check_catches_each_broken_entry_written_by_hand(journal, store):
    good, _ = post(journal, "refund-a:leg-0", "30.00")
    assert journal.check() == []
    with store.engine.begin() as conn:
        raw_entry(conn, 901, "raw-unbalanced", [(REFUNDS_PAYABLE, -500), ("balance:user-1", 400)])
        raw_entry(conn, 902, "raw-one-posting", [("balance:user-1", 0)])
        raw_entry(
            conn,
            903,
            "raw-bad-reversal",
            [(REFUNDS_PAYABLE, -3000), ("balance:user-1", 3000)],
            kind="reversal",
            reverses=good.entry_id,
        )
    problems = journal.check()
    assert problems == [
        "entry 901: its CNY postings sum to -1.00, not 0",
        "entry 902 has 1 posting(s), fewer than two",
        f"entry 903 does not negate the postings of entry {good.entry_id} exactly",
    ]
    assert all("\n" not in problem for problem in problems)


def test_check_catches_a_reversed_reversal_and_an_entry_without_postings(journal, store):
    good, _ = post(journal, "refund-a:leg-0", "30.00")
    reversal, _ = journal.reverse(good.entry_id, "fix-a", "correction")
    with store.engine.begin() as conn:
        raw_entry(
            conn,
            904,
            "raw-undo-fix",
            [(REFUNDS_PAYABLE, -3000), ("balance:user-1", 3000)],
            kind="reversal",
            reverses=reversal.entry_id,
        )
        raw_entry(conn, 905, "raw-empty", [])
    assert journal.check() == [
        "entry 905 has 0 posting(s), fewer than two",
        f"entry 904 reverses entry {reversal.entry_id}, itself a reversal",
    ]


def balance_certificate(store: CertificateStore, certificate_id: str, owner: str) -> None:
    payments = [{"channel": "account_balance", "amount": "30.00", "reference": "bal-1"}]
    purchased = shanghai(2026, 11, 20)
    store.seed(
        [certificate(certificate_id, purchased_at=purchased, owner=owner, payments=payments)]
    )


def ledger_row(store: CertificateStore, certificate_id: str, amount: str, channel: str) -> str:
    key = f"refund-{certificate_id}:leg-0"
    Ledger(store.engine).record(
        Return(
            idempotency_key=key,
            refund_id=f"refund-{certificate_id}",
            certificate_id=certificate_id,
            leg_index=0,
            channel=channel,
            original_channel="account_balance",
            amount=Decimal(amount),
            currency="CNY",
            reference="bal-1",
            transaction_id=f"tx-{certificate_id}",
        )
    )
    return key


def test_the_journal_agrees_with_the_ledger_until_a_row_is_broken(journal, store):
    for name in ("cas-ok", "cas-short", "cas-other", "cas-nojournal", "cas-noledger", "cas-ali"):
        balance_certificate(store, name, "user-1")
    ok = ledger_row(store, "cas-ok", "30.00", "account_balance")
    post(journal, ok, "30.00")
    undone, _ = post(journal, "refund-cas-undone:leg-0", "5.00")  # reversed: needs no ledger row
    journal.reverse(undone.entry_id, "fix-undone", "posted in error")
    assert journal_against_ledger(store.engine) == []

    post(journal, ledger_row(store, "cas-short", "30.00", "account_balance"), "25.00")
    post(journal, ledger_row(store, "cas-other", "30.00", "account_balance"), owner="user-2")
    ledger_row(store, "cas-nojournal", "30.00", "account_balance")
    no_ledger, _ = post(journal, "refund-cas-noledger:leg-0")
    alipay, _ = post(journal, ledger_row(store, "cas-ali", "30.00", "alipay"))
    with store.engine.begin() as conn:
        raw_entry(conn, 990, "raw-unbalanced", [(REFUNDS_PAYABLE, -100), ("balance:user-3", 90)])
    problems = journal_against_ledger(store.engine)
    assert problems[0] == "entry 990: its CNY postings sum to -0.10, not 0"
    assert any(
        p.startswith("ledger row 'refund-cas-short:leg-0' (account_balance) returned 30.00 CNY")
        and "credits 25.00 CNY to balance:user-1" in p
        for p in problems
    )
    assert any("refund-cas-other:leg-0" in p and "to balance:user-2" in p for p in problems)
    assert "ledger row 'refund-cas-nojournal:leg-0' (account_balance) has no journal entry" in (
        problems
    )
    assert (
        f"journal entry {no_ledger.entry_id} ('refund-cas-noledger:leg-0') has no ledger row"
        in (problems)
    )
    assert (
        f"journal entry {alipay.entry_id} ('refund-cas-ali:leg-0'): its ledger row is on alipay, "
        "not account_balance" in problems
    )
    assert "journal entry 990 ('raw-unbalanced') has no ledger row" in problems
    assert not any("cas-ok" in p or "cas-undone" in p for p in problems)
    assert len(problems) == 7


def test_a_ledger_row_whose_entry_was_reversed_is_a_problem(journal, store):
    balance_certificate(store, "cas-rev", "user-1")
    key = ledger_row(store, "cas-rev", "30.00", "account_balance")
    entry, _ = post(journal, key)
    reversal, _ = journal.reverse(entry.entry_id, "fix-rev", "correction")
    assert journal_against_ledger(store.engine) == [
        f"ledger row {key!r} (account_balance): journal entry {entry.entry_id} is reversed by "
        f"entry {reversal.entry_id}"
    ]


def order(key: str = "refund-cas-1:leg-0", amount: str = "30.00", owner: str = "user-1"):
    return ChannelRefund(
        idempotency_key=key,
        request_id=key,
        reference="bal-1",
        amount=Decimal(amount),
        currency="CNY",
        owner=owner,
    )


async def test_the_channel_posts_once_and_looks_the_key_up(journal):
    channel: PaymentChannel = AccountBalanceChannel(journal)
    assert channel.channel is Channel.ACCOUNT_BALANCE
    assert channel.request_id("refund-cas-1:leg-0") == "refund-cas-1:leg-0"
    assert await channel.lookup(order()) is None
    answer = await channel.refund(order())
    entry = journal.find("refund-cas-1:leg-0")
    assert entry is not None and entry.refund_id == "refund-cas-1"
    assert answer.outcome is ChannelOutcome.RETURNED
    assert answer.transaction_id == f"journal-{entry.entry_id}"
    assert answer.at == entry.posted_at
    assert await channel.refund(order()) == answer
    assert await channel.lookup(order()) == answer
    assert journal.balance("user-1") == {"CNY": Decimal("30.00")}


async def test_the_channel_refuses_a_key_posted_for_other_money(journal):
    channel = AccountBalanceChannel(journal)
    await channel.refund(order())
    refused = await channel.refund(order(amount="31.00"))
    assert refused.outcome is ChannelOutcome.REFUSED and refused.code == "key_conflict"
    assert "another amount" in refused.reason
    bad = await channel.refund(order(key="refund-cas-2:leg-0", owner="not an id"))
    assert bad.outcome is ChannelOutcome.REFUSED and bad.code == "invalid_order"
    assert journal.balance("user-1") == {"CNY": Decimal("30.00")}


def test_two_reversals_racing_for_one_entry_leave_one(journal, store):
    entry, _ = post(journal, "refund-a:leg-0")
    start = threading.Barrier(2)

    def reverse(key: str):
        start.wait()
        try:
            return journal.reverse(entry.entry_id, key, "correction")
        except ReversalError as err:
            return err

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(reverse, ["fix-1", "fix-2"]))
    assert sorted(type(a).__name__ for a in answers) == ["ReversalError", "tuple"]
    assert count(store.engine, journal_entries.c.reverses == entry.entry_id) == 1
    assert journal.balance("user-1") == {"CNY": Decimal("0.00")}
