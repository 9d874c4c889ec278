"""Logs (structlog JSON with a sanitizer) and, later, metrics and health."""

from worker.observability.logging import configure_logging, sanitize

__all__ = ["configure_logging", "sanitize"]
