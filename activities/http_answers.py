"""Reading a channel's HTTP answer with a bound: an answer larger than a channel ever sends is no
answer to believe (the caller's outcome is unknown)."""

from __future__ import annotations

import httpx

MAX_BODY_BYTES = 64 * 1024


async def bounded_body(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body of a streamed ``response``; ``httpx.DecodingError`` past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise httpx.DecodingError("answer too large")
        chunks.append(chunk)
    return b"".join(chunks)
