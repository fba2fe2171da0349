"""Actions on a refund whose workflow task Temporal is retrying.

While a refund's last workflow task has failed or timed out (a worker killed mid-task, a worker
too loaded to answer within its timeout) and the server is retrying it, Temporal refuses every
update with ``WorkflowNotReady``: nothing was admitted, so sending it again is safe. The retry is
usually done within seconds, so an action is sent again for a while before the refusal reaches
the person as one line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")

NOT_READY_DETAIL = "temporal.api.errordetails.v1.WorkflowNotReadyFailure"
PAUSES = (0.5, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 3.0)
"""Seconds between sends: about a quarter of a minute in all, well inside a signature's life."""


def is_not_ready(err: RPCError) -> bool:
    """Whether Temporal refused because the refund's workflow task is being retried."""
    if err.status is not RPCStatusCode.FAILED_PRECONDITION:
        return False
    return any(d.type_url.endswith(NOT_READY_DETAIL) for d in err.grpc_status.details)


def not_ready_message(refund_id: str) -> str:
    return (
        f"refund {refund_id} cannot take actions right now: Temporal is retrying its last "
        "workflow task (the Web UI shows why); nothing was done, try again in a minute"
    )


async def when_ready(
    send: Callable[[], Awaitable[T]],
    pauses: Sequence[float] = PAUSES,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """``send()``'s result, sent again after each pause while the refund is not ready; any other
    error, or the last refusal, is raised as it came."""
    for pause in pauses:
        try:
            return await send()
        except RPCError as err:
            if not is_not_ready(err):
                raise
        if on_retry is not None:
            on_retry()
        await asyncio.sleep(pause)
    return await send()
