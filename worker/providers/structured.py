"""Structured output: a JSON answer checked against a pydantic model, and the
prompt that asks the model to repair an answer that failed."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from worker.providers.base import Message

__all__ = ["repair_prompt", "validate"]

M = TypeVar("M", bound=BaseModel)


def validate(content: str, schema: type[M]) -> M:
    """``content`` as an instance of ``schema``; ``ValueError`` saying what is wrong."""
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


def repair_prompt(messages: list[Message], content: str, error: ValueError) -> list[Message]:
    """The conversation again, with the invalid answer and what was wrong with it."""
    return [
        *messages,
        {"role": "assistant", "content": content},
        {
            "role": "user",
            "content": "Your answer did not match the JSON schema: "
            f"{str(error)[:500]}. Reply again with only valid JSON for the schema.",
        },
    ]
