"""What every provider client takes and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["ChatClient", "ChatRequest", "ChatResponse", "Message"]

Message = dict[str, str]


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
