"""The CLI against a real ``refunds up`` (dev server, Web UI, worker), as a user drives it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REFUNDS = str(Path(sys.executable).with_name("refunds"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class System:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ui_port = free_port()
        self.env = {
            **os.environ,
            "REFUNDS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "REFUNDS_DATABASE_URL": f"sqlite:///{workdir / 'refunds.db'}",
            "REFUNDS_REVIEWERS": "rev-1,rev-2",
            "COLUMNS": "200",
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [REFUNDS, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def refused(self, *args: str) -> str:
        done = self.run(*args, ok=False)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "Traceback" not in done.stderr
        return lines[0]


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[System]:
    workdir = tmp_path_factory.mktemp("up")
    system = System(workdir)
    process = subprocess.Popen(
        [
            REFUNDS,
            "up",
            "--ui-port",
            str(system.ui_port),
            "--temporal-db",
            "temporal.db",
            "--seed-demo",
        ],
        env=system.env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    banner = ""
    while "Web UI:" not in banner:
        line = process.stdout.readline()
        assert line or process.poll() is None, process.stderr.read() if process.stderr else ""
        banner += line
        assert time.monotonic() < deadline, banner
    system.banner = banner  # type: ignore[attr-defined]
    system.process = process  # type: ignore[attr-defined]
    yield system
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_up_prints_the_web_ui_address(system):
    assert f"http://localhost:{system.ui_port}/namespaces/default/workflows" in system.banner


def test_auto_refund_through_the_cli(system):
    started = time.monotonic()
    submitted = system.json(
        "submit", "demo-auto", "--requester", "user-17", "--reason", "no_longer_needed"
    )
    assert submitted["refund_id"] == "refund-demo-auto"
    status = system.json("status", "refund-demo-auto", "--wait")
    elapsed = time.monotonic() - started
    assert status["state"] == "refunded"
    assert status["rule"] == "unissued-within-5-days"
    assert status["refund_amount"] == "199.00"
    assert [(leg["channel"], leg["amount"], leg["status"]) for leg in status["legs"]] == [
        ("alipay", "199.00", "returned"),
        ("voucher", "50.00", "not_refundable"),
    ]
    assert elapsed < 60
    print(f"auto refund, submit to refunded through the CLI: {elapsed:.2f} s")


def test_review_approve_with_refusals(system):
    system.run(
        "submit",
        "demo-issued",
        "--requester",
        "user-19",
        "--reason",
        "install_failed",
        "--support-contact",
        "dingtalk:user19",
    )
    waiting = system.json("status", "refund-demo-issued", "--wait")
    assert waiting["state"] == "validating_application"
    assert waiting["review_deadline"]
    pending = system.json("pending")
    assert "refund-demo-issued" in [p["refund_id"] for p in pending]
    line = system.refused("approve", "refund-demo-issued", "--reviewer", "mallory")
    assert line == "refunds: error: refused: mallory is not on the reviewer list"
    system.run("approve", "refund-demo-issued", "--reviewer", "rev-1", "--note", "checked")
    done = system.json("status", "refund-demo-issued", "--wait")
    assert done["state"] == "refunded"
    assert done["refund_amount"] == "1500.50"
    assert {leg["status"] for leg in done["legs"]} == {"returned"}
    assert "approve (update)" in [entry["action"] for entry in done["audit"]]
    human = system.run("status", "refund-demo-issued").stdout
    assert "refunded" in human and "certificate revoked" in human


def test_reject_cancel_and_duplicates(system):
    system.run(
        "submit",
        "demo-reject",
        "--requester",
        "user-21",
        "--reason",
        "other",
        "--feedback",
        "bought the wrong product",
    )
    system.run(
        "submit", "demo-cancel", "--requester", "user-20", "--reason", "renewal_type_mismatch"
    )
    line = system.refused(
        "submit", "demo-cancel", "--requester", "user-20", "--reason", "no_longer_needed"
    )
    assert "already has a refund in progress: refund-demo-cancel" in line
    system.json("status", "refund-demo-reject", "--wait")
    system.json("status", "refund-demo-cancel", "--wait")
    line = system.refused("reject", "refund-demo-reject", "--reviewer", "rev-2", "--reason", " ")
    assert "needs a reason" in line
    system.run("reject", "refund-demo-reject", "--reviewer", "rev-2", "--reason", "in use")
    line = system.refused("cancel", "refund-demo-cancel", "--requester", "user-21")
    assert "only the requester (user-20)" in line
    system.run("cancel", "refund-demo-cancel", "--requester", "user-20")
    assert system.json("status", "refund-demo-reject", "--wait")["state"] == "rejected"
    assert system.json("status", "refund-demo-cancel", "--wait")["state"] == "cancelled"
    line = system.refused("cancel", "refund-demo-cancel", "--requester", "user-20")
    assert line == "refunds: error: refund refund-demo-cancel is already finished"
    check = system.json("check", "demo-cancel")
    assert check["outcome"] == "manual_review"


def test_denied_and_user_mistakes(system):
    system.run("submit", "demo-old", "--requester", "user-22", "--reason", "no_longer_needed")
    denied = system.json("status", "refund-demo-old", "--wait")
    assert (denied["state"], denied["rule"]) == ("rejected", "issued-over-28-days")
    assert system.refused("status", "refund-nope") == "refunds: error: no refund 'refund-nope'"
    assert "does not own" in system.refused(
        "submit", "demo-voucher", "--requester", "user-1", "--reason", "no_longer_needed"
    )
    assert "mainland" in system.refused(
        "submit",
        "demo-free",
        "--requester",
        "user-23",
        "--reason",
        "install_failed",
        "--support-contact",
        "12345678901",
    )
    assert "Invalid value" in system.refused(
        "submit", "demo-free", "--requester", "user-23", "--reason", "bored"
    )


def test_no_server_is_one_line(tmp_path):
    lonely = System(tmp_path)
    line = lonely.refused("pending")
    assert line.startswith("refunds: error: cannot reach Temporal at")


def test_sigterm_stops_worker_and_server(system):
    process = system.process
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    line = System(system.workdir)
    line.env = system.env
    assert "cannot reach Temporal" in line.refused("pending")
