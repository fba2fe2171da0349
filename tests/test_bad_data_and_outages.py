"""Bad data ends a refund with a reason a person can act on, never a retry loop; a payment channel
that stays down asks for a person after the configured patience, and a retry pays once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from domain.certificates import Channel
from storage.schema import certificates
from tests.factories import certificate
from tests.gateways import ChannelDown
from tests.harness import task_failures
from workflows.contract import LegState, OperatorInput, RefundRequest, RefundState
from workflows.refund import RefundWorkflow


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_purchase_after_the_request_rejects_at_once_with_a_reason(harness):
    cert = certificate("bd-future", purchased_at=now() + timedelta(days=2))
    started = time.monotonic()
    handle = await harness.submit(cert)
    status = await harness.result(handle)
    assert time.monotonic() - started < 20
    assert status.state is RefundState.REJECTED
    assert (
        status.rejection_reason == "certificate data is inconsistent: purchased after the request"
    )
    assert [e.action for e in status.audit if not e.accepted] == ["rules not applied"]
    assert harness.store.get("bd-future").status == "paid"
    assert await task_failures(handle) == 0


async def test_a_record_the_model_refuses_rejects_at_once_with_a_reason(harness):
    bought = now() - timedelta(days=1)
    cert = certificate("bd-corrupt", purchased_at=bought, issued_at=bought)
    harness.store.seed([cert])
    with harness.store.engine.begin() as conn:
        conn.execute(
            update(certificates)
            .where(certificates.c.certificate_id == "bd-corrupt")
            .values(issued_at=bought - timedelta(days=30))
        )
    handle = await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(certificate_id="bd-corrupt", requester="user-1", reason="no_longer_needed"),
        id=f"refund-bd-corrupt-{uuid.uuid4().hex[:6]}",
        task_queue=harness.task_queue,
    )
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.rejection_reason == (
        "certificate data is inconsistent: issued_at is before purchased_at"
    )
    assert await task_failures(handle) == 0


async def test_a_channel_down_past_the_patience_needs_attention_and_a_retry_pays_once(harness):
    async with harness.worker_with_gateway(
        Channel.ALIPAY,
        lambda inner: ChannelDown(inner, "alipay gateway timed out"),
        payment_patience=timedelta(seconds=3),
    ) as alipay:
        handle = await harness.submit(certificate("bd-outage", purchased_at=now()))
        status = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        assert status.attention_reason is not None
        assert "alipay unavailable since" in status.attention_reason
        assert status.attention_reason.endswith(
            "UTC (last error: alipay: outcome unknown (alipay gateway timed out); "
            "asked again with the same request id)"
        )
        assert status.legs[0].status is LegState.FAILED
        assert alipay.calls >= 2 and harness.ledger.entries() == []
        alipay.down = False
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1", note="alipay up")
        )
        done = await harness.result(handle)
    assert done.state is RefundState.REFUNDED
    [entry] = harness.ledger.entries()
    assert entry.idempotency_key == f"{handle.id}:leg-0"
    assert harness.store.get("bd-outage").status == "refunded"


async def test_a_revocation_the_ca_refuses_needs_attention_until_done_by_hand(harness):
    issued = now() - timedelta(days=3)
    cert = certificate("bd-no-revoke", purchased_at=issued, issued_at=issued)
    async with harness.worker_with(fault_reject=["ca:bd-no-revoke"]):
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("approve", {"reviewer": "rev-1"})
        waiting = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        assert waiting.attention_reason == (
            "revoke the certificate failed: the certificate authority refused to revoke "
            "bd-no-revoke"
        )
        assert harness.ledger.entries() == []  # no money before the certificate is revoked
        await handle.execute_update(
            RefundWorkflow.resolve_manually,
            OperatorInput(operator="operator-1", note="revoked in the CA's console"),
        )
        done = await harness.result(handle)
    assert done.state is RefundState.REFUNDED
    assert "certificate released by hand" in [e.action for e in done.audit]
    assert [leg.status for leg in done.legs] == [LegState.RETURNED, LegState.NOT_REFUNDABLE]
    assert len(harness.ledger.entries()) == 1
