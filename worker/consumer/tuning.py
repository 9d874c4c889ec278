"""The adaptive limit at work: collect one window of provider outcomes, in-flight
peaks and memory, hand it to the ``Limiter``, apply what it decides.

Provider outcomes arrive through ``Metrics.listen`` (every call the providers
make is counted there already); the fleet reports how many handlers run each
time one starts. Every move is logged (``concurrency_limit_moved``) and shown
on /metrics (``fleet_concurrency_limit`` and the reason) and in ``fleet top``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable

import structlog

from worker.consumer.limiter import Limiter, Sample
from worker.observability.metrics import Metrics

__all__ = ["Tuner", "resident_mb"]

log = structlog.get_logger("worker.limiter")
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0


def resident_mb() -> float | None:
    """This process's resident memory (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE_MB
    except (OSError, ValueError, IndexError):
        return None


class Tuner:
    """Feeds the limiter one ``Sample`` every ``interval`` seconds; ``apply(limit)``
    hears each new limit."""

    def __init__(
        self,
        limiter: Limiter,
        metrics: Metrics,
        apply: Callable[[int], None],
        *,
        interval: float = 0.5,
        memory_limit_mb: int | None = None,
        memory: Callable[[], float | None] = resident_mb,
    ) -> None:
        self.limiter = limiter
        self._metrics = metrics
        self._apply = apply
        self._interval = interval
        self._memory_limit = memory_limit_mb
        self._memory = memory
        self._latencies: list[float] = []
        self._throttled = 0
        self._timeouts = 0
        self._peak = 0
        self.trace: list[tuple[float, int, str]] = []  # (monotonic time, limit, reason)
        metrics.listen(self.provider_outcome)
        metrics.limit_moved(limiter.limit, limiter.reason)

    def provider_outcome(self, outcome: str, seconds: float) -> None:
        if outcome == "ok":
            self._latencies.append(seconds)
        elif outcome == "rate_limit":
            self._throttled += 1
        elif outcome == "timeout":
            self._timeouts += 1

    def in_flight(self, count: int) -> None:
        if count > self._peak:
            self._peak = count

    def sample(self, in_flight_now: int) -> Sample:
        """This window's sample; the next window starts empty."""
        latencies, self._latencies = self._latencies, []
        pressure = False
        if self._memory_limit is not None:
            used = self._memory()
            pressure = used is not None and used > self._memory_limit
        sample = Sample(
            completed=len(latencies),
            latency=statistics.median(latencies) if latencies else None,
            throttled=self._throttled,
            timeouts=self._timeouts,
            peak_in_flight=max(self._peak, in_flight_now),
            memory_pressure=pressure,
        )
        self._throttled = self._timeouts = 0
        self._peak = in_flight_now
        return sample

    def step(self, in_flight_now: int) -> bool:
        """One window: sample, decide, apply; True when the limit moved."""
        if self.limiter.pinned:
            return False
        if not self.limiter.update(self.sample(in_flight_now)):
            return False
        limit, reason = self.limiter.limit, self.limiter.reason
        self._apply(limit)
        self._metrics.limit_moved(limit, reason)
        self.trace.append((time.monotonic(), limit, reason))
        del self.trace[:-200]
        log.info("concurrency_limit_moved", limit=limit, reason=reason, detail=self.limiter.detail)
        return True

    async def run(self, in_flight: Callable[[], int]) -> None:
        """Step every interval until cancelled (pinned: only the loop's lag is kept)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self._metrics.loop_lag.set(max(0.0, loop.time() - due))  # for operators
            self.step(in_flight())
