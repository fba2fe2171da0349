"""A reviewer's decision and the review deadline, forced to arrive in each order: whichever the
workflow sees first decides, and the other is refused with its own reason."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from domain.certificates import Certificate, Channel
from tests.factories import certificate
from tests.gateways import GatedChannel
from workflows.contract import RefundState, RejectInput


def in_review(cert_id: str) -> Certificate:
    return certificate(cert_id, purchased_at=datetime.now(UTC) - timedelta(days=10))


def refusals(status):
    return [(e.action, e.detail) for e in status.audit if not e.accepted]


async def test_a_rejection_before_the_deadline_decides_and_the_deadline_never_acts(harness):
    handle = await harness.submit(in_review("race-review-first"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.signal("reject", RejectInput(reviewer="rev-1", reason="in use"))
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.decided_by == "rev-1"
    assert "review deadline passed" not in [e.action for e in status.audit]
    events = [e async for e in handle.fetch_history_events()]
    started = [e for e in events if e.HasField("timer_started_event_attributes")]
    cancelled = [e for e in events if e.HasField("timer_canceled_event_attributes")]
    assert len(started) == len(cancelled) == 1  # the deadline's timer, cancelled by the decision


async def test_a_rejection_after_the_deadline_fired_is_refused_for_that_reason(harness):
    async with harness.worker_with_gateway(Channel.ALIPAY, GatedChannel) as alipay:
        handle = await harness.submit(in_review("race-deadline-first"))
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        forward = asyncio.ensure_future(harness.fast_forward(handle, days=40))
        await asyncio.wait_for(alipay.entered.wait(), 30)  # the deadline is paying
        await handle.signal("reject", RejectInput(reviewer="rev-1", reason="too late"))
        await harness.wait_for(handle, lambda s: bool(refusals(s)))
        alipay.open.set()
        await forward
        status = await harness.result(handle, timeout=60)
    assert status.state is RefundState.REFUNDED
    assert status.decided_by == "review-deadline"
    assert refusals(status) == [("reject (signal)", "the review deadline has passed")]


async def test_a_rejection_while_money_cannot_be_paid_is_refused_as_not_in_review(harness):
    async with harness.worker_with(fault_reject=["ali-dead"]):
        cert = certificate(
            "race-attention",
            purchased_at=datetime.now(UTC) - timedelta(days=1),
            payments=[{"channel": "alipay", "amount": "50.00", "reference": "ali-dead"}],
        )
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        await handle.signal("reject", RejectInput(reviewer="rev-1", reason="changed my mind"))
        status = await harness.wait_for(handle, lambda s: "reject (signal)" in str(refusals(s)))
    assert status.state is RefundState.NEEDS_ATTENTION
    [refused] = [r for r in refusals(status) if r[0] == "reject (signal)"]
    assert refused[1] == f"refund {handle.id} is not awaiting review (state needs_attention)"
