"""Nothing a client sends can make a refund too big to query, complete or keep running: ids and
texts are bounded, refusals past the first 50 are counted, and a long history continues as new.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus

from tests.factories import certificate
from workflows.audit import MAX_REFUSALS
from workflows.contract import ApproveInput, RefundState, RefundStatus, RejectInput
from workflows.refund import RefundWorkflow

STATUS_LIMIT = 256 * 1024
MEGABYTE_ID = "r" * 1_000_000
FLOOD = 10_000


def in_review(cert_id: str):
    return certificate(cert_id, purchased_at=datetime.now(UTC) - timedelta(days=10))


def size(status: RefundStatus) -> int:
    return len(status.model_dump_json().encode())


async def test_ids_are_at_most_64_safe_characters_and_refused_otherwise(harness):
    handle = await harness.submit(in_review("bh-ids"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    await handle.signal("approve", ApproveInput(reviewer="r" * 65))
    await handle.signal("reject", RejectInput(reviewer="rev-1<script>", reason="x"))
    await handle.signal("reject", RejectInput(reviewer="rev-1", reason="y" * 2001))
    status = await harness.wait_for(handle, lambda s: sum(not e.accepted for e in s.audit) == 3)
    refused = [(e.actor, e.detail) for e in status.audit if not e.accepted]
    assert refused == [
        ("r" * 64 + "…", "the reviewer id is longer than 64 characters"),
        ("rev-1?script?", "the reviewer id may hold only letters, digits, '.', '_', ':' and '-'"),
        ("rev-1", "the text is longer than 2000 characters"),
    ]
    assert status.state is RefundState.VALIDATING_APPLICATION


async def test_a_flood_of_huge_and_refused_signals_never_wedges_a_refund(harness):
    """3 signals with a 1 MB reviewer id and 10,000 refused ones, in two waves (a run takes at most
    10,000 signals, so the refund must continue as new in between), then a genuine approval."""
    handle = await harness.submit(in_review("bh-flood"))
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    first_run = (await handle.describe()).run_id
    sizes: list[int] = []
    in_flight = asyncio.Semaphore(64)

    async def refused(n: int) -> None:
        async with in_flight:
            await handle.signal("approve", ApproveInput(reviewer=f"stranger-{n}"))

    async def watch() -> None:
        while True:
            sizes.append(size(await harness.status(handle)))
            await asyncio.sleep(0.5)

    def counted(status: RefundStatus) -> int:
        return status.refused_not_recorded + sum(not e.accepted for e in status.audit)

    started = time.monotonic()
    watcher = asyncio.ensure_future(watch())
    try:
        for _ in range(3):
            await handle.signal("approve", ApproveInput(reviewer=MEGABYTE_ID))
        await asyncio.gather(*(refused(n) for n in range(FLOOD // 2)))
        await harness.wait_for(handle, lambda s: counted(s) == FLOOD // 2 + 3, timeout=120)
        first = harness.client.get_workflow_handle(handle.id, run_id=first_run)
        for _ in range(600):
            if (await first.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the refund did not continue as new")
        await asyncio.gather(*(refused(n) for n in range(FLOOD // 2, FLOOD)))
        status = await harness.wait_for(handle, lambda s: counted(s) == FLOOD + 3, timeout=120)
    finally:
        watcher.cancel()
    print(f"{FLOOD + 3} refused signals in {time.monotonic() - started:.1f} s")
    assert status.state is RefundState.VALIDATING_APPLICATION
    assert sum(not e.accepted for e in status.audit) == MAX_REFUSALS
    assert status.refused_not_recorded == FLOOD + 3 - MAX_REFUSALS
    too_long = [e for e in status.audit if e.detail.endswith("longer than 64 characters")]
    assert [e.actor for e in too_long] == ["r" * 64 + "…"] * 3
    assert len(sizes) > 2 and max(sizes) < STATUS_LIMIT
    await handle.signal("approve", ApproveInput(reviewer="rev-1", note="genuine"))
    done = await harness.result(handle, timeout=60)
    assert done.state is RefundState.REFUNDED
    assert done.decided_by == "rev-1"
    assert size(done) < STATUS_LIMIT
    assert done.audit[0].action == "submitted"  # the head of the trail survives every new run
    assert len(harness.ledger.entries()) == 1


async def test_a_continued_refund_keeps_its_deadline_and_state(harness):
    async with harness.worker_with(history_event_limit=100):
        handle = await harness.submit(in_review("bh-continued"))
        waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        latest = harness.client.get_workflow_handle(handle.id)
        first = harness.client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        for n in range(1000):
            if (await first.describe()).status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                break
            await latest.signal("reject", RejectInput(reviewer=f"nobody-{n}", reason="no"))
        else:
            raise AssertionError("the refund did not continue as new")
        status = await harness.status(handle)
        assert status.state is RefundState.VALIDATING_APPLICATION
        assert status.review_deadline == waiting.review_deadline
        assert status.submitted_at == waiting.submitted_at
        assert (await latest.describe()).status is WorkflowExecutionStatus.RUNNING
        await latest.execute_update(
            RefundWorkflow.reject_request, RejectInput(reviewer="rev-2", reason="in use")
        )
        done = await harness.result(handle)
    assert done.state is RefundState.REJECTED
    assert harness.store.get("bh-continued").status == "paid"
