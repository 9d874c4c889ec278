"""The one settings object.

Standard names (``AWS_REGION``, ``DATABASE_URL``, ``OPENAI_API_KEY`` …) are read
as they are; every project knob carries the ``FLEET_`` prefix. Cross-field
rules are checked here so a bad combination fails at start-up with a message
that names the setting, never minutes later in a handler.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker.config.fifo import fifo_rules
from worker.config.groups import (
    ConsumerSettings,
    OperationsSettings,
    ProviderSettings,
    QueueSettings,
    SendSettings,
    parse_rate_limits,
)
from worker.config.spend import SpendKnobs, SpendSettings
from worker.errors import ConfigError

__all__ = ["Settings"]

Seconds = Annotated[float, Field(ge=0)]
Delays = Annotated[tuple[float, ...], NoDecode]
Names = Annotated[tuple[str, ...], NoDecode]
Routes = Annotated[dict[str, Literal["azure", "openai"]], NoDecode]
PerMinute = tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=0)]]  # requests, tokens
RateLimits = Annotated[dict[Literal["azure", "openai"], PerMinute], NoDecode]


def _split_delays(value: Any) -> Any:
    """Accept ``"1,2,5"`` (env style), ``"[1, 2, 5]"`` or a sequence."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return tuple(float(part) for part in text.split(",") if part.strip())
    return value


class Settings(BaseSettings, SpendKnobs):
    """Every knob of the fleet, from the environment (and an optional ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="FLEET_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- standard names -------------------------------------------------
    aws_region: str = Field("us-east-1", validation_alias="AWS_REGION")
    sqs_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL")
    )
    database_url: SecretStr | None = Field(None, validation_alias="DATABASE_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str = Field("https://api.openai.com/v1", validation_alias="OPENAI_BASE_URL")
    azure_openai_endpoint: str | None = Field(None, validation_alias="AZURE_OPENAI_ENDPOINT")
    azure_openai_api_key: SecretStr | None = Field(None, validation_alias="AZURE_OPENAI_API_KEY")
    azure_openai_deployment: str | None = Field(None, validation_alias="AZURE_OPENAI_DEPLOYMENT")
    openai_api_version: str = Field("2024-10-21", validation_alias="OPENAI_API_VERSION")
    azure_openai_ad_token: SecretStr | None = Field(None, validation_alias="AZURE_OPENAI_AD_TOKEN")

    # --- queues ---------------------------------------------------------
    queue_name: str = Field("hybrid-orchestrator-work", min_length=1, max_length=80)
    dlq_name: str | None = Field(None, description="default: <queue_name>-dlq")
    max_receives: int = Field(5, ge=1, le=1000, description="RedrivePolicy maxReceiveCount")
    max_message_bytes: int = Field(262_144, ge=1024, le=1_048_576)
    priority_lanes: bool = True
    priority_queue_name: str | None = Field(None, description="default: <queue_name>-priority")
    priority_weight: float = Field(0.9, ge=0, le=1)
    payload_bucket: str | None = Field(
        None, min_length=3, max_length=63, description="S3 bucket of bodies over the limit"
    )
    s3_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    )
    message_group: str = Field(
        "user",
        pattern=r"^(user|campaign|one|none|data:[A-Za-z0-9_.-]{1,64})$",
        description="MessageGroupId: user | campaign | one | data:<key> | none",
    )
    fifo_high_throughput: bool = Field(True, description="FIFO: per-group dedup and limits")

    # --- consumer -------------------------------------------------------
    concurrency: int = Field(1024, ge=1, le=10_000, description="ceiling of the adaptive limit")
    concurrency_min: int | None = Field(None, ge=1, le=10_000, description="floor; = ceiling pins")
    concurrency_interval: float = Field(0.5, gt=0, description="limiter window, seconds")
    memory_limit_mb: int | None = Field(None, ge=16, description="RSS that shrinks the limit")
    user_share: float = Field(0.5, gt=0, le=1, description="1 turns fairness off")
    fair_delay: int = Field(2, ge=1, le=900)
    pollers: int | None = Field(None, ge=1, le=64, description="default: FLEET_CONCURRENCY/64")
    wait_seconds: int = Field(20, ge=1, le=20)
    batch_size: int = Field(10, ge=1, le=10)
    visibility_timeout: int = Field(60, ge=1, le=43_200)
    heartbeat_interval: float = Field(20.0, gt=0)
    retry_base_seconds: float = Field(5.0, ge=0, description="SQS backoff base")
    retry_max_seconds: float = Field(900.0, ge=0, le=43_200)
    shutdown_grace: float = Field(30.0, ge=0)
    lease_seconds: int | None = Field(None, ge=1, description="default: visibility_timeout")

    # --- providers ------------------------------------------------------
    model: str = "gpt-4o-mini"
    azure_model: str = Field("gpt-4o", description="model behind the Azure deployment")
    openai_timeout: Seconds = 30.0
    azure_timeout: Seconds = 45.0
    llm_retry_delays: Delays = (1.0, 2.0, 5.0)
    routes: Routes = {
        "content_planning": "azure",
        "campaign_execution": "azure",
        "message_generation": "openai",
        "content_validation": "openai",
    }
    workflow_timeout: float = Field(300.0, gt=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_failure_rate: float = Field(0.5, gt=0, le=1)
    breaker_min_calls: int = Field(20, ge=1)
    breaker_window: float = Field(30.0, gt=0)
    breaker_cooldown: float = Field(15.0, ge=0)
    cache_ttl: Seconds = 3600.0
    cache_intents: Names = ("content_planning", "content_validation")
    prices: dict[str, list[float]] | None = None
    campaign_concurrency: int = Field(8, ge=1, le=256)
    rate_limits: RateLimits = Field({}, description="provider=RPM/TPM,...; none: unpaced")
    rate_target: float = Field(0.95, gt=0, le=1, description="share of a rate limit used")
    user_rate_limit: int = Field(0, ge=0, description="workflows per user per window; 0: off")
    user_rate_window: float = Field(60.0, gt=0)
    user_rate_burst: int = Field(1, ge=1)

    # --- sends ----------------------------------------------------------
    send_spacing: Seconds = 45.0
    send_key: Literal["pair", "creator"] = "pair"
    send_gateway_url: str | None = None
    send_gateway_token: SecretStr | None = None
    send_timeout: float = Field(10.0, gt=0)
    internal_key: SecretStr | None = Field(
        None, description="HMAC key of internal messages; default: derived from DATABASE_URL"
    )
    campaign_chunk: int = Field(50, ge=1, le=1000)

    # --- operations -----------------------------------------------------
    health_port: int = Field(8080, ge=0, le=65535, description="0 turns the endpoint off")
    health_host: str = Field("127.0.0.1", description="the image sets 0.0.0.0")
    liveness_seconds: float = Field(60.0, gt=0)
    cloudwatch_enabled: bool = True
    cloudwatch_endpoint_url: str | None = Field(
        None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_CLOUDWATCH", "AWS_ENDPOINT_URL")
    )
    metrics_namespace: str = "Huntaze/HybridOrchestrator"
    metrics_interval: float = Field(60.0, gt=0)
    worker_heartbeat_seconds: float = Field(10.0, gt=0)
    console_tokens: SecretStr | None = Field(None, description="name:role:token,...")
    console_host: str = Field("127.0.0.1", description="address `fleet console` binds")
    console_port: int = Field(8090, ge=0, le=65535)

    # --- storage and logs -----------------------------------------------
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    migrate_on_start: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    _split = field_validator("llm_retry_delays", mode="before")(_split_delays)
    _rates = field_validator("rate_limits", mode="before")(parse_rate_limits)

    @field_validator("cache_intents", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("routes", mode="before")
    @classmethod
    def _split_routes(cls, value: Any) -> Any:
        """``"content_planning=azure,message_generation=openai"`` or a JSON object."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("want intent=provider pairs separated by commas")
            return {k.strip(): v.strip() for k, v in pairs}
        return value

    @field_validator("llm_retry_delays")
    @classmethod
    def _non_negative(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("delays must be >= 0 seconds")
        return value

    # --- derived (from the groups, so each rule is written once) ------------
    @property
    def dead_letter_queue_name(self) -> str:
        return self.queue.dead_letter_queue_name

    @property
    def priority_lane_name(self) -> str | None:
        return self.queue.priority_lane_name

    @property
    def lease(self) -> int:
        return self.consumer.lease

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise ConfigError("DATABASE_URL is not set: give the PostgreSQL connection URL")
        return self.database_url.get_secret_value()

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Settings:
        """Cross-field rules, checked on every construction (environment or code)."""
        rules = [
            (
                self.heartbeat_interval < self.visibility_timeout,
                f"FLEET_HEARTBEAT_INTERVAL ({self.heartbeat_interval:g}) must be less than "
                f"FLEET_VISIBILITY_TIMEOUT ({self.visibility_timeout})",
            ),
            (
                self.retry_base_seconds <= self.retry_max_seconds,
                f"FLEET_RETRY_BASE_SECONDS ({self.retry_base_seconds:g}) must not exceed "
                f"FLEET_RETRY_MAX_SECONDS ({self.retry_max_seconds:g})",
            ),
            (
                self.db_pool_min <= self.db_pool_max,
                f"FLEET_DB_POOL_MIN ({self.db_pool_min}) must not exceed "
                f"FLEET_DB_POOL_MAX ({self.db_pool_max})",
            ),
            (
                self.openai_timeout < self.workflow_timeout,
                f"FLEET_OPENAI_TIMEOUT ({self.openai_timeout:g}) must be less than "
                f"FLEET_WORKFLOW_TIMEOUT ({self.workflow_timeout:g})",
            ),
            (
                self.liveness_seconds > self.wait_seconds,
                f"FLEET_LIVENESS_SECONDS ({self.liveness_seconds:g}) must exceed "
                f"FLEET_WAIT_SECONDS ({self.wait_seconds}): a long poll is progress too",
            ),
            *fifo_rules(self),
            (
                (self.concurrency_min or 1) <= self.concurrency,
                f"FLEET_CONCURRENCY_MIN ({self.concurrency_min}) must not exceed "
                f"FLEET_CONCURRENCY ({self.concurrency})",
            ),
            (
                (self.pollers or 1) <= self.concurrency,
                f"FLEET_POLLERS ({self.pollers}) must not exceed "
                f"FLEET_CONCURRENCY ({self.concurrency})",
            ),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(message)
        return self

    # --- groups: each component receives the one it needs ----------------
    @property
    def queue(self) -> QueueSettings:
        return QueueSettings.model_validate(self._pick(QueueSettings))

    @property
    def consumer(self) -> ConsumerSettings:
        return ConsumerSettings.model_validate(self._pick(ConsumerSettings))

    @property
    def providers(self) -> ProviderSettings:
        return ProviderSettings.model_validate(self._pick(ProviderSettings))

    @property
    def sends(self) -> SendSettings:
        return SendSettings.model_validate(self._pick(SendSettings))

    @property
    def spend(self) -> SpendSettings:
        return SpendSettings.model_validate(self._pick(SpendSettings))

    @property
    def operations(self) -> OperationsSettings:
        return OperationsSettings.model_validate(self._pick(OperationsSettings))

    def _pick(self, group: type[BaseModel]) -> dict[str, Any]:
        return {name: getattr(self, name) for name in group.model_fields}
