"""Chat completions over HTTP (``worker.outbound``) for OpenAI and Azure OpenAI.

The only module that talks to the providers: error bodies become ours here
(``taxonomy.classify``), transport failures in ``worker.outbound``. The two
services share the wire format and differ in URL, authentication and a few
request fields (Azure's 2024-10-21 GA API takes ``max_tokens`` and no
``model``; OpenAI prefers ``max_completion_tokens``).
"""

from __future__ import annotations

from typing import Any

from worker.errors import UpstreamRefused, UpstreamUnavailable
from worker.outbound import JsonPoster, Send
from worker.providers.base import ChatRequest, ChatResponse, Observe
from worker.providers.taxonomy import classify

__all__ = ["AzureOpenAIClient", "HttpChatClient", "OpenAIClient"]


class HttpChatClient:
    """One pooled ``JsonPoster``; subclasses say where and how to post. ``send``
    replaces the wire in unit tests."""

    name = "provider"
    observe: Observe | None = None  # the rate limiter's ear (worker.limits), set by the runtime

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        send: Send | None = None,
        connections: int = 512,
    ) -> None:
        self.timeout = timeout
        self._client = JsonPoster(
            self.name, base_url, headers, connections=connections, connect_timeout=10.0, send=send
        )

    async def close(self) -> None:
        await self._client.close()

    def _path(self, request: ChatRequest) -> str:
        raise NotImplementedError

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": request.messages,
            "temperature": request.temperature,
        }
        if request.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    async def complete(self, request: ChatRequest, time_limit: float | None = None) -> ChatResponse:
        """One call, bounded as a whole (not per read) by ``time_limit`` or the client's."""
        limit = time_limit or self.timeout
        response = await self._client.post(
            self._path(request), self._body(request), time_limit=limit
        )
        if self.observe is not None:
            await self.observe(self.name, response.status, response.headers)
        try:
            body = response.json()
        except ValueError as exc:
            if response.is_success:
                raise UpstreamUnavailable(f"{self.name}: response is not JSON") from exc
            body = None
        if not response.is_success:
            raise classify(self.name, response.status, body, response.headers)
        return parse_response(self.name, body, request.model)


class OpenAIClient(HttpChatClient):
    """``POST {OPENAI_BASE_URL}/chat/completions`` with ``Authorization: Bearer``."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        send: Send | None = None,
        connections: int = 512,
    ) -> None:
        bearer = {"Authorization": f"Bearer {api_key}"}
        super().__init__(base_url, bearer, timeout, send, connections)

    def _path(self, request: ChatRequest) -> str:
        return "/chat/completions"

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body = super()._body(request)
        body["model"] = request.model
        body["max_completion_tokens"] = request.max_tokens
        return body


class AzureOpenAIClient(HttpChatClient):
    """``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…``.

    Authenticates with the ``api-key`` header, or with an Entra ID bearer token
    when one is given instead.
    """

    name = "azure"

    def __init__(
        self,
        endpoint: str,
        deployment: str,
        *,
        api_key: str | None = None,
        ad_token: str | None = None,
        api_version: str = "2024-10-21",
        timeout: float = 45.0,
        send: Send | None = None,
        connections: int = 512,
    ) -> None:
        if ad_token:
            headers = {"Authorization": f"Bearer {ad_token}"}
        elif api_key:
            headers = {"api-key": api_key}
        else:
            raise ValueError("Azure OpenAI needs an API key or an Entra ID token")
        super().__init__(endpoint, headers, timeout, send, connections)
        self.deployment = deployment
        self.api_version = api_version

    def _path(self, request: ChatRequest) -> str:
        return (
            f"/openai/deployments/{self.deployment}/chat/completions?api-version={self.api_version}"
        )

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body = super()._body(request)
        body["max_tokens"] = request.max_tokens
        return body


def parse_response(provider: str, body: Any, requested_model: str) -> ChatResponse:
    """A ``CreateChatCompletionResponse`` to our ChatResponse (usage may be absent)."""
    try:
        choice = body["choices"][0]
        finish = str(choice.get("finish_reason") or "stop")
        content = (choice.get("message") or {}).get("content") or ""
        model = str(body.get("model") or requested_model)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamUnavailable(f"{provider}: response lacks choices[0]") from exc
    if finish == "content_filter":
        raise UpstreamRefused(
            f"{provider}: output blocked by the content filter", code="content_filter"
        )
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    if usage and "prompt_tokens" in usage:
        details = usage.get("prompt_tokens_details") or {}
        return ChatResponse(
            content=content,
            model=model,
            prompt_tokens=int(usage["prompt_tokens"]),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            usage_source="api",
            finish_reason=finish,
            cached_tokens=int(details.get("cached_tokens") or 0),
        )
    return ChatResponse(
        content=content,
        model=model,
        prompt_tokens=0,
        completion_tokens=0,
        usage_source="estimated",
        finish_reason=finish,
    )
