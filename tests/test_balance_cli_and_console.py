"""``refunds balance OWNER`` (table, JSON, one-line errors) and the account balance on the
customer's console pages: each customer sees their own balance and entries, no one else's."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from httpx import ASGITransport, AsyncClient

from console.app import create_app
from console.passwords import set_password
from domain.signatures import Role
from settings import Settings
from starter.cli import run
from starter.render import local_time
from storage.accounts import ConsoleAccounts
from storage.certificates import CertificateStore
from storage.journal import Journal
from tests.signing import enrol

PASSWORD = "correct horse battery"


@pytest.fixture
def journal(store: CertificateStore) -> Journal:
    """user-1: 30.00 CNY refunded and a 10.00 CNY refund reversed, 5.00 USD; user-2: 77.00 CNY."""
    journal = Journal(store.engine)
    journal.post_refund("refund-a:leg-0", "refund-a", "user-1", Decimal("30.00"), "CNY", "memo a")
    undone, _ = journal.post_refund(
        "refund-b:leg-0", "refund-b", "user-1", Decimal("10.00"), "CNY", "memo b"
    )
    journal.reverse(undone.entry_id, "fix-b", "posted in error")
    journal.post_refund("refund-c:leg-0", "refund-c", "user-1", Decimal("5.00"), "USD", "memo c")
    journal.post_refund("refund-x:leg-0", "refund-x", "user-2", Decimal("77.00"), "CNY", "memo x")
    return journal


def test_balance_json_has_the_owners_balances_and_entries_newest_first(journal, capsys):
    assert run(["balance", "user-1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["owner"] == "user-1"
    assert shown["balances"] == {"CNY": "30.00", "USD": "5.00"}
    entries = shown["entries"]
    assert [(e["kind"], e["refund_id"], e["amount"], e["currency"]) for e in entries] == [
        ("refund", "refund-c", "5.00", "USD"),
        ("reversal", "refund-b", "-10.00", "CNY"),
        ("refund", "refund-b", "10.00", "CNY"),
        ("refund", "refund-a", "30.00", "CNY"),
    ]
    assert entries[1]["memo"] == "posted in error"
    assert entries[1]["reverses"] == entries[2]["entry_id"]
    assert all(e["posted_at"].endswith("+00:00") for e in entries)
    assert shown["more_entries"] is False


def test_balance_table_shows_balances_and_entries_in_the_business_time_zone(journal, capsys):
    assert run(["balance", "user-1"]) == 0
    out = capsys.readouterr().out
    assert "account balance of user-1" in out
    assert re.search(r"CNY\s*│\s*30\.00", out) and re.search(r"USD\s*│\s*5\.00", out)
    first = journal.find("refund-a:leg-0")
    assert first is not None
    assert local_time(first.posted_at, ZoneInfo("Asia/Shanghai")) in out
    assert "CST" in out
    for text in ("memo a", "refund-a", "30.00 CNY", "-10.00 CNY", "5.00 USD"):
        assert text in out
    assert "refund-x" not in out and "77.00" not in out


def test_an_owner_with_nothing_has_no_balance(journal, capsys):
    assert run(["balance", "user-9", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {"owner": "user-9", "balances": {}, "entries": [], "more_entries": False}


@pytest.mark.parametrize(
    ("owner", "problem"),
    [
        ("user 1", "the owner id may hold only letters, digits, '.', '_', ':' and '-'"),
        ("u" * 65, "the owner id is longer than 64 characters"),
    ],
)
def test_a_bad_owner_id_is_one_line(database_url, capsys, owner, problem):
    assert run(["balance", owner]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"refunds: error: {problem}\n"
    assert captured.out == ""


@pytest.fixture
def browser(journal, store, database_url, tmp_path):
    """The console on the test's system of record, without Temporal (these pages need none)."""
    enrol(store.engine, {Role.CUSTOMER: ("user-1", "user-2"), Role.REVIEWER: ("rev-1",)})
    accounts = ConsoleAccounts(store.engine)
    for person_id in ("user-1", "user-2", "rev-1"):
        set_password(accounts, person_id, PASSWORD)
    settings = Settings(database_url=database_url, key_dir=tmp_path / "keys")
    app = create_app(settings, connect_temporal=False)

    def client(lang: str = "en") -> AsyncClient:
        return AsyncClient(
            transport=ASGITransport(app),
            base_url="http://127.0.0.1",
            headers={"accept-language": lang},
        )

    return client


async def signed_in(client: AsyncClient, person_id: str) -> AsyncClient:
    page = (await client.get("/sign-in")).text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    answer = await client.post(
        "/sign-in", data={"person_id": person_id, "password": PASSWORD, "csrf": found.group(1)}
    )
    assert answer.status_code == 303
    return client


def balances_of(page: str) -> list[str]:
    return re.findall(r'<li class="balance">([^<]+)</li>', page)


async def test_the_certificates_page_shows_the_customers_own_balance(browser):
    one = await signed_in(browser(), "user-1")
    page = (await one.get("/certificates")).text
    assert "Account balance" in page and 'href="/balance"' in page
    assert balances_of(page) == ["30.00 CNY", "5.00 USD"]
    assert "77.00" not in page
    two = await signed_in(browser(), "user-2")
    assert balances_of((await two.get("/certificates")).text) == ["77.00 CNY"]


async def test_the_balance_page_lists_only_the_customers_entries_in_chinese_too(browser):
    one = await signed_in(browser(), "user-1")
    page = (await one.get("/balance")).text
    assert balances_of(page) == ["30.00 CNY", "5.00 USD"]
    amounts = re.findall(r'<td class="amount">([^<]+)</td>', page)
    assert amounts == ["5.00 USD", "-10.00 CNY", "10.00 CNY", "30.00 CNY"]
    assert "Correction of an earlier entry" in page and 'href="/refunds/refund-a"' in page
    assert "refund-x" not in page and "77.00" not in page
    chinese = await signed_in(browser("zh-CN,zh;q=0.9"), "user-2")
    page = (await chinese.get("/balance")).text
    assert "账户余额" in page and "退款至账户余额" in page and "余额明细" in page
    assert re.findall(r'<td class="amount">([^<]+)</td>', page) == ["77.00 CNY"]
    assert "refund-a" not in page
    certificates = (await chinese.get("/certificates")).text
    assert "账户余额" in certificates and "查看余额明细" in certificates


async def test_the_balance_is_for_signed_in_customers_only(browser):
    assert (await browser().get("/balance")).status_code == 403
    reviewer = await signed_in(browser(), "rev-1")
    refused = await reviewer.get("/balance")
    assert refused.status_code == 403 and "77.00" not in refused.text
