"""The refund console in headless Chromium on a real ``refunds up``: customers and a reviewer
sign in with the demo accounts it printed and go through the seed's procedure.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` Python package. Set
``REFUNDS_UPDATE_SCREENSHOTS=1`` to refresh the screenshots in ``docs/console/``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.factories import certificate
from tests.live_system import System, require_system, running_system
from tests.test_web_ui import CHROMIUM, CHROMIUM_ARGS

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("console")) as system:
        yield system


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_system("Debian's chromium", Path(CHROMIUM).exists())
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_system("the playwright package", False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def console_address(system: System) -> str:
    found = re.search(r"Refund console: (\S+)", system.banner)
    assert found, system.banner
    return found.group(1).rstrip("/")


def passwords(system: System) -> dict[str, str]:
    """The demo accounts ``refunds up --seed-demo`` printed once."""
    return dict(
        re.findall(r"^\s+(\S+)\s+(?:customer|reviewer|operator)\s+(\S+)$", system.banner, re.M)
    )


def person(chromium: Any, system: System, person_id: str, width: int = 1280) -> Any:
    """A page signed in as ``person_id`` in a browser context of its own."""
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(console_address(system) + "/")
    page.get_by_label("Your id").fill(person_id)
    page.get_by_label("Password").fill(passwords(system)[person_id])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def shot(page: Any, name: str, tmp_path: Path) -> None:
    target = SCREENSHOTS if os.environ.get("REFUNDS_UPDATE_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=True)
    assert (target / name).stat().st_size > 5_000


def wait_for_state(page: Any, label: str) -> None:
    page.locator(".state", has_text=label).wait_for(timeout=30_000)


def test_up_prints_the_console_and_the_demo_accounts(system):
    accounts = passwords(system)
    assert {"user-17", "user-19", "rev-1", "operator-1"} <= set(accounts)
    assert all(len(password) >= 10 for password in accounts.values())


def test_a_customer_asks_within_five_days_and_sees_it_refunded(system, chromium, tmp_path):
    page = person(chromium, system, "user-17")
    assert page.url.endswith("/certificates")
    shot(page, "certificates.png", tmp_path)
    page.get_by_role("row", name=re.compile("demo-auto")).get_by_role(
        "link", name="Refund", exact=True
    ).click()
    page.get_by_label("I no longer need the certificate.").check()
    assert "to Alipay" in page.locator("#preview").inner_text()
    assert "immediately" in page.locator("#preview").inner_text()
    shot(page, "refund-application.png", tmp_path)
    page.get_by_role("button", name="OK").click()
    wait_for_state(page, "Refunded")
    shot(page, "refund-refunded.png", tmp_path)
    page.goto(console_address(system) + "/refunds?show=refunded")
    assert "demo-auto" in page.locator("main").inner_text()


def test_a_reviewer_approves_and_the_customer_sees_the_legs(system, chromium, tmp_path):
    customer = person(chromium, system, "user-19")
    customer.goto(console_address(system) + "/certificates/demo-issued/refund")
    customer.get_by_label(re.compile("I failed to apply for or install")).check()
    customer.get_by_label(re.compile("Want technical support")).fill("13800138000")
    customer.get_by_role("button", name="OK").click()
    wait_for_state(customer, "Validating Application")
    reviewer = person(chromium, system, "rev-1")
    assert reviewer.url.endswith("/reviews")
    reviewer.reload()
    shot(reviewer, "review-desk.png", tmp_path)
    reviewer.get_by_role("link", name="demo-issued").click()
    assert "install the certificate" in reviewer.locator("main").inner_text()
    shot(reviewer, "review.png", tmp_path)
    reviewer.get_by_label("Note (optional)").first.fill("logs confirm the failure")
    reviewer.get_by_role("button", name="Approve").click()
    assert "approve accepted" in reviewer.get_by_role("status").inner_text()
    wait_for_state(customer, "Refunded")  # the customer's page refreshes itself (htmx)
    legs = customer.locator("table").inner_text()
    assert "online bank account\t1200.00 CNY\treturned" in legs
    assert "account balance\t300.50 CNY\treturned" in legs


def test_a_customer_cancels_while_validating_application(system, chromium, tmp_path):
    page = person(chromium, system, "user-18", width=390)  # a phone
    page.goto(console_address(system) + "/certificates/demo-review/refund")
    page.get_by_role("radio", name="Other").check()
    page.get_by_label(re.compile("Feedback or suggestions")).fill("bought the wrong product")
    page.get_by_role("button", name="OK").click()
    wait_for_state(page, "Validating Application")
    shot(page, "refund-validating-phone.png", tmp_path)
    page.get_by_role("button", name="Cancel refund").click()
    wait_for_state(page, "Cancelled")


def test_strangers_other_customers_and_forged_forms_are_refused(system, chromium):
    address = console_address(system)
    visitor = chromium.new_context().new_page()
    assert visitor.goto(address + "/refunds/refund-demo-auto").status == 403
    other = person(chromium, system, "user-20")
    assert other.goto(address + "/refunds/refund-demo-auto").status == 403
    forged = other.request.post(
        address + "/certificates/demo-cancel/refund", form={"reason": "no_longer_needed"}
    )
    assert forged.status == 403
    assert "refund-demo-cancel" not in other.goto(address + "/refunds").text()


def test_a_reviewer_cannot_approve_their_own_request(system, chromium, tmp_path):
    bought = datetime.now(UTC) - timedelta(days=10)
    own = certificate("demo-own", purchased_at=bought, owner="rev-2")
    seed = tmp_path / "own.json"
    seed.write_text(json.dumps([own.model_dump(mode="json", exclude={"held_by", "released_by"})]))
    system.run("seed", str(seed))
    system.run("submit", "demo-own", "--requester", "rev-2", "--reason", "no_longer_needed")
    assert system.json("status", "refund-demo-own", "--wait")["state"] == "validating_application"
    page = person(chromium, system, "rev-2")
    page.goto(console_address(system) + "/reviews/refund-demo-own")
    assert "This is your own request" in page.locator("main").inner_text()
    page.get_by_role("button", name="Approve").click()
    assert "refused: reviewers may not review their own request" in (
        page.get_by_role("status").inner_text()
    )
    assert system.json("status", "refund-demo-own")["state"] == "validating_application"
