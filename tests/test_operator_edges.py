"""The edges where operators' tools and a refund's own paths meet: forged inputs, a reset half-way
through paying, data that breaks during review, a cancellation before the rules decide."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

from storage.schema import certificates, orders, revocations
from tests.factories import certificate
from tests.gateways import ChannelDown
from tests.harness import Harness, task_failures
from worker import build_worker
from workflows.models import (
    ActionResult,
    ApproveInput,
    CancelInput,
    CarriedState,
    Channel,
    LegState,
    RefundRequest,
    RefundState,
    RepairOrder,
)
from workflows.refund import RefundWorkflow
from workflows.review_desk import TEMPORAL_CANCELLATION


def now() -> datetime:
    return datetime.now(UTC)


async def start(harness: Harness, request: RefundRequest, queue: str | None = None):
    return await harness.client.start_workflow(
        RefundWorkflow.run,
        request,
        id=f"refund-{request.certificate_id}-{uuid.uuid4().hex[:6]}",
        task_queue=queue or harness.task_queue,
    )


async def test_a_client_cannot_forge_a_continued_run(harness):
    cert = certificate("fe-forged", purchased_at=now() - timedelta(days=10))
    harness.store.seed([cert])
    rich = [
        {
            "index": 0,
            "channel": "alipay",
            "amount": "9999.00",
            "reference": "ali-1",
            "status": "pending",
            "idempotency_key": "x:leg-0",
        }
    ]
    carried = CarriedState.model_validate(
        {
            "state": "validating_application",
            "submitted_at": now(),
            "certificate": cert,
            "assessment": {
                "decision": None,
                "review_deadline": now() + timedelta(seconds=1),
                "reviewers": ["forger"],
                "operators": ["forger"],
            },
            "legs": rich,
            "audit": [],
        }
    )
    request = RefundRequest(
        certificate_id=cert.certificate_id,
        requester="user-1",
        reason="no_longer_needed",
        carried=carried,
    )
    status = await harness.result(await start(harness, request))
    assert status.state is RefundState.REJECTED
    assert "only the refund itself passes on" in (status.rejection_reason or "")
    assert harness.ledger.entries() == []
    assert harness.store.get(cert.certificate_id).status == "paid"


async def test_a_repair_order_nobody_recorded_changes_nothing(harness):
    bought = now() - timedelta(days=3)
    cert = certificate("fe-repair", purchased_at=bought, issued_at=bought)
    harness.store.seed([cert])
    request = RefundRequest(
        certificate_id=cert.certificate_id,
        requester="user-1",
        reason="no_longer_needed",
        repair=RepairOrder(operator="operator-1", note="trust me"),
    )
    status = await harness.result(await start(harness, request))
    assert status.state is RefundState.REJECTED
    assert status.rejection_reason == "no matching repair order was recorded by `refunds repair`"
    assert harness.ledger.entries() == []
    assert harness.store.get(cert.certificate_id).status == "issued"


async def test_a_reset_after_part_was_paid_then_a_cancel_still_completes_the_refund(harness):
    cert = certificate(
        "fe-reset-half",
        purchased_at=now() - timedelta(days=10),
        payments=[
            {"channel": "alipay", "amount": "100.00", "reference": "ali-1"},
            {"channel": "bank", "amount": "50.00", "reference": "bank-1"},
        ],
    )
    async with harness.worker_with_gateway(Channel.BANK, ChannelDown) as bank:
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("approve", {"reviewer": "rev-1"})
        await harness.wait_for(handle, lambda s: s.legs[0].status is LegState.RETURNED)
        events = [e async for e in handle.fetch_history_events()]
        held = next(
            e.event_id for e in events if e.HasField("activity_task_completed_event_attributes")
        )
        back_in_review = next(
            e.event_id
            for e in events
            if e.event_id > held and e.HasField("workflow_task_completed_event_attributes")
        )
        reset = await harness.client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=harness.client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=handle.id, run_id=(await handle.describe()).run_id
                ),
                reason="back to review",
                workflow_task_finish_event_id=back_in_review,
                request_id=str(uuid.uuid4()),
            )
        )
        rerun = harness.handle(handle.id, run_id=reset.run_id)
        await harness.in_state(rerun, RefundState.VALIDATING_APPLICATION)
        bank.down = False
        await rerun.execute_update(RefundWorkflow.cancel_request, CancelInput(requester="user-1"))
        status = await harness.result(rerun)
    assert status.state is RefundState.REFUNDED
    assert any(e.action.startswith("not cancelled") for e in status.audit)
    assert sorted((e.leg_index, str(e.amount)) for e in harness.ledger.entries()) == [
        (0, "100.00"),
        (1, "50.00"),
    ]
    assert harness.store.get(cert.certificate_id).status == "refunded"


async def test_data_broken_during_review_rejects_the_approval_and_releases_the_hold(harness):
    bought = now() - timedelta(days=4)
    cert = certificate("fe-broken", purchased_at=bought, issued_at=bought)
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    with harness.store.engine.begin() as conn:
        conn.execute(
            update(certificates)
            .where(certificates.c.certificate_id == "fe-broken")
            .values(issued_at=bought - timedelta(days=30))
        )
    result: ActionResult = await handle.execute_update(
        RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1")
    )
    assert result.state is RefundState.REJECTED
    assert result.detail.startswith("certificate data is inconsistent")
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    with harness.store.engine.connect() as conn:
        row = conn.execute(
            select(certificates.c.status, certificates.c.pending_refund_id).where(
                certificates.c.certificate_id == "fe-broken"
            )
        ).one()
    assert tuple(row) == ("issued", None)
    assert harness.ledger.entries() == []
    assert await task_failures(handle) == 0


async def test_a_certificate_issued_during_review_is_revoked_before_paying(harness):
    cert = certificate("fe-issued-later", purchased_at=now() - timedelta(days=10))
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    with harness.store.engine.begin() as conn:  # the CA issued it while the review waited
        conn.execute(
            update(certificates)
            .where(certificates.c.certificate_id == "fe-issued-later")
            .values(issued_at=now(), validation="validated", status_before_refund="issued")
        )
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-2"))
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert "certificate revoked" in [e.action for e in status.audit]
    with harness.store.engine.connect() as conn:
        revoked_by = conn.execute(
            select(revocations.c.refund_id).where(revocations.c.certificate_id == "fe-issued-later")
        ).scalar_one()
        order = conn.execute(
            select(orders.c.status).where(orders.c.certificate_id == "fe-issued-later")
        ).scalar_one()
    assert (revoked_by, order) == (handle.id, "open")


async def test_a_cancellation_before_the_rules_deny_is_audited_as_refused(harness):
    queue = f"fe-early-{uuid.uuid4().hex[:6]}"
    issued = now() - timedelta(days=40)
    cert = certificate("fe-early-denied", purchased_at=issued, issued_at=issued)
    harness.store.seed([cert])
    request = RefundRequest(
        certificate_id=cert.certificate_id, requester="user-1", reason="no_longer_needed"
    )
    handle = await start(harness, request, queue)
    await handle.cancel()
    async with build_worker(harness.client, settings=harness.settings, task_queue=queue):
        status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.rule is not None and status.rule.value == "issued-over-28-days"
    [entry] = [e for e in status.audit if e.action == TEMPORAL_CANCELLATION]
    assert not entry.accepted
    assert entry.detail == "the rules denied the request (issued-over-28-days)"
