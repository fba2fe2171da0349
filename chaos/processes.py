"""The processes the chaos run abuses, a Temporal dev server and a refunds worker, and the run's
client to the server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from temporalio.client import Client

from settings import get_settings
from starter.client import connect as connect_refunds
from starter.devserver import DevServerOptions, server_command, stop_process
from starter.errors import UserError


async def connect(address: str, key_dir: Path | None = None, timeout: float = 60) -> Client:
    """The run's client, made as its `refunds worker` processes make theirs (same key folder)."""
    changes: dict[str, object] = {"temporal_address": address}
    if key_dir is not None:
        changes["key_dir"] = key_dir
    settings = get_settings().model_copy(update=changes)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect_refunds(settings)
        except UserError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ManagedServer:
    options: DevServerOptions
    log: IO[bytes]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def address(self) -> str:
        return f"{self.options.host}:{self.options.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            server_command(self.options), stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


@dataclass
class ManagedSimulators:
    """``refunds simulators``: the Alipay and bank simulators and the webhook receiver, in a
    process of their own, so a worker killed mid-call leaves the channels' records whole."""

    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, ports: list[int], timeout: float = 60) -> None:
        with (self.log_dir / "simulators.log").open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("refunds")), "simulators"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        for port in ports:
            while not _listening(port):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulators did not start; see {self.log_dir}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ManagedWorker:
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        log_path = self.log_dir / f"worker-{len(self.logs)}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("refunds")), "worker"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, activities die mid-flight."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def failed_activities(self, needle: str) -> int:
        """Activity attempts that failed with ``needle`` in their error, across all worker logs."""
        return sum(
            1
            for path in self.logs
            for line in path.read_text(errors="replace").splitlines()
            if "Completing activity as failed" in line and needle in line
        )
