"""The system of record: atomic, idempotent seeding and idempotent status changes."""

from __future__ import annotations

from decimal import Decimal

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


def test_a_conflicting_record_loads_nothing(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    changed = certificate("cas-1", purchased_at=PURCHASED, owner="someone-else")
    with pytest.raises(SeedConflictError, match="cas-1"):
        store.seed([certificate("cas-new", purchased_at=PURCHASED), changed])
    with pytest.raises(CertificateNotFoundError):
        store.get("cas-new")


def test_a_reused_order_id_loads_nothing(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    clash = certificate("cas-2", purchased_at=PURCHASED).model_copy(
        update={"order": store.get("cas-1").order}
    )
    with pytest.raises(SeedConflictError, match="order id"):
        store.seed([clash])
    assert store.count() == 1


def test_review_hold_and_restore_are_idempotent(store):
    issued = PURCHASED
    store.seed([certificate("cas-1", purchased_at=PURCHASED, issued_at=issued)])
    assert store.mark_refund_pending("cas-1", "r1") == "refund_pending"
    assert store.mark_refund_pending("cas-1", "r1") == "refund_pending"
    with pytest.raises(StatusConflictError):
        store.mark_refund_pending("cas-1", "r2")
    assert store.restore("cas-1", "r1") == "issued"
    assert store.restore("cas-1", "r1") == "issued"
    assert store.get("cas-1").status == "issued"


def test_restore_by_another_refund_changes_nothing(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    store.mark_refund_pending("cas-1", "r1")
    assert store.restore("cas-1", "r2") == "refund_pending"


def test_cancel_order_is_idempotent_per_refund(store):
    store.seed([certificate("cas-1", purchased_at=PURCHASED)])
    assert store.cancel_order("cas-1", "r1") == "ord-cas-1"
    assert store.cancel_order("cas-1", "r1") == "ord-cas-1"
    assert store.order_status("cas-1") == "cancelled"
    with pytest.raises(StatusConflictError):
        store.cancel_order("cas-1", "r2")


def test_unknown_certificate(store):
    with pytest.raises(CertificateNotFoundError):
        store.get("nope")


def test_mark_refunded_is_idempotent_and_refused_while_another_refund_holds_it(store):
    store.seed(
        [certificate("cas-1", purchased_at=PURCHASED), certificate("cas-2", purchased_at=PURCHASED)]
    )
    store.mark_refund_pending("cas-1", "r1")
    with pytest.raises(StatusConflictError, match="held by r1"):
        store.mark_refunded("cas-1", "r2")
    assert store.get("cas-1").status == "refund_pending"
    assert store.mark_refunded("cas-1", "r1") == "refunded"
    assert store.mark_refunded("cas-1", "r1") == "refunded"
    assert store.get("cas-1").status == "refunded"
    assert store.mark_refunded("cas-2", "r3") == "refunded"
    with pytest.raises(CertificateNotFoundError):
        store.mark_refunded("nope", "r1")
    with pytest.raises(CertificateNotFoundError):
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
