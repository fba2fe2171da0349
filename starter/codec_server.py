"""``refunds codec-server``: lets the Temporal Web UI decrypt payloads for people allowed to.

Temporal's codec server protocol: ``POST /decode`` and ``POST /encode`` with a JSON body
``{"payloads": [...]}`` in protobuf JSON form. Browsers reach it cross-origin from the Web UI, so
it answers CORS for the configured origins only; with ``REFUNDS_CODEC_AUTH_TOKEN`` set, a request
must carry ``Authorization: Bearer <token>`` or the cookie of a browser signed in at ``/sign-in``
(``codec_sign_in``). Each
client may decode ``rate_per_minute`` times a minute (then 429), and every decode is logged with
who asked and which refunds and certificates it showed, never the data.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from codec import EncryptionCodec, EncryptionKeyError
from starter.codec_auth import bearer_matches
from starter.codec_sign_in import COOKIE, session_valid, sign_in_routes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
RATE_PER_MINUTE = 600
"""Opening a refund in the Web UI asks for a few decodes; a client asking 10 a second for a
minute is reading histories wholesale."""
LOGGED_IDS = 10
MAX_CLIENTS = 10_000
"""Buckets kept before idle ones are forgotten, so many client addresses cannot grow memory."""

log = structlog.get_logger("refunds.codec")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_hosts(port: int) -> list[str]:
    """The ``Host`` headers of requests addressed to this machine by name on ``port``."""
    return [f"127.0.0.1:{port}", f"localhost:{port}"]


class DecodeBudget:
    """A token bucket per client: ``per_minute`` requests a minute, in bursts up to that."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._left: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> bool:
        now = self.clock()
        if client not in self._left and len(self._left) >= MAX_CLIENTS:
            self._forget_full(now)
        left, since = self._left.get(client, (float(self.per_minute), now))
        left = min(float(self.per_minute), left + (now - since) * self.per_minute / 60)
        if left < 1:
            self._left[client] = (left, now)
            return False
        self._left[client] = (left - 1, now)
        return True

    def _forget_full(self, now: float) -> None:
        """Drop the clients idle for a minute: their buckets have refilled, as a new one's is."""
        for client, (_, since) in list(self._left.items()):
            if now - since >= 60:
                del self._left[client]


def shown_ids(payloads: Iterable[object]) -> dict[str, list[str]]:
    """The refund and certificate ids that decoded payloads name (for the decode log)."""
    found: dict[str, list[str]] = {"refunds": [], "certificates": []}
    for payload in payloads:
        data = getattr(payload, "data", b"")
        try:
            value = json.loads(data)
        except (ValueError, RecursionError):
            continue
        if not isinstance(value, dict):
            continue
        for field, bucket in (("refund_id", "refunds"), ("certificate_id", "certificates")):
            named = value.get(field)
            if isinstance(named, str) and named not in found[bucket]:
                found[bucket].append(named[:128])
    return {kind: ids[:LOGGED_IDS] for kind, ids in found.items()}


def codec_app(
    codec: EncryptionCodec,
    cors_origins: list[str],
    auth_token: str | None,
    *,
    rate_per_minute: int = RATE_PER_MINUTE,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    hosts: list[str] | None = None,
) -> web.Application:
    """``hosts``: the only ``Host`` headers answered (``None``: any)."""
    budget = DecodeBudget(rate_per_minute, clock)

    def allowed(request: web.Request, token: str) -> bool:
        """A bearer token, or the cookie of a browser signed in at ``/sign-in``."""
        if bearer_matches(request.headers.get("Authorization", ""), token):
            return True
        cookie = request.cookies.get(COOKIE)
        return cookie is not None and session_valid(cookie, token, wall_clock())

    def cors_headers(request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin", "")
        if origin not in cors_origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = cors_headers(request)
        if hosts is not None and request.host not in hosts:
            log.warning("codec request for another host refused", client=request.remote)
            return web.json_response({"error": "unknown host"}, status=421)
        if request.method == "OPTIONS":
            return web.Response(status=200 if headers else 403, headers=headers)
        if (
            auth_token is not None
            and request.path != "/sign-in"
            and not allowed(request, auth_token)
        ):
            log.warning("codec request refused", client=request.remote, path=request.path)
            return web.json_response({"error": "unauthorized"}, status=401, headers=headers)
        if not budget.take(request.remote or "unknown"):
            log.warning("codec rate limit", client=request.remote, path=request.path)
            return web.json_response(
                {"error": "too many requests"},
                status=429,
                headers={**headers, "Retry-After": "1"},
            )
        response = await handler(request)
        response.headers.update(headers)
        return response

    def route(transform: Callable[[Payloads, str], Awaitable[list[object]]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("the body is not a JSON object")
                payloads = json_format.ParseDict(body, Payloads())
                answer = await transform(payloads, request.remote or "unknown")
                result = Payloads(payloads=answer)  # type: ignore[arg-type]
            except (ValueError, json_format.ParseError, EncryptionKeyError) as err:
                return web.json_response({"error": str(err)}, status=400)
            return web.json_response(json_format.MessageToDict(result))

        return handle

    async def decode(payloads: Payloads, client: str) -> list[object]:
        decoded: list[object] = list(await codec.decode(payloads.payloads))
        log.info(
            "payloads decoded",
            client=client,
            authenticated=auth_token is not None,
            payloads=len(decoded),
            **shown_ids(decoded),
        )
        return decoded

    async def encode(payloads: Payloads, client: str) -> list[object]:
        return list(await codec.encode(payloads.payloads))

    app = web.Application(middlewares=[guard])
    if auth_token is not None:
        page, sign_in = sign_in_routes(auth_token, wall_clock)
        app.router.add_get("/sign-in", page)
        app.router.add_post("/sign-in", sign_in)
    app.router.add_route("*", "/decode", route(decode))
    app.router.add_route("*", "/encode", route(encode))
    return app
