"""The Alipay payment channel over Alipay's OpenAPI: ``alipay.trade.refund`` to return a payment,
``alipay.trade.fastpay.refund.query`` to ask what became of one, both RSA2-signed both ways.

An answer is believed only when its signature verifies against Alipay's public key; anything else
(a timeout, a reset, a 5xx, a bad or missing signature, an answer that does not add up) is
``ChannelUnknownError``: not even a refusal is taken on trust, since a forged one could make the
engine pay the customer a second way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa

from activities.alipay_signing import (
    ResponseFormatError,
    read_private_key,
    read_public_key,
    sign_params,
    split_response,
    verify,
)
from activities.gateways import ChannelAnswer, ChannelOutcome, ChannelRefund, ChannelUnknownError
from activities.http_answers import bounded_body
from domain.certificates import Channel
from settings import Settings

log = structlog.get_logger("refunds.alipay")

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
REFUND = "alipay.trade.refund"
QUERY = "alipay.trade.fastpay.refund.query"
CENT = Decimal("0.01")
MAX_MESSAGE = 200
NO_FUND_CHANGE_RETRY = 10.0
"""Alipay asks for a query, not a resend, after ``fund_change`` N, and not within 10 seconds."""

REFUSAL_CODES = frozenset({"40001", "40002", "40004", "40006"})
UNKNOWN_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "aop.unknow-error"})
TOP_UP = "the merchant's Alipay account cannot pay it now: top up the merchant account, then retry"
REFUNDED_ELSEWHERE = (
    ": it may have been refunded outside this engine; check it at Alipay, then retry or resolve"
)
ATTENTION_REASONS = {
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": TOP_UP,
    "ACQ.REASON_TRADE_BEEN_FREEZEN": "the trade is frozen at Alipay; " + TOP_UP,
    "ACQ.REASON_TRADE_REFUND_FEE_ERR": "the amount exceeds what is left to refund on the trade"
    + REFUNDED_ELSEWHERE,
    "ACQ.TRADE_STATUS_ERROR": "the trade's status at Alipay allows no refund (closed or unpaid)"
    + REFUNDED_ELSEWHERE,
}
"""Refused for now, or refused in a way that does not prove the money never moved: a person
looks, and the leg never falls back to the account balance."""
REASONS = {
    "ACQ.TRADE_NOT_EXIST": "Alipay has no trade with this payment reference",
    "ACQ.TRADE_HAS_FINISHED": "the trade is finished at Alipay and can no longer be refunded",
    "ACQ.TRADE_NOT_ALLOW_REFUND": "Alipay allows no refund of this trade (past its refund period)",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "Alipay refunds this trade only in full",
    "ACQ.INVALID_PARAMETER": "Alipay rejected a parameter of the request",
    "isv.invalid-signature": "Alipay rejected the request's signature: check that the app "
    "private key matches the app public key configured at Alipay",
    "isv.invalid-app-id": "Alipay does not know the app id: check REFUNDS_ALIPAY_APP_ID",
    "40006": "the Alipay app lacks the permission to refund: enable it at Alipay",
}


class AlipayChannel:
    """Returns payments to Alipay; one instance per worker, its HTTP client shared by calls."""

    channel: Channel = Channel.ALIPAY

    def __init__(
        self,
        gateway_url: str,
        app_id: str,
        app_private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        *,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.gateway_url = gateway_url
        self.app_id = app_id
        self._app_key = app_private_key
        self._alipay_key = alipay_public_key
        self.timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls, settings: Settings, *, client: httpx.AsyncClient | None = None
    ) -> AlipayChannel:
        """The channel the settings describe; its key files must be 0600 (``SecretFileError``)."""
        app_key = read_private_key(settings.alipay_app_key_path, "Alipay app private key")
        alipay_key = read_public_key(settings.alipay_public_key_path, "Alipay public key")
        return cls(
            settings.alipay_gateway,
            settings.alipay_app_id,
            app_key,
            alipay_key,
            timeout=settings.channel_timeout_seconds,
            client=client,
        )

    async def aclose(self) -> None:
        """Close the HTTP client this channel made (an injected one stays open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def request_id(self, idempotency_key: str) -> str:
        return out_request_no(idempotency_key)

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        if order.currency != "CNY":
            return _refused("currency_not_supported", f"Alipay refunds CNY, not {order.currency}")
        amount = yuan(order.amount)
        if amount is None:
            return _refused("invalid_amount", f"{order.amount} is not an amount in fen")
        answer = await self._call(
            REFUND,
            order,
            {
                "out_trade_no": order.reference,
                "out_request_no": order.request_id,
                "refund_amount": amount,
                "refund_reason": order.reason,
            },
        )
        code, sub_code = _field(answer, "code", 16), _field(answer, "sub_code", 64)
        if code == "10000":
            return self._refunded(order, answer)
        if code == "20000" or sub_code in UNKNOWN_SUB_CODES:
            raise ChannelUnknownError(f"Alipay is unavailable ({sub_code or code}): ask again")
        if sub_code == "ACQ.DISCORDANT_REPEAT_REQUEST":
            found = await self.lookup(order)
            if found is None:
                raise ChannelUnknownError("Alipay calls the request a discordant repeat")
            return found
        if code not in REFUSAL_CODES:
            raise ChannelUnknownError(f"Alipay answered an unknown code {code!r}")
        said = _message(answer)
        if sub_code in ATTENTION_REASONS:
            reason = f"{ATTENTION_REASONS[sub_code]} (Alipay: {said})"
            return _refused(sub_code, reason, attention=True)
        refusal = sub_code or code
        known = REASONS.get(refusal) or REASONS.get(code) or "Alipay refused the refund"
        return _refused(refusal, f"{known} (Alipay: {said})" if said else known)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        answer = await self._call(
            QUERY,
            order,
            {
                "out_trade_no": order.reference,
                "out_request_no": order.request_id,
                "query_options": ["gmt_refund_pay"],
            },
        )
        code, sub_code = _field(answer, "code", 16), _field(answer, "sub_code", 64)
        if code != "10000":
            if sub_code == "ACQ.TRADE_NOT_EXIST":
                return None
            raise ChannelUnknownError(f"Alipay cannot tell now ({sub_code or code})")
        refunded = _field(answer, "refund_amount", 16)
        if not refunded:
            return None
        if _field(answer, "out_request_no", 64) != order.request_id:
            raise ChannelUnknownError("Alipay answered about another refund request")
        if _amount(refunded) != order.amount:
            raise ChannelUnknownError("Alipay refunded another amount under this request")
        status = _field(answer, "refund_status", 32)
        if status not in ("", "REFUND_SUCCESS"):
            raise ChannelUnknownError(f"Alipay reports the refund {status[:32]}")
        return self._returned(order, answer)

    def _refunded(self, order: ChannelRefund, answer: dict[str, Any]) -> ChannelAnswer:
        fund_change = _field(answer, "fund_change", 1)
        if fund_change == "N":
            raise ChannelUnknownError(
                "Alipay moved no money on this request: query it", retry_after=NO_FUND_CHANGE_RETRY
            )
        if fund_change != "Y":
            raise ChannelUnknownError("Alipay answered success without fund_change")
        return self._returned(order, answer)

    def _returned(self, order: ChannelRefund, answer: dict[str, Any]) -> ChannelAnswer:
        trade_no = _field(answer, "trade_no", 64)
        if not trade_no or _field(answer, "out_trade_no", 64) not in ("", order.reference):
            raise ChannelUnknownError("Alipay's success names no trade, or another one")
        return ChannelAnswer(
            ChannelOutcome.RETURNED,
            transaction_id=f"{trade_no}/{order.request_id}",
            at=_beijing_time(_field(answer, "gmt_refund_pay", 19)),
        )

    async def _call(self, method: str, order: ChannelRefund, biz: dict[str, Any]) -> dict[str, Any]:
        """The verified answer to ``method``; ``ChannelUnknownError`` when there is none."""
        params = sign_params(
            {
                "app_id": self.app_id,
                "method": method,
                "format": "JSON",
                "charset": "utf-8",
                "sign_type": "RSA2",
                "timestamp": self._clock().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
                "version": "1.0",
                "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
            },
            self._app_key,
        )
        logged = {"method": method, "out_request_no": order.request_id}
        try:
            async with asyncio.timeout(self.timeout):
                status, body = await self._post(params)
        except (TimeoutError, httpx.HTTPError, OSError) as err:
            log.warning("alipay_no_answer", **logged, error=type(err).__name__)
            raise ChannelUnknownError(f"no answer from Alipay ({type(err).__name__})") from None
        if status != 200:
            log.warning("alipay_http_error", **logged, status=status)
            raise ChannelUnknownError(f"Alipay answered HTTP {status}")
        try:
            raw = split_response(body.decode("utf-8"), method)
        except (UnicodeDecodeError, ResponseFormatError) as err:
            log.warning("alipay_unreadable_answer", **logged)
            raise ChannelUnknownError(f"Alipay's answer is unreadable ({str(err)[:80]})") from None
        if raw.sign is None or not verify(raw.text, raw.sign, self._alipay_key):
            log.warning("alipay_bad_signature", **logged)
            raise ChannelUnknownError("Alipay's answer is not signed by Alipay's key")
        answer = raw.answer
        log.info(
            "alipay_answer",
            **logged,
            code=str(answer.get("code", ""))[:16],
            sub_code=str(answer.get("sub_code", ""))[:64],
        )
        return answer

    async def _post(self, params: dict[str, str]) -> tuple[int, bytes]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout))
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
        async with self._client.stream(
            "POST", self.gateway_url, data=params, headers=headers
        ) as response:
            if response.status_code != 200:
                return response.status_code, b""
            return 200, await bounded_body(response)


def out_request_no(idempotency_key: str) -> str:
    """Alipay's ``out_request_no`` for a leg's key: at most 64 letters and digits, the same for a
    key on every try."""
    return "RF" + hashlib.blake2b(idempotency_key.encode(), digest_size=16).hexdigest()


def yuan(amount: Decimal) -> str | None:
    """``amount`` as Alipay's ``refund_amount`` (yuan, exactly two decimals), or ``None`` when
    it is not a whole number of fen."""
    if not amount.is_finite():
        return None
    try:
        exact = amount.quantize(CENT)
    except InvalidOperation:
        return None
    return f"{exact:.2f}" if exact == amount else None


def _refused(code: str, reason: str, *, attention: bool = False) -> ChannelAnswer:
    return ChannelAnswer(ChannelOutcome.REFUSED, code=code, reason=reason, attention=attention)


def _field(answer: dict[str, Any], key: str, limit: int) -> str:
    """A text field of the answer ("" when absent); a longer or non-text one is not believed."""
    value = answer.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ChannelUnknownError(f"Alipay's answer has a malformed {key}")
    return value


def _message(answer: dict[str, Any]) -> str:
    said = answer.get("sub_msg") or answer.get("msg") or ""
    return " ".join(str(said).split())[:MAX_MESSAGE]


def _amount(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ChannelUnknownError("Alipay's answer has a malformed amount") from None
    if not value.is_finite():
        raise ChannelUnknownError("Alipay's answer has a malformed amount")
    return value


def _beijing_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None
