"""The benchmark's in-memory system of record answers like the database and records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.memory_store import memory_collaborators
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
    memory = memory_collaborators(engine)

    assert memory.store.get("cas-mem") == CertificateStore(engine).get("cas-mem")
    with pytest.raises(CertificateNotFoundError):
        memory.store.get("cas-missing")
    assert memory.store.cancel_order("cas-mem", "refund-1") == "ord-cas-mem"
    assert memory.store.mark_refunded("cas-mem", "refund-1") is CertificateStatus.REFUNDED

    returned = alipay_return("refund-1", "cas-mem", 0)
    entry, existed = memory.ledger.record(returned)
    assert (entry.channel, entry.amount, existed) == ("alipay", returned.amount, False)
    assert memory.ledger.find(returned.idempotency_key) is None
    assert Ledger(engine).entries() == []
    assert CertificateStore(engine).get("cas-mem").status is CertificateStatus.PAID
    assert CertificateStore(engine).order_status("cas-mem") == "open"
    assert Channel.ALIPAY in memory.gateways
