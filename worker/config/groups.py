"""Groups of settings, one per component: the queue, the consumer, the providers, the
sends and operations. Each is a frozen view cut from the one ``Settings`` object (which
reads the environment and checks every rule), so a component sees only its own knobs."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr

__all__ = [
    "ConsumerSettings",
    "OperationsSettings",
    "ProviderSettings",
    "QueueSettings",
    "SendSettings",
    "parse_rate_limits",
]


def parse_rate_limits(value: Any) -> Any:
    """FLEET_RATE_LIMITS: ``openai=600/150000,azure=300`` (requests/tokens per minute,
    tokens optional) or JSON ``{"openai": [600, 150000]}``."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("{"):
        return json.loads(text)
    limits: dict[str, tuple[int, int]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, numbers = part.partition("=")
        rpm, _, tpm = numbers.partition("/")
        if not sep or not rpm.strip().isdigit() or (tpm and not tpm.strip().isdigit()):
            raise ValueError(f"want provider=RPM/TPM, got {part!r}")
        limits[name.strip()] = (int(rpm), int(tpm or 0))
    return limits


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
    concurrency_min: int | None
    concurrency_interval: float
    memory_limit_mb: int | None
    priority_weight: float
    liveness_seconds: float
    user_share: float
    fair_delay: int
    pollers: int | None
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
    user_rate_limit: int
    user_rate_window: float
    user_rate_burst: int

    @property
    def lease(self) -> int:
        return self.lease_seconds or self.visibility_timeout

    @property
    def poller_count(self) -> int:
        """FLEET_POLLERS, else one per 64 slots of the ceiling, 4 to 16 (a poller brings at
        most 10 messages a call: 4 cannot keep 1,024 slots full at a 1.2 s call)."""
        return self.pollers or max(
            1, min(self.concurrency, max(4, min(16, self.concurrency // 64)))
        )

    @property
    def concurrency_floor(self) -> int:
        """The adaptive limit's floor: FLEET_CONCURRENCY_MIN, else 16 (or the ceiling)."""
        return self.concurrency_min or min(16, self.concurrency)


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
    rate_limits: dict[str, tuple[int, int]]
    rate_target: float


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
