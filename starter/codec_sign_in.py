"""Signing a browser in to the codec server, so the Web UI's decode requests carry proof.

The Web UI cannot add a bearer token to its codec requests, but with "include cross-origin
credentials" (``TEMPORAL_CODEC_INCLUDE_CREDENTIALS``) it sends the codec server's cookies. A person
opens ``/sign-in`` on the codec server once, gives the token, and gets an HTTP-only, same-site
cookie valid for ``SESSION`` that proves it: an HMAC of the time it was issued, keyed by the token.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web

from starter.codec_auth import bearer_matches

COOKIE = "refunds_codec_session"
SESSION = timedelta(hours=8)
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Codec server sign-in</title></head>
<body><main>
<h1>Decrypt refunds in the Temporal Web UI</h1>
<p>{message}</p>
<form method="post" action="/sign-in">
<label for="token">Codec token</label>
<input id="token" name="token" type="password" autocomplete="off" required>
<button type="submit">Sign in</button>
</form></main></body></html>
"""


def session_cookie(token: str, issued: int) -> str:
    proof = hmac.new(token.encode(), f"codec-session:{issued}".encode(), hashlib.sha256)
    return f"{issued}.{proof.hexdigest()}"


def session_valid(cookie: str, token: str, now: float) -> bool:
    issued_text, _, _ = cookie.partition(".")
    if not issued_text.isascii() or not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    if not 0 <= now - issued <= SESSION.total_seconds():
        return False
    expected = session_cookie(token, issued)
    return hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"), expected.encode())


def sign_in_routes(
    auth_token: str, clock: Callable[[], float] = time.time
) -> tuple[
    Callable[[web.Request], Awaitable[web.Response]],
    Callable[[web.Request], Awaitable[web.Response]],
]:
    """The ``GET`` and ``POST`` handlers of ``/sign-in``."""

    async def page(request: web.Request) -> web.Response:
        message = "Give the codec token to let the Web UI in this browser decrypt payloads."
        return web.Response(text=PAGE.format(message=message), content_type="text/html")

    async def sign_in(request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        if not isinstance(given, str) or not bearer_matches(f"Bearer {given}", auth_token):
            return web.Response(
                status=401,
                text=PAGE.format(message="That is not the codec token."),
                content_type="text/html",
            )
        response = web.Response(
            text=PAGE.format(message="Signed in: the Web UI in this browser now decrypts."),
            content_type="text/html",
        )
        response.set_cookie(
            COOKIE,
            session_cookie(auth_token, int(clock())),
            max_age=int(SESSION.total_seconds()),
            httponly=True,
            samesite="Strict",
            path="/",
        )
        return response

    return page, sign_in
