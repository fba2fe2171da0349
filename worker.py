"""The worker: ``RefundWorkflow`` and its activities on the refunds task queue."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.assessment import AssessmentActivities
from activities.faults import Faults, FaultyAuthority, FaultyGateway
from activities.gateways import CertificateAuthority, PaymentGateway
from activities.refund_activities import RefundActivities
from activities.sandbox import (
    SandboxCertificateAuthority,
    SandboxNotifier,
    SandboxPaymentGateway,
    SandboxSupportDesk,
)
from settings import Settings, get_settings
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.ledger import Ledger
from workflows.models import Channel
from workflows.refund import RefundWorkflow

PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "structlog",
    "holidays",
    "sqlalchemy",
    "workflows.models",
    "workflows.search_attributes",
)
"""Pure or worker-side modules the sandbox imports once instead of once per workflow run."""

MAX_CONCURRENT_ACTIVITIES = 32
PAYABLE_CHANNELS = (Channel.ALIPAY, Channel.BANK, Channel.ACCOUNT_BALANCE)


def sandbox_runner() -> SandboxedWorkflowRunner:
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def sandbox_activities(settings: Settings) -> RefundActivities:
    """Activities wired to the sandbox channels, CA, support desk and notifier (faults if set)."""
    engine = open_database(settings.database_url)
    store = CertificateStore(engine)
    ledger = Ledger(engine)
    faults = Faults(
        transient_rate=settings.fault_transient_rate,
        latency_seconds=settings.fault_latency_ms / 1000,
        rejected=frozenset(settings.fault_reject),
    )
    gateways: dict[Channel, PaymentGateway] = {}
    for channel in PAYABLE_CHANNELS:
        gateway: PaymentGateway = SandboxPaymentGateway(ledger, channel)
        gateways[channel] = FaultyGateway(gateway, channel, faults) if faults.active else gateway
    authority: CertificateAuthority = SandboxCertificateAuthority(engine, store)
    return RefundActivities(
        store=store,
        gateways=gateways,
        authority=FaultyAuthority(authority, faults) if faults.active else authority,
        support=SandboxSupportDesk(engine),
        notifier=SandboxNotifier(engine),
        ledger=ledger,
    )


def build_worker(
    client: Client,
    *,
    settings: Settings | None = None,
    activities: RefundActivities | None = None,
    task_queue: str | None = None,
    max_concurrent_activities: int = MAX_CONCURRENT_ACTIVITIES,
) -> Worker:
    """A ready ``Worker``; ``client`` must use the pydantic data converter."""
    settings = settings or get_settings()
    refund_activities = activities or sandbox_activities(settings)
    assessment = AssessmentActivities(settings)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[RefundWorkflow],
        activities=[
            assessment.assess,
            refund_activities.load_certificate,
            refund_activities.mark_refund_pending,
            refund_activities.restore_certificate,
            refund_activities.mark_refunded,
            refund_activities.cancel_order,
            refund_activities.revoke_certificate,
            refund_activities.return_to_alipay,
            refund_activities.return_to_bank,
            refund_activities.return_to_account_balance,
            refund_activities.record_manual_return,
            refund_activities.open_support_ticket,
            refund_activities.notify_customer,
        ],
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        workflow_runner=sandbox_runner(),
    )


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    """Run a worker until ``stop`` is set, then let running tasks finish."""
    worker = build_worker(client, settings=settings)
    async with worker:
        await stop.wait()
