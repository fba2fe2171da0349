"""The Alipay channel over OpenAPI against the local Alipay gateway on a loopback port: a refund
moves money once whatever the network does, nothing unsigned is believed, each refusal is told
apart, and the gateway holds requests to Alipay's rules."""

from __future__ import annotations

import base64
import json
import re
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import activities.alipay as alipay_module
from activities.alipay import BEIJING, QUERY, REFUND, AlipayChannel, yuan
from activities.alipay_signing import (
    RawAnswer,
    load_private_key,
    load_public_key,
    new_private_key,
    sign,
    sign_content,
    sign_params,
    signed_body,
    split_response,
    verify,
)
from activities.gateways import (
    ChannelOutcome,
    ChannelRefund,
    ChannelUnknownError,
    PaymentChannel,
)
from activities.secret_files import SecretFileError
from domain.certificates import Channel
from settings import Settings
from simulators.alipay import (
    AlipaySimulator,
    ensure_local_alipay_keys,
    serve_alipay,
    trade_no,
)
from simulators.faults import ProtocolFaults
from simulators.known_payments import payments_of
from tests.factories import certificate, shanghai

APP_ID = "2021000000000001"
URL = "http://alipay.test/gateway.do"
TOTAL = Decimal("199.00")


@dataclass(frozen=True)
class Keys:
    app: rsa.RSAPrivateKey
    alipay: rsa.RSAPrivateKey
    other: rsa.RSAPrivateKey


@dataclass
class Gateway:
    simulator: AlipaySimulator
    url: str
    faults: ProtocolFaults


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(new_private_key(), new_private_key(), new_private_key())


@pytest.fixture
def seeded(store):
    store.seed(
        [
            certificate(
                "cas-ali",
                purchased_at=shanghai(2024, 5, 1),
                payments=[
                    {"channel": "alipay", "amount": "199.00", "reference": "ali-1"},
                    {"channel": "alipay", "amount": "100.00", "reference": "ali-2"},
                ],
            )
        ]
    )
    return store


@pytest.fixture
async def gateway(seeded, keys, tmp_path) -> AsyncIterator[Gateway]:
    faults = ProtocolFaults()
    simulator = AlipaySimulator(
        tmp_path / "alipay.db",
        APP_ID,
        keys.app.public_key(),
        keys.alipay,
        payments_of(seeded.engine, Channel.ALIPAY),
        faults,
        lose_answer="late",
        late_seconds=1.0,
        wrong_key=keys.other,
    )
    runner = await serve_alipay(simulator, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        yield Gateway(simulator, f"http://{host}:{port}/gateway.do", faults)
    finally:
        await runner.cleanup()
        simulator.ledger.dispose()


def make_channel(url: str, keys: Keys, *, app_key=None, timeout=5.0, client=None, clock=None):
    return AlipayChannel(
        url,
        APP_ID,
        app_key or keys.app,
        keys.alipay.public_key(),
        timeout=timeout,
        client=client,
        clock=clock,
    )


@pytest.fixture
async def channel(gateway, keys) -> AsyncIterator[AlipayChannel]:
    made = make_channel(gateway.url, keys)
    yield made
    await made.aclose()


def order(
    channel: AlipayChannel,
    amount: str = "199.00",
    *,
    leg: int = 1,
    reference: str = "ali-1",
    currency: str = "CNY",
    request_id: str | None = None,
) -> ChannelRefund:
    key = f"refund-cas-ali:leg-{leg}"
    return ChannelRefund(
        idempotency_key=key,
        request_id=request_id or channel.request_id(key),
        reference=reference,
        amount=Decimal(amount),
        currency=currency,
        owner="user-1",
    )


def amounts(gateway: Gateway) -> list[tuple[str, str, Decimal]]:
    return [(r.out_trade_no, r.out_request_no, r.amount) for r in gateway.simulator.refunds()]


# The money moves once


async def test_a_refund_returns_once_with_alipays_transaction(gateway, channel):
    leg = order(channel)
    answer = await channel.refund(leg)
    assert answer.outcome is ChannelOutcome.RETURNED
    assert answer.transaction_id == f"{trade_no('ali-1')}/{leg.request_id}"
    assert answer.at is not None and answer.at.utcoffset() == timedelta(hours=8)
    assert abs(answer.at - datetime.now(UTC)) < timedelta(minutes=1)
    assert amounts(gateway) == [("ali-1", leg.request_id, TOTAL)]


async def test_the_same_request_again_moves_nothing_and_a_lookup_says_returned(gateway, channel):
    leg = order(channel, "50.00")
    first = await channel.refund(leg)
    with pytest.raises(ChannelUnknownError) as unknown:
        await channel.refund(leg)
    assert unknown.value.retry_after == 10
    found = await channel.lookup(leg)
    assert found is not None and found.outcome is ChannelOutcome.RETURNED
    assert found.transaction_id == first.transaction_id
    assert found.at == first.at
    assert amounts(gateway) == [("ali-1", leg.request_id, Decimal("50.00"))]


@pytest.mark.parametrize("lose", ["late", "drop"])
async def test_an_answer_lost_after_the_money_moved_is_unknown_then_found(gateway, keys, lose):
    gateway.simulator.lose_answer = lose
    impatient = make_channel(gateway.url, keys, timeout=0.3)
    try:
        leg = order(impatient)
        gateway.faults.script("lose_answer")
        with pytest.raises(ChannelUnknownError):
            await impatient.refund(leg)
        assert amounts(gateway) == [("ali-1", leg.request_id, TOTAL)]
        found = await impatient.lookup(leg)
        assert found is not None and found.outcome is ChannelOutcome.RETURNED
        assert amounts(gateway) == [("ali-1", leg.request_id, TOTAL)]
    finally:
        await impatient.aclose()


async def test_a_failure_before_the_effect_refunds_nothing_and_the_lookup_finds_nothing(
    gateway, channel
):
    leg = order(channel)
    gateway.faults.script("fail_before")
    with pytest.raises(ChannelUnknownError, match="HTTP 502"):
        await channel.refund(leg)
    gateway.simulator.fail_before = "system_error"
    gateway.faults.script("fail_before")
    with pytest.raises(ChannelUnknownError, match=r"ACQ\.SYSTEM_ERROR"):
        await channel.refund(leg)
    assert amounts(gateway) == []
    assert await channel.lookup(leg) is None
    assert (await channel.refund(leg)).outcome is ChannelOutcome.RETURNED
    assert len(amounts(gateway)) == 1


async def test_a_success_with_a_bad_signature_is_not_believed(gateway, channel):
    leg = order(channel)
    gateway.faults.script("bad_signature")
    with pytest.raises(ChannelUnknownError, match="not signed"):
        await channel.refund(leg)
    assert amounts(gateway) == [("ali-1", leg.request_id, TOTAL)]
    gateway.faults.script("bad_signature")
    with pytest.raises(ChannelUnknownError):
        await channel.lookup(leg)
    found = await channel.lookup(leg)
    assert found is not None and found.outcome is ChannelOutcome.RETURNED


async def test_a_refusal_with_a_bad_signature_is_not_believed(gateway, channel):
    gateway.faults.script("bad_signature")
    with pytest.raises(ChannelUnknownError):
        await channel.refund(order(channel, reference="ali-none"))
    refused = await channel.refund(order(channel, reference="ali-none"))
    assert refused.code == "ACQ.TRADE_NOT_EXIST"


async def test_the_gateway_remembers_its_refunds_across_restarts(
    gateway, channel, seeded, keys, tmp_path
):
    leg = order(channel)
    await channel.refund(leg)
    again = AlipaySimulator(
        tmp_path / "alipay.db",
        APP_ID,
        keys.app.public_key(),
        keys.alipay,
        payments_of(seeded.engine, Channel.ALIPAY),
    )
    runner = await serve_alipay(again, "127.0.0.1", 0)
    restarted = make_channel(f"http://127.0.0.1:{runner.addresses[0][1]}/gateway.do", keys)
    try:
        assert [r.out_request_no for r in again.refunds()] == [leg.request_id]
        with pytest.raises(ChannelUnknownError):
            await restarted.refund(leg)
        found = await restarted.lookup(leg)
        assert found is not None and found.outcome is ChannelOutcome.RETURNED
        assert len(again.refunds()) == 1
    finally:
        await restarted.aclose()
        await runner.cleanup()
        again.ledger.dispose()


# Refusals, each told apart


async def test_a_trade_alipay_does_not_know_is_refused(gateway, channel):
    answer = await channel.refund(order(channel, reference="ali-none"))
    assert (answer.outcome, answer.code, answer.attention) == (
        ChannelOutcome.REFUSED,
        "ACQ.TRADE_NOT_EXIST",
        False,
    )
    assert "no trade" in answer.reason and "交易不存在" in answer.reason
    assert await channel.lookup(order(channel, reference="ali-none")) is None


async def test_a_trade_alipay_will_not_refund_is_refused_with_its_code(gateway, channel):
    gateway.faults.refused["ali-1"] = ""
    answer = await channel.refund(order(channel))
    assert (answer.outcome, answer.code) == (ChannelOutcome.REFUSED, "ACQ.TRADE_NOT_ALLOW_REFUND")
    gateway.faults.refused["ali-1"] = "ACQ.TRADE_HAS_FINISHED"
    answer = await channel.refund(order(channel))
    assert answer.code == "ACQ.TRADE_HAS_FINISHED" and "finished" in answer.reason
    assert amounts(gateway) == []


async def test_more_than_is_left_on_the_trade_is_refused_for_a_person_to_look(gateway, channel):
    """The trade may have been refunded outside this engine: never a reason to pay elsewhere."""
    assert (await channel.refund(order(channel, "150.00"))).outcome is ChannelOutcome.RETURNED
    answer = await channel.refund(order(channel, "49.01", leg=2))
    assert (answer.outcome, answer.code, answer.attention) == (
        ChannelOutcome.REFUSED,
        "ACQ.REASON_TRADE_REFUND_FEE_ERR",
        True,
    )
    assert "refunded outside this engine" in answer.reason
    assert (await channel.refund(order(channel, "49.00", leg=3))).outcome is (
        ChannelOutcome.RETURNED
    )
    assert sum(a for _, _, a in amounts(gateway)) == TOTAL


@pytest.mark.parametrize(
    "leg_kwargs",
    [{"amount": "0.00"}, {"request_id": "R" * 65}, {"request_id": "RF-not/allowed"}],
)
async def test_an_invalid_parameter_is_refused(gateway, channel, leg_kwargs):
    answer = await channel.refund(order(channel, **leg_kwargs))
    assert (answer.outcome, answer.code) == (ChannelOutcome.REFUSED, "ACQ.INVALID_PARAMETER")
    assert "参数无效" in answer.reason
    assert amounts(gateway) == []


async def test_a_request_signed_with_another_key_is_refused_as_invalid_signature(gateway, keys):
    wrong = make_channel(gateway.url, keys, app_key=keys.other)
    try:
        answer = await wrong.refund(order(wrong))
    finally:
        await wrong.aclose()
    assert (answer.outcome, answer.code) == (ChannelOutcome.REFUSED, "isv.invalid-signature")
    assert "app private key" in answer.reason
    assert amounts(gateway) == []


async def test_a_short_merchant_balance_needs_attention_and_the_retry_reuses_the_number(
    gateway, channel
):
    leg = order(channel)
    for code in ("ACQ.SELLER_BALANCE_NOT_ENOUGH", "ACQ.REASON_TRADE_BEEN_FREEZEN"):
        gateway.faults.refused["ali-1"] = code
        answer = await channel.refund(leg)
        assert (answer.outcome, answer.code, answer.attention) == (
            ChannelOutcome.REFUSED,
            code,
            True,
        )
        assert "top up the merchant account, then retry" in answer.reason
    del gateway.faults.refused["ali-1"]
    assert (await channel.refund(leg)).outcome is ChannelOutcome.RETURNED
    assert amounts(gateway) == [("ali-1", leg.request_id, TOTAL)]


async def test_a_discordant_repeat_is_looked_up_and_an_amount_that_differs_is_unknown(
    gateway, channel
):
    first = order(channel, "50.00")
    await channel.refund(first)
    with pytest.raises(ChannelUnknownError, match="another amount"):
        await channel.refund(order(channel, "60.00"))
    assert amounts(gateway) == [("ali-1", first.request_id, Decimal("50.00"))]


# What the client believes of an answer (a scripted Alipay)


def scripted(*replies: Any, seen: list[httpx.Request] | None = None) -> httpx.AsyncClient:
    queue = list(replies)

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        reply = queue.pop(0)
        return reply if isinstance(reply, httpx.Response) else httpx.Response(200, text=reply)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def refund_answer(keys: Keys, **fields: str) -> str:
    return signed_body("alipay_trade_refund_response", {"code": "10000", **fields}, keys.alipay)


def query_answer(keys: Keys, **fields: str) -> str:
    name = "alipay_trade_fastpay_refund_query_response"
    return signed_body(name, {"code": "10000", **fields}, keys.alipay)


SUCCESS = {"msg": "Success", "trade_no": "2024000000000000000000000001", "out_trade_no": "ali-1"}


async def test_the_signature_covers_the_exact_text_alipay_sent(keys):
    spaced = '{"code": "10000", "msg": "Success", "trade_no": "T1", "fund_change": "Y"}'
    compact = json.dumps(json.loads(spaced), separators=(",", ":"))
    exact = (
        f'{{ "sign" : "{sign(spaced, keys.alipay)}", "alipay_trade_refund_response" : {spaced} }}'
    )
    resigned = f'{{"alipay_trade_refund_response":{spaced},"sign":"{sign(compact, keys.alipay)}"}}'
    async with scripted(exact, resigned) as client:
        alipay = make_channel(URL, keys, client=client)
        leg = order(alipay)
        assert (await alipay.refund(leg)).transaction_id == f"T1/{leg.request_id}"
        with pytest.raises(ChannelUnknownError, match="not signed"):
            await alipay.refund(leg)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(lambda k: httpx.Response(500, text="oops"), id="http-500"),
        pytest.param(lambda k: "<html>busy</html>", id="not-json"),
        pytest.param(lambda k: '{"alipay_trade_refund_response":{"code":"10000"}}', id="no-sign"),
        pytest.param(
            lambda k: refund_answer(k, fund_change="Y", **SUCCESS)[:-1] + ',"sign":"x"}',
            id="two-signs",
        ),
        pytest.param(
            lambda k: signed_body("alipay_trade_query_response", {"code": "10000"}, k.alipay),
            id="another-method",
        ),
        pytest.param(
            lambda k: signed_body(
                "alipay_trade_refund_response",
                {
                    "code": "20000",
                    "msg": "Service Currently Unavailable",
                    "sub_code": "isp.unknow-error",
                },
                k.alipay,
            ),
            id="20000",
        ),
        pytest.param(lambda k: refund_answer(k, **SUCCESS), id="no-fund-change"),
        pytest.param(
            lambda k: refund_answer(k, fund_change="Y", **{**SUCCESS, "trade_no": "9" * 65}),
            id="trade-no-too-long",
        ),
        pytest.param(
            lambda k: refund_answer(k, fund_change="Y", **{**SUCCESS, "out_trade_no": "ali-9"}),
            id="another-trade",
        ),
        pytest.param(
            lambda k: signed_body("alipay_trade_refund_response", {"code": "30000"}, k.alipay),
            id="unknown-code",
        ),
    ],
)
async def test_an_answer_that_cannot_be_believed_is_unknown(keys, reply):
    async with scripted(reply(keys)) as client:
        alipay = make_channel(URL, keys, client=client)
        with pytest.raises(ChannelUnknownError):
            await alipay.refund(order(alipay))


async def test_a_transport_error_is_unknown(keys):
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer")

    async with httpx.AsyncClient(transport=httpx.MockTransport(reset)) as client:
        alipay = make_channel(URL, keys, client=client)
        with pytest.raises(ChannelUnknownError, match="ReadError"):
            await alipay.refund(order(alipay))
        with pytest.raises(ChannelUnknownError):
            await alipay.lookup(order(alipay))


REFUSALS = [
    ("40004", "ACQ.TRADE_NOT_EXIST", False),
    ("40004", "ACQ.TRADE_STATUS_ERROR", True),
    ("40004", "ACQ.TRADE_HAS_FINISHED", False),
    ("40004", "ACQ.TRADE_NOT_ALLOW_REFUND", False),
    ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", False),
    ("40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR", True),
    ("40004", "ACQ.INVALID_PARAMETER", False),
    ("40004", "ACQ.SOMETHING_NEW", False),
    ("40001", "isv.missing-signature", False),
    ("40002", "isv.invalid-signature", False),
    ("40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH", True),
    ("40004", "ACQ.REASON_TRADE_BEEN_FREEZEN", True),
]


@pytest.mark.parametrize(("code", "sub_code", "attention"), REFUSALS)
async def test_each_signed_refusal_is_a_refusal_a_person_can_act_on(
    keys, code, sub_code, attention
):
    said = "说明 " * 150
    body = signed_body(
        "alipay_trade_refund_response",
        {"code": code, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": said},
        keys.alipay,
    )
    async with scripted(body) as client:
        alipay = make_channel(URL, keys, client=client)
        answer = await alipay.refund(order(alipay))
    assert (answer.outcome, answer.code, answer.attention) == (
        ChannelOutcome.REFUSED,
        sub_code,
        attention,
    )
    assert re.fullmatch(r"[ -~]+ \(Alipay: (说明 )*说明?\)", answer.reason)
    assert len(answer.reason) < 400


async def test_a_refusal_without_sub_code_names_the_code(keys):
    body = signed_body("error_response", {"code": "40002", "sub_code": None}, keys.alipay)
    async with scripted(body) as client:
        alipay = make_channel(URL, keys, client=client)
        answer = await alipay.refund(order(alipay))
    assert (answer.outcome, answer.code) == (ChannelOutcome.REFUSED, "40002")


async def test_a_discordant_repeat_takes_the_lookups_answer(keys):
    discordant = signed_body(
        "alipay_trade_refund_response",
        {"code": "40004", "sub_code": "ACQ.DISCORDANT_REPEAT_REQUEST"},
        keys.alipay,
    )
    leg = order(make_channel(URL, keys))
    found = query_answer(keys, **SUCCESS, out_request_no=leg.request_id, refund_amount="199.00")
    nothing = query_answer(keys, msg="Success")
    async with scripted(discordant, found, discordant, nothing) as client:
        alipay = make_channel(URL, keys, client=client)
        answer = await alipay.refund(leg)
        assert answer.outcome is ChannelOutcome.RETURNED
        with pytest.raises(ChannelUnknownError, match="discordant"):
            await alipay.refund(leg)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (None, None),
        ({}, ChannelOutcome.RETURNED),
        ({"refund_status": "REFUND_SUCCESS"}, ChannelOutcome.RETURNED),
        ({"refund_status": "REFUND_PROCESSING"}, ChannelUnknownError),
        ({"out_request_no": "RFother"}, ChannelUnknownError),
        ({"refund_amount": "199.01"}, ChannelUnknownError),
        ({"refund_amount": "lots"}, ChannelUnknownError),
        ({"trade_no": None}, ChannelUnknownError),
    ],
)
async def test_what_a_lookup_believes(keys, fields, expected):
    leg = order(make_channel(URL, keys))
    data = {**SUCCESS, "out_request_no": leg.request_id, "refund_amount": "199.00"}
    body = (
        query_answer(keys, msg="Success")
        if fields is None
        else query_answer(keys, **{**data, **fields})
    )
    async with scripted(body) as client:
        alipay = make_channel(URL, keys, client=client)
        if expected is ChannelUnknownError:
            with pytest.raises(ChannelUnknownError):
                await alipay.lookup(leg)
        else:
            answer = await alipay.lookup(leg)
            assert (answer.outcome if answer else None) is expected


# What the client sends


def test_the_sign_content_of_a_known_parameter_set():
    params = {
        "version": "1.0",
        "sign": "left out",
        "timestamp": "2014-07-24 03:07:50",
        "app_id": "2014072300007148",
        "notify_url": "",
        "biz_content": '{"refund_reason":"正常 退款&a=b"}',
        "method": "alipay.trade.refund",
        "charset": "utf-8",
        "sign_type": "RSA2",
    }
    assert sign_content(params) == (
        'app_id=2014072300007148&biz_content={"refund_reason":"正常 退款&a=b"}'
        "&charset=utf-8&method=alipay.trade.refund&sign_type=RSA2"
        "&timestamp=2014-07-24 03:07:50&version=1.0"
    )


async def test_the_request_the_channel_sends(keys):
    seen: list[httpx.Request] = []
    clock: Callable[[], datetime] = lambda: datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # noqa: E731
    reply = refund_answer(keys, fund_change="Y", **SUCCESS)
    async with scripted(reply, seen=seen) as client:
        alipay = make_channel(URL, keys, client=client, clock=clock)
        await alipay.refund(order(alipay, "0.10"))
    (request,) = seen
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = {k: v for k, (v,) in parse_qs(request.content.decode()).items()}
    biz = (
        '{"out_trade_no":"ali-1","out_request_no":"RF46440985f409ac5d4d0a0ddf11f0d554",'
        '"refund_amount":"0.10","refund_reason":"SSL certificate refund"}'
    )
    assert {k: v for k, v in form.items() if k != "sign"} == {
        "app_id": APP_ID,
        "method": "alipay.trade.refund",
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2024-05-01 20:00:00",
        "version": "1.0",
        "biz_content": biz,
    }
    content = (
        f"app_id={APP_ID}&biz_content={biz}&charset=utf-8&format=JSON"
        "&method=alipay.trade.refund&sign_type=RSA2&timestamp=2024-05-01 20:00:00&version=1.0"
    )
    assert verify(content, form["sign"], keys.app.public_key())


def test_request_ids_are_deterministic_short_alphanumeric_and_per_leg(keys):
    alipay = make_channel(URL, keys)
    long_key = f"refund-{'c' * 64}:leg-12"
    ids = [alipay.request_id(k) for k in ("refund-cas-1:leg-1", "refund-cas-1:leg-2", long_key)]
    assert alipay.request_id("refund-cas-ali:leg-1") == "RF46440985f409ac5d4d0a0ddf11f0d554"
    assert ids == [
        alipay.request_id(k) for k in ("refund-cas-1:leg-1", "refund-cas-1:leg-2", long_key)
    ]
    assert len(set(ids)) == 3
    assert all(len(i) <= 64 and i.isalnum() and i.isascii() for i in ids)


def test_amounts_are_yuan_with_two_decimals_from_decimal():
    assert yuan(Decimal("0.10")) == "0.10"
    assert yuan(Decimal("0.1")) == "0.10"
    assert yuan(Decimal("5")) == "5.00"
    assert yuan(Decimal("199.00")) == "199.00"
    assert yuan(Decimal("12345678.9")) == "12345678.90"
    assert yuan(Decimal("1.005")) is None
    assert yuan(Decimal("NaN")) is None


@pytest.mark.parametrize(
    ("leg_kwargs", "code"),
    [({"currency": "USD"}, "currency_not_supported"), ({"amount": "1.005"}, "invalid_amount")],
)
async def test_what_alipay_cannot_take_is_refused_without_a_call(keys, leg_kwargs, code):
    seen: list[httpx.Request] = []
    async with scripted(seen=seen) as client:
        alipay = make_channel(URL, keys, client=client)
        answer = await alipay.refund(order(alipay, **leg_kwargs))
    assert (answer.outcome, answer.code, seen) == (ChannelOutcome.REFUSED, code, [])


async def test_logs_carry_codes_and_request_numbers_never_buyers_or_keys(
    gateway, channel, keys, monkeypatch
):
    events: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def info(self, event: str, **fields: Any) -> None:
            events.append((event, fields))

        warning = info

    monkeypatch.setattr(alipay_module, "log", Recorder())
    leg = order(channel)
    await channel.refund(leg)
    gateway.faults.script("bad_signature")
    with pytest.raises(ChannelUnknownError):
        await channel.lookup(leg)
    assert (
        "alipay_answer",
        {"method": REFUND, "out_request_no": leg.request_id, "code": "10000", "sub_code": ""},
    ) in events
    assert any(e == "alipay_bad_signature" and f["method"] == QUERY for e, f in events)
    logged = repr(events)
    assert "159****5620" not in logged and "2088" not in logged and "BEGIN" not in logged


# The gateway holds requests to Alipay's rules


def common(
    method: str, biz: dict[str, Any], overrides: dict[str, str] | None = None
) -> dict[str, str]:
    params = {
        "app_id": APP_ID,
        "method": method,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "version": "1.0",
        "biz_content": json.dumps(biz, separators=(",", ":")),
    }
    return {**params, **(overrides or {})}


async def post(
    gateway: Gateway, keys: Keys, params: dict[str, str], *, key=None, query=None
) -> RawAnswer:
    signed = sign_params(params, key or keys.app)
    in_query = {k: signed.pop(k) for k in (query or ())}
    async with httpx.AsyncClient() as client:
        response = await client.post(gateway.url, data=signed, params=in_query)
    assert response.status_code == 200
    raw = split_response(response.text, params.get("method", ""))
    assert raw.sign is not None and verify(raw.text, raw.sign, keys.alipay.public_key())
    return raw


FULL = {"out_trade_no": "ali-2", "refund_amount": "100.00"}


GATEWAY, ANSWER = "error_response", "alipay_trade_refund_response"


@pytest.mark.parametrize(
    ("overrides", "name", "code", "sub_code"),
    [
        ({"app_id": "2021000000000999"}, GATEWAY, "40002", "isv.invalid-app-id"),
        ({"method": "alipay.trade.pay"}, GATEWAY, "40002", "isv.invalid-method"),
        ({"method": ""}, GATEWAY, "40001", "isv.missing-method"),
        ({"timestamp": ""}, ANSWER, "40001", "isv.missing-timestamp"),
        ({"sign_type": "RSA"}, ANSWER, "40002", "isv.invalid-signature-type"),
        ({"charset": "gbk"}, ANSWER, "40002", "isv.invalid-charset"),
        ({"version": "2.0"}, ANSWER, "40002", "isv.invalid-version"),
        ({"format": "XML"}, ANSWER, "40002", "isv.invalid-format"),
        ({"timestamp": "2024-5-1 12:00:00"}, ANSWER, "40002", "isv.invalid-timestamp"),
        ({"biz_content": "{not json"}, ANSWER, "40004", "ACQ.INVALID_PARAMETER"),
        ({"biz_content": "[1]"}, ANSWER, "40004", "ACQ.INVALID_PARAMETER"),
        ({"biz_content": '{"out_trade_no":"ali-2"}'}, ANSWER, "40001", "isv.missing-refund-amount"),
        ({"biz_content": '{"refund_amount":"1.00"}'}, ANSWER, "40001", "isv.missing-out-trade-no"),
        (
            {"biz_content": '{"out_trade_no":"ali-2","refund_amount":"1.001"}'},
            ANSWER,
            "40004",
            "ACQ.INVALID_PARAMETER",
        ),
        (
            {"biz_content": '{"out_trade_no":"ali-2","refund_amount":"-1"}'},
            ANSWER,
            "40004",
            "ACQ.INVALID_PARAMETER",
        ),
    ],
)
async def test_the_gateway_refuses_a_malformed_request(
    gateway, keys, overrides, name, code, sub_code
):
    raw = await post(gateway, keys, common(REFUND, FULL, overrides))
    assert (raw.name, raw.answer["code"], raw.answer["sub_code"]) == (name, code, sub_code)
    assert amounts(gateway) == []


async def test_the_gateway_refuses_another_key_a_stale_timestamp_and_a_wrong_app(gateway, keys):
    raw = await post(gateway, keys, common(REFUND, FULL), key=keys.other)
    assert (raw.answer["code"], raw.answer["sub_code"]) == ("40002", "isv.invalid-signature")
    stale = (datetime.now(BEIJING) - timedelta(minutes=16)).strftime("%Y-%m-%d %H:%M:%S")
    raw = await post(gateway, keys, common(REFUND, FULL, {"timestamp": stale}))
    assert (raw.answer["code"], raw.answer["sub_code"]) == ("40002", "isv.invalid-timestamp")
    raw = await post(gateway, keys, common(REFUND, FULL, {"app_id": "2021000000000002"}))
    assert (raw.name, raw.answer["sub_code"]) == ("error_response", "isv.invalid-app-id")
    tampered = sign_params(common(REFUND, FULL), keys.app)
    tampered["biz_content"] = '{"out_trade_no":"ali-2","refund_amount":"99.00"}'
    async with httpx.AsyncClient() as client:
        text = (await client.post(gateway.url, data=tampered)).text
    assert split_response(text, REFUND).answer["sub_code"] == "isv.invalid-signature"
    assert amounts(gateway) == []


async def test_without_a_request_number_only_the_total_is_refunded(gateway, keys):
    partial = {"out_trade_no": "ali-2", "refund_amount": "99.99"}
    raw = await post(gateway, keys, common(REFUND, partial))
    assert raw.answer["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    raw = await post(gateway, keys, common(REFUND, FULL), query=("app_id", "method", "sign"))
    assert (raw.answer["code"], raw.answer["fund_change"]) == ("10000", "Y")
    assert raw.answer["refund_fee"] == "100.00"
    assert amounts(gateway) == [("ali-2", "ali-2", Decimal("100.00"))]
    query = {
        "out_trade_no": "ali-2",
        "out_request_no": "ali-2",
        "query_options": ["gmt_refund_pay"],
    }
    raw = await post(gateway, keys, common(QUERY, query))
    assert raw.answer["refund_amount"] == "100.00" and raw.answer["gmt_refund_pay"]


async def test_a_parameter_given_twice_is_refused(gateway, keys):
    signed = sign_params(common(REFUND, FULL), keys.app)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            gateway.url, data=signed, params={"app_id": "2021000000000002"}
        )
    raw = split_response(response.text, REFUND)
    assert raw.answer["sub_code"] == "isv.invalid-parameter"
    assert amounts(gateway) == []


# Keys


def test_keys_load_from_pkcs1_pkcs8_spki_and_bare_base64(keys):
    private = keys.app
    pkcs1 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pkcs8_der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key()
    rsa_public = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    spki_der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = private.private_numbers()
    assert load_private_key(pkcs1).private_numbers() == numbers
    assert load_private_key(base64.b64encode(pkcs8_der)).private_numbers() == numbers
    assert load_public_key(rsa_public).public_numbers() == public.public_numbers()
    assert load_public_key(base64.b64encode(spki_der)).public_numbers() == public.public_numbers()
    with pytest.raises(ValueError, match="not a PEM private key"):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_public_key(b"hello")


def key_settings(tmp_path: Path, database_url: str, **extra: Any) -> Settings:
    return Settings(
        key_dir=tmp_path / "keys",
        simulator_state_dir=tmp_path / "simulators",
        database_url=database_url,
        **extra,
    )


async def test_local_keys_are_made_once_private_and_serve_the_channel(
    seeded, database_url, tmp_path
):
    settings = key_settings(tmp_path, database_url)
    assert ensure_local_alipay_keys(settings) is True
    folder = settings.channel_key_dir
    made = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert sorted(made) == [
        "alipay-app-private.pem",
        "alipay-app-public.pem",
        "alipay-public.pem",
        "alipay-simulator-private.pem",
    ]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    assert ensure_local_alipay_keys(settings) is True
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == made

    simulator = AlipaySimulator.from_settings(settings, payments_of(seeded.engine, Channel.ALIPAY))
    runner = await serve_alipay(simulator, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    alipay = AlipayChannel.from_settings(
        key_settings(tmp_path, database_url, alipay_simulator_port=port)
    )
    try:
        assert alipay.gateway_url == f"http://127.0.0.1:{port}/gateway.do"
        assert (await alipay.refund(order(alipay))).outcome is ChannelOutcome.RETURNED
        assert len(simulator.refunds()) == 1
        assert (settings.simulator_state_dir / "alipay.db").exists()
    finally:
        await alipay.aclose()
        await runner.cleanup()
        simulator.ledger.dispose()


def test_configured_keys_are_not_replaced(tmp_path, database_url):
    own = tmp_path / "own.pem"
    settings = key_settings(tmp_path, database_url, alipay_app_private_key_file=own)
    assert ensure_local_alipay_keys(settings) is False
    assert not settings.channel_key_dir.exists() or not any(settings.channel_key_dir.iterdir())


@pytest.mark.parametrize("which", ["alipay_app_private_key_file", "alipay_public_key_file"])
def test_key_files_readable_by_others_or_malformed_are_refused(keys, tmp_path, database_url, which):
    app_file, alipay_file = tmp_path / "app.pem", tmp_path / "alipay.pem"
    app_file.write_bytes(
        keys.app.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    alipay_file.write_bytes(
        keys.alipay.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for path in (app_file, alipay_file):
        path.chmod(0o600)
    settings = key_settings(
        tmp_path,
        database_url,
        alipay_app_private_key_file=app_file,
        alipay_public_key_file=alipay_file,
    )
    assert AlipayChannel.from_settings(settings).app_id == APP_ID
    target = getattr(settings, which)
    target.chmod(0o644)
    with pytest.raises(SecretFileError, match="readable by others"):
        AlipayChannel.from_settings(settings)
    secret = target.read_bytes()
    target.write_bytes(secret[:200])
    target.chmod(0o600)
    with pytest.raises(SecretFileError) as bad:
        AlipayChannel.from_settings(settings)
    message = str(bad.value)
    assert "\n" not in message and str(target) in message
    assert secret[40:80].decode() not in message


def _is_a_payment_channel(channel: AlipayChannel) -> PaymentChannel:
    return channel


async def test_an_answer_larger_than_alipay_sends_is_not_read_and_not_believed(keys):
    oversized = refund_answer(keys, fund_change="Y") + " " * (64 * 1024)
    async with scripted(oversized) as client:
        alipay = make_channel(URL, keys, client=client)
        with pytest.raises(ChannelUnknownError, match="DecodingError"):
            await alipay.refund(order(alipay))
