"""Pure pieces: backoff, classification, translation, prices, sanitizer, batcher."""

import asyncio
import random
import time
from decimal import Decimal

import aiohttp
import pytest
import structlog
from multidict import CIMultiDict

from worker.batcher import Batcher
from worker.codec import dumps as encode
from worker.consumer import Capacity
from worker.errors import (
    PermanentError,
    RetryableError,
    UpstreamQuotaExceeded,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from worker.observability.logging import add_secrets, sanitize
from worker.outbound import (
    Reply,
    retry_after_seconds,
    retry_delay,
    retrying,
    schedule,
    status_error,
    translated,
)
from worker.providers import classify, cost_usd, price_for


def test_retry_delay_grows_and_is_capped() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, base=5, cap=60, jitter=0, rng=rng) for n in range(1, 7)]
    assert delays == [5, 10, 20, 40, 60, 60]
    jittered = {retry_delay(1, base=10, cap=100, rng=rng) for _ in range(50)}
    assert all(9 <= d <= 11 for d in jittered) and len(jittered) > 1
    with pytest.raises(ValueError):
        retry_delay(0, base=1, cap=1)


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (429, {"error": {"code": "rate_limit_exceeded"}}, UpstreamRateLimited, "rate_limit"),
        (429, {"error": {"code": "insufficient_quota"}}, UpstreamQuotaExceeded, "quota"),
        (500, None, UpstreamUnavailable, "server"),
        (503, {"error": {"code": "server_is_overloaded"}}, UpstreamUnavailable, "server"),
        (503, {"error": {"code": "content_filter"}}, UpstreamUnavailable, "server"),
        (401, {"error": {"code": "invalid_api_key"}}, UpstreamRefused, "auth"),
        (403, None, UpstreamRefused, "auth"),
        (404, {"error": {"code": "model_not_found"}}, UpstreamRefused, "not_found"),
        (400, {"error": {"code": "context_length_exceeded"}}, UpstreamRefused, "validation"),
        (400, {"error": {"code": "content_filter"}}, UpstreamRefused, "content_filter"),
        (422, None, UpstreamRefused, "validation"),
    ],
)
def test_classify(status: int, body: object, kind: type, code: str) -> None:
    error = classify("openai", status, body, CIMultiDict())
    assert isinstance(error, kind)
    assert error.code == code
    assert isinstance(error, RetryableError) != isinstance(error, PermanentError)


def test_retry_after_headers() -> None:
    assert retry_after_seconds(CIMultiDict({"Retry-After-Ms": "1500"})) == 1.5
    assert retry_after_seconds(CIMultiDict({"retry-after": "3"})) == 3.0
    assert retry_after_seconds(CIMultiDict()) is None
    dated = retry_after_seconds(CIMultiDict({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert dated == 0.0


async def test_retrying_tries_again_on_transient_errors_only() -> None:
    calls: list[int] = []
    heard: list[tuple[int, float, str]] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise UpstreamRateLimited("x", retry_after=0.0)
        return "ok"

    def note(tries: int, wait: float, error: BaseException | None) -> None:
        heard.append((tries, wait, type(error).__name__))

    assert await retrying((0.0, 0.0, 0.0), flaky, on_backoff=note)() == "ok"
    assert len(calls) == 3 and [h[0] for h in heard] == [1, 2]
    calls.clear()
    with pytest.raises(UpstreamRateLimited):  # the schedule runs out: 1 + 1 tries
        await retrying((0.0,), flaky)()
    assert len(calls) == 2

    async def refused() -> str:
        calls.append(1)
        raise UpstreamRefused("no")

    calls.clear()
    with pytest.raises(UpstreamRefused):  # permanent: no second try
        await retrying((0.0, 0.0), refused)()
    assert len(calls) == 1


def test_schedule_is_jittered_and_stretched_by_retry_after() -> None:
    waits = schedule((1.0, 2.0, 5.0), jitter=0.2, rng=random.Random(3))
    assert next(waits) == 0.0
    first = waits.send(UpstreamUnavailable("x"))
    assert 0.8 <= first <= 1.2
    assert waits.send(UpstreamRateLimited("x", retry_after=30.0)) == 30.0
    assert 4.0 <= waits.send(UpstreamRateLimited("x", retry_after=None)) <= 6.0
    with pytest.raises(StopIteration):
        waits.send(None)


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        (TimeoutError(), UpstreamTimeout),
        (aiohttp.ServerTimeoutError("read"), UpstreamTimeout),  # a ClientError too
        (aiohttp.ClientConnectionError("refused"), UpstreamUnreachable),
        (ConnectionResetError("reset"), UpstreamUnreachable),
    ],
)
def test_exceptions_translate_through_the_one_table(raised: Exception, kind: type) -> None:
    with pytest.raises(kind) as caught, translated("gateway", 2.0):
        raise raised
    assert caught.value.__cause__ is raised and str(caught.value).startswith("gateway: ")


def test_other_exceptions_pass_the_table_untouched() -> None:
    with pytest.raises(KeyError), translated("gateway", 2.0):
        raise KeyError("ours to fix")


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (429, UpstreamRateLimited, "rate_limit"),
        (408, UpstreamUnavailable, "server"),
        (502, UpstreamUnavailable, "server"),
        (401, UpstreamRefused, "auth"),
        (404, UpstreamRefused, "not_found"),
        (413, UpstreamRefused, "validation"),
        (418, UpstreamRefused, "unknown"),
    ],
)
def test_status_table(status: int, kind: type, code: str) -> None:
    error = status_error("gateway", status, CIMultiDict({"retry-after": "4"}), message="no")
    assert type(error) is kind and error.code == code
    assert str(error) == f"gateway: HTTP {status}: no"
    if isinstance(error, UpstreamRateLimited):
        assert error.retry_after == 4.0


def test_prices_separate_input_and_output() -> None:
    assert cost_usd("openai", "gpt-4o", 1_000_000, 0) == Decimal("2.50")
    assert cost_usd("openai", "gpt-4o", 0, 1_000_000) == Decimal("10.00")
    assert cost_usd("azure", "gpt-4-turbo", 1000, 1000) == Decimal("0.04400000")
    assert price_for("openai", "gpt-4o-mini-2024-07-18") == price_for("openai", "gpt-4o-mini")
    assert cost_usd("openai", "unknown-model", 10, 10) == Decimal(0)


def test_sanitizer_removes_secrets_and_content() -> None:
    add_secrets(["sk-very-secret-value-123"])
    cleaned = sanitize(
        {
            "api_key": "k",
            "Authorization": "Bearer abc.def",
            "prompt": "hello fan",
            "note": "used sk-very-secret-value-123 and Bearer xyz123",
            "url": "postgresql://user:hunter2@db/x",
            "nested": {"password": "p", "ok": 1},
            "long": "y" * 5000,
            "content_type": "dm",
        }
    )
    text = str(cleaned)
    for leaked in ("sk-very-secret", "abc.def", "hello fan", "xyz123", "hunter2"):
        assert leaked not in text
    assert cleaned["nested"]["ok"] == 1
    assert cleaned["content_type"] == "dm"
    assert len(cleaned["long"]) < 600


def test_configured_logging_applies_the_sanitizer(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.observability import configure_logging

    configure_logging("INFO", "json")
    add_secrets(["sk-logged-secret-999"])
    structlog.get_logger("t").info("event", detail="key sk-logged-secret-999", messages=["hi"])
    err = capsys.readouterr().err
    assert "sk-logged-secret-999" not in err and '"hi"' not in err
    assert '"event": "event"' in err


async def test_batcher_groups_and_reports_per_entry_failures() -> None:
    calls: list[list[int]] = []

    async def flush(items: list[int]) -> list[BaseException | None]:
        calls.append(items)
        return [ValueError("odd") if i % 2 else None for i in items]

    batcher: Batcher[int, None] = Batcher(flush, size=10, linger=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(25)), return_exceptions=True)
    assert [len(c) for c in calls] == [10, 10, 5]
    assert [isinstance(r, ValueError) for r in results] == [i % 2 == 1 for i in range(25)]


async def test_capacity_blocks_when_full() -> None:
    capacity = Capacity(3)
    assert await capacity.take(10) == 3
    waiter = asyncio.create_task(capacity.take(10))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    capacity.give(2)
    assert await asyncio.wait_for(waiter, 1) == 2


async def test_capacity_lingers_for_a_full_batch_when_saturated() -> None:
    capacity = Capacity(20)
    assert await capacity.take(10) == 10
    assert await capacity.take(10) == 10
    waiter = asyncio.create_task(capacity.take(10, linger=0.2))
    capacity.give(1)
    await asyncio.sleep(0.05)
    assert not waiter.done()  # one free slot is not worth a receive yet
    capacity.give(9)
    assert await asyncio.wait_for(waiter, 1) == 10  # a full batch at once
    trickle = asyncio.create_task(capacity.take(10, linger=0.1))
    capacity.give(3)
    assert await asyncio.wait_for(trickle, 1) == 3  # after the linger, what there is
    assert capacity.in_use == 20


def test_user_of_never_raises_on_hostile_bodies() -> None:
    from worker.consumer.fairness import user_of
    from worker.queue import Received

    def msg(body: str, **attrs: str) -> Received:
        return Received("m", "r", body, 1, 0, attrs)

    assert user_of(msg("[" * 100_000 + "]" * 100_000)) == ""
    assert user_of(msg("not json")) == "" and user_of(msg("[1]")) == ""
    assert user_of(msg('{"intent": {"userId": "u1"}}')) == "u1"
    assert user_of(msg('{"userId": 5}')) == ""
    assert user_of(msg("{}", userId="from-attr")) == "from-attr"


async def test_batcher_group_commit_sends_what_arrived_meanwhile_together() -> None:
    calls: list[list[int]] = []

    async def flush(items: list[int]) -> list[object]:
        calls.append(items)
        await asyncio.sleep(0.02)
        return [ValueError("bad") if i == 7 else i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(flush, size=100, parallel=1)
    first = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
    await asyncio.sleep(0.005)  # the first batch is in flight now
    later = [asyncio.create_task(batcher.submit(i)) for i in range(5, 12)]
    results = await asyncio.gather(*first, *later, return_exceptions=True)
    assert calls == [list(range(5)), list(range(5, 12))]  # no timer: two round trips
    assert results[:7] == [0, 10, 20, 30, 40, 50, 60] and isinstance(results[7], ValueError)
    await batcher.drain()


def test_bench_window_reads_rate_and_cpu_between_5_and_95_percent() -> None:
    from devstack.bench import Window
    from devstack.bench_report import table

    finished = [100.0 + i * 0.01 for i in range(1000)]  # 100 msg/s from t=100
    samples = [
        (100.0 + s, {"workers": s * 0.5, "queue_server": s * 0.25, "bench_and_fakes": 0.0})
        for s in range(0, 11)
    ]
    window = Window.from_series(finished, samples)
    rate, cpu = window.rate_and_cpu("workers")
    assert rate == pytest.approx(100.0, rel=0.01)
    assert cpu == pytest.approx(5.0, rel=0.02)  # 0.5 CPU s per s at 100 msg/s
    assert window.cores()["queue_server"] == pytest.approx(0.25, abs=0.01)

    live = Window(100)
    reads: list[int] = []

    def counters() -> dict[str, float]:
        reads.append(1)
        return {"bench_and_fakes": float(len(reads))}

    for done in range(0, 101, 10):
        live.note(done, counters)
    assert len(reads) == 2  # CPU read only at the 5% and 95% marks
    report = {
        "results": [
            {
                "scenario": "s",
                "per_second": rate,
                "cpu_seconds_per_1000": cpu,
                "extra": {"overhead_p99_ms": 1.5, "cores_used": window.cores()},
            }
        ]
    }
    assert "| s | 100 | 5.00 | - | - | 1.5 |" in table(report)


def test_bench_overhead_subtracts_the_providers_own_time_not_the_workers() -> None:
    import httpx

    from devstack.bench import in_worker_overhead
    from devstack.fake_llm import FakeConfig, FakeLLM

    waited = 0.0  # as the client saw it: the server's span plus the HTTP round trip
    with FakeLLM(config=FakeConfig(latency_ms=150)) as fake:
        for text in ("[[fake:tag:wf-a]] one", "[[fake:tag:wf-a]] two", "untagged"):
            before = time.time()
            reply = httpx.post(
                f"{fake.base_url}/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]},
                headers={"Authorization": "Bearer k"},
            )
            waited += time.time() - before if "wf-a" in text else 0.0
            assert reply.status_code == 200
        served = fake.served
    assert list(served) == ["wf-a"] and len(served["wf-a"]) == 2
    spent = sum(end - start for start, end in served["wf-a"])
    assert 0.3 <= spent <= waited  # held 150 ms each by the server, inside the client's wait
    rows = [("wf-a", spent + 0.25), ("wf-b", 0.2)]
    assert in_worker_overhead(rows, served) == pytest.approx([0.25, 0.2])
    assert in_worker_overhead([("wf-a", 0.1)], served) == [0.0]


def test_metrics_keep_cloudwatch_sets_only_when_something_drains_them() -> None:
    from worker.observability import Metrics

    kept, dropped = Metrics(), Metrics(aggregate=False)
    for metrics in (kept, dropped):
        metrics.workflow("message_generation", "completed", 0.2)
        metrics.provider_call("openai", "ok", 0.1, 0.001)
    assert {key[0] for key in kept.drain()} >= {"Workflows", "ProviderCalls", "CostUSD"}
    assert dropped.drain() == {}  # CloudWatch off: no sets pile up
    assert dropped.totals() == {"completed": 1}  # the rest is counted as before
    assert b'fleet_provider_calls_total{outcome="ok",provider="openai"} 1.0' in dropped.prometheus()


def test_request_bodies_are_json_also_with_a_lone_surrogate() -> None:
    """orjson writes bodies; user text with a lone surrogate (it refuses those) goes
    through json, escaped, and both read back as they were."""
    plain = {"messages": [{"role": "user", "content": "caf\u00e9 \U0001f600"}], "n": 1.5}
    hostile = {"messages": [{"role": "user", "content": "x\ud800y"}]}
    for body in (plain, hostile):
        wire = encode(body)
        assert Reply(200, {}, wire).json() == body
    assert b"\\ud800" in encode(hostile)
    with pytest.raises(ValueError):
        Reply(200, {}, b"<html>").json()
