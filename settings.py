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
    alipay_gateway_url: str | None = None
    """Alipay's OpenAPI gateway (``https://openapi.alipay.com/gateway.do``); unset, the local
    Alipay simulator that ``refunds up`` runs on ``alipay_simulator_port``."""
    alipay_app_id: str = "2021000000000001"
    alipay_app_private_key_file: Path | None = None
    """The app's RSA private key (PEM, PKCS#1 or PKCS#8, mode 0600); unset, the local one in
    ``key_dir/channels`` that ``refunds up`` makes for its simulator."""
    alipay_public_key_file: Path | None = None
    """Alipay's RSA public key (PEM), which every response's signature must verify against."""
    bank_api_url: str | None = None
    """The payment provider's refund API; unset, the local provider simulator."""
    bank_api_key_file: Path | None = None
    bank_webhook_secret_file: Path | None = None
    """The shared secret of the provider's signed settlement webhooks (mode 0600)."""
    channel_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    """How long one call to a payment channel may take before its outcome is unknown."""
    settlement_patience: int = Field(default=10, ge=1, le=60)
    """Business days a bank refund may stay settling before the refund needs attention."""
    settlement_poll: timedelta = timedelta(hours=1)
    """How often a settling refund asks the provider, in case a webhook was lost."""
    simulator_host: str = "127.0.0.1"
    alipay_simulator_port: int = Field(default=8091, ge=0, le=65535)
    bank_simulator_port: int = Field(default=8092, ge=0, le=65535)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8093, ge=0, le=65535)
    """Where the provider's settlement webhooks are received (``refunds webhooks``)."""
    webhook_url: str | None = None
    """The address the provider posts webhooks to, as it reaches this system (the simulator's
    default: ``http://<webhook_host>:<webhook_port>/webhooks/bank``)."""
    simulator_settle_seconds: float = Field(default=3.0, ge=0, le=86_400)
    """How long the provider simulator keeps a bank refund settling before it succeeds."""
    simulator_state_dir: Path = Path("var/simulators")
    """Where the local simulators keep what they have paid (it survives restarts)."""
    fault_transient_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Half of these calls to the simulators fail before the effect (a 5xx), half after it
    (the money moved and the answer is lost)."""
    fault_latency_ms: int = Field(default=0, ge=0, le=60_000)
    fault_reject: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Payment references a channel refuses for good (``alipay:REF``, ``bank:REF`` or ``REF``),
    and certificates the CA refuses to revoke (``ca:CERT``)."""
    fault_bad_signature_rate: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Alipay simulator answers signed with the wrong key."""
    fault_settlement_fail: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Bank payment references whose refund is accepted, then fails at settlement."""
    fault_webhook_loss_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Settlement webhooks the provider simulator never sends (the poll settles them)."""
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

    @property
    def channel_key_dir(self) -> Path:
        """Where ``refunds up`` keeps the local channels' keys and secrets (0600 in 0700)."""
        return self.key_dir / "channels"

    @property
    def alipay_gateway(self) -> str:
        local = f"http://{self.simulator_host}:{self.alipay_simulator_port}/gateway.do"
        return self.alipay_gateway_url or local

    @property
    def alipay_app_key_path(self) -> Path:
        return self.alipay_app_private_key_file or self.channel_key_dir / "alipay-app-private.pem"

    @property
    def alipay_public_key_path(self) -> Path:
        return self.alipay_public_key_file or self.channel_key_dir / "alipay-public.pem"

    @property
    def bank_api(self) -> str:
        return self.bank_api_url or f"http://{self.simulator_host}:{self.bank_simulator_port}"

    @property
    def bank_api_key_path(self) -> Path:
        return self.bank_api_key_file or self.channel_key_dir / "bank-api.key"

    @property
    def bank_webhook_secret_path(self) -> Path:
        return self.bank_webhook_secret_file or self.channel_key_dir / "bank-webhook.secret"

    @property
    def bank_webhook_url(self) -> str:
        local = f"http://{self.webhook_host}:{self.webhook_port}/webhooks/bank"
        return self.webhook_url or local

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

    @field_validator(
        "reviewers",
        "operators",
        "fault_reject",
        "fault_settlement_fail",
        "codec_cors_origins",
        mode="before",
    )
    @classmethod
    def _split_reviewers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("payment_patience", "settlement_poll", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
        return value

    @field_validator("payment_patience", "settlement_poll")
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
