"""``refunds codec-server``: lets the Temporal Web UI decrypt payloads for people allowed to.

Temporal's codec server protocol: ``POST /decode`` and ``POST /encode`` with a JSON body
``{"payloads": [...]}`` in protobuf JSON form. Browsers reach it cross-origin from the Web UI, so
it answers CORS for the configured origins only; with ``REFUNDS_CODEC_AUTH_TOKEN`` set, a request
must carry ``Authorization: Bearer <token>`` (the UI can forward its users' credentials).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from codec import EncryptionCodec, EncryptionKeyError
from starter.codec_auth import bearer_matches

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


def codec_app(
    codec: EncryptionCodec, cors_origins: list[str], auth_token: str | None
) -> web.Application:
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
        if request.method == "OPTIONS":
            return web.Response(status=200 if headers else 403, headers=headers)
        given = request.headers.get("Authorization", "")
        if auth_token is not None and not bearer_matches(given, auth_token):
            return web.json_response({"error": "unauthorized"}, status=401, headers=headers)
        response = await handler(request)
        response.headers.update(headers)
        return response

    def route(transform: Callable[[Payloads], Awaitable[list[object]]]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                payloads = json_format.ParseDict(await request.json(), Payloads())
                result = Payloads(payloads=await transform(payloads))  # type: ignore[arg-type]
            except (ValueError, json_format.ParseError, EncryptionKeyError) as err:
                return web.json_response({"error": str(err)}, status=400)
            return web.json_response(json_format.MessageToDict(result))

        return handle

    async def decode(payloads: Payloads) -> list[object]:
        return list(await codec.decode(payloads.payloads))

    async def encode(payloads: Payloads) -> list[object]:
        return list(await codec.encode(payloads.payloads))

    app = web.Application(middlewares=[guard])
    app.router.add_route("*", "/decode", route(decode))
    app.router.add_route("*", "/encode", route(encode))
    return app
