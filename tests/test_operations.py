"""Operating a worker: Prometheus metrics, graceful shutdown on SIGTERM, the sandbox it runs."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from settings import Settings
from starter.client import connect
from tests import clock_reading_workflow
from tests.clock_reading_workflow import ClockReadingWorkflow
from tests.factories import certificate
from tests.live_system import free_port
from tuning import (
    _SHARED_CODE,
    WorkerTuning,
    _SharedCodeLoader,
    worker_runtime,
    workflow_runner,
)
from worker import build_worker
from workflows.contract import RefundState

REFUNDS = str(Path(sys.executable).with_name("refunds"))


def server_address(temporal_env) -> str:
    return str(temporal_env.client.service_client.config.target_host)


async def test_metrics_endpoint_has_sdk_and_refund_metrics(harness, temporal_env):
    port = free_port()
    settings = harness.settings.model_copy(
        update={"temporal_address": server_address(temporal_env), "metrics_port": port}
    )
    client = await connect(settings, runtime=worker_runtime(settings))
    async with build_worker(client, settings=settings, task_queue="metrics"):
        harness.task_queue = "metrics"
        cert = certificate("met-1", purchased_at=datetime.now(UTC) - timedelta(days=1))
        status = await harness.result(await harness.submit(cert))
        assert status.state is RefundState.REFUNDED
        await asyncio.sleep(1.5)
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        )
    text = body.decode()
    assert "temporal_workflow_completed" in text or "temporal_activity_execution" in text
    decided = [line for line in text.splitlines() if line.startswith("refunds_decided")]
    assert any('rule="unissued-within-5-days"' in line for line in decided), decided
    assert any(
        line.startswith("refunds_finished") and 'state="refunded"' in line
        for line in text.splitlines()
    )
    [returned] = [
        line
        for line in text.splitlines()
        if line.startswith("refunds_returned_amount") and 'channel="alipay"' in line
    ]
    assert float(returned.rsplit(" ", 1)[1]) == 19900  # 199.00 CNY in cents; the voucher stays


async def test_sigterm_lets_a_running_payment_finish(harness, temporal_env, database_url):
    queue = "graceful"
    channels = harness.settings
    env = {
        **os.environ,
        "REFUNDS_TEMPORAL_ADDRESS": server_address(temporal_env),
        "REFUNDS_DATABASE_URL": database_url,
        "REFUNDS_TASK_QUEUE": queue,
        "REFUNDS_KEY_DIR": str(channels.key_dir),
        "REFUNDS_ALIPAY_SIMULATOR_PORT": str(channels.alipay_simulator_port),
        "REFUNDS_BANK_SIMULATOR_PORT": str(channels.bank_simulator_port),
        "REFUNDS_CHANNEL_TIMEOUT_SECONDS": "10",
        "REFUNDS_SHUTDOWN_GRACE_SECONDS": "20",
        "REFUNDS_LOG_FORMAT": "json",
    }
    slow_alipay = channels.model_copy(update={"fault_latency_ms": 3000})
    with harness.channel_faults(slow_alipay):
        worker = subprocess.Popen(
            [REFUNDS, "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            harness.task_queue = queue
            cert = certificate("grace-1", purchased_at=datetime.now(UTC) - timedelta(days=1))
            handle = await harness.submit(cert)

            async def payment_running() -> None:
                while True:
                    pending = (await handle.describe()).raw_description.pending_activities
                    if any(
                        a.activity_type.name == "return_to_alipay"
                        and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                        for a in pending
                    ):
                        return
                    await asyncio.sleep(0.1)

            try:
                await asyncio.wait_for(payment_running(), 30)
            except TimeoutError:
                worker.kill()
                raise AssertionError(
                    worker.stderr.read()[-3000:] if worker.stderr else ""
                ) from None
            assert harness.ledger.entries() == []  # still sleeping in the channel
            worker.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(worker.wait, 30)
            assert code == 0, worker.stderr.read() if worker.stderr else ""
            assert len(harness.ledger.entries()) == 1  # it finished before the worker left
        finally:
            if worker.poll() is None:
                worker.kill()
    async with build_worker(temporal_env.client, settings=harness.settings, task_queue=queue):
        status = await harness.result(handle)
    assert status.state is RefundState.REFUNDED
    assert len(harness.ledger.entries()) == 1


def test_production_workers_run_the_workflow_code_in_the_strict_sandbox():
    assert Settings.model_fields["workflow_sandbox"].default == "strict"
    assert WorkerTuning().sandbox == "strict"
    assert isinstance(workflow_runner("off"), UnsandboxedWorkflowRunner)
    imports_once = workflow_runner("imports-once")
    assert isinstance(imports_once, SandboxedWorkflowRunner)
    assert "workflows.refund" in imports_once.restrictions.passthrough_modules


@pytest.mark.parametrize(("sandbox", "refused"), [("strict", True), ("imports-once", False)])
async def test_only_the_strict_sandbox_refuses_a_wall_clock_read_at_run_time(
    temporal_env, sandbox, refused
):
    """Why strict is the default: a passed-through workflow module runs unchecked."""
    queue = f"clock-{sandbox}-{uuid.uuid4().hex[:6]}"
    runner = workflow_runner(sandbox, workflow_modules=("tests.clock_reading_workflow",))
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[ClockReadingWorkflow],
        workflow_runner=runner,
    ):
        handle = await temporal_env.client.start_workflow(
            ClockReadingWorkflow.run, id=queue, task_queue=queue
        )
        if not refused:
            assert await asyncio.wait_for(handle.result(), 20)
            return
        for _ in range(200):
            events = [e async for e in handle.fetch_history_events()]
            failures = [
                e.workflow_task_failed_event_attributes.failure.message
                for e in events
                if e.HasField("workflow_task_failed_event_attributes")
            ]
            if failures:
                break
            await asyncio.sleep(0.1)
        assert "Cannot access datetime.datetime.now" in failures[0]
        await handle.terminate("test over")
        loader, _ = _SHARED_CODE.found["tests.clock_reading_workflow"]
        assert loader.code is not None
        assert loader.path == str(Path(clock_reading_workflow.__file__))


def test_every_strict_sandbox_import_runs_the_module_anew_on_one_shared_code_object():
    """What the sandbox checks is a module executed afresh (its own globals and imports);
    only the code objects, which cannot change, are shared between runs."""
    workflow_runner("strict")
    assert _SHARED_CODE.found["workflows.refund"][0].code is not None, "read as the worker is built"
    first, second = (_fresh_import("workflows.review_deadline") for _ in range(2))
    assert first is not second
    assert first.DeadlineKeeper is not second.DeadlineKeeper
    assert first.DeadlineKeeper.passed_before is not second.DeadlineKeeper.passed_before
    assert (
        first.DeadlineKeeper.passed_before.__code__ is second.DeadlineKeeper.passed_before.__code__
    )


def _fresh_import(name: str) -> ModuleType:
    parent = importlib.import_module(name.rpartition(".")[0])
    spec = _SHARED_CODE.find_spec(name, parent.__path__)
    assert spec is not None and isinstance(spec.loader, _SharedCodeLoader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tests_and_replays_reload_the_workflow_module_for_every_run():
    assert Settings().workflow_sandbox == "strict", "tests/conftest.py sets it"
    strict = workflow_runner("strict")
    assert isinstance(strict, SandboxedWorkflowRunner)
    assert "workflows.refund" not in strict.restrictions.passthrough_modules
    assert "workflows.models" in strict.restrictions.passthrough_modules


def test_a_missing_system_capability_fails_when_ci_requires_it(monkeypatch):
    from tests.live_system import require_system

    monkeypatch.setenv("REFUNDS_REQUIRE_SYSTEM_TESTS", "1")
    with pytest.raises(pytest.fail.Exception, match="REFUNDS_REQUIRE_SYSTEM_TESTS=1"):
        require_system("a thing this machine lacks", False)
    monkeypatch.delenv("REFUNDS_REQUIRE_SYSTEM_TESTS")
    with pytest.raises(pytest.skip.Exception, match="a thing this machine lacks"):
        require_system("a thing this machine lacks", False)
    require_system("a thing this machine has", True)


def test_a_skip_fails_the_whole_run_when_ci_requires_every_test(tmp_path):
    test = tmp_path / "test_skipping.py"
    test.write_text("import pytest\n\n\ndef test_skipped():\n    pytest.skip('no thing')\n")
    env = {**os.environ, "REFUNDS_REQUIRE_SYSTEM_TESTS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", str(test)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    assert "skipped under REFUNDS_REQUIRE_SYSTEM_TESTS=1" in done.stdout
