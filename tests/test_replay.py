"""Committed histories of every path, from every workflow version, replay on the current code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from converter import DATA_CONVERTER
from tests.record_histories import CURRENT, HISTORIES
from tests.scenarios import SCENARIOS
from tuning import workflow_runner
from workflows.refund import RefundWorkflow
from workflows.steps import RefundSteps

RECORDED = sorted(HISTORIES.glob("*/*.json"))


def test_every_path_has_a_history_from_the_current_version():
    assert sorted(p.stem for p in (HISTORIES / CURRENT).glob("*.json")) == sorted(SCENARIOS)


def recorded_history(path: Path) -> WorkflowHistory:
    """The history with the workflow id it ran under (the refund id the workflow compares)."""
    text = path.read_text()
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    return WorkflowHistory.from_json(started.get("workflowId") or f"refund-{path.stem}", text)


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_history_replays(path: Path):
    history = recorded_history(path)
    replayer = Replayer(
        workflows=[RefundWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=workflow_runner("strict"),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_a_changed_workflow_is_caught(monkeypatch):
    """Prove the replay test can fail: drop the customer notification and replay."""

    async def skip_notification(self: RefundSteps, message: str) -> None:
        return None

    monkeypatch.setattr(RefundSteps, "notify", skip_notification)
    history = WorkflowHistory.from_json(
        "refund-auto", (HISTORIES / CURRENT / "auto_approved.json").read_text()
    )
    replayer = Replayer(
        workflows=[RefundWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
