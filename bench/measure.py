"""The benchmark's instruments: workloads, worker processes, drains, latency and CPU."""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHandle

from bench.baseline import BaselineInput, BaselineWorkflow
from chaos.processes import ManagedServer, ManagedSimulators, free_port
from chaos.world import channel_env, start_simulators
from converter import DATA_CONVERTER
from domain.certificates import Certificate
from domain.signatures import Role
from starter.devserver import DevServerOptions
from starter.not_ready import when_ready
from starter.people_keys import enrol, load_key
from starter.signing import request_signed_with, signed
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.people import PeopleDirectory
from workflows.contract import ApproveInput, RefundRequest, ReviewAction
from workflows.refund import RefundWorkflow

CONCURRENCY = 64


def legs(certificate_id: str) -> list[dict[str, str]]:
    """An Alipay leg, a bank leg and a voucher, each payment with its own reference."""
    return [
        {"channel": "alipay", "amount": "199.00", "reference": f"ali-{certificate_id}"},
        {"channel": "bank", "amount": "100.00", "reference": f"bank-{certificate_id}"},
        {"channel": "voucher", "amount": "50.00", "reference": f"vch-{certificate_id}"},
    ]


def certificates(prefix: str, count: int, bought_days_ago: int) -> list[Certificate]:
    bought = datetime.now(UTC) - timedelta(days=bought_days_ago)
    return [
        Certificate.model_validate(
            {
                "certificate_id": f"{prefix}-{i:05d}",
                "owner": f"user-{i}",
                "product": "DV",
                "validation": "not_submitted",
                "purchased_at": bought,
                "expires_at": bought + timedelta(days=365),
                "order": {
                    "order_id": f"{prefix}-ord-{i:05d}",
                    "payments": legs(f"{prefix}-{i:05d}"),
                },
            }
        )
        for i in range(count)
    ]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerProcess:
    process: subprocess.Popen[str]

    @classmethod
    def start(
        cls, kind: str, env: dict[str, str], log: Path, extra: Sequence[str]
    ) -> WorkerProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", kind, *extra],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log.open("a"),
            text=True,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {kind} worker did not start; see {log}")
        # Whatever it writes later goes to the log: a pipe left unread fills and stops it dead.
        threading.Thread(target=_copy, args=(process.stdout, log), daemon=True).start()
        return cls(process)

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        return kib / 1024

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _copy(source: IO[str], log: Path) -> None:
    with log.open("a") as sink:
        for line in source:
            sink.write(line)


async def bounded(calls: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


@functools.cache
def _key(key_dir: Path, person_id: str) -> Ed25519PrivateKey:
    return load_key(key_dir, person_id)


def refund_start(
    client: Client, cert: Certificate, queue: str, key_dir: Path
) -> Callable[[], Awaitable[Any]]:
    """Start the certificate's refund, the request signed as it is started (as `refunds submit`
    signs it: the system of record takes a request for ten minutes after its signature)."""
    refund_id = f"refund-{cert.certificate_id}"
    request = RefundRequest(
        certificate_id=cert.certificate_id, requester=cert.owner, reason="no_longer_needed"
    )

    def start() -> Awaitable[Any]:
        signed = request_signed_with(
            _key(key_dir, cert.owner), refund_id, request, datetime.now(UTC)
        )
        return client.start_workflow(RefundWorkflow.run, signed, id=refund_id, task_queue=queue)

    return start


def baseline_start(client: Client, cert: Certificate, queue: str) -> Callable[[], Awaitable[Any]]:
    """Start a baseline workflow on a certificate of its own (whose payments the simulators
    know, as they know the refunds')."""
    alipay, bank, _ = cert.order.payments
    request = BaselineInput(
        refund_id=f"baseline-{cert.certificate_id}",
        alipay_reference=alipay.reference,
        bank_reference=bank.reference,
    )
    return lambda: client.start_workflow(
        BaselineWorkflow.run, request, id=request.refund_id, task_queue=queue
    )


async def drain(starts: Sequence[Callable[[], Awaitable[Any]]]) -> tuple[float, list[Any]]:
    """Seconds from the first start to the last result, and the handles."""
    began = time.perf_counter()
    handles: list[WorkflowHandle[Any, Any]] = await bounded(starts, CONCURRENCY)
    await bounded([h.result for h in handles], 4 * CONCURRENCY)
    return time.perf_counter() - began, handles


@dataclass
class Drains:
    """One side's drains added up: workflows, seconds, and CPU of its worker and the server."""

    count: int = 0
    seconds: float = 0.0
    worker_cpu: float = 0.0
    server_cpu: float = 0.0
    handles: list[WorkflowHandle[Any, Any]] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    worker_cpu_ms: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)

    async def measure(
        self, starts: Sequence[Callable[[], Awaitable[Any]]], worker_pid: int, server_pid: int
    ) -> str:
        """Drain ``starts``, add it up, and describe this drain alone."""
        worker_before, server_before = cpu_seconds(worker_pid), cpu_seconds(server_pid)
        seconds, handles = await drain(starts)
        worker_cpu = cpu_seconds(worker_pid) - worker_before
        server_cpu = cpu_seconds(server_pid) - server_before
        self.worker_cpu += worker_cpu
        self.server_cpu += server_cpu
        self.count += len(starts)
        self.seconds += seconds
        self.handles += handles
        self.rates.append(len(starts) / seconds)
        per = 1000 / len(starts)
        self.worker_cpu_ms.append(round(worker_cpu * per, 2))
        self.server_cpu_ms.append(round(server_cpu * per, 2))
        return (
            f"{len(starts) / seconds:.1f}/s, CPU per workflow: worker {worker_cpu * per:.1f} ms,"
            f" server {server_cpu * per:.1f} ms"
        )


SETTLE_SECONDS = 32.0
"""Pause between drains: workflow-task and activity timeout timers (10 s and 30 s) fire after a
workflow has finished, and a drain that started at once would pay for the previous one's."""

LOW_RATE_PAUSE = 0.25
"""Seconds between latency samples, so each meets an idle server (BENCHMARKS.md)."""


async def latencies(
    pairs: Sequence[tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]],
) -> tuple[list[float], list[float]]:
    """Milliseconds from start to result, one workflow at a time at a low rate, for each side.

    The two sides take turns, so a server still busy with earlier work weighs on both alike.
    """
    samples: tuple[list[float], list[float]] = ([], [])
    for pair in pairs:
        for side, start in enumerate(pair):
            await asyncio.sleep(LOW_RATE_PAUSE)
            began = time.perf_counter()
            handle = await start()
            await handle.result()
            samples[side].append((time.perf_counter() - began) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def server_cost(handles: list[WorkflowHandle[Any, Any]]) -> tuple[float, float]:
    """Mean history events and state transitions over a sample of finished workflows."""
    events, transitions = [], []
    for handle in handles[:10]:
        history = await handle.fetch_history()
        events.append(len(history.events))
        description = await handle.describe()
        transitions.append(
            description.raw_description.workflow_execution_info.state_transition_count
        )
    return statistics.mean(events), statistics.mean(transitions)


def growth(per_drain: list[float]) -> float:
    """The last drain's CPU per workflow over the first's: 1.0 when a workflow's cost does not
    depend on how many came before."""
    return round(per_drain[-1] / per_drain[0], 3)


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


def _batches(
    starts: Sequence[Callable[[], Awaitable[Any]]], size: int
) -> Iterator[Sequence[Callable[[], Awaitable[Any]]]]:
    return (starts[i : i + size] for i in range(0, len(starts), size))


@dataclass
class Retries:
    """Sends Temporal refused while a refund's workflow task was being retried."""

    count: int = 0

    def __call__(self) -> None:
        self.count += 1


def _approver(
    handle: WorkflowHandle[Any, Any], approve: ApproveInput, key_dir: Path, retries: Retries
) -> Callable[[], Awaitable[Any]]:
    """An approval signed by the reviewer's key as it is sent, and sent again while the refund
    is not ready, as ``refunds approve`` does."""
    return lambda: when_ready(
        lambda: handle.execute_update(
            RefundWorkflow.approve_request,
            signed(key_dir, handle.id, ReviewAction.APPROVE, approve),
        ),
        on_retry=retries,
    )


@dataclass
class Bench:
    """A benchmark's world in ``workdir``: its system of record, seeded, a reviewer and the
    certificates' owners with keys, a dev server and the channels' simulators of its own."""

    db_url: str
    key_dir: Path
    server: ManagedServer
    channels: dict[str, str]
    simulators: ManagedSimulators

    @classmethod
    def start(cls, workdir: Path, certs: Sequence[Certificate], reviewer: str) -> Bench:
        db_url = f"sqlite:///{workdir / 'refunds.db'}"
        store = CertificateStore(open_database(db_url))
        store.seed(certs)
        owners = sorted({cert.owner for cert in certs})
        enrol_people(store.engine, workdir / "keys", reviewer, owners)
        options = DevServerOptions(
            "127.0.0.1", free_port(), free_port(), workdir / "temporal.db", "default"
        )
        server = ManagedServer(options, (workdir / "server.log").open("ab"))
        server.start()
        channels = channel_env(workdir)
        env = {
            **channels,
            "REFUNDS_TEMPORAL_ADDRESS": server.address,
            "REFUNDS_DATABASE_URL": db_url,
            "REFUNDS_SIMULATOR_SETTLE_SECONDS": "0",
            "REFUNDS_LOG_FORMAT": "json",
        }
        return cls(db_url, workdir / "keys", server, channels, start_simulators(env, workdir))

    def worker_env(self, queue: str, reviewer: str) -> dict[str, str]:
        return {
            **self.channels,
            "REFUNDS_TEMPORAL_ADDRESS": self.server.address,
            "REFUNDS_DATABASE_URL": self.db_url,
            "REFUNDS_TASK_QUEUE": queue,
            "REFUNDS_REVIEWERS": reviewer,
            "REFUNDS_LOG_FORMAT": "json",
        }

    def stop(self) -> None:
        self.simulators.stop()
        self.server.stop()


def enrol_people(engine: Engine, key_dir: Path, reviewer: str, owners: Sequence[str]) -> None:
    """The benchmark's reviewer and the certificates' owners, in its own directory with keys in
    its own folder (owners sign their requests, the reviewer the approvals)."""
    enrol(PeopleDirectory(engine), key_dir, {Role.REVIEWER: [reviewer], Role.CUSTOMER: owners})


async def _connect(address: str) -> Client:
    for _ in range(200):
        try:
            return await Client.connect(address, data_converter=DATA_CONVERTER)
        except RuntimeError:
            await asyncio.sleep(0.3)
    raise RuntimeError(f"no Temporal server at {address}")
