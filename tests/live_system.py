"""A real ``refunds up`` (dev server, Web UI, worker) in a temporary folder, driven by the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REFUNDS = str(Path(sys.executable).with_name("refunds"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_system(what: str, available: bool) -> None:
    """Skip with the reason on a laptop; fail when CI demands every system test."""
    if available:
        return
    message = f"needs {what} (installed by .ci/run)"
    if os.environ.get("REFUNDS_REQUIRE_SYSTEM_TESTS") == "1":
        pytest.fail(f"{message}, and REFUNDS_REQUIRE_SYSTEM_TESTS=1")
    pytest.skip(message)


@contextmanager
def running_system(workdir: Path) -> Iterator[System]:
    """``refunds up`` in ``workdir`` for the duration of the block."""
    system = System(workdir)
    system.up()
    try:
        yield system
    finally:
        system.down()


class System:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ui_port = free_port()
        self.env = {
            **os.environ,
            "REFUNDS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
            "REFUNDS_DATABASE_URL": f"sqlite:///{workdir / 'refunds.db'}",
            "REFUNDS_REVIEWERS": "rev-1,rev-2",
            "REFUNDS_UI_PORT": str(self.ui_port),
            "REFUNDS_CODEC_PORT": str(free_port()),
            "REFUNDS_CONSOLE_PORT": str(free_port()),
            "REFUNDS_KEY_DIR": str(workdir / "var" / "keys"),
            "REFUNDS_CALENDAR_FILE": str(workdir / "var" / "calendar.toml"),
            "REFUNDS_SIMULATOR_STATE_DIR": str(workdir / "var" / "simulators"),
            "REFUNDS_ALIPAY_SIMULATOR_PORT": str(free_port()),
            "REFUNDS_BANK_SIMULATOR_PORT": str(free_port()),
            "REFUNDS_WEBHOOK_PORT": str(free_port()),
            "REFUNDS_SIMULATOR_SETTLE_SECONDS": "1",
            "COLUMNS": "200",
        }
        self.process: subprocess.Popen[str] | None = None
        self.banner = ""
        self.output: deque[str] = deque(maxlen=5000)

    @property
    def temporal_address(self) -> str:
        return self.env["REFUNDS_TEMPORAL_ADDRESS"]

    @property
    def ui(self) -> str:
        return f"http://localhost:{self.ui_port}"

    def up(self) -> None:
        self.process = subprocess.Popen(
            [REFUNDS, "up", "--temporal-db", "temporal.db", "--seed-demo"],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 60
        while "Web UI:" not in self.banner:
            line = self.process.stdout.readline()
            assert line or self.process.poll() is None, "refunds up exited"
            self.banner += line
            assert time.monotonic() < deadline, self.banner
        # Keep reading what it writes: a full pipe would stop the worker inside it.
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self.output.extend, args=(stream,), daemon=True).start()

    def down(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [REFUNDS, *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def refused(self, *args: str) -> str:
        done = self.run(*args, ok=False)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "Traceback" not in done.stderr
        return lines[0]
