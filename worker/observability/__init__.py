"""Logs (structlog JSON with a sanitizer), metrics, CloudWatch, traces, the health endpoint.

``CloudWatchPublisher`` (aioboto3) and ``HealthServer`` (aiohttp's server) load on first
use: every `fleet` command configures logging from here, and most never need them
(importing aioboto3 alone costs about half a second of start-up)."""

from typing import TYPE_CHECKING, Any

from worker.observability.logging import configure_logging, sanitize
from worker.observability.metrics import Metrics
from worker.observability.tracing import configure_tracing, reset_tracing, tracing_enabled

if TYPE_CHECKING:
    from worker.observability.cloudwatch import CloudWatchPublisher
    from worker.observability.health import HealthServer

__all__ = [
    "CloudWatchPublisher",
    "HealthServer",
    "Metrics",
    "configure_logging",
    "configure_tracing",
    "reset_tracing",
    "sanitize",
    "tracing_enabled",
]


def __getattr__(name: str) -> Any:
    if name == "CloudWatchPublisher":
        from worker.observability.cloudwatch import CloudWatchPublisher

        return CloudWatchPublisher
    if name == "HealthServer":
        from worker.observability.health import HealthServer

        return HealthServer
    raise AttributeError(f"module 'worker.observability' has no attribute {name!r}")
