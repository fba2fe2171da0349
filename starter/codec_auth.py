"""Who may use the codec server: exactly ``Authorization: Bearer <token>``."""

from __future__ import annotations

import hmac


def bearer_matches(header: str, token: str) -> bool:
    """Whether ``header`` is ``Bearer <token>``, compared in constant time. Any other text
    (another scheme, no token, bytes that are not ASCII) is simply not it."""
    scheme, _, given = header.partition(" ")
    return scheme == "Bearer" and hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), token.encode()
    )
