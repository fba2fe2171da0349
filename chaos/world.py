"""One local outside world for a chaos or benchmark run: where its simulators listen and keep
their records, shared by the ``refunds simulators`` process and every worker of the run."""

from __future__ import annotations

from pathlib import Path

from chaos.processes import ManagedSimulators, free_port


def channel_env(workdir: Path, **faults: str) -> dict[str, str]:
    """The settings of the run's channels: free loopback ports, keys and records in ``workdir``,
    and ``REFUNDS_FAULT_*`` (``faults`` by setting name) for the simulators."""
    return {
        "REFUNDS_KEY_DIR": str(workdir / "keys"),
        "REFUNDS_SIMULATOR_STATE_DIR": str(workdir / "simulators"),
        "REFUNDS_ALIPAY_SIMULATOR_PORT": str(free_port()),
        "REFUNDS_BANK_SIMULATOR_PORT": str(free_port()),
        "REFUNDS_WEBHOOK_PORT": str(free_port()),
        **{f"REFUNDS_{name.upper()}": value for name, value in faults.items()},
    }


def start_simulators(env: dict[str, str], workdir: Path) -> ManagedSimulators:
    """``refunds simulators`` for the run, ready once its three ports answer (it makes the
    channels' keys on first start, so start it before the workers)."""
    simulators = ManagedSimulators(env, workdir)
    ports = [
        int(env[name])
        for name in (
            "REFUNDS_ALIPAY_SIMULATOR_PORT",
            "REFUNDS_BANK_SIMULATOR_PORT",
            "REFUNDS_WEBHOOK_PORT",
        )
    ]
    simulators.start(ports)
    return simulators
