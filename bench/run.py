"""``make bench``: throughput, latency, parked reviews and server cost, against a baseline.

Everything runs on one bundled dev server (SQLite file) in one run, so the ratios against the
baseline are the claim; absolute figures depend on the machine. Workers run in their own
processes, the driver in this one. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.measure import (
    CONCURRENCY,
    SETTLE_SECONDS,
    Bench,
    Drains,
    Retries,
    WorkerProcess,
    _approver,
    _batches,
    _connect,
    baseline_start,
    bounded,
    certificates,
    count,
    growth,
    latencies,
    percentile,
    refund_start,
    server_cost,
)
from workflows.contract import ApproveInput, RefundState
from workflows.search_attributes import REFUND_STATE

console = Console(stderr=True, highlight=False)
REVIEWER = "bench-reviewer"


async def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    drain_certs = certificates("drain", 2 * args.rounds * args.refunds, 1)
    latency_certs = certificates("lat", args.samples, 1)
    parked_certs = certificates("park", args.parked, 10)
    base_drain_certs = certificates("base-drain", len(drain_certs), 1)
    base_latency_certs = certificates("base-lat", args.samples, 1)
    world = Bench.start(
        workdir,
        drain_certs + latency_certs + parked_certs + base_drain_certs + base_latency_certs,
        REVIEWER,
    )
    server, key_dir = world.server, world.key_dir
    client = await _connect(server.address)
    log = workdir / "workers.log"
    tuning = args.worker_args.split()

    def env(queue: str) -> dict[str, str]:
        return world.worker_env(queue, REVIEWER)

    results: dict[str, Any] = {}
    try:
        base_worker = WorkerProcess.start("baseline", env("baseline"), log, tuning)
        ours_worker = WorkerProcess.start("refund", env("refunds"), log, tuning)
        assert server.process is not None
        server_pid = server.process.pid
        drains_per_side = 2 * args.rounds
        base_starts = [baseline_start(client, c, "baseline") for c in base_drain_certs]
        ours_starts = [refund_start(client, c, "refunds", key_dir) for c in drain_certs]
        base, ours = Drains(), Drains()
        sides = {
            "baseline": (base, base_worker, _batches(base_starts, args.refunds)),
            "refund": (ours, ours_worker, _batches(ours_starts, args.refunds)),
        }
        # ABBA, then BAAB: the server slows as its database grows, so each side gets as many
        # early turns as late ones, and each round gives one side a back-to-back pair.
        order = [
            label
            for round_ in range(args.rounds)
            for label in (
                ("baseline", "refund", "refund", "baseline")
                if round_ % 2 == 0
                else ("refund", "baseline", "baseline", "refund")
            )
        ]
        for turn, label in enumerate(order, start=1):
            drains, worker, batches = sides[label]
            if turn > 1 and args.settle:
                # The previous drain's timeout timers fire up to 30 s after its last task; let
                # the server process them before the next side's clock starts.
                await asyncio.sleep(args.settle)
            console.print(f"{label} drain of {args.refunds} ({turn}/{len(order)}) ...", end=" ")
            console.print(await drains.measure(next(batches), worker.process.pid, server_pid))
        console.print(f"latency, {args.samples} each ...")
        ours_lat, base_lat = await latencies(
            [
                (
                    refund_start(client, c, "refunds", key_dir),
                    baseline_start(client, b, "baseline"),
                )
                for c, b in zip(latency_certs, base_latency_certs, strict=True)
            ]
        )
        base_worker.stop()
        refunded = await count(
            client, f"{REFUND_STATE.name} = 'refunded' AND ExecutionStatus = 'Completed'"
        )
        assert refunded == ours.count + args.samples, f"only {refunded} refunded"
        events, transitions = await server_cost(ours.handles)
        base_events, base_transitions = await server_cost(base.handles)

        ours_worker.stop()
        console.print(f"parking {args.parked} reviews on a fresh worker ...")
        ours_worker = WorkerProcess.start("refund", env("parked"), log, tuning)
        idle_rss = ours_worker.rss_mib()
        began = time.perf_counter()
        await bounded(
            [refund_start(client, c, "parked", key_dir) for c in parked_certs], CONCURRENCY
        )
        waiting = f"{REFUND_STATE.name} = '{RefundState.VALIDATING_APPLICATION.value}'"
        while await count(client, waiting) < args.parked:
            await asyncio.sleep(2)
        park_seconds = time.perf_counter() - began
        await asyncio.sleep(2)
        parked_rss = ours_worker.rss_mib()
        console.print(f"approving {args.parked} ...")
        began = time.perf_counter()
        handles = [client.get_workflow_handle(f"refund-{c.certificate_id}") for c in parked_certs]
        approve = ApproveInput(reviewer=REVIEWER)
        retries = Retries()
        await bounded([_approver(h, approve, key_dir, retries) for h in handles], CONCURRENCY)
        await bounded([h.result for h in handles], 4 * CONCURRENCY)
        approve_seconds = time.perf_counter() - began
        ours_worker.stop()

        ours_median, base_median = statistics.median(ours.rates), statistics.median(base.rates)
        results = {
            "refunds": args.refunds,
            "drains_per_side": drains_per_side,
            "refunds_per_s": round(ours.count / ours.seconds, 1),
            "baseline_per_s": round(base.count / base.seconds, 1),
            "throughput_ratio": round(base.seconds / ours.seconds, 3),
            "refund_drains_per_s": [round(rate, 1) for rate in ours.rates],
            "baseline_drains_per_s": [round(rate, 1) for rate in base.rates],
            "refund_median_drain_per_s": round(ours_median, 1),
            "baseline_median_drain_per_s": round(base_median, 1),
            "median_drain_ratio": round(ours_median / base_median, 3),
            "p50_ms": round(percentile(ours_lat, 0.5), 1),
            "p99_ms": round(percentile(ours_lat, 0.99), 1),
            "baseline_p50_ms": round(percentile(base_lat, 0.5), 1),
            "baseline_p99_ms": round(percentile(base_lat, 0.99), 1),
            "latency_ratio": round(percentile(ours_lat, 0.5) / percentile(base_lat, 0.5), 3),
            "parked": args.parked,
            "worker_rss_idle_mib": round(idle_rss, 1),
            "worker_rss_mib": round(parked_rss, 1),
            "approvals_per_s": round(args.parked / approve_seconds, 1),
            "approvals_sent_again": retries.count,
            "parked_per_s": round(args.parked / park_seconds, 1),
            "worker_cpu_ms_per_refund": round(1000 * ours.worker_cpu / ours.count, 2),
            "baseline_worker_cpu_ms": round(1000 * base.worker_cpu / base.count, 2),
            "refund_drains_worker_cpu_ms": ours.worker_cpu_ms,
            "baseline_drains_worker_cpu_ms": base.worker_cpu_ms,
            "worker_cpu_growth": growth(ours.worker_cpu_ms),
            "baseline_worker_cpu_growth": growth(base.worker_cpu_ms),
            "refund_drains_server_cpu_ms": ours.server_cpu_ms,
            "server_cpu_ms_per_refund": round(1000 * ours.server_cpu / ours.count, 2),
            "baseline_server_cpu_ms": round(1000 * base.server_cpu / base.count, 2),
            "events_per_refund": round(events, 1),
            "baseline_events": round(base_events, 1),
            "state_transitions_per_refund": round(transitions, 1),
            "baseline_state_transitions": round(base_transitions, 1),
            "latency_samples": args.samples,
            "worker_args": args.worker_args,
        }
    finally:
        world.stop()
    return results


def show(results: dict[str, Any]) -> None:
    table = Table(title="refund engine against its baseline", title_justify="left")
    for column in ("measure", "refunds", "baseline", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row(
        f"{results['drains_per_side']} drains of {results['refunds']} auto refunds each (/s)",
        str(results["refunds_per_s"]),
        str(results["baseline_per_s"]),
        str(results["throughput_ratio"]),
    )
    table.add_row(
        "median drain (/s)",
        str(results["refund_median_drain_per_s"]),
        str(results["baseline_median_drain_per_s"]),
        str(results["median_drain_ratio"]),
    )
    table.add_row(
        "latency p50 (ms)",
        str(results["p50_ms"]),
        str(results["baseline_p50_ms"]),
        str(results["latency_ratio"]),
    )
    table.add_row("latency p99 (ms)", str(results["p99_ms"]), str(results["baseline_p99_ms"]), "")
    table.add_row(
        "worker CPU per workflow (ms)",
        str(results["worker_cpu_ms_per_refund"]),
        str(results["baseline_worker_cpu_ms"]),
        "",
    )
    table.add_row(
        "server CPU per workflow (ms)",
        str(results["server_cpu_ms_per_refund"]),
        str(results["baseline_server_cpu_ms"]),
        "",
    )
    table.add_row(
        "history events per workflow",
        str(results["events_per_refund"]),
        str(results["baseline_events"]),
        "",
    )
    table.add_row(
        "state transitions per workflow",
        str(results["state_transitions_per_refund"]),
        str(results["baseline_state_transitions"]),
        "",
    )
    table.add_row(
        f"worker RSS with {results['parked']} parked reviews (MiB)",
        f"{results['worker_rss_mib']} (idle {results['worker_rss_idle_mib']})",
        "",
        "",
    )
    table.add_row("reviews parked (/s)", str(results["parked_per_s"]), "", "")
    table.add_row("approvals of parked reviews (/s)", str(results["approvals_per_s"]), "", "")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refunds", type=int, default=1000)
    parser.add_argument("--parked", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE_SECONDS,
        help="seconds between drains, for the previous drain's timers to fire",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds of four drains (two per side), ABBA then BAAB",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--worker-args", default="", help="tuning flags for bench.worker")
    args = parser.parse_args()
    if min(args.refunds, args.parked, args.samples, args.rounds) < 1:
        parser.error("--refunds, --parked, --samples and --rounds must be at least 1")
    if args.quick:
        args.refunds, args.parked, args.samples, args.settle, args.rounds = 40, 60, 10, 0, 1
    with tempfile.TemporaryDirectory(prefix="refunds-bench-") as scratch:
        results = asyncio.run(bench(args, Path(scratch)))
    show(results)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
