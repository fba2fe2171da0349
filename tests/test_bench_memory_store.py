"""The benchmark's in-memory system of record answers like the database and records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.memory_store import memory_activities
from domain.certificates import CertificateStatus, Channel
from domain.errors import CertificateNotFoundError
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.ledger import Ledger
from tests.factories import alipay_return, certificate, shanghai


def test_memory_store_answers_from_what_was_seeded_and_writes_nothing(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'refunds.db'}")
    seeded = certificate("cas-mem", purchased_at=shanghai(2026, 11, 20))
    CertificateStore(engine).seed([seeded])
    activities = memory_activities(engine)

    assert activities.store.get("cas-mem") == CertificateStore(engine).get("cas-mem")
    with pytest.raises(CertificateNotFoundError):
        activities.store.get("cas-missing")
    assert activities.store.cancel_order("cas-mem", "refund-1") == "ord-cas-mem"
    assert activities.store.mark_refunded("cas-mem", "refund-1") is CertificateStatus.REFUNDED

    request = alipay_return("refund-1", "cas-mem", 0)
    receipt = activities.gateways[Channel.ALIPAY].return_payment(request)
    assert (receipt.channel, receipt.amount) == ("alipay", request.amount)
    assert receipt.idempotency_key == "refund-1:leg-0"
    assert Ledger(engine).entries() == []
    assert CertificateStore(engine).get("cas-mem").status is CertificateStatus.PAID
    assert CertificateStore(engine).order_status("cas-mem") == "open"
