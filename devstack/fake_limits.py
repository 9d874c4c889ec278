"""Rate limits for the fake providers: requests and tokens per minute, as OpenAI
enforces and reports them.

Each limit is a bucket that holds a minute's allowance and refills continuously;
a request needs one request and its tokens (prompt characters / 4 plus the
requested maximum output, as OpenAI reckons it). Like OpenAI, which enforces a
per-minute limit over shorter intervals, a ``quantum`` (seconds) adds a second,
smaller bucket per limit holding that many seconds' worth, so a burst that the
minute would allow is still refused. A refused request gets a 429 with
``retry-after``/``retry-after-ms``; every answer carries the ``x-ratelimit-*``
headers (nominal, never enforced limits when none is configured).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

__all__ = ["NOMINAL_RPM", "NOMINAL_TPM", "RateBuckets", "go_format", "request_tokens"]

NOMINAL_RPM = 10_000
NOMINAL_TPM = 30_000_000


def go_format(seconds: float) -> str:
    """A Go duration as OpenAI writes its resets: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


@dataclass(slots=True)
class _Bucket:
    capacity: float
    per_second: float
    level: float
    at: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.per_second)
        self.at = now

    def short_by(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0: now)."""
        if self.level >= amount:
            return 0.0
        return (min(amount, self.capacity) - self.level) / self.per_second


class RateBuckets:
    """The requests and tokens budgets of one fake provider (one event loop uses it)."""

    def __init__(self, rpm: int | None, tpm: int | None, quantum: float | None = None) -> None:
        self.rpm, self.tpm = rpm, tpm
        now = time.monotonic()
        self._buckets: list[tuple[str, _Bucket]] = []
        for name, limit in (("requests", rpm), ("tokens", tpm)):
            if limit:
                self._buckets.append((name, _Bucket(limit, limit / 60, limit, now)))
                if quantum:
                    size = max(1.0, limit / 60 * quantum)
                    self._buckets.append((f"{name}-quantum", _Bucket(size, limit / 60, size, now)))

    def take(self, tokens: int) -> float:
        """Spend one request and ``tokens``: 0.0 if allowed, else seconds to wait."""
        now = time.monotonic()
        wait = 0.0
        for name, bucket in self._buckets:
            bucket.refill(now)
            wait = max(wait, bucket.short_by(tokens if name.startswith("tokens") else 1))
        if wait > 0:
            return wait
        for name, bucket in self._buckets:
            bucket.level -= tokens if name.startswith("tokens") else 1
        return 0.0

    def headers(self) -> dict[str, str]:
        """``x-ratelimit-*`` for the minute budgets (nominal ones where none is set)."""
        now = time.monotonic()
        found = dict(self._buckets)
        out: dict[str, str] = {}
        for name, nominal in (("requests", NOMINAL_RPM), ("tokens", NOMINAL_TPM)):
            bucket = found.get(name)
            if bucket is None:
                limit, left, reset = nominal, nominal, 0.0
            else:
                bucket.refill(now)
                limit, left = int(bucket.capacity), math.floor(bucket.level)
                reset = (bucket.capacity - bucket.level) / bucket.per_second
            out[f"x-ratelimit-limit-{name}"] = str(limit)
            out[f"x-ratelimit-remaining-{name}"] = str(max(0, left))
            out[f"x-ratelimit-reset-{name}"] = go_format(reset)
        return out


def request_tokens(text: str, body: dict[str, object]) -> int:
    """What the limit counts for one request: prompt characters / 4 + maximum output."""
    most = body.get("max_completion_tokens") or body.get("max_tokens") or 16
    return len(text) // 4 + (int(most) if isinstance(most, int | float | str) else 16)
