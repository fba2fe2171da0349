"""Committed histories of every path replay on the current workflow code and converter."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from tests.scenarios import SCENARIOS
from worker import workflow_runner
from workflows.refund import RefundWorkflow

HISTORIES = Path(__file__).with_name("histories")


def test_every_path_has_a_committed_history():
    assert sorted(p.stem for p in HISTORIES.glob("*.json")) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_history_replays(name):
    path = HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(f"refund-{name}", path.read_text())
    replayer = Replayer(
        workflows=[RefundWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner("strict"),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_a_changed_workflow_is_caught(monkeypatch):
    """Prove the replay test can fail: drop the customer notification and replay."""

    async def skip_notification(self: RefundWorkflow, message: str) -> None:
        return None

    monkeypatch.setattr(RefundWorkflow, "_notify", skip_notification)
    history = WorkflowHistory.from_json(
        "refund-auto", (HISTORIES / "auto_approved.json").read_text()
    )
    replayer = Replayer(
        workflows=[RefundWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
