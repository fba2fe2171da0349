"""A local payment provider for bank refunds, speaking the API ``activities.bank`` documents, as
strictly as the real provider: the bearer API key, the ``Idempotency-Key`` of the IETF draft (400
missing or not an sf-string, 409 while in flight, 422 for another payload, the first response
again for the same one), the body, the payment and what is left to refund on it.

A new refund is ``pending``; after the settle delay (a task, resumed when the simulator starts
again) it ``succeeded``, or ``failed`` with ``account_closed`` for references in
``faults.settlement_fail``, and the signed webhook goes to the webhook URL, retried with backoff
on anything but 2xx, unless ``faults.webhook_lost()``. References in ``faults.refused`` cannot be
refunded (404 ``payment_not_found``, or 422 with the fault's code). Every call waits
``faults.delay()``; ``faults.transient()`` answers 503 before anything happens, or loses the
answer after the refund was made (the connection drops, or the answer comes too late).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Literal

import httpx
import structlog
from aiohttp import web

from activities.secret_files import read_secret_text, write_secret_once
from domain.certificates import Channel
from domain.webhook_signatures import signature_header
from settings import Settings
from simulators.bank_protocol import (
    ApiError,
    RefundPayload,
    check_bearer,
    idempotency_key,
    refund_payload,
    request_body,
)
from simulators.bank_state import (
    CENT,
    PENDING,
    SUCCEEDED,
    BankLedger,
    BankRefund,
    Creation,
    SimulatedBankRefund,
    from_minor,
)
from simulators.faults import ProtocolFaults, faults_for
from simulators.known_payments import PaymentLookup, payments_of
from storage.database import open_database

log = structlog.get_logger("refunds.simulators.bank")

SETTLEMENT_FAILURE = ("account_closed", "The destination bank account is closed.")
JSON = "application/json"
LoseAnswer = Literal["drop", "late"]


class BankSimulator:
    """The provider's refund API and its settlement webhooks, on its own state file."""

    def __init__(
        self,
        state_file: Path,
        *,
        api_key: str,
        webhook_secret: str,
        webhook_url: str,
        payments: PaymentLookup,
        settle_seconds: float = 3.0,
        faults: ProtocolFaults | None = None,
        lose_answer: LoseAnswer = "drop",
        late_seconds: float = 11.0,
        webhook_attempts: int = 5,
        webhook_backoff_seconds: float = 0.5,
        webhook_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """A lost answer drops the connection, or comes ``late_seconds`` late (past the
        caller's timeout); a webhook is tried ``webhook_attempts`` times, the waits doubling
        from ``webhook_backoff_seconds``."""
        self.ledger = BankLedger(state_file)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.payments = payments
        self.settle_seconds = settle_seconds
        self.faults = faults or ProtocolFaults()
        self.lose_answer: LoseAnswer = lose_answer
        self.late_seconds = late_seconds
        self.webhook_attempts = webhook_attempts
        self.webhook_backoff_seconds = webhook_backoff_seconds
        self.clock = clock
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = webhook_client
        self._owns_client = webhook_client is None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, payments: PaymentLookup | None = None
    ) -> BankSimulator:
        """The simulator ``refunds up`` runs: its secrets from their files (0600), the payments
        of the system of record, the ``REFUNDS_FAULT_*`` faults."""
        faults = faults_for(
            Channel.BANK,
            transient_rate=settings.fault_transient_rate,
            latency_ms=settings.fault_latency_ms,
            reject=settings.fault_reject,
            settlement_fail=settings.fault_settlement_fail,
            webhook_loss_rate=settings.fault_webhook_loss_rate,
        )
        if payments is None:
            payments = payments_of(open_database(settings.database_url), Channel.BANK)
        return cls(
            settings.simulator_state_dir / "bank.db",
            api_key=read_secret_text(settings.bank_api_key_path, "bank API key"),
            webhook_secret=read_secret_text(
                settings.bank_webhook_secret_path, "bank webhook secret"
            ),
            webhook_url=settings.bank_webhook_url,
            payments=payments,
            settle_seconds=settings.simulator_settle_seconds,
            faults=faults,
            late_seconds=settings.channel_timeout_seconds + 1,
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/v1/refunds", self._create)
        app.router.add_get("/v1/refunds/{key}", self._show)

        async def started(_app: web.Application) -> None:
            await self.start()

        async def stopped(_app: web.Application) -> None:
            await self.stop()

        app.on_startup.append(started)
        app.on_cleanup.append(stopped)
        return app

    def refunds(self) -> list[SimulatedBankRefund]:
        """Every refund made, oldest first."""
        return [
            SimulatedBankRefund(r.idempotency_key, r.payment, from_minor(r.amount), r.status)
            for r in self.ledger.all()
        ]

    async def start(self) -> None:
        """Resume what a stop interrupted: pending settlements, undelivered webhooks."""
        now = self.clock()
        for refund in self.ledger.pending():
            wait = max(0.0, refund.created + self.settle_seconds - now)
            self._spawn(self._settle_later(refund.idempotency_key, wait))
        for refund in self.ledger.unnotified():
            self._spawn(self._notify(refund))

    async def stop(self) -> None:
        """Cancel settlements and deliveries under way (resumed by ``start``)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
        self.ledger.dispose()

    async def _create(self, request: web.Request) -> web.StreamResponse:
        try:
            check_bearer(request.headers.getall("Authorization", []), self.api_key)
            key = idempotency_key(request.headers.getall("Idempotency-Key", []))
            payload = refund_payload(request.content_type, await request_body(request))
        except ApiError as err:
            await self.faults.delay()
            return err.response()
        if key in self._in_flight:
            await self.faults.delay()
            message = "a request with this Idempotency-Key is being processed"
            return ApiError(409, "idempotency_in_flight", message, {"Retry-After": "1"}).response()
        self._in_flight.add(key)
        try:
            await self.faults.delay()
            fault = self.faults.transient()
            if fault == "fail_before":
                return ApiError(503, "unavailable", "the provider is unavailable").response()
            try:
                status, body = self._refund(key, payload)
            except ApiError as err:
                return err.response()
        finally:
            self._in_flight.discard(key)
        if fault == "lose_answer":
            await self._lose_answer(request)
        return web.Response(status=status, text=body, content_type=JSON)

    def _refund(self, key: str, payload: RefundPayload) -> tuple[int, str]:
        found = self.ledger.find(key)
        if found is not None:
            return self._repeat(found.fingerprint == payload.fingerprint(), found.first_response)
        refusal = self.faults.refusal(payload.payment)
        if refusal is not None:
            code = refusal or "payment_not_found"
            status = 404 if code == "payment_not_found" else 422
            raise ApiError(status, code, "this payment cannot be refunded")
        known = self.payments(payload.payment)
        if known is None:
            raise ApiError(404, "payment_not_found", "no payment has this reference")
        if known.currency != payload.currency:
            raise ApiError(400, "invalid_request", "the currency is not the payment's")
        refund = BankRefund(
            idempotency_key=key,
            refund_id=f"re_{secrets.token_hex(12)}",
            payment=payload.payment,
            amount=payload.amount,
            currency=payload.currency,
            status=PENDING,
            failure_code=None,
            failure_message=None,
            created=int(self.clock()),
            settled=None,
        )
        total = int((known.amount / CENT).to_integral_exact())
        result = self.ledger.create(refund, payload.fingerprint(), total, payload.reason)
        if result.decision is Creation.OVER_REFUND:
            message = "the refunds of this payment would exceed its amount"
            raise ApiError(422, "amount_exceeds_refundable", message)
        assert result.first_response is not None
        if result.decision is not Creation.CREATED:
            return self._repeat(result.decision is Creation.REPEATED, result.first_response)
        log.info("bank_simulator_refund_created", refund_id=refund.refund_id)
        self._spawn(self._settle_later(key, self.settle_seconds))
        return 201, result.first_response

    @staticmethod
    def _repeat(same_payload: bool, first_response: str) -> tuple[int, str]:
        if not same_payload:
            message = "this Idempotency-Key was used for another request"
            raise ApiError(422, "idempotency_key_reused", message)
        return 200, first_response

    async def _show(self, request: web.Request) -> web.StreamResponse:
        try:
            check_bearer(request.headers.getall("Authorization", []), self.api_key)
        except ApiError as err:
            await self.faults.delay()
            return err.response()
        await self.faults.delay()
        fault = self.faults.transient()
        if fault == "fail_before":
            return ApiError(503, "unavailable", "the provider is unavailable").response()
        found = self.ledger.find(request.match_info["key"])
        if fault == "lose_answer":
            await self._lose_answer(request)
        if found is None:
            return ApiError(404, "refund_not_found", "no refund has this key").response()
        return web.json_response(found.refund.as_object())

    async def _lose_answer(self, request: web.Request) -> None:
        if self.lose_answer == "late":
            await asyncio.sleep(self.late_seconds)
        elif request.transport is not None:
            request.transport.abort()

    async def _settle_later(self, key: str, wait: float) -> None:
        await asyncio.sleep(wait)
        found = self.ledger.find(key)
        if found is None:
            return
        failing = found.refund.payment in self.faults.settlement_fail
        failure = SETTLEMENT_FAILURE if failing else None
        settled = self.ledger.settle(key, int(self.clock()), failure)
        if settled is None:
            return
        if self.faults.webhook_lost():
            log.info("bank_simulator_webhook_lost", refund_id=settled.refund_id)
            self.ledger.mark_notified(key)
            return
        await self._notify(settled)

    async def _notify(self, refund: BankRefund) -> None:
        """Deliver the settlement's webhook, retrying with backoff on anything but 2xx."""
        kind = "refund.succeeded" if refund.status == SUCCEEDED else "refund.failed"
        event = {
            "id": f"evt_{refund.refund_id.removeprefix('re_')}_{refund.status}",
            "type": kind,
            "created": refund.settled or int(self.clock()),
            "data": {"refund": refund.as_object()},
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        for attempt in range(self.webhook_attempts):
            if attempt:
                await asyncio.sleep(self.webhook_backoff_seconds * 2 ** (attempt - 1))
            headers = {
                "Content-Type": JSON,
                "Webhook-Signature": signature_header(self.webhook_secret, int(self.clock()), body),
            }
            try:
                response = await self._client.post(self.webhook_url, content=body, headers=headers)
            except httpx.HTTPError as err:
                log.info(
                    "bank_simulator_webhook_failed", delivery=event["id"], error=type(err).__name__
                )
                continue
            if 200 <= response.status_code < 300:
                log.info("bank_simulator_webhook_delivered", delivery=event["id"], attempt=attempt)
                self.ledger.mark_notified(refund.idempotency_key)
                return
            log.info(
                "bank_simulator_webhook_refused", delivery=event["id"], status=response.status_code
            )
        log.warning("bank_simulator_webhook_given_up", delivery=event["id"])
        self.ledger.mark_notified(refund.idempotency_key)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("bank_simulator_task_failed", error=type(error).__name__)


async def serve_bank(simulator: BankSimulator, host: str, port: int) -> web.AppRunner:
    """Serve ``simulator`` on ``host:port`` (``port`` 0: a free one, in ``runner.addresses``);
    ``await runner.cleanup()`` stops it and cancels its settlement tasks."""
    runner = web.AppRunner(simulator.app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def ensure_local_bank_secrets(settings: Settings) -> None:
    """The local provider's API key and webhook secret, made once (0600 in the 0700
    ``channel_key_dir``) where their files are not configured."""
    if settings.bank_api_key_file is None:
        write_secret_once(settings.bank_api_key_path, secrets.token_urlsafe(32).encode())
    if settings.bank_webhook_secret_file is None:
        write_secret_once(settings.bank_webhook_secret_path, secrets.token_urlsafe(32).encode())
