"""The console over HTTP, on the real dev server and worker: sign-in, sessions, CSRF, lockout,
who may see what, and the customer's pages acting through the workflow as the signed-in person."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from httpx import ASGITransport, AsyncClient

from console.app import create_app
from console.passwords import WRONG, set_password
from starter.client import RefundClient
from storage.accounts import MAX_FAILURES, ConsoleAccounts
from storage.people import PeopleDirectory
from tests.factories import BANK_REFUSES, certificate, refused_by_bank
from tests.harness import Harness
from tests.signing import CAST, key_of

PASSWORD = "correct horse battery"


def write_keys(folder, person_ids) -> None:
    """The test cast's keys on disk, where the console signs with them."""
    (folder / "people").mkdir(parents=True, exist_ok=True)
    for person_id in person_ids:
        pem = key_of(person_id).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        path = folder / "people" / f"{person_id}.pem"
        path.write_bytes(pem)
        path.chmod(0o600)


@pytest.fixture
def browser_session(harness: Harness, tmp_path):
    """A console on the harness's system of record and Temporal, as its signed-in users see it."""
    settings = harness.settings.model_copy(
        update={"key_dir": tmp_path / "keys", "task_queue": harness.task_queue}
    )
    write_keys(settings.key_dir, [p for ids in CAST.values() for p in ids])
    accounts = ConsoleAccounts(harness.store.engine)
    for person_id in ("user-1", "user-2", "rev-1", "operator-1"):
        set_password(accounts, person_id, PASSWORD)
    app = create_app(settings, connect_temporal=False)
    app.state.console.refunds = RefundClient(harness.env.client, settings)

    def client() -> AsyncClient:
        # In the test's own event loop, where the worker answers the console's queries.
        return AsyncClient(transport=ASGITransport(app), base_url="http://127.0.0.1")

    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def signed_in(client: AsyncClient, person_id: str, password: str = PASSWORD):
    token = csrf((await client.get("/sign-in")).text)
    return await client.post(
        "/sign-in", data={"person_id": person_id, "password": password, "csrf": token}
    )


def now() -> datetime:
    return datetime.now(UTC)


async def test_sign_in_lands_on_the_persons_home_and_sign_out_ends_it(browser_session):
    client = browser_session()
    assert (await client.get("/")).headers["location"] == "/sign-in"
    answer = await signed_in(client, "user-1")
    assert answer.status_code == 303 and answer.headers["location"] == "/certificates"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = (await client.get("/certificates")).text
    await client.post("/sign-out", data={"csrf": csrf(page)})
    assert (await client.get("/certificates")).status_code == 403
    reviewer = browser_session()
    assert (await signed_in(reviewer, "rev-1")).headers["location"] == "/reviews"


async def test_a_wrong_password_tells_nothing_and_repeated_failures_lock(browser_session, harness):
    client = browser_session()
    answers = [
        await signed_in(client, person_id, "wrong password!") for person_id in ("nobody", "user-1")
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].text == answers[1].text and WRONG.split(",")[0] in answers[0].text
    for _ in range(MAX_FAILURES - 1):
        await signed_in(client, "user-1", "wrong password!")
    locked = ConsoleAccounts(harness.store.engine).account("user-1")
    assert locked is not None and locked.locked_until is not None
    assert locked.locked_until - now() > timedelta(minutes=14)
    refused = await signed_in(client, "user-1")  # even the right password, while locked
    assert refused.status_code == 401 and refused.text == answers[0].text


async def test_a_sign_out_ends_every_copy_of_the_session(browser_session):
    client = browser_session()
    await signed_in(client, "user-1")
    copy = browser_session()
    copy.cookies = client.cookies
    assert (await copy.get("/certificates")).status_code == 200
    page = (await client.get("/certificates")).text
    await client.post("/sign-out", data={"csrf": csrf(page)})
    assert (await copy.get("/certificates")).status_code == 403


async def test_a_form_without_its_csrf_token_is_refused(browser_session, harness):
    client = browser_session()
    answer = await client.post("/sign-in", data={"person_id": "user-1", "password": PASSWORD})
    assert answer.status_code == 403
    await signed_in(client, "user-1")
    harness.store.seed([certificate("con-csrf", purchased_at=now() - timedelta(days=1))])
    refused = await client.post(
        "/certificates/con-csrf/refund", data={"reason": "no_longer_needed", "csrf": "forged"}
    )
    assert refused.status_code == 403
    assert harness.store.get("con-csrf").status.value == "paid"


async def test_a_signed_out_visitor_and_another_customer_get_403(browser_session, harness):
    harness.store.seed([certificate("con-other", purchased_at=now() - timedelta(days=10))])
    owner = browser_session()
    await signed_in(owner, "user-1")
    page = (await owner.get("/certificates/con-other/refund")).text
    answer = await owner.post(
        "/certificates/con-other/refund",
        data={"reason": "no_longer_needed", "csrf": csrf(page)},
    )
    refund_page = answer.headers["location"]
    assert refund_page == "/refunds/refund-con-other"
    assert (await browser_session().get(refund_page)).status_code == 403
    other = browser_session()
    await signed_in(other, "user-2")
    seen = await other.get(refund_page)
    assert seen.status_code == 403, seen.text[-600:]
    assert (await other.get("/certificates/con-other/refund")).status_code == 403


async def test_the_refund_button_follows_the_seed(browser_session, harness):
    harness.store.seed(
        [
            certificate("con-new", purchased_at=now() - timedelta(days=2)),
            certificate(
                "con-30", purchased_at=now() - timedelta(days=30), issued_at=now() - timedelta(30)
            ),
            certificate(
                "con-31", purchased_at=now() - timedelta(days=40), issued_at=now() - timedelta(31)
            ),
        ]
    )
    client = browser_session()
    await signed_in(client, "user-1")
    page = (await client.get("/certificates")).text
    assert 'href="/certificates/con-new/refund"' in page
    assert 'href="/certificates/con-30/refund"' in page
    assert 'href="/certificates/con-31/refund"' not in page
    preview = (await client.get("/certificates/con-new/refund")).text
    assert "refund of 199.00 CNY to Alipay, immediately" in preview
    assert (
        "not refundable: issued 30 calendar days ago"
        in (await client.get("/certificates/con-30/refund")).text
    )


async def test_a_customer_applies_sees_it_refunded_and_cancels_another(browser_session, harness):
    harness.store.seed(
        [
            certificate("con-auto", purchased_at=now() - timedelta(days=1)),
            certificate("con-review", purchased_at=now() - timedelta(days=10)),
        ]
    )
    client = browser_session()
    await signed_in(client, "user-1")
    bad = await client.post(
        "/certificates/con-auto/refund",
        data={
            "reason": "other",
            "feedback": " ",
            "csrf": csrf((await client.get("/certificates")).text),
        },
    )
    assert bad.status_code == 422 and "reason &#39;other&#39; needs feedback text" in bad.text
    token = csrf(bad.text)
    done = await client.post(
        "/certificates/con-auto/refund", data={"reason": "no_longer_needed", "csrf": token}
    )
    refund = await harness.result(harness.handle("refund-con-auto"))
    assert refund.state.value == "refunded"
    page = (await client.get(done.headers["location"])).text
    assert 'data-state="refunded"' in page and "Alipay" in page and "199.00 CNY" in page
    await client.post(
        "/certificates/con-review/refund",
        data={
            "reason": "install_failed",
            "support_contact": "13800138000",
            "csrf": token,
        },
    )
    await harness.in_state(harness.handle("refund-con-review"), "validating_application")
    waiting = (await client.get("/refunds/refund-con-review")).text
    assert "Cancel refund" in waiting and "Validating Application" in waiting
    assert "13800138000" not in waiting  # the contact is for the reviewer
    reviewer = browser_session()
    await signed_in(reviewer, "rev-1")
    assert "mobile 13800138000" in (await reviewer.get("/reviews/refund-con-review")).text
    await client.post("/refunds/refund-con-review/cancel", data={"csrf": token})
    cancelled = await harness.result(harness.handle("refund-con-review"))
    assert cancelled.state.value == "cancelled"
    assert ("user-1", "cancel (update)", True) in [
        (e.actor, e.action, e.accepted) for e in cancelled.audit
    ]
    listed = (await client.get("/refunds?show=refunded")).text
    assert "con-auto" in listed and "con-review" not in listed


async def test_the_reviewer_desk_decides_and_refuses_a_reviewers_own_request(
    browser_session, harness
):
    harness.store.seed(
        [
            certificate("con-desk", purchased_at=now() - timedelta(days=10)),
            certificate("con-own", purchased_at=now() - timedelta(days=10), owner="rev-1"),
        ]
    )
    for cert_id in ("con-desk", "con-own"):
        handle = await harness.submit(harness.store.get(cert_id))
        await harness.in_state(handle, "validating_application")
    desk = browser_session()
    await signed_in(desk, "rev-1")
    queue = (await desk.get("/reviews")).text
    assert queue.index("con-desk") > 0 and "con-own" in queue
    assert "con-desk" not in (await desk.get("/reviews?reason=other")).text
    assert re.search(r"\d+ in review in all", queue)
    mangled = await desk.get("/reviews?after=not-a-cursor")  # a hand-edited link: the first page
    assert mangled.status_code == 200 and "con-desk" in mangled.text
    [own_id] = re.findall(r'href="/reviews/(refund-con-own[^"]*)"', queue)
    own = (await desk.get(f"/reviews/{own_id}")).text
    assert "This is your own request" in own
    answer = await desk.post(f"/reviews/{own_id}/approve", data={"csrf": csrf(own)})
    flashed = (await desk.get(answer.headers["location"])).text
    assert "refused: reviewers may not review their own request" in flashed
    [desk_id] = re.findall(r'href="/reviews/(refund-con-desk[^"]*)"', queue)
    page = (await desk.get(f"/reviews/{desk_id}")).text
    await desk.post(f"/reviews/{desk_id}/reject", data={"reason": "in use", "csrf": csrf(page)})
    rejected = await harness.result(harness.handle(desk_id))
    assert rejected.state.value == "rejected" and rejected.rejection_reason == "in use"
    assert ("rev-1", "reject (update)", True) in [
        (e.actor, e.action, e.accepted) for e in rejected.audit
    ]
    customer = browser_session()
    await signed_in(customer, "user-1")
    assert (await customer.get("/reviews")).status_code == 403


async def test_the_console_speaks_the_browsers_language(browser_session, harness):
    client = browser_session()
    chinese = (await client.get("/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text
    assert '<html lang="zh-CN">' in chinese and "登录" in chinese
    english = (await client.get("/sign-in", headers={"Accept-Language": "fr-FR,en;q=0.5"})).text
    assert '<html lang="en">' in english and "Sign in" in english
    harness.store.seed([certificate("con-zh", purchased_at=now() - timedelta(days=2))])
    await signed_in(client, "user-1")
    form = (await client.get("/certificates/con-zh/refund", headers={"Accept-Language": "zh"})).text
    assert "不再需要该证书。" in form and "退款申请" in form


async def test_an_operator_resolves_what_needs_attention(browser_session, harness):
    async with harness.worker_with(fault_reject=[BANK_REFUSES]):
        cert = refused_by_bank("con-attention", now() - timedelta(days=1))
        handle = await harness.submit(cert)
        await harness.in_state(handle, "needs_attention")
        operator = browser_session()
        assert (await signed_in(operator, "operator-1")).headers["location"] == "/attention"
        page = (await operator.get("/attention")).text
        assert handle.id in page and "Resolve" in page
        refused = await operator.post(
            f"/attention/{handle.id}/resolve", data={"note": " ", "csrf": csrf(page)}
        )
        flashed = (await operator.get(refused.headers["location"])).text
        assert "refused: say what was done: a manual resolution needs a note" in flashed
        await operator.post(
            f"/attention/{handle.id}/resolve",
            data={"note": "paid by wire transfer", "csrf": csrf(page)},
        )
        done = await harness.result(handle)
    assert done.state.value == "refunded" and done.legs[0].status.value == "returned_manually"


async def test_someone_removed_from_the_directory_is_signed_out_at_once(browser_session, harness):
    client = browser_session()
    await signed_in(client, "user-2")
    assert (await client.get("/certificates")).status_code == 200
    PeopleDirectory(harness.store.engine).remove("user-2")
    assert (await client.get("/certificates")).status_code == 403
    assert (await client.get("/")).headers["location"] == "/sign-in"
