"""The payment provider's webhook signatures: ``Webhook-Signature: t=<unix>,v1=<hex>``.

``v1`` is the hex HMAC-SHA256, under the shared webhook secret, of ``"<t>.<raw body>"``. While a
secret is being rotated the provider signs with each live secret, so a header may carry several
``v1`` values; one matching is enough. Other schemes (``v0=...``) are ignored, as the provider
may add them. A delivery whose ``t`` is more than the tolerance away from now, either way, is
refused, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

SCHEME = "v1"
TOLERANCE_SECONDS = 300
MAX_HEADER = 1024
MAX_SIGNATURES = 8
_HEX = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")


class MalformedSignatureError(ValueError):
    """The header is not ``t=<unix>,v1=<hex>[,v1=<hex>...]``; the message is one line."""


@dataclass(frozen=True)
class SignedHeader:
    timestamp: int
    signatures: tuple[str, ...]
    """Every ``v1`` value, lowercase hex."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` signature of ``body`` sent at ``timestamp`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(
    secret: str, timestamp: int, body: bytes, *, rotating: Sequence[str] = ()
) -> str:
    """The ``Webhook-Signature`` value for ``body``, with a ``v1`` for ``secret`` and for each
    secret in ``rotating`` (the ones being rotated in or out)."""
    values = [compute_signature(s, timestamp, body) for s in (secret, *rotating)]
    return ",".join([f"t={timestamp}", *(f"{SCHEME}={value}" for value in values)])


def parse_signature_header(header: str) -> SignedHeader:
    """The header's timestamp and ``v1`` values; ``MalformedSignatureError`` unless it has
    exactly one ``t``, at least one ``v1`` and only well-formed elements."""
    if not header or len(header) > MAX_HEADER:
        raise MalformedSignatureError("the signature header is empty or too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for element in header.split(","):
        name, sep, value = element.strip().partition("=")
        if not sep or not _NAME.match(name) or not value:
            raise MalformedSignatureError("the signature header has an element not name=value")
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.match(value):
                raise MalformedSignatureError("the signature header needs one t=<unix seconds>")
            timestamp = int(value)
        elif name == SCHEME:
            if not _HEX.match(value):
                raise MalformedSignatureError("a v1 signature is not 64 lowercase hex digits")
            signatures.append(value)
    if timestamp is None:
        raise MalformedSignatureError("the signature header has no t=<unix seconds>")
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise MalformedSignatureError(f"the signature header needs 1 to {MAX_SIGNATURES} v1")
    return SignedHeader(timestamp, tuple(signatures))


def verify_signature(
    header: str,
    secret: str,
    body: bytes,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> str | None:
    """``None`` when ``header`` signs ``body`` under ``secret`` within ``tolerance`` seconds of
    ``now``; else what is wrong, in one line (it names no secret and no signature)."""
    try:
        signed = parse_signature_header(header)
    except MalformedSignatureError as err:
        return str(err)
    expected = compute_signature(secret, signed.timestamp, body)
    matched = False
    for candidate in signed.signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        return "no v1 signature matches the body under the webhook secret"
    if abs(now - signed.timestamp) > tolerance:
        return f"the signature's timestamp is more than {tolerance:g} seconds from now"
    return None
