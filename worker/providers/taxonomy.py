"""Every provider outcome mapped to one category and one decision. Pure.

category        from                                      same provider  fallback  SQS
timeout         httpx timeout                             retry          yes       retryable
network         connect / reset / DNS                     retry          yes       retryable
rate_limit      429 rate_limit_exceeded                   retry (hint)   yes       retryable
quota           429 insufficient_quota, or Retry-After    no             yes       retryable
                longer than the workflow has left
server          500/502/503/504, 408, non-JSON 2xx        retry          yes       retryable
circuit_open    breaker open: no call made                no             yes       retryable
auth            401/403                                   no             yes       permanent
not_found       404 (deployment or model)                 no             yes       permanent
validation      400/409/413/422, context_length_exceeded  no             no        permanent
content_filter  code content_filter, or finish_reason     no             no        permanent
unknown         anything else                             no             yes       permanent
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.errors import (
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    WorkerError,
)
from worker.providers.headers import retry_after_seconds

__all__ = ["NO_FALLBACK", "RETRY_SAME", "classify", "error_fields"]

RETRY_SAME = frozenset({"timeout", "network", "rate_limit", "server"})
NO_FALLBACK = frozenset({"validation", "content_filter"})
_QUOTA_CODES = frozenset({"insufficient_quota", "credit_balance_exhausted", "quota_exceeded"})


def error_fields(body: Any) -> tuple[str, str]:
    """(code, message) from ``{"error": {...}}``, Azure's ``innererror`` included."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    code = str(error.get("code") or error.get("type") or "")
    inner = error.get("innererror")
    if isinstance(inner, dict) and inner.get("code") == "ResponsibleAIPolicyViolation":
        code = "content_filter"
    return code, str(error.get("message") or "")[:300]


def classify(provider: str, status: int, body: Any, headers: Mapping[str, str]) -> WorkerError:
    """The error for a non-2xx response."""
    code, message = error_fields(body)
    detail = f"{provider}: HTTP {status}" + (f" {code}" if code else "")
    detail += f": {message}" if message else ""
    if status == 429:
        if code in _QUOTA_CODES:
            return ProviderQuotaExceeded(detail)
        return ProviderRateLimited(detail, retry_after=retry_after_seconds(headers))
    if status >= 500 or status == 408:
        return ProviderServerError(detail)
    if code == "content_filter":
        return ProviderRejected(detail, code="content_filter")
    if status in (401, 403):
        return ProviderRejected(detail, code="auth")
    if status == 404:
        return ProviderRejected(detail, code="not_found")
    if status in (400, 409, 413, 422):
        return ProviderRejected(detail, code="validation")
    return ProviderRejected(detail, code="unknown")
