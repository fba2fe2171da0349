"""The baseline: a workflow making the same kind and number of activity calls as an auto refund,
with no business logic, rules, database, search attributes or audit trail."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

TIMEOUT = timedelta(seconds=30)


class BaselineInput(BaseModel):
    refund_id: str
    legs: int


@activity.defn(name="baseline_step")
def baseline_step(name: str) -> str:
    return name


@workflow.defn
class BaselineWorkflow:
    """load and assess (local), cancel order, each leg in parallel, mark refunded, notify."""

    @workflow.run
    async def run(self, request: BaselineInput) -> str:
        await workflow.execute_local_activity(baseline_step, "load", start_to_close_timeout=TIMEOUT)
        await workflow.execute_local_activity(
            baseline_step, "assess", start_to_close_timeout=TIMEOUT
        )
        await workflow.execute_activity(baseline_step, "cancel", start_to_close_timeout=TIMEOUT)
        await asyncio.gather(
            *(
                workflow.execute_activity(baseline_step, f"leg-{i}", start_to_close_timeout=TIMEOUT)
                for i in range(request.legs)
            )
        )
        await workflow.execute_activity(baseline_step, "refunded", start_to_close_timeout=TIMEOUT)
        await workflow.execute_activity(baseline_step, "notify", start_to_close_timeout=TIMEOUT)
        return "refunded"
