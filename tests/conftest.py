"""Shared fixtures: a fresh system of record and settings pointed at it."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog
from temporalio.testing import WorkflowEnvironment

from settings import Settings, get_settings
from starter.local_world import LocalWorld
from storage.certificates import CertificateStore
from storage.database import dispose_all, open_database
from tests.databases import fresh_database
from tests.harness import REVIEWERS, Harness, channel_settings, local_channels, start_environment

# Workflows under test run in the strict sandbox: the workflow module is reloaded for every run,
# so the sandbox's restrictions check the workflow code on every path the tests take.
os.environ.setdefault("REFUNDS_WORKFLOW_SANDBOX", "strict")
# Keys made by tests stay out of the working copy's var/keys (and a developer's local key out of
# the tests' clients).
os.environ.setdefault("REFUNDS_KEY_DIR", tempfile.mkdtemp(prefix="refunds-test-keys-"))
# structlog prints to standard output by default, where the CLI's answers go: the tests'
# in-process simulators and workers log to standard error, as every `refunds` command does.
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
# Likewise the official calendar: a developer's var/calendar.toml must not move tests' deadlines.
os.environ.setdefault(
    "REFUNDS_CALENDAR_FILE",
    os.path.join(tempfile.mkdtemp(prefix="refunds-test-calendar-"), "calendar.toml"),
)


@pytest.fixture
def backend() -> str:
    """The system of record's database; modules that must run on both override this."""
    return "sqlite"


@pytest.fixture
def database_url(backend: str, tmp_path, monkeypatch) -> Iterator[str]:
    with fresh_database(backend, tmp_path) as url:
        monkeypatch.setenv("REFUNDS_DATABASE_URL", url)
        get_settings.cache_clear()
        yield url
        get_settings.cache_clear()
        dispose_all()


@pytest.fixture
def store(database_url: str) -> CertificateStore:
    return CertificateStore(open_database(database_url))


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_environment()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def local_world(
    database_url: str, tmp_path, temporal_env: WorkflowEnvironment
) -> AsyncIterator[LocalWorld]:
    """The Alipay and bank simulators and the webhook receiver for this test's system of record."""
    async with local_channels(
        channel_settings(database_url, tmp_path), temporal_env.client
    ) as world:
        yield world


@pytest.fixture
def harness_settings(local_world: LocalWorld) -> Settings:
    return local_world.settings.model_copy(update={"reviewers": REVIEWERS})


@pytest.fixture
async def harness(
    temporal_env: WorkflowEnvironment,
    harness_settings: Settings,
    store: CertificateStore,
    local_world: LocalWorld,
) -> AsyncIterator[Harness]:
    task_queue = f"refunds-test-{uuid.uuid4().hex[:8]}"
    harness = Harness.create(temporal_env, task_queue, harness_settings, store, local_world)
    async with harness.worker():
        yield harness


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ``REFUNDS_REQUIRE_SYSTEM_TESTS=1`` (``.ci/run``), a skipped test fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped and os.environ.get("REFUNDS_REQUIRE_SYSTEM_TESTS") == "1" and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if reporter is not None:
            reporter.write_line(
                f"{skipped} test(s) skipped under REFUNDS_REQUIRE_SYSTEM_TESTS=1: failing the run",
                red=True,
            )
