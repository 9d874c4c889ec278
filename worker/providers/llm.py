"""What handlers call: completions with in-process retries and cost rows.

``LLM`` is shared by the worker; ``LLM.session()`` gives one workflow its own
``LLMSession`` that collects a ``CallRecord`` for every attempt (failed ones
included) so the consumer writes them with the result in one transaction.
Retries use ``backoff`` with the seed's schedule (settings), jittered, and a
Retry-After longer than the scheduled delay wins.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections.abc import Generator, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import backoff
import structlog
from pydantic import BaseModel, ValidationError

from worker.errors import InvalidOutput, ProviderRateLimited, RetryableError, WorkerError
from worker.providers.base import ChatClient, ChatRequest, ChatResponse, Message
from worker.providers.prices import PRICE_VERSION, cost_usd, price_for
from worker.providers.tokens import estimate_messages, estimate_text
from worker.store.records import CallRecord

__all__ = ["LLM", "LLMSession"]

M = TypeVar("M", bound=BaseModel)
log = structlog.get_logger("worker.providers")


def _schedule(delays: Sequence[float]) -> Generator[float, BaseException | None, None]:
    """backoff wait generator: the fixed schedule, stretched by any Retry-After."""
    error = yield 0.0  # primed by backoff with send(None)
    for delay in delays:
        wait = delay
        if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
            wait = max(delay, error.retry_after)
        error = yield wait


def _jitter(value: float) -> float:
    return value * random.uniform(0.8, 1.2)


class LLM:
    """One provider client plus the retry policy and default model."""

    def __init__(self, client: ChatClient, *, model: str, retry_delays: Sequence[float]) -> None:
        self.client = client
        self.model = model
        self.retry_delays = tuple(retry_delays)
        if price_for(client.name, model) is None:
            log.warning("model_price_unknown", provider=client.name, model=model)

    def session(self) -> LLMSession:
        return LLMSession(self)

    async def close(self) -> None:
        await self.client.close()


class LLMSession:
    """The LLM as one workflow sees it: every attempt leaves a cost row."""

    def __init__(self, llm: LLM) -> None:
        self._llm = llm
        self.calls: list[CallRecord] = []
        self.provider = llm.client.name

    async def complete(
        self, messages: list[Message], *, json_mode: bool = False, max_tokens: int = 800
    ) -> ChatResponse:
        request = ChatRequest(
            messages=messages, model=self._llm.model, json_mode=json_mode, max_tokens=max_tokens
        )
        name = self.provider
        retrying = backoff.on_exception(
            lambda: _schedule(self._llm.retry_delays),
            RetryableError,
            max_tries=len(self._llm.retry_delays) + 1,
            jitter=_jitter,
            logger=None,
            on_backoff=lambda d: log.info(
                f"{name}_retry_scheduled",
                attempt=d["tries"],
                wait_s=round(d["wait"], 3),
                error_code=getattr(d.get("exception"), "code", "unknown"),
            ),
        )
        counter = itertools.count(1)

        async def attempt() -> ChatResponse:
            return await self._attempt(request, next(counter))

        response: ChatResponse = await retrying(attempt)()
        return response

    async def _attempt(self, request: ChatRequest, attempt: int) -> ChatResponse:
        name = self.provider
        log.info(f"{name}_execution_started", attempt=attempt, model=request.model)
        started = time.monotonic()
        try:
            response = await self._llm.client.complete(request)
        except WorkerError as exc:
            event = "failed" if isinstance(exc, RetryableError) else "error"
            log.warning(
                f"{name}_execution_{event}", attempt=attempt, error_code=exc.code, error=str(exc)
            )
            self._record(request, None, started, attempt, exc.code)
            raise
        self._record(request, response, started, attempt, None)
        log.info(
            f"{name}_execution_completed",
            attempt=attempt,
            model=response.model or request.model,
            tokens=response.prompt_tokens + response.completion_tokens,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        return response

    def _record(
        self,
        request: ChatRequest,
        response: ChatResponse | None,
        started: float,
        attempt: int,
        error_code: str | None,
    ) -> None:
        duration_ms = int((time.monotonic() - started) * 1000)
        if response is None:
            record = CallRecord(
                provider=self.provider,
                model=request.model,
                prompt_tokens=0,
                completion_tokens=0,
                usage_source="none",
                cost_usd=Decimal(0),
                price_version=PRICE_VERSION,
                duration_ms=duration_ms,
                attempt=attempt,
                outcome="error",
                error_code=error_code,
            )
        else:
            prompt = response.prompt_tokens
            completion = response.completion_tokens
            if response.usage_source == "estimated":
                prompt = estimate_messages(request.messages)
                completion = estimate_text(response.content)
            model = response.model or request.model
            record = CallRecord(
                provider=self.provider,
                model=model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                usage_source=response.usage_source,
                cost_usd=cost_usd(self.provider, model, prompt, completion, response.cached_tokens),
                price_version=PRICE_VERSION,
                duration_ms=duration_ms,
                attempt=attempt,
                outcome="ok",
            )
        self.calls.append(record)

    async def complete_structured(self, messages: list[Message], schema: type[M]) -> M:
        """A JSON answer validated against ``schema``; one repair round, then InvalidOutput."""
        response = await self.complete(messages, json_mode=True)
        try:
            return _validate(response.content, schema)
        except ValueError as first:
            repair = [
                *messages,
                {"role": "assistant", "content": response.content},
                {
                    "role": "user",
                    "content": "Your answer did not match the JSON schema: "
                    f"{str(first)[:500]}. Reply again with only valid JSON for the schema.",
                },
            ]
            response = await self.complete(repair, json_mode=True)
            try:
                return _validate(response.content, schema)
            except ValueError as second:
                raise InvalidOutput(
                    f"{schema.__name__} still invalid after one repair: {str(second)[:300]}"
                ) from second


def _validate(content: str, schema: type[M]) -> M:
    try:
        data: Any = json.loads(content)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'root'}: {e['msg']}" for e in exc.errors()[:5]
            )
        ) from exc
