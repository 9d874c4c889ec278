"""What every provider client takes and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["ChatClient", "ChatRequest", "ChatResponse", "Message", "Observe", "Pace"]

Message = dict[str, str]
Pace = Callable[[str, list[Message], int, float | None], Awaitable[None]]
"""The rate limiter's hook (``worker.limits``): ``pace(provider, messages, max_tokens,
budget)`` waits for the call's turn, or raises ``NotDue`` if it is over ``budget`` s away."""
Observe = Callable[[str, int, Mapping[str, str]], Awaitable[None]]
"""``observe(provider, status, headers)``: hears every answer's headers (rate limits)."""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: list[Message]
    model: str
    json_mode: bool = False
    temperature: float = 0.7
    max_tokens: int = 800


@dataclass(frozen=True, slots=True)
class ChatResponse:
    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    usage_source: Literal["api", "estimated"]
    finish_reason: str = "stop"
    cached_tokens: int = 0


class ChatClient(Protocol):
    """A chat-completions endpoint: OpenAI or Azure OpenAI."""

    name: str
    timeout: float

    async def complete(
        self, request: ChatRequest, time_limit: float | None = None
    ) -> ChatResponse: ...

    async def close(self) -> None: ...
