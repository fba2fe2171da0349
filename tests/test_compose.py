"""docker-compose.yml validates with Debian's docker-compose, and its services are wired right.

No Docker engine runs here: ``docker-compose config`` checks the file and prints it normalized,
which this test then reads.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from codec import new_key
from tests.live_system import require_system

ROOT = Path(__file__).resolve().parent.parent


TOKEN = "a-codec-token-of-thirty-two-chars"


def compose_config(folder: Path, env: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` on a copy of the deployment with ``env`` as its ``.env``."""
    require_system("Debian's docker-compose", shutil.which("docker-compose") is not None)
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, folder / name)
    shutil.copytree(ROOT / "deploy", folder / "deploy", dirs_exist_ok=True)
    (folder / ".env").write_text(env)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REFUNDS_")}
    return subprocess.run(
        ["docker-compose", "config"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env=clean,
    )


def host_ip(port: str | dict[str, Any]) -> str:
    """The address a published port listens on (compose v1 prints ``ip:host:container``)."""
    if isinstance(port, dict):
        return str(port["host_ip"])
    return port.rsplit(":", 2)[0] if port.count(":") >= 2 else "0.0.0.0"


def filled_example() -> str:
    example = (ROOT / "deploy" / "refunds.env.example").read_text()
    example = example.replace("REPLACE_WITH_32_BYTES_BASE64", new_key())
    example = example.replace("REPLACE_WITH_A_LONG_RANDOM_SECRET", "s" * 40)
    return example.replace("REPLACE_WITH_A_LONG_RANDOM_TOKEN", TOKEN)


@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> dict[str, Any]:
    done = compose_config(tmp_path_factory.mktemp("compose"), filled_example())
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.mark.parametrize(
    "missing", ["REFUNDS_ENCRYPTION_KEYS", "REFUNDS_CODEC_AUTH_TOKEN", "REFUNDS_CONSOLE_SECRET"]
)
def test_the_stack_refuses_to_start_without_keys_or_a_codec_token(tmp_path, missing):
    env = "\n".join(
        line for line in filled_example().splitlines() if not line.startswith(f"{missing}=")
    )
    done = compose_config(tmp_path, env)
    assert done.returncode != 0
    assert f"set {missing} in .env" in done.stderr


def test_published_ports_listen_on_this_host_only_unless_opened(compose, tmp_path):
    published = {
        name: service["ports"]
        for name, service in compose["services"].items()
        if "ports" in service
    }
    assert set(published) == {"temporal", "temporal-ui", "codec-server", "console", "webhooks"}
    for name, ports in published.items():
        assert [host_ip(port) for port in ports] == ["127.0.0.1"], name
    opened = compose_config(tmp_path, filled_example() + "REFUNDS_PUBLISH_ADDRESS=0.0.0.0\n")
    assert opened.returncode == 0, opened.stderr
    services = yaml.safe_load(opened.stdout)["services"]
    assert host_ip(services["temporal-ui"]["ports"][0]) == "0.0.0.0"


def test_every_service_is_there(compose):
    assert set(compose["services"]) == {
        "postgresql",
        "temporal-schema",
        "temporal",
        "temporal-register",
        "temporal-ui",
        "worker",
        "reconciliation-schedule",
        "codec-server",
        "console",
        "webhooks",
    }


def test_settlement_webhooks_reach_refunds_with_the_providers_secret_read_only(compose):
    webhooks = compose["services"]["webhooks"]
    assert webhooks["command"] == ["refunds", "webhooks"]
    environment = webhooks["environment"]
    assert environment["REFUNDS_BANK_WEBHOOK_SECRET_FILE"] == "/secrets/bank-webhook.secret"
    assert environment["REFUNDS_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert any(v.endswith(":/secrets:ro") for v in webhooks["volumes"])
    worker = compose["services"]["worker"]["environment"]
    assert (
        worker["REFUNDS_BANK_WEBHOOK_SECRET_FILE"]
        == environment["REFUNDS_BANK_WEBHOOK_SECRET_FILE"]
    )


def test_the_daily_reconciliation_is_scheduled_once_the_cluster_is_ready(compose):
    schedule = compose["services"]["reconciliation-schedule"]
    assert schedule["command"] == ["refunds", "schedule-reconciliation"]
    assert schedule["restart"] == "no"
    assert schedule["environment"]["REFUNDS_TEMPORAL_ADDRESS"] == "temporal:7233"
    needs = schedule["depends_on"]["temporal-register"]["condition"]
    assert needs == "service_completed_successfully"


def test_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
        assert re.search(r":\d+\.\d+", image), (name, image)


def test_startup_order_waits_for_health_and_one_shot_steps(compose):
    services = compose["services"]
    assert services["temporal-schema"]["depends_on"]["postgresql"]["condition"] == (
        "service_healthy"
    )
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["temporal-register"]["depends_on"]["temporal"]["condition"] == (
        "service_healthy"
    )
    worker_needs = services["worker"]["depends_on"]
    assert worker_needs["temporal-register"]["condition"] == "service_completed_successfully"
    assert worker_needs["postgresql"]["condition"] == "service_healthy"
    for name in ("postgresql", "temporal", "worker"):
        assert "healthcheck" in services[name], name
    register = (ROOT / "deploy" / "temporal-register.sh").read_text()
    for attribute in ("RefundState", "ReviewDeadline", "CertificateId", "PaymentChannels"):
        assert attribute in register


def test_the_worker_scales_and_is_wired_to_the_cluster(compose):
    worker = compose["services"]["worker"]
    assert "build" in worker
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    env = worker["environment"]
    assert env["REFUNDS_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["REFUNDS_DATABASE_URL"].startswith("postgresql+psycopg://refunds:")
    assert env["REFUNDS_DATABASE_URL"].endswith("@postgresql:5432/refunds")
    assert env["REFUNDS_ENCRYPTION_KEYS"].startswith("k1:")
    assert env["REFUNDS_LOG_FORMAT"] == "json"
    assert env["REFUNDS_METRICS_PORT"] == "9464"


def test_the_system_of_record_has_its_own_database(compose):
    mounts = compose["services"]["postgresql"]["volumes"]
    assert any("docker-entrypoint-initdb.d" in str(m) for m in mounts)
    assert "CREATE DATABASE refunds" in (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "postgres-data" in compose["volumes"]


def test_the_ui_decodes_through_the_codec_server(compose):
    ui = compose["services"]["temporal-ui"]["environment"]
    codec = compose["services"]["codec-server"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://localhost:8081"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"  # the /sign-in cookie
    assert codec["command"] == [*("refunds", "codec-server", "--host", "0.0.0.0", "--port", "8081")]
    assert codec["environment"]["REFUNDS_CODEC_CORS_ORIGINS"] == "http://localhost:8080"
    assert codec["environment"]["REFUNDS_CODEC_AUTH_TOKEN"] == TOKEN


def test_the_image_copies_every_package_and_module_it_installs():
    """`pip install .` in the Dockerfile needs every package and module pyproject.toml names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    copied = " ".join(
        line.split(maxsplit=1)[1]
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if line.startswith("COPY ")
    ).split()
    top = {package.split(".")[0] for package in config["packages"]}
    wanted = sorted(top) + [f"{name}.py" for name in config["py-modules"]]
    assert [name for name in wanted if name not in copied] == []


def test_the_console_signs_as_people_with_keys_kept_in_a_volume(compose):
    console = compose["services"]["console"]
    assert console["command"] == ["refunds", "console", "--console-port", "8000"]
    environment = console["environment"]
    assert environment["REFUNDS_KEY_DIR"] == "/keys"
    assert environment["REFUNDS_CONSOLE_HOST"] == "0.0.0.0"  # inside; published on loopback
    assert environment["REFUNDS_DATABASE_URL"].endswith("@postgresql:5432/refunds")
    targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in console["volumes"]]
    assert targets == ["/keys", "/calendar"]


def test_workers_and_console_count_deadlines_in_one_calendar_file(compose):
    services = compose["services"]
    for name in ("worker", "console"):
        assert services[name]["environment"]["REFUNDS_CALENDAR_FILE"] == "/calendar/calendar.toml"
        mounts = [
            v["source"] if isinstance(v, dict) else v.split(":")[0]
            for v in services[name]["volumes"]
        ]
        assert "calendar" in mounts
