"""Token estimates for responses that carry no ``usage``.

First cut: about four characters per token plus a per-message overhead, as
OpenAI's guidance suggests. The provider-layer issue swaps in a real
tokenizer behind the same function.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["estimate_messages", "estimate_text"]

_PER_MESSAGE = 4


def estimate_text(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def estimate_messages(messages: Iterable[dict[str, str]]) -> int:
    return sum(_PER_MESSAGE + estimate_text(m.get("content", "")) for m in messages) + 3
