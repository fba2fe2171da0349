"""Signed actions on a live refund: a name typed by whoever reaches Temporal proves nothing; the
people directory's keys do, as the refund last read the directory."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import WorkflowUpdateFailedError

from converter import DATA_CONVERTER
from domain.certificates import Channel
from domain.signatures import Role, public_key_text, sign
from starter.client import RefundClient
from storage.people import PeopleDirectory
from tests.factories import BANK_REFUSES, certificate, refused_by_bank
from tests.gateways import ChannelDown
from tests.harness import Harness, audit_actions, refusal
from tests.signing import enrol, key_of, signed_as_sent
from workflows.contract import (
    ApproveInput,
    CancelInput,
    OperatorInput,
    RefundState,
    RejectInput,
    ReviewAction,
)
from workflows.refund import RefundWorkflow

NOT_SIGNED = "the action is not signed: `refunds approve` signs it with rev-1's key"


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def in_review(harness: Harness, cert_id: str):
    handle = await harness.submit(certificate(cert_id, purchased_at=_ago(10)))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    return handle


def raw(harness: Harness, handle):
    """The same refund through a client that signs nothing (anyone with Temporal access)."""
    return harness.env.client.get_workflow_handle_for(RefundWorkflow.run, handle.id)


async def test_an_unsigned_approval_is_refused_and_audited(harness):
    handle = await in_review(harness, "sig-unsigned")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await raw(harness, handle).execute_update(
            RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1")
        )
    assert refusal(refused.value) == NOT_SIGNED
    await raw(harness, handle).signal(RefundWorkflow.approve, ApproveInput(reviewer="rev-2"))
    status = await harness.wait_for(handle, lambda s: s.audit[-1].actor == "rev-2")
    assert status.state is RefundState.VALIDATING_APPLICATION
    assert not status.decision_pending and status.decided_by is None
    assert audit_actions(status)[-2:] == [
        ("rev-1", "approve (update)", False),
        ("rev-2", "approve (signal)", False),
    ]
    assert status.audit[-2].detail == NOT_SIGNED
    assert "rev-2's key" in status.audit[-1].detail


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        (
            lambda rid, at: sign(key_of("rev-2"), rid, "approve", "rev-1", "", at),
            "the signature does not match rev-1's key for this action",
        ),
        (
            lambda rid, at: sign(key_of("rev-1"), "refund-other", "approve", "rev-1", "", at),
            "the signature does not match rev-1's key for this action",
        ),
        (
            lambda rid, at: sign(
                key_of("rev-1"), rid, "approve", "rev-1", "", at - timedelta(minutes=11)
            ),
            "the signature is stale",
        ),
        (
            lambda rid, at: sign(
                key_of("rev-1"), rid, "approve", "rev-1", "", at - timedelta(minutes=5)
            ),
            "the signature was made before this request was submitted",
        ),
    ],
    ids=["another-key", "another-refund", "stale", "before-the-request"],
)
async def test_a_forged_or_stale_approval_changes_nothing(harness, forge, why):
    handle = await in_review(harness, f"sig-forged-{len(why)}")
    forged = ApproveInput(reviewer="rev-1", signature=forge(handle.id, datetime.now(UTC)))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await raw(harness, handle).execute_update(RefundWorkflow.approve_request, forged)
    assert refusal(refused.value).startswith(why)
    status = await harness.status(handle)
    assert status.state is RefundState.VALIDATING_APPLICATION
    assert audit_actions(status)[-1] == ("rev-1", "approve (update)", False)


async def test_a_signature_is_for_one_action_and_the_signer_only(harness):
    handle = await in_review(harness, "sig-moved")
    approval = signed_as_sent(
        handle.id, ReviewAction.APPROVE, ApproveInput(reviewer="rev-1"), datetime.now(UTC)
    )
    as_rejection = RejectInput(reviewer="rev-1", reason="", signature=approval.signature)
    with_a_note = approval.model_copy(update={"note": "added after signing"})
    for message in (as_rejection.model_copy(update={"reason": "no"}), with_a_note):
        update = (
            RefundWorkflow.reject_request
            if isinstance(message, RejectInput)
            else RefundWorkflow.approve_request
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await raw(harness, handle).execute_update(update, message)
        assert refusal(refused.value) == "the signature does not match rev-1's key for this action"
    # The customer's key does not make them a reviewer, nor a reviewer's the requester.
    customer = signed_as_sent(
        handle.id, ReviewAction.CANCEL, CancelInput(requester="rev-2"), datetime.now(UTC)
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await raw(harness, handle).execute_update(RefundWorkflow.cancel_request, customer)
    assert refusal(refused.value) == "only the requester (user-1) can cancel this request"
    result = await raw(harness, handle).execute_update(RefundWorkflow.approve_request, approval)
    assert result.state is RefundState.REFUNDING
    assert (await harness.result(handle)).decided_by == "rev-1"


async def test_the_requester_cancels_with_their_own_key(harness):
    handle = await in_review(harness, "sig-cancel")
    other = sign(key_of("user-2"), handle.id, "cancel", "user-1", "", datetime.now(UTC))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await raw(harness, handle).execute_update(
            RefundWorkflow.cancel_request, CancelInput(requester="user-1", signature=other)
        )
    assert refusal(refused.value) == "the signature does not match user-1's key for this action"
    await handle.execute_update(RefundWorkflow.cancel_request, CancelInput(requester="user-1"))
    assert (await harness.result(handle)).state is RefundState.CANCELLED


async def test_a_removed_reviewer_is_refused_and_a_new_one_can_approve(harness):
    handle = await in_review(harness, "sig-directory")
    people = PeopleDirectory(harness.store.engine)
    refunds = RefundClient(harness.client, harness.settings)
    assert people.remove("rev-1")
    enrol(harness.store.engine, {Role.REVIEWER: ["rev-3"]})
    announced = await refunds.announce_people_change()
    assert announced.told >= 1 and announced.failed == 0
    status = await harness.wait_for(handle, lambda s: s.audit[-1].actor == "people-directory")
    assert status.audit[-1].action == "people directory changed"
    assert status.audit[-1].detail == "removed rev-1 (reviewer); added rev-3 (reviewer)"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    assert refusal(refused.value) == "rev-1 is not on the reviewer list"
    approved = await handle.execute_update(
        RefundWorkflow.approve_request, ApproveInput(reviewer="rev-3", note="checked")
    )
    assert approved.state is RefundState.REFUNDING
    final = await harness.result(handle)
    assert final.state is RefundState.REFUNDED and final.decided_by == "rev-3"


async def test_a_forged_directory_signal_can_only_cause_a_reload(harness):
    handle = await in_review(harness, "sig-reload")
    before = await harness.status(handle)
    for payloads in ([], ["rev-evil"], [{"people": [{"person_id": "rev-evil"}]}]):
        await raw(harness, handle).signal("people_changed", *payloads)
    history = [e async for e in handle.fetch_history_events()]
    loads = [e for e in history if e.HasField("activity_task_completed_event_attributes")]
    status = await harness.status(handle)
    assert status.audit == before.audit  # nothing changed in the directory: nothing to say
    assert len(loads) >= 2  # read when the review began, and again for the signals
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            RefundWorkflow.approve_request, ApproveInput(reviewer="rev-evil")
        )
    assert refusal(refused.value) == "rev-evil is not on the reviewer list"


async def test_an_operators_signed_retry_is_good_once(harness):
    async with harness.worker_with(fault_reject=[BANK_REFUSES]):
        cert = refused_by_bank("sig-operator", _ago(1))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        retry = signed_as_sent(
            handle.id, ReviewAction.RETRY, OperatorInput(operator="operator-1"), datetime.now(UTC)
        )
        assert isinstance(retry, OperatorInput)
        await raw(harness, handle).execute_update(RefundWorkflow.retry_payments, retry)
        await harness.wait_for(
            handle,
            lambda s: (
                s.state is RefundState.NEEDS_ATTENTION
                and any(e.action == "retry requested" for e in s.audit)
            ),
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await raw(harness, handle).execute_update(RefundWorkflow.retry_payments, retry)
        assert refusal(refused.value) == "this signed action was already used"
        unsigned = OperatorInput(operator="operator-1", note="paid by wire")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await raw(harness, handle).execute_update(RefundWorkflow.resolve_manually, unsigned)
        assert refusal(refused.value).startswith("the action is not signed")
        await handle.execute_update(RefundWorkflow.resolve_manually, unsigned)
        assert (await harness.result(handle)).state is RefundState.REFUNDED


async def test_the_directory_is_read_with_the_promised_options(harness):
    """Read within 30 s or tried again, 1 s apart backing off to a minute, with no end: a
    refund waiting for a person must know who may act, whatever the system of record's mood."""
    handle = await in_review(harness, "sig-options")
    [scheduled] = [
        e
        async for e in handle.fetch_history_events()
        if e.activity_task_scheduled_event_attributes.activity_type.name == "load_people"
    ]
    options = scheduled.activity_task_scheduled_event_attributes
    assert options.start_to_close_timeout.ToTimedelta() == timedelta(seconds=30)
    assert options.retry_policy.initial_interval.ToTimedelta() == timedelta(seconds=1)
    assert options.retry_policy.maximum_interval.ToTimedelta() == timedelta(minutes=1)
    assert options.retry_policy.maximum_attempts == 0
    summary = DATA_CONVERTER.payload_converter.from_payload(scheduled.user_metadata.summary, str)
    assert summary == "who may act on this refund"


async def test_a_new_key_is_audited_and_the_old_one_refused(harness):
    handle = await in_review(harness, "sig-new-key")
    people = PeopleDirectory(harness.store.engine)
    old = signed_as_sent(
        handle.id, ReviewAction.APPROVE, ApproveInput(reviewer="rev-2"), datetime.now(UTC)
    )
    people.remove("rev-2")
    people.add("rev-2", Role.REVIEWER, public_key_text(Ed25519PrivateKey.generate()))
    await handle.signal(RefundWorkflow.people_changed)
    status = await harness.wait_for(handle, lambda s: s.audit[-1].actor == "people-directory")
    assert status.audit[-1].detail == "new key for rev-2 (reviewer)"
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await raw(harness, handle).execute_update(RefundWorkflow.approve_request, old)
    assert refusal(refused.value) == "the signature does not match rev-2's key for this action"


async def test_a_flood_of_directory_signals_is_read_once_per_burst_and_never_blocks(harness):
    """Signals that come while the directory is being read are served by one more read, and
    their handlers all finish, so a long refund still continues as new."""
    async with harness.worker_with(history_event_limit=100):
        handle = await in_review(harness, "sig-flood")
        first = await harness.flood_until_continued(handle, RefundWorkflow.people_changed)
        loads = (await harness.scheduled_activities(first)).count("load_people")
        assert 2 <= loads <= 1 + 40  # one read per burst of 20, not one per signal
        await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
        assert (await harness.result(handle)).state is RefundState.REFUNDED


async def test_a_refund_waiting_for_no_one_does_not_read_the_directory(harness):
    """Once money moves nobody's action is awaited: a directory signal reads nothing, so a
    flood of them cannot make a paying refund's history grow with reads."""
    async with harness.worker_with_gateway(Channel.ALIPAY, ChannelDown) as alipay:
        handle = await in_review(harness, "sig-paying")
        await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
        await harness.in_state(handle, RefundState.REFUNDING)
        await handle.signal(RefundWorkflow.people_changed)
        await handle.query(RefundWorkflow.status)  # answered after the signal's task
        await asyncio.sleep(1)
        names = await harness.scheduled_activities(handle)
        assert names.count("load_people") == 1  # only when the review began
        alipay.down = False
        assert (await harness.result(handle)).state is RefundState.REFUNDED
