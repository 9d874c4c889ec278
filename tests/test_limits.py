"""Rate control (issue 14): provider rate limits spaced fleet-wide and corrected by the
providers' headers, per-user workflow limits, and the fakes that enforce limits."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import signal
import time
import uuid
from collections.abc import Mapping

import pytest

from devstack import FakeConfig, FakeLLM
from devstack.fake_limits import RateBuckets, go_format
from devstack.fake_replies import official_usage
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
from worker.errors import ConfigError, NotDue, UpstreamRateLimited
from worker.limits import Pacer, ProviderLimit, ProviderLimits, read_report
from worker.outbound import Reply
from worker.providers import (
    LLM,
    AzureOpenAIClient,
    BreakerPolicy,
    ChatRequest,
    CircuitBreaker,
    OpenAIClient,
    Route,
)
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


async def test_the_client_hands_every_answers_headers_to_the_limiter() -> None:
    heard: list[tuple[str, int, str | None]] = []
    replies = [
        Reply(429, {"retry-after-ms": "20", "x-ratelimit-remaining-requests": "0"}, b"{}"),
        Reply(200, {"x-ratelimit-remaining-requests": "7"}, json.dumps(_ANSWER).encode()),
    ]

    async def send(url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        return replies.pop(0)

    async def observe(provider: str, status: int, headers: Mapping[str, str]) -> None:
        heard.append((provider, status, headers.get("x-ratelimit-remaining-requests")))

    client = AzureOpenAIClient("https://res.test", "dep", api_key="k", send=send)
    client.observe = observe
    request = ChatRequest(messages=[{"role": "user", "content": "hi"}], model="gpt-4o")
    with pytest.raises(UpstreamRateLimited):  # still classified and retried as before
        await client.complete(request)
    assert (await client.complete(request)).content == "ok"
    assert heard == [("azure", 429, "0"), ("azure", 200, "7")]


async def test_a_turn_too_far_postpones_the_workflow_without_fallback() -> None:
    sent: list[str] = []

    async def send(url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        sent.append(url)
        return Reply(200, {}, json.dumps(_ANSWER).encode())

    async def pace(provider: str, messages: object, most: int, budget: float | None) -> None:
        assert budget is not None and 4 < budget <= 5  # half the 10 s left (timeout is 30 s)
        if provider == "openai":
            raise NotDue("openai: rate limit booked 30s ahead", seconds=30)

    policy = BreakerPolicy()
    llm = LLM(
        {
            "openai": Route(
                OpenAIClient("https://o.test", "k", send=send),
                "m",
                CircuitBreaker("openai", policy),
            ),
            "azure": Route(
                AzureOpenAIClient("https://a.test", "d", api_key="k", send=send),
                "m",
                CircuitBreaker("azure", policy),
            ),
        },
        pace=pace,
    )
    session = llm.session(deadline=time.monotonic() + 10)
    with pytest.raises(NotDue):  # the verdict table postpones it
        await session.complete([{"role": "user", "content": "hi"}])
    assert sent == [] and session.calls == []  # no call made, no cost row, no fallback


_ANSWER = {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "model": "m"}


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
    gaps = [b - a for a, b in itertools.pairwise(starts)]
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


class _Leases(_MemoryLeases):
    """``RateTable`` in memory (leases and pauses, one key)."""

    async def lease(self, key: str, span: float) -> float:  # type: ignore[override]
        return await super().lease(span)

    async def pause(self, key: str, seconds: float) -> None:
        self.next_at = max(self.next_at, time.monotonic() + seconds)


async def test_calls_woken_late_by_a_stalled_process_do_not_go_at_once() -> None:
    limits = ProviderLimits(_Leases(), {"openai": ProviderLimit("k", rpm=600, target=1)})
    sent: list[float] = []

    async def call() -> None:
        await limits.pace("openai", [], 1, budget=None)
        sent.append(time.monotonic())

    calls = [asyncio.create_task(call()) for _ in range(6)]
    await asyncio.sleep(0.05)
    time.sleep(0.6)  # noqa: ASYNC251 - the loop blocked past every slot (a cold start, a GC)
    await asyncio.gather(*calls)
    sent.sort()
    assert limits.stalls >= 4
    assert min(b - a for a, b in itertools.pairwise(sent[1:])) >= 0.09  # spaced again


# --- per-user limits --------------------------------------------------------------


async def test_user_slots_are_spaced_and_kept(store: Store) -> None:
    table = RateTable(store)
    user = f"u-{uuid.uuid4().hex[:8]}"
    interval, burst_tolerance = 10.0, 10.0  # a burst of two, then one every 10 s
    waits = [
        await table.user_start(f"w{i}-{user}", user, interval, burst_tolerance) for i in range(4)
    ]
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


# --- the fleet under a rate-limited provider --------------------------------------


async def enqueue(settings: Settings, envs: list[Envelope]) -> None:
    async with queue_for(settings) as queue:
        gate = asyncio.Semaphore(16)

        async def one(env: Envelope) -> None:
            async with gate:
                await queue.send_envelope(env)

        await asyncio.gather(*(one(env) for env in envs))


def validations(user: str, count: int, tag: str = "") -> list[Envelope]:
    return [
        envelope(
            {
                "type": "content_validation",
                "userId": user,
                "data": {"content": f"{tag}post {i} for friday"},
            }
        )
        for i in range(count)
    ]


async def dead_letters(store: Store, envs: list[Envelope]) -> int:
    rows = await query(
        store,
        "SELECT count(*) AS n FROM dead_letters WHERE workflow_id = ANY(%s)",
        ([str(e.workflow_id) for e in envs],),
    )
    return int(rows[0]["n"])


LIMIT_RPM = 1200  # 20 requests a second, enforced over one-second quanta too (as OpenAI)


async def test_two_workers_share_a_provider_limit_at_a_third_of_their_load(
    make_settings: Factory, store: Store
) -> None:
    """Offered load: a backlog the two workers could call at well over 3x the limit
    (32 handlers, ~20 ms answers). Measured from the fake's own log. The fake's
    tokenizer is loaded first: loading it on the first answer stalls the fake's loop
    for ~0.4 s, and the requests queued meanwhile would be logged as one burst."""
    config = FakeConfig(latency_ms=20, rpm=LIMIT_RPM, rate_quantum=1.0)
    official_usage([{"role": "user", "content": "warm"}], "ok", "gpt-4o-mini")  # see below
    with FakeLLM(api_key=API_KEY, config=config) as fake:
        settings = await make_settings(
            openai_base_url=fake.base_url,
            rate_limits={"openai": (LIMIT_RPM, 0)},
            llm_retry_delays=(0.1, 0.2, 0.5),
            max_receives=5,
        )
        envs = validations(f"u-{uuid.uuid4().hex[:8]}", 420)
        await enqueue(settings, envs)
        env = env_for(settings, OPENAI_API_KEY=API_KEY)
        workers = [await LoggedProcess.start(["run"], env) for _ in range(2)]
        try:
            async with asyncio.timeout(60):  # run 14 s from the first call
                while not fake.arrivals or time.time() - fake.arrivals[0][0] < 14:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            stopped = time.time()
        finally:
            results = [await w.finish(signal.SIGTERM) for w in workers]
        assert [code for code, _ in results] == [0, 0], results[0][1][-2000:]
        arrivals = [a for a in fake.arrivals if a[0] <= stopped]
    statuses = [status for _, status in arrivals]
    share_429 = statuses.count(429) / len(statuses)
    start = arrivals[0][0] + 2.0  # both workers are up and paced by then
    answered = [t for t, status in arrivals if status == 200 and start <= t]
    throughput = len(answered) / (stopped - start) / (LIMIT_RPM / 60)
    print(f"429 share {share_429:.4f}, throughput {throughput:.3f} of the limit")
    assert share_429 < 0.01
    assert throughput >= 0.90
    assert await dead_letters(store, envs) == 0
    assert await dlq_messages(settings) == []


async def completed(store: Store, envs: list[Envelope], within: float = 60) -> None:
    ids = [str(e.workflow_id) for e in envs]
    async with asyncio.timeout(within):
        while True:
            rows = await query(
                store,
                "SELECT count(*) AS n FROM workflows WHERE id = ANY(%s) AND status = 'completed'",
                (ids,),
            )
            if int(rows[0]["n"]) == len(ids):
                return
            await asyncio.sleep(0.3)


def started_at(log: str, user: str) -> list[float]:
    """The times (epoch seconds, sorted) of the user's `workflow_started` log lines."""
    times = []
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "workflow_started" and event.get("user_id") == user:
            times.append(datetime.datetime.fromisoformat(event["timestamp"]).timestamp())
    return sorted(times)


async def test_a_users_workflows_over_the_limit_are_delayed_not_failed(
    make_settings: Factory, store: Store, fake_llm: FakeLLM
) -> None:
    """30 workflows per 10 s (a compressed minute) per user, two worker processes: a
    user's flood of 60 starts no faster, and nothing fails. The workers are warmed up
    by another user's workflows first (a process's first workflow loads a lot). Starts
    are read from the workers' own `workflow_started` lines: the provider's arrival
    times add the HTTP path's jitter, which on a loaded machine bunches a window."""
    limit, window = 30, 10.0
    settings = await make_settings(user_rate_limit=limit, user_rate_window=window)
    busy, quiet = (f"u-{uuid.uuid4().hex[:8]}" for _ in range(2))
    tag = uuid.uuid4().hex
    light = validations(quiet, 6)
    heavy = validations(busy, 2 * limit, f"[[fake:tag:{tag}]] ")
    env = env_for(settings, OPENAI_API_KEY=API_KEY)
    workers = [await LoggedProcess.start(["run"], env) for _ in range(2)]
    try:
        await enqueue(settings, light)
        await completed(store, light)
        await enqueue(settings, heavy)
        await completed(store, heavy)
    finally:
        results = [await w.finish(signal.SIGTERM) for w in workers]
    assert [code for code, _ in results] == [0, 0]
    assert "workflow_postponed" in results[0][1] + results[1][1]
    assert len(fake_llm.served[tag]) == 2 * limit
    starts = started_at(results[0][1] + results[1][1], busy)
    assert len(starts) == 2 * limit
    most = max(sum(1 for t in starts if s <= t < s + window) for s in starts)
    print(f"most starts in any {window:g}s window: {most} (limit {limit})")
    assert most <= limit * 1.10, [round(t - starts[0], 2) for t in starts]
    assert await dead_letters(store, [*heavy, *light]) == 0
