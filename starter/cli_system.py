"""The ``refunds`` commands that run things: ``up``, ``worker``, ``codec-server``, ``demo``."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import structlog
import typer
from aiohttp import web
from rich.console import Console

from domain.signatures import Role
from logs import configure_logging
from settings import Settings
from starter.bank_webhooks import serve_bank_webhooks_from_settings
from starter.cli_common import (
    JsonFlag,
    call_temporal,
    certificate_store,
    load_settings,
    official_schedule,
)
from starter.cli_console import ConsolePort
from starter.cli_people import enroll, print_demo_accounts
from starter.client import RefundClient, connect
from starter.codec_server import codec_app, is_loopback, loopback_hosts
from starter.demo import Demo, DemoResult, link_lines, outcome_table
from starter.demo_data import demo_certificates
from starter.devserver import DevServerOptions, parse_address, run_up
from starter.errors import UserError
from starter.local_keys import encryption_codec, ensure_local_key
from starter.local_world import LocalWorld, ring_refunds, start_local_world
from starter.render import (
    console,
    print_json,
)
from tuning import limit_malloc_arenas, worker_runtime
from worker import run_worker


def demo(json_output: JsonFlag = False) -> None:
    """Walk every path (auto, approve, reject, cancel, denied, duplicate) against `refunds up`."""
    settings = load_settings()
    store = certificate_store(settings)

    progress = Console(stderr=True, highlight=False) if json_output else console

    async def walk(refunds: RefundClient) -> list[DemoResult]:
        return await Demo(refunds, store, settings, progress).run()

    outcomes = call_temporal(settings, walk)
    if json_output:
        print_json([outcome.__dict__ for outcome in outcomes])
        return
    console.print(outcome_table(outcomes))
    console.print("In the Web UI:")
    for line in link_lines(outcomes):
        console.print(line, soft_wrap=True)
    console.print("`refunds pending` shows the one left in review.")


def codec_server(
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8081).")] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (default 127.0.0.1, this machine)."),
    ] = None,
) -> None:
    """Serve /decode and /encode so the Web UI can show encrypted payloads to allowed people."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    codec = encryption_codec(settings, display=True)
    if codec is None:
        raise UserError(
            "no encryption keys: set REFUNDS_ENCRYPTION_KEYS or start `refunds up` once here"
        )
    listen_host = host or settings.codec_host
    if not is_loopback(listen_host) and not settings.codec_auth_token:
        raise UserError(
            f"the codec server would decrypt for anyone who reaches {listen_host}: "
            "set REFUNDS_CODEC_AUTH_TOKEN, or listen on 127.0.0.1"
        )
    listen = port or settings.codec_port
    # Without a token, only requests addressed to this machine by name (no DNS rebinding).
    hosts = None if settings.codec_auth_token else loopback_hosts(listen)
    app = codec_app(codec, settings.codec_cors_origins, settings.codec_auth_token, hosts=hosts)
    console.print(
        f"codec server on http://{listen_host}:{listen} for "
        f"{', '.join(settings.codec_cors_origins)}"
        + ("" if settings.codec_auth_token else " (no token: this machine only)")
    )
    web.run_app(app, host=listen_host, port=listen, print=None)


def simulators_command() -> None:
    """Run the local Alipay and bank simulators and the settlement webhook receiver on their own
    (`refunds up` runs them itself), until Ctrl-C or SIGTERM."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(_serve_world(settings, simulators=True))


def webhooks_command() -> None:
    """Receive the payment provider's signed settlement webhooks on REFUNDS_WEBHOOK_HOST:PORT and
    tell each refund it names, until Ctrl-C or SIGTERM."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    asyncio.run(_serve_world(settings, simulators=False))


async def _serve_world(settings: Settings, *, simulators: bool) -> None:
    client = await connect(settings)
    if simulators:
        world = await start_local_world(settings, ring_refunds(client))
    else:
        world = LocalWorld(settings)
        world.runners.append(
            await serve_bank_webhooks_from_settings(settings, ring_refunds(client))
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        for line in world.describe()[0 if simulators else 2 :]:
            console.print(line)
        await stop.wait()
    finally:
        await world.stop()


def worker_command() -> None:
    """Run a worker against the configured Temporal server until Ctrl-C or SIGTERM."""
    limit_malloc_arenas()
    settings = load_settings()
    official_schedule(settings)  # a broken calendar file stops the start in one line
    configure_logging(settings.log_format, settings.log_level)

    async def serve() -> None:
        client = await connect(settings, runtime=worker_runtime(settings))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        structlog.get_logger("refunds.worker").info(
            "worker started", task_queue=settings.task_queue, temporal=settings.temporal_address
        )
        await run_worker(client, settings, stop)

    asyncio.run(serve())


def up(
    ui_port: Annotated[
        int | None, typer.Option("--ui-port", help="Web UI port (default 8233).")
    ] = None,
    temporal_db: Annotated[
        Path, typer.Option("--temporal-db", help="SQLite file for the Temporal server.")
    ] = Path("var/temporal.db"),
    seed_demo: Annotated[
        bool, typer.Option("--seed-demo", help="Load demo certificates into an empty database.")
    ] = False,
    console_port: ConsolePort = None,
) -> None:
    """Run the Temporal dev server (Web UI, SQLite) and a worker in the foreground."""
    limit_malloc_arenas()
    settings = load_settings()
    official_schedule(settings)  # a broken calendar file stops the start in one line
    configure_logging(settings.log_format, settings.log_level)
    host, port = parse_address(settings.temporal_address)
    owners: list[str] = []
    if seed_demo:
        store = certificate_store(settings)
        demo = demo_certificates(datetime.now(UTC))
        owners = [certificate.owner for certificate in demo]
        if store.count() == 0:
            loaded = store.seed(demo)
            console.print(f"loaded {len(loaded.inserted)} demo certificates: demo-auto, ...")
    roles = {Role.REVIEWER: settings.reviewers, Role.OPERATOR: settings.operators}
    added = enroll(settings, {**roles, Role.CUSTOMER: owners})
    if added:
        console.print(f"people directory: added {', '.join(added)} (keys in {settings.key_dir})")
    if seed_demo:
        print_demo_accounts(settings, [*settings.reviewers, *settings.operators, *owners])
    made = ensure_local_key(settings)
    if made is not None:
        console.print(f"payloads are encrypted with the local key in {made}")
    options = DevServerOptions(
        host=host,
        port=port,
        ui_port=ui_port or settings.ui_port,
        database_file=temporal_db,
        namespace=settings.namespace,
        codec_port=settings.codec_port,
        console_port=console_port or settings.console_port,
    )
    raise typer.Exit(asyncio.run(run_up(settings, options, announce_people=bool(added))))
