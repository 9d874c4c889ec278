"""The one error tree of the fleet.

Every failure the runtime can meet is one of these; third-party exceptions
(botocore, aiohttp, psycopg) are translated into them at the module that talks
to that service, with ``raise Ours(...) from exc``. The ``Upstream*`` errors
are what an outbound HTTP call (an LLM provider, the send gateway) can meet;
``worker/outbound/translate.py`` is their one table.

    WorkerError
    ├── ConfigError                 bad settings, found at start-up
    ├── MalformedMessage            body is not a valid v1 message: DLQ at once
    ├── EnqueueRefused              a producer-side refusal (too large, invalid)
    ├── NotDue                      not yet: run again in N seconds (a send slot)
    ├── OverBudget                  a hard budget refuses the workflow's first call
    ├── RetryableError              try again later (SQS visibility backoff)
    │   ├── UpstreamTimeout         no answer within the call's time limit
    │   ├── UpstreamUnreachable     no HTTP answer: refused, reset, DNS
    │   ├── UpstreamRateLimited     HTTP 429, with its Retry-After hint
    │   ├── UpstreamUnavailable     HTTP 5xx or 408, or a 2xx we cannot read
    │   ├── UpstreamQuotaExceeded   quota gone, or Retry-After past the deadline
    │   ├── CircuitOpen             the breaker refused the call: none was made
    │   ├── DeadlineExceeded        the workflow ran out of time
    │   ├── QueueUnavailable
    │   ├── PayloadUnavailable      S3 (bodies sent as pointers) did not answer
    │   ├── StoreUnavailable
    │   └── LeaseHeld               another worker is running this workflow
    └── PermanentError              retrying cannot help: DLQ at once
        ├── UpstreamRefused         HTTP 4xx: auth, not_found, validation, content_filter
        └── InvalidOutput           structured output still invalid after repair

Each error carries a short machine-readable ``code`` used in the workflow row,
the dead-letter row, message attributes and metrics.
"""

from __future__ import annotations

__all__ = [
    "CircuitOpen",
    "ConfigError",
    "DeadlineExceeded",
    "EnqueueRefused",
    "InvalidOutput",
    "LeaseHeld",
    "MalformedMessage",
    "NotDue",
    "OverBudget",
    "PayloadUnavailable",
    "PermanentError",
    "QueueUnavailable",
    "RetryableError",
    "StoreUnavailable",
    "UpstreamQuotaExceeded",
    "UpstreamRateLimited",
    "UpstreamRefused",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "UpstreamUnreachable",
    "WorkerError",
]


class WorkerError(Exception):
    """Root of every error the fleet raises on purpose."""

    code = "worker_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(WorkerError):
    """A setting is missing or inconsistent; the message names the setting."""

    code = "config"


class MalformedMessage(WorkerError):
    """The body cannot be a v1 message: not JSON, fails the schema, unknown type."""

    code = "malformed"


class EnqueueRefused(WorkerError):
    """A producer-side refusal: the intent would be malformed or too large."""

    code = "enqueue_refused"


class NotDue(WorkerError):
    """Not a failure: the work is due later (a send slot in the future); the consumer
    postpones the message (outcome ``postponed``)."""

    code = "not_due"

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class OverBudget(WorkerError):
    """Not a failure: a hard budget (``fleet budgets``) has no room for the workflow's
    first LLM call. ``action`` is the budget's: ``hold`` (postpone by ``seconds``, the
    time to the period's reset or to a re-check) or ``dead_letter`` (reason
    ``over_budget``); ``exhausted`` is False when the room exists but other processes
    hold it leased for now."""

    code = "over_budget"

    def __init__(self, message: str, *, action: str, seconds: float, exhausted: bool) -> None:
        super().__init__(message)
        self.action = action
        self.seconds = seconds
        self.exhausted = exhausted


class RetryableError(WorkerError):
    """Transient: the message goes back to SQS with a backoff delay."""

    code = "retryable"


class UpstreamTimeout(RetryableError):
    """The service did not answer within the call's time limit."""

    code = "timeout"


class UpstreamUnreachable(RetryableError):
    """No HTTP answer at all: connection refused or reset, DNS, TLS."""

    code = "network"


class UpstreamRateLimited(RetryableError):
    """HTTP 429; ``retry_after`` is the service's hint in seconds, when it gave one."""

    code = "rate_limit"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(RetryableError):
    """HTTP 5xx or 408, or a success whose body we cannot read."""

    code = "server"


class UpstreamQuotaExceeded(RetryableError):
    """Not worth retrying on this service now; another provider, or SQS later."""

    code = "quota"


class CircuitOpen(RetryableError):
    """The service's circuit breaker refused the call: no request was made."""

    code = "circuit_open"


class DeadlineExceeded(RetryableError):
    code = "deadline"


class QueueUnavailable(RetryableError):
    code = "queue_unavailable"


class PayloadUnavailable(RetryableError):
    """S3, where bodies over the queue's limit travel (``worker.queue.payloads``), failed."""

    code = "payload_unavailable"


class StoreUnavailable(RetryableError):
    code = "store_unavailable"


class LeaseHeld(RetryableError):
    """Another worker holds the workflow's lease (duplicate delivery)."""

    code = "lease_held"

    def __init__(self, message: str, *, seconds_left: float) -> None:
        super().__init__(message)
        self.seconds_left = seconds_left


class PermanentError(WorkerError):
    """Retrying cannot help: recorded and sent to the DLQ at once."""

    code = "permanent"


class UpstreamRefused(PermanentError):
    """The service refused the request (HTTP 4xx: auth, not found, validation,
    content filter); ``code`` says which."""

    code = "validation"


class InvalidOutput(PermanentError):
    """The model's structured output failed validation even after one repair."""

    code = "invalid_output"
