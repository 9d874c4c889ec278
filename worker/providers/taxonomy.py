"""Every provider outcome mapped to one category and one decision. Pure.

category        from                                      same provider  fallback  SQS
timeout         no answer in time                         retry          yes       retryable
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

The HTTP part (which status or transport failure is which error) is
``worker.outbound.translate``'s table; this module adds the providers' error
codes and the decisions: retry the same provider, fall back, or neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.errors import (
    CircuitOpen,
    PermanentError,
    RetryableError,
    UpstreamQuotaExceeded,
    UpstreamRefused,
    WorkerError,
)
from worker.outbound import RETRY_SAME, detail, status_error

__all__ = ["NO_FALLBACK", "RETRY_SAME", "classify", "combined", "error_fields"]

NO_FALLBACK = frozenset({"validation", "content_filter", "over_budget"})  # no route fixes these
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
    """The error for a non-2xx response: ``outbound``'s status table, refined by the
    provider's error code (quota, content filter)."""
    code, message = error_fields(body)
    if status == 429 and code in _QUOTA_CODES:
        return UpstreamQuotaExceeded(detail(provider, status, code, message))
    if code == "content_filter" and status < 500 and status not in (408, 429):
        return UpstreamRefused(detail(provider, status, code, message), code="content_filter")
    return status_error(provider, status, headers, code=code, message=message)


def combined(errors: list[WorkerError]) -> WorkerError:
    """One error for 'every route failed': retryable if any route may recover."""
    if not errors:
        return CircuitOpen("no provider route was tried")
    text = "all providers failed: " + "; ".join(str(e) for e in errors)
    retryable = [e for e in errors if isinstance(e, RetryableError)]
    if retryable:
        first = next((e for e in retryable if e.code != "circuit_open"), retryable[0])
        return RetryableError(text, code=first.code)
    return PermanentError(text, code=errors[0].code)
