"""Rate control (issue 14): provider rate limits spaced fleet-wide and corrected by the
providers' headers, per-user workflow limits, and the fakes that enforce limits."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest

from devstack import FakeConfig, FakeLLM
from devstack.fake_limits import RateBuckets, go_format
from tests.support import (
    API_KEY,
    Factory,
    LoggedProcess,
    dlq_messages,
    env_for,
    envelope,
    query,
    queue_for,
)
from worker.config import Settings, load_settings
from worker.contract import Envelope
from worker.errors import ConfigError, NotDue
from worker.limits import Pacer, ProviderLimit, ProviderLimits, read_report
from worker.store import RateTable, Store

# --- the headers -------------------------------------------------------------------


def test_openai_rate_headers_are_read() -> None:
    report = read_report(
        {
            "X-RateLimit-Limit-Requests": "60",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-requests": "59",
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-reset-tokens": "6m0s",
            "content-type": "application/json",
        }
    )
    assert (report.limit_requests, report.limit_tokens) == (60, 150000)
    assert (report.remaining_requests, report.remaining_tokens) == (59, 149984)
    assert (report.reset_requests, report.reset_tokens) == (1.0, 360.0)
    azure = read_report({"x-ratelimit-remaining-requests": "9", "x-ratelimit-reset-tokens": "20ms"})
    assert azure.remaining_requests == 9 and azure.limit_requests is None
    assert azure.reset_tokens == pytest.approx(0.02)
    assert read_report({"x-ratelimit-remaining-requests": "lots"}).empty


def test_a_call_costs_provider_time_by_its_scarcer_limit() -> None:
    limit = ProviderLimit("openai:m", rpm=600, tpm=60_000, target=1.0)
    assert limit.cost(10) == pytest.approx(0.1)  # requests bind: 10 a second
    assert limit.cost(2_000) == pytest.approx(2.0)  # tokens bind: 1,000 a second
    assert ProviderLimit("k", rpm=600, target=0.5).cost(10**6) == pytest.approx(0.2)


def test_little_left_pauses_and_plenty_does_not() -> None:
    limit = ProviderLimit("openai:m", rpm=600, tpm=60_000, target=1.0)
    assert limit.pause_for(read_report({"x-ratelimit-remaining-requests": "500"})) == 0
    # under a second's worth (10 requests) left: pause until 10 are back
    assert limit.pause_for(read_report({"x-ratelimit-remaining-requests": "4"})) == (
        pytest.approx(0.6)
    )
    tokens = read_report({"x-ratelimit-remaining-tokens": "0"})
    assert limit.pause_for(tokens) == pytest.approx(1.0)


def test_rate_limit_settings_parse_and_refuse_nonsense() -> None:
    settings = load_settings(rate_limits="openai=600/150000, azure=300")
    assert settings.rate_limits == {"openai": (600, 150000), "azure": (300, 0)}
    assert settings.providers.rate_limits == settings.rate_limits
    assert load_settings(rate_limits='{"azure": [60, 1000]}').rate_limits == {"azure": (60, 1000)}
    for wrong in ("openai", "openai=fast", "bedrock=10", "openai=0"):
        with pytest.raises(ConfigError, match="FLEET_RATE_LIMITS"):
            load_settings(rate_limits=wrong)
    assert load_settings().user_rate_limit == 0  # per-user limits are off by default


# --- pacing -------------------------------------------------------------------------


class _MemoryLeases:
    """``RateTable.lease`` in memory: provider time handed out in order."""

    def __init__(self) -> None:
        self.next_at = 0.0
        self.spans: list[tuple[float, float]] = []

    async def lease(self, span: float) -> float:
        await asyncio.sleep(0)  # a round trip: other calls queue up meanwhile
        now = time.monotonic()
        start = max(self.next_at, now)
        self.next_at = start + span
        self.spans.append((start, start + span))
        return start - now


async def test_two_processes_leasing_from_one_row_never_overlap() -> None:
    leases = _MemoryLeases()
    pacers = [Pacer(leases.lease, most=0.1), Pacer(leases.lease, most=0.1)]
    cost = 0.01
    starts: list[float] = []

    async def call(pacer: Pacer) -> None:
        wait = await pacer.slot(cost)
        starts.append(time.monotonic() + wait)

    await asyncio.gather(*(call(pacers[i % 2]) for i in range(60)))
    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= cost - 0.002  # the fleet never starts calls faster than its rate
    # leases are chunks (several calls each), not one per call
    assert sum(p.leases for p in pacers) <= 60 * cost / 0.1 + 4


async def test_a_wait_past_the_budget_postpones_instead(store: Store) -> None:
    key = f"openai:{uuid.uuid4().hex[:8]}"
    limits = ProviderLimits(RateTable(store), {"openai": ProviderLimit(key, rpm=60, target=1)})
    await limits.pace("openai", [{"role": "user", "content": "hi"}], 10, budget=5.0)
    with pytest.raises(NotDue) as raised:  # the next call is a second away: over 0.5 s
        await limits.pace("openai", [{"role": "user", "content": "hi"}], 10, budget=0.5)
    assert 0.5 < raised.value.seconds <= 1.0
    await limits.pace("azure", [], 10, budget=0.0)  # a provider without limits: no wait


async def test_a_429_or_a_short_remaining_pauses_the_whole_fleet(store: Store) -> None:
    key = f"openai:{uuid.uuid4().hex[:8]}"
    table = RateTable(store)
    limits = ProviderLimits(table, {"openai": ProviderLimit(key, rpm=6000, target=1)})
    await limits.observe("openai", 200, {"x-ratelimit-remaining-requests": "5000"})
    assert await table.lease(key, 0.01) < 0.05  # plenty left: nothing held back
    await limits.observe("openai", 429, {"retry-after-ms": "3000"})
    assert 2.5 < await table.lease(key, 0.01) <= 3.05  # another process waits too
    assert limits.pauses == 1
    lowered = ProviderLimits(table, {"openai": ProviderLimit(key + "x", rpm=6000, target=1)})
    await lowered.observe("openai", 200, {"x-ratelimit-limit-requests": "600"})
    assert lowered._limits["openai"].rpm == 600  # the provider's lower limit wins


# --- per-user limits --------------------------------------------------------------


async def test_user_slots_are_spaced_and_kept(store: Store) -> None:
    table = RateTable(store)
    user = f"u-{uuid.uuid4().hex[:8]}"
    interval, burst_tolerance = 10.0, 10.0  # a burst of two, then one every 10 s
    waits = [await table.user_start(f"w{i}-{user}", user, interval, burst_tolerance) for i in range(4)]
    assert waits[0] == 0 and waits[1] == 0
    assert waits[2] == pytest.approx(10, abs=0.5) and waits[3] == pytest.approx(20, abs=0.5)
    # the postponed workflow comes back early: its own slot, not a new charge
    again = await table.user_start(f"w2-{user}", user, interval, burst_tolerance)
    assert again == pytest.approx(10, abs=0.5)
    assert await table.user_start(f"w4-{user}", user, interval, burst_tolerance) == (
        pytest.approx(30, abs=0.5)
    )


# --- the fake -------------------------------------------------------------------


def test_the_fake_enforces_its_minute_and_its_quantum() -> None:
    buckets = RateBuckets(rpm=600, tpm=None, quantum=0.5)  # 10/s, 5 at once
    assert [buckets.take(10) for _ in range(5)] == [0.0] * 5
    assert 0 < buckets.take(10) <= 0.1
    headers = buckets.headers()
    assert headers["x-ratelimit-limit-requests"] == "600"
    assert headers["x-ratelimit-remaining-requests"] == "595"
    assert headers["x-ratelimit-limit-tokens"] == "30000000"  # nominal: not enforced
    assert [go_format(s) for s in (0.02, 1, 1.5, 360)] == ["20ms", "1s", "1.5s", "6m0s"]
    tokens = RateBuckets(rpm=None, tpm=600)
    assert tokens.take(600) == 0.0 and tokens.take(30) == pytest.approx(3.0, abs=0.01)
