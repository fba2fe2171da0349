"""``make chaos``: N refunds while the worker is SIGKILLed and the server restarted, then reconcile.

The last line printed is one JSON object with the figures; the exit code is non-zero when any
refund was lost, stuck, paid twice or short.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from chaos.processes import ManagedServer, ManagedWorker, connect, free_port
from chaos.report import Outcome, figures_of
from chaos.workload import (
    OPERATOR,
    REVIEWERS,
    Case,
    fault_settings,
    make_cases,
    people,
    settlement_failures,
)
from chaos.world import channel_env, start_simulators
from starter.client import RefundHandle
from starter.devserver import DevServerOptions
from starter.people_keys import enrol
from starter.signing import signed, signed_request
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.people import PeopleDirectory
from workflows.contract import (
    ApproveInput,
    CancelInput,
    OperatorInput,
    RefundRequest,
    RefundState,
    RefundStatus,
    RejectInput,
    ReviewAction,
)
from workflows.refund import RefundWorkflow
from workflows.search_attributes import REFUND_STATE

T = TypeVar("T")
console = Console(stderr=True, highlight=False)
APPROVE, CANCEL = ReviewAction.APPROVE, ReviewAction.CANCEL


@dataclass
class Run:
    cases: dict[str, Case]
    client: Client
    rng: random.Random
    key_dir: Path
    """Everyone's signing keys: actions are signed as ``refunds approve`` signs them."""
    decided: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    rpc_retries: int = 0


async def persist(call: Callable[[], Awaitable[T]], run: Run, attempts: int = 120) -> T:
    """Retry a client call through server restarts (connection refused, unavailable)."""
    for attempt in range(attempts):
        try:
            return await call()
        except RPCError:
            if attempt == attempts - 1:
                raise
            run.rpc_retries += 1
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def submit_all(run: Run, task_queue: str, span: float) -> None:
    """Submit every refund, spread over ``span`` seconds so the chaos meets work in flight."""
    semaphore = asyncio.Semaphore(16)
    interval = span / max(len(run.cases), 1)

    async def submit(refund_id: str, case: Case) -> None:
        cert = case.certificate
        request = RefundRequest(
            certificate_id=cert.certificate_id, requester=cert.owner, reason="no_longer_needed"
        )
        request = signed_request(run.key_dir, refund_id, request)
        async with semaphore:
            # A retried start whose first attempt got through finds its workflow started.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await persist(
                    lambda: run.client.start_workflow(
                        RefundWorkflow.run, request, id=refund_id, task_queue=task_queue
                    ),
                    run,
                )
            run.started.add(refund_id)

    tasks = []
    for refund_id, case in run.cases.items():
        tasks.append(asyncio.ensure_future(submit(refund_id, case)))
        await asyncio.sleep(interval)
    await asyncio.gather(*tasks)


async def decide(run: Run, refund_id: str) -> None:
    """The reviewer's decision; a 'race' sends approve and cancel at the same moment."""
    handle: RefundHandle = run.client.get_workflow_handle_for(RefundWorkflow.run, refund_id)
    plan = run.cases[refund_id].plan
    owner = run.cases[refund_id].certificate.owner
    reviewer = run.rng.choice(REVIEWERS.split(","))

    async def update(send: Callable[[], Awaitable[Any]]) -> None:
        # Refused when the other racer decided first.
        with contextlib.suppress(WorkflowUpdateFailedError):
            await persist(send, run)

    approval = signed(run.key_dir, refund_id, APPROVE, ApproveInput(reviewer=reviewer))
    cancellation = signed(run.key_dir, refund_id, CANCEL, CancelInput(requester=owner))
    if plan == "approve":
        await update(lambda: handle.execute_update(RefundWorkflow.approve_request, approval))
    elif plan == "reject":
        rejection = RejectInput(reviewer=reviewer, reason="chaos says no")
        rejection = signed(run.key_dir, refund_id, ReviewAction.REJECT, rejection)
        await update(lambda: handle.execute_update(RefundWorkflow.reject_request, rejection))
    elif plan == "cancel":
        await update(lambda: handle.execute_update(RefundWorkflow.cancel_request, cancellation))
    else:
        await asyncio.gather(
            persist(lambda: handle.signal(RefundWorkflow.approve, approval), run),
            update(lambda: handle.execute_update(RefundWorkflow.cancel_request, cancellation)),
        )
    run.decided.add(refund_id)


async def resolve(run: Run, refund_id: str) -> None:
    handle: RefundHandle = run.client.get_workflow_handle_for(RefundWorkflow.run, refund_id)
    resolution = OperatorInput(operator=OPERATOR, note="returned by bank transfer")
    resolution = signed(run.key_dir, refund_id, ReviewAction.RESOLVE, resolution)
    with contextlib.suppress(WorkflowUpdateFailedError):
        await persist(
            lambda: handle.execute_update(RefundWorkflow.resolve_manually, resolution), run
        )
    run.resolved.add(refund_id)


async def ids_in_state(run: Run, state: RefundState) -> list[str]:
    query = f"ExecutionStatus = 'Running' AND {REFUND_STATE.name} = '{state.value}'"
    return await persist(lambda: _ids(run.client, query), run)


async def _ids(client: Client, query: str) -> list[str]:
    return [execution.id async for execution in client.list_workflows(query)]


async def running_count(run: Run) -> int:
    query = "WorkflowType = 'RefundWorkflow' AND ExecutionStatus = 'Running'"
    return len(await persist(lambda: _ids(run.client, query), run))


async def drive(run: Run, deadline: float, chaos_done: asyncio.Future[None]) -> None:
    """Act as reviewers and operators until the chaos is over and every refund has finished."""
    while time.monotonic() < deadline:
        waiting = [
            i
            for i in await ids_in_state(run, RefundState.VALIDATING_APPLICATION)
            if i not in run.decided
        ]
        stuck = [
            i for i in await ids_in_state(run, RefundState.NEEDS_ATTENTION) if i not in run.resolved
        ]
        await asyncio.gather(*(decide(run, i) for i in waiting), *(resolve(run, i) for i in stuck))
        all_started = len(run.started) == len(run.cases)
        if chaos_done.done() and all_started and await running_count(run) == 0:
            return
        await asyncio.sleep(0.5)


async def monkey(
    worker: ManagedWorker,
    server: ManagedServer,
    kills: int,
    restarts: int,
    span: float,
    rng: random.Random,
) -> None:
    """SIGKILL the worker ``kills`` times and restart the server ``restarts`` times."""
    moments = sorted(rng.uniform(0.5, span) for _ in range(kills))
    restart_after = {max(0, kills // 2 - 1 + i) for i in range(restarts)}
    started = time.monotonic()
    for index, moment in enumerate(moments):
        await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
        worker.kill()
        console.print(f"[red]SIGKILL worker[/] ({worker.kills}/{kills})")
        if index in restart_after:
            await asyncio.to_thread(server.restart)
            console.print(f"[red]server restarted[/] on its SQLite file ({server.restarts})")
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        worker.start()


async def chaos(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    cases = make_cases(args.refunds, datetime.now(UTC), rng)
    db_url = f"sqlite:///{workdir / 'refunds.db'}"
    engine = open_database(db_url)
    CertificateStore(engine).seed([case.certificate for case in cases])
    enrol(PeopleDirectory(engine), workdir / "keys", people(cases))
    options = DevServerOptions(
        host="127.0.0.1",
        port=free_port(),
        ui_port=free_port(),
        database_file=workdir / "temporal.db",
        namespace="default",
    )
    server = ManagedServer(options, (workdir / "server.log").open("ab"))
    task_queue = "chaos"
    channels = channel_env(
        workdir,
        fault_transient_rate=str(args.transient_rate),
        fault_latency_ms=str(args.latency_ms),
        fault_reject=fault_settings(cases),
        fault_settlement_fail=settlement_failures(cases),
    )
    common = {
        **channels,
        "REFUNDS_TEMPORAL_ADDRESS": server.address,
        "REFUNDS_DATABASE_URL": db_url,
        "REFUNDS_LOG_FORMAT": "json",
    }
    worker = ManagedWorker(
        env={
            **common,
            "REFUNDS_TASK_QUEUE": task_queue,
            "REFUNDS_REVIEWERS": REVIEWERS,
            "REFUNDS_OPERATORS": OPERATOR,
            "REFUNDS_FALLBACK_TO_BALANCE": "true",
            "REFUNDS_SETTLEMENT_POLL": "5",
        },
        log_dir=workdir,
    )
    server.start()
    client = await connect(server.address, workdir / "keys")
    simulators = start_simulators({**common, "REFUNDS_SIMULATOR_SETTLE_SECONDS": "1"}, workdir)
    worker.start()
    cases_by_id = {f"refund-{c.certificate.certificate_id}": c for c in cases}
    run = Run(cases_by_id, client, rng, workdir / "keys")
    began = time.monotonic()
    try:
        submitting = asyncio.ensure_future(submit_all(run, task_queue, args.span))
        chaos_task = asyncio.ensure_future(
            monkey(worker, server, args.kills, args.server_restarts, args.span, rng)
        )
        await drive(run, time.monotonic() + args.timeout, chaos_task)
        await asyncio.gather(submitting, chaos_task)
        elapsed = time.monotonic() - began
        return await report(run, engine, worker, server, elapsed, workdir)
    finally:
        worker.stop()
        simulators.stop()
        server.stop()


async def final_status(run: Run, refund_id: str) -> RefundStatus | None:
    handle: RefundHandle = run.client.get_workflow_handle_for(RefundWorkflow.run, refund_id)
    try:
        description = await persist(lambda: handle.describe(), run)
    except RPCError:
        return None
    if description.status is None or description.status.name != "COMPLETED":
        return None
    return await handle.result()


async def report(
    run: Run,
    engine: Any,
    worker: ManagedWorker,
    server: ManagedServer,
    elapsed: float,
    workdir: Path,
) -> dict[str, Any]:
    statuses = {refund_id: await final_status(run, refund_id) for refund_id in run.cases}
    outcome = Outcome(
        started=run.started,
        statuses=statuses,
        resolved=len(run.resolved),
        rpc_retries=run.rpc_retries,
        worker_kills=worker.kills,
        server_restarts=server.restarts,
        unknown_outcomes=worker.failed_activities("outcome unknown"),
        permanent_refusals=worker.failed_activities("refused the return"),
    )
    return figures_of(outcome, engine, elapsed, workdir, console)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--refunds", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--server-restarts", type=int, default=1)
    parser.add_argument("--transient-rate", type=float, default=0.1)
    parser.add_argument("--latency-ms", type=int, default=30)
    parser.add_argument("--span", type=float, default=20.0, help="seconds over which to kill")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="refunds-chaos-"))
    try:
        figures = asyncio.run(chaos(args, workdir))
    finally:
        if args.keep:
            console.print(f"logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures), flush=True)
    healthy = (
        figures["stuck"] == 0
        and figures["lost"] == 0
        and figures["paid_twice"] == 0
        and figures["missing_amount"] == "0.00"
        and figures["ledger_mismatches"] == 0
        and figures["channel_returns_unrecorded"] == 0
        and figures["paid_twice_at_a_channel"] == 0
        and figures["journal_problems"] == 0
        and figures["payments_refused"] == 0
        and figures["finished"] == figures["started"]
    )
    raise SystemExit(0 if healthy else 1)


if __name__ == "__main__":
    main()
