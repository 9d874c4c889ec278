"""The provider layer: taxonomy, retries, fallback, breaker, cache, tokens, costs, logs.

HTTP is faked here (unit level) by a ``Send`` that hands each request, as an
``httpx.Request``, to a scripted handler and raises what aiohttp would raise;
the fleet-level runs against the fake servers live in test_fault_run.py.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import aiohttp
import httpx
import pytest

from worker.errors import (
    DeadlineExceeded,
    PermanentError,
    RetryableError,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from worker.outbound import Reply, Send
from worker.providers import (
    LLM,
    AzureOpenAIClient,
    BreakerPolicy,
    ChatRequest,
    CircuitBreaker,
    OpenAIClient,
    PriceTable,
    ResponseCache,
    Route,
    go_duration,
    retry_after_seconds,
)
from worker.store import Store

KEY = "sk-unit-secret-key-0987654321"
Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]
OK_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hello", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}


def ok(content: str = "hello") -> httpx.Response:
    body = json.loads(json.dumps(OK_BODY))
    body["choices"][0]["message"]["content"] = content
    return httpx.Response(200, json=body)


def err(
    status: int, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"message": "m", "type": "t", "param": None, "code": code, **extra}},
        headers=headers,
    )


def wire(handler: Handler) -> Send:
    """A ``Send`` for ``JsonPoster`` that asks ``handler`` instead of the network."""

    async def send(url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        reply = handler(httpx.Request("POST", url, content=body, headers=headers))
        if inspect.isawaitable(reply):
            reply = await reply
        return Reply(reply.status_code, reply.headers, reply.content)

    return send


class Scripted:
    """A handler that plays replies (or raises exceptions) in order and records requests."""

    def __init__(self, *replies: httpx.Response | Exception | Handler) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply) and not isinstance(reply, httpx.Response):
            return reply(request)
        return reply


def openai(script: Scripted, timeout: float = 30.0) -> OpenAIClient:
    return OpenAIClient("https://api.test/v1", KEY, timeout=timeout, send=wire(script))


def azure(script: Scripted, **kw: Any) -> AzureOpenAIClient:
    kw.setdefault("api_key", KEY)
    return AzureOpenAIClient("https://res.test", "dep-4o", send=wire(script), **kw)


def llm_of(
    *routes: tuple[str, Any],
    delays: tuple[float, ...] = (0.0, 0.0, 0.0),
    clock: Callable[[], float] = time.monotonic,
    trip: int = 10,
    **kw: Any,
) -> LLM:
    policy = BreakerPolicy(consecutive_failures=trip, cooldown_seconds=10)
    return LLM(
        {
            name: Route(
                client,
                "gpt-4o-mini" if name == "openai" else "gpt-4o",
                CircuitBreaker(name, policy, clock),
            )
            for name, client in routes
        },
        retry_delays=delays,
        **kw,
    )


REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}], model="gpt-4o-mini")


# --- the taxonomy, each row with its decision ------------------------------------
TAXONOMY = [
    (err(429, "rate_limit_exceeded"), "rate_limit", True, True),
    (err(429, "insufficient_quota"), "quota", True, False),
    (err(500, "server_error"), "server", True, True),
    (err(502, ""), "server", True, True),
    (err(503, "server_is_overloaded"), "server", True, True),
    (err(504, ""), "server", True, True),
    (err(401, "invalid_api_key"), "auth", False, False),
    (err(403, ""), "auth", False, False),
    (err(404, "DeploymentNotFound"), "not_found", False, False),
    (err(400, "context_length_exceeded"), "validation", False, False),
    (err(422, ""), "validation", False, False),
    (
        err(400, "content_filter", innererror={"code": "ResponsibleAIPolicyViolation"}),
        "content_filter",
        False,
        False,
    ),
    (err(418, "teapot"), "unknown", False, False),
    (aiohttp.SocketTimeoutError("slow"), "timeout", True, True),
    (aiohttp.ClientConnectionError("refused"), "network", True, True),
    (aiohttp.ServerDisconnectedError(), "network", True, True),
    (ConnectionResetError("reset"), "network", True, True),
    (httpx.Response(200, text="{not json"), "server", True, True),
]


@pytest.mark.parametrize(("reply", "code", "retryable", "retried_in_process"), TAXONOMY)
async def test_taxonomy_row(
    reply: Any, code: str, retryable: bool, retried_in_process: bool
) -> None:
    script = Scripted(reply)
    llm = llm_of(("openai", openai(script)))
    session = llm.session("message_generation")
    with pytest.raises((RetryableError, PermanentError)) as caught:
        await session.complete(REQUEST.messages)
    assert caught.value.code == code
    assert isinstance(caught.value, RetryableError) is retryable
    assert len(script.requests) == (4 if retried_in_process else 1)
    assert [c.outcome for c in session.calls] == ["error"] * len(script.requests)
    await llm.close()


async def test_content_filter_in_a_200_is_permanent() -> None:
    body = json.loads(json.dumps(OK_BODY))
    body["choices"][0]["finish_reason"] = "content_filter"
    client = openai(Scripted(httpx.Response(200, json=body)))
    with pytest.raises(UpstreamRefused) as caught:
        await client.complete(REQUEST)
    assert caught.value.code == "content_filter"


async def test_transport_errors_are_translated() -> None:
    for exc, kind in [
        (aiohttp.ConnectionTimeoutError("t"), UpstreamTimeout),
        (TimeoutError(), UpstreamTimeout),
        (aiohttp.ClientPayloadError("r"), UpstreamUnreachable),
        (OSError("no route"), UpstreamUnreachable),
        (httpx.Response(200, text="nope"), UpstreamUnavailable),
    ]:
        with pytest.raises(kind) as caught:
            await openai(Scripted(exc)).complete(REQUEST)
        assert str(caught.value).startswith("openai: ")
        if isinstance(exc, BaseException):
            assert caught.value.__cause__ is exc


async def test_gateway_replies_are_translated() -> None:
    from worker.sends import GatewayClient

    script = Scripted(
        httpx.Response(200, json={"id": "m-1"}),
        httpx.Response(429, json={"error": "slow down"}, headers={"retry-after": "7"}),
        httpx.Response(503, text="<html>down</html>"),
        httpx.Response(403, json={"error": "creator banned"}),
        httpx.Response(200, json={"ok": True}),
        aiohttp.ServerDisconnectedError(),
    )
    gateway = GatewayClient("https://gw.test", "tok", send=wire(script))
    send = dict(creator_id="c", fan_id="f", text="t", key="k-1")
    assert await gateway.send(**send) == "m-1"
    sent = script.requests[0]
    assert str(sent.url) == "https://gw.test/messages"
    assert sent.headers["idempotency-key"] == "k-1"
    assert sent.headers["authorization"] == "Bearer tok"
    assert json.loads(sent.content) == {"creatorId": "c", "fanId": "f", "text": "t"}
    with pytest.raises(UpstreamRateLimited) as limited:
        await gateway.send(**send)
    assert limited.value.retry_after == 7.0 and "slow down" in str(limited.value)
    with pytest.raises(UpstreamUnavailable):
        await gateway.send(**send)
    with pytest.raises(UpstreamRefused) as refused:
        await gateway.send(**send)
    assert refused.value.code == "auth" and str(refused.value).startswith("gateway: HTTP 403")
    with pytest.raises(UpstreamUnavailable, match="lacks an id"):
        await gateway.send(**send)
    with pytest.raises(UpstreamUnreachable):
        await gateway.send(**send)


# --- wire formats ---------------------------------------------------------------
async def test_openai_request_shape() -> None:
    script = Scripted(ok())
    await openai(script).complete(ChatRequest(REQUEST.messages, "gpt-4o-mini", json_mode=True))
    sent = script.requests[0]
    assert str(sent.url) == "https://api.test/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = json.loads(sent.content)
    assert body["model"] == "gpt-4o-mini" and body["messages"] == REQUEST.messages
    assert body["response_format"] == {"type": "json_object"}
    assert "max_completion_tokens" in body


async def test_azure_request_shape_with_key_and_with_entra_token() -> None:
    script = Scripted(ok())
    await azure(script).complete(REQUEST)
    sent = script.requests[0]
    assert sent.url.path == "/openai/deployments/dep-4o/chat/completions"
    assert sent.url.params["api-version"] == "2024-10-21"
    assert sent.headers["api-key"] == KEY and "authorization" not in sent.headers
    body = json.loads(sent.content)
    assert "model" not in body and body["max_tokens"] == 800
    await azure(script, api_key=None, ad_token="entra-token").complete(REQUEST)
    assert script.requests[1].headers["authorization"] == "Bearer entra-token"


async def test_response_without_usage_is_estimated_with_the_tokenizer() -> None:
    body = {k: v for k, v in OK_BODY.items() if k != "usage"}
    llm = llm_of(("openai", openai(Scripted(httpx.Response(200, json=body)))))
    session = llm.session("message_generation")
    await session.complete([{"role": "user", "content": "Hello there, how are you?"}])
    call = session.calls[0]
    assert call.usage_source == "estimated"
    assert call.prompt_tokens == 3 + 3 + 1 + 7  # primer, message, role, text
    assert call.completion_tokens == 1 and call.cost_usd > 0


# --- retries and Retry-After ------------------------------------------------------
async def test_retry_after_is_honoured() -> None:
    waits: list[float] = []
    script = Scripted(err(429, "rate_limit_exceeded", {"retry-after": "0.3"}), ok())
    llm = llm_of(
        ("openai", openai(script)),
        delays=(0.01,),
        on_wait=lambda _provider, wait: waits.append(wait),
    )
    started = time.monotonic()
    await llm.session("message_generation").complete(REQUEST.messages)
    assert waits == [0.3]
    assert time.monotonic() - started >= 0.3


def test_retry_hints_parse() -> None:
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert (
        retry_after_seconds(
            {"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "12ms"}
        )
        == 360.0
    )
    assert retry_after_seconds({}) is None
    assert go_duration("1.5s") == 1.5 and go_duration("1h2m3s") == 3723
    assert go_duration("12ms") == pytest.approx(0.012) and go_duration("soon") is None


async def test_retry_after_past_the_deadline_falls_back_as_quota() -> None:
    slow = Scripted(err(429, "rate_limit_exceeded", {"retry-after": "30"}))
    fine = Scripted(ok("from azure"))
    llm = llm_of(("openai", openai(slow)), ("azure", azure(fine)))
    session = llm.session("message_generation", deadline=time.monotonic() + 5)
    response = await session.complete(REQUEST.messages)
    assert response.content == "from azure" and session.provider == "azure"
    assert len(slow.requests) == 1


async def test_deadline_stops_retries() -> None:
    script = Scripted(err(503, "server_is_overloaded"))
    llm = llm_of(("openai", openai(script)), delays=(0.2, 0.2, 0.2))
    session = llm.session("message_generation", deadline=time.monotonic() + 0.1)
    with pytest.raises(DeadlineExceeded):
        await session.complete(REQUEST.messages)
    assert len(script.requests) == 1


# --- routing and fallback ---------------------------------------------------------
async def test_fallback_both_ways_and_force_provider() -> None:
    down = Scripted(err(503, "server_is_overloaded"))
    up = Scripted(ok("up"))
    routing = {"message_generation": "openai", "content_planning": "azure"}
    llm = llm_of(("openai", openai(down)), ("azure", azure(up)), routing=routing)
    session = llm.session("message_generation")
    assert (await session.complete(REQUEST.messages)).content == "up"
    assert session.provider == "azure"
    assert [c.provider for c in session.calls] == ["openai"] * 4 + ["azure"]

    down2, up2 = Scripted(err(401, "invalid_api_key")), Scripted(ok("openai here"))
    llm2 = llm_of(("openai", openai(up2)), ("azure", azure(down2)), routing=routing)
    session2 = llm2.session("content_planning")
    assert (await session2.complete(REQUEST.messages)).content == "openai here"
    assert len(down2.requests) == 1

    forced = llm2.session("message_generation", force_provider="azure")
    with pytest.raises(PermanentError) as caught:
        await forced.complete(REQUEST.messages)
    assert caught.value.code == "auth"
    assert len(up2.requests) == 1  # no fallback when forced


async def test_validation_errors_do_not_fall_back() -> None:
    bad, other = Scripted(err(400, "context_length_exceeded")), Scripted(ok())
    llm = llm_of(("openai", openai(bad)), ("azure", azure(other)))
    with pytest.raises(UpstreamRefused):
        await llm.session("message_generation").complete(REQUEST.messages)
    assert other.requests == []


async def test_every_route_failing_is_retryable_if_any_may_recover() -> None:
    llm = llm_of(
        ("openai", openai(Scripted(err(503, "")))), ("azure", azure(Scripted(err(401, ""))))
    )
    with pytest.raises(RetryableError) as caught:
        await llm.session("message_generation").complete(REQUEST.messages)
    assert "all providers failed" in str(caught.value) and caught.value.code == "server"


# --- circuit breaker --------------------------------------------------------------
def test_breaker_opens_sheds_half_opens_and_closes() -> None:
    now = [0.0]
    breaker = CircuitBreaker(
        "openai", BreakerPolicy(consecutive_failures=3, cooldown_seconds=10), clock=lambda: now[0]
    )
    for _ in range(3):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 10.5
    assert breaker.allow() and breaker.state == "half_open"
    assert not breaker.allow()  # one probe at a time
    breaker.record(False)
    assert breaker.state == "open"
    now[0] = 21.0
    assert breaker.allow()
    breaker.record(True)
    assert breaker.state == "closed"
    assert breaker.transitions == ["open", "half_open", "open", "half_open", "closed"]


def test_breaker_trips_on_failure_rate() -> None:
    breaker = CircuitBreaker(
        "azure",
        BreakerPolicy(consecutive_failures=99, failure_rate=0.5, min_calls=10, window_seconds=60),
    )
    for i in range(10):
        breaker.record(i % 2 == 0)
    assert breaker.state == "open"


async def test_open_circuit_costs_no_calls() -> None:
    now = [0.0]
    dead, alive = Scripted(aiohttp.ClientConnectionError("down")), Scripted(ok())
    llm = llm_of(
        ("openai", openai(dead)),
        ("azure", azure(alive)),
        delays=(0.0,),
        clock=lambda: now[0],
        trip=3,
    )
    for _ in range(5):
        await llm.session("message_generation").complete(REQUEST.messages)
    assert llm.breaker_states()["openai"] == "open"
    assert len(dead.requests) == 3  # opened after 3 failures; then shed
    now[0] = 11.0
    dead.replies = [ok("recovered")]
    response = await llm.session("message_generation").complete(REQUEST.messages)
    assert response.content == "recovered" and llm.breaker_states()["openai"] == "closed"


# --- cache and single-flight (real Postgres) --------------------------------------
async def test_cache_hit_and_single_flight(store: Store) -> None:
    async def slow_ok(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        return ok("cached answer")

    calls: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return await slow_ok(request)

    client = OpenAIClient("https://api.test/v1", KEY, send=wire(handler))
    cache = ResponseCache(store, ttl_seconds=60)
    llm = LLM(
        {"openai": Route(client, "gpt-4o-mini", CircuitBreaker("openai", BreakerPolicy()))},
        retry_delays=(),
        cache=cache,
        cache_intents=frozenset({"content_validation"}),
    )
    messages = [{"role": "user", "content": f"validate {time.time_ns()}"}]
    sessions = [llm.session("content_validation") for _ in range(5)]
    answers = await asyncio.gather(*(s.complete(messages) for s in sessions))
    assert {a.content for a in answers} == {"cached answer"} and len(calls) == 1
    later = llm.session("content_validation")
    await later.complete(messages)
    assert len(calls) == 1
    rows = [c for s in [*sessions, later] for c in s.calls]
    assert sum(not c.cache_hit for c in rows) == 1
    assert all(c.cost_usd == 0 for c in rows if c.cache_hit) and len(rows) == 6
    fresh = llm.session("content_validation", use_cache=False)
    await fresh.complete(messages)
    off = llm.session("message_generation")
    await off.complete(messages)
    assert len(calls) == 3


# --- prices -----------------------------------------------------------------------
def test_price_overrides_change_the_version() -> None:
    table = PriceTable({"azure:gpt-4o": [3.0, 12.0]})
    assert table.cost("azure", "gpt-4o", 1_000_000, 1_000_000) == Decimal("15.00000000")
    assert table.version.startswith("list-2026-11+")
    assert PriceTable().cost("openai", "gpt-4o-mini", 1000, 1000, cached=500) == Decimal(
        "0.00071250"
    )
    with pytest.raises(ValueError):
        PriceTable({"gpt-4o": [1, 2]})


# --- logs -------------------------------------------------------------------------
async def test_no_key_or_prompt_text_in_logs(capsys: pytest.CaptureFixture[str]) -> None:
    from worker.observability import configure_logging
    from worker.observability.logging import add_secrets

    configure_logging("DEBUG", "json")
    add_secrets([KEY])
    script = Scripted(
        err(429, "rate_limit_exceeded", {"retry-after": "0"}),
        err(401, f"invalid_api_key {KEY}"),
        ok(),
    )
    llm = llm_of(("openai", openai(script)), ("azure", azure(Scripted(ok()))), delays=(0.0,))
    prompt = "my very private fan message about payday"
    await llm.session("message_generation").complete([{"role": "user", "content": prompt}])
    logged = capsys.readouterr().err
    assert "openai_execution_started" in logged and "openai_retry_scheduled" in logged
    assert "provider_fallback" in logged and "azure_execution_completed" in logged
    assert KEY not in logged and "payday" not in logged


async def test_production_transport_against_the_fake_server() -> None:
    """The aiohttp path (no test ``send``): answers, resets, timeouts, refused ports."""
    from devstack import FakeLLM
    from devstack.localstack import free_port
    from worker.sends.gateway import GatewayClient

    def ask(marker: str) -> ChatRequest:
        return ChatRequest([{"role": "user", "content": f"{marker} hi"}], "gpt-4o-mini")

    with FakeLLM(api_key=KEY) as fake:
        client = OpenAIClient(fake.base_url, KEY, timeout=5.0)
        try:
            answer = await client.complete(ask(""))
            assert answer.content and answer.usage_source == "api"
            with pytest.raises(UpstreamUnreachable):
                await client.complete(ask("[[fake:reset]]"))
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout):
                await client.complete(ask("[[fake:timeout]]"), time_limit=0.5)
            assert time.monotonic() - started < 2.0  # bounded as a whole
            with pytest.raises(UpstreamRefused):
                await client.complete(ask("[[fake:reject]]"))
        finally:
            await client.close()
    nobody = OpenAIClient(f"http://127.0.0.1:{free_port()}/v1", KEY, timeout=2.0)
    gateway = GatewayClient(f"http://127.0.0.1:{free_port()}", "token", timeout=2.0)
    try:
        with pytest.raises(UpstreamUnreachable):
            await nobody.complete(ask(""))
        with pytest.raises(UpstreamUnreachable):
            await gateway.send(creator_id="c", fan_id="f", text="t", key="k")
    finally:
        await nobody.close()
        await gateway.close()
