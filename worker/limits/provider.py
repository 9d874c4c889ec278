"""Provider rate limits: calls spaced fleet-wide, corrected by what the provider says.

``ProviderLimits.pace`` is the hook ``LLMSession`` awaits before every attempt: it
books the call's share of the provider's minute (``Pacer``) and sleeps until it,
or raises ``NotDue`` when the wait would outlast the workflow (the consumer then
postpones the message: the wait never holds it past its visibility). The client
hands every answer's headers to ``observe``; they correct the pace:

* a lower ``x-ratelimit-limit-*`` than configured becomes this process's limit;
* ``x-ratelimit-remaining-*`` under a small low-water mark (someone else spends
  the same quota) pauses the whole fleet until the provider has refilled it;
* a 429 pauses the fleet for its Retry-After (or the reported reset).

A 429 that still happens is retried as before (``UpstreamRateLimited``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from worker.errors import NotDue, WorkerError
from worker.limits.pacer import Pacer
from worker.limits.reports import RateReport, read_report
from worker.outbound import retry_after_seconds
from worker.store.limits import RateTable

__all__ = ["LOW_WATER_SECONDS", "ProviderLimit", "ProviderLimits"]

log = structlog.get_logger("worker.limits")
LOW_WATER_SECONDS = 1.0  # a provider with less than this much of its rate left is paused
PAUSE_EVERY = 0.25  # seconds: a process pauses the fleet at most this often per provider
STALL_SECONDS = 0.1  # a call waking this much (or two calls' time) after its slot takes a new one
STALL_TURNS = 3  # …at most this many times


@dataclass(slots=True)
class ProviderLimit:
    """One provider route's limits (per minute) and where its fleet-wide state lives."""

    key: str  # rate_leases.key: provider:model or azure:deployment
    rpm: int
    tpm: int = 0  # 0: no token limit
    target: float = 0.95
    pacer: Pacer | None = None
    paused_at: float = field(default=-1e9)

    def cost(self, tokens: int) -> float:
        """Seconds of provider time one call of ``tokens`` takes at the target rate."""
        seconds = 60.0 / self.rpm if self.rpm else 0.0
        if self.tpm:
            seconds = max(seconds, tokens * 60.0 / self.tpm)
        return seconds / self.target

    def pause_for(self, report: RateReport) -> float:
        """How long the fleet should start nothing, from one answer's remaining counts."""
        pause = 0.0
        left = report.remaining_requests
        if left is not None and self.rpm:
            low = max(1.0, self.rpm / 60.0 * LOW_WATER_SECONDS)
            if left < low:
                pause = (low - left) * 60.0 / self.rpm
        left = report.remaining_tokens
        if left is not None and self.tpm:
            low = max(1.0, self.tpm / 60.0 * LOW_WATER_SECONDS)
            if left < low:
                pause = max(pause, (low - left) * 60.0 / self.tpm)
        return pause


def estimated_tokens(messages: list[dict[str, str]], max_tokens: int) -> int:
    """What a provider counts against its token limit: the prompt (about 4 characters
    a token) plus the most the answer may take, as OpenAI reckons it."""
    return sum(len(m.get("content", "")) for m in messages) // 4 + max_tokens


class ProviderLimits:
    """The configured providers' limiters of one process."""

    def __init__(self, table: RateTable, limits: Mapping[str, ProviderLimit]) -> None:
        self._table = table
        self._limits = dict(limits)
        for limit in self._limits.values():
            limit.pacer = Pacer(self._leaser(limit.key))
        self.postponed = 0
        self.pauses = 0
        self.stalls = 0

    def _leaser(self, key: str) -> Callable[[float], Awaitable[float]]:
        async def lease(span: float) -> float:
            return await self._table.lease(key, span)

        return lease

    def limited(self, provider: str) -> bool:
        return provider in self._limits

    async def pace(
        self, provider: str, messages: list[dict[str, str]], max_tokens: int, budget: float | None
    ) -> None:
        """Wait for this call's turn; ``NotDue`` if that is more than ``budget`` s away."""
        limit = self._limits.get(provider)
        if limit is None or limit.pacer is None:
            return
        cost = limit.cost(estimated_tokens(messages, max_tokens))
        after = 0.0
        for _ in range(STALL_TURNS):
            wait = await limit.pacer.slot(cost, after)
            if budget is not None and wait > max(budget, 0.0):
                self.postponed += 1
                log.info("rate_limit_postponed", provider=provider, wait_s=round(wait, 2))
                raise NotDue(f"{provider}: rate limit booked {wait:.1f}s ahead", seconds=wait)
            if wait <= 0:
                return
            due = time.monotonic() + wait
            await asyncio.sleep(wait)
            late = time.monotonic() - due
            if late <= max(STALL_SECONDS, 2 * cost):
                return
            # the process stalled past the slot (a cold start, a GC, a starved CPU): every
            # call asleep in it would wake at once, a burst; the slot is gone, take a new
            # one after the calls that woke only a little late and go now
            self.stalls += 1
            after = cost
            if budget is not None:
                budget -= wait + late

    async def observe(self, provider: str, status: int, headers: Mapping[str, str]) -> None:
        """Correct the pace from one answer's headers (see the module's docstring)."""
        limit = self._limits.get(provider)
        if limit is None:
            return
        report = read_report(headers)
        self._learn(provider, limit, report)
        pause = limit.pause_for(report)
        if status == 429:
            hint = retry_after_seconds(headers)
            pause = max(pause, hint if hint is not None else 1.0)
        if pause > 0:
            await self._pause(provider, limit, pause)

    def _learn(self, provider: str, limit: ProviderLimit, report: RateReport) -> None:
        for name, told in (("rpm", report.limit_requests), ("tpm", report.limit_tokens)):
            mine = getattr(limit, name)
            if told and (mine == 0 or told < mine):
                log.warning(f"rate_limit_{name}_lowered", provider=provider, was=mine, now=told)
                setattr(limit, name, told)

    async def _pause(self, provider: str, limit: ProviderLimit, seconds: float) -> None:
        now = time.monotonic()
        if limit.pacer is not None:
            limit.pacer.hold(seconds)
        if now - limit.paused_at < PAUSE_EVERY:
            return
        limit.paused_at = now
        self.pauses += 1
        log.info("rate_limit_paused", provider=provider, pause_s=round(seconds, 3))
        try:
            await self._table.pause(limit.key, seconds)
        except WorkerError as exc:  # the next answer's headers will say it again
            log.warning("rate_limit_pause_failed", provider=provider, error=str(exc))
