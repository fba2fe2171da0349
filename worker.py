"""The worker: ``RefundWorkflow`` and ``ReconciliationWorkflow`` with their activities on the
refunds task queue. How it runs is ``tuning``; what its activities talk to is ``wiring``."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from settings import Settings, get_settings
from tuning import (
    WorkerTuning,
    freeze_startup_heap,
    precompile_workflow_code,
    worker_options,
)
from wiring import Collaborators, activities, default_collaborators
from workflows.reconciliation import ReconciliationWorkflow
from workflows.refund import RefundWorkflow


def build_worker(
    client: Client,
    *,
    settings: Settings | None = None,
    collaborators: Collaborators | None = None,
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
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[RefundWorkflow, ReconciliationWorkflow],
        activities=activities(collaborators or default_collaborators(settings), settings, client),
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_seconds),
        **worker_options(tuning),
    )


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event) -> None:
    """Run a worker until ``stop`` is set, then let running tasks finish."""
    worker = build_worker(client, settings=settings)
    freeze_startup_heap()
    async with worker:
        await stop.wait()
