"""ReconciliationWorkflow: the daily check of the books, run by a Temporal Schedule.

Termination cannot be caught inside a refund, so this catches what it leaves behind: certificates
held or half paid with no refund running, money returned on a certificate that is not refunded,
money paid twice or missing. The activity logs any of them as errors and exports the counts as
metrics; the workflow returns them, so each scheduled run shows its result in the Web UI.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.payloads import BooksSummary
    from activities.reconciliation import ReconciliationActivities


@workflow.defn
class ReconciliationWorkflow:
    @workflow.run
    async def run(self) -> BooksSummary:
        return await workflow.execute_activity_method(
            ReconciliationActivities.check_books,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=2)),
            summary="reconcile the ledger with certificates and running refunds",
        )
