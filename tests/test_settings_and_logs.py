"""Connection settings (TLS, API key) and the two log formats."""

from __future__ import annotations

import json
import logging

import pytest
from temporalio.service import TLSConfig

from logs import configure_logging
from settings import Settings
from starter.client import tls_config
from starter.errors import UserError


def test_plain_connection_by_default():
    assert tls_config(Settings()) is False


def test_an_api_key_turns_tls_on():
    assert tls_config(Settings(api_key="secret")) is True


def test_mutual_tls_reads_the_files(tmp_path):
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    config = tls_config(
        Settings(
            tls_ca=str(tmp_path / "ca.pem"),
            tls_cert=str(tmp_path / "client.pem"),
            tls_key=str(tmp_path / "client.key"),
        )
    )
    assert isinstance(config, TLSConfig)
    assert config.server_root_ca_cert == b"-----ca.pem-----"
    assert config.client_cert == b"-----client.pem-----"
    assert config.client_private_key == b"-----client.key-----"


def test_half_a_client_certificate_is_refused(tmp_path):
    (tmp_path / "client.pem").write_text("x")
    with pytest.raises(UserError, match="go together"):
        tls_config(Settings(tls_cert=str(tmp_path / "client.pem")))


def test_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        tls_config(Settings(tls_ca=str(tmp_path / "nope.pem")))


def test_json_logs_are_one_object_per_line_with_the_refund_ids(capsys):
    configure_logging("json", "INFO")
    logging.getLogger("temporalio.workflow").info(
        "refund assessed",
        extra={"temporal_workflow": {"workflow_id": "refund-a", "run_id": "r1"}, "rule": "x"},
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "refund assessed"
    assert (event["refund_id"], event["workflow_id"], event["run_id"]) == (
        "refund-a",
        "refund-a",
        "r1",
    )
    assert event["level"] == "info"


def test_console_logs_are_for_people(capsys):
    configure_logging("console", "INFO")
    logging.getLogger("refunds.test").info("worker started", extra={"task_queue": "refunds"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "worker started" in line and "task_queue=refunds" in line
    assert not line.startswith("{")
