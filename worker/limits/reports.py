"""What a provider says about its rate limits, read from its response headers. Pure.

OpenAI sends, on every answer (Azure OpenAI sends the same names, often without
the limits and resets)::

    x-ratelimit-limit-requests      60          requests per minute allowed
    x-ratelimit-limit-tokens        150000      tokens per minute allowed
    x-ratelimit-remaining-requests  59          left before the limit is hit
    x-ratelimit-remaining-tokens    149984
    x-ratelimit-reset-requests      1s          until the request budget is full again
    x-ratelimit-reset-tokens        6m0s        (Go durations: 6m0s, 1s, 20ms)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from worker.outbound import go_duration

__all__ = ["RateReport", "read_report"]


@dataclass(frozen=True, slots=True)
class RateReport:
    """Each field None when the provider did not say."""

    limit_requests: int | None = None
    limit_tokens: int | None = None
    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests: float | None = None
    reset_tokens: float | None = None

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return max(0, int(float(text.strip())))
    except ValueError:
        return None


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return max(0.0, float(text))  # some gateways send plain seconds
    except ValueError:
        return go_duration(text)


def read_report(headers: Mapping[str, str]) -> RateReport:
    """The ``x-ratelimit-*`` headers of one answer (any case; unreadable values ignored)."""
    lowered = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")}
    if not lowered:
        return RateReport()
    return RateReport(
        limit_requests=_count(lowered.get("x-ratelimit-limit-requests")),
        limit_tokens=_count(lowered.get("x-ratelimit-limit-tokens")),
        remaining_requests=_count(lowered.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_count(lowered.get("x-ratelimit-remaining-tokens")),
        reset_requests=_duration(lowered.get("x-ratelimit-reset-requests")),
        reset_tokens=_duration(lowered.get("x-ratelimit-reset-tokens")),
    )
