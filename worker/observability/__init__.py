"""Logs (structlog JSON with a sanitizer), metrics, CloudWatch and the health endpoint."""

from worker.observability.cloudwatch import CloudWatchPublisher
from worker.observability.health import HealthServer
from worker.observability.logging import configure_logging, sanitize
from worker.observability.metrics import Metrics

__all__ = ["CloudWatchPublisher", "HealthServer", "Metrics", "configure_logging", "sanitize"]
