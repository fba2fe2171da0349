"""A workflow that reads the wall clock: the sandbox must refuse it at run time."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow


@workflow.defn
class ClockReadingWorkflow:
    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()
