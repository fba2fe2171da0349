"""The receiver of the payment provider's signed settlement webhooks (``POST /webhooks/bank``).

A delivery is believed only when its ``Webhook-Signature`` verifies over the raw body within five
minutes of now (``domain.webhook_signatures``). Its event names the refund by the leg's key
(``refund-<certificate>:leg-<n>``); the receiver rings that refund, which then asks the provider
itself, so nothing in the body is taken as the outcome. The answer is 2xx only once the refund
was told: a ring that fails is a 503, the delivery stays pending, and the provider's retry
processes it again; a completed delivery replayed is a 200 ``duplicate`` that changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from activities.secret_files import read_secret_text
from domain.webhook_signatures import (
    TOLERANCE_SECONDS,
    MalformedSignatureError,
    parse_signature_header,
    verify_signature,
)
from settings import Settings
from storage.database import open_database
from storage.webhook_deliveries import WebhookDeliveries

log = structlog.get_logger("refunds.webhooks")

Ring = Callable[[str], Awaitable[None]]
"""Tells the refund with this id that a settlement changed; raises when it could not be told."""

PATH = "/webhooks/bank"
SOURCE = "bank"
MAX_BODY = 64 * 1024
MAX_EVENT_ID = 128
RING_TIMEOUT_SECONDS = 10.0
TYPES = frozenset({"refund.succeeded", "refund.failed"})
_EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_LEG_KEY = re.compile(r"^(refund-[A-Za-z0-9][A-Za-z0-9._:-]{0,127}):leg-[0-9]{1,3}$")


class _Refused(Exception):
    def __init__(self, status: int, outcome: str) -> None:
        super().__init__(outcome)
        self.status = status
        self.outcome = outcome


def webhook_app(
    secret: str,
    deliveries: WebhookDeliveries,
    ring: Ring,
    *,
    clock: Callable[[], float] = time.time,
    tolerance: float = TOLERANCE_SECONDS,
) -> web.Application:
    """The receiver's application: one route, ``POST /webhooks/bank``."""

    async def receive(request: web.Request) -> web.Response:
        try:
            body = await _bounded_body(request)
            _verify(request, secret, body, clock(), tolerance)
            event_id, kind, key = _event(body)
        except _Refused as refused:
            log.warning("webhook_refused", outcome=refused.outcome)
            return _answer(refused.status, refused.outcome)
        logged = {"delivery": event_id, "type": kind}
        try:
            state = await asyncio.to_thread(deliveries.begin, event_id, SOURCE, key)
        except SQLAlchemyError as err:
            log.error(
                "webhook_received", **logged, outcome="not_recorded", error=type(err).__name__
            )
            return _answer(503, "retry")
        if state == "completed":
            log.info("webhook_received", **logged, outcome="duplicate")
            return _answer(200, "duplicate")
        refund_id = key.rpartition(":leg-")[0]
        try:
            async with asyncio.timeout(RING_TIMEOUT_SECONDS):
                await ring(refund_id)
        except Exception as err:
            log.warning(
                "webhook_received", **logged, outcome="ring_failed", error=type(err).__name__
            )
            return _answer(503, "retry")
        try:
            await asyncio.to_thread(deliveries.complete, event_id)
        except SQLAlchemyError as err:
            # The refund was told; the provider's retry tells it again, which is harmless.
            log.error(
                "webhook_received", **logged, outcome="not_completed", error=type(err).__name__
            )
            return _answer(503, "retry")
        log.info("webhook_received", **logged, outcome="accepted", retried=state == "pending")
        return _answer(200, "accepted")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, receive)
    return app


async def serve_bank_webhooks(
    secret: str, deliveries: WebhookDeliveries, ring: Ring, *, host: str, port: int
) -> web.AppRunner:
    """Serve the receiver on ``host:port`` (``port`` 0: a free one, in ``runner.addresses``)."""
    runner = web.AppRunner(webhook_app(secret, deliveries, ring), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def serve_bank_webhooks_from_settings(settings: Settings, ring: Ring) -> web.AppRunner:
    """The receiver ``refunds up`` and ``refunds webhooks`` run: the secret from its file (0600),
    deliveries in the system of record, on ``webhook_host:webhook_port``."""
    secret = read_secret_text(settings.bank_webhook_secret_path, "bank webhook secret")
    deliveries = WebhookDeliveries(open_database(settings.database_url))
    return await serve_bank_webhooks(
        secret, deliveries, ring, host=settings.webhook_host, port=settings.webhook_port
    )


async def _bounded_body(request: web.Request) -> bytes:
    """The raw body, refused (413) past 64 KiB without reading further."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _Refused(413, "too_large")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise _Refused(413, "too_large")
    return b"".join(chunks)


def _verify(request: web.Request, secret: str, body: bytes, now: float, tolerance: float) -> None:
    headers = request.headers.getall("Webhook-Signature", [])
    if len(headers) != 1:
        raise _Refused(400, "malformed_signature")
    try:
        signed = parse_signature_header(headers[0])
    except MalformedSignatureError:
        raise _Refused(400, "malformed_signature") from None
    if verify_signature(headers[0], secret, body, now, tolerance) is not None:
        stale = abs(now - signed.timestamp) > tolerance
        raise _Refused(401, "stale_signature" if stale else "forged_signature")


def _event(body: bytes) -> tuple[str, str, str]:
    """The event's id, type and leg key; 400 unless they are all there and well-formed."""
    try:
        event: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "not_json") from None
    if not isinstance(event, dict):
        raise _Refused(400, "not_an_event")
    event_id, kind = event.get("id"), event.get("type")
    if (
        not isinstance(event_id, str)
        or len(event_id) > MAX_EVENT_ID
        or not _EVENT_ID.match(event_id)
    ):
        raise _Refused(400, "bad_event_id")
    if kind not in TYPES:
        raise _Refused(400, "unknown_type")
    data = event.get("data")
    refund = data.get("refund") if isinstance(data, dict) else None
    key = refund.get("idempotency_key") if isinstance(refund, dict) else None
    if not isinstance(key, str) or not _LEG_KEY.match(key):
        raise _Refused(400, "bad_refund_key")
    return event_id, str(kind), key


def _answer(status: int, outcome: str) -> web.Response:
    return web.json_response({"status": outcome}, status=status)
