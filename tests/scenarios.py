"""One scenario per path through RefundWorkflow, used to record the committed replay histories."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError

from activities.schedule_file import write_schedule
from domain.certificates import Channel
from domain.decisions import Assessment
from domain.official_calendar import parse_schedule
from domain.signatures import Role
from starter.books import repair
from starter.client import RefundClient
from storage.people import PeopleDirectory
from tests.factories import BANK_REFUSES, SHANGHAI, certificate, refused_by_bank
from tests.gateways import ChannelDown, RejectsOnce
from tests.harness import Harness, workflow_tasks_completed
from tests.signing import enrol
from workflows.contract import (
    ActionResult,
    ApproveInput,
    CancelInput,
    CarriedState,
    OperatorInput,
    RefundRequest,
    RefundState,
    RejectInput,
)
from workflows.refund import RefundWorkflow

Handle = WorkflowHandle[Any, Any]
Scenario = Callable[[Harness], Awaitable[Handle]]


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _review_cert(cert_id: str) -> Any:
    return certificate(cert_id, purchased_at=_ago(10))


async def _in_review(harness: Harness, cert_id: str, **changes: Any) -> Handle:
    handle = await harness.submit(_review_cert(cert_id), **changes)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    return handle


async def auto_approved(harness: Harness) -> Handle:
    cert = certificate(
        "h-auto",
        purchased_at=_ago(1),
        payments=[
            {"channel": "alipay", "amount": "100.00", "reference": "a"},
            {"channel": "bank", "amount": "20.00", "reference": "b"},
            {"channel": "account_balance", "amount": "5.00", "reference": "c"},
            {"channel": "voucher", "amount": "30.00", "reference": "v"},
        ],
    )
    return await harness.submit(cert)


async def denied_by_rule(harness: Harness) -> Handle:
    issued = _ago(40)
    return await harness.submit(certificate("h-denied", purchased_at=issued, issued_at=issued))


async def not_the_owner(harness: Harness) -> Handle:
    return await harness.submit(certificate("h-owner", purchased_at=_ago(1)), requester="intruder")


async def approved_by_signal_with_support(harness: Harness) -> Handle:
    issued = _ago(10)
    cert = certificate("h-approve-signal", purchased_at=issued, issued_at=issued)
    handle = await harness.submit(cert, reason="install_failed", support_contact="13800138000")
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.signal("approve", ApproveInput(reviewer="rev-1", note="fine"))
    return handle


async def approved_by_update(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-approve-update")
    approved: ActionResult = await handle.execute_update(
        RefundWorkflow.approve_request, ApproveInput(reviewer="rev-2")
    )
    assert approved.state is RefundState.REFUNDING
    return handle


async def rejected_after_refused_signals(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-reject")
    await handle.signal("approve", ApproveInput(reviewer="stranger"))
    await handle.signal("reject", ["malformed"])
    await handle.signal("reject", RejectInput(reviewer="rev-1", reason="in use"))
    return handle


async def cancelled(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-cancel")
    await handle.execute_update(RefundWorkflow.cancel_request, CancelInput(requester="user-1"))
    return handle


async def deadline_approved(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-deadline")
    await harness.fast_forward(handle, days=40)
    return handle


async def deadline_recheck_denied(harness: Harness) -> Handle:
    cert = certificate("h-expired", purchased_at=_ago(10), expires_at=_ago(-18))
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await harness.fast_forward(handle, days=40)
    return handle


async def needs_attention_then_retried(harness: Harness) -> Handle:
    async with harness.worker_with_gateway(Channel.ALIPAY, RejectsOnce):
        handle = await harness.submit(certificate("h-attention", purchased_at=_ago(1)))
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        await handle.execute_update(
            RefundWorkflow.retry_payments,
            OperatorInput(operator=harness.settings.operators[0], note="reopened"),
        )
        await harness.result(handle)
    return handle


async def fell_back_to_balance(harness: Harness) -> Handle:
    async with harness.worker_with(fallback_to_balance=True, fault_reject=["alipay:ali-gone"]):
        cert = certificate(
            "h-fallback",
            purchased_at=_ago(1),
            payments=[{"channel": "alipay", "amount": "88.00", "reference": "ali-gone"}],
        )
        handle = await harness.submit(cert)
        await harness.result(handle)
    return handle


async def resolved_by_hand(harness: Harness) -> Handle:
    async with harness.worker_with(fault_reject=[BANK_REFUSES]):
        cert = refused_by_bank("h-manual", _ago(1))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        await handle.execute_update(
            RefundWorkflow.resolve_manually,
            OperatorInput(operator="operator-1", note="paid by wire transfer"),
        )
        await harness.result(handle)
    return handle


async def odd_signals(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-odd")
    await handle.signal("approve")
    await handle.signal("approve", args=[{"reviewer": "rev-1"}, 2])
    await handle.signal("self_destruct", {"now": True})
    await handle.signal("approve", {"reviewer": "rev-1"})
    return handle


async def cancellation_requested_in_review(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-temporal-cancel")
    await handle.cancel(reason="customer phoned support")
    return handle


async def cancellation_refused_while_refunding(harness: Harness) -> Handle:
    async with harness.worker_with(fault_latency_ms=1500):
        handle = await harness.submit(certificate("h-cancel-paying", purchased_at=_ago(1)))
        await harness.in_state(handle, RefundState.REFUNDING)
        await handle.cancel()
        await harness.result(handle)
    return handle


async def cancellation_refused_in_needs_attention(harness: Harness) -> Handle:
    async with harness.worker_with(fault_reject=[BANK_REFUSES]):
        cert = refused_by_bank("h-cancel-attention", _ago(1))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        await handle.cancel()
        await harness.wait_for(handle, lambda s: s.audit[-1].action.startswith("cancellation"))
        await handle.execute_update(
            RefundWorkflow.resolve_manually,
            OperatorInput(operator="operator-1", note="paid by wire transfer"),
        )
        await harness.result(handle)
    return handle


async def rerun_after_reset(harness: Harness) -> Handle:
    handle = await harness.submit(certificate("h-reset", purchased_at=_ago(1)))
    await harness.result(handle)
    events = [e async for e in handle.fetch_history_events()]
    first_task = workflow_tasks_completed(events)[0]
    return await harness.reset(handle, first_task, "an operator re-runs it")


async def completed_by_repair(harness: Harness) -> Handle:
    async with harness.worker_with_gateway(Channel.BANK, ChannelDown) as bank:
        issued = _ago(5)
        cert = certificate(
            "h-repair",
            purchased_at=issued,
            issued_at=issued,
            payments=[
                {"channel": "alipay", "amount": "100.00", "reference": "ali-ok"},
                {"channel": "bank", "amount": "50.00", "reference": "bank-back"},
            ],
        )
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("approve", ApproveInput(reviewer="rev-1"))
        await harness.wait_for(handle, lambda s: s.legs[0].transaction_id is not None)
        await handle.terminate("an operator stopped it")
        bank.down = False
        settings = harness.settings.model_copy(update={"task_queue": harness.task_queue})
        refunds = RefundClient(harness.client, settings)
        await repair(refunds, harness.store.engine, "h-repair", "operator-1", "bank is back")
        run_id = (await harness.client.get_workflow_handle(handle.id).describe()).run_id
        repaired = harness.handle(handle.id, run_id=run_id)
        await harness.result(repaired)
        return repaired


async def released_by_repair(harness: Harness) -> Handle:
    issued = _ago(5)
    handle = await harness.submit(certificate("h-release", purchased_at=issued, issued_at=issued))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.terminate("an operator stopped it")
    settings = harness.settings.model_copy(update={"task_queue": harness.task_queue})
    refunds = RefundClient(harness.client, settings)
    await repair(refunds, harness.store.engine, "h-release", "operator-1", "stopped by mistake")
    run_id = (await harness.client.get_workflow_handle(handle.id).describe()).run_id
    return harness.handle(handle.id, run_id=run_id)


async def forged_continuation(harness: Harness) -> Handle:
    cert = _review_cert("h-forged")
    harness.store.seed([cert])
    carried = CarriedState(
        state=RefundState.VALIDATING_APPLICATION,
        submitted_at=_ago(0),
        certificate=cert,
        assessment=Assessment(decision=None, review_deadline=_ago(-1), operators=["forger"]),
        legs=[],
        audit=[],
    )
    request = RefundRequest(
        certificate_id="h-forged", requester="user-1", reason="no_longer_needed", carried=carried
    )
    return await harness.client.start_workflow(
        RefundWorkflow.run,
        request,
        id=f"refund-h-forged-{uuid.uuid4().hex[:6]}",
        task_queue=harness.task_queue,
    )


async def rejected_for_bad_data(harness: Harness) -> Handle:
    return await harness.submit(certificate("h-bad-data", purchased_at=_ago(-2)))


async def payment_outage_then_retried(harness: Harness) -> Handle:
    patience = timedelta(seconds=2)
    async with harness.worker_with_gateway(
        Channel.ALIPAY, ChannelDown, payment_patience=patience
    ) as alipay:
        handle = await harness.submit(certificate("h-outage", purchased_at=_ago(1)))
        await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
        alipay.down = False
        await handle.execute_update(
            RefundWorkflow.retry_payments, OperatorInput(operator="operator-1", note="up again")
        )
        await harness.result(handle)
    return handle


async def approval_refused_by_recheck(harness: Harness) -> Handle:
    cert = certificate("h-recheck", purchased_at=_ago(10), expires_at=_ago(-20))
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await harness.fast_forward(handle, days=20.5)
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    return handle


async def continued_as_new(harness: Harness) -> Handle:
    async with harness.worker_with(history_event_limit=100):
        latest = await _in_review(harness, "h-continued")
        first = harness.handle(latest.id, run_id=latest.result_run_id)
        for n in range(1000):
            if (await first.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                break
            await latest.signal("approve", ApproveInput(reviewer=f"stranger-{n}"))
        await latest.signal("approve", ApproveInput(reviewer="rev-2"))
        await harness.result(latest)
    return first


async def forged_approval_refused(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-forged")
    unsigned = harness.env.client.get_workflow_handle(handle.id)
    with contextlib.suppress(WorkflowUpdateFailedError):
        await unsigned.execute_update(
            RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1")
        )
    await unsigned.signal("approve", ApproveInput(reviewer="rev-2"))
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-1"))
    return handle


async def directory_changed_in_review(harness: Harness) -> Handle:
    handle = await _in_review(harness, "h-directory")
    PeopleDirectory(harness.store.engine).remove("rev-1")
    enrol(harness.store.engine, {Role.REVIEWER: ["rev-3"]})
    await handle.signal(RefundWorkflow.people_changed)
    await harness.wait_for(handle, lambda s: s.audit[-1].action == "people directory changed")
    await handle.execute_update(RefundWorkflow.approve_request, ApproveInput(reviewer="rev-3"))
    return handle


async def deadline_moved_by_calendar(harness: Harness) -> Handle:
    """An official schedule makes the review's last business day a day off: the deadline moves
    one business day later, and the review times out there."""
    handle = await _in_review(harness, "h-calendar")
    deadline = (await harness.status(handle)).review_deadline
    assert deadline is not None and harness.settings.calendar_file is not None
    last_day = (deadline - timedelta(microseconds=1)).astimezone(SHANGHAI).date()
    schedule = f'[{last_day.year}]\nholidays = ["{last_day.isoformat()}"]\n'
    write_schedule(harness.settings.calendar_file, parse_schedule(schedule, "scenario"))
    await handle.signal(RefundWorkflow.calendar_changed)
    await harness.wait_for(handle, lambda s: s.review_deadline != deadline)
    await harness.fast_forward(handle, days=40)
    return handle


def bank_paid(certificate_id: str, reference: str) -> Any:
    return certificate(
        certificate_id,
        purchased_at=_ago(1),
        payments=[{"channel": "bank", "amount": "120.00", "reference": reference}],
    )


async def settled_by_webhook(harness: Harness) -> Handle:
    """The provider accepts the bank refund, settles it, and its signed webhook rings."""
    async with harness.worker_with():
        handle = await harness.submit(bank_paid("h-settled", "bank-settles"))
        await harness.result(handle)
    return handle


async def settled_by_poll(harness: Harness) -> Handle:
    """The settlement's webhook is lost: the refund's own poll finds the bank refund settled."""
    async with harness.worker_with(
        fault_webhook_loss_rate=1.0, settlement_poll=timedelta(seconds=2)
    ):
        handle = await harness.submit(bank_paid("h-polled", "bank-quiet"))
        await harness.result(handle)
    return handle


async def settlement_failed_then_fell_back(harness: Harness) -> Handle:
    """Accepted, then failed at settlement (a closed account): the leg goes to the balance."""
    async with harness.worker_with(fault_settlement_fail=["bank-closes"], fallback_to_balance=True):
        handle = await harness.submit(bank_paid("h-settle-failed", "bank-closes"))
        await harness.result(handle)
    return handle


SCENARIOS: dict[str, Scenario] = {
    "auto_approved": auto_approved,
    "denied_by_rule": denied_by_rule,
    "not_the_owner": not_the_owner,
    "approved_by_signal_with_support": approved_by_signal_with_support,
    "approved_by_update": approved_by_update,
    "rejected_after_refused_signals": rejected_after_refused_signals,
    "cancelled": cancelled,
    "deadline_approved": deadline_approved,
    "deadline_recheck_denied": deadline_recheck_denied,
    "needs_attention_then_retried": needs_attention_then_retried,
    "fell_back_to_balance": fell_back_to_balance,
    "resolved_by_hand": resolved_by_hand,
    "odd_signals": odd_signals,
    "cancellation_requested_in_review": cancellation_requested_in_review,
    "cancellation_refused_while_refunding": cancellation_refused_while_refunding,
    "cancellation_refused_in_needs_attention": cancellation_refused_in_needs_attention,
    "rerun_after_reset": rerun_after_reset,
    "completed_by_repair": completed_by_repair,
    "released_by_repair": released_by_repair,
    "rejected_for_bad_data": rejected_for_bad_data,
    "forged_continuation": forged_continuation,
    "payment_outage_then_retried": payment_outage_then_retried,
    "approval_refused_by_recheck": approval_refused_by_recheck,
    "continued_as_new": continued_as_new,
    "forged_approval_refused": forged_approval_refused,
    "directory_changed_in_review": directory_changed_in_review,
    "deadline_moved_by_calendar": deadline_moved_by_calendar,
    "settled_by_webhook": settled_by_webhook,
    "settled_by_poll": settled_by_poll,
    "settlement_failed_then_fell_back": settlement_failed_then_fell_back,
}
