"""The edges where operators' tools and a refund's own paths meet: forged inputs, a reset half-way
through paying, data that breaks during review, a cancellation before the rules decide."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select, update
from temporalio.client import WorkflowExecutionStatus

from activities.gateways import CertificateAuthority
from domain.certificates import CertificateStatus, Channel
from domain.errors import RevocationRefusedError
from storage.certificates import CertificateStore
from storage.schema import certificates, orders, revocations
from tests.factories import certificate
from tests.gateways import ChannelDown
from tests.harness import Harness, task_failures, workflow_tasks_completed
from worker import build_worker
from workflows.contract import (
    ActionResult,
    ApproveInput,
    CancelInput,
    CarriedState,
    LegState,
    OperatorInput,
    RefundRequest,
    RefundState,
    RepairOrder,
)
from workflows.refund import RefundWorkflow
from workflows.review_desk import TEMPORAL_CANCELLATION


def now() -> datetime:
    return datetime.now(UTC)


def released_how(harness: Harness, certificate_id: str) -> tuple[str, str | None]:
    """The certificate's order status, and the refund that revoked it (if one did)."""
    with harness.store.engine.connect() as conn:
        order = conn.execute(
            select(orders.c.status).where(orders.c.certificate_id == certificate_id)
        ).scalar_one()
        revoked_by = conn.execute(
            select(revocations.c.refund_id).where(revocations.c.certificate_id == certificate_id)
        ).scalar_one_or_none()
    return str(order), revoked_by


async def start(harness: Harness, request: RefundRequest, queue: str | None = None):
    return await harness.client.start_workflow(
        RefundWorkflow.run,
        request,
        id=f"refund-{request.certificate_id}-{uuid.uuid4().hex[:6]}",
        task_queue=queue or harness.task_queue,
    )


def forged_state(cert) -> CarriedState:
    """A continuation a client made up: a 9999.00 leg, and its own reviewer list."""
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
    return CarriedState.model_validate(
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


async def test_a_client_cannot_forge_a_continued_run(harness):
    cert = certificate("fe-forged", purchased_at=now() - timedelta(days=10))
    harness.store.seed([cert])
    carried = forged_state(cert)
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
        back_in_review = workflow_tasks_completed(events, after=held)[0]
        rerun = await harness.reset(handle, back_in_review, "back to review")
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
    assert released_how(harness, "fe-issued-later") == ("open", handle.id)


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


async def test_a_cron_schedule_cannot_smuggle_a_forged_continuation(harness):
    cert = certificate("fe-cron", purchased_at=now() - timedelta(days=10))
    harness.store.seed([cert])
    request = RefundRequest(
        certificate_id=cert.certificate_id,
        requester="user-1",
        reason="no_longer_needed",
        carried=forged_state(cert),
    )
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        request,
        id=f"refund-fe-cron-{uuid.uuid4().hex[:6]}",
        task_queue=harness.task_queue,
        cron_schedule="@every 1s",
    )
    try:
        seen: set[str] = set()
        for _ in range(200):  # the first run and at least one run the schedule started
            async for run in harness.client.list_workflows(f"WorkflowId = '{handle.id}'"):
                if run.status is not None and run.status.name == "COMPLETED":
                    seen.add(run.run_id)
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.1)
        assert len(seen) >= 2
        for run_id in seen:
            run = harness.handle(handle.id, run_id=run_id)  # a cron run closes "continued"
            status = await run.query(RefundWorkflow.status)
            assert status.state is RefundState.REJECTED
            assert "only the refund itself passes on" in (status.rejection_reason or "")
    finally:
        await handle.terminate("test over")
    assert harness.ledger.entries() == []
    assert harness.store.get(cert.certificate_id).status == "paid"


class SlowHold(CertificateStore):
    """Holding takes a while, as on a busy database."""

    def hold_in(self, conn: Connection, certificate_id: str, refund_id: str) -> CertificateStatus:
        time.sleep(1.5)
        return super().hold_in(conn, certificate_id, refund_id)


async def test_a_cancellation_while_the_certificate_is_being_held_is_a_cancel(harness):
    activities = harness.collaborators()
    activities.store = SlowHold(activities.store.engine)
    queue = f"fe-slow-{uuid.uuid4().hex[:6]}"
    async with build_worker(
        harness.client, settings=harness.settings, collaborators=activities, task_queue=queue
    ):
        cert = certificate("fe-holding", purchased_at=now() - timedelta(days=10))
        harness.store.seed([cert])
        request = RefundRequest(
            certificate_id=cert.certificate_id, requester="user-1", reason="no_longer_needed"
        )
        handle = await start(harness, request, queue)
        await harness.wait_for(handle, lambda s: s.rule is not None)  # decided, holding now
        await handle.cancel()
        status = await harness.result(handle)
    assert status.state is RefundState.CANCELLED
    [entry] = [e for e in status.audit if e.action == TEMPORAL_CANCELLATION]
    assert entry.accepted, entry
    assert harness.store.get(cert.certificate_id).status == "paid"


class RefusesOnce:
    """A certificate authority that refuses the first revocation (a CA-side hold)."""

    def __init__(self, inner: CertificateAuthority) -> None:
        self.inner = inner
        self.refused = False

    def revoke(self, certificate_id: str, refund_id: str) -> None:
        if not self.refused:
            self.refused = True
            raise RevocationRefusedError("the CA holds revocations for this account")
        self.inner.revoke(certificate_id, refund_id)


async def test_a_continued_run_in_needs_attention_still_revokes_on_retry(harness):
    settings = harness.settings.model_copy(update={"history_event_limit": 100})
    activities = harness.collaborators(settings)
    activities.authority = RefusesOnce(activities.authority)
    queue = f"fe-ca-{uuid.uuid4().hex[:6]}"
    harness.task_queue = queue
    async with build_worker(
        harness.client, settings=settings, collaborators=activities, task_queue=queue
    ):
        cert = certificate("fe-revoke-later", purchased_at=now() - timedelta(days=10))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        with harness.store.engine.begin() as conn:  # issued while the review waited
            conn.execute(
                update(certificates)
                .where(certificates.c.certificate_id == "fe-revoke-later")
                .values(issued_at=now(), validation="validated", status_before_refund="issued")
            )
        await handle.signal("approve", {"reviewer": "rev-1"})
        waiting = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        assert "revoke the certificate failed" in (waiting.attention_reason or "")
        first = harness.handle(handle.id, run_id=handle.result_run_id)
        for n in range(1000):
            if (await first.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                break
            await handle.signal("reject", {"reviewer": f"nobody-{n}", "reason": "no"})
        else:
            raise AssertionError("the refund did not continue as new")
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1", note="CA ok")
        )
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert released_how(harness, "fe-revoke-later") == ("open", handle.id)
