"""The provider's webhook signatures and their receiver on a loopback port: only a fresh delivery
signed with the secret rings its refund, once however often it is replayed, and a ring that fails
is answered 503 so that the provider's retry tells the refund."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from activities.gateways import ChannelOutcome
from domain.webhook_signatures import (
    MalformedSignatureError,
    compute_signature,
    parse_signature_header,
    signature_header,
    verify_signature,
)
from starter.bank_webhooks import MAX_BODY, serve_bank_webhooks
from storage.webhook_deliveries import WebhookDeliveries
from tests.test_bank_channel import REFUND_ID, SECRET, eventually, order, provider, seed

KNOWN_BODY = b'{"id":"evt_1","type":"refund.succeeded"}'
KNOWN_SECRET = "whsec_known_answer"
KNOWN_V1 = "30667e94efabbd66be180df87c5ef6897a92efd041a1f5f82941899b83cfa72e"
"""``printf '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_known_answer``."""


def test_the_signature_matches_a_known_answer():
    by_hand = hmac.new(KNOWN_SECRET.encode(), b"1700000000." + KNOWN_BODY, hashlib.sha256)
    assert by_hand.hexdigest() == KNOWN_V1
    assert compute_signature(KNOWN_SECRET, 1_700_000_000, KNOWN_BODY) == KNOWN_V1
    header = signature_header(KNOWN_SECRET, 1_700_000_000, KNOWN_BODY)
    assert header == f"t=1700000000,v1={KNOWN_V1}"
    assert verify_signature(header, KNOWN_SECRET, KNOWN_BODY, 1_700_000_000) is None


def test_verification_refuses_forged_stale_and_malformed_headers():
    t = 1_700_000_000
    good = signature_header(SECRET, t, KNOWN_BODY)
    assert verify_signature(good, SECRET, KNOWN_BODY, t + 300) is None
    assert verify_signature(good, SECRET, KNOWN_BODY, t - 300) is None
    assert "timestamp" in (verify_signature(good, SECRET, KNOWN_BODY, t + 301) or "")
    assert "timestamp" in (verify_signature(good, SECRET, KNOWN_BODY, t - 301) or "")
    assert "matches" in (verify_signature(good, "whsec_other", KNOWN_BODY, t) or "")
    assert verify_signature(good, SECRET, KNOWN_BODY + b" ", t) is not None
    resigned = good.replace("t=1700000000", "t=1700000001")
    assert verify_signature(resigned, SECRET, KNOWN_BODY, t) is not None

    rotating = signature_header("whsec_old", t, KNOWN_BODY, rotating=[SECRET])
    assert len(parse_signature_header(rotating).signatures) == 2
    assert verify_signature(rotating, SECRET, KNOWN_BODY, t) is None
    with_other_scheme = f"{good},v0={'0' * 64}"
    assert verify_signature(with_other_scheme, SECRET, KNOWN_BODY, t) is None

    v1 = compute_signature(SECRET, t, KNOWN_BODY)
    for malformed in (
        "",
        "garbage",
        f"v1={v1}",
        f"t={t}",
        f"t={t},t={t},v1={v1}",
        f"t=-{t},v1={v1}",
        f"t={t},v1={v1[:-1]}",
        f"t={t},v1={v1.upper()}",
        f"t={t},,v1={v1}",
        f"t={t},v1={v1}," + ",".join([f"v1={v1}"] * 8),
        "t=" + "1" * 2000,
    ):
        with pytest.raises(MalformedSignatureError):
            parse_signature_header(malformed)
        assert verify_signature(malformed, SECRET, KNOWN_BODY, t) is not None


def test_deliveries_are_new_then_pending_until_completed(store):
    deliveries = WebhookDeliveries(store.engine)
    assert deliveries.state("evt_a") is None
    assert deliveries.begin("evt_a", "bank", "refund-c:leg-0") == "new"
    assert deliveries.begin("evt_a", "bank", "refund-c:leg-0") == "pending"
    deliveries.complete("evt_a")
    assert deliveries.begin("evt_a", "bank", "refund-c:leg-0") == "completed"
    assert deliveries.begin("evt_b", "bank", None) == "new"
    with pytest.raises(ValueError):
        deliveries.begin("e" * 129, "bank", None)


@dataclass
class Receiver:
    url: str
    deliveries: WebhookDeliveries
    rings: list[str] = field(default_factory=list)
    failing: int = 0

    async def post(
        self, body: bytes, *, at: float | None = None, secret: str = SECRET, header: Any = None
    ) -> httpx.Response:
        if header is None:
            header = signature_header(secret, int(time.time() if at is None else at), body)
        headers = {"Content-Type": "application/json"}
        if header is not False:
            headers["Webhook-Signature"] = header
        async with httpx.AsyncClient() as client:
            return await client.post(self.url, content=body, headers=headers)


@pytest.fixture
async def receiver(store) -> AsyncIterator[Receiver]:
    deliveries = WebhookDeliveries(store.engine)
    state: dict[str, Receiver] = {}

    async def ring(refund_id: str) -> None:
        if state["r"].failing:
            state["r"].failing -= 1
            raise RuntimeError("unreachable")
        state["r"].rings.append(refund_id)

    runner = await serve_bank_webhooks(SECRET, deliveries, ring, host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/bank"
    state["r"] = Receiver(url, deliveries)
    try:
        yield state["r"]
    finally:
        await runner.cleanup()


def event(event_id: str = "evt_1", kind: str = "refund.succeeded", **refund: Any) -> bytes:
    data = {"id": "re_1", "idempotency_key": f"{REFUND_ID}:leg-0", "status": "succeeded"}
    data.update(refund)
    payload = {"id": event_id, "type": kind, "created": 1, "data": {"refund": data}}
    return json.dumps(payload).encode()


async def test_a_signed_delivery_rings_its_refund_and_a_replay_changes_nothing(receiver):
    first = await receiver.post(event())
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert receiver.rings == [REFUND_ID]
    replay = await receiver.post(event())
    assert (replay.status_code, replay.json()) == (200, {"status": "duplicate"})
    assert receiver.rings == [REFUND_ID]
    assert receiver.deliveries.state("evt_1") == "completed"


async def test_a_key_with_colons_rings_the_refund_before_its_leg(receiver):
    response = await receiver.post(event(idempotency_key="refund-cas:x:leg-9:leg-2"))
    assert response.status_code == 200
    assert receiver.rings == ["refund-cas:x:leg-9"]


@pytest.mark.parametrize(
    ("how", "status"),
    [
        ("forged", 401),
        ("stale", 401),
        ("future", 401),
        ("missing", 400),
        ("malformed", 400),
        ("unsigned body", 401),
    ],
)
async def test_an_unbelievable_signature_is_refused(receiver, how, status):
    body = event()
    now = time.time()
    if how == "forged":
        response = await receiver.post(body, secret="whsec_forger")
    elif how == "stale":
        response = await receiver.post(body, at=now - 310)
    elif how == "future":
        response = await receiver.post(body, at=now + 310)
    elif how == "missing":
        response = await receiver.post(body, header=False)
    elif how == "malformed":
        response = await receiver.post(body, header="t=soon,v1=abc")
    else:
        response = await receiver.post(body, header=signature_header(SECRET, int(now), b"{}"))
    assert response.status_code == status
    assert receiver.rings == [] and receiver.deliveries.state("evt_1") is None


async def test_an_oversized_body_is_refused_unread(receiver):
    body = event(padding="x" * MAX_BODY)
    assert (await receiver.post(body)).status_code == 413
    async with httpx.AsyncClient() as client:

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * MAX_BODY

        chunked = await client.post(
            receiver.url, content=chunks(), headers={"Webhook-Signature": "t=1,v1=" + "0" * 64}
        )
    assert chunked.status_code == 413
    assert receiver.rings == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        event(kind="refund.updated"),
        event(event_id="e" * 129),
        event(event_id=""),
        event(idempotency_key="refund-cas-1"),
        event(idempotency_key="payout-cas-1:leg-0"),
        event(idempotency_key=None),
    ],
)
async def test_a_signed_event_that_is_not_ours_is_refused(receiver, body):
    response = await receiver.post(body)
    assert response.status_code == 400
    assert receiver.rings == []


async def test_a_failed_ring_is_a_503_and_a_retry_of_the_delivery_succeeds_once(receiver):
    receiver.failing = 1
    failed = await receiver.post(event())
    assert failed.status_code == 503 and receiver.rings == []
    assert receiver.deliveries.state("evt_1") == "pending"
    retried = await receiver.post(event())
    assert (retried.status_code, retried.json()) == (200, {"status": "accepted"})
    assert receiver.rings == [REFUND_ID]
    assert (await receiver.post(event())).json() == {"status": "duplicate"}
    assert receiver.rings == [REFUND_ID]


async def test_the_providers_retry_tells_the_refund_after_a_failed_ring(store, tmp_path):
    seed(store)
    async with provider(store, tmp_path, failing_rings=1) as bank:
        assert (await bank.channel.refund(order())).outcome is ChannelOutcome.SETTLING

        async def told() -> bool:
            return bool(bank.rings)

        await eventually(told)
        await asyncio.sleep(0.3)
        assert bank.ring_attempts == [REFUND_ID, REFUND_ID]
        assert bank.rings == [REFUND_ID]
        assert len(bank.events) == 2 and bank.events[0] == bank.events[1]
        assert bank.deliveries.state(bank.events[0]["id"]) == "completed"
