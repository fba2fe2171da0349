"""The worker: ``RefundWorkflow`` and its activities on the refunds task queue."""

from __future__ import annotations

import asyncio
import compileall
import ctypes
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.assessment import AssessmentActivities
from activities.faults import Faults, FaultyAuthority, FaultyGateway
from activities.gateways import CertificateAuthority, PaymentGateway
from activities.reconciliation import ReconciliationActivities
from activities.refund_activities import RefundActivities
from activities.sandbox import (
    SandboxCertificateAuthority,
    SandboxNotifier,
    SandboxPaymentGateway,
    SandboxSupportDesk,
)
from activities.temporal_history import HistoryActivities
from domain.certificates import Channel
from settings import Settings, WorkflowSandbox, get_settings
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.ledger import Ledger
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow

PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "structlog",
    "holidays",
    "sqlalchemy",
    "domain",
    "workflows.contract",
    "activities.payloads",
    "workflows.metrics",
    "workflows.models",
    "workflows.search_attributes",
)
"""Pure or worker-side modules the sandbox imports once instead of once per workflow run."""

WORKFLOW_MODULES = (
    "workflows.refund",
    "workflows.payout",
    "workflows.progress",
    "workflows.audit",
    "workflows.review_checks",
    "workflows.review_desk",
    "workflows.steps",
    "workflows.reconciliation",
)
"""The workflow code itself: reloaded for every run only in the strict sandbox (see
``workflow_runner``)."""

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter behind the ``MALLOC_ARENA_MAX`` variable."""

PAYABLE_CHANNELS = (Channel.ALIPAY, Channel.BANK, Channel.ACCOUNT_BALANCE)


@dataclass(frozen=True)
class WorkerTuning:
    """Worker knobs; the defaults are what ``make bench`` measured best (see BENCHMARKS.md)."""

    max_concurrent_activities: int = 48
    max_cached_workflows: int = 500
    workflow_pollers: int = 5
    activity_pollers: int = 5
    sandbox: WorkflowSandbox = "off"
    passthrough: bool = True
    precompile: bool = True

    @property
    def writes_bytecode(self) -> bool:
        """Whether to precompile: only the strict sandbox re-imports workflow code every run."""
        return self.precompile and self.sandbox == "strict"


def precompile_workflow_code() -> None:
    """Write bytecode for the workflow package, even under PYTHONDONTWRITEBYTECODE.

    The strict sandbox (the test suite's) imports the workflow module afresh for every workflow
    run; without a ``.pyc`` that means compiling it from source each time (a measured 30% of
    worker CPU per refund, BENCHMARKS.md). Imports read ``.pyc`` files whatever that variable
    says.
    """
    package = Path(workflows.__file__).parent
    compileall.compile_dir(package, quiet=2, maxlevels=0)


def workflow_runner(
    sandbox: WorkflowSandbox,
    *,
    passthrough: bool = True,
    workflow_modules: tuple[str, ...] = WORKFLOW_MODULES,
) -> WorkflowRunner:
    """What runs workflow code: the SDK's sandbox, strict or importing once, or no sandbox.

    ``strict`` is the SDK's default: the workflow module is reloaded for every run, so the
    sandbox's restrictions (no ``datetime.now``, randomness or I/O) apply to the workflow code
    itself. The test suite and the replay tests run strict, on every path. Production workers
    run that checked code without the sandbox (``off``): the sandbox's lookups around every
    payload and activation were a quarter of a worker's CPU per refund (BENCHMARKS.md).
    ``imports-once`` keeps the sandbox's runtime checks and imports the workflow module once.
    """
    if sandbox == "off":
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default
    if passthrough:
        modules: tuple[str, ...] = PASSTHROUGH_MODULES
        if sandbox == "imports-once":
            modules += workflow_modules
        restrictions = restrictions.with_passthrough_modules(*modules)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas, as ``MALLOC_ARENA_MAX`` would, unless that variable is set.

    glibc gives threads that allocate at the same time arenas of their own, up to eight per core,
    and memory freed in one arena is not reused by another: with the SDK's threads and the
    activity pool, that fragmentation was over a quarter of the memory per cached workflow
    (BENCHMARKS.md). Call it before the worker's threads start. A no-op off glibc.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_ARENA_MAX, arenas)


def freeze_startup_heap() -> None:
    """Keep what start-up created (modules, classes, the worker itself) out of later collections.

    The collector's full passes walk every tracked object; most of them live as long as the
    process, and a full pass stopped a busy worker for about 80 ms. Frozen, they are skipped:
    garbage collection fell from 1.07 to 0.63-0.74 ms per auto refund in a drain (BENCHMARKS.md).
    Call it once the worker is built, just before it runs.
    """
    gc.collect()
    gc.freeze()


def worker_options(
    tuning: WorkerTuning, workflow_modules: tuple[str, ...] = WORKFLOW_MODULES
) -> dict[str, Any]:
    """The ``Worker`` arguments a tuning stands for (shared with the benchmark's baseline)."""
    return {
        "activity_executor": ThreadPoolExecutor(max_workers=tuning.max_concurrent_activities),
        "max_concurrent_activities": tuning.max_concurrent_activities,
        "max_cached_workflows": tuning.max_cached_workflows,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(tuning.workflow_pollers),
        "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(tuning.activity_pollers),
        "workflow_runner": workflow_runner(
            tuning.sandbox, passthrough=tuning.passthrough, workflow_modules=workflow_modules
        ),
    }


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
    tuning: WorkerTuning | None = None,
) -> Worker:
    """A ready ``Worker``; ``client`` must use the pydantic data converter."""
    settings = settings or get_settings()
    if tuning is None:
        tuning = WorkerTuning(
            max_cached_workflows=settings.max_cached_workflows,
            sandbox=settings.workflow_sandbox,
        )
    if tuning.writes_bytecode:
        precompile_workflow_code()
    refund_activities = activities or sandbox_activities(settings)
    assessment = AssessmentActivities(settings)
    history = HistoryActivities(client)
    books = ReconciliationActivities(refund_activities.store.engine, client)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[RefundWorkflow, ReconciliationWorkflow],
        activities=[
            assessment.assess,
            assessment.recheck,
            history.find_cancellation_request,
            books.check_books,
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
            refund_activities.claim_repair_order,
            refund_activities.open_support_ticket,
            refund_activities.notify_customer,
        ],
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
        **worker_options(tuning),
    )


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    """Run a worker until ``stop`` is set, then let running tasks finish."""
    worker = build_worker(client, settings=settings)
    freeze_startup_heap()
    async with worker:
        await stop.wait()
