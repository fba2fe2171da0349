"""The books of certificates as an operator sees them: reconciliation with running refunds, one
certificate's full picture, and ``refunds repair`` for what a terminated refund left behind.

The same refund id runs again with an operator's repair order: a hold with no money moved is
released (the certificate gets back its status from before the refund); a certificate the refund
already revoked or paid part of is completed, paying only what the ledger does not hold yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.temporal_history import refund_is_running
from domain.certificates import Certificate
from domain.errors import CertificateNotFoundError
from domain.ledger import LedgerEntry
from domain.signatures import Role
from domain.values import id_problem
from starter.client import RefundClient
from starter.errors import UserError
from storage.certificates import CertificateStore
from storage.ledger import Ledger
from storage.people import PeopleDirectory
from storage.reconcile import Reconciliation, RefundBalance, reconcile_with_refunds
from storage.repairs import COMPLETION, RELEASED, Repair, RepairOrders
from workflows.contract import RefundReason, RefundRequest, RepairOrder
from workflows.refund import RefundWorkflow
from workflows.search_attributes import REFUND_STATE


async def books(
    refunds: RefundClient, engine: Engine, certificate_id: str | None = None
) -> Reconciliation:
    """Reconciliation in which each unsettled certificate's refund was asked whether it runs."""

    async def running(refund_id: str) -> bool:
        try:
            return await refund_is_running(refunds.client, refund_id)
        except RPCError as err:
            raise UserError(f"cannot ask Temporal about {refund_id}: {err.message}") from None

    return await reconcile_with_refunds(engine, running, certificate_id)


@dataclass
class CertificateView:
    certificate: Certificate
    refund_id: str
    refund_status: str
    """The refund's workflow: running, completed, terminated... or ``none``."""
    refund_state: str | None
    balance: RefundBalance | None
    ledger: list[LedgerEntry]
    repairs: list[Repair]


async def certificate_view(
    refunds: RefundClient, engine: Engine, certificate_id: str
) -> CertificateView:
    try:
        certificate = CertificateStore(engine).get(certificate_id)
    except CertificateNotFoundError:
        raise UserError(f"unknown certificate {certificate_id!r}") from None
    recon = await books(refunds, engine, certificate_id)
    balance = recon.balances[0] if recon.balances else None
    refund_id = balance.refund_id if balance else f"refund-{certificate_id}"
    status, state = await _refund_status(refunds, refund_id)
    entries = [e for e in Ledger(engine).entries() if e.certificate_id == certificate_id]
    return CertificateView(
        certificate,
        refund_id,
        status,
        state,
        balance,
        entries,
        RepairOrders(engine).of(certificate_id),
    )


async def _refund_status(refunds: RefundClient, refund_id: str) -> tuple[str, str | None]:
    try:
        described = await refunds.client.get_workflow_handle(refund_id).describe()
    except RPCError:
        return "none", None
    status = described.status or WorkflowExecutionStatus.RUNNING
    return status.name.lower(), described.typed_search_attributes.get(REFUND_STATE)


@dataclass(frozen=True)
class RepairResult:
    certificate_id: str
    refund_id: str
    action: str
    """``release``: the hold goes; ``complete``: what is still due is paid."""
    still_due: Decimal


async def repair(
    refunds: RefundClient, engine: Engine, certificate_id: str, operator: str, note: str
) -> RepairResult:
    """Record the operator's repair order, then run the refund id again to carry it out.

    The run holds the refund id, so nothing else can act on the certificate meanwhile, and it
    claims the recorded order before it changes anything.
    """
    problem = id_problem(operator, "operator")
    if problem is not None:
        raise UserError(problem)
    person = PeopleDirectory(engine).person(operator)
    if person is None or person.role is not Role.OPERATOR:
        raise UserError(f"{operator} is not an operator in the people directory")
    if not note.strip():
        raise UserError("say what you checked: a repair needs --note")
    view = await certificate_view(refunds, engine, certificate_id)
    balance = view.balance
    if balance is None or not balance.unsettled:
        raise UserError(f"{certificate_id} needs no repair: it is {view.certificate.status}")
    if balance.running:
        raise UserError(
            f"{balance.refund_id} is still running and looks after {certificate_id}: "
            f"see `refunds status {balance.refund_id}`"
        )
    if balance.running is None:
        raise UserError(f"{certificate_id} is changing right now; run the repair again")
    refund_id = balance.refund_id
    foreign = [other for other in balance.refund_ids if other != refund_id]
    if foreign:
        raise UserError(
            f"{', '.join(foreign)} returned money on {certificate_id}, which {refund_id} holds: "
            "settle it by hand"
        )
    action = RELEASED if not balance.released and balance.returned == 0 else COMPLETION
    request = await _original_request(refunds, refund_id) or RefundRequest(
        certificate_id=certificate_id,
        requester=view.certificate.owner,
        reason=RefundReason.NO_LONGER_NEEDED,
    )
    order = RepairOrder(action=action, operator=operator, note=note)
    orders = RepairOrders(engine)
    recorded = orders.record(certificate_id, refund_id, action, operator, note)
    try:
        await refunds.client.start_workflow(
            RefundWorkflow.run,
            request.model_copy(update={"repair": order, "carried": None}),
            id=refund_id,
            task_queue=refunds.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"Repair ({action}) of refund {refund_id} by {operator}",
        )
    except WorkflowAlreadyStartedError:
        orders.abandon(recorded)
        raise UserError(f"{refund_id} started again meanwhile: see `refunds status`") from None
    still_due = max(balance.due - balance.returned, Decimal("0.00"))
    return RepairResult(certificate_id, refund_id, action, still_due)


async def _original_request(refunds: RefundClient, refund_id: str) -> RefundRequest | None:
    """The request the refund's last run started with, from its history (kept until retention)."""
    handle = refunds.client.get_workflow_handle(refund_id)
    try:
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await refunds.client.data_converter.decode(payloads, [RefundRequest])
            return decoded[0] if isinstance(decoded[0], RefundRequest) else None
    except (RPCError, ValueError, IndexError):
        return None
    return None
