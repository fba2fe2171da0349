"""Hostile input straight through a Temporal client: nothing breaks or changes, all is audited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import RawValue

from logs import configure_logging
from storage.reconcile import reconcile
from storage.schema import notifications
from tests.factories import certificate
from tests.harness import task_failures
from workflows.contract import ApproveInput, CancelInput, RefundState, RejectInput
from workflows.refund import RefundWorkflow
from workflows.search_attributes import ALL_KEYS

INJECTION = "'); DROP TABLE certificates; -- <script>alert(1)</script> ${jndi:ldap://x} %s%n"
UNICODE = "退款 🔥 \u202eevil\u202c zero\u200bwidth Ω≈ç√ " * 20


def in_review(cert_id: str, **kwargs):
    return certificate(cert_id, purchased_at=datetime.now(UTC) - timedelta(days=10), **kwargs)


async def test_signals_of_any_shape_are_audited_and_ignored(harness):
    handle = await harness.submit(in_review("odd-1"))
    before = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.signal("approve")
    await handle.signal("approve", args=[{"reviewer": "rev-1"}, 2, 3])
    await handle.signal("cancel", args=[None])
    await handle.signal(
        "reject", RawValue(Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00\xff"))
    )
    await handle.signal("self_destruct", {"now": True})
    await handle.signal("x" * 500, 1)
    status = await harness.wait_for(handle, lambda s: sum(not e.accepted for e in s.audit) >= 6)
    assert status.state is RefundState.VALIDATING_APPLICATION
    refused = [(e.action, e.detail) for e in status.audit if not e.accepted]
    assert refused[:4] == [
        ("approve (signal)", "malformed"),
        ("approve (signal)", "malformed"),
        ("cancel (signal)", "malformed"),
        ("reject (signal)", "malformed"),
    ]
    assert refused[4] == ("signal 'self_destruct'", "unknown signal")
    assert len(refused[5][0]) < 100
    assert status.legs == before.legs and status.decided_by is None
    await handle.signal("approve", {"reviewer": "rev-1"})
    assert (await harness.result(handle)).state is RefundState.REFUNDED
    assert await task_failures(handle) == 0


async def test_an_undecodable_signal_is_dropped_without_failing_the_workflow(harness):
    handle = await harness.submit(in_review("odd-2"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    garbage = RawValue(Payload(metadata={"encoding": b"no/such-encoding"}, data=b"??"))
    await handle.signal("approve", garbage)
    await handle.signal(
        "reject", RawValue(Payload(metadata={"encoding": b"json/plain"}, data=b"{"))
    )
    await handle.signal("after_the_garbage")  # signals are handled in order
    status = await harness.wait_for(
        handle, lambda s: any(e.action == "signal 'after_the_garbage'" for e in s.audit)
    )
    assert status.state is RefundState.VALIDATING_APPLICATION
    decisions = ("approve", "reject", "cancel")
    assert not [e for e in status.audit if e.accepted and e.action.startswith(decisions)]
    assert status.decided_by is None
    assert await task_failures(handle) == 0


@pytest.mark.parametrize(
    ("update", "args"),
    [
        ("approve_request", []),
        ("approve_request", [{"reviewer": "rev-1"}, {"reviewer": "rev-2"}]),
        ("approve_request", ["rev-1"]),
        ("reject_request", [{"reviewer": "rev-1", "reason": "x" * 3000}]),
        ("cancel_request", [{"requester": 12345}]),
        ("no_such_update", [{}]),
    ],
)
async def test_malformed_updates_are_rejected_and_change_nothing(harness, update, args):
    handle = await harness.submit(in_review(f"upd-{update}-{len(args)}-{len(str(args))}"))
    before = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(update, args=args)
    after = await harness.status(handle)
    assert after.state is RefundState.VALIDATING_APPLICATION
    assert after.audit == before.audit
    assert await task_failures(handle) == 0


async def test_huge_unicode_and_injection_texts_are_kept_verbatim(harness):
    cert = in_review("text-1")
    handle = await harness.submit(cert, reason="other", feedback=(UNICODE + INJECTION)[:2000])
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    reason = f"{INJECTION} {UNICODE}"[:2000]
    await handle.execute_update(
        RefundWorkflow.reject_request, RejectInput(reviewer="rev-1", reason=reason)
    )
    status = await harness.result(handle)
    assert status.rejection_reason == reason.strip()
    assert status.feedback == (UNICODE + INJECTION)[:2000]
    with harness.store.engine.connect() as conn:
        message = conn.execute(select(notifications.c.message)).scalar_one()
    assert reason.strip() in message
    assert harness.store.count() == 1  # the tables are still there


async def test_many_simultaneous_decisions_give_one_outcome_each(harness):
    handles = [await harness.submit(in_review(f"mass-{i}")) for i in range(20)]
    for handle in handles:
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)

    async def everything_at_once(handle):
        await asyncio.gather(
            handle.signal("approve", ApproveInput(reviewer="rev-1")),
            handle.signal("reject", RejectInput(reviewer="rev-2", reason="no")),
            handle.signal("cancel", CancelInput(requester="user-1")),
            _quietly(
                handle.execute_update(
                    RefundWorkflow.approve_request, ApproveInput(reviewer="rev-2")
                )
            ),
            _quietly(
                handle.execute_update(
                    RefundWorkflow.cancel_request, CancelInput(requester="user-1")
                )
            ),
        )

    await asyncio.gather(*map(everything_at_once, handles))
    outcomes = {}
    for handle in handles:
        status = await harness.result(handle)
        accepted = [
            e
            for e in status.audit
            if e.accepted and e.action.split(" ")[0] in ("approve", "reject", "cancel")
        ]
        assert len(accepted) == 1, [e.action for e in status.audit]
        outcomes[handle.id] = status.state
        paid = harness.ledger.entries(handle.id)
        assert len(paid) == (1 if status.state is RefundState.REFUNDED else 0)
        assert await task_failures(handle) == 0
    recon = reconcile(harness.store.engine)
    assert recon.paid_twice == 0 and recon.missing_amount == 0
    assert len(recon.balances) == sum(s is RefundState.REFUNDED for s in outcomes.values())


async def _quietly(update) -> None:
    with contextlib.suppress(WorkflowUpdateFailedError):
        await update


async def test_no_personal_data_in_search_attributes_or_logs(harness, caplog):
    phone, dingtalk_feedback = "13912345678", "call me on dingtalk zhang_wei_88"
    configure_logging("json", "DEBUG")
    caplog.set_level(logging.DEBUG)
    cert = certificate("pii-1", purchased_at=datetime.now(UTC) - timedelta(days=1))
    handle = await harness.submit(cert, reason="install_failed", support_contact=phone)
    await harness.result(handle)
    cert2 = in_review("pii-2")
    handle2 = await harness.submit(cert2, reason="other", feedback=dingtalk_feedback)
    await harness.in_state(handle2, RefundState.VALIDATING_APPLICATION)
    await handle2.signal("reject", RejectInput(reviewer="rev-1", reason="no"))
    await harness.result(handle2)
    for h in (handle, handle2):
        description = await h.describe()
        values = [str(description.typed_search_attributes.get(key)) for key in ALL_KEYS]
        assert not any(phone in v or "zhang_wei" in v for v in values)
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "refund assessed" in logged
    assert phone not in logged and "138****" not in logged
    assert "zhang_wei" not in logged and "dingtalk" not in logged.lower()
    assert "ali-1" not in logged  # payment references stay out of logs too
