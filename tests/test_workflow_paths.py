"""RefundWorkflow end to end on the dev server: each path, its money and its audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from tests.factories import certificate
from tests.harness import audit_actions, refusal
from workflows.contract import ApproveInput, CancelInput, LegState, RefundState, RejectInput
from workflows.refund import RefundWorkflow
from workflows.search_attributes import REFUND_STATE


def now() -> datetime:
    return datetime.now(UTC)


def fresh(cert_id: str, days_ago: float = 1, **kwargs):
    return certificate(cert_id, purchased_at=now() - timedelta(days=days_ago), **kwargs)


def review(cert_id: str, **kwargs):
    return fresh(cert_id, days_ago=10, **kwargs)


def issued(cert_id: str, issued_days_ago: float = 10, **kwargs):
    at = now() - timedelta(days=issued_days_ago)
    return certificate(cert_id, purchased_at=at - timedelta(days=1), issued_at=at, **kwargs)


async def test_auto_approval_cancels_the_order_and_returns_each_leg(harness):
    cert = fresh(
        "auto-1",
        payments=[
            {"channel": "alipay", "amount": "100.00", "reference": "a"},
            {"channel": "bank", "amount": "20.50", "reference": "b"},
            {"channel": "voucher", "amount": "30.00", "reference": "v"},
        ],
    )
    handle = await harness.submit(cert)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert status.rule == "unissued-within-5-days"
    assert status.refund_amount == Decimal("120.50")
    assert [leg.status for leg in status.legs] == [
        LegState.RETURNED,
        LegState.RETURNED,
        LegState.NOT_REFUNDABLE,
    ]
    entries = harness.ledger.entries(handle.id)
    assert sorted((e.channel, e.amount) for e in entries) == [
        ("alipay", Decimal("100.00")),
        ("bank", Decimal("20.50")),
    ]
    assert harness.store.order_status("auto-1") == "cancelled"
    assert harness.store.get("auto-1").status == "refunded"


async def test_search_attributes_are_set_where_the_server_writes_visibility_anyway(harness):
    """The first attributes go with the first workflow task (the certificate is loaded by a local
    activity) and the final state with the completion: no visibility update of their own."""
    handle = await harness.submit(fresh("auto-visible"))
    await harness.result(handle)
    events = list((await handle.fetch_history()).events)
    kinds = [event.event_type for event in events]
    upserted = [
        (i, event.upsert_workflow_search_attributes_event_attributes.search_attributes)
        for i, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    states = [
        (i, attributes.indexed_fields[REFUND_STATE.name].data.decode())
        for i, attributes in upserted
        if REFUND_STATE.name in attributes.indexed_fields
    ]
    assert [state for _, state in states] == ['"refunding"', '"refunded"']
    first_task_done = kinds.index(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    second_task_done = kinds.index(
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, first_task_done + 1
    )
    assert all(first_task_done < i < second_task_done for i, _ in upserted[:-1])
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds[: upserted[0][0]]
    assert kinds[states[-1][0] + 1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    described = await handle.describe()
    assert described.typed_search_attributes.get(REFUND_STATE) == RefundState.REFUNDED.value


async def test_denied_by_rule_changes_nothing(harness):
    cert = issued("denied-1", issued_days_ago=40)
    status = await harness.result(await harness.submit(cert))
    assert status.state is RefundState.REJECTED
    assert status.rule == "issued-over-28-days"
    assert status.rejection_reason and "28" in status.rejection_reason
    assert all(leg.status is LegState.NOT_REFUNDABLE for leg in status.legs)
    assert harness.ledger.entries() == []
    assert harness.store.get("denied-1").status == "issued"


async def test_unknown_certificate_is_rejected(harness):
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        {"certificate_id": "ghost", "requester": "u", "reason": "other", "feedback": "x"},
        id="refund-ghost-test",
        task_queue=harness.task_queue,
    )
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert "unknown certificate" in (status.rejection_reason or "")


async def test_manual_review_approved_revokes_then_pays(harness):
    handle = await harness.submit(issued("approve-1"))
    waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    assert waiting.rule == "issued-within-28-days"
    assert waiting.review_deadline is not None
    assert harness.store.get("approve-1").status == "refund_pending"
    result = await handle.execute_update(
        RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1", note="ok")
    )
    assert result.action == "approve"
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert status.decided_by == "rev-1"
    assert harness.store.get("approve-1").status == "refunded"
    assert len(harness.ledger.entries(handle.id)) == 1
    actions = [a for _, a, _ in audit_actions(status)]
    assert actions.index("certificate revoked") < actions.index("returned 199.00 to alipay")


async def test_manual_review_rejected_restores_the_certificate(harness):
    handle = await harness.submit(issued("reject-1"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.signal("reject", RejectInput(reviewer="rev-2", reason="in use"))
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.rejection_reason == "in use"
    assert harness.store.get("reject-1").status == "issued"
    assert harness.ledger.entries() == []


async def test_cancel_by_the_requester(harness):
    handle = await harness.submit(review("cancel-1"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.execute_update(RefundWorkflow.cancel_request, CancelInput(requester="user-1"))
    status = await harness.result(handle)
    assert status.state is RefundState.CANCELLED
    assert harness.store.get("cancel-1").status == "paid"
    assert harness.ledger.entries() == []


async def test_cancel_is_refused_after_approval(harness):
    handle = await harness.submit(review("cancel-2"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.cancel_request, CancelInput(requester="user-1"))
    assert refusal(refused.value) == "already decided: approve by rev-1"
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED


async def test_only_the_owner_can_ask_for_a_refund(harness):
    cert = fresh("owner-1")
    handle = await harness.submit(cert, requester="someone-else")
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.rejection_reason == "someone-else does not own certificate owner-1"
    assert harness.ledger.entries() == []
    assert harness.store.get("owner-1").status == "paid"
