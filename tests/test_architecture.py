"""The seams hold: workflow code imports no worker-side machinery, and the client speaks to the
workflow through its methods, never through names spelled as strings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sqlalchemy", "settings", "storage", "psycopg", "aiohttp", "codec", "converter")
ENCRYPTION = "cryptography.hazmat.primitives.ciphers.aead"


def test_importing_the_workflows_imports_no_database_encryption_or_settings():
    """The one piece of ``cryptography`` workflow code uses is the Ed25519 check of a signed
    action (``domain.signatures``): never the payload encryption, which stays in the client."""
    probe = (
        "import sys, workflows.refund, workflows.reconciliation; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
        f"or m.startswith({ENCRYPTION!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_no_signal_or_update_name_is_spelled_outside_the_workflow():
    names = "approve_request|reject_request|cancel_request|retry_payments|resolve_manually"
    spelled = re.compile(rf"[\"']({names})[\"']|\.signal\(\s*[\"']")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("starter", "chaos", "bench")
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if spelled.search(line)
    ]
    assert offenders == []


def test_no_module_outside_the_tests_is_longer_than_about_350_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in ROOT.glob("*/*.py")
        if path.parts[-2] not in ("tests", ".venv") and not path.parts[-2].startswith(".")
        if (lines := len(path.read_text().splitlines())) > 370
    }
    too_long |= {
        path.name: lines
        for path in ROOT.glob("*.py")
        if (lines := len(path.read_text().splitlines())) > 370
    }
    assert too_long == {}


def test_the_workflow_modules_the_sandbox_passes_through_read_no_clock_and_do_no_io():
    """The sandbox imports these once and does not check them at run time, so their source is
    checked here: no clock but ``workflow.now()``, no randomness, no I/O, no threads or sleeps."""
    from tuning import PASSTHROUGH_MODULES

    forbidden = re.compile(
        r"\b(datetime\.now|datetime\.utcnow|date\.today|time\.time|time\.sleep|asyncio\.sleep"
        r"|uuid\.uuid[14]|open\()"
        r"|^\s*(import|from)\s+(random|os|time|uuid|socket|subprocess|threading|requests|httpx"
        r"|sqlalchemy|storage|settings)\b",
        re.M,
    )
    modules = [m for m in PASSTHROUGH_MODULES if m.startswith("workflows.")]
    assert {"workflows.progress", "workflows.audit", "workflows.review_checks"} <= set(modules)
    found = {
        module: forbidden.findall((ROOT / (module.replace(".", "/") + ".py")).read_text())
        for module in modules
    }
    assert {module: hits for module, hits in found.items() if hits} == {}
