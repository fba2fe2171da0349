"""The Temporal Schedule that reconciles the books every day (``refunds up`` and the compose
deployment create it; an operator may pause or edit it in the Web UI's Schedules page)."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from settings import Settings
from workflows.reconciliation import ReconciliationWorkflow

RECONCILIATION_SCHEDULE = "refunds-reconciliation"
DAILY_AT_THREE = "0 3 * * *"


def reconciliation_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ReconciliationWorkflow.run,
            id=RECONCILIATION_SCHEDULE,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[DAILY_AT_THREE], time_zone_name=settings.timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note="daily reconciliation: orphaned holds, divergent certificates"),
    )


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> bool:
    """Create the schedule unless it exists (an operator's edits stay); True if created."""
    try:
        await client.create_schedule(RECONCILIATION_SCHEDULE, reconciliation_schedule(settings))
    except ScheduleAlreadyRunningError:
        return False
    return True
