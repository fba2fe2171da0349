"""The bank channel: refunds through the payment provider's refund API, over HTTPS with a bearer
API key, idempotent per leg by the IETF ``Idempotency-Key`` header.

The provider's API (``simulators.bank`` serves the same on loopback):

``POST {base}/v1/refunds`` with ``Authorization: Bearer <api key>``, ``Idempotency-Key:
"<key>"`` (an sf-string: the leg's ``refund-<certificate>:leg-<n>``, printable ASCII, at most
255 characters), ``Content-Type: application/json`` and the body ``{"payment": <reference>,
"amount": <int, minor units>, "currency": "CNY", "reason": <text of at most 200>}``. It answers
201 with the refund object, or 200 with the first response when the same key comes again with
the same payload. The refund object is ``{"id": "re_...", "idempotency_key", "payment", "amount",
"currency", "status": "pending" | "succeeded" | "failed", "failure_code": null | "account_closed"
| ..., "failure_message", "created": <unix>, "settled": <unix> | null}``. Errors are ``{"error":
{"code", "message"}}``: 400 ``idempotency_key_missing`` or ``invalid_request``, 401
``unauthorized``, 404 ``payment_not_found``, 409 ``idempotency_in_flight`` (with
``Retry-After``), 422 ``idempotency_key_reused`` (the key came with another payload) or
``amount_exceeds_refundable`` (the refunds of the payment, failed ones aside, would exceed it),
503 ``unavailable``.

``GET {base}/v1/refunds/{key, URL-encoded}``: 200 with the refund object, 404 ``refund_not_found``.

Webhooks: the provider POSTs ``{"id": "evt_...", "type": "refund.succeeded" | "refund.failed",
"created": <unix>, "data": {"refund": <refund object>}}`` to the configured URL, signed by
``Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``
(``domain.webhook_signatures``), and retries with backoff on anything but 2xx
(``starter.bank_webhooks`` receives them).

``pending`` is settling, ``succeeded`` returned, ``failed`` refused. A timeout, a reset, a 5xx,
a 409, or an answer that is unreadable or about another amount, currency or key is
``ChannelUnknownError``: the next attempt looks the key up first.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from activities.gateways import ChannelAnswer, ChannelOutcome, ChannelRefund, ChannelUnknownError
from activities.http_answers import bounded_body
from activities.secret_files import read_secret_text
from domain.certificates import Channel
from settings import Settings

log = structlog.get_logger("refunds.bank")

CENT = Decimal("0.01")
CURRENCY = "CNY"
MAX_KEY = 255
MAX_REASON = 200
MAX_MESSAGE = 200
MAX_RETRY_AFTER = 3600.0
STATUSES = frozenset({"pending", "succeeded", "failed"})
_CODE = re.compile(r"^[a-z0-9_]{1,64}$")
_REFUND_ID = re.compile(r"^re_[A-Za-z0-9_]{1,60}$")
_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")

ATTENTION_KEY = "the provider refused our API key: check REFUNDS_BANK_API_KEY_FILE, then retry"
FAILURES = {
    "account_closed": "the bank account is closed: ask the customer for another account",
    "account_frozen": "the bank account is frozen: ask the customer to contact their bank",
    "no_account": "the bank has no such account: ask the customer to check their details",
    "declined": "the customer's bank declined the refund",
    "expired_or_canceled_card": "the card was cancelled or has expired",
    "lost_or_stolen_card": "the card was reported lost or stolen",
}
REFUSALS = {
    "payment_not_found": "the provider has no payment with this reference",
    "amount_exceeds_refundable": "the amount exceeds what is left to refund on the payment: it "
    "may have been refunded outside this engine; check it at the provider, then retry or "
    "resolve by hand",
    "idempotency_key_reused": "the provider holds this leg's key for another amount or "
    "payment: compare the leg with the provider's refund before retrying",
    "idempotency_key_missing": "the provider wants an Idempotency-Key (a bug in this client)",
    "invalid_request": "the provider rejected the request as invalid",
}


ATTENTION_CODES = frozenset({"idempotency_key_reused", "amount_exceeds_refundable"})
"""Refusals that do not prove the money never moved (the payment may have been refunded outside
this engine): a person looks, and the leg never falls back to the account balance."""


class BankChannel:
    """Returns payments through the provider; one per worker, its HTTP client shared."""

    channel: Channel = Channel.BANK

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, client: httpx.AsyncClient | None = None
    ) -> BankChannel:
        """The channel the settings describe; the API key file must be 0600
        (``SecretFileError``)."""
        api_key = read_secret_text(settings.bank_api_key_path, "bank API key")
        return cls(
            settings.bank_api, api_key, timeout=settings.channel_timeout_seconds, client=client
        )

    def __repr__(self) -> str:
        return f"BankChannel({self.api_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP client this channel made (an injected one stays open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def request_id(self, idempotency_key: str) -> str:
        """The key itself, which must fit the draft's sf-string: printable ASCII, 1 to 255."""
        if not _KEY.match(idempotency_key):
            raise ValueError("a bank refund's key is 1 to 255 printable ASCII characters")
        return idempotency_key

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        if order.currency != CURRENCY:
            return _refused(
                "currency_not_supported", f"the provider refunds CNY, not {order.currency}"
            )
        amount = minor_units(order.amount)
        if amount is None:
            return _refused("invalid_amount", f"{order.amount} is not a positive amount in fen")
        key = self.request_id(order.request_id)
        body = {
            "payment": order.reference,
            "amount": amount,
            "currency": order.currency,
            "reason": " ".join(order.reason.split())[:MAX_REASON],
        }
        headers = {"Idempotency-Key": sf_string(key), "Content-Type": "application/json"}
        content = json.dumps(body, separators=(",", ":")).encode()
        status, answer, retry_after = await self._call("POST", "/v1/refunds", key, headers, content)
        if status in (200, 201):
            return self._answer(order, amount, answer)
        if status in (401, 403):
            return _refused("unauthorized" if status == 401 else "forbidden", ATTENTION_KEY, True)
        if status == 409:
            raise ChannelUnknownError(
                "the provider is still processing this key", retry_after=retry_after or 1.0
            )
        if status in (400, 404, 422):
            code, said = _error(answer)
            if status == 404 and code != "payment_not_found":
                raise ChannelUnknownError("the provider answered 404 without naming the payment")
            known = REFUSALS.get(code) or FAILURES.get(code, "the provider refused the refund")
            reason = f"{known} (provider: {said})" if said else known
            return _refused(code, reason, code in ATTENTION_CODES)
        raise ChannelUnknownError(f"the provider answered HTTP {status}", retry_after=retry_after)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        amount = minor_units(order.amount)
        if amount is None or order.currency != CURRENCY:
            return None
        key = self.request_id(order.request_id)
        path = f"/v1/refunds/{quote(key, safe='')}"
        status, answer, retry_after = await self._call("GET", path, key, {}, None)
        if status == 200:
            return self._answer(order, amount, answer)
        if status == 404 and _error(answer)[0] == "refund_not_found":
            return None
        raise ChannelUnknownError(
            f"the provider cannot tell now (HTTP {status})", retry_after=retry_after
        )

    def _answer(self, order: ChannelRefund, amount: int, answer: Any) -> ChannelAnswer:
        """The refund object as an answer, believed only when it is about this very request."""
        if not isinstance(answer, dict):
            raise ChannelUnknownError("the provider's refund is not an object")
        refund_id = answer.get("id")
        if not isinstance(refund_id, str) or not _REFUND_ID.match(refund_id):
            raise ChannelUnknownError("the provider's refund has no valid id")
        if (
            answer.get("idempotency_key") != order.request_id
            or answer.get("payment") != order.reference
            or type(answer.get("amount")) is not int
            or answer.get("amount") != amount
            or answer.get("currency") != order.currency
        ):
            raise ChannelUnknownError("the provider answered about another key, payment or amount")
        status = answer.get("status")
        if status not in STATUSES:
            raise ChannelUnknownError("the provider's refund has an unknown status")
        if status == "pending":
            at = _time(answer.get("created"))
            return ChannelAnswer(ChannelOutcome.SETTLING, transaction_id=refund_id, at=at)
        if status == "succeeded":
            at = _time(answer.get("settled"))
            return ChannelAnswer(ChannelOutcome.RETURNED, transaction_id=refund_id, at=at)
        code = answer.get("failure_code")
        code = code if isinstance(code, str) and _CODE.match(code) else "failed"
        known = FAILURES.get(code, "the bank refused the refund at settlement")
        said = _text(answer.get("failure_message"))
        return ChannelAnswer(
            ChannelOutcome.REFUSED,
            code=code,
            reason=f"{known} (provider: {said})" if said else known,
            at=_time(answer.get("settled")),
        )

    async def _call(
        self, method: str, path: str, key: str, headers: dict[str, str], content: bytes | None
    ) -> tuple[int, Any, float | None]:
        """The status, parsed JSON body (``None`` when not JSON) and ``Retry-After`` of the
        answer; ``ChannelUnknownError`` when there is none."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout))
        sent = {**headers, "Authorization": f"Bearer {self._api_key}"}
        try:
            async with asyncio.timeout(self.timeout):
                async with self._client.stream(
                    method, self.api_url + path, headers=sent, content=content
                ) as response:
                    status = response.status_code
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    raw = await bounded_body(response)
        except (TimeoutError, httpx.HTTPError, OSError) as err:
            log.warning("bank_no_answer", method=method, key=key, error=type(err).__name__)
            raise ChannelUnknownError(
                f"no answer from the provider ({type(err).__name__})"
            ) from None
        try:
            answer: Any = json.loads(raw) if raw else None
        except (UnicodeDecodeError, ValueError):
            answer = None
        if 200 <= status < 300 and answer is None:
            log.warning("bank_unreadable_answer", method=method, key=key, status=status)
            raise ChannelUnknownError("the provider's answer is not JSON")
        log.info("bank_answer", method=method, key=key, status=status)
        return status, answer, retry_after


def minor_units(amount: Decimal) -> int | None:
    """``amount`` in fen, exactly, or ``None`` when it is not a positive whole number of fen."""
    if not amount.is_finite() or amount <= 0:
        return None
    try:
        fen = amount / CENT
        exact = fen.to_integral_exact()
    except InvalidOperation:
        return None
    return int(exact) if exact == fen else None


def sf_string(value: str) -> str:
    """``value`` as an RFC 8941 sf-string (printable ASCII; ``"`` and ``\\`` escaped)."""
    if not all(" " <= char <= "~" for char in value):
        raise ValueError("an sf-string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _refused(code: str, reason: str, attention: bool = False) -> ChannelAnswer:
    return ChannelAnswer(ChannelOutcome.REFUSED, code=code, reason=reason, attention=attention)


def _error(answer: Any) -> tuple[str, str]:
    """The error's code and message (``ChannelUnknownError`` when it has no valid code)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(code, str) or not _CODE.match(code):
        raise ChannelUnknownError("the provider's error answer is unreadable")
    assert isinstance(error, dict)
    return code, _text(error.get("message"))


def _text(value: object) -> str:
    return " ".join(value.split())[:MAX_MESSAGE] if isinstance(value, str) else ""


def _time(value: object) -> datetime | None:
    if type(value) is not int or not 0 < value < 10**11:
        return None
    return datetime.fromtimestamp(value, UTC)


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delay form only), at most an hour."""
    digits = (value or "").strip()
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    return MAX_RETRY_AFTER if len(digits) > 4 else min(float(digits), MAX_RETRY_AFTER)
