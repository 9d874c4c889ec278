"""The cost row of one LLM call attempt: failed, answered, or served from the cache."""

from __future__ import annotations

import time
from decimal import Decimal

from worker.providers.base import ChatRequest, ChatResponse
from worker.providers.prices import PriceTable
from worker.providers.tokens import count_messages, count_text
from worker.store.records import CallRecord

__all__ = ["error_call", "hit_call", "ok_call"]


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def error_call(
    provider: str, model: str, prices: PriceTable, started: float, attempt: int, code: str
) -> CallRecord:
    """An attempt that failed: no tokens, no cost, the error's code."""
    return CallRecord(
        provider=provider,
        model=model,
        prompt_tokens=0,
        completion_tokens=0,
        usage_source="none",
        cost_usd=Decimal(0),
        price_version=prices.version,
        duration_ms=_ms(started),
        attempt=attempt,
        outcome="error",
        error_code=code,
    )


def ok_call(
    provider: str,
    request: ChatRequest,
    response: ChatResponse,
    prices: PriceTable,
    started: float,
    attempt: int,
) -> CallRecord:
    """An answer: the API's token counts, or our estimate when it gave none, priced."""
    model = response.model or request.model
    prompt, completion = response.prompt_tokens, response.completion_tokens
    if response.usage_source == "estimated":
        prompt = count_messages(request.messages, model)
        completion = count_text(response.content, model)
    return CallRecord(
        provider=provider,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        usage_source=response.usage_source,
        cost_usd=prices.cost(provider, model, prompt, completion, response.cached_tokens),
        price_version=prices.version,
        duration_ms=_ms(started),
        attempt=attempt,
        outcome="ok",
    )


def hit_call(provider: str, response: ChatResponse, prices: PriceTable) -> CallRecord:
    """An answer from the response cache: the tokens it stood for, at no cost."""
    return CallRecord(
        provider=provider,
        model=response.model,
        prompt_tokens=response.prompt_tokens,
        completion_tokens=response.completion_tokens,
        usage_source=response.usage_source,
        cost_usd=Decimal(0),
        price_version=prices.version,
        duration_ms=0,
        attempt=1,
        outcome="ok",
        cache_hit=True,
    )
