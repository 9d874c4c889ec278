"""OpenAI chat completions over httpx: the only module that talks to OpenAI.

``classify`` maps an HTTP outcome to one error of the tree (pure, tested);
httpx exceptions are translated into ours here.
"""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from worker.errors import (
    ProviderNetworkError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    WorkerError,
)
from worker.providers.base import ChatRequest, ChatResponse

__all__ = ["OpenAIClient", "classify", "retry_after_seconds"]


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date)."""
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_fields(body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or error.get("type") or ""), str(error.get("message") or "")[:300]


def classify(status: int, body: Any, headers: httpx.Headers) -> WorkerError:
    """The error for a non-2xx response: retryable or permanent, with its category."""
    code, message = _error_fields(body)
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    if status == 429:
        if code in {"insufficient_quota", "credit_balance_exhausted"}:
            return ProviderRejected(detail, code="quota")
        return ProviderRateLimited(detail, retry_after=retry_after_seconds(headers))
    if status >= 500 or status == 408:
        return ProviderServerError(detail)
    if status in (401, 403):
        return ProviderRejected(detail, code="auth")
    if status == 404:
        return ProviderRejected(detail, code="not_found")
    if code == "content_filter":
        return ProviderRejected(detail, code="content_filter")
    if status in (400, 409, 413, 422):
        return ProviderRejected(detail, code="validation")
    return ProviderRejected(detail, code="unknown")


class OpenAIClient:
    """``POST {base_url}/chat/completions`` with a bearer key, pooled connections."""

    name = "openai"

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.json_mode:
            payload["response_format"] = {"type": "json_object"}
        try:
            response = await self._client.post("/chat/completions", json=payload)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"openai: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ProviderNetworkError(f"openai: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if response.is_success:
                raise ProviderServerError("openai: response is not JSON") from exc
            body = None
        if not response.is_success:
            raise classify(response.status_code, body, response.headers)
        return _parse(body)


def _parse(body: Any) -> ChatResponse:
    try:
        choice = body["choices"][0]
        content = choice["message"].get("content") or ""
        finish = str(choice.get("finish_reason") or "stop")
        model = str(body.get("model", ""))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderServerError("openai: response lacks choices[0].message") from exc
    if finish == "content_filter":
        raise ProviderRejected(
            "openai: output blocked by the content filter", code="content_filter"
        )
    usage = body.get("usage") or {}
    if "prompt_tokens" in usage:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        return ChatResponse(
            content=content,
            model=model,
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            usage_source="api",
            finish_reason=finish,
            cached_tokens=int(cached),
        )
    return ChatResponse(
        content=content,
        model=model,
        prompt_tokens=0,
        completion_tokens=max(1, len(content) // 4),
        usage_source="estimated",
        finish_reason=finish,
    )
