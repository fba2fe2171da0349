"""Configuration read from the environment (``REFUNDS_*``), every value with a working default."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from codec import parse_keys

TimeoutAction = Literal["approve", "reject"]
WorkflowSandbox = Literal["strict", "imports-once", "off"]
"""How workers run workflow code: ``strict`` (the default) imports the workflow modules into the
SDK's sandbox for every run, so its determinism checks apply to them at run time;
``imports-once`` passes them through (imported once, their code unchecked); ``off`` runs no
sandbox. The last two are opt-ins that trade the checks for CPU (BENCHMARKS.md)."""


MIN_TOKEN = 24
"""The codec server's token is a secret that decrypts customers' data: no short or sample ones."""


class Settings(BaseSettings):
    """Everything a worker, the CLI and the dev server need to agree on."""

    model_config = SettingsConfigDict(env_prefix="REFUNDS_", extra="ignore")

    temporal_address: str = "localhost:7233"
    namespace: str = "default"
    task_queue: str = "refunds"
    database_url: str = "sqlite:///var/refunds.db"
    reviewers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["reviewer-1", "reviewer-2"]
    )
    operators: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["operator-1"])
    timezone: str = "Asia/Shanghai"
    holiday_country: str = "CN"
    calendar_file: Path | None = Path("var/calendar.toml")
    """The official holiday schedule where the ``holidays`` package lacks it (TOML, one table per
    year; ``refunds calendar apply`` writes it). A missing file adds nothing."""
    review_timeout_action: TimeoutAction = "approve"
    fallback_to_balance: bool = False
    payment_patience: timedelta = timedelta(hours=1)
    """How long a payment channel or the CA may keep failing before the refund needs attention
    (seconds, or ISO 8601 such as ``PT1H``)."""
    history_event_limit: int = Field(default=2000, ge=100, le=40_000)
    history_bytes_limit: int = Field(default=2_000_000, ge=100_000, le=40_000_000)
    """A refund waiting for a person continues as new past either (signal floods)."""
    fault_transient_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    fault_latency_ms: int = Field(default=0, ge=0, le=60_000)
    fault_reject: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_cached_workflows: int = Field(default=500, ge=0)
    workflow_sandbox: WorkflowSandbox = "strict"
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    encryption_keys: str = ""
    encryption_key_id: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    api_key: str | None = None
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    codec_port: int = 8081
    codec_host: str = "127.0.0.1"
    codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["http://localhost:8233"]
    )
    codec_auth_token: str | None = None
    key_dir: Path = Path("var/keys")
    """The local payload key (embedded default) and people's signing keys, 0600 in a 0700 folder."""
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    ui_port: int = 8233
    console_port: int = Field(default=8000, ge=1, le=65535)
    console_host: str = "127.0.0.1"
    console_secret: str | None = None
    """Signs the console's session cookies; else a local secret in ``key_dir`` (made once)."""
    web_ui_url: str | None = None
    """Where people open the Temporal Web UI (default ``http://localhost:<ui_port>``)."""
    console_secure_cookies: bool = False
    """Send the session cookie over HTTPS only: set it when TLS is in front of the console."""

    @field_validator("encryption_keys")
    @classmethod
    def _valid_keys(cls, value: str) -> str:
        parse_keys(value)
        return value

    @property
    def web_ui_workflows(self) -> str:
        base = (self.web_ui_url or f"http://localhost:{self.ui_port}").rstrip("/")
        return f"{base}/namespaces/{self.namespace}/workflows"

    @field_validator("console_secret")
    @classmethod
    def _strong_secret(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < 32 or value.startswith("REPLACE")):
            raise ValueError(
                "must be a random secret of at least 32 characters, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("codec_auth_token")
    @classmethod
    def _strong_token(cls, value: str | None) -> str | None:
        if value is not None and (len(value) < MIN_TOKEN or value.startswith("REPLACE")):
            raise ValueError(
                f"must be a random token of at least {MIN_TOKEN} characters, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("reviewers", "operators", "fault_reject", "codec_cors_origins", mode="before")
    @classmethod
    def _split_reviewers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("payment_patience", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @field_validator("payment_patience")
    @classmethod
    def _positive_patience(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. 3600 or PT1H")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in holidays.list_supported_countries():
            raise ValueError(f"no holiday calendar for country {value!r}")
        return code

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
