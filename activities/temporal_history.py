"""Reading Temporal's record of refunds: who asked to cancel one, and whether one still runs.

The workflow learns that a cancellation was requested, with its reason, but not who sent it; the
history's ``WorkflowExecutionCancelRequested`` event holds the sender's identity (the Web UI's, the
``temporal`` CLI's user and host), which the audit trail records.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.payloads import CancellationLookup, CancellationRequest

PAGE_SIZE = 50
MAX_PAGES = 4


class HistoryActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name="find_cancellation_request")
    async def find_cancellation_request(self, lookup: CancellationLookup) -> CancellationRequest:
        """The most recent cancellation request of one run, read from the end of its history."""
        token = b""
        for _ in range(MAX_PAGES):
            page = await self.client.workflow_service.get_workflow_execution_history_reverse(
                GetWorkflowExecutionHistoryReverseRequest(
                    namespace=self.client.namespace,
                    execution=WorkflowExecution(
                        workflow_id=lookup.workflow_id, run_id=lookup.run_id
                    ),
                    maximum_page_size=PAGE_SIZE,
                    next_page_token=token,
                )
            )
            for event in page.history.events:
                if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                    found = event.workflow_execution_cancel_requested_event_attributes
                    return CancellationRequest(identity=found.identity, reason=found.cause)
            token = page.next_page_token
            if not token:
                break
        return CancellationRequest()


async def refund_is_running(client: Client, refund_id: str) -> bool:
    """Whether the refund's latest run is still running (a refund that never ran is not)."""
    try:
        described = await client.get_workflow_handle(refund_id).describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status is WorkflowExecutionStatus.RUNNING
