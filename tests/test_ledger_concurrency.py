"""Concurrent workers writing the ledger still pay each leg once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import create_engine

from storage.database import open_database
from storage.ledger import Ledger
from storage.reconcile import reconcile
from tests.databases import BOTH
from tests.factories import alipay_return, certificate, shanghai

WORKERS = 8


@pytest.fixture(params=BOTH)
def backend(request):
    return request.param


def test_racing_workers_record_each_leg_once(database_url, store):
    store.seed(
        [
            certificate(
                "race-1",
                purchased_at=shanghai(2026, 11, 20),
                payments=[
                    {"channel": "alipay", "amount": "100.00", "reference": f"ali-{leg}"}
                    for leg in range(3)
                ],
            )
        ]
    )
    store.mark_refunded("race-1", "refund-race")
    open_database(database_url)  # schema exists before the racers start
    barrier = threading.Barrier(WORKERS)
    receipts: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def worker() -> None:
        engine = create_engine(database_url)  # one engine each, as separate processes would
        ledger = Ledger(engine)
        barrier.wait()
        for leg in range(3):
            entry, existed = ledger.record(alipay_return("refund-race", "race-1", leg))
            with lock:
                receipts.append((entry.transaction_id, existed))
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    entries = Ledger(store.engine).entries()
    assert len(entries) == 3
    assert len(receipts) == 3 * WORKERS
    assert {tid for tid, _ in receipts} == {e.transaction_id for e in entries}
    assert sum(not existed for _, existed in receipts) == 3
    recon = reconcile(store.engine)
    assert (recon.paid_twice, recon.missing_amount) == (0, Decimal("0.00"))
    assert recon.balances[0].outcome == "balanced"
