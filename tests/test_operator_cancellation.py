"""A cancellation request from Temporal's own tools (the Web UI's button, `temporal workflow
cancel`) at every stage of a refund: the workflow always completes, and money, certificate and
audit agree.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus

from storage.reconcile import reconcile
from tests.factories import certificate
from tests.harness import temporal_cli
from worker import build_worker
from workflows.contract import LegState, OperatorInput, RefundRequest, RefundState, RefundStatus
from workflows.refund import RefundWorkflow
from workflows.review_desk import TEMPORAL_CANCELLATION
from workflows.search_attributes import REFUND_STATE


def now() -> datetime:
    return datetime.now(UTC)


def in_review(cert_id: str, **kwargs):
    return certificate(cert_id, purchased_at=now() - timedelta(days=10), **kwargs)


def cancellations(status: RefundStatus):
    return [e for e in status.audit if e.action == TEMPORAL_CANCELLATION]


async def completed_with(handle, state: RefundState) -> None:
    described = await handle.describe()
    assert described.status is WorkflowExecutionStatus.COMPLETED
    assert described.typed_search_attributes.get(REFUND_STATE) == state.value


def temporal_cancel(harness, workflow_id: str) -> None:
    """`temporal workflow cancel`, as an operator types it."""
    address = harness.client.service_client.config.target_host
    done = subprocess.run(
        [temporal_cli(), "workflow", "cancel", "--address", address, "-w", workflow_id],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


async def test_in_review_a_cancellation_request_cancels_and_gives_the_certificate_back(harness):
    issued = now() - timedelta(days=10)
    cert = certificate("tc-review", purchased_at=issued, issued_at=issued)
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    assert harness.store.get(cert.certificate_id).status == "refund_pending"
    await asyncio.to_thread(temporal_cancel, harness, handle.id)
    status = await harness.result(handle)
    assert status.state is RefundState.CANCELLED
    [entry] = cancellations(status)
    assert entry.accepted
    assert entry.actor.startswith("temporal-cli:")  # the sender's identity, from history
    assert status.audit[-1].action == "cancelled"
    assert {leg.status for leg in status.legs} == {LegState.NOT_REFUNDABLE}
    assert harness.store.get(cert.certificate_id).status == "issued"
    assert harness.ledger.entries() == []
    await completed_with(handle, RefundState.CANCELLED)


async def test_while_money_moves_a_cancellation_request_is_refused_and_the_refund_finishes(harness):
    async with harness.worker_with(fault_latency_ms=1500):
        cert = certificate("tc-paying", purchased_at=now() - timedelta(days=1))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.REFUNDING)
        await handle.cancel(reason="wrong customer")
        status = await harness.result(handle, timeout=60)
    assert status.state is RefundState.REFUNDED
    [entry] = cancellations(status)
    assert not entry.accepted
    assert "cannot stop half-way" in entry.detail
    assert entry.detail.endswith("reason given: wrong customer")
    assert [leg.status for leg in status.legs] == [LegState.RETURNED, LegState.NOT_REFUNDABLE]
    assert len(harness.ledger.entries()) == 1
    assert harness.store.get(cert.certificate_id).status == "refunded"
    await completed_with(handle, RefundState.REFUNDED)


async def test_in_needs_attention_a_cancellation_request_is_refused_until_an_operator_acts(
    harness,
):
    async with harness.worker_with(fault_reject=["ali-dead"]):
        issued = now() - timedelta(days=5)
        cert = certificate(
            "tc-attention",
            purchased_at=issued,
            issued_at=issued,
            payments=[
                {"channel": "alipay", "amount": "100.00", "reference": "ali-dead"},
                {"channel": "bank", "amount": "50.00", "reference": "bank-ok"},
            ],
        )
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("approve", {"reviewer": "rev-1"})
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        await handle.cancel()
        status = await harness.wait_for(handle, lambda s: bool(cancellations(s)))
        assert status.state is RefundState.NEEDS_ATTENTION
        assert not cancellations(status)[0].accepted
        assert "only `refunds retry` or `refunds resolve`" in cancellations(status)[0].detail
        await handle.execute_update(
            RefundWorkflow.resolve_manually,
            OperatorInput(operator="operator-1", note="returned 100.00 by wire"),
        )
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    books = reconcile(harness.store.engine)
    assert [(b.due, b.returned, b.outcome) for b in books.balances] == [
        (status.refund_amount, status.refund_amount, "balanced")
    ]
    assert harness.store.get(cert.certificate_id).status == "refunded"


async def test_before_the_rules_decide_a_cancellation_request_cancels_without_holding(harness):
    """The request arrives with the refund's first task (no worker was polling yet)."""
    queue = f"tc-early-{uuid.uuid4().hex[:6]}"
    cert = in_review("tc-early")
    harness.store.seed([cert])
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(
            certificate_id=cert.certificate_id,
            requester="user-1",
            reason="other",
            feedback="changed my mind",
        ),
        id=f"refund-tc-early-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
    )
    await handle.cancel()
    async with build_worker(harness.client, settings=harness.settings, task_queue=queue):
        status = await harness.result(handle)
    assert status.state is RefundState.CANCELLED
    assert cancellations(status)[0].accepted
    assert harness.store.get(cert.certificate_id).status == "paid"
    assert harness.ledger.entries() == []


async def test_after_a_decision_a_cancellation_request_is_refused(harness):
    async with harness.worker_with(fault_latency_ms=1000):
        handle = await harness.submit(in_review("tc-decided"))
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("reject", {"reviewer": "rev-1", "reason": "in use"})
        await handle.cancel()
        status = await harness.result(handle, timeout=60)
    assert status.state is RefundState.REJECTED
    [entry] = cancellations(status)
    assert not entry.accepted
    assert entry.detail.startswith("already decided: reject by rev-1")
    assert harness.store.get("tc-decided").status == "paid"
