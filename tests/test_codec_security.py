"""The codec server locked down: loopback unless a token guards it, a decode budget per client, a
log of who decoded which refunds (never the data), and a browser sign-in for the Web UI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf import json_format
from structlog.testing import capture_logs
from temporalio.api.common.v1 import Payload, Payloads

from codec import codec_from, new_key
from settings import get_settings
from starter import codec_server
from starter.cli import run
from starter.codec_server import DecodeBudget, codec_app, is_loopback
from starter.codec_sign_in import COOKIE, SESSION, session_cookie

TOKEN = "a-codec-token-long-enough-for-tests"
UI = "http://localhost:8080"
PHONE = "13800138000"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def codec():
    made = codec_from(f"k1:{new_key()}", None)
    assert made is not None
    return made


async def sealed_request() -> dict[str, object]:
    plain = Payload(
        metadata={"encoding": b"json/plain"},
        data=json.dumps({"certificate_id": "cas-9", "phone": PHONE}).encode(),
    )
    [sealed] = await CODEC.encode([plain])
    return json_format.MessageToDict(Payloads(payloads=[sealed]))


CODEC = codec()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("codec.example", False),
    ],
)
def test_only_loopback_addresses_count_as_this_machine(host, loopback):
    assert is_loopback(host) is loopback


def test_the_codec_server_refuses_to_listen_beyond_loopback_without_a_token(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("REFUNDS_ENCRYPTION_KEYS", f"k1:{new_key()}")
    monkeypatch.setenv("REFUNDS_KEY_DIR", str(tmp_path))
    monkeypatch.delenv("REFUNDS_CODEC_AUTH_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        assert run(["codec-server", "--host", "0.0.0.0"]) == 1
    finally:
        get_settings.cache_clear()
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "refunds: error: the codec server would decrypt for anyone who reaches 0.0.0.0: "
        "set REFUNDS_CODEC_AUTH_TOKEN, or listen on 127.0.0.1"
    )


def test_a_short_or_sample_token_is_refused(monkeypatch, capsys):
    for token in ("s3cret", "REPLACE_WITH_A_LONG_RANDOM_TOKEN"):
        monkeypatch.setenv("REFUNDS_CODEC_AUTH_TOKEN", token)
        get_settings.cache_clear()
        try:
            assert run(["codec-server"]) == 1
        finally:
            get_settings.cache_clear()
        err = capsys.readouterr().err
        assert "REFUNDS_CODEC_AUTH_TOKEN: must be a random token of at least 24" in err


async def test_each_client_has_a_decode_budget():
    clock = Clock()
    app = codec_app(CODEC, [UI], TOKEN, rate_per_minute=3, clock=clock)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(app)) as http:
        for _ in range(3):
            assert (await http.post("/decode", json={"payloads": []}, headers=auth)).status == 200
        refused = await http.post("/decode", json={"payloads": []}, headers=auth)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "1"
        assert await refused.json() == {"error": "too many requests"}
        clock.now += 20  # a third of a minute: one more request
        assert (await http.post("/decode", json={"payloads": []}, headers=auth)).status == 200
        assert (await http.post("/decode", json={"payloads": []}, headers=auth)).status == 429


async def test_a_decode_is_logged_with_who_and_which_certificate_never_the_data():
    app = codec_app(CODEC, [UI], TOKEN)
    async with TestClient(TestServer(app)) as http:
        with capture_logs() as logs:
            answer = await http.post(
                "/decode",
                json=await sealed_request(),
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert answer.status == 200
            refused = await http.post("/decode", json={"payloads": []})
            assert refused.status == 401
    decoded = [e for e in logs if e["event"] == "payloads decoded"]
    assert decoded == [
        {
            "event": "payloads decoded",
            "log_level": "info",
            "client": "127.0.0.1",
            "authenticated": True,
            "payloads": 1,
            "refunds": [],
            "certificates": ["cas-9"],
        }
    ]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["codec request refused"]
    assert PHONE not in repr(logs)


async def test_a_browser_signs_in_once_and_its_cookie_decodes_until_it_expires():
    wall = Clock()
    app = codec_app(CODEC, [UI], TOKEN, wall_clock=wall)
    async with TestClient(TestServer(app)) as http:
        form = await http.get("/sign-in")
        assert form.status == 200
        assert '<label for="token">Codec token</label>' in await form.text()
        wrong = await http.post("/sign-in", data={"token": "not-the-token"})
        assert wrong.status == 401
        assert COOKIE not in wrong.cookies
        assert (await http.post("/decode", json={"payloads": []})).status == 401

        signed = await http.post("/sign-in", data={"token": TOKEN})
        assert signed.status == 200
        cookie = signed.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert (await http.post("/decode", json={"payloads": []})).status == 200

        wall.now += SESSION.total_seconds() + 1
        assert (await http.post("/decode", json={"payloads": []})).status == 401


@pytest.mark.parametrize(
    "cookie",
    [
        session_cookie("another-token-of-some-length", 1_000_000),
        session_cookie(TOKEN, 1_000_000 + 60),  # issued in the future
        session_cookie(TOKEN, 1_000_000)[:-1] + "0",
        "1000000.",
        "not-a-cookie",
        "\uff11\uff10\uff10\uff10.abc",  # full-width digits
        "",
    ],
)
async def test_a_forged_or_malformed_cookie_is_refused(cookie):
    app = codec_app(CODEC, [UI], TOKEN, wall_clock=Clock())
    async with TestClient(TestServer(app), cookies={COOKIE: cookie}) as http:
        answer = await http.post("/decode", json={"payloads": []})
    assert answer.status == 401


async def test_a_valid_cookie_decodes():
    app = codec_app(CODEC, [UI], TOKEN, wall_clock=Clock())
    fresh = session_cookie(TOKEN, 1_000_000 - int(timedelta(hours=1).total_seconds()))
    async with TestClient(TestServer(app), cookies={COOKIE: fresh}) as http:
        assert (await http.post("/decode", json={"payloads": []})).status == 200


async def test_a_loopback_endpoint_answers_only_requests_addressed_to_this_machine():
    app = codec_app(CODEC, [UI], None, hosts=["127.0.0.1:8081", "localhost:8081"])
    async with TestClient(TestServer(app)) as http:
        for host, status in [("127.0.0.1:8081", 200), ("evil.example:8081", 421)]:
            answer = await http.post("/decode", json={"payloads": []}, headers={"Host": host})
            assert answer.status == status, host


async def test_bodies_that_are_not_payloads_are_400_and_odd_payloads_still_decode():
    app = codec_app(CODEC, [UI], TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(app)) as http:
        for body in ("null", "[]", '"x"', "{"):
            answer = await http.post("/decode", data=body, headers=auth)
            assert answer.status == 400, body
        nested = Payload(metadata={"encoding": b"json/plain"}, data=b"[" * 100_000)
        [sealed] = await CODEC.encode([nested])
        answer = await http.post(
            "/decode", json=json_format.MessageToDict(Payloads(payloads=[sealed])), headers=auth
        )
        assert answer.status == 200


def test_many_client_addresses_cannot_grow_the_budget_without_bound(monkeypatch):
    monkeypatch.setattr(codec_server, "MAX_CLIENTS", 3)
    clock = Clock(0)
    budget = DecodeBudget(2, clock)
    for client in ("a", "b", "c"):
        assert budget.take(client)
    clock.now = 30
    assert budget.take("a") and budget.take("a") and not budget.take("a")
    clock.now = 61  # b and c idle for a minute: full again, as a new client's bucket is
    assert budget.take("d")
    assert sorted(budget._left) == ["a", "d"]
    assert budget.take("a") and not budget.take("a")  # a is still held to what it spent
