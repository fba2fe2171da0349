"""The operator scenarios end to end on a real `refunds up`: Temporal's own CLI (the one the dev
server ships) cancels, terminates and resets refunds; `refunds` shows and repairs the books."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import temporal_cli
from tests.live_system import System, running_system


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("operators")) as system:
        yield system


def temporal(system: System, *args: str) -> str:
    done = subprocess.run(
        [temporal_cli(), *args, "--address", system.env["REFUNDS_TEMPORAL_ADDRESS"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def totals(system: System) -> dict[str, Any]:
    return dict(system.json("ledger")["totals"])


def wait_for_state(system: System, refund_id: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        status = system.json("status", refund_id)
        if status["state"] == state:
            return dict(status)
        assert time.monotonic() < deadline, status["state"]
        time.sleep(0.3)


def test_a_cancellation_request_in_review_is_a_cancel(system):
    system.run("submit", "demo-review", "--requester", "user-18", "--reason", "no_longer_needed")
    wait_for_state(system, "refund-demo-review", "validating_application")
    assert system.json("certificate", "demo-review")["certificate"]["status"] == "refund_pending"
    temporal(system, "workflow", "cancel", "-w", "refund-demo-review")
    status = wait_for_state(system, "refund-demo-review", "cancelled")
    cancel = [
        a for a in status["audit"] if a["action"] == "cancellation requested through Temporal"
    ]
    assert cancel and cancel[0]["accepted"] and cancel[0]["actor"].startswith("temporal-cli:")
    view = system.json("certificate", "demo-review")
    assert view["certificate"]["status"] == "paid"
    assert (view["refund_workflow"], view["refund_state"]) == ("completed", "cancelled")
    assert "refund-demo-review" not in [p["refund_id"] for p in system.json("pending")]


def test_a_refund_terminated_in_review_is_found_and_repaired(system):
    system.run(
        "submit", "demo-issued", "--requester", "user-19", "--reason", "renewal_type_mismatch"
    )
    wait_for_state(system, "refund-demo-issued", "validating_application")
    temporal(system, "workflow", "terminate", "-w", "refund-demo-issued", "--reason", "oops")
    line = system.refused("status", "refund-demo-issued")
    assert "ended without a result (terminated)" in line and "refunds repair" in line
    assert totals(system)["orphaned_holds"] == 1
    view = system.json("certificate", "demo-issued")
    assert view["refund_workflow"] == "terminated"
    assert view["books"]["problem"] == "orphaned_hold"
    human = " ".join(system.run("certificate", "demo-issued").stdout.split())
    assert "orphaned_hold" in human and "refunds repair" in human
    line = system.refused("repair", "demo-issued", "--operator", "rev-1", "--note", "x")
    assert line == "refunds: error: rev-1 is not an operator in the people directory"
    repaired = system.json(
        "repair", "demo-issued", "--operator", "operator-1", "--note", "terminated by mistake"
    )
    assert repaired["action"] == "release"
    released = wait_for_state(system, "refund-demo-issued", "cancelled")
    assert released["decided_by"] == "operator-1"
    assert (totals(system)["orphaned_holds"], totals(system)["divergent"]) == (0, 0)
    view = system.json("certificate", "demo-issued")
    assert view["certificate"]["status"] == "issued"
    assert [r["operator"] for r in view["repairs"]] == ["operator-1"]


def test_a_reset_of_a_refunded_refund_reports_refunded(system):
    system.run("submit", "demo-auto", "--requester", "user-17", "--reason", "no_longer_needed")
    first = wait_for_state(system, "refund-demo-auto", "refunded")
    temporal(
        system,
        "workflow",
        "reset",
        "-w",
        "refund-demo-auto",
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "operator re-runs it",
    )
    deadline = time.monotonic() + 60
    while True:
        again = system.json("status", "refund-demo-auto")
        if any(a["action"].startswith("re-run after reset") for a in again["audit"]):
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    again = wait_for_state(system, "refund-demo-auto", "refunded")
    assert [leg["transaction_id"] for leg in again["legs"]] == [
        leg["transaction_id"] for leg in first["legs"]
    ]
    ledger = system.json("ledger")
    assert [m["refund_id"] for m in ledger["movements"]] == ["refund-demo-auto"]
    assert ledger["totals"]["paid_twice"] == 0


def test_a_plain_signal_proves_nothing_and_the_directory_reaches_a_waiting_refund(system):
    """What the Web UI's Send a Signal and Send an Update, and the `temporal` CLI, send is plain,
    unsigned JSON: the worker (which encrypts all it writes) will not read it, whoever it names,
    and refuses it: a signal audited, an update answered.
    A reviewer removed after the refund was submitted is refused, even with a copy of their old
    key; one added since can decide it."""
    system.run("people", "add", "rev-leaving", "--role", "reviewer")
    system.run("submit", "demo-reject", "--requester", "user-21", "--reason", "no_longer_needed")
    wait_for_state(system, "refund-demo-reject", "validating_application")
    for reviewer in ("user-21", "rev-1"):
        temporal(
            system,
            *("workflow", "signal", "-w", "refund-demo-reject", "--name", "reject"),
            *("--input", json.dumps({"reviewer": reviewer, "reason": "still in use"})),
        )
    forged = subprocess.run(
        [
            temporal_cli(),
            *("workflow", "update", "execute", "-w", "refund-demo-reject"),
            *("--name", "approve_request", "--input", json.dumps({"reviewer": "rev-1"})),
            *("--address", system.env["REFUNDS_TEMPORAL_ADDRESS"]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert forged.returncode != 0
    unread = (
        "a plain-text payload where encryption keys are set: send it with the refunds command "
        "or the console"
    )
    assert unread in forged.stderr + forged.stdout
    status = system.json("status", "refund-demo-reject")
    refused = [(a["actor"], a["action"], a["detail"]) for a in status["audit"] if not a["accepted"]]
    assert refused == [("unknown", "reject (signal)", unread)] * 2
    assert status["state"] == "validating_application"

    kept = Path(system.env["REFUNDS_KEY_DIR"]) / "people" / "rev-leaving.pem"
    copy = kept.read_bytes()
    assert "running refund(s) told" in system.run("people", "remove", "rev-leaving").stdout
    system.run("people", "add", "rev-joining", "--role", "reviewer")
    kept.write_bytes(copy)  # the leaver kept a copy of their key
    kept.chmod(0o600)
    changes = [a["detail"] for a in wait_for_audit(system, "people directory changed", 2)]
    assert changes == ["removed rev-leaving (reviewer)", "added rev-joining (reviewer)"]
    reject = ("reject", "refund-demo-reject", "--reason", "still in use")
    assert system.refused(*reject, "--reviewer", "rev-leaving") == (
        "refunds: error: refused: rev-leaving is not on the reviewer list"
    )
    system.run(*reject, "--reviewer", "rev-joining")
    status = wait_for_state(system, "refund-demo-reject", "rejected")
    assert status["rejection_reason"] == "still in use"
    assert [a["actor"] for a in status["audit"] if a["action"] == "reject (update)"] == [
        "rev-joining"
    ]


def wait_for_audit(system: System, action: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        audit = system.json("status", "refund-demo-reject")["audit"]
        found = [a for a in audit if a["action"] == action]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, audit
        time.sleep(0.3)


def test_the_daily_reconciliation_is_scheduled_and_runs(system):
    assert system.json("schedule-reconciliation") == {
        "schedule_id": "refunds-reconciliation",
        "created": False,
    }
    temporal(system, "schedule", "trigger", "-s", "refunds-reconciliation")
    query = "WorkflowType = 'ReconciliationWorkflow' AND ExecutionStatus = 'Completed'"
    deadline = time.monotonic() + 60
    while not (
        runs := json.loads(temporal(system, "workflow", "list", "-q", query, "-o", "json") or "[]")
    ):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    workflow_id = runs[0]["execution"]["workflowId"]
    # Results are ciphertext to the bare CLI; the codec endpoint of `refunds up` decrypts.
    sealed = json.loads(temporal(system, "workflow", "result", "-w", workflow_id, "-o", "json"))
    assert "certificates" not in json.dumps(sealed)
    codec = f"http://127.0.0.1:{system.env['REFUNDS_CODEC_PORT']}"
    result = json.loads(
        temporal(
            system, "workflow", "result", "-w", workflow_id, "-o", "json", "--codec-endpoint", codec
        )
    )
    summary = result["result"]
    assert summary["certificates"] == len(system.json("ledger")["reconciliation"])
    assert (summary["orphaned_holds"], summary["divergent"], summary["paid_twice"]) == (0, 0, 0)
    assert summary["missing_amount"] == "0.00"
