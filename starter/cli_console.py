"""``refunds console``: the customers' and reviewers' web pages, on their own (``refunds up``
serves them too)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from console.serve import console_server, console_url
from starter.cli_common import load_settings, official_schedule
from starter.errors import UserError

ConsolePort = Annotated[
    int | None, typer.Option("--console-port", help="Console port (default 8000).")
]


def console_command(console_port: ConsolePort = None) -> None:
    """Serve the console on REFUNDS_CONSOLE_HOST (loopback by default) until Ctrl-C."""
    settings = load_settings()
    official_schedule(settings)  # a broken calendar file stops the start in one line
    server = console_server(settings, console_port, embedded=False)
    print(f"Refund console: {console_url(settings, console_port)}", flush=True)
    try:
        asyncio.run(server.serve())
    except OSError as err:
        raise UserError(f"cannot serve the console: {err.strerror}") from None
