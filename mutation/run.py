"""``make mutation``: mutmut over the safety core, each module against the tests that guard it.

mutmut changes files in place, so every module runs in its own scratch copy of the project, two at
a time on two cores. Prints the score per module and the diff of every surviving mutant; the last
line is one JSON object: ``{"modules": {path: {"killed", "survived", "score"}}, ...}``. Survivors
that no test can kill are explained in ``docs/testing.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "mutation.gate", "-x", "-q", "-p", "no:cacheprovider"]
MUTMUT = [sys.executable, "-m", "mutmut"]
WORKFLOW_TESTS = [
    "tests/test_payout_failures.py",
    "tests/test_reliability.py",
    "tests/test_bad_data_and_outages.py",
    "tests/test_operations.py::test_metrics_endpoint_has_sdk_and_refund_metrics",
]
"""The payout's orchestration runs only on a worker: these drive it on the real dev server."""

TARGETS: dict[str, list[str]] = {
    "workflows/payout.py": WORKFLOW_TESTS,
    "workflows/payout_rules.py": ["tests/test_payout_rules.py"],
    "workflows/policy.py": ["tests/test_policy.py", "tests/test_business_days.py"],
    "workflows/review_checks.py": ["tests/test_review_checks.py"],
    "storage/ledger.py": ["tests/test_storage.py", "tests/test_payment_activity.py"],
    "storage/certificates.py": ["tests/test_storage.py"],
    "storage/certificate_statements.py": ["tests/test_storage.py"],
    "activities/payments.py": ["tests/test_payment_activity.py", "tests/test_activity_names.py"],
    "starter/codec_auth.py": ["tests/test_codec_server.py"],
    "domain/signatures.py": ["tests/test_people.py"],
    "workflows/signed_actions.py": ["tests/test_signed_actions.py"],
}
"""The safety core: the rules, who may act, the payout, the ledger, the certificate's status
changes, the payment activity and the codec server's auth."""

MODULE_TIMEOUT = 45 * 60
"""A module whose run takes longer is reported with its untested mutants, not waited for."""
KILLED = ("ok_killed", "bad_timeout", "ok_suspicious")


@dataclass
class Outcome:
    module: str
    killed: int = 0
    survived: int = 0
    untested: int = 0
    seconds: float = 0.0
    survivors: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        total = self.killed + self.survived
        return round(self.killed / total, 3) if total else 1.0


def scratch_copy(into: Path) -> Path:
    """The project's files as they are in the working tree (new ones too), without ignored ones."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = ROOT / name.decode()
        if source.is_file():
            target = into / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return into


def mutate(module: str, tests: list[str], workdir: Path) -> Outcome:
    began = time.monotonic()
    copy = scratch_copy(workdir / module.replace("/", "_"))
    runner = " ".join([*PYTEST, "-k", "'not postgres'", *tests])
    env_cmd = ["env", "-u", "REFUNDS_REQUIRE_SYSTEM_TESTS", "PYTHONDONTWRITEBYTECODE=1"]
    # A run that outlives its time is cut short; what it did not reach is reported untested.
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            [
                *env_cmd,
                *MUTMUT,
                "run",
                "--paths-to-mutate",
                module,
                "--runner",
                runner,
                "--no-progress",
            ],
            cwd=copy,
            capture_output=True,
            check=False,
            timeout=MODULE_TIMEOUT,
        )
    outcome = Outcome(module, seconds=time.monotonic() - began)
    db = sqlite3.connect(copy / ".mutmut-cache")
    try:
        rows = db.execute("SELECT id, status FROM Mutant ORDER BY id").fetchall()
    finally:
        db.close()
    for mutant_id, status in rows:
        if status in KILLED:
            outcome.killed += 1
        elif status == "bad_survived":
            outcome.survived += 1
            outcome.survivors.append(f"{module}: {shown_change(copy, mutant_id)}")
        elif status == "untested":
            outcome.untested += 1
    return outcome


def shown_change(copy: Path, mutant_id: int) -> str:
    """The mutant's changed lines, ``- old | + new``."""
    shown = subprocess.run(
        [*MUTMUT, "show", str(mutant_id)],
        cwd=copy,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    changed = [
        " ".join(line.split())
        for line in shown.splitlines()
        if line[:1] in ("+", "-") and not line.startswith(("+++", "---"))
    ]
    return " | ".join(changed) or f"mutant {mutant_id}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="only these (default: the whole core)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    chosen = {m: t for m, t in TARGETS.items() if not args.modules or m in args.modules}
    began = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="mutation-") as scratch,
        ThreadPoolExecutor(args.jobs) as pool,
    ):
        outcomes = list(
            pool.map(lambda item: mutate(item[0], item[1], Path(scratch)), chosen.items())
        )
    for outcome in outcomes:
        print(
            f"{outcome.module}: {outcome.killed} killed, {outcome.survived} survived, "
            f"{outcome.untested} untested, score {outcome.score:.3f} ({outcome.seconds:.0f} s)"
        )
        for survivor in outcome.survivors:
            print(f"  survived {survivor}")
    summary = {
        "modules": {
            o.module: {
                "killed": o.killed,
                "survived": o.survived,
                "untested": o.untested,
                "score": o.score,
            }
            for o in outcomes
        },
        "killed": sum(o.killed for o in outcomes),
        "survived": sum(o.survived for o in outcomes),
        "untested": sum(o.untested for o in outcomes),
        "seconds": round(time.monotonic() - began),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
