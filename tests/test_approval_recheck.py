"""One "still refundable now" check before any approval is carried out, by a reviewer or by the
deadline: expired, already refunded or (issued) past day 28 deny; near-expiry is judged only at
the moment of the request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from storage.schema import certificates, revocations
from tests.factories import certificate
from workflows.contract import ActionResult, ApproveInput, RefundState
from workflows.refund import RefundWorkflow


def now() -> datetime:
    return datetime.now(UTC)


async def test_an_approval_after_the_certificate_expired_is_refused_with_the_reason(harness):
    cert = certificate(
        "rc-expired", purchased_at=now() - timedelta(days=10), expires_at=now() + timedelta(days=20)
    )
    handle = await harness.submit(cert)
    waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    assert waiting.review_deadline is not None
    assert waiting.review_deadline > now() + timedelta(days=20, hours=12)
    await harness.fast_forward(handle, days=20.5)
    result: ActionResult = await handle.execute_update(
        RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1")
    )
    assert result.state is RefundState.REJECTED
    assert result.detail == "the certificate has expired"
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.rejection_reason == "the certificate has expired"
    assert "re-checked: expired" in [e.action for e in status.audit]
    assert harness.ledger.entries() == []
    assert harness.store.get("rc-expired").status == "paid"


async def test_an_approval_of_a_certificate_revoked_meanwhile_pays_nothing(harness):
    issued = now() - timedelta(days=3)
    cert = certificate("rc-revoked", purchased_at=issued, issued_at=issued)
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    with harness.store.engine.begin() as conn:  # revoked by another system while in review
        conn.execute(
            update(certificates)
            .where(certificates.c.certificate_id == "rc-revoked")
            .values(status="revoked")
        )
        conn.execute(
            insert(revocations).values(
                certificate_id="rc-revoked", refund_id="ca-console", revoked_at=now()
            )
        )
    result: ActionResult = await handle.execute_update(
        RefundWorkflow.approve_request, ApproveInput(reviewer="rev-2")
    )
    assert result.state is RefundState.REJECTED
    assert result.detail == "the certificate is already revoked"
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert harness.ledger.entries() == []
    assert harness.store.get("rc-revoked").status == "revoked"  # the hold ends; revoked stays


async def test_the_deadline_approves_a_request_valid_when_made_though_near_expiry_now(harness):
    """35 days before expiry when asked: the deadline (about 21 days on) still approves."""
    cert = certificate(
        "rc-near", purchased_at=now() - timedelta(days=10), expires_at=now() + timedelta(days=35)
    )
    handle = await harness.submit(cert)
    waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    assert waiting.review_deadline is not None
    assert waiting.review_deadline < now() + timedelta(days=30)
    await harness.fast_forward(handle, days=30)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert status.decided_by == "review-deadline"
    assert "re-checked: still refundable" in [e.action for e in status.audit]
    assert len(harness.ledger.entries()) == 1
