"""A bank refund is accepted, then settles days later: the refund waits for the provider's signed
webhook or its own poll, and a refund that fails at settlement falls back or needs attention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from domain.certificates import Channel
from storage.schema import webhook_deliveries
from tests.gateways import SlowToAnswer
from tests.scenarios import (
    bank_paid,
    settled_by_poll,
    settled_by_webhook,
    settlement_failed_then_fell_back,
)
from workflows.contract import LegState, RefundState


def deliveries(harness) -> int:
    with harness.store.engine.connect() as conn:
        found: int = conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one()
        return found


def moves(status) -> list[tuple[str, str]]:
    return [
        (e.action, e.detail) for e in status.audit if "bank" in e.action or "balance" in e.action
    ]


async def test_a_bank_refund_settles_when_its_signed_webhook_rings(harness):
    handle = await settled_by_webhook(harness)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    [leg] = status.legs
    assert (leg.status, leg.transaction_id[:3]) == (LegState.RETURNED, "re_")
    assert moves(status) == [
        ("bank accepted 120.00: settling", leg.transaction_id),
        ("bank settled 120.00", ""),
    ]
    [entry] = harness.ledger.entries(handle.id)
    assert (entry.channel, entry.transaction_id) == ("bank", leg.transaction_id)
    assert deliveries(harness) == 1


async def test_a_lost_webhook_is_made_up_by_the_refunds_own_poll(harness):
    handle = await settled_by_poll(harness)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert [leg.status for leg in status.legs] == [LegState.RETURNED]
    assert deliveries(harness) == 0
    assert len(harness.ledger.entries(handle.id)) == 1


async def test_a_refund_that_fails_at_settlement_goes_to_the_balance(harness):
    handle = await settlement_failed_then_fell_back(harness)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    [leg] = status.legs
    assert (leg.status, leg.returned_via) == (LegState.RETURNED, Channel.ACCOUNT_BALANCE)
    actions = [action for action, _ in moves(status)]
    assert actions == [
        "bank accepted 120.00: settling",
        "bank settlement failed",
        "leg 0 falls back to account_balance",
        "returned 120.00 to account_balance",
    ]
    [entry] = harness.ledger.entries(handle.id)
    assert (entry.channel, entry.original_channel) == ("account_balance", "bank")


async def test_without_fallback_a_failed_settlement_needs_attention_with_the_banks_reason(
    harness,
):
    async with harness.worker_with(fault_settlement_fail=["bank-shut"]):
        handle = await harness.submit(bank_paid("st-shut", "bank-shut"))
        status = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
    assert [leg.status for leg in status.legs] == [LegState.FAILED]
    assert status.attention_reason is not None
    assert status.attention_reason.startswith("bank leg 0 (120.00): ")
    assert "account_closed" in status.attention_reason
    assert harness.ledger.entries(handle.id) == []


async def test_a_webhook_that_rings_while_the_return_is_being_recorded_is_not_missed(harness):
    """The provider settled and rang before the refund heard that its return was taken: the
    refund asks at once as it starts to wait, not an hour later at its poll."""
    async with harness.worker_with_gateway(Channel.BANK, lambda inner: SlowToAnswer(inner, 2.0)):
        handle = await harness.submit(bank_paid("st-early-ring", "bank-early"))
        status = await harness.result(handle, timeout=30)
    assert status.state is RefundState.REFUNDED
    assert deliveries(harness) == 1
    scheduled = await harness.scheduled_activities(handle)
    assert scheduled.count("check_settlement") == 1


async def test_a_settlement_the_bank_never_confirms_needs_attention_after_the_patience(harness):
    assert harness.world is not None and harness.world.bank is not None
    harness.world.bank.settle_seconds = 86_400 * 30
    async with harness.worker_with(settlement_patience=2, settlement_poll=timedelta(days=1)):
        handle = await harness.submit(bank_paid("st-silent", "bank-silent"))
        await harness.in_state(handle, RefundState.REFUNDING)
        await harness.wait_for(handle, lambda s: s.legs[0].status is LegState.SETTLING)
        await harness.fast_forward(handle, 5)
        status = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
    assert [leg.status for leg in status.legs] == [LegState.SETTLING]
    assert status.attention_reason is not None
    assert "has neither confirmed nor failed the return it accepted" in status.attention_reason
    assert "within 2 business days: ask the bank, then retry" in status.attention_reason
    assert harness.ledger.entries(handle.id) == []
