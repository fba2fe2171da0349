"""Serving the console: alone (``refunds console``) or inside ``refunds up``, where the caller owns
the process's signals and stops the server itself."""

from __future__ import annotations

import contextlib
from collections.abc import Generator

import uvicorn

from console.app import create_app
from settings import Settings


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM to whoever runs it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def console_server(
    settings: Settings, port: int | None = None, *, embedded: bool
) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.console_host,
        port=port or settings.console_port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    return EmbeddedServer(config) if embedded else uvicorn.Server(config)


def console_url(settings: Settings, port: int | None = None) -> str:
    host = settings.console_host
    shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    return f"http://{shown}:{port or settings.console_port}/"
