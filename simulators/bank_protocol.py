"""The provider simulator's reading of requests, and its error answers: the bearer API key, the
``Idempotency-Key`` as the IETF draft defines it (an RFC 8941 Item whose value is a String; at
most 255 characters and no parameters here), and the refund body. Each check fails with the
API's own error."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MAX_KEY = 255
MAX_BODY = 16 * 1024
MAX_REASON = 200
MAX_PAYMENT = 64
MAX_AMOUNT = 10**12
FIELDS = frozenset({"payment", "amount", "currency", "reason"})
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ApiError(Exception):
    """An error answer of the provider's API: ``{"error": {"code", "message"}}``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = json.dumps({"error": {"code": self.code, "message": self.message}})
        return web.Response(
            status=self.status, text=body, content_type="application/json", headers=self.headers
        )


@dataclass(frozen=True)
class RefundPayload:
    payment: str
    amount: int
    """Minor units (fen)."""
    currency: str
    reason: str

    def fingerprint(self) -> str:
        """What makes two requests under one key the same request."""
        canonical = json.dumps(
            [self.payment, self.amount, self.currency, self.reason], separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def check_bearer(values: list[str], api_key: str) -> None:
    """Refuse (401) unless exactly one ``Authorization: Bearer <api key>`` was sent."""
    scheme, _, token = values[0].partition(" ") if len(values) == 1 else ("", "", "")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        raise ApiError(
            401, "unauthorized", "a valid API key is required", {"WWW-Authenticate": "Bearer"}
        )


def idempotency_key(values: list[str]) -> str:
    """The key of the one ``Idempotency-Key`` field sent; 400 when missing or malformed."""
    if not values:
        raise ApiError(
            400, "idempotency_key_missing", "this operation requires an Idempotency-Key header"
        )
    if len(values) > 1:
        raise ApiError(400, "invalid_request", "send one Idempotency-Key header, not several")
    key = parse_sf_string(values[0])
    if key is None:
        raise ApiError(
            400, "invalid_request", "the Idempotency-Key must be a Structured Field String"
        )
    if not 0 < len(key) <= MAX_KEY:
        raise ApiError(400, "invalid_request", f"the Idempotency-Key has 1 to {MAX_KEY} chars")
    return key


def parse_sf_string(field: str) -> str | None:
    """The String of a field value that is exactly one sf-string (RFC 8941 section 4.2.5), or
    ``None``: a double-quoted run of printable ASCII where only ``\\"`` and ``\\\\`` escape."""
    text = field.strip(" ")
    if len(text) < 2 or text[0] != '"':
        return None
    chars: list[str] = []
    index = 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1 : index + 2]
            if following not in ('"', "\\"):
                return None
            chars.append(following)
            index += 2
        elif char == '"':
            return "".join(chars) if index == len(text) - 1 else None
        elif " " <= char <= "~":
            chars.append(char)
            index += 1
        else:
            return None
    return None


async def request_body(request: web.Request) -> bytes:
    """The request body, refused past what a refund request can be (never buffered beyond)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(400, "invalid_request", "the body is too large")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BODY + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(400, "invalid_request", "the body is too large")
    return b"".join(chunks)


def refund_payload(content_type: str, body: bytes) -> RefundPayload:
    """The refund asked for; 400 ``invalid_request`` unless the body is exactly the API's."""
    if content_type != "application/json":
        raise ApiError(400, "invalid_request", "the body must be application/json")
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_request", "the body is not JSON") from None
    if not isinstance(data, dict) or set(data) != FIELDS:
        raise ApiError(400, "invalid_request", f"the body needs exactly {sorted(FIELDS)}")
    payment, amount, currency, reason = (
        data[k] for k in ("payment", "amount", "currency", "reason")
    )
    if not isinstance(payment, str) or not 0 < len(payment) <= MAX_PAYMENT:
        raise ApiError(400, "invalid_request", "payment must be a reference of 1 to 64 chars")
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise ApiError(400, "invalid_request", "amount must be a positive integer (minor units)")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ApiError(400, "invalid_request", "currency must be an ISO 4217 code")
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ApiError(400, "invalid_request", f"reason must be text of at most {MAX_REASON}")
    return RefundPayload(payment, amount, currency, reason)
