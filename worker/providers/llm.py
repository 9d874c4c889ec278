"""What handlers call: routing, fallback, retries, breaker, cache and cost rows.

``LLM`` holds the provider routes (client, model, circuit breaker) and the
policies; ``LLM.session()`` gives one workflow an ``LLMSession`` that:

1. orders the providers: ``forceProvider`` alone, else the intent's route
   (``FLEET_ROUTES``) then the others;
2. per provider: serves a cached answer if caching is on, else calls with
   in-process retries (``worker.outbound.retrying``; the schedule ``FLEET_LLM_RETRY_DELAYS``,
   jittered, stretched by Retry-After) for retryable categories only, each
   attempt gated by the breaker and bounded by the workflow deadline;
3. falls back to the next provider unless the failure is one no provider can
   fix (validation, content filter) or the provider was forced;
4. raises one retryable or permanent error when every route failed.

Every attempt (failed ones and cache hits included) becomes a ``CallRecord``.
Spend control (``gate``): an A/B ``Arm`` may set the model and first provider; a
``SpendGate`` reserves each upstream call's estimated cost, then settles the real one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import structlog
from pydantic import BaseModel

from worker.errors import (
    CircuitOpen,
    ConfigError,
    DeadlineExceeded,
    NotDue,
    PermanentError,
    RetryableError,
    UpstreamQuotaExceeded,
    UpstreamRateLimited,
    WorkerError,
)
from worker.observability.metrics import Metrics
from worker.observability.spans import event, llm_attempt, llm_cache_hit, llm_usage
from worker.outbound import retrying
from worker.providers import gate
from worker.providers.base import ChatClient, ChatRequest, ChatResponse, Message, Pace
from worker.providers.breaker import CircuitBreaker
from worker.providers.cache import ResponseCache, cache_key
from worker.providers.calls import error_call, hit_call, ok_call
from worker.providers.gate import Admission, Arm, CallAsk, SpendGate, Ticket
from worker.providers.prices import PriceTable
from worker.providers.structured import answer_validated
from worker.providers.taxonomy import NO_FALLBACK, combined
from worker.store.records import CallRecord

__all__ = ["LLM", "LLMSession", "Route"]

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger("worker.providers")
_HEALTH = frozenset({"timeout", "network", "server"})


@dataclass(frozen=True, slots=True)
class Route:
    client: ChatClient
    model: str
    breaker: CircuitBreaker


class LLM:
    """The provider routes and the policies shared by every workflow of a process."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        routing: Mapping[str, str] | None = None,
        retry_delays: Sequence[float] = (1.0, 2.0, 5.0),
        prices: PriceTable | None = None,
        cache: ResponseCache | None = None,
        cache_intents: frozenset[str] = frozenset(),
        on_wait: Callable[[str, float], None] | None = None,
        metrics: Metrics | None = None,
        spend: SpendGate | None = None,
        pace: Pace | None = None,
    ) -> None:
        if not routes:
            raise ConfigError(
                "no LLM provider configured: set OPENAI_API_KEY and/or "
                "AZURE_OPENAI_ENDPOINT + AZURE_OPENAI_API_KEY"
            )
        self.routes = dict(routes)
        self.routing = dict(routing or {})
        self.retry_delays = tuple(retry_delays)
        self.prices = prices or PriceTable()
        self.cache = cache
        self.cache_intents = cache_intents
        self.on_wait = on_wait
        self.metrics = metrics
        self.spend = spend
        self.pace = pace
        for name, route in self.routes.items():
            if self.prices.price(name, route.model) is None:
                log.warning("model_price_unknown", provider=name, model=route.model)

    def order(self, intent_type: str, force: str | None) -> list[str]:
        if force:
            if force not in self.routes:
                raise PermanentError(
                    f"forceProvider {force!r} is not configured on this fleet",
                    code="provider_not_configured",
                )
            return [force]
        names = list(self.routes)
        primary = self.routing.get(intent_type)
        if primary in self.routes:
            names.remove(primary)
            names.insert(0, primary)
        return names

    def session(
        self,
        intent_type: str = "",
        *,
        force_provider: str | None = None,
        deadline: float | None = None,
        use_cache: bool = True,
        user_id: str = "",
        arm: Arm | None = None,
    ) -> LLMSession:
        caching = use_cache and self.cache is not None and intent_type in self.cache_intents
        session = LLMSession(self, intent_type, force_provider, deadline, caching)
        session.user_id, session.arm = user_id, arm
        return session

    def breaker_states(self) -> dict[str, str]:
        return {name: route.breaker.state for name, route in self.routes.items()}

    async def close(self) -> None:
        for route in self.routes.values():
            await route.client.close()


class LLMSession:
    """The LLM as one workflow sees it: every attempt leaves a cost row."""

    def __init__(
        self, llm: LLM, intent_type: str, force: str | None, deadline: float | None, caching: bool
    ) -> None:
        self._llm = llm
        self._intent = intent_type
        self._force = force
        self._deadline = deadline
        self._caching = caching
        self.calls: list[CallRecord] = []
        self.provider: str | None = None
        self.user_id = ""
        self.arm: Arm | None = None
        self._admission = Admission()  # the first reservation decides if the workflow runs

    def _time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    async def complete(
        self, messages: list[Message], *, json_mode: bool = False, max_tokens: int = 800
    ) -> ChatResponse:
        errors: list[WorkerError] = []
        order = self._llm.order(self._intent, self._force)
        for name in gate.arm_order(self.arm, order, self._force):
            route = self._llm.routes[name]
            model = gate.arm_model(self.arm, name, route.model)
            request = ChatRequest(messages, model, json_mode=json_mode, max_tokens=max_tokens)
            try:
                response = await self._via(name, route, request)
            except WorkerError as exc:
                errors.append(exc)
                final = isinstance(exc, DeadlineExceeded | NotDue)  # NotDue: rate-limit wait
                if exc.code in NO_FALLBACK or self._force or final:
                    raise
                log.warning("provider_fallback", provider=name, error_code=exc.code)
                continue
            self.provider = name
            return response
        raise combined(errors)

    async def _via(self, name: str, route: Route, request: ChatRequest) -> ChatResponse:
        cache = self._llm.cache
        if not self._caching or cache is None:
            return await self._with_retries(route, request)
        key = cache_key(name, request)
        hit = await cache.get(key)
        if hit is not None:
            self._record_hit(name, hit)
            return hit
        response, shared = await cache.single_flight(
            key, lambda: self._with_retries(route, request)
        )
        if shared:
            self._record_hit(name, response)
        else:
            await cache.put(key, name, response)
        return response

    async def _with_retries(self, route: Route, request: ChatRequest) -> ChatResponse:
        name = route.client.name
        counter = itertools.count(1)

        async def attempt() -> ChatResponse:
            return await self._attempt(route, request, next(counter))

        def scheduled(tries: int, wait: float, error: BaseException | None) -> None:
            log.info(
                f"{name}_retry_scheduled",
                attempt=tries,
                wait_s=round(wait, 3),
                error_code=getattr(error, "code", "unknown"),
            )
            event(
                "retry_scheduled",
                {"fleet.llm.provider": name, "fleet.llm.attempt": tries, "wait_s": wait},
            )
            if self._llm.on_wait is not None:
                self._llm.on_wait(name, wait)

        return await retrying(self._llm.retry_delays, attempt, on_backoff=scheduled)()

    async def _attempt(self, route: Route, request: ChatRequest, attempt: int) -> ChatResponse:
        """One call, in a span of its own (GenAI conventions; tokens and cost when answered)."""
        name = route.client.name
        with llm_attempt(name, request.model, attempt, request.max_tokens) as span:
            ticket, before = await self._reserve(name, request), len(self.calls)  # spend hook
            try:
                response = await self._call(route, request, attempt)
            finally:  # the real cost of this attempt (0 when it failed)
                if ticket is not None:
                    ticket.settle(sum((c.cost_usd for c in self.calls[before:]), Decimal(0)))
            if span.is_recording():
                done = self.calls[-1]
                llm_usage(
                    span,
                    done.model,
                    done.prompt_tokens,
                    done.completion_tokens,
                    float(done.cost_usd),
                    done.usage_source,
                )
            return response

    async def _reserve(self, name: str, request: ChatRequest) -> Ticket | None:
        """Reserve the call's estimated cost; only the first reservation may be refused."""
        if self._llm.spend is None:
            return None
        prices, intent, user = self._llm.prices, self._intent, self.user_id
        return await self._admission.reserve(
            self._llm.spend, lambda admit: CallAsk(name, intent, user, admit, request, prices)
        )

    async def _call(self, route: Route, request: ChatRequest, attempt: int) -> ChatResponse:
        name = route.client.name
        await self._paced(route, request)
        left = self._time_left()
        if left is not None and left <= 0:
            raise DeadlineExceeded(f"{name}: workflow deadline reached before attempt {attempt}")
        if not route.breaker.allow():
            log.warning(f"{name}_execution_failed", attempt=attempt, error_code="circuit_open")
            raise CircuitOpen(f"{name}: circuit open")
        timeout = route.client.timeout if left is None else min(route.client.timeout, left)
        log.info(f"{name}_execution_started", attempt=attempt, model=request.model)
        started = time.monotonic()
        try:
            response = await route.client.complete(request, time_limit=timeout)
        except WorkerError as exc:
            error = self._failed(route, request, started, attempt, exc)
            if error is exc:
                raise
            raise error from exc
        except BaseException:
            route.breaker.release()
            raise
        route.breaker.record(True)
        record = ok_call(name, request, response, self._llm.prices, started, attempt)
        self.calls.append(record)
        self._observe(route, "ok", started, float(record.cost_usd))
        log.info(
            f"{name}_execution_completed",
            attempt=attempt,
            model=record.model,
            tokens=record.prompt_tokens + record.completion_tokens,
            cost_usd=float(record.cost_usd),
            duration_ms=record.duration_ms,
        )
        return response

    async def _paced(self, route: Route, request: ChatRequest) -> None:
        """The rate limiter's turn (``LLM(pace=…)``); its NotDue postpones the workflow
        when the turn leaves less than a call's timeout (or half the time left)."""
        if self._llm.pace is not None:
            left = self._time_left()
            budget = None if left is None else max(left - route.client.timeout, left / 2)
            await self._llm.pace(route.client.name, request.messages, request.max_tokens, budget)

    def _failed(
        self, route: Route, request: ChatRequest, started: float, attempt: int, exc: WorkerError
    ) -> WorkerError:
        """Book a failed attempt (breaker, log, cost row, metrics); the error to raise:
        ``exc`` itself, or quota when its Retry-After is past the deadline."""
        name = route.client.name
        if exc.code in _HEALTH:
            route.breaker.record(False)
        else:
            route.breaker.release()
        event = "failed" if isinstance(exc, RetryableError) else "error"
        log.warning(
            f"{name}_execution_{event}", attempt=attempt, error_code=exc.code, error=str(exc)
        )
        self.calls.append(
            error_call(name, request.model, self._llm.prices, started, attempt, exc.code)
        )
        self._observe(route, exc.code, started, 0.0)
        left = self._time_left()
        hint = exc.retry_after if isinstance(exc, UpstreamRateLimited) else None
        if hint is not None and left is not None and hint > left:
            return UpstreamQuotaExceeded(f"{name}: Retry-After {hint:.1f}s is past the deadline")
        return exc

    def _observe(self, route: Route, outcome: str, started: float, cost: float) -> None:
        metrics = self._llm.metrics
        if metrics is not None:
            name = route.client.name
            metrics.provider_call(name, outcome, time.monotonic() - started, cost)
            metrics.breaker_state(name, route.breaker.state)

    def _record_hit(self, provider: str, response: ChatResponse) -> None:
        log.info("llm_cache_hit", provider=provider, model=response.model)
        self.calls.append(hit_call(provider, response, self._llm.prices))
        llm_cache_hit(provider, response.model, response.prompt_tokens, response.completion_tokens)

    # --- structured output -----------------------------------------------
    async def complete_structured(self, messages: list[Message], schema: type[M]) -> M:
        """A JSON answer validated against ``schema``; one repair round, then InvalidOutput."""
        return await answer_validated(self, messages, schema)
