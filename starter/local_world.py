"""The local outside world of the embedded default: the Alipay gateway and payment provider
simulators on loopback (each only where no real address is configured), and the receiver of the
provider's settlement webhooks, which rings the refund it names.

``refunds up`` runs it beside its worker, ``refunds simulators`` on its own (the chaos run's
workers are killed, the channels must not be), and the tests and benchmarks in-process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from settings import Settings
from simulators.alipay import AlipaySimulator, ensure_local_alipay_keys, serve_alipay
from simulators.bank import BankSimulator, ensure_local_bank_secrets, serve_bank
from starter.bank_webhooks import Ring, serve_bank_webhooks_from_settings

log = structlog.get_logger("refunds.local")

SETTLEMENT_SIGNAL = "settlement_changed"


@dataclass
class LocalWorld:
    """What runs: the simulators (``None`` where a real channel is configured) and the servers."""

    settings: Settings
    """The settings the workers should use: the simulators' and the receiver's addresses."""
    alipay: AlipaySimulator | None = None
    bank: BankSimulator | None = None
    runners: list[web.AppRunner] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One line per channel: where it is, and whether it is the local simulator."""
        s = self.settings
        return [
            f"Alipay: {s.alipay_gateway}" + (" (local simulator)" if self.alipay else ""),
            f"Bank provider: {s.bank_api}" + (" (local simulator)" if self.bank else ""),
            f"Bank settlement webhooks: {s.bank_webhook_url}",
        ]

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()


def ring_refunds(client: Client) -> Ring:
    """Tell a refund that a settlement changed (the signal carries nothing; the refund asks the
    provider itself). A refund that already finished needs no telling."""

    async def ring(refund_id: str) -> None:
        try:
            await client.get_workflow_handle(refund_id).signal(SETTLEMENT_SIGNAL)
        except RPCError as err:
            if err.status is RPCStatusCode.NOT_FOUND:
                log.info("settlement rang a finished refund", refund_id=refund_id)
                return
            raise

    return ring


def local_world_ports(settings: Settings) -> list[tuple[str, int, str]]:
    """The addresses ``start_local_world`` will listen on, to check before anything starts."""
    ports = [(settings.webhook_host, settings.webhook_port, "bank webhook receiver")]
    if settings.alipay_gateway_url is None:
        ports.append((settings.simulator_host, settings.alipay_simulator_port, "Alipay simulator"))
    if settings.bank_api_url is None:
        ports.append((settings.simulator_host, settings.bank_simulator_port, "bank simulator"))
    return ports


def prepare_local_keys(settings: Settings) -> None:
    """The local channels' keys and secrets, made once where no real ones are configured."""
    if settings.alipay_gateway_url is None:
        ensure_local_alipay_keys(settings)
    if settings.bank_api_url is None or settings.bank_webhook_secret_file is None:
        ensure_local_bank_secrets(settings)


async def start_local_world(settings: Settings, ring: Ring, *, webhooks: bool = True) -> LocalWorld:
    """Start the simulators for the channels with no configured address, and the webhook
    receiver; ports 0 take free ones, and the returned settings name the addresses."""
    prepare_local_keys(settings)
    world = LocalWorld(settings)
    try:
        if webhooks:
            runner = await serve_bank_webhooks_from_settings(settings, ring)
            world.runners.append(runner)
            host, port = _address(runner)
            world.settings = world.settings.model_copy(
                update={
                    "webhook_port": port,
                    "webhook_url": settings.webhook_url or f"http://{host}:{port}/webhooks/bank",
                }
            )
        if settings.alipay_gateway_url is None:
            world.alipay = AlipaySimulator.from_settings(world.settings)
            runner = await serve_alipay(
                world.alipay, settings.simulator_host, settings.alipay_simulator_port
            )
            world.runners.append(runner)
            host, port = _address(runner)
            world.settings = world.settings.model_copy(
                update={
                    "alipay_simulator_port": port,
                    "alipay_gateway_url": f"http://{host}:{port}/gateway.do",
                }
            )
        if settings.bank_api_url is None:
            world.bank = BankSimulator.from_settings(world.settings)
            runner = await serve_bank(
                world.bank, settings.simulator_host, settings.bank_simulator_port
            )
            world.runners.append(runner)
            host, port = _address(runner)
            world.settings = world.settings.model_copy(
                update={"bank_simulator_port": port, "bank_api_url": f"http://{host}:{port}"}
            )
    except BaseException:
        await world.stop()
        raise
    return world


def _address(runner: web.AppRunner) -> tuple[str, int]:
    host, port = runner.addresses[0][:2]
    return str(host), int(port)
