"""Structured output: a JSON answer checked against a pydantic model, and the
prompt that asks the model to repair an answer that failed."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from worker.errors import InvalidOutput
from worker.providers.base import Message

if TYPE_CHECKING:
    from worker.providers.llm import LLMSession

__all__ = ["answer_validated", "repair_prompt", "validate"]

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


async def answer_validated(session: LLMSession, messages: list[Message], schema: type[M]) -> M:
    """``session``'s JSON answer as ``schema``: one repair round (its calls marked
    ``repair``), then ``InvalidOutput``."""
    response = await session.complete(messages, json_mode=True)
    try:
        return validate(response.content, schema)
    except ValueError as first:
        repair = repair_prompt(messages, response.content, first)
        before = len(session.calls)
        response = await session.complete(repair, json_mode=True)
        calls = session.calls
        calls[before:] = [dataclasses.replace(c, repair=True) for c in calls[before:]]
        try:
            return validate(response.content, schema)
        except ValueError as second:
            raise InvalidOutput(
                f"{schema.__name__} still invalid after one repair: {str(second)[:300]}"
            ) from second
