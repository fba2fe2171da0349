"""The review deadline with virtual time: each timeout action, the day-28 cap, the re-check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from tests.factories import certificate
from tests.harness import Harness
from worker import build_worker
from workflows.contract import RefundState


def now() -> datetime:
    return datetime.now(UTC)


async def wait_out_the_review(harness: Harness, handle: WorkflowHandle[Any, Any]) -> None:
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await harness.fast_forward(handle, days=40)


async def test_deadline_approves_by_default(harness):
    cert = certificate("dl-approve", purchased_at=now() - timedelta(days=10))
    handle = await harness.submit(cert)
    waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await harness.fast_forward(handle, days=40)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert status.decided_by == "review-deadline"
    assert len(harness.ledger.entries(handle.id)) == 1
    passed = next(e for e in status.audit if e.action == "review deadline passed")
    assert waiting.review_deadline is not None
    assert passed.at >= waiting.review_deadline
    assert passed.at - waiting.review_deadline < timedelta(minutes=1)


async def test_deadline_rejects_when_configured(harness, temporal_env, harness_settings):
    settings = harness_settings.model_copy(update={"review_timeout_action": "reject"})
    task_queue = f"{harness.task_queue}-reject"
    async with build_worker(temporal_env.client, settings=settings, task_queue=task_queue):
        harness.task_queue = task_queue
        cert = certificate("dl-reject", purchased_at=now() - timedelta(days=10))
        handle = await harness.submit(cert)
        await wait_out_the_review(harness, handle)
        status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    assert status.rejection_reason == "no reviewer decided before the review deadline"
    assert harness.ledger.entries() == []
    assert harness.store.get("dl-reject").status == "paid"


async def test_issued_certificates_time_out_before_day_28_ends(harness):
    issued_at = now() - timedelta(days=20)
    cert = certificate("dl-cap", purchased_at=issued_at, issued_at=issued_at)
    handle = await harness.submit(cert)
    waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    assert waiting.review_deadline is not None
    # 15 business days would run past day 28; the cap ends the review on day 28 itself.
    assert waiting.review_deadline - issued_at < timedelta(days=30)
    await harness.fast_forward(handle, days=40)
    status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    actions = [e.action for e in status.audit]
    assert "re-checked: still refundable" in actions
    assert harness.store.get("dl-cap").status == "refunded"


async def test_rules_are_rechecked_when_the_certificate_expired_meanwhile(harness):
    cert = certificate(
        "dl-expired",
        purchased_at=now() - timedelta(days=10),
        expires_at=now() + timedelta(days=18),
    )
    handle = await harness.submit(cert)
    await wait_out_the_review(harness, handle)
    status = await harness.result(handle)
    assert status.state is RefundState.REJECTED
    recheck = next(e for e in status.audit if e.action.startswith("re-checked"))
    assert recheck.action == "re-checked: expired"
    assert status.rejection_reason == "the certificate has expired"
    assert harness.ledger.entries() == []
    assert harness.store.get("dl-expired").status == "paid"
