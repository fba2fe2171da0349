"""``make bench-scale``: ten thousand refunds waiting for review on one worker.

Parks ``--parked`` refunds in review (the worker's RSS read at each checkpoint), reads the review
queue from visibility (the first page of 50, then every page), restarts the worker and times until
every parked refund answers a query again, then approves them all. The last line printed is one
JSON object. Absolute figures depend on the machine; BENCHMARKS.md says which.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bench.measure import (
    CONCURRENCY,
    Bench,
    Retries,
    WorkerProcess,
    _approver,
    _connect,
    bounded,
    certificates,
    count,
    refund_start,
)
from domain.certificates import Certificate
from settings import Settings
from starter.review_pages import IN_REVIEW, MAX_PAGE_SIZE, PAGE_SIZE, Cursor, first_cursor
from starter.review_pages import review_page as read_page
from workflows.contract import ApproveInput, RefundStatus
from workflows.refund import RefundWorkflow

console = Console(stderr=True, highlight=False)
REVIEWER = "bench-reviewer"
QUEUE = "scale"
READS = 5
"""Queue reads per figure; the median is reported."""
QUERIES = 16
QUERY_TIMEOUT = timedelta(seconds=30)


async def park(
    client: Client, certs: list[Certificate], worker: WorkerProcess, key_dir: Path
) -> tuple[float, dict[int, float]]:
    """Start every refund, a checkpoint at a time; seconds in all and the RSS at each."""
    checkpoints = sorted({n for n in (2000, 5000, len(certs)) if n <= len(certs)})
    rss: dict[int, float] = {}
    began, done = time.perf_counter(), 0
    for checkpoint in checkpoints:
        batch = certs[done:checkpoint]
        await bounded([refund_start(client, c, QUEUE, key_dir) for c in batch], CONCURRENCY)
        while await count(client, IN_REVIEW) < checkpoint:
            await asyncio.sleep(1)
        done = checkpoint
        await asyncio.sleep(2)
        rss[checkpoint] = round(worker.rss_mib(), 1)
        console.print(f"  {checkpoint} parked, worker RSS {rss[checkpoint]} MiB")
    return time.perf_counter() - began - 2 * len(checkpoints), rss


async def queue_reads(client: Client) -> tuple[float, float, int]:
    """Median milliseconds for the first page of 50 and for every page; rows in all."""
    zone = Settings().zone
    first, every, rows = [], [], 0
    for _ in range(READS):
        began = time.perf_counter()
        page = await read_page(client, first_cursor(datetime.now(UTC), zone), limit=PAGE_SIZE)
        first.append(1000 * (time.perf_counter() - began))
        assert len(page.reviews) == PAGE_SIZE
        began, rows = time.perf_counter(), 0
        cursor: Cursor | None = first_cursor(datetime.now(UTC), zone)
        while cursor is not None:
            page = await read_page(client, cursor, limit=MAX_PAGE_SIZE)
            rows += len(page.reviews)
            cursor = Cursor.decode(page.after) if page.after else None
        every.append(1000 * (time.perf_counter() - began))
    return statistics.median(first), statistics.median(every), rows


async def answering(client: Client, ids: list[str]) -> tuple[float, int]:
    """Seconds until every refund answers its status query (each replays on a cold worker), and
    how many queries timed out on the way and were asked again."""
    began, retried = time.perf_counter(), 0

    async def ask(refund_id: str) -> None:
        nonlocal retried
        handle: WorkflowHandle[RefundWorkflow, RefundStatus] = client.get_workflow_handle_for(
            RefundWorkflow.run, refund_id
        )
        for _ in range(20):
            try:
                await handle.query(RefundWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
                return
            except RPCError:
                retried += 1
        raise RuntimeError(f"{refund_id} did not answer in 20 tries")

    await bounded([partial(ask, i) for i in ids], QUERIES)
    return time.perf_counter() - began, retried


async def scale(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    certs = certificates("park", args.parked, 10)
    world = Bench.start(workdir, certs, REVIEWER)
    server, key_dir = world.server, world.key_dir
    log = workdir / "workers.log"
    try:
        client = await _connect(server.address)
        env = world.worker_env(QUEUE, REVIEWER)
        worker = WorkerProcess.start("refund", env, log, args.worker_args.split())
        idle = round(worker.rss_mib(), 1)
        console.print(f"parking {args.parked} reviews ...")
        park_seconds, rss = await park(client, certs, worker, key_dir)
        console.print("reading the review queue ...")
        first_ms, all_ms, rows = await queue_reads(client)
        console.print(f"  first page {first_ms:.1f} ms, every page {all_ms:.1f} ms ({rows} rows)")
        assert rows == args.parked, f"the queue listed {rows} of {args.parked}"
        worker.stop()
        console.print("restarting the worker ...")
        worker = WorkerProcess.start("refund", env, log, args.worker_args.split())
        ids = [f"refund-{c.certificate_id}" for c in certs]
        resume_seconds, retried = await answering(client, ids)
        console.print(f"  every refund answered after {resume_seconds:.1f} s ({retried} retried)")
        resumed_rss = round(worker.rss_mib(), 1)
        console.print(f"approving {args.parked} ...")
        began = time.perf_counter()
        handles = [client.get_workflow_handle(i) for i in ids]
        approve = ApproveInput(reviewer=REVIEWER)
        retries = Retries()
        await bounded([_approver(h, approve, key_dir, retries) for h in handles], CONCURRENCY)
        await bounded([h.result for h in handles], 4 * CONCURRENCY)
        approve_seconds = time.perf_counter() - began
        console.print(
            f"  {args.parked / approve_seconds:.1f} approvals/s ({retries.count} sent again)"
        )
        worker.stop()
    finally:
        world.stop()
    return {
        "parked": args.parked,
        "parked_per_s": round(args.parked / park_seconds, 1),
        "approvals_per_s": round(args.parked / approve_seconds, 1),
        "approvals_sent_again": retries.count,
        "worker_rss_idle_mib": idle,
        "worker_rss_mib": {str(n): v for n, v in rss.items()},
        "pending_first_page_ms": round(first_ms, 1),
        "pending_all_ms": round(all_ms, 1),
        "resume_all_answering_s": round(resume_seconds, 1),
        "resume_queries_retried": retried,
        "worker_rss_after_resume_mib": resumed_rss,
        "worker_args": args.worker_args,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parked", type=int, default=10_000)
    parser.add_argument("--worker-args", default="", help="tuning flags for bench.worker")
    args = parser.parse_args()
    if args.parked < PAGE_SIZE:
        parser.error(f"--parked must be at least {PAGE_SIZE}")
    with tempfile.TemporaryDirectory(prefix="refunds-scale-") as scratch:
        results = asyncio.run(scale(args, Path(scratch)))
    for key, value in results.items():
        console.print(f"{key}: {value}")
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
