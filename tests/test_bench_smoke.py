"""The benchmark's quick mode runs end to end (a smoke check: no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "refunds_per_s",
    "baseline_per_s",
    "throughput_ratio",
    "p50_ms",
    "p99_ms",
    "baseline_p50_ms",
    "latency_ratio",
    "parked",
    "worker_rss_mib",
    "approvals_per_s",
    "events_per_refund",
}


def test_bench_quick_mode_reports_every_figure():
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures.keys() >= KEYS
    assert figures["parked"] == 60
    assert all(figures[key] > 0 for key in KEYS)
    assert len(figures["refund_drains_per_s"]) == len(figures["baseline_drains_per_s"]) == 2
    assert figures["median_drain_ratio"] > 0
