"""Money under faults: fallback to the balance, needs_attention, retry, manual resolution."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError

from settings import get_settings
from starter.cli import run
from storage.reconcile import reconcile
from tests.databases import BOTH
from tests.factories import certificate
from tests.harness import refusal
from workflows.contract import LegState, OperatorInput, RefundState
from workflows.refund import RefundWorkflow


@pytest.fixture(params=BOTH)
def backend(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return request.param


TWO_LEGS = [
    {"channel": "alipay", "amount": "150.00", "reference": "ali-closed"},
    {"channel": "bank", "amount": "49.99", "reference": "bank-ok"},
]


def auto_cert(cert_id: str):
    return certificate(
        cert_id, purchased_at=datetime.now(UTC) - timedelta(days=1), payments=TWO_LEGS
    )


def own_legs_cert(cert_id: str):
    """Like ``auto_cert``, with payment references of its own (a payment has one order)."""
    return certificate(
        cert_id,
        purchased_at=datetime.now(UTC) - timedelta(days=1),
        payments=[{**leg, "reference": f"{leg['reference']}-{cert_id}"} for leg in TWO_LEGS],
    )


async def test_a_refused_channel_falls_back_to_the_account_balance(harness):
    async with harness.worker_with(fallback_to_balance=True, fault_reject=["alipay:ali-closed"]):
        handle = await harness.submit(auto_cert("fb-1"))
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    alipay_leg = status.legs[0]
    assert alipay_leg.status is LegState.RETURNED
    assert alipay_leg.returned_via == "account_balance"
    assert alipay_leg.detail == "alipay refused; returned to account_balance instead"
    assert (status.legs[1].returned_via, status.legs[1].detail) == (None, "")
    actions = [(e.actor, e.action) for e in status.audit]
    assert ("system", "leg 0 falls back to account_balance") in actions
    moved = {
        (e.actor, e.action): e.detail
        for e in status.audit
        if "returned" in e.action or "bank" in e.action
    }
    assert moved == {
        ("system", "returned 150.00 to account_balance"): alipay_leg.transaction_id,
        ("system", "bank accepted 49.99: settling"): status.legs[1].transaction_id,
        ("system", "bank settled 49.99"): "",
    }
    entries = {e.leg_index: e for e in harness.ledger.entries(handle.id)}
    assert (entries[0].channel, entries[0].original_channel) == ("account_balance", "alipay")
    assert entries[1].channel == "bank"
    assert reconcile(harness.store.engine).balances[0].outcome == "balanced"


async def test_without_fallback_a_refusal_needs_attention_then_manual_resolution(harness):
    async with harness.worker_with(fault_reject=["ali-closed"]):
        handle = await harness.submit(auto_cert("na-1"))
        status = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        assert "alipay leg 0 (150.00)" in (status.attention_reason or "")
        assert [leg.status for leg in status.legs] == [LegState.FAILED, LegState.RETURNED]
        assert reconcile(harness.store.engine).balances[0].outcome == "in_progress"

        for payload, message in [
            (OperatorInput(operator="operator-1"), "needs a note"),
            (OperatorInput(operator="rev-1", note="paid"), "not on the operator list"),
            (OperatorInput(operator="", note="paid"), "no operator id was given"),
        ]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await handle.execute_update(RefundWorkflow.resolve_manually, payload)
            assert message in refusal(err.value)

        await handle.execute_update(
            RefundWorkflow.resolve_manually,
            OperatorInput(operator="operator-1", note="wired 150.00 to the customer's new account"),
        )
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert status.legs[0].status is LegState.RETURNED_MANUALLY
    assert "operator-1" in status.legs[0].detail
    entries = harness.ledger.entries(handle.id)
    assert sorted((e.leg_index, e.channel) for e in entries) == [(0, "manual"), (1, "bank")]
    balance = reconcile(harness.store.engine).balances[0]
    assert (balance.outcome, balance.returned) == ("balanced", Decimal("199.99"))
    with pytest.raises(Exception, match="completed"):
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1")
        )


async def test_retry_after_the_channel_is_fixed(harness):
    async with harness.worker_with(fault_reject=["ali-closed"]) as queue:
        handle = await harness.submit(auto_cert("retry-1"))
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
    async with harness.worker_with(task_queue=queue):
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await handle.execute_update(
                RefundWorkflow.retry_payments, OperatorInput(operator="nobody")
            )
        assert "not on the operator list" in refusal(err.value)
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1")
        )
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert [leg.status for leg in status.legs] == [LegState.RETURNED, LegState.RETURNED]
    assert len(harness.ledger.entries(handle.id)) == 2


async def test_transient_faults_and_latency_still_pay_exactly_once(harness):
    # 30% of calls fail; seven failures in a row back off 1+2+...+64 s before the eighth try.
    async with harness.worker_with(fault_transient_rate=0.3, fault_latency_ms=20):
        handles = [await harness.submit(own_legs_cert(f"tr-{i}")) for i in range(8)]
        results = await asyncio.gather(*(harness.result(h, timeout=170) for h in handles))
    assert {r.state for r in results} == {RefundState.REFUNDED}
    recon = reconcile(harness.store.engine)
    assert len(recon.balances) == 8
    assert {b.outcome for b in recon.balances} == {"balanced"}
    assert recon.paid_twice == 0
    assert recon.missing_amount == 0
    assert len(harness.ledger.entries()) == 16


async def test_ledger_command_shows_movements_and_reconciliation(harness, capsys, monkeypatch):
    monkeypatch.setenv("REFUNDS_TEMPORAL_ADDRESS", harness.client.service_client.config.target_host)
    get_settings.cache_clear()
    async with harness.worker_with(fallback_to_balance=True, fault_reject=["alipay:ali-closed"]):
        handle = await harness.submit(auto_cert("lc-1"))
        await harness.result(handle)
    assert await asyncio.to_thread(run, ["ledger", "--json"]) == 0
    data = __import__("json").loads(capsys.readouterr().out)
    assert [m["channel"] for m in data["movements"]] == ["bank", "account_balance"] or [
        m["channel"] for m in data["movements"]
    ] == ["account_balance", "bank"]
    assert data["reconciliation"] == [
        {
            "certificate_id": "lc-1",
            "refund_id": handle.id,
            "refund_ids": [handle.id],
            "certificate_status": "refunded",
            "held_by": None,
            "released_by": handle.id,
            "refund_running": None,
            "due": "199.99",
            "returned": "199.99",
            "currency": "CNY",
            "outcome": "balanced",
            "problem": None,
        }
    ]
    assert data["totals"] == {
        "due": "199.99",
        "returned": "199.99",
        "paid_twice": 0,
        "missing_amount": "0.00",
        "orphaned_holds": 0,
        "divergent": 0,
        "journal_problems": 0,
        "refused": 0,
    }
    assert await asyncio.to_thread(run, ["ledger"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "orphaned holds 0, divergent 0" in shown
