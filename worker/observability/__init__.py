"""Logs (structlog JSON with a sanitizer), metrics, CloudWatch, traces, the health endpoint."""

from worker.observability.cloudwatch import CloudWatchPublisher
from worker.observability.health import HealthServer
from worker.observability.logging import configure_logging, sanitize
from worker.observability.metrics import Metrics
from worker.observability.tracing import configure_tracing, reset_tracing, tracing_enabled

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
