"""The system of record: atomic, idempotent seeding and idempotent status changes."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import CertificateNotFoundError, SeedConflictError, StatusConflictError
from storage.ledger import Ledger
from tests.databases import BOTH
from tests.factories import alipay_return, certificate, shanghai


@pytest.fixture(params=BOTH)
def backend(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return request.param


PURCHASED = shanghai(2026, 11, 20, 10)


def exactly(error: type[Exception], message: str) -> AbstractContextManager[Any]:
    """``error`` with exactly ``message``: these messages reach customers and operators."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


def test_a_seeded_certificate_reads_back_identically(store):
    cert = certificate(
        "cas-1",
        purchased_at=PURCHASED,
        payments=[
            {"channel": "alipay", "amount": "199.99", "reference": "a"},
            {"channel": "voucher", "amount": "0.01", "reference": "v"},
        ],
    )
    store.seed([cert])
    loaded = store.get("cas-1")
    assert loaded == cert
    assert loaded.order.payments[0].amount == Decimal("199.99")
    assert loaded.purchased_at == PURCHASED


def test_seeding_twice_changes_nothing(store):
    certs = [certificate(f"cas-{i}", purchased_at=PURCHASED) for i in range(3)]
    first = store.seed(certs)
    second = store.seed(certs)
    assert first.inserted == ["cas-0", "cas-1", "cas-2"]
    assert second.inserted == []
    assert second.unchanged == ["cas-0", "cas-1", "cas-2"]
    assert store.count() == 3


def test_reseeding_does_not_undo_a_refund(store):
    cert = certificate("cas-1", purchased_at=PURCHASED)
    store.seed([cert])
    store.mark_refunded("cas-1", "refund-cas-1")
    store.seed([cert])
    assert store.get("cas-1").status == "refunded"


def test_reseeding_compares_what_the_file_sets_and_nothing_the_system_keeps(store):
    cert = certificate("cas-1", purchased_at=PURCHASED, issued_at=PURCHASED)
    other = certificate("cas-2", purchased_at=PURCHASED)
    store.seed([cert, other])
    assert store.order_status("cas-1") == "open"
    store.mark_refund_pending("cas-1", "r1")  # held_by is now set
    store.cancel_order("cas-2", "r2")  # released_by is now set
    same_instant = cert.model_copy(
        update={"purchased_at": PURCHASED.astimezone(UTC), "issued_at": PURCHASED.astimezone(UTC)}
    )
    assert store.seed([same_instant, other]).unchanged == ["cas-1", "cas-2"]
    moved = cert.model_copy(update={"issued_at": PURCHASED + timedelta(minutes=1)})
    with exactly(SeedConflictError, "certificate cas-1 already exists with different data"):
        store.seed([moved])


def test_a_conflicting_record_loads_nothing(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    changed = certificate("cas-1", purchased_at=PURCHASED, owner="someone-else")
    with exactly(SeedConflictError, "certificate cas-1 already exists with different data"):
        store.seed([certificate("cas-new", purchased_at=PURCHASED), changed])
    with exactly(CertificateNotFoundError, "no certificate 'cas-new'"):
        store.get("cas-new")


def test_a_reused_order_id_loads_nothing(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    own = certificate("cas-2", purchased_at=PURCHASED)
    clash = own.model_copy(update={"order": own.order.model_copy(update={"order_id": "ord-cas-1"})})
    with exactly(
        SeedConflictError, "an order id in the file is already used by another certificate"
    ):
        store.seed([clash])
    assert store.count() == 1


def test_a_payment_of_another_order_loads_nothing(store):
    """A payment is returned under its reference: two orders claiming one would pay it twice."""
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    paid_once = [{"channel": "alipay", "amount": "199.00", "reference": "ali-cas-1"}]
    clash = certificate("cas-2", purchased_at=PURCHASED, payments=paid_once)
    with exactly(
        SeedConflictError,
        "certificate cas-2: alipay payment ali-cas-1 already belongs to order ord-cas-1",
    ):
        store.seed([clash])
    assert store.count() == 1


def test_review_hold_and_restore_are_idempotent(store):
    issued = PURCHASED
    store.seed([certificate("cas-1", purchased_at=PURCHASED, issued_at=issued)])
    assert store.mark_refund_pending("cas-1", "r1") == "refund_pending"
    assert store.mark_refund_pending("cas-1", "r1") == "refund_pending"
    with exactly(StatusConflictError, "certificate cas-1 is held by r1"):
        store.mark_refund_pending("cas-1", "r2")
    assert store.restore("cas-1", "r1") == "issued"
    assert store.restore("cas-1", "r1") == "issued"
    assert store.get("cas-1").status == "issued"
    store.mark_refunded("cas-1", "r3")
    with exactly(StatusConflictError, "certificate cas-1 is refunded"):
        store.mark_refund_pending("cas-1", "r4")


def test_restore_by_another_refund_changes_nothing(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    store.mark_refund_pending("cas-1", "r1")
    assert store.restore("cas-1", "r2") == "refund_pending"


def test_cancel_order_is_idempotent_per_refund(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    assert store.cancel_order("cas-1", "r1") == "ord-cas-1"
    assert store.cancel_order("cas-1", "r1") == "ord-cas-1"
    assert store.order_status("cas-1") == "cancelled"
    with exactly(StatusConflictError, "order ord-cas-1 was cancelled by r1"):
        store.cancel_order("cas-1", "r2")


def test_unknown_certificate(store):
    with pytest.raises(CertificateNotFoundError):
        store.get("nope")


def test_mark_refunded_is_idempotent_and_refused_while_another_refund_holds_it(store):
    store.seed(
        [certificate("cas-1", purchased_at=PURCHASED), certificate("cas-2", purchased_at=PURCHASED)]
    )
    store.mark_refund_pending("cas-1", "r1")
    with exactly(StatusConflictError, "certificate cas-1 is held by r1"):
        store.mark_refunded("cas-1", "r2")
    assert store.get("cas-1").status == "refund_pending"
    assert store.mark_refunded("cas-1", "r1") == "refunded"
    assert store.mark_refunded("cas-1", "r1") == "refunded"
    assert store.get("cas-1").status == "refunded"
    assert store.mark_refunded("cas-2", "r3") == "refunded"
    with exactly(CertificateNotFoundError, "no certificate 'nope'"):
        store.mark_refunded("nope", "r1")
    with exactly(CertificateNotFoundError, "no order for certificate 'nope'"):
        store.cancel_order("nope", "r1")


def test_a_certificate_paid_only_by_voucher_or_not_at_all_reads_back(store):
    vouchers = certificate(
        "cas-v",
        purchased_at=PURCHASED,
        payments=[{"channel": "voucher", "amount": "10.00", "reference": "v"}],
    )
    unpaid = certificate("cas-0", purchased_at=PURCHASED, payments=[])
    store.seed([vouchers, unpaid])
    assert store.get("cas-v") == vouchers
    assert store.get("cas-0") == unpaid
    assert store.get("cas-0").order.payments == []


def test_a_return_keeps_one_transaction_id_per_key(store):
    ledger = Ledger(store.engine)

    first, existed = ledger.record(alipay_return("r1", "cas-1", 0, "10.00"))
    again, existed_again = ledger.record(alipay_return("r1", "cas-1", 0, "10.00"))
    other, _ = ledger.record(alipay_return("r1", "cas-1", 1, "10.00"))
    assert (existed, existed_again) == (False, True)
    assert again.transaction_id == first.transaction_id
    assert other.transaction_id != first.transaction_id
    assert [e.transaction_id for e in ledger.entries("r1")] == [
        first.transaction_id,
        other.transaction_id,
    ]


def test_a_hold_is_never_restored_once_its_refund_cancelled_the_order_or_revoked(store):
    from activities.simulated import SimulatedCertificateAuthority

    store.seed(
        [
            certificate("cas-u", purchased_at=PURCHASED),
            certificate("cas-i", purchased_at=PURCHASED, issued_at=PURCHASED),
        ]
    )
    store.mark_refund_pending("cas-u", "r1")
    store.cancel_order("cas-u", "r1")
    assert store.restore("cas-u", "r1") == "refund_pending"
    assert (store.get("cas-u").held_by, store.get("cas-u").released_by) == ("r1", "r1")
    store.mark_refund_pending("cas-i", "r2")
    SimulatedCertificateAuthority(store.engine, store).revoke("cas-i", "r2")
    assert store.restore("cas-i", "r2") == "revoked"
    assert (store.get("cas-i").held_by, store.get("cas-i").released_by) == ("r2", "r2")


def test_a_hold_ends_when_another_party_revoked_the_certificate(store):
    from activities.simulated import SimulatedCertificateAuthority

    store.seed([certificate("cas-1", purchased_at=PURCHASED, issued_at=PURCHASED)])
    store.mark_refund_pending("cas-1", "r1")
    SimulatedCertificateAuthority(store.engine, store).revoke("cas-1", "ca-console")
    assert store.restore("cas-1", "r1") == "revoked"
    assert store.get("cas-1").held_by is None


def test_a_repair_order_is_claimed_once_by_one_run_within_its_window(store):
    from datetime import timedelta

    from storage.repairs import RepairOrders

    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    orders = RepairOrders(store.engine)
    args = ("refund-cas-1", "cas-1", "op-1", "complete")
    assert not orders.claim(*args, "run-0")  # nothing recorded
    stale = orders.record("cas-1", "refund-cas-1", "complete", "op-1", "n")
    orders.abandon(stale)
    assert not orders.claim(*args, "run-1")  # an abandoned order never counts
    orders.record("cas-1", "refund-cas-1", "complete", "op-1", "n")
    later = orders.of("cas-1")[-1].at + timedelta(minutes=11)
    assert not orders.claim(*args, "run-1", now=later)  # too old
    assert not orders.claim("refund-cas-1", "cas-1", "op-2", "complete", "run-1")
    assert orders.claim(*args, "run-1")
    assert orders.claim(*args, "run-1")  # the same run, retried
    assert not orders.claim(*args, "run-2")
    assert [r.claimed_by_run for r in orders.of("cas-1")] == [
        "not started",
        "run-1",
    ]


def test_two_refunds_racing_for_one_hold_never_both_win(store, database_url):
    """From separate connections, as two workers would: exactly one holder each round."""
    import threading

    from sqlalchemy import create_engine

    from storage.certificates import CertificateStore

    store.seed([certificate("cas-race", purchased_at=PURCHASED, issued_at=PURCHASED)])
    engines = [create_engine(database_url) for _ in range(2)]
    racers = [CertificateStore(engine) for engine in engines]
    try:
        for round_ in range(50):
            barrier = threading.Barrier(2)
            won: list[str] = []

            def hold(
                racer: CertificateStore,
                refund_id: str,
                barrier: threading.Barrier = barrier,
                won: list[str] = won,
            ) -> None:
                barrier.wait()
                try:
                    racer.mark_refund_pending("cas-race", refund_id)
                    won.append(refund_id)
                except StatusConflictError:
                    pass

            threads = [
                threading.Thread(target=hold, args=(racer, f"r{round_}-{n}"))
                for n, racer in enumerate(racers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert len(won) == 1, (round_, won)
            assert store.get("cas-race").held_by == won[0]
            assert store.restore("cas-race", won[0]) == "issued"
    finally:
        for engine in engines:
            engine.dispose()


def test_the_ledger_takes_one_return_per_key_whoever_records_it(store):
    """A leg paid by a channel cannot also be settled by hand, nor the other way round."""
    from dataclasses import replace

    from sqlalchemy import insert
    from sqlalchemy.exc import IntegrityError

    from domain.ledger import MANUAL
    from storage.schema import payment_returns

    ledger = Ledger(store.engine)
    paid = alipay_return("r1", "cas-1", 0, "10.00")
    by_hand = replace(paid, channel=MANUAL, transaction_id="manual-x")
    assert ledger.record(paid)[1] is False
    entry, existed = ledger.record(by_hand)
    assert existed and entry.channel == "alipay"
    settled = alipay_return("r1", "cas-1", 1, "10.00")
    assert ledger.record(replace(settled, channel=MANUAL, transaction_id="manual-y"))[1] is False
    entry, existed = ledger.record(settled)
    assert existed and entry.channel == MANUAL
    assert [e.channel for e in ledger.entries()] == ["alipay", MANUAL]
    with pytest.raises(IntegrityError), store.engine.begin() as conn:  # the database says so too
        row = {**paid.__dict__, "transaction_id": "other", "returned_at": PURCHASED}
        row["amount_cents"] = 1000
        del row["amount"]
        conn.execute(insert(payment_returns), row)
