"""The bank channel against the local payment provider on a loopback port, its settlement webhooks
going to the receiver on another: a refund settles by webhook or by lookup, money moves once
whatever the network does, the Idempotency-Key is held to the IETF draft, and each refusal is
told apart."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from activities.bank import BankChannel, minor_units, sf_string
from activities.gateways import ChannelOutcome, ChannelRefund, ChannelUnknownError
from domain.certificates import Channel
from settings import Settings
from simulators.bank import BankSimulator, ensure_local_bank_secrets, serve_bank
from simulators.bank_protocol import parse_sf_string
from simulators.faults import ProtocolFaults
from simulators.known_payments import payments_of
from starter.bank_webhooks import serve_bank_webhooks
from storage.webhook_deliveries import WebhookDeliveries
from tests.factories import certificate, shanghai

API_KEY = "test-bank-api-key-0123456789"
SECRET = "whsec_test_0123456789abcdef"
CERT = "cas-bank-1"
REFUND_ID = f"refund-{CERT}"
KEY = f"{REFUND_ID}:leg-0"
REF = "bank-x"
SETTLE = 0.2

T = TypeVar("T")


@dataclass
class Provider:
    simulator: BankSimulator
    channel: BankChannel
    base: str
    deliveries: WebhookDeliveries
    faults: ProtocolFaults
    rings: list[str]
    """Refund ids the receiver told, once the ring succeeded."""
    ring_attempts: list[str]
    events: list[dict[str, Any]]
    """Every webhook the provider sent, as sent (retries included)."""


def order(
    key: str = KEY, amount: str = "300.00", reference: str = REF, currency: str = "CNY"
) -> ChannelRefund:
    return ChannelRefund(
        idempotency_key=key,
        request_id=key,
        reference=reference,
        amount=Decimal(amount),
        currency=currency,
        owner="user-1",
    )


def seed(store, reference: str = REF, amount: str = "300.00") -> None:
    store.seed(
        [
            certificate(
                CERT,
                purchased_at=shanghai(2024, 5, 1),
                payments=[{"channel": "bank", "amount": amount, "reference": reference}],
            )
        ]
    )


@asynccontextmanager
async def provider(
    store,
    tmp_path: Path,
    *,
    timeout: float = 2.0,
    failing_rings: int = 0,
    **simulator: Any,
) -> AsyncIterator[Provider]:
    """The simulator and the receiver served on free loopback ports, and a channel to them."""
    faults = simulator.pop("faults", None) or ProtocolFaults()
    deliveries = WebhookDeliveries(store.engine)
    rings: list[str] = []
    ring_attempts: list[str] = []
    events: list[dict[str, Any]] = []

    async def ring(refund_id: str) -> None:
        ring_attempts.append(refund_id)
        if len(ring_attempts) <= failing_rings:
            raise RuntimeError("the refund's workflow is unreachable")
        rings.append(refund_id)

    async def sent(request: httpx.Request) -> None:
        events.append(json.loads(request.content))

    receiver = await serve_bank_webhooks(SECRET, deliveries, ring, host="127.0.0.1", port=0)
    webhook_url = f"http://127.0.0.1:{receiver.addresses[0][1]}/webhooks/bank"
    webhook_client = httpx.AsyncClient(event_hooks={"request": [sent]})
    sim = BankSimulator(
        tmp_path / "bank.db",
        api_key=API_KEY,
        webhook_secret=SECRET,
        webhook_url=webhook_url,
        payments=payments_of(store.engine, Channel.BANK),
        faults=faults,
        webhook_client=webhook_client,
        **{"settle_seconds": SETTLE, "webhook_backoff_seconds": 0.05, **simulator},
    )
    runner = await serve_bank(sim, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    channel = BankChannel(base, API_KEY, timeout=timeout)
    bank = Provider(sim, channel, base, deliveries, faults, rings, ring_attempts, events)
    try:
        yield bank
    finally:
        await channel.aclose()
        await runner.cleanup()
        await webhook_client.aclose()
        await receiver.cleanup()


@pytest.fixture
async def bank(store, tmp_path) -> AsyncIterator[Provider]:
    seed(store)
    async with provider(store, tmp_path) as running:
        yield running


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 5.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.05)


async def settled(bank: Provider, wanted: ChannelOutcome, ask: ChannelRefund | None = None):
    async def check():
        answer = await bank.channel.lookup(ask or order())
        return answer if answer is not None and answer.outcome is wanted else None

    return await eventually(check)


async def test_a_refund_settles_and_its_signed_webhook_rings_the_refund_once(bank):
    accepted = await bank.channel.refund(order())
    assert accepted.outcome is ChannelOutcome.SETTLING
    assert accepted.transaction_id is not None and accepted.transaction_id.startswith("re_")
    assert accepted.at is not None

    returned = await settled(bank, ChannelOutcome.RETURNED)
    assert returned.transaction_id == accepted.transaction_id
    assert returned.at is not None and returned.at >= accepted.at
    await eventually(lambda: _true(bank.rings))
    await asyncio.sleep(0.2)
    assert bank.rings == [REFUND_ID]
    assert [e["type"] for e in bank.events] == ["refund.succeeded"]
    assert bank.deliveries.state(bank.events[0]["id"]) == "completed"

    again = await bank.channel.refund(order())
    assert (again.outcome, again.transaction_id) == (
        ChannelOutcome.SETTLING,
        accepted.transaction_id,
    )
    [refund] = bank.simulator.refunds()
    assert (refund.idempotency_key, refund.payment, refund.amount, refund.status) == (
        KEY,
        REF,
        Decimal("300.00"),
        "succeeded",
    )


async def test_a_lost_webhook_still_settles_by_lookup(bank):
    bank.faults.script("lose_webhook")
    assert (await bank.channel.refund(order())).outcome is ChannelOutcome.SETTLING
    await settled(bank, ChannelOutcome.RETURNED)
    await asyncio.sleep(0.3)
    assert bank.events == [] and bank.rings == []


async def test_a_settlement_failure_is_refused_with_its_code_and_frees_the_amount(store, tmp_path):
    seed(store)
    faults = ProtocolFaults(settlement_fail=frozenset({REF}))
    async with provider(store, tmp_path, faults=faults) as bank:
        assert (await bank.channel.refund(order())).outcome is ChannelOutcome.SETTLING
        failed = await settled(bank, ChannelOutcome.REFUSED)
        assert failed.code == "account_closed"
        assert "account is closed" in failed.reason and not failed.attention
        await eventually(lambda: _true(bank.rings))
        assert [e["type"] for e in bank.events] == ["refund.failed"]
        assert bank.events[0]["data"]["refund"]["failure_code"] == "account_closed"
        assert bank.rings == [REFUND_ID]

        # A failed refund does not count against the payment: the whole amount can go again.
        second = await bank.channel.refund(order(f"{REFUND_ID}:leg-1"))
        assert second.outcome is ChannelOutcome.SETTLING


@pytest.mark.parametrize("lose_answer", ["late", "drop"])
async def test_an_answer_lost_after_the_refund_is_found_by_lookup_and_paid_once(
    store, tmp_path, lose_answer
):
    seed(store)
    async with provider(
        store, tmp_path, timeout=0.3, lose_answer=lose_answer, late_seconds=0.6
    ) as bank:
        bank.faults.script("lose_answer")
        with pytest.raises(ChannelUnknownError):
            await bank.channel.refund(order())
        found = await bank.channel.lookup(order())
        assert found is not None and found.outcome in (
            ChannelOutcome.SETTLING,
            ChannelOutcome.RETURNED,
        )
        again = await bank.channel.refund(order())
        assert again.transaction_id == found.transaction_id
        assert len(bank.simulator.refunds()) == 1
        await asyncio.sleep(0.4)  # the late answer's handler ends before the provider stops


async def test_a_failure_before_the_refund_leaves_nothing_to_find(bank):
    bank.faults.script("fail_before")
    with pytest.raises(ChannelUnknownError, match="HTTP 503"):
        await bank.channel.refund(order())
    assert await bank.channel.lookup(order()) is None
    assert bank.simulator.refunds() == []


async def test_a_second_request_while_the_first_is_in_flight_is_a_409(bank):
    bank.faults.latency_seconds = 0.3
    results = await asyncio.gather(
        bank.channel.refund(order()), bank.channel.refund(order()), return_exceptions=True
    )
    answers = [a for a in results if not isinstance(a, BaseException)]
    errors = [a for a in results if isinstance(a, ChannelUnknownError)]
    assert [a.outcome for a in answers] == [ChannelOutcome.SETTLING]
    assert len(errors) == 1 and errors[0].retry_after == 1.0
    assert len(bank.simulator.refunds()) == 1


async def test_a_key_reused_for_another_amount_is_refused_for_attention(bank):
    assert (await bank.channel.refund(order())).outcome is ChannelOutcome.SETTLING
    crafted = await bank.channel.refund(order(amount="100.00"))
    assert crafted.outcome is ChannelOutcome.REFUSED
    assert (crafted.code, crafted.attention) == ("idempotency_key_reused", True)
    [refund] = bank.simulator.refunds()
    assert refund.amount == Decimal("300.00")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "idempotency_key_missing"),
        ({"Idempotency-Key": KEY}, "invalid_request"),
        ({"Idempotency-Key": '"' + KEY}, "invalid_request"),
        ({"Idempotency-Key": '"a\\b"'}, "invalid_request"),
        ({"Idempotency-Key": '""'}, "invalid_request"),
        ({"Idempotency-Key": '"' + "k" * 256 + '"'}, "invalid_request"),
    ],
)
async def test_the_provider_holds_the_idempotency_key_to_the_draft(bank, headers, code):
    body = {"payment": REF, "amount": 100, "currency": "CNY", "reason": "refund"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{bank.base}/v1/refunds",
            json=body,
            headers={"Authorization": f"Bearer {API_KEY}", **headers},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert bank.simulator.refunds() == []


async def test_the_provider_checks_the_body(bank):
    async with httpx.AsyncClient() as client:
        for body in (
            {"payment": REF, "amount": 1.5, "currency": "CNY", "reason": ""},
            {"payment": REF, "amount": 100, "currency": "CNY"},
            {"payment": REF, "amount": 100, "currency": "CNY", "reason": "x" * 201},
        ):
            response = await client.post(
                f"{bank.base}/v1/refunds",
                json=body,
                headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": '"k-1"'},
            )
            assert (response.status_code, response.json()["error"]["code"]) == (
                400,
                "invalid_request",
            )
    assert bank.simulator.refunds() == []


async def test_more_than_the_payment_is_refused_for_a_person_to_look(bank):
    """The payment may have been refunded outside this engine: never a reason to pay elsewhere."""
    first = await bank.channel.refund(order(amount="200.00"))
    assert first.outcome is ChannelOutcome.SETTLING
    over = await bank.channel.refund(order(f"{REFUND_ID}:leg-1", amount="100.01"))
    assert (over.outcome, over.code, over.attention) == (
        ChannelOutcome.REFUSED,
        "amount_exceeds_refundable",
        True,
    )
    rest = await bank.channel.refund(order(f"{REFUND_ID}:leg-2", amount="100.00"))
    assert rest.outcome is ChannelOutcome.SETTLING
    assert sum(r.amount for r in bank.simulator.refunds()) == Decimal("300.00")


async def test_unknown_and_refused_payments_are_refused(store, tmp_path):
    seed(store)
    faults = ProtocolFaults(refused={REF: ""})
    async with provider(store, tmp_path, faults=faults) as bank:
        unknown = await bank.channel.refund(order(reference="bank-nowhere"))
        assert (unknown.outcome, unknown.code) == (ChannelOutcome.REFUSED, "payment_not_found")
        refused = await bank.channel.refund(order())
        assert (refused.outcome, refused.code) == (ChannelOutcome.REFUSED, "payment_not_found")
        assert bank.simulator.refunds() == []


async def test_a_wrong_api_key_is_refused_for_attention(bank):
    wrong = BankChannel(bank.base, "not-the-key", timeout=2.0)
    try:
        answer = await wrong.refund(order())
        assert answer.outcome is ChannelOutcome.REFUSED
        assert answer.attention and "API key" in answer.reason
        with pytest.raises(ChannelUnknownError):
            await wrong.lookup(order())
    finally:
        await wrong.aclose()
    assert bank.simulator.refunds() == []


async def test_a_pending_refund_settles_after_the_simulator_restarts(store, tmp_path):
    seed(store)
    # The provider's times are whole seconds: 2 s leave at least 1 s of settling after the stop.
    async with provider(store, tmp_path, settle_seconds=2.0) as bank:
        assert (await bank.channel.refund(order())).outcome is ChannelOutcome.SETTLING
    async with provider(store, tmp_path, settle_seconds=2.0) as bank:
        pending = await bank.channel.lookup(order())
        assert pending is not None and pending.outcome is ChannelOutcome.SETTLING
        await settled(bank, ChannelOutcome.RETURNED)
        await eventually(lambda: _true(bank.rings))
        assert len(bank.simulator.refunds()) == 1


def answering(status: int, body: Any, headers: dict[str, str] | None = None) -> BankChannel:
    def handler(request: httpx.Request) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return BankChannel("http://provider.test", API_KEY, client=client)


def refund_object(**changes: Any) -> dict[str, Any]:
    return {
        "id": "re_abc",
        "idempotency_key": KEY,
        "payment": REF,
        "amount": 30000,
        "currency": "CNY",
        "status": "pending",
        "failure_code": None,
        "failure_message": None,
        "created": 1_700_000_000,
        "settled": None,
        **changes,
    }


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (201, refund_object(amount=29999)),
        (201, refund_object(amount="30000")),
        (201, refund_object(currency="USD")),
        (201, refund_object(idempotency_key="refund-other:leg-0")),
        (201, refund_object(payment="bank-y")),
        (201, refund_object(status="reversed")),
        (201, refund_object(id="x" * 300)),
        (201, b"<html>not json</html>"),
        (500, {"error": {"code": "internal", "message": "boom"}}),
        (503, {"error": {"code": "unavailable", "message": "later"}}),
        (404, b"<html>no such route</html>"),
        (422, b"not json"),
    ],
)
async def test_an_answer_that_does_not_add_up_is_unknown(status, body):
    channel = answering(status, body)
    with pytest.raises(ChannelUnknownError):
        await channel.refund(order())


async def test_a_refund_object_maps_to_its_outcome():
    answer = await answering(200, refund_object(status="succeeded", settled=1_700_000_100)).refund(
        order()
    )
    assert (answer.outcome, answer.transaction_id) == (ChannelOutcome.RETURNED, "re_abc")
    assert answer.at is not None and int(answer.at.timestamp()) == 1_700_000_100
    failed = refund_object(
        status="failed", failure_code="account_closed", failure_message="closed\n" * 100
    )
    refused = await answering(200, failed).lookup(order())
    assert refused is not None and refused.outcome is ChannelOutcome.REFUSED
    assert refused.code == "account_closed" and len(refused.reason) < 320
    assert await answering(404, {"error": {"code": "refund_not_found"}}).lookup(order()) is None
    with pytest.raises(ChannelUnknownError) as busy:
        await answering(
            409, {"error": {"code": "idempotency_in_flight"}}, {"Retry-After": "7"}
        ).refund(order())
    assert busy.value.retry_after == 7.0


async def test_amounts_keys_and_currency_are_checked_before_sending():
    assert minor_units(Decimal("300.00")) == 30000
    assert minor_units(Decimal("0.1")) == 10
    assert minor_units(Decimal("1.005")) is None
    assert minor_units(Decimal("0")) is None
    assert minor_units(Decimal("NaN")) is None
    channel = answering(500, b"")
    assert channel.request_id(KEY) == KEY
    for bad in ("", "k" * 256, "kéy", "line\nbreak"):
        with pytest.raises(ValueError):
            channel.request_id(bad)
    assert parse_sf_string(sf_string('a"b\\c')) == 'a"b\\c'
    assert (await channel.refund(order(amount="1.001"))).code == "invalid_amount"
    assert (await channel.refund(order(currency="USD"))).code == "currency_not_supported"


async def test_local_secrets_are_made_once_and_private(tmp_path):
    settings = Settings(
        key_dir=tmp_path / "keys",
        simulator_state_dir=tmp_path / "simulators",
        fault_settlement_fail=[REF],
        fault_reject=["bank:bank-dead", "alipay:ali-dead"],
    )
    ensure_local_bank_secrets(settings)
    key = settings.bank_api_key_path.read_bytes()
    ensure_local_bank_secrets(settings)
    assert settings.bank_api_key_path.read_bytes() == key
    for path in (settings.bank_api_key_path, settings.bank_webhook_secret_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.channel_key_dir.stat().st_mode) == 0o700
    channel = BankChannel.from_settings(settings)
    assert channel.request_id(KEY) == KEY and key.decode() not in repr(channel)
    await channel.aclose()

    sim = BankSimulator.from_settings(settings, payments=lambda reference: None)
    try:
        assert sim.api_key == key.decode()
        assert sim.webhook_secret == settings.bank_webhook_secret_path.read_text()
        assert sim.webhook_url == settings.bank_webhook_url
        assert sim.faults.settlement_fail == {REF} and sim.faults.refused == {"bank-dead": ""}
        assert (settings.simulator_state_dir / "bank.db").exists()
    finally:
        await sim.stop()


async def _true(values: list[str]) -> bool:
    return bool(values)
