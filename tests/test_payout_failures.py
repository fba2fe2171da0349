"""How the payout reads when the certificate authority, the order system or every channel fails:
each reason names who failed, since when and why, and the steps run with the promised timeouts
and retry policies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from converter import DATA_CONVERTER
from domain.errors import NON_RETRYABLE
from tests.factories import certificate
from tests.gateways import AuthorityDown, OrderSystemDown
from tests.harness import task_failures
from wiring import Collaborators
from workflows.contract import ApproveInput, LegState, OperatorInput, RefundState
from workflows.refund import RefundWorkflow

TWO_LEGS = [
    {"channel": "alipay", "amount": "150.00", "reference": "ali-closed"},
    {"channel": "bank", "amount": "49.99", "reference": "bank-closed"},
]
SINCE = re.compile(r"since (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")


def now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def says_unavailable(reason: str | None, who: str, last_error: str, before: datetime) -> None:
    """``reason`` names ``who``, since a minute between ``before`` and now, and the last error."""
    assert reason is not None
    assert reason.startswith(f"{who} unavailable since "), reason
    assert reason.endswith(f" UTC (last error: {last_error})"), reason
    match = SINCE.search(reason)
    assert match is not None, reason
    since = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert before <= since <= now()


async def test_an_authority_down_past_the_patience_says_since_when_and_a_retry_revokes(harness):
    issued = datetime.now(UTC) - timedelta(days=3)
    cert = certificate("po-ca-down", purchased_at=issued, issued_at=issued)

    def authority_down(collaborators: Collaborators) -> AuthorityDown:
        collaborators.authority = AuthorityDown(collaborators.authority)
        return collaborators.authority

    async with harness.worker_with_collaborators(
        authority_down, payment_patience=timedelta(seconds=3)
    ) as authority:
        before = now()
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
        waiting = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        says_unavailable(
            waiting.attention_reason, "the certificate authority", "ca unreachable", before
        )
        assert authority.calls >= 2 and harness.ledger.entries() == []
        authority.down = False
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1", note="CA is back")
        )
        done = await harness.result(handle)
    assert done.state is RefundState.REFUNDED
    assert "certificate revoked" in [e.action for e in done.audit]
    assert harness.store.get("po-ca-down").status == "refunded"
    assert len(harness.ledger.entries()) == 1
    assert await task_failures(handle) == 0


async def test_an_order_system_down_past_the_patience_says_since_when(harness):
    cert = certificate("po-orders-down", purchased_at=datetime.now(UTC) - timedelta(days=1))

    def orders_down(collaborators: Collaborators) -> OrderSystemDown:
        collaborators.store = OrderSystemDown(collaborators.store.engine)
        return collaborators.store

    async with harness.worker_with_collaborators(
        orders_down, payment_patience=timedelta(seconds=3)
    ) as orders:
        before = now()
        handle = await harness.submit(cert)
        waiting = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        says_unavailable(
            waiting.attention_reason, "the order system", "order system unreachable", before
        )
        assert harness.ledger.entries() == []
        orders.down = False
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1")
        )
        done = await harness.result(handle)
    assert done.state is RefundState.REFUNDED
    assert "order cancelled" in [e.action for e in done.audit]
    assert harness.store.order_status("po-orders-down") == "cancelled"


async def test_an_order_the_order_system_refuses_to_cancel_says_what_failed(harness):
    cert = certificate("po-orders-refuse", purchased_at=datetime.now(UTC) - timedelta(days=1))

    def orders_refuse(collaborators: Collaborators) -> None:
        collaborators.store = OrderSystemDown(
            collaborators.store.engine, conflict="order ord-po-orders-refuse is already shipped"
        )

    async with harness.worker_with_collaborators(orders_refuse):
        handle = await harness.submit(cert)
        waiting = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
    assert waiting.attention_reason == (
        "cancel the certificate order failed: order ord-po-orders-refuse is already shipped"
    )
    assert harness.ledger.entries() == []
    assert await task_failures(handle) == 0


async def test_every_leg_refused_lists_every_leg_in_one_reason(harness):
    cert = certificate(
        "po-all-refused", purchased_at=datetime.now(UTC) - timedelta(days=1), payments=TWO_LEGS
    )
    async with harness.worker_with(
        fault_reject=["alipay:ali-closed", "bank:bank-closed=account_closed"]
    ):
        handle = await harness.submit(cert)
        waiting = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        assert waiting.attention_reason == (
            "alipay leg 0 (150.00): alipay refused the return: Alipay allows no refund of this "
            "trade (past its refund period) (Alipay: 当前交易不允许退款) "
            "(ACQ.TRADE_NOT_ALLOW_REFUND); "
            "bank leg 1 (49.99): bank refused the return: the bank account is closed: ask the "
            "customer for another account (provider: this payment cannot be refunded) "
            "(account_closed)"
        )
        assert [leg.status for leg in waiting.legs] == [LegState.FAILED, LegState.FAILED]
        failures = [
            (e.actor, e.action, e.accepted, e.detail) for e in waiting.audit if "failed" in e.action
        ]
        reasons = waiting.attention_reason.split("; ")
        assert sorted(failures) == [
            ("system", f"{channel} return failed", False, reason.split(": ", 1)[1])
            for channel, reason in zip(("alipay", "bank"), reasons, strict=True)
        ]
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1")
        )
        await harness.wait_for(handle, lambda s: len(s.audit) > len(waiting.audit) + 2)
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        await handle.execute_update(
            RefundWorkflow.resolve_manually,
            OperatorInput(operator="operator-1", note="both returned by wire"),
        )
        done = await harness.result(handle)
    # The order was cancelled once: a retry and the manual settlement only pay.
    actions = [(e.actor, e.action) for e in done.audit]
    assert actions.count(("system", "order cancelled")) == 1
    assert not any(action == "certificate released by hand" for _, action in actions)
    assert done.state is RefundState.REFUNDED
    assert [leg.status for leg in done.legs] == [LegState.RETURNED_MANUALLY] * 2
    assert {leg.detail for leg in done.legs} == {"settled by operator-1: both returned by wire"}
    summaries = [
        DATA_CONVERTER.payload_converter.from_payload(e.user_metadata.summary, str)
        async for e in handle.fetch_history_events()
        if e.activity_task_scheduled_event_attributes.activity_type.name == "record_manual_return"
    ]
    assert sorted(summaries) == ["record 150.00 returned by hand", "record 49.99 returned by hand"]


async def test_each_step_runs_with_the_promised_timeouts_and_retry_policy(harness):
    """A step answers within 30 s or is tried again; retries start 1 s apart and back off to at
    most a minute for the records and five minutes for a channel, so a recovered channel pays
    within five minutes; a refusal for good is never retried; the patience bounds the whole."""
    issued = datetime.now(UTC) - timedelta(days=3)
    cert = certificate("po-options", purchased_at=issued, issued_at=issued)
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    assert (await harness.result(handle)).state is RefundState.REFUNDED
    scheduled = {
        e.activity_task_scheduled_event_attributes.activity_type.name: e
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    patience = harness.settings.payment_patience
    for step, backoff_cap in [
        ("revoke_certificate", timedelta(minutes=1)),
        ("return_to_alipay", timedelta(minutes=5)),
    ]:
        options = scheduled[step].activity_task_scheduled_event_attributes
        assert options.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30), step
        assert options.schedule_to_close_timeout.ToTimedelta() == patience, step
        policy = options.retry_policy
        assert policy.initial_interval.ToTimedelta() == timedelta(seconds=1), step
        assert policy.maximum_interval.ToTimedelta() == backoff_cap, step
        assert list(policy.non_retryable_error_types) == NON_RETRYABLE, step
    summary = scheduled["return_to_alipay"].user_metadata.summary
    assert DATA_CONVERTER.payload_converter.from_payload(summary, str) == (
        "return 199.00 CNY to alipay"
    )
