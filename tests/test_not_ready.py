"""An action on a refund whose workflow task Temporal is retrying: sent again until it is ready,
else one readable line; nothing is admitted twice."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from google.protobuf.any_pb2 import Any as AnyDetail
from temporalio import workflow
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from settings import Settings
from starter.client import RefundClient
from starter.not_ready import NOT_READY_DETAIL, is_not_ready, when_ready

FAILING = threading.Event()
"""Set: the flaky workflow's tasks fail, as a worker's would while it cannot run them."""


@workflow.defn(sandboxed=False)
class FlakyTaskWorkflow:
    def __init__(self) -> None:
        self.finished = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.finished > 0)
        return self.finished

    @workflow.signal
    def poke(self) -> None:
        if FAILING.is_set():
            raise RuntimeError("this worker cannot run the task right now")

    @workflow.update
    def finish(self) -> str:
        self.finished += 1
        return "finished"


def rpc_error(status: RPCStatusCode, detail: str | None) -> RPCError:
    grpc = GrpcStatus(code=status.value, message="refused")
    if detail is not None:
        grpc.details.append(AnyDetail(type_url=f"type.googleapis.com/{detail}"))
    return RPCError("refused", status, grpc.SerializeToString())


NOT_READY = rpc_error(RPCStatusCode.FAILED_PRECONDITION, NOT_READY_DETAIL)


def test_only_the_not_ready_refusal_is_recognised():
    assert is_not_ready(NOT_READY)
    assert not is_not_ready(rpc_error(RPCStatusCode.FAILED_PRECONDITION, None))
    assert not is_not_ready(rpc_error(RPCStatusCode.NOT_FOUND, NOT_READY_DETAIL))
    other = "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure"
    assert not is_not_ready(rpc_error(RPCStatusCode.FAILED_PRECONDITION, other))


async def test_a_send_is_repeated_while_not_ready_and_other_errors_pass_at_once():
    sends: list[int] = []
    retried: list[int] = []

    async def ready_on_third() -> str:
        sends.append(1)
        if len(sends) < 3:
            raise NOT_READY
        return "done"

    assert await when_ready(ready_on_third, (0, 0, 0), lambda: retried.append(1)) == "done"
    assert (len(sends), len(retried)) == (3, 2)

    async def gone() -> str:
        sends.append(1)
        raise rpc_error(RPCStatusCode.NOT_FOUND, None)

    sends.clear()
    with pytest.raises(RPCError) as raised:
        await when_ready(gone, (0, 0))
    assert raised.value.status is RPCStatusCode.NOT_FOUND and len(sends) == 1

    async def never_ready() -> str:
        sends.append(1)
        raise NOT_READY

    sends.clear()
    with pytest.raises(RPCError) as raised:
        await when_ready(never_ready, (0, 0))
    assert is_not_ready(raised.value) and len(sends) == 3


def test_the_last_refusal_is_one_line_that_says_nothing_was_done(temporal_env):
    refunds = RefundClient(temporal_env.client, Settings())
    message = refunds._rpc_message("refund-x", NOT_READY)
    assert "\n" not in message
    assert message.startswith("refund refund-x cannot take actions right now")
    assert "nothing was done" in message


async def test_on_a_real_server_the_update_lands_once_when_the_task_is_run_again(temporal_env):
    client = temporal_env.client
    queue = f"flaky-{uuid.uuid4().hex[:6]}"
    FAILING.set()
    async with Worker(
        client,
        task_queue=queue,
        workflows=[FlakyTaskWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle = await client.start_workflow(FlakyTaskWorkflow.run, id=queue, task_queue=queue)
        await handle.signal(FlakyTaskWorkflow.poke)
        for _ in range(100):
            events = [e.event_type async for e in handle.fetch_history_events()]
            if EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED in events:
                break
            await asyncio.sleep(0.1)
        with pytest.raises(RPCError) as refused:
            await handle.execute_update(FlakyTaskWorkflow.finish)
        assert is_not_ready(refused.value)

        asyncio.get_running_loop().call_later(1.5, FAILING.clear)
        retried: list[int] = []
        sent = await when_ready(
            lambda: handle.execute_update(FlakyTaskWorkflow.finish),
            on_retry=lambda: retried.append(1),
        )
        assert sent == "finished" and retried
        assert await asyncio.wait_for(handle.result(), 20) == 1
