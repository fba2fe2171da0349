"""Review actions: invalid signals audited and ignored, validators, races, flaky payments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from temporalio.client import WorkflowUpdateFailedError

from activities.gateways import ChannelAnswer, ChannelRefund, ChannelUnknownError, PaymentChannel
from domain.certificates import Channel
from tests.factories import certificate
from tests.gateways import WrappedChannel
from tests.harness import refusal
from worker import build_worker
from workflows.contract import ApproveInput, CancelInput, RefundState, RejectInput
from workflows.refund import RefundWorkflow

T = TypeVar("T")


def in_review(cert_id: str, **kwargs):
    return certificate(cert_id, purchased_at=datetime.now(UTC) - timedelta(days=10), **kwargs)


def refused(status):
    return [(e.actor, e.action, e.detail) for e in status.audit if not e.accepted]


async def test_invalid_signals_change_nothing_and_are_audited(harness):
    handle = await harness.submit(in_review("sig-1"))
    before = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.signal("approve", ApproveInput(reviewer="stranger"))
    await handle.signal("approve", ApproveInput(reviewer=""))
    await handle.signal("reject", RejectInput(reviewer="rev-1", reason="  "))
    await handle.signal("cancel", CancelInput(requester="someone-else"))
    await handle.signal("approve", ApproveInput(reviewer="rev-1", note="x" * 5000))
    await handle.signal("approve", "not an object")
    await handle.signal("reject", {"reviewer": ["a", "list"], "reason": 7})
    status = await harness.wait_for(handle, lambda s: len(refused(s)) == 7)
    assert status.state is RefundState.VALIDATING_APPLICATION
    assert status.decided_by is None
    details = [detail for _, _, detail in refused(status)]
    assert details == [
        "stranger is not on the reviewer list",
        "no reviewer id was given",
        "a rejection needs a reason the customer can read",
        "only the requester (user-1) can cancel this request",
        "the text is longer than 2000 characters",
        "malformed",
        "malformed",
    ]
    assert [e.action for e in status.audit if e.accepted] == [
        e.action for e in before.audit if e.accepted
    ]
    assert harness.store.get("sig-1").status == "refund_pending"
    await handle.signal("approve", ApproveInput(reviewer="rev-2"))
    assert (await harness.result(handle)).state is RefundState.REFUNDED


async def test_reviewers_may_not_review_their_own_request(harness):
    cert = in_review("own-1", owner="rev-1")
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    assert refusal(err.value) == "reviewers may not review their own request"
    await handle.signal("approve", ApproveInput(reviewer="rev-1"))
    status = await harness.wait_for(handle, lambda s: len(refused(s)) == 1)
    assert status.state is RefundState.VALIDATING_APPLICATION


@pytest.mark.parametrize(
    ("update", "payload", "message"),
    [
        ("approve_request", ApproveInput(reviewer="nobody"), "nobody is not on the reviewer list"),
        ("approve_request", ApproveInput(reviewer=" "), "no reviewer id was given"),
        ("reject_request", RejectInput(reviewer="rev-1"), "needs a reason"),
        ("cancel_request", CancelInput(requester="rev-1"), "only the requester"),
        ("approve_request", {"reviewer": 5}, None),
    ],
)
async def test_validators_refuse_synchronously(harness, update, payload, message):
    handle = await harness.submit(in_review(f"val-{update}-{id(payload)}"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(update, payload)
    if message is not None:
        assert message in refusal(err.value)
    status = await harness.status(handle)
    assert status.state is RefundState.VALIDATING_APPLICATION
    assert status.decided_by is None
    history = [e async for e in handle.fetch_history_events()]
    assert not any(e.HasField("workflow_task_failed_event_attributes") for e in history)


async def test_updates_refused_outside_review(harness):
    cert = certificate("auto-val", purchased_at=datetime.now(UTC) - timedelta(days=1))
    handle = await harness.submit(cert)
    await harness.result(handle)
    with pytest.raises(Exception, match="completed"):
        await handle.execute_update(RefundWorkflow.cancel_request, CancelInput(requester="user-1"))


async def test_approve_and_cancel_together_exactly_one_wins(harness):
    handles = [await harness.submit(in_review(f"race-{i}")) for i in range(6)]
    for handle in handles:
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)

    async def attempt(handle, update, payload):
        try:
            await handle.execute_update(update, payload)
            return True
        except WorkflowUpdateFailedError:
            return False

    for handle in handles:
        results = await asyncio.gather(
            attempt(handle, RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1")),
            attempt(handle, RefundWorkflow.cancel_request, CancelInput(requester="user-1")),
            attempt(
                handle, RefundWorkflow.reject_request, RejectInput(reviewer="rev-2", reason="no")
            ),
        )
        assert sum(results) == 1
        status = await harness.result(handle)
        paid = harness.ledger.entries(handle.id)
        winner = ["approve", "cancel", "reject"][results.index(True)]
        expected = {
            "approve": RefundState.REFUNDED,
            "cancel": RefundState.CANCELLED,
            "reject": RefundState.REJECTED,
        }
        assert status.state is expected[winner]
        assert len(paid) == (1 if winner == "approve" else 0)


async def test_a_decision_racing_the_deadline_gives_one_outcome(harness):
    handle = await harness.submit(in_review("race-deadline"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await asyncio.gather(
        harness.fast_forward(handle, days=40),
        handle.signal("reject", RejectInput(reviewer="rev-1", reason="late")),
    )
    status = await harness.result(handle)
    decisions = [
        e
        for e in status.audit
        if e.accepted and e.action in ("reject (signal)", "review deadline passed")
    ]
    assert len(decisions) == 1
    paid = harness.ledger.entries(handle.id)
    assert len(paid) == (1 if status.state is RefundState.REFUNDED else 0)


class CrashAfterPaying(WrappedChannel):
    """Pays, then loses the channel's answer ``failures`` times, as a worker dying mid-activity
    or a dropped connection would."""

    def __init__(self, inner: PaymentChannel, failures: int) -> None:
        super().__init__(inner)
        self.failures = failures
        self.refunds = self.lookups = 0

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        self.refunds += 1
        answer = await self.inner.refund(order)
        return self._lost(answer)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        self.lookups += 1
        return self._lost(await self.inner.lookup(order))

    def _lost(self, answer: T) -> T:
        if self.failures > 0:
            self.failures -= 1
            raise ChannelUnknownError("lost the gateway's answer")
        return answer


async def test_a_lost_answer_after_paying_is_asked_about_never_paid_again(harness, local_world):
    activities = harness.collaborators()
    flaky = CrashAfterPaying(activities.channels[Channel.ALIPAY], failures=2)
    activities.channels = {**activities.channels, Channel.ALIPAY: flaky}
    task_queue = f"{harness.task_queue}-flaky"
    async with build_worker(
        harness.client,
        settings=harness.settings,
        collaborators=activities,
        task_queue=task_queue,
    ):
        harness.task_queue = task_queue
        cert = certificate("flaky-1", purchased_at=datetime.now(UTC) - timedelta(days=1))
        handle = await harness.submit(cert)
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert (flaky.refunds, flaky.lookups) == (1, 2)
    entries = harness.ledger.entries(handle.id)
    assert len(entries) == 1
    assert [r.out_trade_no for r in local_world.alipay.refunds()] == ["ali-flaky-1"]
    assert status.legs[0].transaction_id == entries[0].transaction_id
