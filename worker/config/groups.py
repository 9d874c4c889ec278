"""Groups of settings, one per component: the queue, the consumer, the providers, the
sends and operations. Each is a frozen view cut from the one ``Settings`` object (which
reads the environment and checks every rule), so a component sees only its own knobs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = [
    "ConsumerSettings",
    "OperationsSettings",
    "ProviderSettings",
    "QueueSettings",
    "SendSettings",
]


class _Group(BaseModel):
    """A read-only view of one group of settings (checked already by ``Settings``)."""

    model_config = ConfigDict(frozen=True)


class QueueSettings(_Group):
    aws_region: str
    sqs_endpoint_url: str | None
    queue_name: str
    dlq_name: str | None
    max_receives: int
    max_message_bytes: int
    priority_lanes: bool
    priority_queue_name: str | None
    priority_weight: float
    visibility_timeout: int
    payload_bucket: str | None
    s3_endpoint_url: str | None
    message_group: str
    fifo_high_throughput: bool

    @property
    def fifo(self) -> bool:
        """A queue name ending in ``.fifo`` (AWS's rule) makes a FIFO fleet."""
        return self.queue_name.endswith(".fifo")

    @property
    def dead_letter_queue_name(self) -> str:
        if self.dlq_name:
            return self.dlq_name
        if self.fifo:  # a FIFO queue's DLQ must be FIFO too
            return f"{self.queue_name.removesuffix('.fifo')}-dlq.fifo"
        return f"{self.queue_name}-dlq"

    @property
    def priority_lane_name(self) -> str | None:
        """The second lane. On a FIFO fleet it is a standard queue that carries what needs
        a per-message delay (sends and their re-delays), never producers' intents."""
        if not self.priority_lanes:
            return None
        return self.priority_queue_name or f"{self.queue_name.removesuffix('.fifo')}-priority"


class ConsumerSettings(_Group):
    concurrency: int
    priority_weight: float
    liveness_seconds: float
    user_share: float
    fair_delay: int
    pollers: int
    wait_seconds: int
    batch_size: int
    visibility_timeout: int
    heartbeat_interval: float
    retry_base_seconds: float
    retry_max_seconds: float
    shutdown_grace: float
    lease_seconds: int | None
    max_receives: int
    workflow_timeout: float
    campaign_concurrency: int
    campaign_chunk: int

    @property
    def lease(self) -> int:
        return self.lease_seconds or self.visibility_timeout


class ProviderSettings(_Group):
    openai_api_key: SecretStr | None
    openai_base_url: str
    azure_openai_endpoint: str | None
    azure_openai_api_key: SecretStr | None
    azure_openai_deployment: str | None
    azure_openai_ad_token: SecretStr | None
    openai_api_version: str
    model: str
    azure_model: str
    openai_timeout: float
    azure_timeout: float
    llm_retry_delays: tuple[float, ...]
    routes: dict[str, str]
    workflow_timeout: float
    breaker_failures: int
    breaker_failure_rate: float
    breaker_min_calls: int
    breaker_window: float
    breaker_cooldown: float
    cache_ttl: float
    cache_intents: tuple[str, ...]
    prices: dict[str, list[float]] | None


class SendSettings(_Group):
    send_spacing: float
    llm_retry_delays: tuple[float, ...]  # the gateway's in-process retries use the same
    send_key: Literal["pair", "creator"]
    send_gateway_url: str | None
    send_gateway_token: SecretStr | None
    send_timeout: float
    campaign_chunk: int


class OperationsSettings(_Group):
    aws_region: str
    database_url: SecretStr | None
    db_pool_min: int
    db_pool_max: int
    migrate_on_start: bool
    health_port: int
    health_host: str
    liveness_seconds: float
    cloudwatch_enabled: bool
    cloudwatch_endpoint_url: str | None
    metrics_namespace: str
    metrics_interval: float
    worker_heartbeat_seconds: float
    console_tokens: SecretStr | None
    console_host: str
    console_port: int
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    log_format: Literal["json", "console"]
