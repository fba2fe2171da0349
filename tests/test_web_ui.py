"""The Temporal Web UI in headless Chromium shows each refund, its RefundState and its progress.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` Python package, which
drives that binary; no browser is downloaded. Set ``REFUNDS_UPDATE_SCREENSHOTS=1`` to refresh the
README's screenshots in ``docs/``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import temporal_cli
from tests.live_system import System, require_system, running_system

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("ui")) as system:
        yield system


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    require_system("Debian's chromium", Path(CHROMIUM).exists())
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_system("the playwright package", False)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        yield context
        context.close()


def frame_text(page: Any, needle: str, timeout: float = 30) -> str:
    """Text of the frame that shows ``needle``: the UI renders markdown in sandboxed iframes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for frame in page.frames:
            try:
                text = str(frame.inner_text("body", timeout=1000))
            except Exception:  # a frame may detach or not have a body yet
                continue
            if needle in text:
                return text
        page.wait_for_timeout(250)
    raise AssertionError(f"no frame shows {needle!r}")


def screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    target = DOCS if os.environ.get("REFUNDS_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(exist_ok=True)
    path = target / name
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000
    return path


def test_the_web_ui_shows_a_refund_in_review(system, browser, tmp_path):
    system.run("submit", "demo-auto", "--requester", "user-17", "--reason", "no_longer_needed")
    submitted = system.json(
        "submit", "demo-review", "--requester", "user-18", "--reason", "validation_stuck"
    )
    review = system.json("status", "refund-demo-review", "--wait")
    assert review["state"] == "validating_application"
    assert system.json("status", "refund-demo-auto", "--wait")["state"] == "refunded"

    page = browser.new_page()
    query = "RefundState%3D%22validating_application%22"
    page.goto(f"{system.ui}/namespaces/default/workflows?query={query}")
    page.get_by_text("refund-demo-review").first.wait_for(timeout=30_000)
    assert page.get_by_text("refund-demo-auto").count() == 0
    screenshot(page, "web-ui-review-queue.png", tmp_path)

    run_id = submitted["run_id"]
    page.goto(f"{system.ui}/namespaces/default/workflows/refund-demo-review/{run_id}/history")
    page.get_by_text("Refund of certificate demo-review").first.wait_for(timeout=30_000)
    page.get_by_text("load certificate demo-review").first.wait_for(timeout=30_000)
    page.get_by_text("User Metadata", exact=True).first.click()
    details = frame_text(page, "validating_application")
    assert "review deadline" in details
    assert "unissued-after-5-days" in details
    assert "alipay 199.00: pending" in details
    screenshot(page, "web-ui-refund.png", tmp_path)
    page.close()


def test_the_workflow_list_shows_finished_refunds_by_state(system, browser, tmp_path):
    page = browser.new_page()
    query = "RefundState%3D%22refunded%22"
    page.goto(f"{system.ui}/namespaces/default/workflows?query={query}")
    page.get_by_text("refund-demo-auto").first.wait_for(timeout=30_000)
    assert page.get_by_text("refund-demo-review").count() == 0
    screenshot(page, "web-ui-refunded.png", tmp_path)
    page.close()


def test_request_cancellation_in_the_web_ui_cancels_a_refund_in_review(system, browser):
    """The big button on a running refund's page: in review, it is a cancel."""
    system.run("submit", "demo-cancel", "--requester", "user-20", "--reason", "no_longer_needed")
    waiting = system.json("status", "refund-demo-cancel", "--wait")
    assert waiting["state"] == "validating_application"
    page = browser.new_page()
    page.goto(f"{system.ui}/namespaces/default/workflows/refund-demo-cancel")
    page.get_by_role("button", name="Request Cancellation").first.click(timeout=30_000)
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Confirm").click(timeout=10_000)
    deadline = time.monotonic() + 60
    while (status := system.json("status", "refund-demo-cancel"))["state"] != "cancelled":
        assert time.monotonic() < deadline, status["state"]
        time.sleep(0.3)
    page.close()
    [entry] = [
        a for a in status["audit"] if a["action"] == "cancellation requested through Temporal"
    ]
    assert entry["accepted"], entry
    assert entry["actor"] == "a Temporal client that sent no identity"  # the dev server's UI
    assert system.json("certificate", "demo-cancel")["certificate"]["status"] == "paid"


def test_history_is_ciphertext_and_the_web_ui_here_shows_it_decrypted(system, browser):
    """``refunds up`` encrypts with a local key; only the codec endpoint on loopback decrypts,
    for the Web UI on this machine."""
    phone = "13912345678"
    submitted = system.json(
        "submit",
        "demo-issued",
        "--requester",
        "user-19",
        "--reason",
        "install_failed",
        "--support-contact",
        phone,
    )
    assert system.json("status", "refund-demo-issued", "--wait")["state"] == (
        "validating_application"
    )
    key_file = system.workdir / "var" / "keys" / "encryption.keys"
    assert key_file.stat().st_mode & 0o777 == 0o600
    raw = subprocess.run(
        [
            *(temporal_cli(), "workflow", "show", "--address", system.temporal_address),
            *("--workflow-id", "refund-demo-issued", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "binary/encrypted"
        in base64.b64decode(
            json.loads(raw)["events"][0]["workflowExecutionStartedEventAttributes"]["input"][
                "payloads"
            ][0]["metadata"]["encoding"]
        ).decode()
    )
    assert phone not in raw and "install_failed" not in raw
    for stored in system.workdir.glob("temporal.db*"):  # the database and its write-ahead log
        assert phone.encode() not in stored.read_bytes(), stored.name

    page = browser.new_page()
    run_id = submitted["run_id"]
    page.goto(f"{system.ui}/namespaces/default/workflows/refund-demo-issued/{run_id}/history")
    assert phone in frame_text(page, phone)
    page.close()
