"""A small chaos run in the suite: refunds through a worker SIGKILL and a server restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAOS = [sys.executable, "-m", "chaos.run"]


def test_small_chaos_run_loses_nothing_and_pays_once():
    done = subprocess.run(
        [*CHAOS, "--refunds", "20", "--kills", "2", "--span", "6", "--seed", "7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["started"] == figures["finished"] == 20
    assert figures["stuck"] == figures["lost"] == figures["paid_twice"] == 0
    assert figures["missing_amount"] == "0.00"
    assert figures["ledger_mismatches"] == 0
    assert figures["channel_returns_unrecorded"] == 0
    assert figures["worker_kills"] == 2
    assert figures["server_restarts"] == 1
    assert sum(figures["outcomes"].values()) == 20
